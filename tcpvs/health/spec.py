"""The grammar of a service's active health check, `check = <spec>`: parse_check reads it
(ValueError naming the offending word and its column), format_check writes the canonical
text, and the two round-trip.

    http [METHOD] [PATH] [expect 200-399] [interval 2] [timeout 1] [rise 2] [fall 3]
         [host NAME] [body REGEX] [port N]
    tcp [interval 2] [timeout 1] [rise 2] [fall 3] [port N]
    none
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn, TypeVar

import regex

from tcpvs.health.quoting import QUOTED, unescape

KINDS = ("http", "tcp")
METHODS = ("GET", "HEAD", "OPTIONS")
HTTP_ONLY = ("expect", "host", "body")

# ASCII digits only (str.isdigit and float() take other scripts' digits too); the exponent
# lets format_check write a tiny timeout as repr() does (1e-05).
_DECIMAL = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")
_EXPECT = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")
# Visible ASCII only: the path and the Host value go into the request as they are, so no
# space, CR or LF can split or add a line.
_PATH = re.compile(r"/[!-~]*")
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]+")


@dataclass(frozen=True)
class CheckSpec:
    """One service's check. method, path, expect, host and body matter to http only; port
    None checks the traffic port, host None sends the server's address as Host."""

    kind: str  # "http" or "tcp"
    method: str = "GET"
    path: str = "/"
    expect: tuple[int, int] = (200, 399)  # the statuses that pass, both ends included
    interval: float = 2.0  # seconds between checks
    timeout: float = 1.0  # seconds for a whole check: connect, ask, answer
    rise: int = 2  # consecutive passes that bring a down server up
    fall: int = 3  # consecutive failures that take an up server down
    host: str | None = None
    body: str | None = None  # a regex (the `regex` module's syntax) the body must contain
    port: int | None = None


class _Word(NamedTuple):
    text: str  # unquoted and unescaped
    column: int  # 1-based, where the word starts in the spec text


def _fail(message: str, word: _Word | None = None) -> NoReturn:
    where = f" (column {word.column})" if word else ""
    raise ValueError(f"check: {message}{where}")


def _words(text: str) -> list[_Word]:
    """Whitespace-separated words; a word starting with a double quote runs to the closing
    one, in which \\" is a quote and \\\\ a backslash (other backslashes stay: regex escapes)."""
    words: list[_Word] = []
    at = 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        start = at
        if text[at] == '"':
            quoted = QUOTED.match(text, at)
            if quoted is None:
                _fail("unclosed quote", _Word('"', start + 1))
            at = quoted.end()
            words.append(_Word(unescape(quoted.group(1)), start + 1))
            if at < len(text) and not text[at].isspace():
                _fail("a space must follow the closing quote", _Word(text[at], at + 1))
        else:
            while at < len(text) and not text[at].isspace():
                at += 1
            words.append(_Word(text[start:at], start + 1))
    return words


# -- values: each takes the keyword and the word after it, returns the value or fails ------


N = TypeVar("N", int, float)


def _ranged(name: str, word: _Word, value: N | None, low: float, high: float, what: str) -> N:
    if value is None or not low <= value <= high:
        _fail(f"{name} must be {what}, not {word.text!r}", word)
    return value


def _seconds(word: _Word) -> float | None:
    return float(word.text) if _DECIMAL.fullmatch(word.text) else None


def _integer(word: _Word) -> int | None:
    return int(word.text) if _INTEGER.fullmatch(word.text) else None


def _interval(name: str, word: _Word) -> float:
    return _ranged(name, word, _seconds(word), 0.1, 3600, "0.1 to 3600 seconds")


def _timeout(name: str, word: _Word) -> float:
    # (0, inf]: less than the interval is checked once both are known (either may come first)
    return _ranged(name, word, _seconds(word), math.ulp(0.0), math.inf, "more than 0 seconds")


def _count(name: str, word: _Word) -> int:
    return _ranged(name, word, _integer(word), 1, 100, "a whole number from 1 to 100")


def _port(name: str, word: _Word) -> int:
    return _ranged(name, word, _integer(word), 1, 65535, "a whole number from 1 to 65535")


def _expect(name: str, word: _Word) -> tuple[int, int]:
    found = _EXPECT.fullmatch(word.text)
    if found:
        low = int(found.group(1))
        high = int(found.group(2) or low)
        if 100 <= low <= high <= 599:
            return low, high
    _fail(f"{name} must be a status 100-599 or a range like 200-399, not {word.text!r}", word)


def _host(name: str, word: _Word) -> str:
    if not _HOST.fullmatch(word.text):
        _fail(f"{name} must be a host name or address (a port may follow), not {word.text!r}", word)
    return word.text


def regex_error(pattern: str) -> str | None:
    """Why `pattern` is not a regex the `regex` module compiles; None when it is."""
    try:
        regex.compile(pattern)
    except (regex.error, ValueError, OverflowError) as exc:
        return str(exc)
    return None


