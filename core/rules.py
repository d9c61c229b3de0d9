"""What an event means for billing.

The admins' mappings decide: which integration + PM project is which contract,
which statuses mean done, and (on each milestone) which tasks complete it.
Every function here is idempotent: applying the same event twice, or an older
event after a newer one, changes nothing the second time.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from decimal import Decimal
from typing import Any

from babel.numbers import format_percent
from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from . import audit
from .catalog import LOCALES
from .db import insert_ignoring_conflicts
from .errors import JalonError
from .events import (
    CoreEvent,
    Outcome,
    TaskCompleted,
    TaskDeleted,
    TaskEvent,
    TaskReopened,
    TaskTimeLogs,
    TimeLogChanged,
    TimeLogDeleted,
    TimeLogged,
)
from .invoicing import BUSINESS_TZ, LineSpec, cancel_draft, create_draft, issue
from .models import Integration, Invoice, Mapping, Milestone, TaskState, TimeEntry
from .money import Money

AUTO_ISSUE_ACTOR = "policy:auto_issue"


# The statements of the hot path are built once, with bound parameters: no
# statement construction (nor cache key computation) per event.
_INTEGRATION_BY_KEY = select(Integration).where(Integration.key == bindparam("key"))
_MAPPING = select(Mapping).where(Mapping.integration_id == bindparam("integration_id"),
                                 Mapping.pm_project == bindparam("project_ref"))
_TASK_STATE_LOCKED = (
    select(TaskState)
    .where(TaskState.integration_id == bindparam("integration_id"), TaskState.task_ref == bindparam("task_ref"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_TASK_STATE_INSERT = {
    name: insert_ignoring_conflicts(name, TaskState.__table__, index_elements=["integration_id", "task_ref"])
    .values(integration_id=bindparam("integration_id"), task_ref=bindparam("task_ref"), done=bindparam("done"),
            last_event_at=bindparam("last_event_at"))
    for name in ("postgresql", "sqlite")
}
_BOUND_MILESTONE = (
    select(Milestone)
    .where(Milestone.contract_id == bindparam("contract_id"), Milestone.task_ref == bindparam("task_ref"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_TIME_ENTRY_LOCKED = (
    select(TimeEntry)
    .where(TimeEntry.integration_id == bindparam("integration_id"), TimeEntry.worklog_ref == bindparam("worklog_ref"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_candidate_queries: dict[tuple[bool, bool], Any] = {}


def _candidates_query(labels: bool, task_type: bool):  # type: ignore[no-untyped-def]
    """The free milestones a completed task may take (one statement per shape of event)."""
    query = _candidate_queries.get((labels, task_type))
    if query is None:
        conditions = [Milestone.match_task_id == bindparam("task_ref")]
        if labels:
            conditions.append(Milestone.match_label.in_(bindparam("labels", expanding=True)))
        if task_type:  # "Milestone", "milestone": a task type as people type it
            conditions.append(func.lower(Milestone.match_task_type) == bindparam("task_type"))
        query = (
            select(Milestone)
            .where(
                Milestone.contract_id == bindparam("contract_id"),
                Milestone.status == "pending",
                Milestone.task_ref.is_(None),
                or_(*conditions),
            )
            .order_by(Milestone.position, Milestone.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        _candidate_queries[(labels, task_type)] = query
    return query


def find_mapping(session: Session, integration: Integration, project_ref: str,
                 parents: tuple[str, ...] = ()) -> Mapping | None:
    """The mapping of the project, or else of the first of its broader projects that has one."""
    for ref in (project_ref, *parents):
        found = session.execute(_MAPPING, {"integration_id": integration.id, "project_ref": ref}).scalar_one_or_none()
        if found is not None:
            return found
    return None


def apply_event(session: Session, event: CoreEvent) -> Outcome:
    """Apply one event in the caller's transaction and say what it did."""
    integration = session.execute(_INTEGRATION_BY_KEY, {"key": event.integration}).scalar_one_or_none()
    if integration is None:
        return Outcome(event, "ignored", f"unknown integration {event.integration!r}")
    if isinstance(event, TimeLogDeleted) and not event.project_ref:
        # a deletion that names no task (Jira's deleted-worklog feed): the ledger knows where it was
        known = session.execute(
            select(TimeEntry.project_ref, TimeEntry.task_ref)
            .where(TimeEntry.integration_id == integration.id, TimeEntry.worklog_ref == event.worklog_ref)
        ).first()
        if known is None:
            return Outcome(event, "ignored", f"worklog {event.worklog_ref} was never billed here")
        event = replace(event, project_ref=known.project_ref, task_ref=known.task_ref)
    if isinstance(event, TaskDeleted) and not event.project_ref:
        # a task the tool no longer shows (its project unknown): the milestone it completed knows
        bound = session.execute(
            select(Mapping.pm_project).join(Milestone, Milestone.contract_id == Mapping.contract_id)
            .where(Mapping.integration_id == integration.id, Milestone.task_ref == event.task_ref)
            .order_by(Mapping.id).limit(1)
        ).scalar_one_or_none()
        if bound is None:
            return Outcome(event, "ignored", f"task {event.task_ref} completed no milestone")
        event = replace(event, project_ref=bound)
    mapping = find_mapping(session, integration, event.project_ref, event.project_parents)
    if mapping is None:
        return Outcome(event, "ignored", f"project {event.project_ref!r} is not mapped to a contract")
    if isinstance(event, (TaskCompleted, TaskReopened)):
        if not _advance_task_state(session, integration, event, done=isinstance(event, TaskCompleted)):
            return Outcome(event, "ignored", "older than the last event applied to this task")
        if isinstance(event, TaskCompleted):
            return _task_completed(session, mapping, event)
        return _task_reopened(session, mapping, event)
    if isinstance(event, TaskDeleted):
        return _task_deleted(session, mapping, event)
    if isinstance(event, (TimeLogged, TimeLogChanged, TimeLogDeleted)):
        return _time_event(session, integration, mapping, event)
    if isinstance(event, TaskTimeLogs):
        return _time_listed(session, integration, event)
    raise TypeError(f"not a core event: {type(event).__name__}")


