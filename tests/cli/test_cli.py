"""The `jalon` command as an admin uses it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import func, select

from jalon.connector.cli import main
from jalon.core.migrate import alembic_config
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import AuditRecord, Contract, Entity
from jalon.core.tokens import authenticate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jalon.yaml"


def jalon(db_url: str, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, *args], env=env, catch_exceptions=False)


def count(db_url: str, model: type) -> int:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            return session.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_db_upgrade_creates_the_schema_and_can_run_again(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    first = jalon(url, "db", "upgrade")
    again = jalon(url, "db", "upgrade")
    assert first.exit_code == again.exit_code == 0
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"database at revision {head}" in again.output
    assert jalon(url, "db", "current").output.strip() == head


def test_config_apply_is_idempotent(db_url):
    first = jalon(db_url, "config", "apply", str(EXAMPLE))
    assert first.exit_code == 0, first.output
    assert "contracts     5 created" in first.output
    audits = count(db_url, AuditRecord)
    second = jalon(db_url, "config", "apply", str(EXAMPLE))
    assert second.exit_code == 0
    assert "contracts     0 created, 0 updated, 5 unchanged" in second.output
    assert count(db_url, AuditRecord) == audits


def test_config_apply_reports_an_update(db_url, tmp_path):
    jalon(db_url, "config", "apply", str(EXAMPLE))
    changed = write(tmp_path, EXAMPLE.read_text(encoding="utf-8").replace("Lumière Industries SA", "Lumière SA"))
    result = jalon(db_url, "config", "apply", str(changed))
    assert "clients       0 created, 1 updated, 2 unchanged" in result.output


def test_config_apply_dry_run_writes_nothing(db_url):
    result = jalon(db_url, "config", "apply", "--dry-run", str(EXAMPLE))
    assert result.exit_code == 0
    assert "dry run: nothing was written" in result.output
    assert count(db_url, Entity) == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("entities: [unclosed\n", "config_invalid_yaml"),
        ("- just\n- a list\n", "config_invalid_yaml"),
        ("invoices: []\n", "config_unknown_section"),
        ("entities: {code: x}\n", "config_invalid_section"),
        ("entities: [42]\n", "config_invalid_item"),
        ("entities:\n  - {code: x, name: X, share_capital: 1000.5}\n", "config_float_refused"),
        ("integrations:\n  - {key: j, source: jira, secret: '${JALON_TEST_UNSET_VARIABLE}'}\n", "config_missing_env"),
        ("entities:\n  - {code: x, name: X, siren: '123456789'}\n", "invalid_siren"),
        ("clients:\n  - {code: c, name: C, payment_terms: {kind: net, days: 90}}\n", "invalid_payment_terms"),
        ("mappings:\n  - {integration: nope, project: P, contract: K}\n", "integration_not_found"),
    ],
)
def test_config_apply_refuses_bad_files_with_a_stable_code(db_url, tmp_path, text, code):
    result = jalon(db_url, "config", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 1
    assert f"error [{code}]" in result.output


def test_config_apply_refuses_a_missing_file(db_url, tmp_path):
    result = jalon(db_url, "config", "apply", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "error [config_unreadable]" in result.output


def test_a_failing_config_leaves_nothing_half_written(db_url, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace("contract: NW-TM-2026", "contract: NO-SUCH-CONTRACT")
    result = jalon(db_url, "config", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 1
    assert "mappings[1]" in result.output and "contract_not_found" in result.output
    assert count(db_url, Entity) == count(db_url, Contract) == count(db_url, AuditRecord) == 0


def test_config_reads_secrets_from_the_environment(db_url, tmp_path):
    path = write(tmp_path, "integrations:\n  - {key: j, source: jira, secret: '${JALON_TEST_SECRET}'}\n")
    result = jalon(db_url, "config", "apply", str(path), env={"JALON_TEST_SECRET": "from-env"})
    assert result.exit_code == 0
    assert "from-env" not in result.output


def test_token_create_prints_a_working_token_once(db_url):
    result = CliRunner().invoke(main, ["--database-url", db_url, "token", "create", "--scope", "finance", "--name", "ana"])
    assert result.exit_code == 0
    plain = result.stdout.strip()
    assert re.fullmatch(r"jal_[A-Za-z0-9_-]{40,}", plain)
    engine = make_engine(db_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        token = authenticate(session, plain)
        assert token is not None and token.scope == "finance" and token.digest != plain
    engine.dispose()
    listing = jalon(db_url, "token", "list").output
    assert "finance" in listing and plain not in listing


def test_token_create_refuses_an_unknown_scope(db_url):
    result = jalon(db_url, "token", "create", "--scope", "root")
    assert result.exit_code == 2
    assert "Invalid value for '--scope'" in result.output


def test_token_revoke(db_url):
    plain = CliRunner().invoke(main, ["--database-url", db_url, "token", "create", "--scope", "admin"]).stdout.strip()
    assert jalon(db_url, "token", "revoke", "1").exit_code == 0
    assert "error [token_not_found]" in jalon(db_url, "token", "revoke", "99").output
    engine = make_engine(db_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        assert authenticate(session, plain) is None
    engine.dispose()


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    result = jalon("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", "db", "upgrade")
    assert result.exit_code == 1
    assert "error [database_unavailable]" in result.output


def test_demo_prints_an_issued_invoice_with_its_number_and_totals():
    result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    output = result.output.replace("\u202f", " ").replace("\xa0", " ")  # French digit grouping
    assert re.search(r"FACTURE F\d{4}-00001", output)
    assert re.search(r"Total incl. VAT +8 640,00 €", output)
    assert re.search(r"Open balance +5 640,00 €", output)
    assert "Jira retries the same delivery: -> 200 duplicate" in output
    assert "-> 401 signature_invalid, stored nowhere" in output
    assert "milestone M1 done, draft invoice created; 5400 s logged on DATA-7" in output
    assert "Finance's notification (e-mail, in the outbox)" in output
    assert "The comment that goes back to Jira: on WEB-1" in output
    assert re.search(r"Approuver : http://127\.0\.0\.1:\d+/approve/[A-Za-z0-9_-]{43}\n", output)
    assert "Finance opens the link of the e-mail: GET /approve/… -> 200" in output
    assert re.search(r"Finance clicks « Approuver »: POST -> 200: invoice F\d{4}-00001 issued", output)
    assert "under the reverse charge" in output and "A credit note corrects it" in output
    assert re.search(r"The reconcile\.jira job asked Jira what changed: 1 change\(s\), stored as deliveries of "
                     r"their own \(reconcile:TaskCompleted, in the delivery log\) and applied by the worker: "
                     r"milestone M2 done, draft invoice created", output)
    # ClickUp: one change sent three ways is one delivery; milliseconds read exactly; the comment goes back
    assert "ClickUp's generic taskUpdated for the same change: -> 200 duplicate" in output
    assert "ClickUp retries the status delivery: -> 200 duplicate" in output
    assert "A forged ClickUp delivery: -> 401 signature_invalid, stored nowhere" in output
    assert ("The worker applied them: 3 deliveries: milestone A1 done, draft invoice created; 5400 s logged on "
            "86c0sup07; worklog 4215000000000000101: 5400 s -> 7200 s") in output
    assert "time ledger: 86c0sup07 7200 s by bob@atelier.example on NW-TM-2026" in output
    assert "The comment that goes back to ClickUp: on 86c0app01" in output
    assert re.search(r"The dispatcher posts it to ClickUp: POST /api/v2/task/86c0app01/comment: 429 at first .*: "
                     r"sent, comment \d+ \(2 tries", output)
    assert "Factur-X PDFs" not in output  # only with --out


def test_demo_out_writes_each_issued_invoice_as_a_valid_factur_x_pdf(tmp_path):
    import facturx

    from tests.core.documents import official

    out = tmp_path / "invoices"
    result = CliRunner().invoke(main, ["demo", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    year = files[0].name[1:5]
    assert [f.name for f in files] == [f"F{year}-0000{n}.pdf" for n in range(1, 9)] + [f"SL{year}-00001.pdf"]
    kinds = {}
    for path in files:
        assert f"    {path}\n" in result.output
        name, xml = facturx.get_facturx_xml_from_pdf(path.read_bytes(), check_xsd=False)
        assert name == "factur-x.xml"
        assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
        assert path.stem.encode() in xml
        if official.missing_reason() is None:  # every rule set a plateforme agréée applies
            assert official.check(xml) == [], path.name
        kinds[path.stem] = xml
    # a French milestone invoice, one in English under the reverse charge and its partial credit
    # note, a deposit and its final invoice, one in pounds, an exempt one, one with disbursements,
    # and one under the franchise
    assert b">381<" in kinds[f"F{year}-00003"] and b">386<" in kinds[f"F{year}-00004"]
    assert b">S4<" in kinds[f"F{year}-00005"] and f"F{year}-00004".encode() in kinds[f"F{year}-00005"]
    assert b'currencyID="EUR"' in kinds[f"F{year}-00006"] and b"<ram:TaxCurrencyCode>EUR" in kinds[f"F{year}-00006"]
    assert b"VATEX-EU-79-C" in kinds[f"F{year}-00008"] and b"VATEX-FR-FRANCHISE" in kinds[f"SL{year}-00001"]


def test_demo_out_refuses_a_file_for_a_folder(tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("x")
    result = CliRunner().invoke(main, ["demo", "--out", str(taken)])
    assert result.exit_code == 2 and "is a file" in result.output


def test_demo_refuses_to_reuse_an_existing_database(tmp_path):
    existing = tmp_path / "prod.db"
    existing.write_bytes(b"precious")
    result = CliRunner().invoke(main, ["demo", "--database", str(existing)])
    assert result.exit_code == 1
    assert "error [demo_database_exists]" in result.output
    assert existing.read_bytes() == b"precious"
