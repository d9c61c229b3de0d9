"""One reading of an issued invoice, shared by the PDF and the XML.

Everything comes from what the invoice froze when it was issued (its number,
dates, lines, totals and the ``seller``/``buyer``/``payment_terms`` snapshots),
never from the live entity or client: an edit of a client's address must not
change an invoice already sent. Both documents are drawn from this one view, so
the figures printed and the figures in the XML cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from ..catalog import LOCALES
from ..errors import Conflict
from ..invoicing import LINE_DECIMALS, VatGroup, invoice_totals
from ..models import Invoice, InvoiceLine
from ..identifiers import FRENCH_DIRECTORY
from ..money import Money, minor_unit, quantize
from ..terms import PaymentTerms
from . import texts

ISSUED_STATES = ("issued", "partially_paid", "paid", "credited")
# the decimals a line's quantity and unit price may have (refused beyond, when the draft is written)
PRICE_PLACES = LINE_DECIMALS
# what XML 1.0 cannot carry (C0 controls but tab, line feed and carriage return; lone
# surrogates; U+FFFE/U+FFFF): a task title pasted with a vertical tab must not make an
# issued invoice unrenderable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str | None
    postcode: str
    city: str
    country: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Address:
        return cls(data.get("address_line1") or "", data.get("address_line2") or None,
                   data.get("postcode") or "", data.get("city") or "", data.get("country_code") or "FR")

    def lines(self, language: str = "fr", *, country: bool = False) -> list[str]:
        """The address as printed, the country by its name in ``language`` ("Allemagne",
        "Germany"): always when ``country`` (the parties are in different countries,
        each reads where the other is), else only outside France. ``country`` stays
        the ISO code: that is what the XML carries."""
        rows = [self.line1, self.line2 or "", f"{self.postcode} {self.city}".strip()]
        if country or self.country != "FR":
            rows.append(country_name(self.country, language))
        return [row for row in rows if row]


@cache
def country_name(code: str, language: str) -> str:
    """The country of an ISO 3166 code in the invoice's language; the code if babel has no name for it."""
    return Locale.parse(LOCALES.get(language, "fr_FR")).territories.get(code.upper(), code)


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    siren: str | None
    siret: str | None
    vat_number: str | None
    # the electronic invoicing address (BT-34, BT-49) and its EAS scheme
    electronic_address: str | None = None
    electronic_scheme: str | None = None


@dataclass(frozen=True)
class Line:
    position: int
    description: str
    quantity: Decimal
    unit: str
    unit_label: str
    unit_price: Decimal
    category: str
    rate: Decimal
    net: Decimal
    quantity_text: str
    unit_price_text: str
    vat_text: str
    net_text: str


@dataclass(frozen=True)
class VatRow:
    category: str
    rate: Decimal
    base: Decimal
    tax: Decimal
    reason: str | None
    label: str
    base_text: str
    tax_text: str
    code: str | None = None  # the VATEX code of the exemption (BT-121)


@dataclass(frozen=True)
class Note:
    """A free-text note (EN 16931 BT-22) with its UNTDID 4451 subject code."""

    subject: str | None
    text: str


@dataclass(frozen=True)
class InvoiceView:
    language: str
    kind: str
    type_code: str
    title: str
    number: str
    currency: str
    issue_date: date
    service_date: date
    due_date: date
    issue_date_text: str
    service_date_text: str
    due_date_text: str
    purchase_order: str | None
    corrects_number: str | None
    corrects_date: date | None
    corrects_text: str | None
    seller: Party
    seller_legal: str
    seller_email: str | None
    iban: str | None
    bic: str | None
    vat_on_debits: bool
    operation_nature: str
    operation_nature_text: str
    buyer: Party
    delivery: Address | None
    lines: tuple[Line, ...]
    vat_rows: tuple[VatRow, ...]
    total_net: Decimal
    total_vat: Decimal
    total_gross: Decimal
    prepaid: Decimal
    amount_due: Decimal
    amounts_text: dict[str, str]
    terms_text: str
    discount_text: str
    penalty_text: str
    indemnity_text: str
    vat_on_debits_text: str | None
    notes: tuple[Note, ...]
    labels: dict[str, Any]
    deposit: bool = False
    business_process: str = "S1"
    processing: str = "B2B"
    deducted: tuple[tuple[str, date], ...] = ()
    deducted_text: str | None = None
    vat_total_eur: Decimal | None = None
    vat_eur_text: str | None = None

    @property
    def categories(self) -> frozenset[str]:
        """The VAT categories of the breakdown: some change what the XML may carry."""
        return frozenset(row.category for row in self.vat_rows)