def _advance_task_state(session: Session, integration: Integration, event: TaskEvent, *, done: bool) -> bool:
    """Record the task's new state unless a newer event was already applied.

    The row is locked for the rest of the transaction, so two workers applying
    events of one task take turns.
    """
    dialect = "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"
    session.execute(
        _TASK_STATE_INSERT[dialect],
        {"integration_id": integration.id, "task_ref": event.task_ref, "done": done,
         "last_event_at": event.occurred_at},
    )
    state = session.execute(
        _TASK_STATE_LOCKED, {"integration_id": integration.id, "task_ref": event.task_ref}
    ).scalar_one()
    if event.occurred_at < state.last_event_at:
        return False
    # set only what changes: a state just inserted with these values leaves
    # nothing to flush (no UPDATE, no flush before the next query)
    if state.done != done:
        state.done = done
    if state.last_event_at != event.occurred_at:
        state.last_event_at = event.occurred_at
    return True


def _is_done_status(mapping: Mapping, status: str | None) -> bool:
    if not mapping.done_statuses:
        return True  # the source already said the task entered its done category
    wanted = {_status_key(s) for s in mapping.done_statuses}
    return _status_key(status or "") in wanted


def _status_key(status: str) -> str:
    """A status as people mean it: "Livré" typed with a composed or a combining accent,
    in any case, is one status."""
    return unicodedata.normalize("NFC", status).casefold().strip()


def _bound_milestone(session: Session, mapping: Mapping, task_ref: str) -> Milestone | None:
    return session.execute(
        _BOUND_MILESTONE, {"contract_id": mapping.contract_id, "task_ref": task_ref}
    ).scalar_one_or_none()


