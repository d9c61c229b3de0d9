"""Reading a delivery's body as PHP's ``parse_str`` reads a form (Bitrix24's
own PHP SDK parses deliveries with it), or as JSON: every input a stranger
can send is either read faithfully or refused as Unreadable with its reason,
never an exception of another kind."""

from __future__ import annotations

import json
import random
from urllib.parse import quote

import pytest
from jalon.connector.plugin import Unreadable
from jalon.plugins.bitrix24 import form

from .support import fixture_bytes


def parsed(text: str | bytes) -> dict:
    return form.parse(text.encode() if isinstance(text, str) else text)


def refused(text: str | bytes) -> str:
    with pytest.raises(Unreadable) as error:
        parsed(text)
    return str(error.value)


# --- a real delivery ---------------------------------------------------------------------------


def test_an_outgoing_webhooks_delivery_becomes_nested_dicts():
    assert parsed(fixture_bytes("ONTASKUPDATE__outgoing_webhook")) == {
        "event": "ONTASKUPDATE",
        "event_handler_id": "31",
        "data": {"FIELDS_BEFORE": {"ID": "4711"}, "FIELDS_AFTER": {"ID": "4711"},
                 "IS_ACCESSIBLE_BEFORE": "undefined", "IS_ACCESSIBLE_AFTER": "undefined"},
        "ts": "1793952900",
        "auth": {"domain": "atelier-lumen.bitrix24.fr", "client_endpoint": "https://atelier-lumen.bitrix24.fr/rest/",
                 "server_endpoint": "https://oauth.bitrix.info/rest/",
                 "member_id": "5e1f0c2b9a8d7e6f5a4b3c2d1e0f9a8b", "application_token": "b24-app-t0ken-lumen"},
    }


def test_a_deletion_keeps_the_literal_undefined_bitrix24_writes_for_a_missing_part():
    data = parsed(fixture_bytes("ONTASKDELETE__outgoing_webhook"))["data"]
    assert data["FIELDS_BEFORE"] == {"ID": "4711"} and data["FIELDS_AFTER"] == "undefined"


def test_brackets_written_raw_or_percent_encoded_read_the_same():
    assert parsed("data[FIELDS_AFTER][ID]=1") == parsed("data%5BFIELDS_AFTER%5D%5BID%5D=1") == \
        {"data": {"FIELDS_AFTER": {"ID": "1"}}}


def test_the_json_rendition_of_the_docs_reads_like_the_form_apart_from_its_numbers():
    from_json = parsed(fixture_bytes("ONTASKUPDATE__json"))
    from_form = parsed(fixture_bytes("ONTASKUPDATE__outgoing_webhook"))
    assert from_json["data"]["FIELDS_AFTER"] == {"ID": 4711}  # JSON keeps its types
    assert from_json["auth"] == from_form["auth"] and from_json["event"] == from_form["event"]


# --- PHP's parse_str, case by case -------------------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    ("a=1&a=2", {"a": "2"}),  # a repeated key: the last wins
    ("a[b]=1&a[b]=2", {"a": {"b": "2"}}),
    ("a", {"a": ""}),  # no "=": an empty value
    ("a=&b=", {"a": "", "b": ""}),
    ("a=1&&b=2&", {"a": "1", "b": "2"}),  # empty pairs are skipped
    ("a[]=x&a[]=y", {"a": ["x", "y"]}),
    ("a[x][]=1&a[x][]=2&a[y]=3", {"a": {"x": ["1", "2"], "y": "3"}}),
    ("a[3]=x&a[]=y", {"a": {"3": "x", "4": "y"}}),  # [] continues after the largest integer index
    ("a[0]=x&a[1]=y", {"a": ["x", "y"]}),  # keys 0, 1 in order: a list, as PHP's json_encode writes it
    ("a[1]=x&a[0]=y", {"a": {"1": "x", "0": "y"}}),  # not in order: an object
    ("a[01]=x&a[]=y", {"a": {"01": "x", "0": "y"}}),  # "01" is a string key, not 1
    ("a[-3]=x&a[]=y", {"a": {"-3": "x", "-2": "y"}}),  # PHP 8.3: the next index after -3 is -2
    ("a[1]=x&a[01]=y&a[1]=z", {"a": {"1": "z", "01": "y"}}),
    ("a=1&a[b]=2", {"a": {"b": "2"}}),  # an array replaces a scalar...
    ("a[b]=2&a=1", {"a": "1"}),  # ...and a scalar an array: the later wins
    ("a.b=1&c d=2", {"a_b": "1", "c_d": "2"}),  # '.' and ' ' of a name become '_'
    ("a[b.c]=1", {"a": {"b.c": "1"}}),  # but not inside brackets
    ("%20%20a=1", {"a": "1"}),  # leading spaces of a name are dropped
    ("=1&[a]=2&[]=3&b=4", {"b": "4"}),  # no name: skipped
    ("a[b=1", {"a_b": "1"}),  # an unclosed bracket in the name is a plain character
    ("a[b.c d[e=1", {"a_b_c_d_e": "1"}),
    ("a[b][c=1", {"a": {"b": "1"}}),  # an unclosed index after a complete one is dropped
    ("a[b]c=1", {"a": {"b": "1"}}),  # what follows a ']' that no '[' opens is dropped
    ("a[b]]=1", {"a": {"b": "1"}}),
    ("a[b[c]]=1", {"a": {"b[c": "1"}}),  # the first ']' closes the index
    ("a[]b[c]=1", {"a": ["1"]}),
])
def test_keys_are_read_as_php_parse_str_reads_them(body, expected):
    assert parsed(body) == expected


