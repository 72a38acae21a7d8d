"""tcpvsadm: KTCPVS's admin command line (one command per run), sent to tcpvsd's control socket.

Options are checked here exactly as the original checked them (the command x option matrix,
value ranges, its messages); the daemon then applies the command or refuses it.
Exit status: 0 done, 1 refused by the daemon, 2 usage error, 3 no daemon.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import click

from tcpvs._version import __version__
from tcpvs.configfile import read_config_file
from tcpvs.control.client import ControlClient
from tcpvs.control.protocol import DEFAULT_SOCKET, default_socket_path
from tcpvs.errors import ConfigError, ControlError, DaemonNotRunning, TcpvsError, UnreadableConfig
from tcpvs.sched import available
from tcpvs.table.addr import AddressError, format_address, parse_address
from tcpvs.table.config import quotable
from tcpvs.table.listing import render_config, render_json
from tcpvs.table.model import DEFAULT_SCHEDULER, DEFAULT_SERVER_PORT, MAX_MATCH, MAX_WEIGHT

PROG = "tcpvsadm"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_DAEMON = 0, 1, 2, 3
TRY_HELP = f"Try `{PROG} -h' or '{PROG} --help' for more information."


class UsageError(TcpvsError):
    """A bad command line; str() is the message. `try_help` adds the pointer to -h."""

    def __init__(self, message: str, try_help: bool = False) -> None:
        super().__init__(message)
        self.try_help = try_help


@dataclass(frozen=True)
class Option:
    key: str
    short: str | None
    long: str
    metavar: str | None = None  # None: a flag
    help: str = ""

    @property
    def name(self) -> str:
        """The name in KTCPVS's matrix messages: the long option without dashes."""
        return self.long[2:]

    @property
    def flag(self) -> str:
        return self.short or self.long


@dataclass(frozen=True)
class Command:
    key: str
    short: str | None
    long: str
    help: str
    needs: tuple[str, ...] = ()  # option keys that must be given
    allows: tuple[str, ...] = ()  # option keys that may be given
    metavar: str | None = None  # the command takes a value (-f FILE)

    @property
    def name(self) -> str:
        return self.long[2:]


# Matrix columns, in KTCPVS's order (the first violated column gives the message).
OPTIONS = (
    Option("numeric", "-n", "--numeric", None, "numeric output of addresses and ports"),
    Option("ident", "-i", "--ident", "identity", "service identity"),
    Option("scheduler", "-s", "--scheduler", "scheduler", "one of {schedulers}"),
    Option("port", "-P", "--port", "port", "service port number"),
    Option(
        "real_server", "-r", "--real-server", "server-address", "server-address is host (and port)"
    ),
    Option("weight", "-w", "--weight", "weight", "capacity of real server"),
    Option(
        "pattern", "-p", "--pattern", "pattern", "regular expression matched on the Request-URI"
    ),
    Option("match", "-m", "--match", "match-num", "match number to hash (hhttp only)"),
    Option("listen", "-l", "--listen", "server-address", "server-address is host (and port)"),
    Option("stats", None, "--stats", None, "also list connection, request and byte counters"),
    Option("json", None, "--json", None, "list as JSON"),
    Option("state", None, "--state", "state", "ready, drain (no new requests) or maint"),
    Option("check", None, "--check", "check", "how servers are checked, or none"),
    Option("tls", None, "--tls", "file", "-A/-E: a certificate chain and key (PEM), repeatable"),
    Option("sni", None, "--sni", None, "rules: the pattern is a TLS server name (passthrough)"),
    Option("server_tls", None, "--server-tls", "name", "-a/-e: reach it over TLS (name, on, off)"),
)
OPTIONS_BY_KEY = {o.key: o for o in OPTIONS}
SOCKET = Option("socket", None, "--socket", "path", "tcpvsd's control socket ({socket})")
# Second lines of an option's help, aligned under its first.
MORE_HELP = {
    "scheduler": f"the default scheduler is {DEFAULT_SCHEDULER}.",
    "socket": f"default: $TCPVS_SOCKET, else {DEFAULT_SOCKET}",
    "check": '"http [GET] [/path] [expect 200-399] [interval 2] [timeout 1] [rise 2] [fall 3]"'
    "\n" + " " * 38 + "with -a/-e: one server's own; default: its service's again",
}

