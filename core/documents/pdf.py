"""The printed invoice: HTML + CSS rendered by WeasyPrint as PDF/A-3b with the
CII XML embedded as ``factur-x.xml`` (relationship Alternative: the XML is the
same invoice as the pages), and the XMP metadata of the Factur-X PDF/A
extension schema, conformance level EN 16931.

The XML is embedded by WeasyPrint in the same pass that writes the PDF/A,
with the Factur-X XMP properties taken from factur-x's own generator. Why not
re-open the PDF with factur-x's ``generate_from_binary`` (or drafthorse's
``attach_xml``): both rewrite the document information dictionary so that it
no longer matches the XMP (``/Producer`` says WeasyPrint while ``pdf:Producer``
says pypdf; ``/Keywords`` has no ``pdf:Keywords``), which PDF/A forbids
(ISO 19005-3, 6.6.2.3.1), and drafthorse drops the document structure. One
pass also keeps the file reproducible: rendered twice, the same bytes.

The template, the stylesheet, the XMP snippet and WeasyPrint's font
configuration are built once per process and reused: reading and compiling
them costs more than rendering one invoice.
"""

from __future__ import annotations

import io
from datetime import datetime, time, timezone
from functools import lru_cache
from importlib import resources
from xml.etree import ElementTree

import cssselect2
import facturx
from jinja2 import Environment, Template, select_autoescape
from lxml import etree
from weasyprint import CSS, HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from .view import InvoiceView

PDF_VARIANT = "pdf/a-3b"
FACTURX_FILENAME = "factur-x.xml"
AF_RELATIONSHIP = "Alternative"
FACTURX_LEVEL = "en16931"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
FACTURX_NAMESPACES = ("{urn:factur-x:", "{http://www.aiim.org/pdfa/ns/extension/")


@lru_cache(maxsize=1)
def _assets() -> tuple[Template, CSS, CSS, FontConfiguration]:
    folder = resources.files(__package__).joinpath("templates")
    environment = Environment(autoescape=select_autoescape(default=True), keep_trailing_newline=True)
    template = environment.from_string(folder.joinpath("invoice.html").read_text(encoding="utf-8"))
    fonts = FontConfiguration()
    css = CSS(string=folder.joinpath("invoice.css").read_text(encoding="utf-8"), font_config=fonts)
    user_agent = CSS(string=folder.joinpath("user-agent.css").read_text(encoding="utf-8"), font_config=fonts)
    return template, css, user_agent, fonts


class _InvoiceHTML(HTML):
    """The template's page, read as XML, with the template's own user-agent
    stylesheet (templates/user-agent.css).

    The template writes well-formed XHTML (and Jinja escapes what it inserts),
    so the C parser of the standard library reads it; WeasyPrint's HTML5
    parser, written in Python, builds the same tree for a tenth of a render.
    WeasyPrint's user-agent stylesheet styles all of HTML, and matching it is
    a fifth of a render. Both lean on WeasyPrint's attributes (what its own
    ``__init__`` sets): a test renders the page both ways and compares bytes.
    """

    def __init__(self, string: str):
        root = ElementTree.fromstring(string)
        self.base_url = None
        self.url_fetcher = URLFetcher()
        self.media_type = "print"
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
        self.etree_element = self.wrapper_element.etree_element

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [_assets()[2]]


@lru_cache(maxsize=1)
def facturx_descriptions() -> tuple[bytes, ...]:
    """The Factur-X extension schema and its fx: properties (DocumentFileName
    factur-x.xml, DocumentType INVOICE, Version 1.0, ConformanceLevel EN 16931)
    as factur-x writes them: the rdf:Description elements to add to the XMP."""
    packet = facturx.generate_xmp_bytes("factur-x", FACTURX_LEVEL, None, {})
    root = etree.fromstring(packet.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    wanted = []
    for description in root.iter(f"{{{RDF}}}Description"):
        if any(child.tag.startswith(FACTURX_NAMESPACES) for child in description):
            description.set(f"{{{RDF}}}about", "")
            wanted.append(etree.tostring(description, encoding="utf-8"))
    return tuple(wanted)


def _object_number(reference: bytes | str) -> int:
    """pydyf's "26 0 R" reference -> 26."""
    text = reference.decode() if isinstance(reference, bytes) else reference
    return int(text.split()[0])


def _finish(_document, pdf) -> None:  # type: ignore[no-untyped-def]
    """Complete WeasyPrint's PDF/A before it is written: the Factur-X XMP
    properties go into its one rdf:RDF (an XMP packet has one), and the XML's
    file specification is listed once in /AF (WeasyPrint lists it twice)."""
    metadata = pdf.objects[_object_number(pdf.catalog["Metadata"])]
    head, rest = b"".join(metadata.stream).split(b"\n", 1)
    body, tail = rest.rsplit(b"\n", 1)
    packet = etree.fromstring(body)
    rdf = packet.find(f"{{{RDF}}}RDF")
    rdf.extend(etree.fromstring(description) for description in facturx_descriptions())
    metadata.stream = [b"\n".join((head, etree.tostring(packet, encoding="utf-8"), tail))]
    if "AF" in pdf.catalog:
        unique = list(dict.fromkeys(pdf.catalog["AF"]))
        pdf.catalog["AF"].clear()
        pdf.catalog["AF"].extend(unique)


def html(view: InvoiceView) -> str:
    template = _assets()[0]
    return template.render(v=view)


def factur_x(view: InvoiceView, xml: bytes) -> bytes:
    """The PDF/A-3b pages with ``factur-x.xml`` embedded."""
    _template, css, _user_agent, fonts = _assets()
    document = _InvoiceHTML(string=html(view)).render(font_config=fonts, stylesheets=[css], pdf_variant=PDF_VARIANT)
    issued = datetime.combine(view.issue_date, time(), tzinfo=timezone.utc)
    metadata = document.metadata
    metadata.title = f"{view.title} {view.number}"
    metadata.authors = [view.seller.name]
    metadata.description = f"Factur-X {view.title} {view.number} – {view.buyer.name}"
    metadata.keywords = ["Factur-X", view.title.lower()]
    metadata.created = metadata.modified = issued.strftime("%Y-%m-%dT%H:%M:%SZ")
    embedded = Attachment(
        file_obj=io.BytesIO(xml), name=FACTURX_FILENAME, description="Factur-X XML file",
        created=issued, modified=issued, relationship=AF_RELATIONSHIP,
    )
    return document.write_pdf(
        finisher=_finish, pdf_variant=PDF_VARIANT, attachments=[embedded], pdf_identifier=view.number.encode(),
    )
