"""``jalon demo``: the one-command tour of the product, on a fresh SQLite file.

It applies the example configuration, then plays Jira: signed webhooks (a
milestone task moved to Done, the same delivery again, a worklog, a forged
one) sent over HTTP to the running app; the worker applies them (fetching the
worklog's issue from a local stand-in of Jira's REST API); finance's
notification and the comment for Jira wait in the outbox. Finance approves the
draft with the one-click link of its notification, which issues it. A second
milestone task is completed in Jira with no webhook sent: the reconciliation
job asks Jira what changed and bills it through the inbox. Then ClickUp
(jalon.connector.demo.clickup_standin): a Milestone task moved to a custom
closed status, the duplicates ClickUp sends for it, time tracked and edited,
a forged delivery; the milestone is drafted (left for finance) and the
comment posted back to ClickUp's stand-in, through one 429. Then Bitrix24
(jalon.connector.demo.bitrix24_standin): a completion its outgoing webhook
reports three times, form-encoded with the application token, and a forged
one; the milestone is drafted (left for finance) and the comment posted back;
then the elapsed time Bitrix24 reports to no webhook, polled by the
reconcile.bitrix24 job within the portal's leaky bucket. A partial payment
arrives, and the invoice is printed. An invoice in English under the
reverse charge, and a credit note correcting part of it, are issued too,
then the kinds of invoice the French rules treat differently (a deposit and
its final invoice, one in pounds, an exempt one, one under the franchise, one
with disbursements: jalon.connector.demo.kinds); with
``--out DIR`` every invoice issued is written there as ``<number>.pdf``, the
stored Factur-X (EN 16931) document.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from jalon.connector.configfile import apply_file
from jalon.connector.demo.kinds import issue_kinds
from jalon.connector.plugin.manager import get_plugin_manager
from jalon.connector.runtime import use_secret_keys
from jalon.connector.settings import secret_keys
from jalon.core import balances, catalog, invoicing, payments, secrets
from jalon.core.catalog import LOCALES
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.errors import Conflict, Invalid
from jalon.core.invoicing import business_today
from jalon.core.migrate import upgrade
from jalon.core.models import Invoice
from jalon.core.money import Money
from jalon.core.terms import PaymentTerms

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jalon.yaml"
Echo = Callable[[str], None]


def run_demo(*, database_path: Path | None, config_path: Path | None, echo: Echo,
             out_dir: Path | None = None) -> str:
    """Run the tour; returns the milestone invoice's number."""
    config_path = config_path or EXAMPLE
    if not config_path.exists():
        raise Invalid(f"example configuration not found at {config_path}: pass --config", code="config_unreadable")
    if database_path is not None:
        if database_path.exists():
            raise Conflict(f"{database_path} exists: the demo runs on a fresh file", code="demo_database_exists")
        with _secret_keys(echo, kept=database_path):
            return _tour(database_path, config_path, echo, out_dir)
    with tempfile.TemporaryDirectory(prefix="jalon-demo-") as folder, _secret_keys(echo, kept=None):
        return _tour(Path(folder) / "demo.db", config_path, echo, out_dir)


@contextmanager
def _secret_keys(echo: Echo, *, kept: Path | None) -> Iterator[None]:
    """The demo's secrets are sealed with ``JALON_SECRET_KEYS`` when it is
    set; otherwise with a key made for the demo, forgotten afterwards (and
    said, when the database is kept: its secrets open with no other)."""
    if secret_keys() or secrets.keys_configured():
        use_secret_keys()
        yield
        return
    key = secrets.generate_key()
    secrets.configure_keys([key])
    try:
        if kept is not None:
            echo(f"Secrets in {kept} are sealed with a key made for this demo: "
                 f"JALON_SECRET_KEYS={key} opens them")
        yield
    finally:
        secrets.forget_keys()


def _tour(database_path: Path, config_path: Path, echo: Echo, out_dir: Path | None) -> str:
    engine = make_engine(f"sqlite:///{database_path}")
    try:
        return _steps(engine, config_path, echo, out_dir)
    finally:
        engine.dispose()


