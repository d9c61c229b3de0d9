"""``jalon config apply`` checks each item as the admin API checks a PUT: the
same schemas, so a field the API refuses is refused with the same message,
named by its path in the file; an integration's settings by its plugin's
schema. A refused file writes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from jalon.connector.app import create_app
from jalon.connector.cli import main
from jalon.core import tokens
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import AuditRecord, Client, Entity, Integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jalon.yaml"


def apply(db_url: str, tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "jalon.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return CliRunner().invoke(main, ["--database-url", db_url, "config", "apply", str(path)])


def written(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            return sum(session.scalar(select(func.count()).select_from(model))
                       for model in (Entity, Client, Integration, AuditRecord))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("section", "item", "says"), [
    ("clients", "{code: c, name: 42}", "clients[0].name: Not a valid string."),
    ("entities", "{code: e, name: E, nmae: typo}", "entities[0].nmae: Unknown field."),
    ("clients", "{name: No code}", "clients[0].code: Missing data for required field."),
    ("contracts", "{reference: K, name: N, entity: atelier, client: lumiere}",
     "contracts[0].kind: Missing data for required field."),
    ("clients", "{code: c, name: C, payment_terms: {kind: net, days: '30'}}",
     "clients[0].payment_terms.days: Not a valid integer."),
    ("clients", "{code: c, name: C, billing_emails: [ok@x.example, not-an-address]}",
     "clients[0].billing_emails[1]: Not a valid email address."),
    ("entities", "{code: e, name: E, share_capital: 10000}",  # a number, even whole, as the API refuses it
     "entities[0].share_capital: Must be a decimal string"),
])
def test_a_bad_item_is_refused_with_its_path_and_nothing_is_written(db_url, tmp_path, section, item, says) -> None:  # type: ignore[no-untyped-def]
    # the bad item first in its section of the complete example: a partial write would show
    text = EXAMPLE.read_text(encoding="utf-8").replace(f"\n{section}:\n", f"\n{section}:\n  - {item}\n", 1)

    result = apply(db_url, tmp_path, text)

    assert result.exit_code == 1, result.output
    assert "error [validation_failed]: " in result.output and says in result.output
    assert written(db_url) == 0


def test_a_nested_item_is_named_by_its_path(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = EXAMPLE.read_text(encoding="utf-8").replace('amount: "4800.00"', "amount: 4800")

    result = apply(db_url, tmp_path, text)

    assert result.exit_code == 1
    assert "error [validation_failed]: contracts[0].milestones[2].amount: Must be a decimal string" in result.output
    assert written(db_url) == 0


def test_the_file_and_the_api_refuse_a_field_with_the_same_message(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True)
    try:
        with unit_of_work(app.extensions["jalon"].sessionmaker) as session:
            _, token = tokens.create_token(session, name="ops", scope="admin", actor="test")
        api = app.test_client().put("/api/v1/clients/c", json={"name": "C", "vat_number": 7, "language": "de"},
                                    headers={"Authorization": f"Bearer {token}"})
    finally:
        app.extensions["jalon"].engine.dispose()

    result = apply(db_url, tmp_path, "clients:\n  - {code: c, name: C, vat_number: 7, language: de}\n")

    assert api.status_code == 422 and result.exit_code == 1
    for field, messages in api.get_json()["errors"].items():
        assert f"clients[0].{field}: {' '.join(messages)}" in result.output


# --- an integration's settings: its plugin's schema ---------------------------------------



@pytest.mark.parametrize(("source", "settings", "code", "field"), [
    ("jira", "{allow_private_networks: true}", "settings_invalid", "settings.allow_private_networks: Unknown field."),
    ("jira", "{allow_private_network: yes please}", "settings_invalid",
     "settings.allow_private_network: Not a valid boolean."),
    ("jira", "{flavour: server2}", "settings_invalid", "settings.flavour: Must be one of: cloud, datacenter."),
    ("gitlab", "{}", "unknown_source", "no installed plugin serves the source 'gitlab'"),
])
def test_bad_integration_settings_or_an_unknown_source_are_refused(db_url, tmp_path, source, settings, code,
                                                                   field) -> None:  # type: ignore[no-untyped-def]
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "\nintegrations:\n", f"\nintegrations:\n  - {{key: j, source: {source}, settings: {settings}}}\n", 1)

    result = apply(db_url, tmp_path, text)

    assert result.exit_code == 1, result.output
    assert f"error [{code}]: integrations[0]: " in result.output and field in result.output
    assert written(db_url) == 0


def test_integration_settings_are_stored_as_the_schema_reads_them(db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = apply(db_url, tmp_path, "integrations:\n  - {key: j, source: jira, settings: "
                                     "{allow_private_network: 'true', done_statuses: [Livré]}}\n")

    assert result.exit_code == 0, result.output
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            stored = session.execute(select(Integration.settings)).scalar_one()
    finally:
        engine.dispose()
    assert stored == {"allow_private_network": True, "done_statuses": ["Livré"]}