_SERVICE = ("scheduler", "port", "listen", "check", "tls")
_SERVER = ("ident", "real_server")
_RULE = ("ident", "pattern", "real_server")
COMMANDS = (
    Command(
        "add_service",
        "-A",
        "--add-service",
        "add virtual service with options",
        ("ident",),
        _SERVICE,
    ),
    Command(
        "edit_service",
        "-E",
        "--edit-service",
        "edit virtual service with options",
        ("ident",),
        _SERVICE,
    ),
    Command("delete_service", "-D", "--delete-service", "delete virtual service", ("ident",)),
    Command("flush", "-F", "--flush", "flush the whole table"),
    Command(
        "add_server",
        "-a",
        "--add-server",
        "add real server with options",
        _SERVER,
        ("weight", "check", "server_tls"),
    ),
    Command(
        "edit_server",
        "-e",
        "--edit-server",
        "edit real server with options",
        _SERVER,
        ("weight", "state", "check", "server_tls"),
    ),
    Command("delete_server", "-d", "--delete-server", "delete real server", _SERVER),
    Command(
        "add_rule", None, "--add-rule", "add rule into virtual service", _RULE, ("match", "sni")
    ),
    Command("delete_rule", None, "--del-rule", "del rule from virtual service", _RULE, ("sni",)),
    Command("list", "-L", "--list", "list the table", (), ("numeric", "ident", "stats", "json")),
    Command("load_config", "-f", "--load-configfile", "load a config file", metavar="file"),
    Command("start", None, "--start", "start the virtual services", (), ("ident",)),
    Command("stop", None, "--stop", "stop the virtual services", (), ("ident",)),
)
COMMANDS_BY_KEY = {c.key: c for c in COMMANDS}
HELP = Command("help", "-h", "--help", "display this help message")
VERSION = Command("version", "-v", "--version", "display the version")
# Option keys -> argument names of the Switch operation of the same name as the command.
ARGUMENTS = {
    "ident": "ident",
    "scheduler": "scheduler",
    "port": "port",
    "listen": "listen",
    "real_server": "server",
    "weight": "weight",
    "pattern": "pattern",
    "match": "match",
    "state": "state",
    "check": "check",
    "tls": "tls",
    "server_tls": "tls",
}
# Options that may be given more than once (their values are a list).
REPEATABLE = frozenset({"tls"})


def _parser() -> click.Command:
    """The click command that only parses: every option may repeat so we can say it did."""
    params: list[click.Parameter] = [click.Argument(["leftovers"], nargs=-1)]
    for item in (*COMMANDS, *OPTIONS, SOCKET, HELP, VERSION):
        decls = [item.long, *([item.short] if item.short else []), item.key]
        if item.metavar is None:
            params.append(click.Option(decls, count=True))
        else:
            params.append(click.Option(decls, multiple=True))
    return click.Command(PROG, params=params, add_help_option=False)


