"""A popt-compatible argv scanner: poptGetNextOpt as Debian's libpopt 1.19 behaves for ipvsadm.

Same grammar and errors as popt: `--long`, `--long=arg`, `--long arg`, clustered short
options (`-Ln`), `-warg` / `-w arg` / `-w=arg` (but `-n=3` on a flag is "option does not take
an argument"), optional arguments only taken when the next word does not start with `-`, `--`
ending options, non-options collected as leftovers wherever they appear. No aliases, execs or
config files (ipvsadm uses none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tcpvs.errors import TcpvsError

POPT_ERROR_NOARG = -10
POPT_ERROR_BADOPT = -11
POPT_ERROR_UNWANTEDARG = -12

_STRERROR = {
    POPT_ERROR_NOARG: "missing argument",
    POPT_ERROR_BADOPT: "unknown option",
    POPT_ERROR_UNWANTEDARG: "option does not take an argument",
}


@dataclass(frozen=True)
class Option:
    """One row of a popt option table; `val` is what next_opt() returns for it."""

    long: str | None
    short: str | None
    val: str
    takes_arg: bool = False
    optional: bool = False


class PoptError(TcpvsError):
    """A scanning error: `code` is popt's, str() is poptStrerror(code)."""

    def __init__(self, code: int) -> None:
        super().__init__(_STRERROR.get(code, "unknown error"))
        self.code = code


@dataclass
class Context:
    """Scans argv (argv[0] is the program name) one option at a time."""

    argv: list[str]
    table: tuple[Option, ...]
    next: int = 1
    leftovers: list[str] = field(default_factory=list)
    _next_char: str | None = None
    _rest_leftover: bool = False
    _next_leftover: int = 0

    def _find_long(self, name: str) -> Option | None:
        return next((o for o in self.table if o.long == name), None)

    def _find_short(self, char: str) -> Option | None:
        return next((o for o in self.table if char and o.short == char), None)

    def bad_option(self) -> str:
        """poptBadOption(): the argv word consumed last."""
        return self.argv[self.next - 1]

    def next_opt(self) -> tuple[str, str | None] | None:
        """The next option as (val, argument or None); None at the end; PoptError on errors."""
        while True:
            long_arg: str | None = None
            opt: Option | None = None
            if self._next_char is None:
                if self.next == len(self.argv):
                    return None
                word = self.argv[self.next]
                self.next += 1
                if self._rest_leftover or not word.startswith("-") or word == "-":
                    self.leftovers.append(word)
                    continue
                if word == "--":
                    self._rest_leftover = True
                    continue
                body, one_dash = word[1:], True
                if body.startswith("-"):
                    body, one_dash = body[1:], False
                name, eq, value = body.partition("=")
                if eq:
                    long_arg = value
                # No option of ours has POPT_ARGFLAG_ONEDASH: "-word" is always a short cluster.
                opt = None if one_dash else self._find_long(name)
                if opt is None:
                    if not one_dash:
                        raise PoptError(POPT_ERROR_BADOPT)
                    self._next_char, long_arg = word[1:], None
            if self._next_char is not None:
                chars, self._next_char = self._next_char, None
                opt = self._find_short(chars[:1])
                if opt is None:
                    raise PoptError(POPT_ERROR_BADOPT)
                if chars[1:]:
                    self._next_char = chars[1:]
            assert opt is not None
            return opt.val, self._argument(opt, long_arg)

    def _argument(self, opt: Option, long_arg: str | None) -> str | None:
        if not opt.takes_arg:
            if long_arg is not None or (self._next_char or "").startswith("="):
                raise PoptError(POPT_ERROR_UNWANTEDARG)
            return None
        if long_arg is not None:
            return long_arg
        if self._next_char is not None:
            arg, self._next_char = self._next_char, None
            return arg[1:] if arg.startswith("=") else arg
        if self.next == len(self.argv):
            if not opt.optional:
                raise PoptError(POPT_ERROR_NOARG)
            return None
        if opt.optional and self.argv[self.next].startswith("-"):
            return None
        self.next += 1
        return self.argv[self.next - 1]

    def get_arg(self) -> str | None:
        """poptGetArg(): the next leftover word, or None."""
        if self._next_leftover < len(self.leftovers):
            self._next_leftover += 1
            return self.leftovers[self._next_leftover - 1]
        return None
