"""Reading a Bitrix24 delivery's body: ``application/x-www-form-urlencoded``
with PHP-style bracketed keys, read the way PHP's ``parse_str`` reads it (the
official PHP SDK parses deliveries with it), or a JSON object (the docs print
deliveries as JSON, and apps may post JSON).

``event=ONTASKUPDATE&data[FIELDS_AFTER][ID]=123&auth[application_token]=t``
becomes ``{"event": "ONTASKUPDATE", "data": {"FIELDS_AFTER": {"ID": "123"}},
"auth": {"application_token": "t"}}``. As PHP does:

* ``+`` is a space and ``%XX`` a byte; the bytes must be UTF-8 (strict: a body
  that is not is refused). A ``%`` not followed by two hex digits stays as it
  is, as in PHP.
* a repeated key: the last one wins (``a=1&a=2`` -> ``"2"``); a key without
  ``=`` has the value ``""``;
* ``a[]=x&a[]=y`` appends (``["x", "y"]``); ``a[3]=x&a[]=y`` continues after
  the largest integer index; indexes are PHP array keys (``"3"`` and ``3`` are
  one key, ``"03"`` another);
* in the name before the first ``[``, leading spaces are dropped and ``.``
  and spaces become ``_`` (``a.b=1`` -> ``a_b``); an empty name is skipped;
* an unbalanced bracket: an unclosed ``[`` in the name is a plain character
  (``a[b=1`` -> ``a_b``), an unclosed one after a complete index is dropped
  with the rest (``a[b][c=1`` -> ``a[b]``), and what follows a ``]`` that no
  ``[`` opens is dropped (``a[b]c=1`` -> ``a[b]``);
* a scalar and an array under one key: the later one replaces the earlier.

A PHP array becomes a list when its keys are 0, 1, 2... in order (as PHP's
``json_encode`` writes it), else a dict with string keys: a form body and its
JSON rendition read the same. Values are strings (JSON values keep their
types).

Refused (:class:`Unreadable`, so a dead letter with the reason; never another
exception): a body that is not UTF-8, more than :data:`MAX_FIELDS` fields,
an index nested deeper than :data:`MAX_DEPTH` (PHP's ``max_input_vars`` and
``max_input_nesting_level`` drop silently; a receiver of money events says
so instead), a NUL in a name, an empty body, JSON that is not an object or
nests deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from jalon.connector.plugin import Unreadable

MAX_FIELDS = 1000
MAX_DEPTH = 32

_Key = int | str


class _PhpArray(dict[_Key, Any]):
    """A PHP array: ordered keys, integer keys for canonical integer strings,
    and the next index ``[]`` appends at."""

    next_index: int | None = None  # None: no integer key yet, [] appends at 0 (PHP 8.3)

    def put(self, key: _Key | None, value: Any) -> Any:
        if key is None:
            key = 0 if self.next_index is None else self.next_index
        key = _php_key(key) if isinstance(key, str) else key
        self[key] = value
        if isinstance(key, int) and (self.next_index is None or key >= self.next_index):
            self.next_index = key + 1
        return value


def _php_key(index: str) -> _Key:
    """``"12"`` and ``"-3"`` are the integer keys 12 and -3 in PHP; ``"012"``,
    ``"-0"``, ``" 1"`` and ``"1.5"`` stay strings."""
    digits = index.removeprefix("-")
    if digits.isascii() and digits.isdigit() and (digits == "0" or not digits.startswith("0")) and index != "-0":
        number = int(index)
        if -(2**63) < number < 2**63:  # a PHP integer (its extreme values aside)
            return number
    return index


def _path(name: str) -> list[str | None] | None:
    """The base name and the indexes of a form key (``None``: ``[]``, append),
    as PHP's ``php_register_variable_ex`` cuts them; None when PHP skips the key."""
    name = name.lstrip(" ")
    bracket = name.find("[")
    base_part = name if bracket < 0 else name[:bracket]
    base = base_part.replace(" ", "_").replace(".", "_")
    if not base:
        return None
    if bracket < 0:
        return [base]
    path: list[str | None] = [base]
    rest = name[bracket:]  # starts with "["
    first = True
    while rest.startswith("["):
        close = rest.find("]", 1)
        if close < 0:
            if first:  # "a[b" is the plain name "a_b", its ' ', '.' and '[' made '_'
                tail = rest[1:].replace(" ", "_").replace(".", "_").replace("[", "_")
                return [base + "_" + tail]
            break  # "a[b][c": the unclosed part is dropped
        first = False
        index = rest[1:close]
        path.append(index if index else None)
        if len(path) - 1 > MAX_DEPTH:
            raise Unreadable(f"form field nested deeper than {MAX_DEPTH} levels")
        rest = rest[close + 1:]
    return path


def _assign(root: _PhpArray, path: list[str | None], value: str) -> None:
    level = root
    *parents, last = path
    for index in parents:
        existing = level.get(_php_key(index)) if index is not None else None
        if not isinstance(existing, _PhpArray):
            existing = level.put(index, _PhpArray())
        level = existing
    level.put(last, value)


def _plain(value: Any) -> Any:
    """A PHP array as ``json_encode`` writes it: a list when its keys are 0..n-1 in order."""
    if not isinstance(value, _PhpArray):
        return value
    if list(value) == list(range(len(value))):
        return [_plain(item) for item in value.values()]
    return {str(key): _plain(item) for key, item in value.items()}


def parse_form(body: bytes) -> dict[str, Any]:
    """A form-urlencoded body as PHP's ``parse_str`` reads it (see the module's docstring)."""
    try:
        text = body.decode("utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise Unreadable(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise Unreadable("a percent-encoded value is not UTF-8") from None
    except ValueError:
        raise Unreadable(f"more than {MAX_FIELDS} form fields") from None
    root = _PhpArray()
    for name, value in pairs:
        if "\x00" in name:
            raise Unreadable("a form field name contains a NUL byte")
        path = _path(name)
        if path is not None:
            _assign(root, path, value)
    result = _plain(root)
    return result if isinstance(result, dict) else {str(n): v for n, v in enumerate(result)}


def _depth(value: Any, limit: int) -> None:
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            raise Unreadable(f"JSON nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON body, which must be an object nested at most :data:`MAX_DEPTH` levels."""
    try:
        payload = json.loads(body.decode("utf-8", errors="strict"))
    except UnicodeDecodeError as error:
        raise Unreadable(f"the body is not UTF-8 (byte {error.start})") from None
    except RecursionError:
        raise Unreadable(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise Unreadable(f"not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise Unreadable("the JSON body is not an object")
    _depth(payload, MAX_DEPTH + 1)  # the object itself plus MAX_DEPTH levels, as a form's name[...]
    return payload


def parse(body: bytes) -> dict[str, Any]:
    """The delivery as nested dicts: JSON when the body starts with ``{`` (a
    form field name never does in a Bitrix24 delivery), else form-urlencoded."""
    if not body.strip():
        raise Unreadable("the body is empty")
    if body.lstrip()[:1] == b"{":
        return parse_json(body)
    payload = parse_form(body)
    if not payload:
        raise Unreadable("the body holds no form field")
    return payload