def _steps(engine, config_path: Path, echo: Echo, out_dir: Path | None) -> str:  # type: ignore[no-untyped-def]
    Session = make_sessionmaker(engine)  # noqa: N806
    step = _Steps(echo)

    step("Fresh database", f"{engine.url.database}")
    upgrade(engine)

    with unit_of_work(Session) as session:
        summary = apply_file(session, config_path, get_plugin_manager(), actor="demo")
    step("Configuration applied", config_path.name)
    for section, counts in summary.items():
        echo(f"    {section:<13} {counts['created']} created")

    invoice_id = _through_jira(engine, Session, step, echo)
    _through_clickup(engine, Session, step, echo)
    _through_bitrix24(engine, Session, step, echo)
    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None and invoice.number is not None
        number, gross = invoice.number, invoice.money(invoice.total_gross)

    partial = Money.of("3000.00", gross.currency)
    with unit_of_work(Session) as session:
        payments.record_payment(
            session,
            amount=partial,
            received_on=business_today(),
            allocations=[payments.Allocation(number)],
            actor="finance@atelier.example",
            reference="VIR LUMIERE INDUSTRIES " + number,
        )
    step("Bank transfer received", f"{partial.format('fr_FR')} on {number}")

    others = _reverse_charge_and_credit_note(Session, step)
    others += issue_kinds(Session, step)

    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        _print_invoice(session, invoice, echo)
    if out_dir is not None:
        _write_documents(Session, [invoice_id, *others], out_dir, echo)
    return number


def _reverse_charge_and_credit_note(Session, step: _Steps) -> list[int]:  # type: ignore[no-untyped-def]  # noqa: N803
    """Two more telling documents: an invoice to a client in another EU country,
    in English, under the reverse charge (no French VAT, the mention printed),
    and a credit note that corrects part of it."""
    with unit_of_work(Session) as session:
        contract = catalog.get_contract(session, "NW-TM-2026")
        draft = invoicing.create_draft(
            session, entity=contract.entity, client=contract.client, contract=contract, actor="finance@atelier.example",
            lines=[invoicing.LineSpec("Data platform support — senior engineer", Decimal("4"), Decimal("790.00"),
                                      "DAY", contract.vat)],
        )
        invoice = invoicing.issue(session, draft.id, actor="finance@atelier.example")
        invoice_id, number = invoice.id, invoice.number
        total = invoice.money(invoice.total_gross)
    step("An invoice in English under the reverse charge", f"{number} to {contract.client.name}, "
         f"{total.format('en_GB')} (VAT {contract.vat.category}: no French VAT charged)")
    with unit_of_work(Session) as session:
        note = invoicing.credit(session, invoice_id, actor="finance@atelier.example", reason="one day not worked",
                                lines=[invoicing.LineSpec("Data platform support — one day not worked", Decimal("1"),
                                                          Decimal("790.00"), "DAY", contract.vat)])
        note_id, note_number = note.id, note.number
        amount = note.money(note.total_gross)
    step("A credit note corrects it", f"{note_number}, {amount.format('en_GB')} on {number}")
    return [invoice_id, note_id]


def _write_documents(Session, invoice_ids: list[int], out_dir: Path, echo: Echo) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    """Each issued invoice's stored Factur-X PDF, as <number>.pdf."""
    from jalon.connector.outbox.rendering import ensure_documents

    out_dir.mkdir(parents=True, exist_ok=True)
    echo("")
    echo(f"Factur-X PDFs (EN 16931, the XML embedded) in {out_dir}:")
    for invoice_id in invoice_ids:
        document = ensure_documents(Session, invoice_id)["pdf"]
        path = out_dir / document.filename
        path.write_bytes(document.content)
        echo(f"    {path}")


def plain(value: Decimal) -> str:
    """A decimal as people write it: 20, 5.5, 1 (never 2E+1)."""
    text = format(value.normalize(), "f")
    return text


