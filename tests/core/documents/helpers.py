"""Helpers of the documents' tests: issue an invoice in a given situation, read
back what its PDF says (text) and what its XML carries (CII elements)."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree
from pypdf import PdfReader

from jalon.core import catalog, invoicing
from jalon.core.db import unit_of_work
from jalon.core.invoicing import LineSpec
from jalon.core.models import Invoice

from tests.factories import draft

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}


def issue(Session, *lines: LineSpec, entity: dict[str, Any] | None = None,  # noqa: N803
          client: dict[str, Any] | None = None, prepaid: str | None = None,
          purchase_order: str | None = None, on: date = date(2026, 11, 2), currency: str | None = None) -> int:
    """Issue an invoice after setting the entity's and the client's columns given."""
    with unit_of_work(Session) as session:
        seller = catalog.get_entity(session, "atelier")
        buyer = catalog.get_client(session, "lumiere")
        for key, value in (entity or {}).items():
            setattr(seller, key, value)
        for key, value in (client or {}).items():
            setattr(buyer, key, value)
        invoice = draft(session, *lines, currency=currency)
        invoice.purchase_order_ref = purchase_order
        if prepaid is not None:
            invoice.prepaid_amount = Decimal(prepaid)
        session.flush()
        return invoicing.issue(session, invoice.id, actor="finance", issue_date=on).id


def load(Session, invoice_id: int) -> Invoice:  # noqa: N803
    """The invoice in a session of its own, lines and the corrected invoice loaded."""
    session = Session()
    invoice = session.get(Invoice, invoice_id)
    assert invoice is not None
    invoice.lines, invoice.corrects  # noqa: B018  (loaded before the session closes)
    session.close()
    return invoice


def pdf_text(pdf: bytes) -> str:
    """The PDF's text on one line: spaces of every width made plain, runs collapsed."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def xml_tree(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def xpath(tree: etree._Element, path: str) -> list[str]:
    """The text of every element (or the value of every attribute) the path finds."""
    found = tree.xpath(path, namespaces=NS)
    return [item if isinstance(item, str) else (item.text or "") for item in found]


def one(tree: etree._Element, path: str) -> str:
    values = xpath(tree, path)
    assert len(values) == 1, f"{path}: {values}"
    return values[0]
