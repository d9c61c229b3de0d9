"""The page is read as XML (the standard library's C parser, not WeasyPrint's
HTML5 parser): it must lay out exactly as WeasyPrint's own reading would, and
what people typed (a task title, a client's name, a purchase-order reference)
reaches the page as text, never as markup, whatever characters it holds."""

from __future__ import annotations

from decimal import Decimal

from weasyprint import HTML

from jalon.core import documents
from jalon.core.documents import pdf, view
from jalon.core.vat import Vat

from tests.core.documents.cases import CASES
from tests.core.documents.helpers import issue, load, one, pdf_text, xml_tree
from tests.factories import line


class _Html5(HTML):
    """WeasyPrint's own reading of the page, with the template's user-agent stylesheet."""

    def _ua_stylesheets(self, forms: bool = False):  # type: ignore[no-untyped-def]
        return [pdf._assets()[2]]


def _pages(document_class, page: str) -> bytes:  # type: ignore[no-untyped-def]
    _template, css, _user_agent, fonts = pdf._assets()
    rendered = document_class(string=page).render(font_config=fonts, stylesheets=[css], pdf_variant=pdf.PDF_VARIANT)
    return rendered.write_pdf(pdf_variant=pdf.PDF_VARIANT)


def test_the_xml_reading_lays_out_the_same_bytes_as_weasyprints_html5_parser(case, world):
    page = pdf.html(view.build(load(world, CASES[case].issue(world))))
    assert _pages(pdf._InvoiceHTML, page) == _pages(_Html5, page)


HOSTILE = "<b>Recette</b> & \"validation\" d'été ]]> <!-- x --> &amp;"


def test_typed_text_is_printed_as_text_and_characters_xml_refuses_become_spaces(world):
    invoice_id = issue(
        world,
        line("1200.00", description=HOSTILE + "\x0bligne\x01deux"),
        client={"name": "Lumière <script>alert(1)</script> & Cie"},
        purchase_order="PO-<1>&\x0c2",
    )
    rendered = documents.render(load(world, invoice_id))
    text = pdf_text(rendered.pdf)
    assert HOSTILE + " ligne deux" in text
    assert "Lumière <script>alert(1)</script> & Cie" in text
    assert "PO-<1>& 2" in text
    tree = xml_tree(rendered.xml)
    assert one(tree, "//ram:SpecifiedTradeProduct/ram:Name") == HOSTILE + " ligne deux"
    assert one(tree, "//ram:BuyerTradeParty/ram:Name") == "Lumière <script>alert(1)</script> & Cie"
    assert one(tree, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == "PO-<1>& 2"


def test_an_exemption_reason_with_a_character_xml_refuses_still_renders(world):
    reason = "Exonération\x0b de TVA, article 261-4-4° du CGI"
    invoice_id = issue(world, line("1000.00", vat=Vat("E", Decimal("0"), reason)))
    rendered = documents.render(load(world, invoice_id))
    safe = reason.replace("\x0b", " ")
    assert " ".join(safe.split()) in pdf_text(rendered.pdf)
    assert one(xml_tree(rendered.xml), "//ram:ApplicableTradeTax/ram:ExemptionReason") == safe