def _body(name: str, word: _Word) -> str:
    # A config line cannot carry a newline, and the regex has \n, \t... for those.
    if any(unicodedata.category(c) == "Cc" for c in word.text):
        _fail(f"{name} {word.text!r} holds a control character: write it as \\n, \\t...", word)
    error = regex_error(word.text)
    if error is not None:
        _fail(f"{name} {word.text!r} is not a valid regex: {error}", word)
    return word.text


_OPTIONS: dict[str, Callable[[str, _Word], Any]] = {
    "expect": _expect,
    "interval": _interval,
    "timeout": _timeout,
    "rise": _count,
    "fall": _count,
    "host": _host,
    "body": _body,
    "port": _port,
}


# -- the spec ----------------------------------------------------------------------------------


def parse_check(text: str) -> CheckSpec | None:
    """The check `text` describes, None for `none`; ValueError when it is not valid."""
    words = _words(text)
    if not words:
        _fail("empty: give http, tcp or none")
    kind = words[0].text.lower()
    if kind == "none":
        if len(words) > 1:
            _fail(f"nothing may follow none, not {words[1].text!r}", words[1])
        return None
    if kind not in KINDS:
        _fail(f"unknown kind {words[0].text!r}: give http, tcp or none", words[0])
    fields: dict[str, Any] = {"kind": kind}
    rest = _request_line(words[1:], fields) if kind == "http" else words[1:]
    given = _options(rest, kind, fields)
    timeout = fields.get("timeout", CheckSpec.timeout)
    interval = fields.get("interval", CheckSpec.interval)
    if timeout >= interval:
        # blame the timeout when it was given, else the interval that undercut the default
        if "timeout" in given:
            name, limit = "timeout", f"less than the interval ({format_number(interval)}s)"
        else:
            name, limit = "interval", f"more than the timeout ({format_number(timeout)}s)"
        _fail(f"{name} {given[name].text!r} must be {limit}", given[name])
    return CheckSpec(**fields)


def _is_method(words: list[_Word]) -> bool:
    """Is the first word meant as a method: a known one, or a word that looks like one (an
    unknown keyword is reported as that, not as a method)."""
    text = words[0].text
    if text.lower() in _OPTIONS or not text.isalpha():
        return False
    path_follows = len(words) > 1 and words[1].text.startswith("/")
    return text.upper() in METHODS or text.isupper() or path_follows


def _request_line(words: list[_Word], fields: dict[str, Any]) -> list[_Word]:
    """Take the optional METHOD and PATH that may follow `http`; the words after them."""
    if words and _is_method(words):
        method = words.pop(0)
        if method.text.upper() not in METHODS:
            _fail(f"method {method.text!r} is not one of {', '.join(METHODS)}", method)
        fields["method"] = method.text.upper()
    if words and words[0].text.startswith("/"):
        path = words.pop(0)
        if not _PATH.fullmatch(path.text):
            _fail(f"path {path.text!r} may hold visible ASCII characters only", path)
        fields["path"] = path.text
    return words


def _options(words: list[_Word], kind: str, values: dict[str, Any]) -> dict[str, _Word]:
    """Read `keyword value` pairs, each keyword at most once, into `values`; the value words."""
    given: dict[str, _Word] = {}
    for at in range(0, len(words), 2):
        key = words[at]
        name = key.text.lower()
        if name not in _OPTIONS:
            if key.text.startswith("/") and kind == "http":
                _fail(f"path {key.text!r} must come right after http or its method", key)
            _fail(f"unknown keyword {key.text!r}", key)
        if name in given:
            _fail(f"keyword {key.text!r} given twice", key)
        if kind != "http" and name in HTTP_ONLY:
            _fail(f"keyword {key.text!r} is for http checks only", key)
        if at + 1 == len(words):
            _fail(f"keyword {key.text!r} needs a value", key)
        given[name] = words[at + 1]
        values[name] = _OPTIONS[name](name, given[name])
    return given


def format_number(value: float) -> str:
    """Shortest text that reads back as `value`, without a trailing .0."""
    return str(int(value)) if value.is_integer() else repr(value)


def _quote(text: str) -> str:
    """`text` as one word that _words reads back unchanged (and a config file, where a word
    starting with # is a comment)."""
    if text and not text.startswith("#") and not any(c.isspace() or c == '"' for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_check(spec: CheckSpec | None) -> str:
    """The canonical text of `spec`: every value spelled out, host, body and port when set."""
    if spec is None:
        return "none"
    words = [spec.kind]
    if spec.kind == "http":
        low, high = spec.expect
        expect = str(low) if low == high else f"{low}-{high}"
        words += [spec.method, spec.path, "expect", expect]
    words += ["interval", format_number(spec.interval), "timeout", format_number(spec.timeout)]
    words += ["rise", str(spec.rise), "fall", str(spec.fall)]
    for name, value in (("host", spec.host), ("body", spec.body), ("port", spec.port)):
        if value is not None:
            words += [name, _quote(str(value))]
    return " ".join(words)