@pytest.mark.parametrize("body, expected", [
    ("t=caf%C3%A9", "café"),
    ("t=caf\u00e9", "café"),  # raw UTF-8 in the body
    ("t=%E2%9C%93+ok", "✓ ok"),  # '+' is a space
    ("t=a%2Bb", "a+b"),
    ("t=100%25", "100%"),
    ("t=50%", "50%"),  # a '%' without two hex digits stays, as in PHP
    ("t=%zz", "%zz"),
    ("t=%4", "%4"),
    ("t=a%26b%3Dc", "a&b=c"),
    ("t=%F0%9F%98%80", "😀"),
])
def test_values_are_percent_decoded_utf8(body, expected):
    assert parsed(body)["t"] == expected


def test_a_percent_encoded_name_in_utf8_is_a_name():
    assert parsed(f"{quote('tâche')}[{quote('intitulé')}]=x") == {"tâche": {"intitulé": "x"}}


# --- refused ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    (b"", "empty"),
    (b"   \r\n", "empty"),
    (b"&&&", "no form field"),
    (b"t=%FF", "not UTF-8"),  # a percent-encoded byte that is no UTF-8
    (b"t=%C3%28", "not UTF-8"),
    (b"t=%ED%A0%80", "not UTF-8"),  # a lone surrogate
    (b"t=\xff\xfe", "not UTF-8"),  # raw bytes that are no UTF-8
    (b"a%00b=1", "NUL"),
])
def test_a_malformed_form_is_unreadable_with_its_reason(body, reason):
    assert reason in refused(body)


def test_an_index_nested_deeper_than_the_cap_is_refused():
    at_cap = "a" + "[x]" * form.MAX_DEPTH + "=1"
    value = parsed(at_cap)["a"]
    for _ in range(form.MAX_DEPTH - 1):
        value = value["x"]
    assert value == {"x": "1"}
    assert "deeper" in refused("a" + "[x]" * (form.MAX_DEPTH + 1) + "=1")
    assert "deeper" in refused("a" + "[]" * (form.MAX_DEPTH + 1) + "=1")


def test_more_fields_than_the_cap_are_refused():
    assert len(parsed("&".join(f"f{n}=1" for n in range(form.MAX_FIELDS)))) == form.MAX_FIELDS
    assert str(form.MAX_FIELDS) in refused("&".join(f"f{n}=1" for n in range(form.MAX_FIELDS + 1)))


def test_a_huge_index_is_a_string_key_not_a_number():
    assert parsed("a[99999999999999999999]=1&a[]=2") == {"a": {"99999999999999999999": "1", "0": "2"}}


# --- JSON -------------------------------------------------------------------------------------------------


def test_a_json_object_is_read_as_is():
    assert parsed('  {"event": "ONTASKUPDATE", "data": {"FIELDS_AFTER": {"ID": "5"}}}') == \
        {"event": "ONTASKUPDATE", "data": {"FIELDS_AFTER": {"ID": "5"}}}


@pytest.mark.parametrize("body, reason", [
    (b"{", "not JSON"),
    (b'{"a": 1,}', "not JSON"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"[1, 2]", "no form field"),  # not an object: read as a form whose one name, "[1, 2]", PHP skips
])
def test_a_malformed_json_body_is_unreadable(body, reason):
    assert reason in refused(body)


def test_json_nested_deeper_than_the_cap_is_refused_even_past_pythons_recursion_limit():
    nested = {"a": "x"}
    for _ in range(form.MAX_DEPTH - 1):
        nested = {"a": nested}
    assert parsed(json.dumps({"root": nested}))
    assert "deeper" in refused(json.dumps({"root": {"a": nested}}))
    assert "deeper" in refused(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)


# --- strangers ---------------------------------------------------------------------------------------------


def test_random_bytes_are_read_or_refused_never_an_exception_of_another_kind():
    rng = random.Random(15)
    alphabet = b"[]=&%+ ab.019\x00\xff\xc3{}\"\\:"
    for _ in range(3000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        try:
            result = form.parse(body)
        except Unreadable:
            continue
        assert isinstance(result, dict)
