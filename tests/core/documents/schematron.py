"""A small ISO Schematron runner, enough for the official EN 16931 CII rules.

The CEN artefact (``EN16931-CII-validation-preprocessed.sch``) is already
preprocessed: patterns of rules, each a context and asserts, no includes, no
abstract patterns, no ``let``. Its query binding is XSLT 2, so the XPath is
2.0: elementpath (pure Python) evaluates it. Schematron's semantics are kept:
within a pattern a node is handled by the first rule whose context matches it;
an assert fails when its test's effective boolean value is false.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from elementpath import XPath2Parser, XPathContext
from lxml import etree

SCH = "{http://purl.oclc.org/dsdl/schematron}"


@dataclass(frozen=True)
class Failure:
    id: str
    flag: str
    location: str
    text: str


@dataclass(frozen=True)
class Report:
    rules_fired: int
    asserts_checked: int
    failures: tuple[Failure, ...]

    def failed(self, flag: str = "fatal") -> list[Failure]:
        return [f for f in self.failures if f.flag == flag]


@dataclass(frozen=True)
class _Assert:
    id: str
    flag: str
    text: str
    token: object


@dataclass(frozen=True)
class _Rule:
    context: object
    asserts: tuple[_Assert, ...]


def _branches(pattern: str) -> list[str]:
    """The alternatives of an XSLT match pattern ("a | b"), split outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for char in pattern:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _as_selection(pattern: str) -> str:
    """A match pattern as an expression selecting what it matches, from the root."""
    return " | ".join(b if b.startswith("/") else "//" + b for b in _branches(pattern))


@lru_cache(maxsize=4)
def compile_schematron(path: str) -> tuple[tuple[str, tuple[_Rule, ...]], ...]:
    schema = etree.parse(path).getroot()
    namespaces = {ns.get("prefix"): ns.get("uri") for ns in schema.iter(f"{SCH}ns")}
    parser = XPath2Parser(namespaces=namespaces)
    patterns = []
    for pattern in schema.iter(f"{SCH}pattern"):
        rules = []
        for rule in pattern.iter(f"{SCH}rule"):
            asserts = tuple(
                _Assert(
                    id=item.get("id") or "",
                    flag=item.get("flag") or rule.get("flag") or "fatal",
                    text=" ".join("".join(item.itertext()).split()),
                    token=parser.parse(f"boolean(({item.get('test')}))"),
                )
                for item in rule.iter(f"{SCH}assert")
            )
            rules.append(_Rule(parser.parse(_as_selection(rule.get("context"))), asserts))
        patterns.append((pattern.get("id") or "", tuple(rules)))
    return tuple(patterns)


def validate(path: str | Path, xml: bytes) -> Report:
    patterns = compile_schematron(str(path))
    document = etree.ElementTree(etree.fromstring(xml))
    fired = checked = 0
    failures = []
    for _name, rules in patterns:
        handled: set[etree._Element] = set()
        for rule in rules:
            nodes = rule.context.get_results(XPathContext(document))  # type: ignore[attr-defined]
            for node in nodes if isinstance(nodes, list) else [nodes]:
                if not isinstance(node, etree._Element) or node in handled:
                    continue
                handled.add(node)
                fired += 1
                for check in rule.asserts:
                    checked += 1
                    if not check.token.evaluate(XPathContext(document, item=node)):  # type: ignore[attr-defined]
                        failures.append(Failure(check.id, check.flag, document.getpath(node), check.text))
    return Report(rules_fired=fired, asserts_checked=checked, failures=tuple(failures))
