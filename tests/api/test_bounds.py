"""Numbers beyond what a column holds are refused at the edge, never a 500.

An id in the path beyond the id column's range is a 404, like any id that
names nothing; an id in a body, or a page number that would take the offset
past 2^63, is a 422 naming the field. On SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from jalon.connector.web.api.fields import MAX_PAGE, MAX_PAGE_SIZE
from tests.api.support import assert_problem
from tests.api.test_invoices import LINE

INT32 = 2**31
INT64 = 2**63
HUGE = [INT32, INT64 - 1, INT64, 2**64, 10**40]

# every route whose path names a row by its numeric id, with a body it would accept
BY_ID = [
    ("GET", "/api/v1/invoices/{}", None),
    ("PUT", "/api/v1/invoices/{}/lines", {"lines": [LINE]}),
    ("POST", "/api/v1/invoices/{}/issue", {}),
    ("POST", "/api/v1/invoices/{}/approve", {}),
    ("POST", "/api/v1/invoices/{}/credit", {"reason": "wrong rate"}),
    ("POST", "/api/v1/invoices/{}/cancel", {"reason": "duplicate"}),
    ("GET", "/api/v1/invoices/{}/pdf", None),
    ("GET", "/api/v1/invoices/{}/facturx.xml", None),
    ("GET", "/api/v1/payments/{}", None),
    ("GET", "/api/v1/deliveries/{}", None),
    ("POST", "/api/v1/deliveries/{}/replay", {}),
    ("GET", "/api/v1/outbox/{}", None),
    ("POST", "/api/v1/outbox/{}/retry", None),
]

LISTS = ["entities", "clients", "contracts", "integrations", "mappings", "invoices", "payments", "audit",
         "deliveries", "outbox", "channels", "jobs"]


@pytest.mark.parametrize("method, path, body", BY_ID, ids=[f"{m} {p}" for m, p, _ in BY_ID])
def test_an_id_beyond_the_column_is_not_found(client, world, method, path, body):  # type: ignore[no-untyped-def]
    for number in [0, *HUGE]:
        response = client.open(method, path.format(number), json=body)
        assert response.status_code == 404, (number, response.get_data(as_text=True))
        assert assert_problem(response, 404, response.get_json()["code"])["code"].endswith("not_found")


@pytest.mark.parametrize("number", HUGE)
def test_an_invoice_id_beyond_the_column_in_a_body_is_refused_or_not_found(finance, world, number):  # type: ignore[no-untyped-def]
    response = finance.post("/api/v1/invoices/send", json={"invoice_ids": [number]})
    if number >= INT64:
        body = assert_problem(response, 422, "validation_failed")
        assert list(body["errors"]) == ["invoice_ids.0"]
    else:  # within the column on some engine: an invoice that does not exist (or beyond this engine's: 422)
        assert response.status_code in (404, 422), response.get_data(as_text=True)
        if response.status_code == 422:
            assert list(response.get_json()["errors"]) == ["invoice_ids.0"]


def test_an_invoice_id_below_one_in_a_body_is_refused(finance, world):  # type: ignore[no-untyped-def]
    body = assert_problem(finance.post("/api/v1/invoices/send", json={"invoice_ids": [5, 0]}), 422,
                          "validation_failed")
    assert list(body["errors"]) == ["invoice_ids.1"]


@pytest.mark.parametrize("area", LISTS)
def test_a_page_beyond_the_bound_is_refused_naming_the_field(client, area):  # type: ignore[no-untyped-def]
    for page in (MAX_PAGE + 1, 46116860184273881, INT64, 10**40):
        body = assert_problem(client.get(f"/api/v1/{area}", query_string={"page": page}), 422, "validation_failed")
        assert list(body["errors"]) == ["page"]
    body = assert_problem(client.get(f"/api/v1/{area}", query_string={"page_size": INT64}), 422, "validation_failed")
    assert list(body["errors"]) == ["page_size"]


@pytest.mark.parametrize("area", LISTS)
def test_the_last_page_allowed_is_an_empty_page(client, area):  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/{area}", query_string={"page": MAX_PAGE, "page_size": MAX_PAGE_SIZE})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["items"] == [] and response.json["page"] == MAX_PAGE


def test_the_page_bound_keeps_the_offset_within_64_bits():
    assert 1 <= (MAX_PAGE - 1) * MAX_PAGE_SIZE < 2**63 - 1


def test_the_bounds_are_documented(client):  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").json
    [param] = spec["paths"]["/api/v1/invoices/{invoice_id}"]["parameters"]
    assert param["schema"]["minimum"] == 1 and param["schema"]["maximum"] in (2**31 - 1, 2**63 - 1)
    page = next(p for p in spec["paths"]["/api/v1/invoices"]["get"]["parameters"] if p["name"] == "page")
    assert page["schema"]["maximum"] == MAX_PAGE
    ids = spec["components"]["schemas"]["SendIn"]["properties"]["invoice_ids"]["items"]
    assert ids["minimum"] == 1 and ids["maximum"] in (2**31 - 1, 2**63 - 1)


# ------------------------------------------------------------ bodies nested too deeply


def test_a_body_nested_100000_deep_is_a_problem_not_a_500(client, caplog):  # type: ignore[no-untyped-def]
    deep = "[" * 100_000 + "]" * 100_000
    response = client.put("/api/v1/entities/e", data=deep, content_type="application/json")
    body = assert_problem(response, 400, "json_too_deep")
    assert "deep" in body["detail"]
    assert not [r for r in caplog.records if r.exc_info]


def test_a_value_nested_deeper_than_the_bound_is_refused_before_any_view(client):  # type: ignore[no-untyped-def]
    target: object = "x"
    for _ in range(500):  # json reads it; code that walks it recursively might not
        target = {"a": target}
    response = client.put("/api/v1/channels/c", json={"kind": "email", "target": target})
    assert_problem(response, 400, "json_too_deep")


# ------------------------------------------------------------ NUL, which PostgreSQL's text cannot hold


def test_a_nul_in_a_path_segment_is_not_found(client, world):  # type: ignore[no-untyped-def]
    for path in ("/api/v1/entities/at%00elier", "/api/v1/clients/x%00/balance", "/api/v1/jobs/%00"):
        assert_problem(client.get(path), 404, "not_found")
    assert_problem(client.put("/api/v1/entities/e%00", json={"name": "E"}), 404, "not_found")


def test_a_nul_in_a_query_is_refused_naming_the_field(client):  # type: ignore[no-untyped-def]
    body = assert_problem(client.get("/api/v1/outbox", query_string={"channel": "e\x00mail", "kind": "x"}), 422,
                          "validation_failed")
    assert list(body["errors"]) == ["channel"]


def test_a_nul_anywhere_in_a_body_is_refused_naming_its_path(client, finance, world):  # type: ignore[no-untyped-def]
    body = assert_problem(client.put("/api/v1/entities/e", json={"name": "E\x00"}), 422, "validation_failed")
    assert body["errors"] == {"name": ["Must not contain the NUL character (U+0000)."]}
    lines = [LINE, {**LINE, "description": "\x00"}]
    response = finance.post("/api/v1/invoices", json={
        "entity": "atelier", "client": "lumiere", "lines": lines, "note": "a\x00b"})
    assert sorted(assert_problem(response, 422, "validation_failed")["errors"]) == ["lines.1.description", "note"]
    response = client.put("/api/v1/channels/c", json={"kind": "email", "target": {"to": ["a@b.fr"], "k\x00": 1}})
    assert list(assert_problem(response, 422, "validation_failed")["errors"]) == ["target.k\x00"]
