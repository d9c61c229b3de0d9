"""The PDF is a Factur-X file: PDF/A-3b with the XMP that says so, the XML
embedded as factur-x.xml and declared as the document's associated file, and
a document information dictionary that agrees with the XMP (PDF/A requires it).

No PDF/A validator runs here: veraPDF, the reference, is Java and is not on
PyPI or in Debian. These tests check the points a validator checks first and
that our pipeline could break."""

from __future__ import annotations

import io
from datetime import date

from lxml import etree
from pypdf import PdfReader

from jalon.core import documents
from jalon.core.db import unit_of_work
from jalon.core.models import Invoice

from tests.factories import issued

XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}


def _reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def _xmp(pdf: bytes) -> etree._Element:
    packet = _reader(pdf).trailer["/Root"]["/Metadata"].get_object().get_data()
    return etree.fromstring(packet.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])


def _one(tree: etree._Element, path: str) -> str:
    found = tree.xpath(path, namespaces=XMP_NS)
    assert len(found) == 1, (path, found)
    return found[0] if isinstance(found[0], str) else found[0].text


def test_the_xmp_declares_pdfa_3b(issued_case):
    xmp = _xmp(issued_case.rendered.pdf)
    assert _one(xmp, "//rdf:Description/@pdfaid:part") == "3"
    assert _one(xmp, "//rdf:Description/@pdfaid:conformance") == "B"


def test_the_xmp_declares_a_factur_x_en16931_invoice_with_its_extension_schema(issued_case):
    xmp = _xmp(issued_case.rendered.pdf)
    assert len(xmp.xpath("/x:xmpmeta/rdf:RDF", namespaces={**XMP_NS, "x": "adobe:ns:meta/"})) == 1
    assert _one(xmp, "//fx:DocumentFileName") == "factur-x.xml"
    assert _one(xmp, "//fx:DocumentType") == "INVOICE"
    assert _one(xmp, "//fx:Version") == "1.0"
    assert _one(xmp, "//fx:ConformanceLevel") == "EN 16931"
    schema = "//pdfaExtension:schemas/rdf:Bag/rdf:li"
    assert _one(xmp, f"{schema}/pdfaSchema:namespaceURI") == XMP_NS["fx"]
    assert _one(xmp, f"{schema}/pdfaSchema:prefix") == "fx"
    properties = xmp.xpath(f"{schema}/pdfaSchema:property/rdf:Seq/rdf:li/pdfaProperty:name/text()",
                           namespaces=XMP_NS)
    assert sorted(properties) == ["ConformanceLevel", "DocumentFileName", "DocumentType", "Version"]


def test_the_xml_is_attached_as_the_documents_alternative_representation(issued_case):
    catalog = _reader(issued_case.rendered.pdf).trailer["/Root"]
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "factur-x.xml"
    filespec = names[1].get_object()
    assert filespec["/AFRelationship"] == "/Alternative"
    assert filespec["/UF"] == "factur-x.xml"
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert [ref.get_object() for ref in catalog["/AF"]] == [filespec]


def test_the_pdf_has_an_srgb_output_intent_and_embeds_its_fonts(issued_case):
    reader = _reader(issued_case.rendered.pdf)
    intent = reader.trailer["/Root"]["/OutputIntents"][0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intent
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = font.get_object().get("/FontDescriptor") or \
                font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.get_object())


def test_the_information_dictionary_agrees_with_the_xmp(issued_case):
    pdf = issued_case.rendered.pdf
    info, xmp = _reader(pdf).metadata, _xmp(pdf)
    assert info["/Producer"] == _one(xmp, "//rdf:Description/@pdf:Producer")
    assert info["/Title"] == _one(xmp, "//dc:title/rdf:Alt/rdf:li")
    assert info["/Author"] == _one(xmp, "//dc:creator/rdf:Seq/rdf:li")
    assert info["/Subject"] == _one(xmp, "//dc:description/rdf:Alt/rdf:li")
    assert info["/Keywords"] == _one(xmp, "//pdf:Keywords")
    assert info["/CreationDate"] == "D:" + _one(xmp, "//xmp:CreateDate").replace("-", "").replace("T", "") \
        .replace(":", "")
    assert info["/ModDate"] == info["/CreationDate"]


def test_rendering_is_pure_and_reproducible(world):
    """Rendered twice, the same invoice gives the same bytes, and nothing is
    written: what a caller stores is what anyone would render."""
    with unit_of_work(world) as session:
        invoice_id = issued(session, on=date(2026, 11, 2)).id
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        first, second = documents.render(invoice), documents.render(invoice)
        assert not (session.new or session.dirty or session.deleted)
    assert (first.pdf, first.xml) == (second.pdf, second.xml)
