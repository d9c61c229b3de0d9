"""`jalon rates`: load the ECB's file, type, delete and list rates, as an admin does."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from jalon.connector.cli import main
from jalon.core.models import ExchangeRate

from tests.cli.test_cli import count

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecb-rates-sample.csv"


def jalon(db_url: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, "rates", *args], input=stdin, catch_exceptions=False)


def test_load_prints_what_it_did_and_again_changes_nothing(db_url):
    first = jalon(db_url, "load", str(SAMPLE))
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "added 120, updated 0, unchanged 0, kept manual 0"
    again = jalon(db_url, "load", str(SAMPLE))
    assert again.output.strip() == "added 0, updated 0, unchanged 120, kept manual 0"
    assert count(db_url, ExchangeRate) == 120


def test_a_typed_rate_is_kept_by_load_unless_replace(db_url):
    assert jalon(db_url, "set", "usd", "2026-12-04", "1.0850").exit_code == 0
    assert "kept manual 1" in jalon(db_url, "load", str(SAMPLE)).output
    replaced = jalon(db_url, "load", "--replace", str(SAMPLE))
    assert replaced.output.strip() == "added 0, updated 1, unchanged 119, kept manual 0"


def test_load_reads_standard_input(db_url):
    result = jalon(db_url, "load", "-", stdin="Date,USD,\n2026-12-04,1.0842,\n")
    assert result.exit_code == 0 and "added 1," in result.output


def test_a_bad_file_ends_with_its_code_and_line_and_stores_nothing(db_url, tmp_path):
    bad = tmp_path / "rates.csv"
    bad.write_text("Date,USD,GBP,\n2026-12-04,1.0842,0.8521,\n2026-12-03,1.0836,-0.85,\n", encoding="utf-8")
    result = jalon(db_url, "load", str(bad))
    assert result.exit_code == 1
    assert "error [ecb_csv_invalid]: ECB rates file, line 3, column GBP:" in result.output
    assert count(db_url, ExchangeRate) == 0


def test_set_then_list_shows_a_table(db_url):
    assert jalon(db_url, "set", "USD", "2026-12-04", "1.0842").output.strip() == "USD 2026-12-04 1.0842 (added, manual)"
    jalon(db_url, "load", str(SAMPLE))
    result = jalon(db_url, "list", "--currency", "USD", "--since", "2026-12-03")
    header, *lines = result.output.splitlines()
    assert header.split() == ["DAY", "CURRENCY", "RATE", "SOURCE", "LOADED", "AT"]
    assert [line.split()[:4] for line in lines] == [
        ["2026-12-04", "USD", "1.0842", "manual"], ["2026-12-03", "USD", "1.0836", "ecb"]]
    assert lines[0].index("1.0842") == header.index("RATE")


def test_list_with_nothing_says_how_to_load(db_url):
    result = jalon(db_url, "list", "--until", "2026-01-01")
    assert result.exit_code == 0 and "jalon rates load eurofxref-hist.csv" in result.output


def test_a_negative_rate_is_refused_not_taken_for_an_option(db_url):
    result = jalon(db_url, "set", "USD", "2026-12-04", "-1.08")
    assert result.exit_code == 1 and "error [invalid_exchange_rate]" in result.output
    assert count(db_url, ExchangeRate) == 0


def test_a_bad_currency_or_day_is_refused(db_url):
    assert "error [invalid_currency]" in jalon(db_url, "set", "ZZZ", "2026-12-04", "1.08").output
    assert "error [invalid_currency]" in jalon(db_url, "set", "EUR", "2026-12-04", "1").output
    bad_day = jalon(db_url, "set", "USD", "2026-13-04", "1.08")
    assert bad_day.exit_code == 2 and "DAY" in bad_day.output


def test_delete_removes_a_rate_and_an_unknown_one_is_an_error(db_url):
    jalon(db_url, "set", "USD", "2026-12-04", "1.0842")
    assert jalon(db_url, "delete", "USD", "2026-12-04").output.strip() == "USD 2026-12-04 deleted"
    again = jalon(db_url, "delete", "USD", "2026-12-04")
    assert again.exit_code == 1 and "error [exchange_rate_not_found]" in again.output