def _through_jira(engine, Session, step: _Steps, echo: Echo) -> int:  # type: ignore[no-untyped-def]  # noqa: N803
    """Jira sends signed webhooks to the running app; the worker applies them;
    finance's notification and the comment for Jira wait in the outbox.
    Returns the id of the draft invoice the milestone produced."""
    from dataclasses import replace

    import requests

    from jalon.connector.demo import jira_standin as demo_jira
    from jalon.connector.app import create_app
    from jalon.connector.settings import Settings
    from jalon.connector.relay.worker import process_once
    from jalon.core.catalog import get_integration, upsert_integration
    from jalon.core.models import Delivery

    now = datetime.now(timezone.utc)
    with demo_jira.jira_site() as jira:
        jira_site = jira.site
        with unit_of_work(Session) as session:
            integration = get_integration(session, "jira-atelier")
            secret = integration.secret or ""
            # the demo's Jira answers on this machine: allow the private address explicitly
            upsert_integration(session, {
                "key": integration.key, "source": integration.source, "name": integration.name,
                "base_url": jira_site, "settings": {**integration.settings, "allow_private_network": True},
            }, actor="demo")
        app = create_app(str(engine.url), settings=Settings.from_env(run_worker=False, run_scheduler=False))
        runtime = app.extensions["jalon"]
        try:
            with demo_jira.served(app) as jalon_url:
                runtime.settings = replace(runtime.settings, public_url=jalon_url)  # the links finance gets
                hook = f"{jalon_url}/hooks/jira/jira-atelier"
                done = demo_jira.signed(secret, "demo-delivery-1", demo_jira.issue_done(jira_site, now))
                answer = requests.post(hook, data=done[0], headers=done[1], timeout=10)
                step("Jira: WEB-1 moved to Done", f"POST /hooks/jira/jira-atelier -> {answer.status_code} "
                     f"{answer.json()['status']} (signed X-Hub-Signature, stored before the answer)")
                again = requests.post(hook, data=done[0], headers=done[1], timeout=10)
                step("Jira retries the same delivery", f"-> {again.status_code} {again.json()['status']}")
                worklog = demo_jira.signed(secret, "demo-delivery-2", demo_jira.worklog_created(now, 5400))
                logged = requests.post(hook, data=worklog[0], headers=worklog[1], timeout=10)
                step("Jira: Bob logged 1 h 30 on DATA-7", f"-> {logged.status_code} {logged.json()['status']}")
                forged = requests.post(hook, data=done[0], timeout=10, headers={
                    **done[1], "X-Hub-Signature": "sha256=" + "0" * 64, "X-Atlassian-Webhook-Identifier": "forged"})
                step("A forged delivery", f"-> {forged.status_code} {forged.json()['code']}, stored nowhere")
                handled = sum(process_once(runtime, owner="demo") for _ in range(5))
                approve_url = _report(runtime, step, echo, handled)
                if approve_url is None:
                    raise Invalid("the demo milestone's notification has no approval link", code="demo_failed")
                _approve(approve_url, jalon_url, step)
                _reconcile(runtime, jira, step)
            with unit_of_work(runtime.sessionmaker) as session:
                deliveries = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
                drafts = [d for d in deliveries if d.outcomes and d.outcomes[0].get("invoice_id")]
        finally:
            runtime.dispose()
    if not drafts:
        raise Invalid("the demo milestone was not drafted", code="demo_failed")
    return int(drafts[0].outcomes[0]["invoice_id"])


