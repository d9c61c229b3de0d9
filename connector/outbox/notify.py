"""What the project and finance hear when billing acts: outbox messages
derived from the core's outcomes, in the same transaction.

Event names a channel may subscribe to (``NotificationChannel.events``; an
empty list means all of them):

* ``milestone.done``: a milestone is done and its draft invoice exists, with
  the amount, the client, the contract, the project, the milestone, the task
  link and a one-click link to approve it (``{public_url}/approve/<token>``).
  The link is a capability, so the outbox never holds it: the message stores
  ``approval: {"invoice_id": ...}`` and shows ``{public_url}/approve/…`` where
  the link goes; the dispatcher makes the link (an
  :class:`~jalon.core.models.ApprovalLink`, of which only the token's digest
  is stored) when it claims the message to send it, and the text, the HTML,
  ``links`` and ``data`` the channel gets are rendered again with it
  (:func:`with_approval_link`). When the entity's auto-issue policy issued the
  invoice at once, the message says so, with its number, and has no link. The
  PM task also gets a comment (a write-back through the source plugin) saying
  a draft invoice exists and whether finance was told (no enabled channel
  subscribed to ``milestone.done``: the comment says no notification was
  sent), or that the invoice is issued.
* ``milestone.reopened_after_issue``: a task was reopened but its invoice is
  already issued: finance must decide (a credit note, or nothing).
* ``invoice.draft_cancelled``: a task was reopened and the draft it had caused
  was cancelled.
* ``milestone.task_deleted``: the task that completed a milestone was deleted
  in the PM tool; nothing is undone, finance decides.

When a milestone's invoice is issued, and when it is fully paid, the PM task
gets a comment too (:func:`on_invoice_issued`, :func:`on_invoice_paid`, called
by the API in the transaction that issues or records the payment; keys
``comment:invoice.issued:<invoice id>`` and ``comment:invoice.paid:<invoice id>``).

A write-back goes where the source plugin says (``jalon_source_comment_targets``,
asked when it is queued, see :func:`comment_targets`): to the task itself when
the plugin does not say, nowhere for something that cannot receive a comment
(a Jira version), else one comment per task named, each keyed
``<key>@<task>``.

Each message's idempotency key is derived from its cause (the invoice, or the
milestone and the event's time) and the channel, so a replayed delivery queues
nothing new. Texts are French unless the channel's target says
``language: en``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jalon.core import approval
from jalon.core.catalog import LOCALES
from jalon.core.events import Outcome
from jalon.core.money import Money
from jalon.core.models import Integration, Invoice, Milestone, NotificationChannel, TaskState
from jalon.core.models import Mapping as ProjectMapping

from jalon.connector.outbox.enqueue import enqueue
from jalon.connector.plugin.types import IntegrationView
from jalon.connector.runtime import SESSION_PLUGINS
from jalon.connector.settings import Settings

if TYPE_CHECKING:
    from jalon.connector.plugin.manager import PluginManager

MILESTONE_DONE = "milestone.done"
# the texts of a milestone.done whose invoice the auto-issue policy issued at once
AUTO_ISSUED = "milestone.done:auto_issued"
REOPENED_AFTER_ISSUE = "milestone.reopened_after_issue"
DRAFT_CANCELLED = "invoice.draft_cancelled"
TASK_DELETED = "milestone.task_deleted"
EVENTS = (MILESTONE_DONE, REOPENED_AFTER_ISSUE, DRAFT_CANCELLED, TASK_DELETED)
COMMENT = "comment"
# where the approval link goes in a stored message: made when the message is sent, never stored
APPROVE_PATH = "/approve/"
LINK_MADE_WHEN_SENT = "…"
# the comment of a draft when no enabled channel receives milestone.done: finance was told nothing
COMMENT_UNTOLD = "comment:untold"
KEY_LENGTH = 200  # of OutboxMessage.idempotency_key
# write-backs only (no channel event): the PM task hears when its milestone's invoice moves on
INVOICE_ISSUED = "invoice.issued"
INVOICE_PAID = "invoice.paid"

EFFECT_EVENTS = {
    "milestone_done": MILESTONE_DONE,
    "reopened_after_issue": REOPENED_AFTER_ISSUE,
    "draft_cancelled": DRAFT_CANCELLED,
    "task_deleted": TASK_DELETED,
}

LABELS = {
    "fr": {
        "amount": "Montant", "client": "Client", "contract": "Contrat", "project": "Projet",
        "milestone": "Jalon", "task": "Tâche", "approve": "Approuver", "invoice": "Facture",
        "net": "HT", "gross": "TTC",
        MILESTONE_DONE: ("Jalon terminé : {contract} — {milestone} ({amount})",
                         "Le jalon « {milestone} » du contrat {reference} est terminé : "
                         "une facture brouillon de {amount} attend votre approbation."),
        AUTO_ISSUED: ("Jalon facturé : {contract} — {milestone} ({amount})",
                      "Le jalon « {milestone} » du contrat {reference} est terminé : la facture {invoice} "
                      "de {amount} a été émise aussitôt, son total TTC étant sous le seuil d'émission "
                      "automatique de l'entité."),
        REOPENED_AFTER_ISSUE: ("Tâche rouverte après facturation : {contract} — {milestone}",
                               "La tâche {task} a été rouverte alors que la facture {invoice} du jalon "
                               "« {milestone} » est déjà émise. À la finance de décider (avoir ou rien)."),
        DRAFT_CANCELLED: ("Brouillon annulé : {contract} — {milestone}",
                          "La tâche {task} a été rouverte : le jalon « {milestone} » redevient en attente "
                          "et sa facture brouillon est annulée."),
        TASK_DELETED: ("Tâche supprimée : {contract} — {milestone}",
                       "La tâche {task} du jalon « {milestone} » a été supprimée dans l'outil de gestion de "
                       "projet. Rien n'est annulé côté facturation : à la finance de décider."),
        COMMENT: "jalon : le jalon « {milestone} » ({reference}) est terminé ; une facture brouillon a été "
                 "créée et la finance est prévenue.",
        COMMENT_UNTOLD: "jalon : le jalon « {milestone} » ({reference}) est terminé ; une facture brouillon a "
                        "été créée, mais aucune notification n'a été envoyée à la finance (aucun canal "
                        "configuré).",
        INVOICE_ISSUED: "jalon : la facture {number} du jalon « {milestone} » ({reference}) est émise.",
        INVOICE_PAID: "jalon : la facture {number} du jalon « {milestone} » ({reference}) est payée.",
    },
    "en": {
        "amount": "Amount", "client": "Client", "contract": "Contract", "project": "Project",
        "milestone": "Milestone", "task": "Task", "approve": "Approve", "invoice": "Invoice",
        "net": "excl. VAT", "gross": "incl. VAT",
        MILESTONE_DONE: ("Milestone done: {contract} — {milestone} ({amount})",
                         "Milestone “{milestone}” of contract {reference} is done: "
                         "a draft invoice of {amount} awaits your approval."),
        AUTO_ISSUED: ("Milestone invoiced: {contract} — {milestone} ({amount})",
                      "Milestone “{milestone}” of contract {reference} is done: invoice {invoice} of {amount} "
                      "was issued at once, its total incl. VAT being below the entity's auto-issue threshold."),
        REOPENED_AFTER_ISSUE: ("Task reopened after invoicing: {contract} — {milestone}",
                               "Task {task} was reopened but invoice {invoice} of milestone “{milestone}” "
                               "is already issued. Finance must decide (a credit note, or nothing)."),
        DRAFT_CANCELLED: ("Draft cancelled: {contract} — {milestone}",
                          "Task {task} was reopened: milestone “{milestone}” is pending again and its "
                          "draft invoice is cancelled."),
        TASK_DELETED: ("Task deleted: {contract} — {milestone}",
                       "Task {task} of milestone “{milestone}” was deleted in the project tool. Nothing is "
                       "undone in billing: finance decides."),
        COMMENT: "jalon: milestone “{milestone}” ({reference}) is done; a draft invoice was created and "
                 "finance was told.",
        COMMENT_UNTOLD: "jalon: milestone “{milestone}” ({reference}) is done; a draft invoice was created, but "
                        "no notification was sent to finance (no channel configured).",
        INVOICE_ISSUED: "jalon: invoice {number} of milestone “{milestone}” ({reference}) is issued.",
        INVOICE_PAID: "jalon: invoice {number} of milestone “{milestone}” ({reference}) is paid.",
    },
}


def on_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    integration: Integration,
    settings: Settings,
    delivery_id: int | None = None,
    pm: PluginManager | None = None,
) -> int:
    """Queue the notifications and write-backs these outcomes call for, in the
    caller's transaction; return how many messages were newly queued.

    ``pm`` says where write-backs go (:func:`comment_targets`); by default the
    plugin manager of the runtime whose sessionmaker made ``session``."""
    queued = 0
    for outcome in outcomes:
        event = EFFECT_EVENTS.get(outcome.effect)
        if event is None or outcome.milestone_id is None:
            continue
        milestone = session.get(Milestone, outcome.milestone_id)
        if milestone is None:
            continue
        invoice = _invoice_of(session, outcome, milestone)
        facts = _facts(outcome, milestone, invoice)
        cause = _cause(event, outcome, milestone, invoice)
        approvable = event == MILESTONE_DONE and invoice is not None and invoice.is_draft
        channels = subscribed(session, event)
        for channel in channels:
            language = str((channel.target or {}).get("language") or "fr")
            message = enqueue(
                session,
                channel=channel.kind,
                kind=event,
                idempotency_key=f"{cause}:{channel.key}",
                destination={"channel": channel.key},
                payload=_payload(event, facts, language, settings if approvable else None),
                channel_id=channel.id,
                delivery_id=delivery_id,
                invoice_id=invoice.id if invoice is not None else None,
            )
            queued += message in session.new
        if event == MILESTONE_DONE and milestone.task_ref:
            issued = invoice is not None and invoice.number is not None
            # the draft's comment says whether finance was told: only if a channel receives milestone.done
            said = INVOICE_ISSUED if issued else COMMENT if channels else COMMENT_UNTOLD
            text = LABELS["fr"][said].format(
                milestone=milestone.name, reference=milestone.reference, number=invoice and invoice.number)
            queued += _comments(
                session, pm, integration, key=f"{COMMENT}:{cause}", task_ref=milestone.task_ref,
                project_ref=facts["project"], text=text, task_url=milestone.task_url,
                destination={"integration": integration.key, "project_ref": facts["project"]},
                delivery_id=delivery_id,
            )
    return queued


def comment_targets(
    session: Session,
    integration: Integration,
    task_ref: str,
    project_ref: str | None,
    *,
    pm: PluginManager | None = None,
) -> list[str]:
    """The tasks a write-back about ``task_ref`` goes to, as the source plugin
    says (``jalon_source_comment_targets``, in the caller's transaction): the
    task itself when it does not say, ``[]`` for nowhere. ``pm`` defaults to
    the plugin manager of the runtime that made ``session``; without one, or
    without a plugin for the source, the task itself."""
    pm = pm if pm is not None else session.info.get(SESSION_PLUGINS)
    hooks = pm.source(integration.source) if pm is not None else None
    if hooks is None:
        return [task_ref]
    answer = hooks.jalon_source_comment_targets(
        source=integration.source, integration=_view(integration), task_ref=task_ref, project_ref=project_ref)
    if answer is None:
        return [task_ref]
    targets = None if isinstance(answer, (str, bytes)) else list(answer)
    if targets is None or not all(isinstance(t, str) and t for t in targets):
        raise TypeError(f"jalon_source_comment_targets answered {answer!r} for {task_ref!r}, "
                        "not a list of task references")
    return list(dict.fromkeys(targets))


def _view(integration: Integration) -> IntegrationView:
    """What the plugin is told of the integration to say where a write-back
    goes: no secret and no credential (it makes no call)."""
    return IntegrationView(key=integration.key, source=integration.source, name=integration.name,
                           base_url=integration.base_url,
                           settings=MappingProxyType(dict(integration.settings or {})))


def target_key(key: str, task_ref: str, target: str) -> str:
    """The idempotency key of a write-back's comment on ``target``: ``key``
    itself on the task, ``<key>@<target>`` elsewhere (the target's SHA-256
    when that would pass the 200 characters of a key)."""
    if target == task_ref:
        return key
    keyed = f"{key}@{target}"
    if len(keyed) <= KEY_LENGTH:
        return keyed
    return f"{key}@sha256:{hashlib.sha256(target.encode()).hexdigest()[:40]}"


def _comments(
    session: Session,
    pm: PluginManager | None,
    integration: Integration,
    *,
    key: str,
    task_ref: str,
    project_ref: str | None,
    text: str,
    task_url: str | None,
    destination: dict[str, Any],
    delivery_id: int | None = None,
) -> int:
    """Queue the comment about ``task_ref`` on each task the plugin names;
    how many were newly queued."""
    queued = 0
    for target in comment_targets(session, integration, task_ref, project_ref, pm=pm):
        message = enqueue(
            session,
            channel=integration.source,
            kind=COMMENT,
            idempotency_key=target_key(key, task_ref, target),
            destination={**destination, "task_ref": target},
            payload={"text": text, "task_url": task_url if target == task_ref else None},
            integration_id=integration.id,
            delivery_id=delivery_id,
        )
        queued += message in session.new
    return queued


def _payload(event: str, facts: dict[str, Any], language: str, approvable: Settings | None
             ) -> Callable[[], dict[str, Any]]:
    """The stored payload. A draft's (``approvable``: the settings) names its
    invoice under ``approval`` and shows where the link goes, without a token."""
    def make() -> dict[str, Any]:
        if approvable is None:
            return render(event, facts, language)
        approve_url = f"{approvable.public_url.rstrip('/')}{APPROVE_PATH}{LINK_MADE_WHEN_SENT}"
        payload = render(event, {**facts, "approve_url": approve_url}, language)
        payload["approval"] = {"invoice_id": facts["invoice"]["id"]}
        return payload

    return make


def with_approval_link(session: Session, payload: Mapping[str, Any], settings: Settings, *,
                       now: datetime | None = None) -> tuple[dict[str, Any], str | None]:
    """The payload a channel sends, and the token of its approval link: for a
    message naming an ``approval``, a new link for its invoice (in the
    caller's transaction, valid ``settings.approval_link_hours`` from ``now``)
    and the message rendered again with it; without a link when the invoice
    is no longer a draft. Other payloads are returned as they are, with None.

    Called by the dispatcher as it claims the message: every send (a retry
    too) carries a link of its own, each usable once, and whichever is used
    first issues the invoice (the others then say it is no longer a draft)."""
    reference = payload.get("approval")
    if not isinstance(reference, Mapping):
        return dict(payload), None
    sent = {key: value for key, value in payload.items() if key != "approval"}
    invoice = session.get(Invoice, reference.get("invoice_id"))
    url = token = None
    if invoice is not None and invoice.is_draft:
        _, token = approval.create_link(session, invoice, valid_for=timedelta(hours=settings.approval_link_hours),
                                        now=now)
        url = f"{settings.public_url.rstrip('/')}{APPROVE_PATH}{token}"
    facts = dict(sent.get("data") or {})
    sent.update(render(str(sent.get("event") or MILESTONE_DONE), {**facts, "approve_url": url},
                       str(sent.get("language") or "fr")))
    return sent, token


def on_invoice_issued(session: Session, invoice: Invoice, *, pm: PluginManager | None = None) -> int:
    """Queue the comment telling the milestone's PM task its invoice is issued,
    in the caller's transaction (the one that issues it); how many were newly
    queued (1, or one per task the plugin names: :func:`comment_targets`)."""
    return _invoice_comment(session, invoice, INVOICE_ISSUED, pm)


def on_invoice_paid(session: Session, invoice: Invoice, *, pm: PluginManager | None = None) -> int:
    """Queue the comment telling the milestone's PM task its invoice is fully
    paid, in the caller's transaction; how many were newly queued, 0 when
    not paid, no milestone, already queued."""
    if invoice.status != "paid":
        return 0
    return _invoice_comment(session, invoice, INVOICE_PAID, pm)


def _invoice_comment(session: Session, invoice: Invoice, event: str, pm: PluginManager | None) -> int:
    milestone = invoice.milestone
    if invoice.kind != "invoice" or milestone is None or not milestone.task_ref:
        return 0
    rows = session.execute(
        _TASK_INTEGRATIONS, {"task_ref": milestone.task_ref, "contract_id": milestone.contract_id}).all()
    if not rows or not rows[0][0].enabled:
        return 0
    integration = rows[0][0]
    # the milestone keeps no project: the plugin hears the mapped one when there is only one
    projects = {project for found, project in rows if found is integration}
    return _comments(
        session, pm, integration, key=f"{COMMENT}:{event}:{invoice.id}", task_ref=milestone.task_ref,
        project_ref=projects.pop() if len(projects) == 1 else None,
        text=LABELS["fr"][event].format(number=invoice.number or f"#{invoice.id}", milestone=milestone.name,
                                        reference=milestone.reference),
        task_url=milestone.task_url, destination={"integration": integration.key},
    )


_TASK_INTEGRATIONS = (
    select(Integration, ProjectMapping.pm_project)
    .join(ProjectMapping, ProjectMapping.integration_id == Integration.id)
    .outerjoin(TaskState, (TaskState.integration_id == Integration.id)
               & (TaskState.task_ref == bindparam("task_ref")))
    .where(ProjectMapping.contract_id == bindparam("contract_id"))
    .order_by(TaskState.id.is_(None), Integration.id)
)


def task_integration(session: Session, milestone: Milestone) -> Integration | None:
    """The integration the milestone's task came through: among those mapped to
    its contract, the one that knows the task, else the first."""
    row = session.execute(
        _TASK_INTEGRATIONS, {"task_ref": milestone.task_ref, "contract_id": milestone.contract_id}
    ).first()
    return row[0] if row is not None else None


_ENABLED_CHANNELS = (
    select(NotificationChannel).where(NotificationChannel.enabled.is_(True)).order_by(NotificationChannel.key)
)
_LATEST_ISSUED = (
    select(Invoice)
    .where(Invoice.milestone_id == bindparam("milestone_id"), Invoice.number.is_not(None))
    .order_by(Invoice.id.desc())
    .limit(1)
)


def subscribed(session: Session, event: str) -> list[NotificationChannel]:
    channels = session.execute(_ENABLED_CHANNELS).scalars().all()
    return [c for c in channels if not c.events or event in c.events]


def finance_channel_warning(session: Session) -> str | None:
    """What to tell the admin when no enabled channel receives
    ``milestone.done``: finance would hear of no done milestone (and the PM
    task's comment says so). None when one does. For ``jalon config apply``
    and ``jalon serve``."""
    if subscribed(session, MILESTONE_DONE):
        return None
    return (f"no enabled notification channel receives {MILESTONE_DONE}: finance will not hear when a "
            "milestone is done and its draft invoice awaits approval (add one under `channels:` in the "
            "configuration, or PUT /api/v1/channels/<key>)")


def _invoice_of(session: Session, outcome: Outcome, milestone: Milestone) -> Invoice | None:
    if outcome.invoice_id is not None:
        return session.get(Invoice, outcome.invoice_id)
    # reopened after issue: the milestone's latest issued invoice
    return session.execute(_LATEST_ISSUED, {"milestone_id": milestone.id}).scalar_one_or_none()


def _cause(event: str, outcome: Outcome, milestone: Milestone, invoice: Invoice | None) -> str:
    if event == MILESTONE_DONE and invoice is not None:
        return f"{event}:{invoice.id}"
    occurred_at = getattr(outcome.event, "occurred_at", None)
    when = occurred_at.isoformat() if occurred_at is not None else "-"
    return f"{event}:{milestone.id}:{when}"


def _amount(value: Any, currency: str) -> str:
    return f"{format(value, 'f')} {currency}"


def _facts(outcome: Outcome, milestone: Milestone, invoice: Invoice | None) -> dict[str, Any]:
    contract = milestone.contract
    client = contract.client
    event = outcome.event
    facts: dict[str, Any] = {
        "client": {"code": client.code, "name": client.name},
        "contract": {"reference": contract.reference, "name": contract.name},
        "project": getattr(event, "project_ref", None),
        "milestone": {"id": milestone.id, "reference": milestone.reference, "name": milestone.name,
                      "status": milestone.status},
        "task": {"ref": milestone.task_ref or getattr(event, "task_ref", None),
                 "url": milestone.task_url or getattr(event, "task_url", None)},
        "invoice": None,
        "approve_url": None,
    }
    if invoice is not None:
        quantized = (invoice.money(invoice.total_net).quantize(), invoice.money(invoice.total_gross).quantize())
        facts["invoice"] = {
            "id": invoice.id,
            "number": invoice.number,
            "status": invoice.status,
            "currency": invoice.currency,
            "total_net": format(quantized[0].amount, "f"),
            "total_gross": format(quantized[1].amount, "f"),
            "amount": _amount(quantized[0].amount, invoice.currency),
        }
    return facts


def render(event: str, facts: Mapping[str, Any], language: str = "fr") -> dict[str, Any]:
    """The payload of one notification: subject, plain text, HTML, links, and
    the structured ``data`` (amounts as decimal strings) for machine receivers."""
    labels = LABELS.get(language, LABELS["fr"])
    locale = LOCALES.get(language, "fr_FR")
    invoice = facts.get("invoice")
    amount = gross = ""
    if invoice:
        amount = f"{Money(Decimal(invoice['total_net']), invoice['currency']).format(locale)} {labels['net']}"
        gross = f"{Money(Decimal(invoice['total_gross']), invoice['currency']).format(locale)} {labels['gross']}"
    values = {
        "contract": facts["contract"]["name"],
        "reference": facts["contract"]["reference"],
        "milestone": facts["milestone"]["name"],
        "task": facts["task"]["ref"] or "?",
        "invoice": (invoice or {}).get("number") or (f"#{invoice['id']}" if invoice else "?"),
        "amount": amount,
    }
    auto_issued = event == MILESTONE_DONE and bool(invoice) and invoice.get("number") is not None
    subject_template, intro_template = labels[AUTO_ISSUED if auto_issued else event]
    rows: list[tuple[str, str, str | None]] = []
    if invoice:
        rows.append((labels["amount"], f"{amount} ({gross})", None))
    rows += [
        (labels["client"], facts["client"]["name"], None),
        (labels["contract"], f"{facts['contract']['reference']} — {facts['contract']['name']}", None),
        (labels["project"], str(facts.get("project") or "—"), None),
        (labels["milestone"], f"{facts['milestone']['reference']} — {facts['milestone']['name']}", None),
        (labels["task"], facts["task"]["ref"] or "—", facts["task"]["url"]),
    ]
    if facts.get("approve_url"):
        rows.append((labels["approve"], facts["approve_url"], facts["approve_url"]))
    intro = intro_template.format(**values)
    text_lines = [intro, ""]
    for label, value, link in rows:
        shown = f"{value} — {link}" if link and link != value else value
        text_lines.append(f"{label} : {shown}" if language == "fr" else f"{label}: {shown}")
    html_rows = "".join(
        f"<tr><th align=\"left\">{escape(label)}</th><td>"
        + (f"<a href=\"{escape(link)}\">{escape(value)}</a>" if link else escape(value))
        + "</td></tr>"
        for label, value, link in rows
    )
    return {
        "event": event,
        "language": language if language in LABELS else "fr",
        "subject": subject_template.format(**values),
        "text": "\n".join(text_lines) + "\n",
        "html": f"<p>{escape(intro)}</p><table>{html_rows}</table>",
        "links": {"approve": facts.get("approve_url"), "task": facts["task"]["url"]},
        "data": dict(facts),
    }
