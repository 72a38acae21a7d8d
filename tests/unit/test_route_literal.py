"""Routing tests most rule patterns as plain strings (literal_test); it must decide exactly as
the regex search it replaces, for any pattern and any URI."""

from __future__ import annotations

import regex
from hypothesis import given
from hypothesis import strategies as st

from tcpvs.table.addr import Address
from tcpvs.table.model import Rule, Service, literal_test

# Pieces that make literal patterns, near-literal ones and real regexes.
PIECE = st.sampled_from(["^", "/", "a", "b", ".", "*", ".*", "\\.", "\\", "$", "+", "?", "x"])
URI = st.text(alphabet="/ab.x*?+\\$^", max_size=12).map(lambda s: s.encode())


def regex_search(pattern: str, uri: bytes) -> bool | None:
    try:
        compiled = regex.compile(pattern.encode())
    except regex.error:
        return None
    return compiled.search(uri) is not None


@given(st.lists(PIECE, max_size=6).map("".join), st.lists(URI, min_size=1, max_size=8))
def test_a_literal_rule_matches_exactly_as_its_regex(pattern: str, uris: list[bytes]) -> None:
    if regex_search(pattern, b"") is None:
        return  # not a valid pattern: refused when the rule is added
    rule = Rule(pattern, 0, [])
    service = Service("t", Address("127.0.0.1", 8080), "rr", None, rules=[rule])  # type: ignore[arg-type]
    for uri in uris:
        assert (service.route(uri) is rule) == regex_search(pattern, uri), (pattern, uri)


def test_common_patterns_skip_the_regex() -> None:
    assert literal_test(".*") == (b"", False)
    assert literal_test("^/images/") == (b"/images/", True)
    assert literal_test("^/a/.*") == (b"/a/", True)
    assert literal_test("/html/") == (b"/html/", False)
    assert literal_test("\\.jpg$") is None
    assert literal_test("^/a\\.*") is None  # an escaped dot repeated, not a trailing .*