def xml_safe(value: Any) -> Any:
    """``value`` with every character XML 1.0 refuses replaced by a space, in
    strings, and in the strings of dicts and lists (the parties' snapshots)."""
    if isinstance(value, str):
        return _NOT_XML.sub(" ", value)
    if isinstance(value, dict):
        return {key: xml_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [xml_safe(item) for item in value]
    return value


def require_issued(invoice: Invoice) -> None:
    if invoice.status not in ISSUED_STATES or not invoice.number or invoice.issue_date is None:
        raise Conflict(
            f"invoice {invoice.number or invoice.id} is {invoice.status}: only an issued invoice has documents",
            code="invoice_not_issued",
        )


def plain(value: Decimal, places: int) -> Decimal:
    """A fixed-point Decimal with exactly ``places`` decimals (never 1E+3, never 1000.000000)."""
    return quantize(Decimal(value), places)


def trimmed(value: Decimal, places: int = PRICE_PLACES) -> Decimal:
    """At most ``places`` decimals, trailing zeros dropped: a quantity reads 2 or 1.5, not 2.0000."""
    fixed = plain(value, places)
    text = format(fixed, "f").rstrip("0")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return plain(fixed, decimals)


@dataclass(frozen=True)
class _Format:
    """How amounts, numbers and dates read in the invoice's language."""

    language: str
    locale: str
    currency: str
    places: int

    def amount(self, value: Decimal) -> Decimal:
        return plain(value, self.places)

    def money(self, value: Decimal) -> str:
        return Money(self.amount(value), self.currency).format(self.locale)

    def price(self, value: Decimal) -> str:
        return format_currency(_price(value, self.places), self.currency, locale=self.locale,
                               decimal_quantization=False)

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def day(self, value: date) -> str:
        return format_date(value, format="long", locale=self.locale)


def build(invoice: Invoice) -> InvoiceView:
    require_issued(invoice)
    seller: dict[str, Any] = xml_safe(invoice.seller or {})
    buyer: dict[str, Any] = xml_safe(invoice.buyer or {})
    language = texts.language_of(buyer)
    words = texts.TEXTS[language]
    fmt = _Format(language, LOCALES[language], invoice.currency, minor_unit(invoice.currency))
    total_gross = fmt.amount(invoice.total_gross)
    prepaid = fmt.amount(invoice.prepaid_amount or 0)
    due = fmt.amount(total_gross - prepaid)
    nature = seller.get("operation_nature") or "services"
    legal = _seller_legal(words, seller, fmt.locale)
    view = dict(
        language=language,
        kind=invoice.kind,
        type_code="381" if invoice.kind == "credit_note" else ("386" if invoice.deposit else "380"),
        title=words["title"]["deposit" if invoice.deposit else invoice.kind],
        deposit=bool(invoice.deposit),
        **_frame(invoice, buyer, seller.get("operation_nature") or "services"),
        **_deducted(invoice, words, fmt),
        **_currency(invoice, words, fmt),
        number=invoice.number,
        currency=invoice.currency,
        **_dates(invoice, fmt),
        purchase_order=xml_safe(invoice.purchase_order_ref) or None,
        **_corrected(invoice, words, fmt),
        seller=_party(seller),
        seller_legal=legal,
        seller_email=seller.get("email") or None,
        iban=(seller.get("iban") or "").replace(" ", "") or None,
        bic=seller.get("bic") or None,
        vat_on_debits=bool(seller.get("vat_on_debits")),
        operation_nature=nature,
        operation_nature_text=words["natures"].get(nature, nature),
        buyer=_party(buyer),
        delivery=Address.of(buyer["delivery_address"]) if buyer.get("delivery_address") else None,
        lines=tuple(_line(line, words, fmt) for line in invoice.lines),
        vat_rows=tuple(_vat_row(group, words, fmt) for group in invoice_totals(invoice).groups),
        total_net=fmt.amount(invoice.total_net),
        total_vat=fmt.amount(invoice.total_vat),
        total_gross=total_gross,
        prepaid=prepaid,
        amount_due=due,
        amounts_text={
            "total_net": fmt.money(invoice.total_net),
            "total_vat": fmt.money(invoice.total_vat),
            "total_gross": fmt.money(total_gross),
            "prepaid": fmt.money(prepaid),
            "amount_due": fmt.money(due),
        },
        **_payment_texts(invoice, seller, words, fmt),
        labels=words,
    )
    view["notes"] = _notes(view, words, legal)
    return InvoiceView(**view)


def _dates(invoice: Invoice, fmt: _Format) -> dict[str, Any]:
    service = invoice.service_date or invoice.issue_date
    due = invoice.due_date or invoice.issue_date
    return dict(issue_date=invoice.issue_date, service_date=service, due_date=due,
                issue_date_text=fmt.day(invoice.issue_date), service_date_text=fmt.day(service),
                due_date_text=fmt.day(due))


def _corrected(invoice: Invoice, words: dict[str, Any], fmt: _Format) -> dict[str, Any]:
    """A credit note names the invoice it corrects (BT-25, BT-26): it cancels and
    replaces it when it credits its whole total, it corrects it in part otherwise."""
    corrects = invoice.corrects if invoice.kind == "credit_note" else None
    if corrects is None or corrects.issue_date is None:
        return dict(corrects_number=None, corrects_date=None, corrects_text=None)
    sentence = words["corrects_whole" if invoice.total_gross == corrects.total_gross else "corrects_partial"]
    day = fmt.day(corrects.issue_date).replace(" ", "\u00a0")  # a date is not split across lines
    return dict(corrects_number=corrects.number, corrects_date=corrects.issue_date,
                corrects_text=sentence.format(number=corrects.number, date=day))


def _payment_texts(invoice: Invoice, seller: dict[str, Any], words: dict[str, Any], fmt: _Format) -> dict[str, Any]:
    terms = PaymentTerms(**invoice.payment_terms) if invoice.payment_terms else PaymentTerms()
    penalty, discount = seller.get("late_penalty_rate"), seller.get("early_payment_discount")
    return dict(
        terms_text=terms.describe(fmt.language),
        discount_text=words["discount"].format(terms=discount) if discount else words["no_discount"],
        penalty_text=(words["penalty_rate"].format(rate=fmt.number(Decimal(penalty))) if penalty
                      else words["penalty_legal"]),
        indemnity_text=words["indemnity"],
        vat_on_debits_text=words["vat_on_debits"] if seller.get("vat_on_debits") else None,
    )


def _line(line: InvoiceLine, words: dict[str, Any], fmt: _Format) -> Line:
    quantity = trimmed(line.quantity)
    return Line(
        position=line.position,
        description=xml_safe(line.description),
        quantity=quantity,
        unit=line.unit,
        unit_label=texts.unit_label(fmt.language, line.unit, quantity),
        unit_price=_price(line.unit_price, fmt.places),
        category=line.vat_category,
        rate=plain(line.vat_rate, 2),
        net=fmt.amount(line.net_amount),
        quantity_text=fmt.number(quantity),
        unit_price_text=fmt.price(line.unit_price),
        vat_text=_category_label(words, line.vat_category, line.vat_rate, fmt.number),
        net_text=fmt.money(line.net_amount),
    )


def _vat_row(group: VatGroup, words: dict[str, Any], fmt: _Format) -> VatRow:
    reason = xml_safe(group.vat.exemption_reason)
    return VatRow(
        category=group.vat.category,
        rate=plain(group.vat.rate, 2),
        base=fmt.amount(group.base.amount),
        tax=fmt.amount(group.tax.amount),
        reason=texts.reason_in(fmt.language, reason) if reason else None,
        label=_category_label(words, group.vat.category, group.vat.rate, fmt.number),
        base_text=fmt.money(group.base.amount),
        tax_text=fmt.money(group.tax.amount),
        code=group.vat.exemption_code,
    )


def _price(value: Decimal, places: int) -> Decimal:
    """A unit price keeps up to 4 decimals but shows at least the currency's."""
    price = trimmed(value)
    exponent = price.as_tuple().exponent
    return plain(price, places) if isinstance(exponent, int) and -exponent < places else price


def _category_label(words: dict[str, Any], category: str, rate: Decimal, number: Any) -> str:
    label: str = words["categories"].get(category, category)
    return label.format(rate=number(trimmed(rate, 2))) if category == "S" else label


def _party(data: dict[str, Any]) -> Party:
    return Party(
        name=data.get("name") or "",
        address=Address.of(data),
        siren=data.get("siren") or None,
        siret=data.get("siret") or None,
        vat_number=data.get("vat_number") or None,
        **_electronic_address(data),
    )


def _electronic_address(data: dict[str, Any]) -> dict[str, str | None]:
    """The address frozen when issued; a snapshot older than the French rules derives it
    from the SIREN, as jalon.core.invoicing.electronic_address_of does."""
    if data.get("electronic_address"):
        return {"electronic_address": data["electronic_address"],
                "electronic_scheme": data.get("electronic_address_scheme") or FRENCH_DIRECTORY}
    if data.get("siren"):
        return {"electronic_address": data["siren"], "electronic_scheme": FRENCH_DIRECTORY}
    return {"electronic_address": None, "electronic_scheme": None}


def _frame(invoice: Invoice, buyer: dict[str, Any], nature: str) -> dict[str, Any]:
    """How a plateforme agréée must treat the invoice: the business process (BT-23, the
    "cadre de facturation": B goods, S services, M both; 1 an invoice, 4 a final invoice
    after deposits) and the processing note (BAR): B2B for a French business buyer,
    B2BINT for a buyer abroad, B2C for a French buyer without a SIREN."""
    letter = {"goods": "B", "services": "S", "mixed": "M"}.get(nature, "S")
    final = not invoice.deposit and (invoice.prepaid_amount or 0) > 0
    country = (buyer.get("country_code") or "FR").upper()
    processing = "B2BINT" if country != "FR" else ("B2B" if buyer.get("siren") else "B2C")
    return {"business_process": f"{letter}{'4' if final else '1'}", "processing": processing}


def _deducted(invoice: Invoice, words: dict[str, Any], fmt: _Format) -> dict[str, Any]:
    """The deposit invoices a final invoice deducts: (number, issue date) for the XML, a sentence to print."""
    deducted = tuple((link.deposit.number, link.deposit.issue_date) for link in invoice.deposits
                     if link.deposit.number and link.deposit.issue_date)
    items = ", ".join(words["deducted_item"].format(number=number, date=fmt.day(day).replace(" ", "\u00a0"))
                      for number, day in deducted)
    return {"deducted": deducted, "deducted_text": words["deducted"].format(invoices=items) if deducted else None}


def _currency(invoice: Invoice, words: dict[str, Any], fmt: _Format) -> dict[str, Any]:
    """An invoice in another currency states its VAT total in euros (BT-6, BT-111) at the
    ECB rate frozen when it was issued."""
    if invoice.currency == "EUR" or invoice.vat_total_eur is None or invoice.exchange_rate is None:
        return {"vat_total_eur": None, "vat_eur_text": None}
    eur = Money(plain(invoice.vat_total_eur, 2), "EUR")
    text = words["vat_in_eur"].format(
        amount=eur.format(fmt.locale),
        rate=f"1 EUR = {fmt.number(trimmed(invoice.exchange_rate, 6))} {invoice.currency}",
        day=fmt.day(invoice.exchange_rate_date) if invoice.exchange_rate_date else "")
    return {"vat_total_eur": eur.amount, "vat_eur_text": text}


def _seller_legal(words: dict[str, Any], seller: dict[str, Any], locale: str) -> str:
    """Legal form and share capital, then the trade register: what BT-33 carries."""
    parts = []
    if seller.get("legal_form") and seller.get("share_capital"):
        capital = _whole_money(Decimal(seller["share_capital"]), locale)
        parts.append(words["capital"].format(form=seller["legal_form"], capital=capital))
    elif seller.get("legal_form"):
        parts.append(seller["legal_form"])
    if seller.get("rcs"):
        parts.append(seller["rcs"])
    return " – ".join(parts)


def _whole_money(amount: Decimal, locale: str) -> str:
    """A share capital as people write it: "10 000 €", cents only when there are some."""
    if amount % 1:
        return Money(amount, "EUR").format(locale)
    pattern = Locale.parse(locale).currency_formats["standard"].pattern.replace(".00", "")
    return format_currency(amount, "EUR", locale=locale, format=pattern, currency_digits=False)


def _notes(view: dict[str, Any], words: dict[str, Any], legal: str) -> tuple[Note, ...]:
    """The printed legal sentences as Factur-X notes, with the subject codes
    French practice uses: AAB discount, PMD penalties, PMT the 40 € indemnity,
    REG the seller's legal identity, TXD tax options, AAI the operation's nature."""
    notes = [
        Note("AAI", f"{words['operation_nature']}{words['colon']} {view['operation_nature_text']}"),
        Note("AAB", view["discount_text"]),
        Note("PMD", view["penalty_text"]),
        Note("PMT", view["indemnity_text"]),
    ]
    if view["vat_on_debits_text"]:
        notes.append(Note("TXD", view["vat_on_debits_text"]))
    if legal:
        notes.append(Note("REG", f"{view['seller'].name} – {legal}"))
    if view["corrects_text"]:
        notes.append(Note("AAI", view["corrects_text"]))
    return tuple(notes)
