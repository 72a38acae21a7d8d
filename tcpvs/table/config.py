"""The KTCPVS configuration grammar: config text -> a new Table, every error as file:line.

No I/O except address resolution (through tcpvs.table.addr, like every command). The whole file is
parsed and validated into a fresh Table, so a bad file never touches a running one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tcpvs.errors import ConfigError, ListenConflict, TableError
from tcpvs.health.spec import CheckSpec, format_check, parse_check
from tcpvs.table.addr import Address, AddressError, parse_address
from tcpvs.table.model import (
    DEFAULT_PORT,
    DEFAULT_SERVER_PORT,
    MAX_MATCH,
    MAX_WEIGHT,
)
from tcpvs.table.operations import REDIRECT_HTTPS, Table, written_name
from tcpvs.table.settings import SETTINGS_BY_NAME, check_setting
from tcpvs.tls.certs import CertificateError, load_certificate
from tcpvs.tls.settings import TLS_VERSIONS

# What each statement looks like, for "expected ..." messages.
SYNTAX = {
    "listen": "listen = host[:port]",
    "scheduler": "scheduler = name",
    "redirect": "redirect = host[:port] | https",
    "server": "server = host[:port] [weight] [tls [NAME]] [check SPEC]",
    "rule": 'rule = pattern "regex" [match n] use server host[:port]',
    "sni": 'rule = sni "name|*.name|~regex|*" use server host[:port]',
    "tls": "tls = /path/to/chain-and-key.pem",
    "tls_min": "tls_min = 1.2|1.3",
    "tls_ca": "tls_ca = /path/to/ca-bundle.pem",
    "tls_verify": "tls_verify = required|none",
    "check": "check = http [METHOD] [PATH] [expect CODES] ... | tcp ... | none",
}
REDIRECT_DEFAULT_PORT = 80


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    line: int  # 1-based
    quoted: bool = False

    def is_word(self, word: str) -> bool:
        """An unquoted keyword or punctuation (keywords are case-insensitive)."""
        return not self.quoted and self.text.lower() == word


def _closing_quote(line: str, start: int) -> int:
    """Index of the `"` closing a quoted string opened before `start`, or -1.

    A backslash keeps the next character (both are kept in the text, as KTCPVS kept `\\"`),
    so `\\"` does not close the string and `\\\\` does not escape the quote after it.
    """
    i = start
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == '"':
            return i
        i += 1
    return -1


def quotable(pattern: str) -> bool:
    """True when `pattern` written between double quotes reads back as the same text."""
    return "\n" not in pattern and _closing_quote(pattern + '"', 0) == len(pattern)


def tokenize(text: str, filename: str) -> list[Token]:
    """Whitespace-separated tokens; `#` starting a token comments out the rest of the line."""
    tokens: list[Token] = []
    for number, line in enumerate(text.split("\n"), start=1):
        i, end = 0, len(line)
        while i < end:
            if line[i].isspace():
                i += 1
            elif line[i] == "#":
                break
            elif line[i] == '"':
                close = _closing_quote(line, i + 1)
                if close < 0:
                    raise ConfigError(filename, number, "unterminated quoted string")
                if close + 1 < end and not line[close + 1].isspace():
                    raise ConfigError(filename, number, "missing space after quoted string")
                tokens.append(Token(line[i + 1 : close], number, True))
                i = close + 1
            else:
                start = i
                while i < end and not line[i].isspace():
                    i += 1
                tokens.append(Token(line[start:i], number))
    return tokens


@dataclass
class ServiceDecl:
    """One `Virtual NAME { ... }` block, validated but not yet applied to a table."""

    ident: str
    line: int
    options: dict[str, Any] = field(default_factory=dict)  # Table.add_service keywords
    lines: dict[str, int] = field(default_factory=dict)  # option -> line it was set on
    servers: list[tuple[int, Address, int, str | None, bool | str]] = field(default_factory=list)
    rules: list[tuple[int, str, int, Address]] = field(default_factory=list)
    sni_rules: list[tuple[int, str, Address]] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[Token], filename: str) -> None:
        self.tokens = tokens
        self.filename = filename
        self.pos = 0

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(self.filename, line, message)

    def next(self, after: Token, what: str) -> Token:
        if self.pos >= len(self.tokens):
            raise self.error(after.line, f"unexpected end of file, expected {what}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def rest_of_line(self, line: int) -> list[Token]:
        """The tokens left on `line`, up to a closing `}` (which stays for the block)."""
        start = self.pos
        while (
            self.pos < len(self.tokens)
            and self.tokens[self.pos].line == line
            and not self.tokens[self.pos].is_word("}")
        ):
            self.pos += 1
        return self.tokens[start : self.pos]

    def parse(self) -> list[ServiceDecl]:
        services: list[ServiceDecl] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.is_word("virtual"):
                services.append(self.service(token))
            elif token.is_word("tcp") and self._version_header(token):
                self.rest_of_line(token.line)  # the header line of `tcpvsadm -L`
            else:
                raise self.error(
                    token.line, f"invalid command '{token.text}' (expected 'Virtual NAME {{')"
                )
        return services

    def _version_header(self, first: Token) -> bool:
        words = [t for t in self.tokens[self.pos : self.pos + 3] if t.line == first.line]
        return [t.text.lower() for t in words if not t.quoted] == ["virtual", "server", "version"]

    def service(self, keyword: Token) -> ServiceDecl:
        name = self.next(keyword, "a service name after 'Virtual'")
        if name.is_word("{") or name.is_word("}"):
            raise self.error(name.line, "missing service name after 'Virtual'")
        brace = self.next(name, "'{'")
        if not brace.is_word("{"):
            raise self.error(brace.line, f"expected '{{' after 'Virtual {name.text}'")
        decl = ServiceDecl(name.text, keyword.line)
        while True:
            if self.pos >= len(self.tokens):
                raise self.error(keyword.line, f"'Virtual {name.text} {{' is never closed")
            key = self.tokens[self.pos]
            self.pos += 1
            if key.is_word("}"):
                return decl
            self.statement(decl, key, self.rest_of_line(key.line))

    def statement(self, decl: ServiceDecl, key: Token, rest: list[Token]) -> None:
        name = key.text.lower()
        handler = _HANDLERS.get(name)
        if key.quoted or (handler is None and name not in SETTINGS_BY_NAME):
            hint = " ('=' must be separated by spaces)" if "=" in key.text else ""
            raise self.error(key.line, f"unknown key '{key.text}'{hint}")
        if not rest or not rest[0].is_word("="):
            raise self.error(key.line, f"expected '=' after '{key.text}'")
        values = rest[1:]
        if name in decl.lines and name not in ("server", "rule", "tls"):
            raise self.error(key.line, f"'{name}' is set twice (first on line {decl.lines[name]})")
        if handler is None:
            self.setting(decl, name, key.line, values)
        else:
            handler(self, decl, key.line, values)
        decl.lines.setdefault(name, key.line)

    def expect(self, line: int, name: str, values: list[Token], low: int, high: int) -> None:
        if not low <= len(values) <= high:
            raise self.error(line, f"syntax error, expected '{SYNTAX[name]}'")

    def address(self, line: int, what: str, text: str, default_port: int) -> Address:
        try:
            return parse_address(text, default_port)
        except AddressError as exc:
            raise self.error(line, exc.explain(f"illegal {what} address '{text}'")) from None

    def number(self, line: int, what: str, text: str, high: int) -> int:
        if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= high:
            raise self.error(line, f"illegal {what} '{text}' (0..{high})")
        return int(text)

    def setting(self, decl: ServiceDecl, name: str, line: int, values: list[Token]) -> None:
        if len(values) != 1:
            raise self.error(line, f"syntax error, expected '{name} = value'")
        try:
            decl.options[name] = check_setting(name, values[0].text)
        except ValueError as exc:
            raise self.error(line, f"illegal {name} '{values[0].text}' ({exc})") from None

    def listen(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "listen", values, 1, 1)
        decl.options["listen"] = self.address(line, "listen", values[0].text, DEFAULT_PORT)

    def scheduler(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "scheduler", values, 1, 1)
        decl.options["scheduler"] = values[0].text

    def redirect(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "redirect", values, 1, 1)
        text = values[0].text
        if text.lower() == REDIRECT_HTTPS:
            decl.options["redirect"] = REDIRECT_HTTPS
            return
        decl.options["redirect"] = self.address(line, "redirect", text, REDIRECT_DEFAULT_PORT)

    def server(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        # host[:port] [weight] [tls [NAME]] [check SPEC...]; a check: the server's own
        words = [t.text.lower() for t in values]
        own = words.index("check", 1) if "check" in words[1:] else len(values)
        head = values[:own]
        self.expect(line, "server", head, 1, 4)
        address = self.address(line, "server", head[0].text, DEFAULT_SERVER_PORT)
        rest = head[1:]
        weight = 1
        if rest and not rest[0].is_word("tls"):
            weight = self.number(line, "weight", rest[0].text, MAX_WEIGHT)
            rest = rest[1:]
        tls: bool | str = False
        if rest and rest[0].is_word("tls"):
            tls = rest[1].text if len(rest) > 1 else written_name(head[0].text) or True
            rest = rest[2:]
        if rest:
            raise self.error(line, f"syntax error, expected '{SYNTAX['server']}'")
        check = None  # (its service's)
        if own < len(values):  # its own, as text: `none` is a check too
            check = format_check(self.check_spec(line, values[own + 1 :]))
        decl.servers.append((line, address, weight, check, tls))

    def tls(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        # one certificate file per line, loaded (and so checked) here: its error is this line's
        self.expect(line, "tls", values, 1, 1)
        try:
            certificate = load_certificate(values[0].text)
        except CertificateError as exc:
            raise self.error(line, f"tls: {exc}") from None
        decl.options.setdefault("tls", []).append(certificate)

    def tls_ca(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "tls_ca", values, 1, 1)
        decl.options["tls_ca"] = values[0].text

    def tls_verify(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "tls_verify", values, 1, 1)
        word = values[0].text.lower()
        if word not in ("none", "required"):
            raise self.error(line, f"illegal tls_verify '{values[0].text}' (required or none)")
        decl.options["tls_verify"] = word == "required"

    def tls_min(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        self.expect(line, "tls_min", values, 1, 1)
        if values[0].text not in TLS_VERSIONS:
            raise self.error(line, f"illegal tls_min '{values[0].text}' (1.2 or 1.3)")
        decl.options["tls_min"] = values[0].text

    def check(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        decl.options["check"] = self.check_spec(line, values)

    def check_spec(self, line: int, values: list[Token]) -> CheckSpec | None:
        """`none` or a check's spec (an empty one: a syntax error)."""
        self.expect(line, "check", values, 1, 64)
        text = " ".join(_unquoted_text(t) for t in values)
        try:
            return parse_check(text)
        except ValueError as exc:
            raise self.error(line, str(exc)) from None

    def rule(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        if values and values[0].is_word("sni"):
            self.sni_rule(decl, line, values)
            return
        match = 0
        if len(values) == 7 and values[2].is_word("match"):
            match = self.number(line, "match number", values[3].text, MAX_MATCH)
            values = values[:2] + values[4:]
        if not (
            len(values) == 5
            and values[0].is_word("pattern")
            and values[2].is_word("use")
            and values[3].is_word("server")
        ):
            raise self.error(line, f"syntax error, expected '{SYNTAX['rule']}'")
        address = self.address(line, "server", values[4].text, DEFAULT_SERVER_PORT)
        decl.rules.append((line, values[1].text, match, address))

    def sni_rule(self, decl: ServiceDecl, line: int, values: list[Token]) -> None:
        if not (len(values) == 5 and values[2].is_word("use") and values[3].is_word("server")):
            raise self.error(line, f"syntax error, expected '{SYNTAX['sni']}'")
        address = self.address(line, "server", values[4].text, DEFAULT_SERVER_PORT)
        decl.sni_rules.append((line, values[1].text, address))


_HANDLERS = {
    "listen": _Parser.listen,
    "scheduler": _Parser.scheduler,
    "redirect": _Parser.redirect,
    "server": _Parser.server,
    "rule": _Parser.rule,
    "check": _Parser.check,
    "tls": _Parser.tls,
    "tls_min": _Parser.tls_min,
    "tls_ca": _Parser.tls_ca,
    "tls_verify": _Parser.tls_verify,
}


def _unquoted_text(token: Token) -> str:
    """A token as it was written (a quoted one in its quotes)."""
    return f'"{token.text}"' if token.quoted else token.text


def parse_services(text: str, filename: str) -> list[ServiceDecl]:
    """The blocks of a config file, syntax and values checked (nothing applied yet)."""
    return _Parser(tokenize(text, filename), filename).parse()


def parse_config(text: str, filename: str) -> Table:
    """A new Table built from a config file's text; ConfigError(filename, line, message)."""
    table = Table()
    decls: dict[str, ServiceDecl] = {}
    for decl in parse_services(text, filename):
        try:
            table.add_service(decl.ident, **decl.options)
        except ListenConflict as exc:
            other = decls[exc.other]
            where = f"{exc} (line {other.lines.get('listen', other.line)})"
            raise ConfigError(filename, decl.lines.get("listen", decl.line), where) from None
        except TableError as exc:
            line = decl.line
            if str(exc).startswith("Scheduler not found"):
                line = decl.lines.get("scheduler", decl.line)
            raise ConfigError(filename, line, str(exc)) from None
        decls[decl.ident] = decl
        for line, address, weight, check, tls in decl.servers:
            _apply(filename, line, table.add_server, decl.ident, address, weight, check, tls)
        for line, pattern, match, address in decl.rules:
            _apply(filename, line, table.add_rule, decl.ident, pattern, address, match)
        for line, pattern, address in decl.sni_rules:
            _apply(filename, line, table.add_sni_rule, decl.ident, pattern, address)
    return table


def _apply(filename: str, line: int, method: Any, *args: Any) -> None:
    try:
        method(*args)
    except TableError as exc:
        raise ConfigError(filename, line, str(exc)) from None