def _select_milestone(session: Session, mapping: Mapping, event: TaskCompleted) -> Milestone | None:
    """The milestone this task completes: its own if it is already bound, else the
    first free one whose selector matches (exact task id first, then label, then
    task type, in the contract's order)."""
    parameters: dict[str, Any] = {"contract_id": mapping.contract_id, "task_ref": event.task_ref}
    if event.labels:
        parameters["labels"] = list(event.labels)
    if event.task_type:
        parameters["task_type"] = event.task_type.lower()
    candidates = session.execute(
        _candidates_query(bool(event.labels), bool(event.task_type)), parameters
    ).scalars().all()
    for selector in ("match_task_id", "match_label", "match_task_type"):
        for milestone in candidates:
            value = getattr(milestone, selector)
            if value is None:
                continue
            if selector == "match_task_id" and value == event.task_ref:
                return milestone
            if selector == "match_label" and value in event.labels:
                return milestone
            if selector == "match_task_type" and value.lower() == (event.task_type or "").lower():
                return milestone
    return None


def _task_completed(session: Session, mapping: Mapping, event: TaskCompleted) -> Outcome:
    if not _is_done_status(mapping, event.status):
        return Outcome(event, "ignored", f"status {event.status!r} is not one of this mapping's done statuses")
    contract = mapping.contract
    if contract.kind != "fixed_price":
        return Outcome(event, "ignored", f"contract {contract.reference} is {contract.kind}: no milestones")
    milestone = _bound_milestone(session, mapping, event.task_ref)
    if milestone is not None and milestone.status != "pending":
        return Outcome(event, "unchanged", f"milestone {milestone.reference} is already {milestone.status}",
                       milestone_id=milestone.id)
    if milestone is None:
        milestone = _select_milestone(session, mapping, event)
    if milestone is None:
        return Outcome(event, "ignored", f"task {event.task_ref} is not a milestone of {contract.reference}")
    actor = _actor(event)
    milestone.status = "done"
    milestone.task_ref = event.task_ref
    milestone.task_url = event.task_url or milestone.task_url
    milestone.done_at = event.occurred_at
    milestone.last_event_at = event.occurred_at
    audit.record(
        session,
        actor=actor,
        action="milestone.done",
        subject=milestone,
        reason=f"task {event.task_ref} moved to {event.status or 'done'}",
        details={"task_ref": event.task_ref, "event_id": event.event_id},
    )
    invoice = create_draft(
        session,
        entity=contract.entity,
        client=contract.client,
        contract=contract,
        milestone=milestone,
        lines=[
            LineSpec(
                description=milestone_description(milestone),
                quantity=Decimal(1),
                unit_price=milestone.price().amount,
                unit="C62",
                vat=contract.vat,
            )
        ],
        actor=actor,
        service_date=event.occurred_at.astimezone(BUSINESS_TZ).date(),
        reason=f"milestone {milestone.reference} done",
    )
    if _auto_issue(session, invoice):
        return Outcome(event, "milestone_done",
                       f"milestone {milestone.reference} done, invoice {invoice.number} issued at once "
                       "(below the entity's auto-issue threshold)",
                       milestone_id=milestone.id, invoice_id=invoice.id,
                       extra={"auto_issued": True, "number": invoice.number})
    return Outcome(event, "milestone_done", f"milestone {milestone.reference} done, draft invoice created",
                   milestone_id=milestone.id, invoice_id=invoice.id)


# the second line of a milestone's invoice line: its place among the contract's
# milestones and, for a percentage, its share of the contract's total
_MILESTONE_SHARE = {
    "fr": ("Jalon {position}/{count}", "{place} — {percentage} de {total}"),
    "en": ("Milestone {position} of {count}", "{place} — {percentage} of {total}"),
}


def milestone_description(milestone: Milestone) -> str:
    """"Refonte du site — Maquettes validées" and, below, "Jalon 1/3 — 30 % de
    24 000,00 €", in the client's language: the client's accounts-payable team
    reads which step of which contract it pays, and how much of the whole."""
    contract = milestone.contract
    language = (contract.client.language or "fr")[:2].lower()
    language = language if language in LOCALES else "fr"
    place, share = _MILESTONE_SHARE[language]
    milestones = contract.milestones  # ordered by position
    place = place.format(position=milestones.index(milestone) + 1, count=len(milestones))
    if milestone.percentage is not None and contract.total_amount is not None:
        locale = LOCALES[language]
        place = share.format(
            place=place,
            percentage=format_percent(milestone.percentage / 100, locale=locale, decimal_quantization=False),
            total=Money(contract.total_amount, contract.currency).quantize().format(locale),
        )
    return f"{contract.name} — {milestone.name}\n{place}"


