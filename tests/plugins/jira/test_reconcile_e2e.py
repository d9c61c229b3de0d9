"""Reconciliation end to end, as an admin would see it: a running ``jalon
serve``, Jira Data Center-like on the company's own network (a stand-in on a
loopback address, the integration allowing private networks),
``jalon integrations connect jira`` registering the webhook there, then a
milestone completed in Jira that no webhook reports: the ``reconcile.jira``
job finds it, the delivery log shows it, it is billed once, and the comment
goes back to that same intranet Jira."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.cli import main
from jalon.connector.demo.jira_standin import JiraSite, jira_site
from jalon.core import tokens
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Invoice
from tests import factories
from tests.reliability.conftest import RelayServer, add_record_channel, wait_until

KEY = factories.INTEGRATION["key"]


@pytest.fixture
def jira() -> Iterator[JiraSite]:
    with jira_site() as site:
        yield site


@pytest.fixture
def server(db_url, tmp_path, jira) -> Iterator[tuple[RelayServer, str]]:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            factories.seed(session, integrations=[{**factories.INTEGRATION, "base_url": jira.site,
                                                   "settings": {"allow_private_network": True}}])
            add_record_channel(session)
            _, admin = tokens.create_token(session, name="admin", scope="admin", actor="test")
    finally:
        engine.dispose()
    relay = RelayServer(db_url, tmp_path, threads=4, extra_env={"JALON_RECONCILE_INTERVAL_SECONDS": "1"})
    relay.start()
    try:
        yield relay, admin
    finally:
        relay.stop()


def invoices(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        return list(session.execute(select(Invoice.status).order_by(Invoice.id)).scalars())


def found_by_reconciliation(relay: RelayServer, admin: str) -> list[dict]:
    answer = requests.get(f"{relay.url}/api/v1/deliveries", params={"page_size": 100},
                          headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    answer.raise_for_status()
    return [item for item in answer.json()["items"] if item["origin"] == "reconcile"]


@pytest.mark.slow
def test_a_completion_no_webhook_reported_is_billed_once_by_reconciliation(db_url, engine, jira, server) -> None:  # type: ignore[no-untyped-def]
    relay, admin = server
    connected = CliRunner().invoke(main, [
        "--database-url", db_url, "integrations", "connect", "jira", "--site", jira.site, "--key", KEY,
        "--email", "admin@atelier.example", "--api-token", "admin-token", "--public-url", relay.url])
    assert connected.exit_code == 0, connected.output
    [webhook] = jira.webhooks
    assert webhook["url"] == f"{relay.url}/hooks/jira/{KEY}" and webhook["secret"]

    jira.complete(datetime.now(timezone.utc) - timedelta(minutes=5))

    wait_until(lambda: any(item["status"] == "done" for item in found_by_reconciliation(relay, admin)),
               timeout=60, what="the completion found by reconciliation and applied")
    wait_until(lambda: jira.comments, timeout=30, what="the write-back comment on WEB-1")
    time.sleep(3)  # several more ticks of the one-second job find the same change again

    [found] = [item for item in found_by_reconciliation(relay, admin) if item["event_name"] != "reconcile:TaskReopened"]
    assert found["event_name"] == "reconcile:TaskCompleted" and found["status"] == "done"
    assert [outcome["effect"] for outcome in found["outcomes"]] == ["milestone_done"]
    assert invoices(engine) == ["draft"]
    assert [issue for issue, _ in jira.comments] == ["WEB-1"]
