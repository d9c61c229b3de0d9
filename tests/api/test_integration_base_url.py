"""An integration's ``base_url`` passes the SSRF guard when it is configured,
as a channel's URL does: through the API (422), ``jalon config apply`` and
``jalon integrations connect`` (exit 1), a tool's address on this machine or
a non-public network is refused with ``url_not_allowed``, naming the setting
that allows it, unless the integration's settings say
``allow_private_network: true``; nothing is stored."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from jalon.connector.cli import main
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Integration
from tests.api.support import assert_problem

PRIVATE = ["http://127.0.0.1:8080", "http://10.1.2.3/jira", "http://169.254.169.254/latest", "http://localhost:8080",
           "http://[::1]:8080", "http://192.168.1.20"]


def _count(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            return session.scalar(select(func.count()).select_from(Integration))
    finally:
        engine.dispose()


@pytest.mark.parametrize("base_url", PRIVATE)
def test_a_private_base_url_is_refused_by_the_api_naming_the_setting(client, db_url, base_url) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-dc", json={"source": "jira", "base_url": base_url})

    body = assert_problem(response, 422, "url_not_allowed")
    assert list(body["errors"]) == ["base_url"]
    assert body["detail"].startswith("base_url: ") and "allow_private_network: true" in body["detail"]
    assert _count(db_url) == 0


def test_a_private_base_url_is_accepted_when_the_integration_allows_the_private_network(client) -> None:  # type: ignore[no-untyped-def]
    response = client.put("/api/v1/integrations/jira-dc", json={
        "source": "jira", "base_url": "http://10.1.2.3/jira", "settings": {"allow_private_network": True}})

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["base_url"] == "http://10.1.2.3/jira"


def test_a_public_base_url_or_a_name_not_yet_resolvable_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    for key, base_url in (("jira-ip", "https://93.184.215.14"), ("jira-new", "https://jira.not-yet-in-dns.test")):
        response = client.put(f"/api/v1/integrations/{key}", json={"source": "jira", "base_url": base_url})
        assert response.status_code == 201, response.get_data(as_text=True)


def test_an_update_to_a_private_base_url_leaves_the_integration_as_it_was(client, world) -> None:  # type: ignore[no-untyped-def]
    assert client.put("/api/v1/integrations/jira-atelier", json={
        "source": "jira", "base_url": "https://93.184.215.14"}).status_code == 200
    assert_problem(client.put("/api/v1/integrations/jira-atelier", json={
        "source": "jira", "base_url": "http://10.0.0.7"}), 422, "url_not_allowed")
    assert client.get("/api/v1/integrations/jira-atelier").json["base_url"] == "https://93.184.215.14"


def _apply(db_url: str, tmp_path, settings: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "jalon.yaml"
    path.write_text(textwrap.dedent(f"""\
        integrations:
          - key: jira-dc
            source: jira
            base_url: http://10.1.2.3/jira
            settings: {settings}
        """), encoding="utf-8")
    return CliRunner().invoke(main, ["--database-url", db_url, "config", "apply", str(path)])


def test_config_apply_refuses_a_private_base_url_unless_allowed(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    refused = _apply(db_url, tmp_path, "{}")
    assert refused.exit_code == 1, refused.output
    assert "error [url_not_allowed]: integrations[0]: base_url: the URL leads to a non-public address: " \
        "10.1.2.3 is private" in refused.output
    assert "allow_private_network: true" in refused.output
    assert _count(db_url) == 0

    allowed = _apply(db_url, tmp_path, "{allow_private_network: true}")
    assert allowed.exit_code == 0, allowed.output
    assert _count(db_url) == 1


def test_integrations_connect_refuses_a_private_site_before_storing_anything(db_url) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, [
        "--database-url", db_url, "integrations", "connect", "jira", "--site", "http://169.254.169.254",
        "--key", "jira-meta", "--email", "admin@atelier.example", "--api-token", "tok-SECRET", "--no-register"])

    assert result.exit_code == 1, result.output
    assert "error [url_not_allowed]: base_url: " in result.output and "169.254.169.254" in result.output
    assert "--setting allow_private_network=true" in result.output and "tok-SECRET" not in result.output
    assert _count(db_url) == 0
