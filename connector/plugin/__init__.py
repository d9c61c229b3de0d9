"""The plugin kit: everything a plugin author imports, from this one module.

::

    from jalon.connector.plugin import SourceSpec, Translation, hookimpl

    @hookimpl
    def jalon_source_register():
        return SourceSpec(name="gitlab", title="GitLab", settings_schema=GitLabSettings)

A plugin imports this module and the core's events (``jalon.core.events``),
nothing else of jalon: never a database session or model, never another
connector module (a test fails when a file under ``plugins/`` does). Plugins
say what happened; the connector decides how it is stored, retried and
notified. See ``docs/plugins.md``.
"""

from jalon.connector.net.http import (
    Auth,
    BadResponse,
    BasicAuth,
    BearerAuth,
    CredentialsChanged,
    NoCredentialStore,
    NotFound,
    QueryTokenAuth,
    RateLimited,
    Redirected,
    RemoteError,
    RestClient,
    Unauthorized,
    Unavailable,
)
from jalon.connector.net.ssrf import UrlNotAllowed
from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import (
    Attachment,
    ChannelSpec,
    Comment,
    Connected,
    ConnectOption,
    DeliveryView,
    IntegrationSettings,
    IntegrationView,
    JobTick,
    JobSpec,
    OutboxView,
    PermanentFailure,
    RetryLater,
    SendResult,
    SourceSpec,
    Translation,
    Unreadable,
)

__all__ = [
    "Attachment", "Auth", "BadResponse", "BasicAuth", "BearerAuth", "ChannelSpec", "Comment", "Connected", "ConnectOption",
    "CredentialsChanged", "DeliveryView", "IntegrationSettings", "IntegrationView", "JobTick", "JobSpec", "NoCredentialStore", "NotFound", "OutboxView",
    "PermanentFailure", "QueryTokenAuth", "RateLimited", "Redirected", "RemoteError", "RestClient", "RetryLater",
    "SendResult", "SourceSpec", "Translation", "Unauthorized", "Unavailable", "Unreadable", "UrlNotAllowed",
    "hookimpl",
]
