"""How the printed invoice reads: every page says which document it belongs
to, the last page never holds the payment terms alone, identifiers never
break across lines, every column header and amount stays inside its cell,
countries are named, and a line's description keeps its line breaks.

The layout does not depend on the database: the tests that render many
invoices run on SQLite only."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader
from weasyprint.formatting_structure import boxes

from jalon.core import documents
from jalon.core.documents import pdf, view
from jalon.core.invoicing import LineSpec
from jalon.core.vat import Vat

from tests.core.documents.cases import CASES
from tests.core.documents.helpers import issue, load, pdf_text
from tests.factories import line

HEADERS = {
    "fr": ["Désignation", "Quantité", "Prix unitaire HT", "TVA", "Montant HT",
           "Taux / régime", "Base HT", "Montant TVA", "Total HT", "Total TVA", "Total TTC"],
    "en": ["Description", "Quantity", "Unit price excl. VAT", "VAT", "Amount excl. VAT",
           "Rate / scheme", "Taxable amount", "VAT amount", "Total excl. VAT", "Total VAT", "Total incl. VAT"],
}
# what must never be split over two lines, when a document prints it
UNBROKEN = [
    "SIREN 732829320", "SIREN 552100554", "RCS Paris 732 829 320", "SAS au capital de 10 000 €",
    "SAS with a share capital of €10,000", "N° TVA intracommunautaire FR44732829320",
    "N° TVA intracommunautaire FR96552100554", "N° TVA intracommunautaire BE0403170701",
    "VAT number FR44732829320", "VAT number DE123456789", "IBAN FR76 3000 6000 0112 3456 7890 189",
    "BIC AGRIFRPP", "F2026-00001", "F2026-00002", "de paiement : 40 €", "Pénalités de retard :",
    "Date d'échéance : 2 décembre 2026", "Due date: 2 December 2026", "n° F2026-00001 du 2 novembre 2026",
]
# a text a little outside its box is rounding, not spilling (CSS px)
TOLERANCE = 0.5


def _pages(pdf_bytes: bytes) -> list[str]:
    """Each page's text, its lines kept, every kind of space made plain."""
    return [re.sub(r"[ \u00a0\u202f]+", " ", page.extract_text())
            for page in PdfReader(io.BytesIO(pdf_bytes)).pages]


def _layout(invoice_view: view.InvoiceView):  # type: ignore[no-untyped-def]
    """WeasyPrint's laid-out pages of the invoice, as pdf.factur_x lays them out."""
    _template, css, _user_agent, fonts = pdf._assets()
    return pdf._InvoiceHTML(string=pdf.html(invoice_view)).render(
        font_config=fonts, stylesheets=[css], pdf_variant=pdf.PDF_VARIANT)


def _spilling(document) -> list[str]:  # type: ignore[no-untyped-def]
    """The texts drawn outside their table cell, and the cells outside the page's
    content area: a clipped header, or two cells' texts running together."""
    spilt = []
    for page in document.pages:
        root = page._page_box
        page_left, page_right = root.content_box_x(), root.content_box_x() + root.width
        for cell in root.descendants():
            if not isinstance(cell, boxes.TableCellBox):
                continue
            if cell.border_box_x() < page_left - TOLERANCE or \
                    cell.border_box_x() + cell.border_width() > page_right + TOLERANCE:
                spilt.append(f"cell beyond the page: {_text(cell)}")
            left, right = cell.content_box_x(), cell.content_box_x() + cell.width
            spilt.extend(text.text for text in cell.descendants() if isinstance(text, boxes.TextBox)
                         and (text.position_x < left - TOLERANCE or text.position_x + text.width > right + TOLERANCE))
    return spilt


def _text(box) -> str:  # type: ignore[no-untyped-def]
    return " ".join(text.text for text in box.descendants() if isinstance(text, boxes.TextBox))


