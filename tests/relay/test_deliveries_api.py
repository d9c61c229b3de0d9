"""GET /api/v1/deliveries (any token), the raw body (admin only), and replay (admin)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from jalon.connector.relay.worker import claim, process_once
from jalon.core.models import AuditRecord, Delivery
from jalon.core.types import utcnow
from tests.api.support import assert_problem

from .conftest import SECRET, payload, post, token


@pytest.fixture
def admin(runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {token(runtime, 'admin')}"}


@pytest.fixture
def finance(runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {token(runtime, 'finance')}"}


@pytest.fixture
def inbox(app, runtime):  # type: ignore[no-untyped-def]
    """Delivery 1 done, 2 dead (unreadable), 3 ignored."""
    client = app.test_client()
    post(client, payload(), delivery="a")
    post(client, b"{broken", delivery="b")
    post(client, payload("comment.liked"), delivery="c")
    process_once(runtime, owner="w1")
    return client


def test_the_inbox_needs_a_token(inbox):  # type: ignore[no-untyped-def]
    assert_problem(inbox.get("/api/v1/deliveries"), 401, "unauthorized")


def test_finance_lists_the_dead_letters_without_bodies(inbox, finance):  # type: ignore[no-untyped-def]
    response = inbox.get("/api/v1/deliveries?status=dead", headers=finance)
    assert response.status_code == 200
    page = response.get_json()
    assert page["total"] == 1 and page["page"] == 1
    [dead] = page["items"]
    assert dead["id"] == 2 and dead["status"] == "dead" and dead["integration"] == "fake-atelier"
    assert dead["last_error"].startswith("Unreadable")
    assert "body" not in dead and "headers" not in dead


def test_the_list_filters_by_integration_and_source_and_pages(inbox, admin):  # type: ignore[no-untyped-def]
    def ids(query: str) -> list[int]:
        return [d["id"] for d in inbox.get(f"/api/v1/deliveries{query}", headers=admin).get_json()["items"]]

    assert ids("") == [3, 2, 1]
    assert ids("?integration=fake-atelier&source=fake") == [3, 2, 1]
    assert ids("?integration=elsewhere") == []
    assert ids("?source=other") == []
    assert ids("?status=ignored") == [3]
    assert ids("?page=2&page_size=2") == [1]


@pytest.mark.parametrize("query", ["?status=lost", "?page=0", "?page_size=1000"])
def test_bad_list_arguments_are_422(inbox, admin, query):  # type: ignore[no-untyped-def]
    assert_problem(inbox.get(f"/api/v1/deliveries{query}", headers=admin), 422, "validation_failed")


def test_an_admin_reads_a_raw_body_on_request(inbox, admin):  # type: ignore[no-untyped-def]
    plain = inbox.get("/api/v1/deliveries/2", headers=admin).get_json()
    assert plain["body"] is None and plain["headers"]["x-fake-delivery"] == "b"
    assert "authorization" not in plain["headers"]
    with_body = inbox.get("/api/v1/deliveries/2?include=body", headers=admin).get_json()
    assert with_body["body"] == "{broken"


def test_a_raw_body_never_shows_the_integrations_secret(inbox, admin):  # type: ignore[no-untyped-def]
    """A tool that sends its token in the body (Bitrix24's auth[application_token]): masked when shown."""
    post(inbox, payload(token=SECRET, form="auth%5Bapplication_token%5D=" + SECRET), delivery="d")
    body = inbox.get("/api/v1/deliveries/4?include=body", headers=admin).get_json()["body"]
    assert SECRET not in body and body.count("***") == 2


def test_finance_cannot_read_a_raw_body(inbox, finance):  # type: ignore[no-untyped-def]
    assert inbox.get("/api/v1/deliveries/2", headers=finance).status_code == 200
    assert_problem(inbox.get("/api/v1/deliveries/2?include=body", headers=finance), 403, "insufficient_scope")


@pytest.mark.parametrize("query", ["?include=secrets", "?include="])
def test_an_unknown_include_is_422(inbox, admin, query):  # type: ignore[no-untyped-def]
    assert_problem(inbox.get(f"/api/v1/deliveries/2{query}", headers=admin), 422, "validation_failed")


def test_an_unknown_delivery_is_404(inbox, admin):  # type: ignore[no-untyped-def]
    assert_problem(inbox.get("/api/v1/deliveries/99", headers=admin), 404, "delivery_not_found")
    assert_problem(inbox.post("/api/v1/deliveries/99/replay", headers=admin), 404, "delivery_not_found")


def test_an_admin_replays_a_dead_letter_and_it_is_audited(inbox, runtime, admin):  # type: ignore[no-untyped-def]
    response = inbox.post("/api/v1/deliveries/2/replay", headers=admin, json={"reason": "parser fixed"})
    assert response.status_code == 200
    replayed = response.get_json()
    assert (replayed["status"], replayed["attempts"]) == ("pending", 0)
    with runtime.sessionmaker() as session:
        [record] = session.execute(select(AuditRecord).where(AuditRecord.action == "delivery.replayed")).scalars()
    assert (record.subject_type, record.subject_id, record.reason) == ("deliveries", "2", "parser fixed")
    assert record.actor.startswith("token:") and record.details["status"] == "dead"


def test_finance_cannot_replay(inbox, finance):  # type: ignore[no-untyped-def]
    assert_problem(inbox.post("/api/v1/deliveries/2/replay", headers=finance), 403, "insufficient_scope")


def test_a_replay_body_is_checked(inbox, admin):  # type: ignore[no-untyped-def]
    assert_problem(inbox.post("/api/v1/deliveries/2/replay", headers=admin, json={"why": "x"}),
                   422, "validation_failed")
    assert_problem(inbox.post("/api/v1/deliveries/2/replay", headers={**admin, "Content-Type": "application/json"},
                              data="{"), 400, "malformed_json")


def test_a_pruned_delivery_cannot_be_replayed(inbox, runtime, admin):  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session, session.begin():
        pruned = session.get(Delivery, 1)
        pruned.body, pruned.body_pruned_at = None, utcnow()
    assert_problem(inbox.post("/api/v1/deliveries/1/replay", headers=admin), 409, "delivery_body_pruned")


def test_a_delivery_being_processed_cannot_be_replayed(app, runtime, admin):  # type: ignore[no-untyped-def]
    client = app.test_client()
    post(client, payload())
    claim(runtime, owner="busy", limit=1)
    assert_problem(client.post("/api/v1/deliveries/1/replay", headers=admin), 409, "delivery_in_progress")
    # once its lease expired, it can
    with runtime.sessionmaker() as session, session.begin():
        session.get(Delivery, 1).lease_expires_at = utcnow() - timedelta(seconds=1)
    assert client.post("/api/v1/deliveries/1/replay", headers=admin).status_code == 200


def test_the_deliveries_endpoints_are_in_the_openapi_document(app):  # type: ignore[no-untyped-def]
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/deliveries", "/api/v1/deliveries/{delivery_id}",
            "/api/v1/deliveries/{delivery_id}/replay"} <= set(paths)