def _through_clickup(engine, sessions, step: _Steps, echo: Echo) -> None:  # type: ignore[no-untyped-def]
    """ClickUp sends signed webhooks to the running app: a Milestone task moved
    to the custom closed status « Livré » (with the generic taskUpdated ClickUp
    sends beside it, and a retry: one change, one delivery), time tracked then
    edited (milliseconds, as strings), and a forged one. The worker applies
    them, fetching each task from a local stand-in of ClickUp's REST API for
    its list, folder, space and type; the milestone is drafted (and left for
    finance: not issued here), and the dispatcher posts the comment back to
    ClickUp, waiting once when ClickUp says the token's quota is spent."""
    import time
    from dataclasses import replace
    from datetime import UTC, timedelta

    import requests
    from jalon.connector.app import create_app
    from jalon.connector.demo import clickup_standin as demo_clickup
    from jalon.connector.demo.jira_standin import served
    from jalon.connector.outbox.dispatcher import send_these
    from jalon.connector.relay.worker import process_once
    from jalon.connector.settings import Settings
    from jalon.core.catalog import get_integration, upsert_integration
    from jalon.core.models import Delivery, OutboxMessage, TimeEntry

    key = "clickup-atelier"
    now = datetime.now(UTC)
    moved_at, tracked_at, edited_at = (now - timedelta(minutes=m) for m in (20, 10, 2))
    with demo_clickup.clickup_site() as clickup:
        with unit_of_work(sessions) as session:
            integration = get_integration(session, key)
            secret, integration_id = integration.secret or "", integration.id
            # the demo's ClickUp answers on this machine: allow the private address explicitly
            upsert_integration(session, {
                "key": integration.key, "source": integration.source, "name": integration.name,
                "base_url": clickup.api, "settings": {**integration.settings, "allow_private_network": True},
            }, actor="demo")
            seen = session.scalar(select(func.max(OutboxMessage.id))) or 0
        app = create_app(str(engine.url), settings=Settings.from_env(run_worker=False, run_scheduler=False))
        runtime = app.extensions["jalon"]
        try:
            with served(app) as jalon_url:
                runtime.settings = replace(runtime.settings, public_url=jalon_url)
                hook = f"{jalon_url}/hooks/clickup/{key}"

                def send(payload: dict, **headers: str) -> requests.Response:  # type: ignore[type-arg]
                    body, signed = demo_clickup.signed(secret, payload)
                    return requests.post(hook, data=body, headers={**signed, **headers}, timeout=10)

                milestone = clickup.tasks[demo_clickup.MILESTONE_TASK_ID]
                support = clickup.tasks[demo_clickup.SUPPORT_TASK_ID]
                clickup.complete(milestone["id"], moved_at)
                change = demo_clickup.status_updated(moved_at)
                moved = send(change)
                step(f"ClickUp: the Milestone task « {milestone['name']} » ({milestone['id']}, list "
                     f"{demo_clickup.APP_LIST_ID}) moved to « Livré »", f"POST /hooks/clickup/{key} -> "
                     f"{moved.status_code} {moved.json()['status']} (signed X-Signature; « Livré » is a custom "
                     "status of type closed)")
                generic = send(demo_clickup.as_task_updated(change))
                step("ClickUp's generic taskUpdated for the same change", f"-> {generic.status_code} "
                     f"{generic.json()['status']} (the same history item: one change, one delivery)")
                again = send(change)
                step("ClickUp retries the status delivery", f"-> {again.status_code} {again.json()['status']}")
                interval = "4215000000000000101"
                start = tracked_at - timedelta(hours=1, minutes=30)
                clickup.track(interval, support["id"], start=start, spent_ms=5_400_000)
                tracked = send(demo_clickup.time_tracked("created", tracked_at, interval_id=interval, start=start,
                                                         spent_ms=5_400_000, history_id="4212000000000000102"))
                step(f"ClickUp: Bob tracked 1 h 30 on « {support['name']} » (list {demo_clickup.SUPPORT_LIST_ID}, "
                     f"space {demo_clickup.SPACE_ID})", f"-> {tracked.status_code} {tracked.json()['status']} "
                     '("time": "5400000": milliseconds, as a string)')
                clickup.track(interval, support["id"], start=start, spent_ms=7_200_000)
                edited = send(demo_clickup.time_tracked("edited", edited_at, interval_id=interval, start=start,
                                                        spent_ms=7_200_000, previous_ms=5_400_000,
                                                        history_id="4212000000000000103"))
                step("ClickUp: Bob edits it to 2 h", f"-> {edited.status_code} {edited.json()['status']} "
                     "(Time Tracking Edited)")
                forged = send(change, **{"X-Signature": "0" * 64})
                step("A forged ClickUp delivery", f"-> {forged.status_code} {forged.json()['code']}, stored nowhere")
                handled = sum(process_once(runtime, owner="demo") for _ in range(5))
                comment_id = _clickup_report(runtime, integration_id, seen, clickup, step, echo, handled)
                if comment_id is None:
                    raise Invalid("the demo's ClickUp milestone left no comment for ClickUp", code="demo_failed")
                clickup.rate_limit()  # ClickUp counts requests per token: this one is over the quota
                started = time.monotonic()
                status = send_these(runtime, [comment_id], owner="demo").get(comment_id)
                waited = time.monotonic() - started
                posted = clickup.calls("POST", "task/")
                with unit_of_work(runtime.sessionmaker) as session:
                    message = session.get(OutboxMessage, comment_id)
                    external = message.external_id if message is not None else None
                tries = f"{len(posted)} tries" if len(posted) != 1 else "1 try"
                step("The dispatcher posts it to ClickUp", f"POST {posted[-1].path if posted else '(nothing)'}: "
                     f"429 at first (the token's quota; X-RateLimit-Reset says when it comes back), the client "
                     f"waited and sent it again: {status}, comment {external} ({tries}, {waited:.1f} s)")
        finally:
            runtime.dispose()
    with unit_of_work(sessions) as session:
        if not session.execute(select(TimeEntry).where(TimeEntry.integration_id == integration_id)).first():
            raise Invalid("the demo's ClickUp time was not logged", code="demo_failed")
        if not session.execute(select(Delivery).where(Delivery.integration_id == integration_id)).first():
            raise Invalid("the demo's ClickUp deliveries were not stored", code="demo_failed")