def _auto_issue(session: Session, invoice: Invoice) -> bool:
    """Issue the milestone's draft at once when the entity's policy says its
    total incl. VAT is too small to wait for an approval (strictly below
    ``auto_issue_below``, in the entity's currency). A draft the core refuses
    to issue now (a date out of order...) stays a draft for finance: the
    milestone is recorded whatever happens here."""
    entity = invoice.entity
    threshold = entity.auto_issue_below
    if threshold is None or invoice.currency != entity.currency or not invoice.total_gross < threshold:
        return False
    gross, limit = invoice.money(invoice.total_gross), invoice.money(threshold)
    try:
        with session.begin_nested():
            issue(session, invoice.id, actor=AUTO_ISSUE_ACTOR,
                  reason=f"auto-issue policy: total incl. VAT {gross} is below the entity's threshold {limit}")
    except JalonError as error:
        audit.record(session, actor=AUTO_ISSUE_ACTOR, action="invoice.auto_issue_refused", subject=invoice,
                     reason=f"{error.code}: {error.message}")
        return False
    return True


def _task_reopened(session: Session, mapping: Mapping, event: TaskReopened) -> Outcome:
    milestone = _bound_milestone(session, mapping, event.task_ref)
    if milestone is None or milestone.status == "pending":
        return Outcome(event, "ignored", f"task {event.task_ref} has no completed milestone")
    actor = _actor(event)
    milestone.last_event_at = event.occurred_at
    if milestone.status == "invoiced":
        audit.record(session, actor=actor, action="milestone.reopened_after_issue", subject=milestone,
                     reason=f"task {event.task_ref} reopened; its invoice is issued and stays so")
        return Outcome(event, "reopened_after_issue",
                       f"milestone {milestone.reference} reopened but already invoiced: finance must decide",
                       milestone_id=milestone.id)
    drafts = session.execute(
        select(Invoice).where(Invoice.milestone_id == milestone.id, Invoice.status == "draft")
    ).scalars().all()
    for draft in drafts:
        cancel_draft(session, draft, actor=actor, reason=f"task {event.task_ref} reopened")
    milestone.status = "pending"
    milestone.done_at = None
    audit.record(session, actor=actor, action="milestone.reopened", subject=milestone,
                 reason=f"task {event.task_ref} reopened")
    return Outcome(event, "draft_cancelled", f"milestone {milestone.reference} reopened, draft cancelled",
                   milestone_id=milestone.id, invoice_id=drafts[0].id if drafts else None)


def _task_deleted(session: Session, mapping: Mapping, event: TaskDeleted) -> Outcome:
    """Nothing billed is undone; a milestone whose task disappeared is worth a word to finance."""
    milestone = _bound_milestone(session, mapping, event.task_ref)
    if milestone is None:
        return Outcome(event, "ignored", f"task {event.task_ref} completed no milestone")
    audit.record(session, actor=_actor(event), action="milestone.task_deleted", subject=milestone,
                 reason=f"task {event.task_ref} deleted in the PM tool; billing data kept")
    live = session.execute(
        select(Invoice.id)
        .where(Invoice.milestone_id == milestone.id, Invoice.status.not_in(("cancelled", "credited")))
        .order_by(Invoice.id.desc())
    ).scalars().first()
    return Outcome(event, "task_deleted",
                   f"task {event.task_ref} of milestone {milestone.reference} deleted; billing data kept",
                   milestone_id=milestone.id, invoice_id=live)


