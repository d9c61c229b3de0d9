"""An integration's settings are its source plugin's: the plugin's settings
schema refuses an unknown key or a bad value with the field's name (422), an
integration for a source no plugin serves is refused, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from jalon.connector.app import create_app
from jalon.connector.plugin import SourceSpec, hookimpl
from jalon.core.db import unit_of_work
from jalon.core.models import AuditRecord, Integration
from tests.api.conftest import Client, _token
from tests.api.support import assert_problem


def _stored(uow) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return (session.scalar(select(func.count()).select_from(Integration)),
                session.scalar(select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.action.like("integration.%"))))


@pytest.mark.parametrize(("settings", "field"), [
    ({"allow_private_networks": True}, "settings.allow_private_networks"),  # misspelt: not silently ignored
    ({"allow_private_network": "yes please"}, "settings.allow_private_network"),
    ({"flavour": "server2"}, "settings.flavour"),
    ({"done_statuses": ["Done", 7]}, "settings.done_statuses.1"),
])
def test_a_bad_setting_is_refused_with_its_name_and_nothing_is_stored(client, uow, settings, field) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-x", json={"source": "jira", "settings": settings})

    body = assert_problem(response, 422, "settings_invalid")
    assert list(body["errors"]) == [field]
    assert field.split(".")[1] in body["detail"]
    assert _stored(uow) == (0, 0)


def test_a_bad_setting_leaves_a_stored_integration_as_it_was(client, uow, world) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-atelier", json={
        "source": "jira", "settings": {"allow_private_networks": True}})

    assert_problem(response, 422, "settings_invalid")
    assert client.get("/api/v1/integrations/jira-atelier").json["settings"] == {}


def test_an_integration_for_a_source_no_plugin_serves_is_refused(client, uow) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/gl", json={"source": "gitlab", "settings": {}})

    body = assert_problem(response, 422, "unknown_source")
    assert list(body["errors"]) == ["source"] and "'gitlab'" in body["detail"] and "jira" in body["detail"]
    assert _stored(uow) == (0, 0)


def test_good_settings_are_stored_as_the_schema_reads_them(client) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-dc", json={
        "source": "jira", "settings": {"allow_private_network": "true", "flavour": "datacenter"}})

    assert response.status_code == 201, response.get_data(as_text=True)
    # the boolean as a boolean (the SSRF guard reads `is True`); the defaults stay the plugin's
    assert response.json["settings"] == {"allow_private_network": True, "flavour": "datacenter"}


class _Bare:
    """A source plugin that declares no settings schema."""

    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name="bare", title="Bare")


def test_a_plugin_without_a_settings_schema_gets_the_settings_every_integration_has(db_url) -> None:  # type: ignore[no-untyped-def]
    app = create_app(db_url, plugins=[_Bare()], TESTING=True)
    try:
        token = _token(lambda: unit_of_work(app.extensions["jalon"].sessionmaker), "ops", "admin")
        client = Client(app.test_client(), token)
        unknown = client.put("/api/v1/integrations/b", json={"source": "bare", "settings": {"colour": "blue"}})
        known = client.put("/api/v1/integrations/b", json={"source": "bare",
                                                            "settings": {"allow_private_network": True}})
    finally:
        app.extensions["jalon"].engine.dispose()

    assert assert_problem(unknown, 422, "settings_invalid")["errors"] == {"settings.colour": ["Unknown field."]}
    assert known.status_code == 201 and known.json["settings"] == {"allow_private_network": True}


@pytest.mark.parametrize("url", ["http://jira:8080", "http://10.0.0.5:8080/jira", "https://jira.intranet"])
def test_an_intranet_site_without_a_top_level_domain_is_a_base_url(client, url) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-dc", json={
        "source": "jira", "base_url": url, "settings": {"allow_private_network": True, "flavour": "datacenter"}})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["base_url"] == url


@pytest.mark.parametrize("url", ["ftp://jira.example", "jira.example", "javascript:alert(1)"])
def test_a_base_url_that_is_no_web_address_is_refused(client, uow, url) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-dc", json={"source": "jira", "base_url": url})
    body = assert_problem(response, 422, "validation_failed")
    assert "base_url" in body["errors"]
    assert _stored(uow) == (0, 0)