def _through_bitrix24(engine, sessions, step: _Steps, echo: Echo) -> None:  # type: ignore[no-untyped-def]
    """Bitrix24's outgoing webhook posts form-encoded deliveries with PHP
    bracket keys, carrying only the task's id and the application token (no
    signature, no delivery id, never retried): one completion reported three
    times, and a forged one. The worker reads the task from a local stand-in
    of the portal's REST API through the inbound webhook; the milestone is
    drafted (left for finance: not issued here) and the comment posted back.
    Elapsed time comes with no event at all: the reconcile.bitrix24 job polls
    it (batches of 50 sub-queries, within the portal's leaky bucket)."""
    from dataclasses import replace
    from datetime import UTC, timedelta

    import requests
    from jalon.connector.app import create_app
    from jalon.connector.demo import bitrix24_standin as demo_bitrix24
    from jalon.connector.demo.jira_standin import served
    from jalon.connector.jobs.reconcile import reconcile_source
    from jalon.connector.outbox.dispatcher import send_these
    from jalon.connector.relay.worker import process_once
    from jalon.connector.settings import Settings
    from jalon.core.catalog import get_integration, upsert_integration
    from jalon.core.models import Contract, Delivery, OutboxMessage, TimeEntry

    key = "bitrix24-atelier"
    now = datetime.now(UTC)
    closed_at, logged_from = now - timedelta(minutes=15), now - timedelta(hours=3)
    with demo_bitrix24.bitrix24_portal() as portal:
        with unit_of_work(sessions) as session:
            integration = get_integration(session, key)
            token, integration_id = integration.secret or "", integration.id
            # the demo's portal answers on this machine: allow the private address explicitly
            upsert_integration(session, {
                "key": integration.key, "source": integration.source, "name": integration.name,
                "base_url": portal.origin, "settings": {**integration.settings, "allow_private_network": True},
                "credentials": {**(integration.credentials or {}), "webhook_url": portal.webhook_url},
            }, actor="demo")
            seen = session.scalar(select(func.max(OutboxMessage.id))) or 0
        app = create_app(str(engine.url), settings=Settings.from_env(run_worker=False, run_scheduler=False))
        runtime = app.extensions["jalon"]
        try:
            with served(app) as jalon_url:
                runtime.settings = replace(runtime.settings, public_url=jalon_url)
                hook = f"{jalon_url}/hooks/bitrix24/{key}"

                def send(payload: dict[str, str]) -> requests.Response:
                    body, headers = demo_bitrix24.form(payload)
                    return requests.post(hook, data=body, headers=headers, timeout=10)

                task_id = demo_bitrix24.MILESTONE_TASK_ID
                milestone = portal.tasks[task_id]
                portal.complete(task_id, closed_at)
                # one completion, three ONTASKUPDATE: the status, the closing, the Kanban stage
                answers = [send(demo_bitrix24.task_updated(task_id, token=token, when=closed_at + timedelta(seconds=s)))
                           for s in (0, 0, 1)]
                said = ", ".join(f"{a.status_code} {a.json().get('status', a.json().get('code'))}" for a in answers)
                step(f"Bitrix24: task {task_id} « {milestone['TITLE']} » (group {demo_bitrix24.ERP_GROUP_ID}) "
                     "completed, reported three times", f"POST /hooks/bitrix24/{key} x3 -> {said} (ONTASKUPDATE, "
                     "form-encoded, only the task id and auth[application_token]: no signature, no delivery id)")
                forged = send(demo_bitrix24.task_updated(task_id, token="not-the-application-token"))
                step("A forged Bitrix24 delivery", f"-> {forged.status_code} {forged.json().get('code')}, stored "
                     "nowhere (auth[application_token] is not the integration's)")
                handled = sum(process_once(runtime, owner="demo") for _ in range(5))
                comment_id = _bitrix24_report(runtime, integration_id, seen, portal, step, echo, handled)
                if comment_id is not None:
                    status = send_these(runtime, [comment_id], owner="demo").get(comment_id)
                    with unit_of_work(runtime.sessionmaker) as session:
                        message = session.get(OutboxMessage, comment_id)
                        external = message.external_id if message is not None else None
                    step("The dispatcher posts it to Bitrix24", f"task.commentitem.add on task {task_id}: {status}, "
                         f"comment {external}")

                support = portal.tasks[demo_bitrix24.SUPPORT_TASK_ID]
                item = portal.log_time(support["ID"], 5400, start=logged_from, comment="Revue du schéma de données")
                step(f"Bitrix24: Bob logged 1 h 30 on task {support['ID']} « {support['TITLE']} » (group "
                     f"{demo_bitrix24.SUPPORT_GROUP_ID})", f"elapsed item {item}: no webhook arrives, Bitrix24 has "
                     "no event for elapsed time")
                before = portal.http_requests()
                found = reconcile_source(runtime, "bitrix24", now=datetime.now(UTC))["integrations"][key]
                calls = portal.http_requests() - before
                for _ in range(5):
                    if not process_once(runtime, owner="demo"):
                        break
                with unit_of_work(runtime.sessionmaker) as session:
                    polled = session.execute(select(Delivery).where(Delivery.integration_id == integration_id,
                                                                    Delivery.origin == "reconcile")
                                             .order_by(Delivery.id)).scalars().all()
                    effects = "; ".join(o.get("detail", "") for d in polled for o in d.outcomes)
                    entries = session.execute(
                        select(TimeEntry, Contract.reference).join(Contract, TimeEntry.contract_id == Contract.id)
                        .where(TimeEntry.integration_id == integration_id)).all()
                    ledger = [f"{e.task_ref} {e.seconds} s by {e.person_ref} on {ref} ({e.project_ref})"
                              for e, ref in entries if not e.deleted]
                methods = ", ".join(sorted({c.method for c in portal.calls(batched=True)}))
                step("The reconcile.bitrix24 job polled the elapsed time", f"{found['found']} event(s) in "
                     f"{calls} REST call(s) (batch: {methods}; the portal's bucket: 2 a second, bursts of 50, "
                     f"{sum(portal.rejected.values())} refused), applied by the worker: {effects}")
                for line in ledger:
                    echo(f"    time ledger: {line}")
        finally:
            runtime.dispose()
    with unit_of_work(sessions) as session:
        if not session.execute(select(TimeEntry).where(TimeEntry.integration_id == integration_id)).first():
            raise Invalid("the demo's Bitrix24 elapsed time was not logged", code="demo_failed")


