"""/api/v1/exchange-rates: list, type, delete and import the ECB's rates; rates are strings, bad input a problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from jalon.core.models import AuditRecord, ExchangeRate
from sqlalchemy import func, select

from tests.api.support import assert_problem

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecb-rates-sample.csv"
URL = "/api/v1/exchange-rates"
CSV = {"Content-Type": "text/csv"}


def stored(uow) -> int:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.scalar(select(func.count()).select_from(ExchangeRate))


def audits(uow) -> int:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord))


def imported(client, body: bytes | str, **query: str):  # type: ignore[no-untyped-def]
    return client.post(f"{URL}/import", data=body, headers=CSV, query_string=query)


def test_import_loads_the_file_and_again_changes_nothing(client, uow):
    first = imported(client, SAMPLE.read_bytes())
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json == {"added": 120, "updated": 0, "unchanged": 0, "skipped_manual": 0}
    again = imported(client, SAMPLE.read_bytes())
    assert again.json == {"added": 0, "updated": 0, "unchanged": 120, "skipped_manual": 0}
    assert stored(uow) == 120


def test_list_is_a_page_of_rates_as_strings_newest_first_with_filters(client):
    imported(client, SAMPLE.read_bytes())
    page = client.get(URL, query_string={"currency": "USD", "since": "2026-12-01", "page_size": 2}).json
    assert page["total"] == 4 and page["page_size"] == 2
    first = page["items"][0]
    assert {key: first[key] for key in ("currency", "day", "rate", "source")} == {
        "currency": "USD", "day": "2026-12-04", "rate": "1.0842", "source": "ecb"}
    assert isinstance(first["rate"], str)
    november = client.get(URL, query_string={"until": "2026-11-30", "since": "2026-11-30"}).json
    assert sorted(item["currency"] for item in november["items"]) == ["CHF", "GBP", "JPY", "USD"]


def test_put_types_a_rate_that_an_import_keeps(client):
    created = client.put(f"{URL}/USD/2026-12-04", json={"rate": "1.0850"})
    assert created.status_code == 201 and created.json["rate"] == "1.085" and created.json["source"] == "manual"
    assert client.put(f"{URL}/USD/2026-12-04", json={"rate": "1.0850"}).status_code == 200
    assert imported(client, SAMPLE.read_bytes()).json["skipped_manual"] == 1
    replaced = imported(client, SAMPLE.read_bytes(), replace="true").json
    assert (replaced["updated"], replaced["unchanged"], replaced["skipped_manual"]) == (1, 119, 0)
    [usd] = client.get(URL, query_string={"currency": "USD", "since": "2026-12-04"}).json["items"]
    assert (usd["rate"], usd["source"]) == ("1.0842", "ecb")


def test_put_again_adds_no_audit_record(client, uow):
    client.put(f"{URL}/GBP/2026-12-04", json={"rate": "0.8521"})
    before = audits(uow)
    client.put(f"{URL}/GBP/2026-12-04", json={"rate": "0.85210"})
    assert audits(uow) == before


def test_delete_removes_a_rate_then_it_is_not_found(client, uow):
    client.put(f"{URL}/USD/2026-12-04", json={"rate": "1.0842"})
    response = client.open("DELETE", f"{URL}/USD/2026-12-04")
    assert response.status_code == 204 and stored(uow) == 0
    assert_problem(client.open("DELETE", f"{URL}/USD/2026-12-04"), 404, "exchange_rate_not_found")


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/usd/2026-12-04", {"rate": "1.08"}, "invalid_currency"),
    ("/ZZZ/2026-12-04", {"rate": "1.08"}, "invalid_currency"),
    ("/EUR/2026-12-04", {"rate": "1"}, "invalid_currency"),
    ("/USD/2026-13-04", {"rate": "1.08"}, "invalid_date"),
    ("/USD/04-12-2026", {"rate": "1.08"}, "invalid_date"),
    ("/USD/2026-12-04", {"rate": "0"}, "invalid_exchange_rate"),
    ("/USD/2026-12-04", {"rate": "-1.08"}, "invalid_exchange_rate"),
    ("/USD/2026-12-04", {"rate": "1.0842001"}, "invalid_exchange_rate"),
    ("/USD/2026-12-04", {"rate": "1e30"}, "invalid_exchange_rate"),
    ("/USD/2026-12-04", {"rate": 1.0842}, "validation_failed"),
    ("/USD/2026-12-04", {"rate": "NaN"}, "validation_failed"),
    ("/USD/2026-12-04", {}, "validation_failed"),
    ("/USD/2026-12-04", {"rate": "1.08", "source": "ecb"}, "validation_failed"),
])
def test_put_refuses_bad_input_with_a_stable_code_and_writes_nothing(client, uow, path, body, code):
    assert_problem(client.put(URL + path, json=body), 422, code)
    assert stored(uow) == 0


def test_a_json_number_rate_names_the_field(client):
    body = assert_problem(client.put(f"{URL}/USD/2026-12-04", json={"rate": 1.0842}), 422, "validation_failed")
    assert list(body["errors"]) == ["rate"]


@pytest.mark.parametrize(("body", "code"), [
    (b"", "ecb_csv_invalid"),
    (b"Time,Currency,Rate\n2026-12-04,USD,1.0842\n", "ecb_csv_invalid"),
    (b"Date,USD,\n2026-12-04,1.0842,\n2026-12-03,-1.0836,\n", "ecb_csv_invalid"),
    (b"Date,USD,\n2026-12-04,1.0842,\n2026-12-33,1.0836,\n", "ecb_csv_invalid"),
    (b"Date,USD,XYZ,\n2026-12-04,1.0842,2,\n", "ecb_csv_invalid"),
    (b"Date,USD,\n2026-12-04,1.0842,\n\xff\xfe,1,\n", "ecb_csv_invalid"),
    (b"Date,USD,\n2026-12-04,N/A,\n", "ecb_csv_empty"),
])
def test_a_bad_file_is_refused_whole(client, uow, body, code):
    problem = assert_problem(imported(client, body), 422, code)
    assert "ECB rates file" in problem["detail"]
    assert stored(uow) == 0 and audits(uow) == 1  # the token's creation only


def test_the_error_names_the_line_and_column(client):
    problem = assert_problem(imported(client, b"Date,USD,GBP,\n2026-12-04,1.0842,0.85,\n2026-12-03,1.08,zero,\n"),
                             422, "ecb_csv_invalid")
    assert "line 3, column GBP" in problem["detail"]


def test_an_import_that_is_not_csv_is_refused(client, uow):
    response = client.post(f"{URL}/import", json={"USD": "1.0842"})
    assert_problem(response, 415, "unsupported_media_type")
    assert stored(uow) == 0


def test_the_whole_ecb_history_fits_where_other_bodies_stop_at_1_mib(client):
    # what the app refuses elsewhere (1 MiB): the ECB's history is about 2.5 MB
    body = b"Date,USD,\n" + b"\n" * (2 * 1024 * 1024) + b"2026-12-04,1.0842,\n"
    assert imported(client, body).json["added"] == 1


def test_a_finance_token_reads_rates_but_cannot_change_them(client, finance):
    imported(client, SAMPLE.read_bytes())
    assert finance.get(URL).status_code == 200
    assert_problem(finance.put(f"{URL}/USD/2026-12-04", json={"rate": "1.09"}), 403, "insufficient_scope")
    assert_problem(finance.open("DELETE", f"{URL}/USD/2026-12-04"), 403, "insufficient_scope")
    assert_problem(imported(finance, SAMPLE.read_bytes()), 403, "insufficient_scope")


@pytest.mark.parametrize("query", [{"currency": "usd"}, {"since": "2026-02-30"}, {"until": "tomorrow"}])
def test_list_refuses_a_bad_filter(client, query):
    assert_problem(client.get(URL, query_string=query), 422, "validation_failed")


def test_list_with_an_unknown_currency_is_a_problem_not_a_500(client):
    assert_problem(client.get(URL, query_string={"currency": "ZZZ"}), 422, "invalid_currency")