def _time_event(
    session: Session, integration: Integration, mapping: Mapping, event: TimeLogged | TimeLogChanged | TimeLogDeleted
) -> Outcome:
    entry = session.execute(
        _TIME_ENTRY_LOCKED, {"integration_id": integration.id, "worklog_ref": event.worklog_ref}
    ).scalar_one_or_none()
    if entry is not None and entry.last_event_at is not None and event.occurred_at < entry.last_event_at:
        return Outcome(event, "ignored", "older than the last event applied to this worklog", time_entry_id=entry.id)
    actor = _actor(event)
    if isinstance(event, TimeLogDeleted):
        if entry is None:
            # a tombstone, so that a late "created" for this worklog bills nothing
            entry = _new_entry(session, integration, mapping, event, seconds=0)
        if entry.deleted:
            return Outcome(event, "unchanged", "worklog already deleted", time_entry_id=entry.id)
        before = entry.seconds
        entry.deleted = True
        entry.last_event_at = event.occurred_at
        audit.record(session, actor=actor, action="time_entry.deleted", subject=entry,
                     details={"seconds_before": before})
        return Outcome(event, "time_deleted", f"worklog {event.worklog_ref} deleted", time_entry_id=entry.id)
    if entry is None:
        entry = _new_entry(session, integration, mapping, event, seconds=event.seconds)
        entry.started_at = event.started_at
        entry.description = event.description
        entry.last_event_at = event.occurred_at
        audit.record(session, actor=actor, action="time_entry.logged", subject=entry,
                     details={"seconds": event.seconds, "task_ref": event.task_ref})
        return Outcome(event, "time_logged", f"{event.seconds} s logged on {event.task_ref}", time_entry_id=entry.id)
    if entry.deleted:
        return Outcome(event, "ignored", "worklog was deleted", time_entry_id=entry.id)
    if (entry.seconds, entry.started_at, entry.description) == (event.seconds, event.started_at, event.description):
        entry.last_event_at = event.occurred_at
        return Outcome(event, "unchanged", "worklog already has these values", time_entry_id=entry.id)
    before = entry.seconds
    entry.seconds = event.seconds
    entry.started_at = event.started_at or entry.started_at
    entry.description = event.description if event.description is not None else entry.description
    entry.person_ref = event.person_ref or entry.person_ref
    entry.last_event_at = event.occurred_at
    audit.record(session, actor=actor, action="time_entry.changed", subject=entry,
                 details={"seconds_before": before, "seconds": event.seconds})
    return Outcome(event, "time_changed", f"worklog {event.worklog_ref}: {before} s -> {event.seconds} s",
                   time_entry_id=entry.id, extra={"delta_seconds": event.seconds - before})


def _time_listed(session: Session, integration: Integration, event: TaskTimeLogs) -> Outcome:
    """The task's worklogs as the tool lists them: those of the ledger it no longer
    lists (and not changed since the list was taken) were deleted."""
    listed = set(event.worklog_refs)
    gone = session.execute(
        select(TimeEntry).where(TimeEntry.integration_id == integration.id, TimeEntry.task_ref == event.task_ref,
                                TimeEntry.deleted.is_(False))
        .order_by(TimeEntry.id).with_for_update()
    ).scalars().all()
    deleted = []
    for entry in gone:
        if entry.worklog_ref in listed or (entry.last_event_at is not None and entry.last_event_at > event.occurred_at):
            continue
        before, entry.deleted, entry.last_event_at = entry.seconds, True, event.occurred_at
        audit.record(session, actor=_actor(event), action="time_entry.deleted", subject=entry,
                     reason=f"no longer listed on task {event.task_ref}", details={"seconds_before": before})
        deleted.append(entry.worklog_ref)
    if not deleted:
        return Outcome(event, "unchanged", f"every worklog of {event.task_ref} still listed")
    return Outcome(event, "time_deleted", f"worklogs {', '.join(deleted)} of {event.task_ref} no longer listed: deleted",
                   extra={"deleted": deleted})


def _new_entry(session: Session, integration: Integration, mapping: Mapping, event, *, seconds: int) -> TimeEntry:  # type: ignore[no-untyped-def]
    entry = TimeEntry(
        integration_id=integration.id,
        worklog_ref=event.worklog_ref,
        contract_id=mapping.contract_id,
        project_ref=event.project_ref,
        task_ref=event.task_ref,
        person_ref=event.person_ref,
        seconds=seconds,
        deleted=False,
        last_event_at=event.occurred_at,
    )
    session.add(entry)
    session.flush()
    return entry


def _actor(event: TaskEvent) -> str:
    return f"{event.integration}:{event.actor}" if event.actor else event.integration