def _bitrix24_report(runtime, integration_id: int, seen: int, portal, step: _Steps, echo: Echo,  # type: ignore[no-untyped-def]
                     handled: int) -> int | None:
    """What the worker did with Bitrix24's deliveries, and what waits in the
    outbox since; returns the id of the comment for Bitrix24."""
    from jalon.core.models import Delivery, OutboxMessage

    comment_id = None
    with unit_of_work(runtime.sessionmaker) as session:
        deliveries = session.execute(select(Delivery).where(Delivery.integration_id == integration_id)
                                     .order_by(Delivery.id)).scalars().all()
        effects = "; ".join(o.get("detail", "") for d in deliveries for o in d.outcomes)
        step("The worker applied them", f"{handled} deliveries: {effects}")
        asked = [call.method for call in portal.calls() if call.status == 200]
        counted = ", ".join(f"{method} x{asked.count(method)}" for method in dict.fromkeys(asked))
        echo(f"    asked the portal's REST API (inbound webhook) by the worker, not during the webhooks: {counted}")
        drafted = False
        for message in session.execute(select(OutboxMessage).where(OutboxMessage.id > seen)
                                       .order_by(OutboxMessage.id)).scalars():
            if message.kind == "milestone.done" and message.channel == "email":
                drafted = True
                step("Finance's notification (e-mail, in the outbox)", f"{message.payload.get('subject', '')} "
                     "(a draft: it waits for finance's approval)")
            elif message.kind == "comment" and message.integration_id == integration_id:
                step("The comment that goes back to Bitrix24", f"on task {message.destination.get('task_ref')}")
                echo(f"    {message.payload.get('text')}")
                comment_id = message.id
    if not drafted:
        raise Invalid("the demo's Bitrix24 milestone was not drafted", code="demo_failed")
    return comment_id