def help_text() -> str:
    schedulers = "|".join(available()) or "(none installed)"
    lines = [
        f"{PROG} {__version__}",
        "Usage:",
        f"  {PROG} -A|E -i ident [-s scheduler] [-P port] [-l address[:port]] [--check check]",
        "        [--tls file|none ...]",
        f"  {PROG} -D -i ident",
        f"  {PROG} -F",
        f"  {PROG} -a|e -i ident -r server-address [-w weight] [--check check|default]",
        "        [--server-tls name|on|off]",
        f"  {PROG} -e -i ident -r server-address --state ready|drain|maint [-w weight]",
        f"  {PROG} -d -i ident -r server-address",
        f"  {PROG} --add-rule -i ident -p pattern -r server-address [-m match-num]",
        f"  {PROG} --add-rule|del-rule -i ident --sni -p server-name -r server-address",
        f"  {PROG} --del-rule -i ident -p pattern -r server-address",
        f"  {PROG} -L [-n] [-i ident] [--stats] [--json]",
        f"  {PROG} -f config-file",
        f"  {PROG} --start|stop [-i ident]",
        f"  {PROG} -h",
        f"  {PROG} -v",
        "",
        "Commands:",
        "Either long or short options are allowed.",
    ]
    for cmd in (*COMMANDS, HELP, VERSION):
        lines.append(f"  {cmd.long:<18}{cmd.short or '':<10}{cmd.help}")
    lines += ["", "Options:"]
    # The original's order, then what tcpvsadm added.
    order = ("ident", "scheduler", "port", "pattern", "match", "real_server", "listen", "weight")
    added = ("numeric", "stats", "json", "state", "check", "tls", "sni", "server_tls")
    for opt in (*(OPTIONS_BY_KEY[k] for k in (*order, *added)), SOCKET):
        short = f"{opt.short} {opt.metavar or ''}" if opt.short else opt.metavar or ""
        text = opt.help.format(schedulers=schedulers, socket=default_socket_path())
        lines.append(f"  {opt.long:<15}{short:<21}{text}".rstrip())
        if opt.key in MORE_HELP:
            lines.append(" " * 38 + MORE_HELP[opt.key])
    return "\n".join(lines) + "\n"


# -- option values, checked as the original did ----------------------------------------------


def _number(text: str, low: int, high: int, message: str) -> int:
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise UsageError(message)
    return int(text)


BAD_ADDRESS = "illegal address:port specified"


def _listen(text: str) -> str:
    """`host[:port]` resolved to numeric; the port stays absent if absent (-P/default apply)."""
    try:
        address = parse_address(text, 0)
    except AddressError as exc:
        raise UsageError(exc.explain(BAD_ADDRESS)) from None
    if address.port == 0:
        return f"[{address.host}]" if ":" in address.host else address.host
    return format_address(address)


def _server(text: str) -> str:
    try:
        return format_address(parse_address(text, DEFAULT_SERVER_PORT))
    except AddressError as exc:
        raise UsageError(exc.explain(BAD_ADDRESS)) from None


def _pattern(text: str) -> str:
    # A pattern must read back from `-L` output: no bare `"`, no newline, no trailing `\`.
    if not text or not quotable(text):
        raise UsageError("illegal pattern specified")
    return text


def _tls(text: str) -> str:
    """A certificate file made absolute (tcpvsd reads it, from another working directory);
    `none` (no TLS) as nothing."""
    return "" if text == "none" else os.path.abspath(text)


_CONVERT = {
    "port": lambda v: _number(v, 1, 65534, "illegal server port specified"),
    "weight": lambda v: _number(v, 0, MAX_WEIGHT, "illegal weight specified"),
    "match": lambda v: _number(v, 0, MAX_MATCH, "illegal match number specified"),
    "listen": _listen,
    "real_server": _server,
    "pattern": _pattern,
    "tls": _tls,
}


