"""The one-click approval pages: ``/approve/<token>``.

The link in finance's notification is the capability: no bearer token. So:

* ``GET`` changes nothing (mail scanners and link previewers fetch every
  link): it shows the draft (client, amounts, contract and milestone) and one
  button that POSTs to the same URL;
* ``POST`` approves and issues, once: the link's row is locked, then refused
  when used (409), expired (410) or unknown (404), or when the invoice is no
  longer a draft (409). A cross-site form post is refused (403) when the
  browser says where it comes from (``Sec-Fetch-Site``, ``Origin``): only the
  page itself posts to it.

The invoice is issued and committed first; its documents are rendered
afterwards in a transaction of their own (never while the numbering lock is
held). The pages are in the client's language, French or English, and every
value shown is escaped.

The token is a capability: the server's access and error logs show
``/approve/(secret)`` (:class:`jalon.connector.web.server.RedactingLogger`),
Flask's own error log too, and the outbox never stores it.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, request
from sqlalchemy import select

from jalon.core import approval
from jalon.core.catalog import LANGUAGES, LOCALES
from jalon.core.db import read_only_session, unit_of_work
from jalon.core.errors import Conflict, JalonError, NotFound
from jalon.core.models import Invoice, Mapping
from jalon.core.types import utcnow

from jalon.connector.outbox import notify
from jalon.connector.redaction import RedactPaths
from jalon.connector.outbox.rendering import store_after_issue
from jalon.connector.runtime import Runtime


bp = Blueprint("approval", __name__, url_prefix="/approve")

STATUS = {
    approval.LINK_UNKNOWN: 404,
    approval.LINK_USED: 409,
    approval.LINK_EXPIRED: 410,
    "invoice_not_draft": 409,
    "cross_site_request": 403,
}
TEXTS = {
    "fr": {
        "title": "Approuver une facture brouillon",
        "intro": "Une facture brouillon attend votre approbation.",
        "client": "Client", "contract": "Contrat", "milestone": "Jalon", "project": "Projet",
        "net": "Montant HT", "gross": "Montant TTC", "expires": "Lien valable jusqu'au",
        "button": "Approuver",
        "warning": "En approuvant, la facture reçoit son numéro et est émise : elle ne pourra plus être "
                   "modifiée (seul un avoir la corrige).",
        "issued_title": "Facture émise",
        "issued": "La facture est émise sous le numéro {number}, pour {gross} TTC.",
        "documents_later": "Son PDF sera prêt dans un instant.",
        "refused_title": "Approbation impossible",
        approval.LINK_UNKNOWN: "Ce lien d'approbation est inconnu. Vérifiez qu'il a été copié en entier.",
        approval.LINK_USED: "Ce lien d'approbation a déjà servi : la facture a été approuvée.",
        approval.LINK_EXPIRED: "Ce lien d'approbation a expiré. Approuvez la facture depuis jalon.",
        "invoice_not_draft": "Cette facture n'est plus un brouillon ({status}{number}) : il n'y a rien à approuver.",
        "cross_site_request": "Requête refusée : elle ne vient pas de la page d'approbation.",
        "statuses": {"draft": "brouillon", "issued": "émise", "partially_paid": "partiellement payée",
                     "paid": "payée", "credited": "annulée par un avoir", "cancelled": "abandonnée"},
    },
    "en": {
        "title": "Approve a draft invoice",
        "intro": "A draft invoice awaits your approval.",
        "client": "Client", "contract": "Contract", "milestone": "Milestone", "project": "Project",
        "net": "Amount excl. VAT", "gross": "Amount incl. VAT", "expires": "Link valid until",
        "button": "Approve",
        "warning": "Approving gives the invoice its number and issues it: it cannot be changed afterwards "
                   "(only a credit note corrects it).",
        "issued_title": "Invoice issued",
        "issued": "The invoice is issued as {number}, for {gross} incl. VAT.",
        "documents_later": "Its PDF will be ready in a moment.",
        "refused_title": "Cannot approve",
        approval.LINK_UNKNOWN: "This approval link is unknown. Check that it was copied whole.",
        approval.LINK_USED: "This approval link was already used: the invoice was approved.",
        approval.LINK_EXPIRED: "This approval link has expired. Approve the invoice in jalon.",
        "invoice_not_draft": "This invoice is no longer a draft ({status}{number}): there is nothing to approve.",
        "cross_site_request": "Request refused: it does not come from the approval page.",
        "statuses": {"draft": "draft", "issued": "issued", "partially_paid": "partially paid", "paid": "paid",
                     "credited": "credited", "cancelled": "cancelled"},
    },
}
# the page is self-contained: no script, no outside resource, never framed, posts only to itself
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}
STYLE = ("body{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}"
         "th{text-align:left;padding:.2em 1em .2em 0;font-weight:normal;color:#555}td{padding:.2em 0}"
         "button{font-size:1.1em;padding:.5em 1.5em;margin-top:1em}.code{color:#888;font-size:.8em}")


def register_approval(app: Flask) -> None:
    app.register_blueprint(bp)
    # Flask logs an unhandled error as "Exception on <path>": never the token of a link
    if not any(isinstance(f, RedactPaths) for f in app.logger.filters):
        app.logger.addFilter(RedactPaths())


def _runtime() -> Runtime:
    return current_app.extensions["jalon"]


def _language(invoice: Invoice | None) -> str:
    if invoice is not None:
        language = (invoice.buyer or {}).get("language") or invoice.client.language
    else:
        language = request.accept_languages.best_match(LANGUAGES) or "fr"
    return language if language in TEXTS else "fr"


def _page(language: str, title: str, body: str, *, status: int = 200, code: str | None = None):  # type: ignore[no-untyped-def]
    footer = f'<p class="code">{escape(code)}</p>' if code else ""
    html = (f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)} — jalon</title><style>{STYLE}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body}{footer}</body></html>")
    response = current_app.response_class(html, status=status, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


def _refusal(error: JalonError, invoice: Invoice | None = None):  # type: ignore[no-untyped-def]
    language = _language(invoice)
    texts = TEXTS[language]
    message = texts.get(error.code)
    if message is None:  # a rule of the core refused the issue (a date out of order...): its own words
        message = error.message
    elif error.code == "invoice_not_draft" and invoice is not None:
        message = message.format(status=texts["statuses"].get(invoice.status, invoice.status),
                                 number=f", {invoice.number}" if invoice.number else "")
    status = STATUS.get(error.code) or (404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict)
                                        else 422)
    return _page(language, texts["refused_title"], f"<p>{escape(message)}</p>", status=status, code=error.code)


def _money(invoice: Invoice, amount: Any, language: str) -> str:
    return invoice.money(amount).quantize().format(LOCALES[language])


def _projects(session: Any, invoice: Invoice) -> str:
    if invoice.contract_id is None:
        return ""
    projects = session.execute(select(Mapping.pm_project).where(Mapping.contract_id == invoice.contract_id)
                               .order_by(Mapping.pm_project)).scalars()
    return ", ".join(projects)


@bp.get("/<token>")
def show(token: str):  # type: ignore[no-untyped-def]
    """The draft and one button; reading the link changes nothing (and, on
    SQLite, waits for no writer: mail scanners open every link)."""
    with read_only_session(_runtime().sessionmaker) as session:
        try:
            link = approval.check_link(approval.find_link(session, token))
        except JalonError as error:
            return _refusal(error)
        invoice = link.invoice
        if not invoice.is_draft:
            return _refusal(Conflict("not a draft", code="invoice_not_draft"), invoice)
        language = _language(invoice)
        texts = TEXTS[language]
        rows = [(texts["client"], invoice.client.name)]
        if invoice.contract is not None:
            rows.append((texts["contract"], f"{invoice.contract.reference} — {invoice.contract.name}"))
        if invoice.milestone is not None:
            rows.append((texts["milestone"], f"{invoice.milestone.reference} — {invoice.milestone.name}"))
        projects = _projects(session, invoice)
        if projects:
            rows.append((texts["project"], projects))
        rows += [
            (texts["net"], _money(invoice, invoice.total_net, language)),
            (texts["gross"], _money(invoice, invoice.total_gross, language)),
            (texts["expires"], f"{link.expires_at:%Y-%m-%d %H:%M} UTC"),
        ]
    table = "".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in rows)
    body = (f"<p>{escape(texts['intro'])}</p><table>{table}</table>"
            f'<form method="post"><p>{escape(texts["warning"])}</p>'
            f'<button type="submit">{escape(texts["button"])}</button></form>')
    return _page(language, texts["title"], body)


def _cross_site() -> bool:
    """True when the browser says this POST comes from another site's page."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # no browser hint (a script, an old browser): the token in the URL is the capability
    allowed = {_origin(request.host_url), _origin(_runtime().settings.public_url)}
    return origin.rstrip("/") not in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.post("/<token>")
def approve(token: str):  # type: ignore[no-untyped-def]
    """Use the link: approve and issue the draft, once."""
    runtime = _runtime()
    if _cross_site():
        return _refusal(Conflict("cross-site request", code="cross_site_request"))
    try:
        with unit_of_work(runtime.sessionmaker) as session:
            _, invoice = approval.consume(session, token, now=utcnow())
            notify.on_invoice_issued(session, invoice)
            invoice_id, number = invoice.id, invoice.number
            language = _language(invoice)
            gross = _money(invoice, invoice.total_gross, language)
    except JalonError as error:
        with read_only_session(runtime.sessionmaker) as session:
            link = approval.find_link(session, token)
            return _refusal(error, link.invoice if link is not None else None)
    texts = TEXTS[language]
    body = f"<p>{escape(texts['issued'].format(number=number, gross=gross))}</p>"
    if not store_after_issue(runtime, invoice_id, number):  # the documents job renders them within a minute
        body += f"<p>{escape(texts['documents_later'])}</p>"
    return _page(language, f"{texts['issued_title']} {number}", body)