def _clickup_report(runtime, integration_id: int, seen: int, clickup, step: _Steps, echo: Echo,  # type: ignore[no-untyped-def]
                    handled: int) -> int | None:
    """What the worker did with ClickUp's deliveries, and what waits in the
    outbox since; returns the id of the comment for ClickUp."""
    from jalon.core.models import Contract, Delivery, OutboxMessage, TimeEntry

    comment_id = None
    with unit_of_work(runtime.sessionmaker) as session:
        deliveries = session.execute(select(Delivery).where(Delivery.integration_id == integration_id)
                                     .order_by(Delivery.id)).scalars().all()
        effects = "; ".join(o.get("detail", "") for d in deliveries for o in d.outcomes)
        step("The worker applied them", f"{handled} deliveries: {effects}")
        for entry, contract in session.execute(
                select(TimeEntry, Contract.reference).join(Contract, TimeEntry.contract_id == Contract.id)
                .where(TimeEntry.integration_id == integration_id)).all():
            echo(f"    time ledger: {entry.task_ref} {entry.seconds} s by {entry.person_ref} on {contract} "
                 f"({entry.project_ref}, under the mapping of space:9)")
        asked = ", ".join(f"{call.method} {call.path}" for call in clickup.calls("GET"))
        echo(f"    asked ClickUp's REST API by the worker, not during the webhooks: {asked}")
        messages = session.execute(select(OutboxMessage).where(OutboxMessage.id > seen)
                                   .order_by(OutboxMessage.id)).scalars().all()
        for message in messages:
            if message.kind == "milestone.done" and message.channel == "email":
                step("Finance's notification (e-mail, in the outbox)", f"{message.payload.get('subject', '')} "
                     "(a draft: it waits for finance's approval)")
            elif message.kind == "comment" and message.integration_id == integration_id:
                step("The comment that goes back to ClickUp", f"on {message.destination.get('task_ref')}")
                echo(f"    {message.payload.get('text')}")
                comment_id = message.id
    return comment_id


def _reconcile(runtime, jira, step: _Steps) -> None:  # type: ignore[no-untyped-def]
    """A completion no webhook reports (Data Center never retries a lost
    delivery): the reconciliation job asks Jira what changed and bills it,
    through the inbox like any delivery."""
    from jalon.connector.jobs.reconcile import reconcile_source
    from jalon.connector.relay.worker import process_once
    from jalon.core.models import Delivery

    jira.complete(datetime.now(timezone.utc), key="WEB-2", summary="Site en recette", labels=("jalon",))
    step("Jira: WEB-2 (label jalon) moved to Done while jalon was unreachable",
         "no webhook arrives, and Jira Data Center never retries one")
    found = reconcile_source(runtime, "jira", now=datetime.now(timezone.utc))["integrations"]["jira-atelier"]
    for _ in range(5):
        if not process_once(runtime, owner="demo"):
            break
    with unit_of_work(runtime.sessionmaker) as session:
        stored = session.execute(select(Delivery).where(Delivery.origin == "reconcile")
                                 .order_by(Delivery.id)).scalars().all()
        effects = "; ".join(o.get("detail", "") for d in stored for o in d.outcomes)
        names = ", ".join(sorted({d.event_name or "" for d in stored}))
    step("The reconcile.jira job asked Jira what changed",
         f"{found['found']} change(s), stored as deliveries of their own ({names}, in the delivery log) "
         f"and applied by the worker: {effects}")


def _report(runtime, step: _Steps, echo: Echo, handled: int) -> str | None:  # type: ignore[no-untyped-def]
    """What the worker did, and what waits in the outbox; returns the approval link."""
    from jalon.connector.outbox.notify import with_approval_link
    from jalon.core.models import Delivery, OutboxMessage, TimeEntry

    approve_url = None
    with unit_of_work(runtime.sessionmaker) as session:
        deliveries = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
        effects = "; ".join(o.get("detail", "") for d in deliveries for o in d.outcomes)
        step("The worker applied them", f"{handled} deliveries: {effects}")
        entry = session.execute(select(TimeEntry)).scalars().first()
        if entry is not None:
            echo(f"    time ledger: {entry.task_ref} {entry.seconds} s by {entry.person_ref} "
                 f"(the issue was fetched from Jira's REST API by the worker, not during the webhook)")
        messages = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        for message in messages:
            if message.kind == "milestone.done" and message.channel == "email":
                # the outbox holds no approval token: the link is made as the dispatcher sends the message
                sent, _ = with_approval_link(session, message.payload, runtime.settings)
                step("Finance's notification (e-mail, in the outbox)", sent.get("subject", ""))
                for line in str(sent.get("text", "")).splitlines():
                    echo(f"    {line}")
                approve_url = (sent.get("links") or {}).get("approve")
            elif message.kind == "comment":
                step("The comment that goes back to Jira", f"on {message.destination.get('task_ref')}")
                echo(f"    {message.payload.get('text')}")
    return approve_url


