"""The `check = <spec>` grammar: every default, every keyword in any case and order, every
error with the word and column it names, and the round trip through the canonical text."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tcpvs.health.spec import (
    KINDS,
    METHODS,
    CheckSpec,
    format_check,
    parse_check,
    regex_error,
)

CANONICAL_HTTP = "http GET / expect 200-399 interval 2 timeout 1 rise 2 fall 3"


def test_defaults_fill_in_every_value_left_out() -> None:
    assert parse_check("http") == CheckSpec(
        kind="http",
        method="GET",
        path="/",
        expect=(200, 399),
        interval=2.0,
        timeout=1.0,
        rise=2,
        fall=3,
        host=None,
        body=None,
        port=None,
    )
    assert parse_check("tcp") == CheckSpec("tcp")
    assert parse_check("none") is None
    assert format_check(parse_check("http")) == CANONICAL_HTTP
    assert format_check(parse_check("tcp")) == "tcp interval 2 timeout 1 rise 2 fall 3"
    assert format_check(None) == "none"


def test_every_keyword_in_any_order() -> None:
    spec = parse_check(
        'http HEAD /ready port 8081 fall 5 body "up and (running|ready)" rise 1'
        " host app.example:8080 timeout 0.25 interval 1.5 expect 204"
    )
    assert spec == CheckSpec(
        "http", "HEAD", "/ready", (204, 204), 1.5, 0.25, 1, 5,
        "app.example:8080", "up and (running|ready)", 8081,
    )  # fmt: skip
    assert format_check(spec) == (
        "http HEAD /ready expect 204 interval 1.5 timeout 0.25 rise 1 fall 5"
        ' host app.example:8080 body "up and (running|ready)" port 8081'
    )
    assert parse_check("tcp port 5432 rise 3 interval 10 timeout 2") == CheckSpec(
        "tcp", interval=10.0, timeout=2.0, rise=3, port=5432
    )


def test_method_and_path_are_optional_and_positional() -> None:
    assert parse_check("http /healthz") == CheckSpec("http", path="/healthz")
    assert parse_check("http OPTIONS") == CheckSpec("http", method="OPTIONS")
    assert parse_check("http head /x?a=1&b") == CheckSpec("http", "HEAD", "/x?a=1&b")


def test_keywords_kinds_and_methods_ignore_case() -> None:
    assert parse_check("NONE") is None
    assert parse_check("Http Get /Path EXPECT 200 Interval 3 TIMEOUT 2 RiSe 4 FALL 1") == (
        CheckSpec("http", "GET", "/Path", (200, 200), 3.0, 2.0, 4, 1)
    )
    assert parse_check("TCP PORT 1") == CheckSpec("tcp", port=1)


def test_spacing_is_free_and_columns_count_it() -> None:
    assert parse_check("  http\t GET   /x  rise\t3 ") == CheckSpec("http", path="/x", rise=3)
    with pytest.raises(ValueError, match=r"^check: unknown keyword 'rize' \(column 13\)$"):
        parse_check("  http   /x rize 3")


def test_limits_are_inclusive() -> None:
    low = parse_check("http expect 100 interval 0.1 timeout 0.05 rise 1 fall 1 port 1")
    high = parse_check("http expect 599 interval 3600 timeout 3599.5 rise 100 fall 100 port 65535")
    assert low == CheckSpec("http", "GET", "/", (100, 100), 0.1, 0.05, 1, 1, port=1)
    assert high == CheckSpec("http", "GET", "/", (599, 599), 3600.0, 3599.5, 100, 100, port=65535)


def test_quoted_body_keeps_its_backslashes() -> None:
    spec = parse_check(r'http body "say \"hi\" \d+ times \\ ok"')
    assert spec is not None and spec.body == r'say "hi" \d+ times \ ok'
    unquoted = parse_check(r"http body ^\w+\s\d")
    assert unquoted is not None and unquoted.body == r"^\w+\s\d"
    assert format_check(unquoted).endswith(r" body ^\w+\s\d")


@pytest.mark.parametrize(
    "body, written",
    [
        ("a b", '"a b"'),
        ('say "hi"', r'"say \"hi\""'),
        ("x\\ y", r'"x\\ y"'),
        ("", '""'),
        ("#comment", '"#comment"'),  # a config file would take it for a comment
        (r"a\b", r"a\b"),
    ],
)
def test_format_quotes_a_body_only_when_it_must(body: str, written: str) -> None:
    spec = CheckSpec("http", body=body)
    assert format_check(spec) == f"{CANONICAL_HTTP} body {written}"
    assert parse_check(format_check(spec)) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "check: empty: give http, tcp or none"),
        ("htp", "check: unknown kind 'htp': give http, tcp or none (column 1)"),
        ("none tcp", "check: nothing may follow none, not 'tcp' (column 6)"),
        ("http GET /healthz intervall 2", "check: unknown keyword 'intervall' (column 19)"),
        ("http interval 2 interval 3", "check: keyword 'interval' given twice (column 17)"),
        ("http RISE 2 rise 3", "check: keyword 'rise' given twice (column 13)"),
        ("http rise 2 fall", "check: keyword 'fall' needs a value (column 13)"),
        ("http POST /", "check: method 'POST' is not one of GET, HEAD, OPTIONS (column 6)"),
        ("http put /x", "check: method 'put' is not one of GET, HEAD, OPTIONS (column 6)"),
        (
            "http /a\u00e9",
            "check: path '/a\u00e9' may hold visible ASCII characters only (column 6)",
        ),
        ('http "/a b"', "check: path '/a b' may hold visible ASCII characters only (column 6)"),
        ("http rise 2 /x", "check: path '/x' must come right after http or its method (column 13)"),
        ("tcp /x", "check: unknown keyword '/x' (column 5)"),
        ("tcp host a", "check: keyword 'host' is for http checks only (column 5)"),
        ("tcp body a", "check: keyword 'body' is for http checks only (column 5)"),
        ("tcp expect 200", "check: keyword 'expect' is for http checks only (column 5)"),
        (
            "http interval 0.09",
            "check: interval must be 0.1 to 3600 seconds, not '0.09' (column 15)",
        ),
        (
            "http interval 3601",
            "check: interval must be 0.1 to 3600 seconds, not '3601' (column 15)",
        ),
        ("http interval 2s", "check: interval must be 0.1 to 3600 seconds, not '2s' (column 15)"),
        ("http interval nan", "check: interval must be 0.1 to 3600 seconds, not 'nan' (column 15)"),
        ("http timeout 0", "check: timeout must be more than 0 seconds, not '0' (column 14)"),
        ("http timeout -1", "check: timeout must be more than 0 seconds, not '-1' (column 14)"),
        ("http timeout 2", "check: timeout '2' must be less than the interval (2s) (column 14)"),
        (
            "http timeout 1.5 interval 1.5",
            "check: timeout '1.5' must be less than the interval (1.5s) (column 14)",
        ),
        (
            "tcp interval 0.5",
            "check: interval '0.5' must be more than the timeout (1s) (column 14)",
        ),
        ("http rise 0", "check: rise must be a whole number from 1 to 100, not '0' (column 11)"),
        (
            "http fall 101",
            "check: fall must be a whole number from 1 to 100, not '101' (column 11)",
        ),
        (
            "http fall 2.0",
            "check: fall must be a whole number from 1 to 100, not '2.0' (column 11)",
        ),
        ("tcp port 0", "check: port must be a whole number from 1 to 65535, not '0' (column 10)"),
        (
            "tcp port 65536",
            "check: port must be a whole number from 1 to 65535, not '65536' (column 10)",
        ),
        (
            "http expect 99",
            "check: expect must be a status 100-599 or a range like 200-399, not '99' (column 13)",
        ),
        (
            "http expect 600",
            "check: expect must be a status 100-599 or a range like 200-399, not '600' (column 13)",
        ),
        (
            "http expect 399-200",
            "check: expect must be a status 100-599 or a range like 200-399,"
            " not '399-200' (column 13)",
        ),
        (
            "http expect 2xx",
            "check: expect must be a status 100-599 or a range like 200-399, not '2xx' (column 13)",
        ),
        (
            "http host a/b",
            "check: host must be a host name or address (a port may follow), not 'a/b' (column 11)",
        ),
        (
            "http body (up",
            "check: body '(up' is not a valid regex: missing ) at position 3 (column 11)",
        ),
        (
            'http body "a\tb"',
            r"check: body 'a\tb' holds a control character: write it as \n, \t..."
            " (column 11)",
        ),  # fmt: skip
        ('http body "up', "check: unclosed quote (column 11)"),
        ('http body "up"x', "check: a space must follow the closing quote (column 15)"),
    ],
)
def test_errors_name_the_word_and_its_column(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_check(text)
    assert str(caught.value) == message


# -- the round trip -------------------------------------------------------------------------

BODY = st.one_of(
    st.sampled_from(['a "b"', "\\\\", '\\"', "#x", "", " ", "\u00e9t\u00e9 \\d+"]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
).filter(lambda body: regex_error(body) is None)


@st.composite
def specs(draw: st.DrawFn) -> CheckSpec:
    kind = draw(st.sampled_from(KINDS))
    interval = draw(st.floats(0.1, 3600))
    spec = CheckSpec(
        kind,
        interval=interval,
        timeout=draw(st.floats(0, interval, exclude_min=True, exclude_max=True)),
        rise=draw(st.integers(1, 100)),
        fall=draw(st.integers(1, 100)),
        port=draw(st.none() | st.integers(1, 65535)),
    )
    if kind == "tcp":
        return spec
    low = draw(st.integers(100, 599))
    return replace(
        spec,
        method=draw(st.sampled_from(METHODS)),
        path=draw(st.from_regex(r"/[!-~]*", fullmatch=True)),
        expect=(low, draw(st.integers(low, 599))),
        host=draw(st.none() | st.from_regex(r"[A-Za-z0-9._:\[\]-]+", fullmatch=True)),
        body=draw(st.none() | BODY),
    )


@given(specs())
@example(CheckSpec("tcp", interval=0.1, timeout=1e-05))  # repr() writes it with an exponent
@example(CheckSpec("http", body='\\"'))
def test_parse_reads_back_what_format_writes(spec: CheckSpec) -> None:
    text = format_check(spec)
    assert parse_check(text) == spec, text
    assert format_check(parse_check(text)) == text  # the canonical text is a fixed point