def _sqlite_only(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the layout does not depend on the database: checked once, on SQLite")


def _lines(count: int, description: str) -> list[LineSpec]:
    return [line(f"{100 + n}.00", str(n % 3 + 1), description=description.format(n=n)) for n in range(count)]


# -- every case, both languages -------------------------------------------------------------------------------------


def test_every_column_header_is_printed_whole(case, issued_case):
    language = "en" if case == "foreign_client_in_english" else "fr"
    text = pdf_text(issued_case.rendered.pdf)
    assert [header for header in HEADERS[language] if header not in text] == []


def test_no_text_spills_out_of_its_cell_or_off_the_page(case, world, db_url):
    _sqlite_only(db_url)
    invoice_view = view.build(load(world, CASES[case].issue(world)))
    assert _spilling(_layout(invoice_view)) == []


def test_identifiers_and_label_value_pairs_are_never_split_across_lines(case, issued_case):
    pages = _pages(issued_case.rendered.pdf)
    flat = " ".join(" ".join(page.split()) for page in pages)
    lines = [row.strip() for page in pages for row in page.splitlines()]
    split = [phrase for phrase in UNBROKEN if phrase in flat and not any(phrase in row for row in lines)]
    assert split == []
    assert [row for row in lines if row.startswith((":", "%"))] == []


@pytest.mark.parametrize("case", ["standard_two_rates"])
def test_a_french_invoice_to_a_french_client_names_no_country(case, issued_case):
    assert "France" not in pdf_text(issued_case.rendered.pdf)


# -- long invoices --------------------------------------------------------------------------------------------------


def test_every_page_of_a_long_invoice_names_the_document_and_its_page(world, db_url):
    _sqlite_only(db_url)
    invoice_id = issue(world, *_lines(40, "Prestation {n} : développement, recette et mise en production"))
    pages = _pages(documents.render(load(world, invoice_id)).pdf)
    assert len(pages) >= 2
    missing = [number for number, page in enumerate(pages, 1)
               if f"FACTURE F2026-00001 – page {number} sur {len(pages)}" not in page]
    assert missing == []


def test_every_page_of_a_long_english_invoice_names_the_document_and_its_page(world, db_url):
    _sqlite_only(db_url)
    invoice_id = issue(world, *_lines(40, "Item {n}: design, build and release"), client={"language": "en"})
    pages = _pages(documents.render(load(world, invoice_id)).pdf)
    assert len(pages) >= 2
    missing = [number for number, page in enumerate(pages, 1)
               if f"INVOICE F2026-00001 – page {number} of {len(pages)}" not in page]
    assert missing == []


@pytest.mark.parametrize(("description", "counts"), [
    ("Prestation {n} : développement, recette et mise en production du module {n}", range(14, 44)),  # 2 lines a row
    ("Prestation {n}", range(20, 72, 3)),  # 1 line
])
def test_the_last_page_holds_the_last_lines_the_totals_and_the_payment_terms_together(world, db_url, description,
                                                                                        counts):
    """Whatever the number of lines, the page break falls among the lines: never
    between the totals and the payment terms, never after the last line."""
    _sqlite_only(db_url)
    wrong = {}
    for count in counts:
        pages = [_text(page._page_box) for page in _layout(view.build(load(world, issue(world, *_lines(
            count, description))))).pages]
        last_line = description.format(n=count - 1).split(" :")[0] + " "
        lacking = [text for text in ("Total TTC", "Net à payer", "CONDITIONS DE PAIEMENT", "Indemnité forfaitaire",
                                     last_line) if text not in pages[-1]]
        lineless = [number for number, page in enumerate(pages, 1) if not re.search(r"Prestation \d+ ", page)]
        if len(pages) < 2 or lacking or lineless:
            wrong[count] = (len(pages), lacking, lineless)
    assert wrong == {}


# -- what a line says -----------------------------------------------------------------------------------------------


def test_a_description_prints_its_line_breaks(world):
    invoice_id = issue(world, line("7200.00", description="Refonte du site — Maquettes validées\n"
                                                          "Jalon 1/3 — 30\u00a0% de 24\u202f000,00\u00a0€"))
    rows = [row.strip() for row in _pages(documents.render(load(world, invoice_id)).pdf)[0].splitlines()]
    at = next(number for number, row in enumerate(rows) if row.startswith("Refonte du site — Maquettes validées"))
    assert rows[at + 1] == "Jalon 1/3 — 30 % de 24 000,00 €"


def test_a_long_rate_label_stays_inside_its_column(world, db_url):
    _sqlite_only(db_url)
    invoice_id = issue(world, line("98765.43", "12", Vat("K", Decimal("0")), description="Routeurs"),
                       entity={"operation_nature": "goods"},
                       client={"language": "en", "country_code": "BE", "siren": None, "vat_number": "BE0403170701"})
    assert _spilling(_layout(view.build(load(world, invoice_id)))) == []