def _approve(approve_url: str, jalon_url: str, step: _Steps) -> None:
    """Finance opens the link of its e-mail, then clicks the button, as a browser would."""
    import re

    import requests

    shown = requests.get(approve_url, timeout=10)
    step("Finance opens the link of the e-mail", f"GET /approve/… -> {shown.status_code}: the draft and an "
         "« Approuver » button (opening the link changes nothing)")
    clicked = requests.post(approve_url, timeout=60, headers={"Origin": jalon_url, "Sec-Fetch-Site": "same-origin"})
    issued = re.search(r"numéro (\S+),", clicked.text)
    if clicked.status_code != 200 or issued is None:
        raise Invalid(f"the demo's approval failed: {clicked.status_code}", code="demo_failed")
    step("Finance clicks « Approuver »", f"POST -> {clicked.status_code}: invoice {issued.group(1)} issued "
         "(numbered now, frozen, its Factur-X PDF stored); the link cannot be used again")


class _Steps:
    def __init__(self, echo: Echo):
        self.echo = echo
        self.count = 0

    def __call__(self, title: str, detail: str) -> None:
        self.count += 1
        self.echo(f"[{self.count}] {title}: {detail}")


def _print_invoice(session, invoice: Invoice, echo: Echo) -> None:  # type: ignore[no-untyped-def]
    locale = LOCALES.get((invoice.buyer or {}).get("language", "fr"), LOCALES["en"])

    def fmt(amount) -> str:  # type: ignore[no-untyped-def]
        return invoice.money(amount).quantize().format(locale)

    totals = invoicing.invoice_totals(invoice)
    seller, buyer = invoice.seller or {}, invoice.buyer or {}
    rule = "-" * 72
    echo("")
    echo(rule)
    echo(f"FACTURE {invoice.number}".ljust(44) + f"issued {invoice.issue_date}   due {invoice.due_date}")
    echo(rule)
    echo(f"From  {seller.get('name')} ({seller.get('legal_form')}), SIREN {seller.get('siren')}, "
         f"TVA {seller.get('vat_number')}")
    echo(f"To    {buyer.get('name')}, SIREN {buyer.get('siren')}, TVA {buyer.get('vat_number')}")
    echo(f"      {buyer.get('address_line1')}, {buyer.get('postcode')} {buyer.get('city')}")
    if invoice.purchase_order_ref:
        echo(f"PO    {invoice.purchase_order_ref}")
    echo("")
    for line in invoice.lines:
        echo(f"  {line.description}")
        echo(f"  {'':<20} {plain(line.quantity):>6} x {fmt(line.unit_price):>14}"
             f"   VAT {plain(line.vat_rate):>4} %   {fmt(line.net_amount):>14}")
    echo("")
    for group in totals.groups:
        label = f"VAT {group.vat.category} {plain(group.vat.rate)} %"
        echo(f"  {label:<24} base {group.base.format(locale):>14}   VAT {group.tax.format(locale):>12}")
    echo(f"  {'Total excl. VAT':<50} {totals.net.format(locale):>18}")
    echo(f"  {'Total VAT':<50} {totals.vat.format(locale):>18}")
    echo(f"  {'Total incl. VAT':<50} {totals.gross.format(locale):>18}")
    paid = balances.paid_total(invoice)
    echo(f"  {'Paid':<50} {paid.format(locale):>18}")
    echo(f"  {'Open balance':<50} {balances.open_balance(session, invoice).format(locale):>18}")
    echo(rule)
    terms = PaymentTerms(**invoice.payment_terms) if invoice.payment_terms else invoice.client.payment_terms
    echo(f"terms: {terms.describe('en')}")
    echo(f"status: {invoice.status}")
    for balance in payments.client_balances(session, invoice.client):
        echo(f"client {invoice.client.name} owes {balance.balance.format(locale)} in all ({balance.currency})")