def parse_command_line(args: Sequence[str]) -> tuple[Command | None, dict[str, Any]]:
    """(command, option values) of a command line, or (None, {"help": bool}) for -h/-v.

    Raises UsageError for anything the original refused before asking the kernel.
    """
    try:
        ctx = _parser().make_context(PROG, list(args))
    except click.ClickException as exc:
        raise UsageError(exc.format_message(), try_help=True) from None
    given = ctx.params
    if given["help"] or given["version"]:
        return None, {"help": bool(given["help"])}
    commands = [c for c in COMMANDS if given[c.key]]
    if len(commands) > 1 or sum(_count(given[c.key]) for c in commands) > 1:
        raise UsageError("multiple commands specified")
    for opt in (*OPTIONS, SOCKET):
        if _count(given[opt.key]) > 1 and opt.key not in REPEATABLE:
            raise UsageError(f"multiple '{opt.flag}' options specified")
    if given["leftovers"]:
        raise UsageError("unknown arguments found in command line")
    values: dict[str, Any] = {}
    for opt in (*OPTIONS, SOCKET):
        if opt.metavar is None and given[opt.key]:
            values[opt.key] = True
        elif opt.key in REPEATABLE and given[opt.key]:
            values[opt.key] = [v for v in map(_CONVERT[opt.key], given[opt.key]) if v]
        elif opt.metavar is not None and given[opt.key]:
            convert = _CONVERT.get(opt.key, str)
            values[opt.key] = convert(given[opt.key][0])
    if not commands:
        if set(values) - {"socket"}:
            raise UsageError("no command specified", try_help=True)
        return COMMANDS_BY_KEY["list"], values  # no arguments: list the table
    command = commands[0]
    if command.metavar:
        values[command.key] = given[command.key][0]
    _check_matrix(command, values)
    return command, values


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value)


def _check_matrix(command: Command, values: dict[str, Any]) -> None:
    for opt in OPTIONS:
        if opt.key in command.needs and opt.key not in values:
            raise UsageError(
                f"You need to supply the '{opt.name}' option for the '{command.name}' command"
            )
        if opt.key in values and opt.key not in command.needs + command.allows:
            raise UsageError(f"Illegal '{opt.name}' option with the '{command.name}' command")


# -- running a command ---------------------------------------------------------------------


def _list(client: ControlClient, command: Command, v: dict[str, Any]) -> str:
    snap = client.call("snapshot", ident=v.get("ident"))
    if v.get("json"):
        return render_json(snap)
    return render_config(
        snap, numeric=bool(v.get("numeric")), header="ident" not in v, stats=bool(v.get("stats"))
    )


def _load_config(client: ControlClient, command: Command, v: dict[str, Any]) -> None:
    path = v["load_config"]
    try:
        text = read_config_file(path)
    except UnreadableConfig as exc:
        raise UsageError(str(exc)) from None
    client.call("load_config", text=text, filename=path)


def _operation(client: ControlClient, command: Command, v: dict[str, Any]) -> None:
    """Commands that are a Switch operation of the same name, with the options they allow."""
    keys = command.needs + command.allows
    client.call(command.key, **{ARGUMENTS[k]: v[k] for k in keys if k in v})


def _rule(client: ControlClient, command: Command, v: dict[str, Any]) -> None:
    """--add-rule / --del-rule: a URI pattern's, or with --sni a server name's."""
    if not v.get("sni"):
        _operation(client, command, v)
    elif "match" in v:
        raise UsageError("Illegal 'match' option with the 'sni' option")
    else:
        op = command.key.replace("_rule", "_sni_rule")
        client.call(op, ident=v["ident"], pattern=v["pattern"], server=v["real_server"])


SPECIAL_ACTIONS = {
    "list": _list,
    "load_config": _load_config,
    "add_rule": _rule,
    "delete_rule": _rule,
}


def run(args: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one tcpvsadm command line; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        command, values = parse_command_line(args)
        if command is None:
            out.write(help_text() if values["help"] else f"{PROG} {__version__}\n")
            return EXIT_OK
        client = ControlClient(values.get("socket"))
        output = SPECIAL_ACTIONS.get(command.key, _operation)(client, command, values)
    except UsageError as exc:
        err.write(f"{exc}\n" + (f"{TRY_HELP}\n" if exc.try_help else ""))
        return EXIT_USAGE
    except DaemonNotRunning as exc:
        err.write(f"{exc}\n")
        return EXIT_NO_DAEMON
    except (ControlError, ConfigError) as exc:
        err.write(f"{exc}\n")
        return EXIT_REFUSED
    if isinstance(output, str):
        out.write(output)
    return EXIT_OK


def main() -> None:
    """Console entry point (`tcpvsadm`)."""
    sys.exit(run(sys.argv[1:]))
