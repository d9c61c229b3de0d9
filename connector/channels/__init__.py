"""Built-in notification channels, registered through the `jalon` entry-point
group like any plugin: ``email``, ``chat`` (Slack/Teams-style incoming
webhooks) and ``webhook`` (a generic HTTP callback signed the Standard
Webhooks way). :mod:`.config` checks a channel's configuration before it is
stored (known kind, target schema, SSRF guard, secret format)."""
