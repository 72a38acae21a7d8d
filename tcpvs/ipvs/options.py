"""ipvsadm 1.31's command line: popt table, option handling, validation, messages, exit codes.

parse() turns one argv (argv[0] = program name) into a Command, exactly as ipvsadm's
parse_options + process_options checks do, in the same order so the first error is the same.
Errors are exceptions: Exit ends the program (fail(), usage, tryhelp), LineFailed only the
command (a popt error after the command; `-R` continues with the next line).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field, replace

from tcpvs._version import __version__
from tcpvs.ipvs import uapi
from tcpvs.ipvs.model import Daemon, Dest, Service, Timeouts
from tcpvs.ipvs.names import (
    SERVICE_ADDR,
    atoi,
    host_to_addr,
    inet_aton,
    inet_pton6,
    parse_service,
    string_to_number,
    strtol,
)
from tcpvs.ipvs.popt import Context, Option, PoptError

VERSION = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)"
# pyipvsadm's own line after ipvsadm's version line (-v, -h): scripts that read ipvsadm's first
# line still find it; everything else stays ipvsadm's, byte for byte.
PYIPVSADM_VERSION = f"pyipvsadm (tcpvs {__version__})"
PYIPVSADM_HELP = (
    f"{PYIPVSADM_VERSION}: ipvsadm's commands, plus --json and --apply FILE [--dry-run|--watch]"
)
VERSION_TEXT = f"{VERSION}\n{PYIPVSADM_VERSION}\n"  # what -v prints
SCHEDULERS = "rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh"
PE_LIST = "sip"
DEF_SCHED = "wlc"
DEF_MCAST_IFN = "eth0"
MAX_TIMEOUT = 86400 * 31
IPVS_SVC_PERSISTENT_TIMEOUT = 6 * 60

# Commands (ipvsadm's CMD_* numbering, then ours).
(
    CMD_ADD,
    CMD_EDIT,
    CMD_DEL,
    CMD_FLUSH,
    CMD_LIST,
    CMD_ADDDEST,
    CMD_DELDEST,
    CMD_EDITDEST,
    CMD_TIMEOUT,
    CMD_STARTDAEMON,
    CMD_STOPDAEMON,
    CMD_RESTORE,
    CMD_SAVE,
    CMD_ZERO,
    CMD_APPLY,
) = range(1, 16)
CMDNAMES = (
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
    "apply",
)

# Options (ipvsadm's OPTC_* bit numbers, then ours).
OPTNAMES = (
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "json",
    "dry-run",
    "drain-timeout",
    "watch",
    "remove-down",
)
(
    OPTC_NUMERIC,
    OPTC_CONNECTION,
    OPTC_SERVICE,
    OPTC_SCHEDULER,
    OPTC_PERSISTENT,
    OPTC_NETMASK,
    OPTC_SERVER,
    OPTC_FORWARD,
    OPTC_WEIGHT,
    OPTC_UTHRESHOLD,
    OPTC_LTHRESHOLD,
    OPTC_MCAST,
    OPTC_TIMEOUT,
    OPTC_DAEMON,
    OPTC_STATS,
    OPTC_RATE,
    OPTC_THRESHOLDS,
    OPTC_PERSISTENTCONN,
    OPTC_NOSORT,
    OPTC_SYNCID,
    OPTC_EXACT,
    OPTC_ONEPACKET,
    OPTC_PE,
    OPTC_SCHED_FLAGS,
    OPTC_MCAST_GROUP,
    OPTC_MCAST_PORT,
    OPTC_MCAST_TTL,
    OPTC_SYNC_MAXLEN,
    OPTC_TUN_INFO,
    OPTC_TUN_TYPE,
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
    OPTC_JSON,
    OPTC_DRY_RUN,
    OPTC_DRAIN_TIMEOUT,
    OPTC_WATCH,
    OPTC_REMOVE_DOWN,
) = range(len(OPTNAMES))

# Printing format flags.
FMT_NUMERIC, FMT_RULE, FMT_STATS, FMT_RATE = 0x1, 0x2, 0x4, 0x8
FMT_THRESHOLDS, FMT_PERSISTENTCONN, FMT_NOSORT, FMT_EXACT, FMT_TUN_INFO = (
    0x10,
    0x20,
    0x40,
    0x80,
    0x100,
)


def _row(plus: tuple[int, ...] = (), blank: tuple[int, ...] = (), one: tuple[int, ...] = ()) -> str:
    cells = ["x"] * len(OPTNAMES)
    for marks, cols in (("+", plus), (" ", blank), ("1", one)):
        for col in cols:
            cells[col] = marks
    return "".join(cells)


_SVC_OPTS = (
    OPTC_SCHEDULER,
    OPTC_PERSISTENT,
    OPTC_NETMASK,
    OPTC_ONEPACKET,
    OPTC_PE,
    OPTC_SCHED_FLAGS,
)
_DEST_OPTS = (
    OPTC_FORWARD,
    OPTC_WEIGHT,
    OPTC_UTHRESHOLD,
    OPTC_LTHRESHOLD,
    OPTC_TUN_TYPE,
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
)
# ipvsadm's commands_v_options: '+' required, 'x' illegal, '1' at most one, ' ' optional.
COMMANDS_V_OPTIONS = {
    CMD_ADD: _row((OPTC_SERVICE,), _SVC_OPTS),
    CMD_EDIT: _row((OPTC_SERVICE,), _SVC_OPTS),
    CMD_DEL: _row((OPTC_SERVICE,)),
    CMD_FLUSH: _row(),
    CMD_LIST: _row(
        (),
        (
            OPTC_NUMERIC,
            OPTC_STATS,
            OPTC_RATE,
            OPTC_THRESHOLDS,
            OPTC_PERSISTENTCONN,
            OPTC_NOSORT,
            OPTC_SYNCID,
            OPTC_EXACT,
            OPTC_TUN_INFO,
            OPTC_JSON,
        ),
        (OPTC_CONNECTION, OPTC_SERVICE, OPTC_TIMEOUT, OPTC_DAEMON),
    ),
    CMD_ADDDEST: _row((OPTC_SERVICE, OPTC_SERVER), _DEST_OPTS),
    CMD_DELDEST: _row((OPTC_SERVICE, OPTC_SERVER)),
    CMD_EDITDEST: _row((OPTC_SERVICE, OPTC_SERVER), _DEST_OPTS),
    CMD_TIMEOUT: _row(),
    CMD_STARTDAEMON: _row(
        (),
        (
            OPTC_MCAST,
            OPTC_SYNCID,
            OPTC_MCAST_GROUP,
            OPTC_MCAST_PORT,
            OPTC_MCAST_TTL,
            OPTC_SYNC_MAXLEN,
        ),
    ),
    CMD_STOPDAEMON: _row((), (OPTC_SYNCID,)),
    CMD_RESTORE: _row(),
    CMD_SAVE: _row((), (OPTC_NUMERIC, OPTC_JSON)),
    CMD_ZERO: _row((), (OPTC_SERVICE,)),
    CMD_APPLY: _row(
        (), (OPTC_JSON, OPTC_DRY_RUN, OPTC_DRAIN_TIMEOUT, OPTC_WATCH, OPTC_REMOVE_DOWN)
    ),
}

TUNNAMES = ("ipip", "gue", "gre")
_TUNOPTS = (OPTC_TUN_PORT, OPTC_TUN_NOCSUM, OPTC_TUN_CSUM, OPTC_TUN_REMCSUM)
TUNNEL_TYPES_V_OPTIONS = ("xxxx", "+111", "x11x")

_A = True  # takes an argument
OPTIONS = (
    Option("add-service", "A", "A"),
    Option("edit-service", "E", "E"),
    Option("delete-service", "D", "D"),
    Option("clear", "C", "C"),
    Option("list", "L", "L"),
    Option("list", "l", "l"),
    Option("zero", "Z", "Z"),
    Option("add-server", "a", "a"),
    Option("edit-server", "e", "e"),
    Option("delete-server", "d", "d"),
    Option("set", None, "set"),
    Option("help", "h", "h"),
    Option("version", "v", "v"),
    Option("restore", "R", "R"),
    Option("save", "S", "S"),
    Option("start-daemon", None, "start-daemon", _A),
    Option("stop-daemon", None, "stop-daemon", _A),
    Option("tcp-service", "t", "t", _A),
    Option("udp-service", "u", "u", _A),
    Option("sctp-service", None, "sctp-service", _A),
    Option("fwmark-service", "f", "f", _A),
    Option("scheduler", "s", "s", _A),
    Option("persistent", "p", "p", _A, optional=True),
    Option("netmask", "M", "M", _A),
    Option("real-server", "r", "r", _A),
    Option("masquerading", "m", "m"),
    Option("ipip", "i", "i"),
    Option("gatewaying", "g", "g"),
    Option("weight", "w", "w", _A),
    Option("u-threshold", "x", "x", _A),
    Option("l-threshold", "y", "y", _A),
    Option("numeric", "n", "n"),
    Option("connection", "c", "c"),
    Option("mcast-interface", None, "mcast-interface", _A),
    Option("syncid", None, "I", _A),
    Option("timeout", None, "timeout"),
    Option("daemon", None, "daemon"),
    Option("stats", None, "stats"),
    Option("rate", None, "rate"),
    Option("thresholds", None, "thresholds"),
    Option("persistent-conn", None, "persistent-conn"),
    Option("nosort", None, "nosort"),
    Option("sort", None, "sort"),
    Option("exact", "X", "X"),
    Option("ipv6", "6", "6"),
    Option("ops", "o", "o"),
    Option("pe", None, "pe", _A),
    Option("sched-flags", "b", "b", _A),
    Option("mcast-group", None, "mcast-group", _A),
    Option("mcast-port", None, "mcast-port", _A),
    Option("mcast-ttl", None, "mcast-ttl", _A),
    Option("sync-maxlen", None, "sync-maxlen", _A),
    Option("tun-info", None, "tun-info"),
    Option("tun-type", None, "tun-type", _A),
    Option("tun-port", None, "tun-port", _A),
    Option("tun-nocsum", None, "tun-nocsum"),
    Option("tun-csum", None, "tun-csum"),
    Option("tun-remcsum", None, "tun-remcsum"),
    # pyipvsadm's own
    Option("json", None, "json"),
    Option("apply", None, "apply", _A),
    Option("dry-run", None, "dry-run"),
    Option("drain-timeout", None, "drain-timeout", _A),
    Option("watch", None, "watch"),
    Option("remove-down", None, "remove-down"),
)

_COMMAND_TAGS = {
    "A": CMD_ADD,
    "E": CMD_EDIT,
    "D": CMD_DEL,
    "a": CMD_ADDDEST,
    "e": CMD_EDITDEST,
    "d": CMD_DELDEST,
    "C": CMD_FLUSH,
    "L": CMD_LIST,
    "l": CMD_LIST,
    "Z": CMD_ZERO,
    "set": CMD_TIMEOUT,
    "R": CMD_RESTORE,
    "S": CMD_SAVE,
    "start-daemon": CMD_STARTDAEMON,
    "stop-daemon": CMD_STOPDAEMON,
    "apply": CMD_APPLY,
}
# Options that only set a bit (and maybe a format flag).
_FLAG_TAGS = {
    "c": (OPTC_CONNECTION, 0),
    "n": (OPTC_NUMERIC, FMT_NUMERIC),
    "timeout": (OPTC_TIMEOUT, 0),
    "daemon": (OPTC_DAEMON, 0),
    "stats": (OPTC_STATS, FMT_STATS),
    "rate": (OPTC_RATE, FMT_RATE),
    "thresholds": (OPTC_THRESHOLDS, FMT_THRESHOLDS),
    "persistent-conn": (OPTC_PERSISTENTCONN, FMT_PERSISTENTCONN),
    "nosort": (OPTC_NOSORT, FMT_NOSORT),
    "X": (OPTC_EXACT, FMT_EXACT),
    "tun-info": (OPTC_TUN_INFO, FMT_TUN_INFO),
    "json": (OPTC_JSON, 0),
    "dry-run": (OPTC_DRY_RUN, 0),
    "watch": (OPTC_WATCH, 0),
    "remove-down": (OPTC_REMOVE_DOWN, 0),
}
_FORWARDS = {
    "i": uapi.IP_VS_CONN_F_TUNNEL,
    "g": uapi.IP_VS_CONN_F_DROUTE,
    "m": uapi.IP_VS_CONN_F_MASQ,
}
_TUN_FLAG_TAGS = {
    "tun-nocsum": (OPTC_TUN_NOCSUM, uapi.IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM),
    "tun-csum": (OPTC_TUN_CSUM, uapi.IP_VS_TUNNEL_ENCAP_FLAG_CSUM),
    "tun-remcsum": (OPTC_TUN_REMCSUM, uapi.IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM),
}
_SCHED_FLAGS = {
    "flag-1": (uapi.IP_VS_SVC_F_SCHED1, None),
    "flag-2": (uapi.IP_VS_SVC_F_SCHED2, None),
    "flag-3": (uapi.IP_VS_SVC_F_SCHED3, None),
    "sh-fallback": (uapi.IP_VS_SVC_F_SCHED_SH_FALLBACK, "sh"),
    "sh-port": (uapi.IP_VS_SVC_F_SCHED_SH_PORT, "sh"),
    "mh-fallback": (uapi.IP_VS_SVC_F_SCHED_MH_FALLBACK, "mh"),
    "mh-port": (uapi.IP_VS_SVC_F_SCHED_MH_PORT, "mh"),
}


class Exit(Exception):  # noqa: N818 - it is an exit, not an error
    """End the program with `status`, after writing `out` to stdout and `err` to stderr."""

    def __init__(self, status: int, err: str = "", out: str = "") -> None:
        super().__init__(err or out)
        self.status, self.err, self.out = status, err, out


class LineFailed(Exception):  # noqa: N818
    """This command failed (status 255) with `message`; a restore goes on with the next."""


def fail(message: str) -> Exit:
    return Exit(2, message + "\n")


def tryhelp(prog: str) -> Exit:
    return Exit(255, f"Try `{prog} -h' or '{prog} --help' for more information.\n")


def usage(prog: str) -> str:
    p = prog
    return (
        f"{VERSION}\n{PYIPVSADM_HELP}\n"
        "Usage:\n"
        f"  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] "
        "[--pe persistence_engine] [-b sched-flags]\n"
        f"  {p} -D virtual-service\n"
        f"  {p} -C\n"
        f"  {p} -R\n"
        f"  {p} -S [-n]\n"
        f"  {p} -a|e virtual-service -r server-address [options]\n"
        f"  {p} -d virtual-service -r server-address\n"
        f"  {p} -L|l [virtual-service] [options]\n"
        f"  {p} -Z [virtual-service]\n"
        f"  {p} --set tcp tcpfin udp\n"
        f"  {p} --start-daemon {{master|backup}} [daemon-options]\n"
        f"  {p} --stop-daemon {{master|backup}}\n"
        f"  {p} -h\n\n"
        "Commands:\n"
        "Either long or short options are allowed.\n"
        "  --add-service     -A        add virtual service with options\n"
        "  --edit-service    -E        edit virtual service with options\n"
        "  --delete-service  -D        delete virtual service\n"
        "  --clear           -C        clear the whole table\n"
        "  --restore         -R        restore rules from stdin\n"
        "  --save            -S        save rules to stdout\n"
        "  --add-server      -a        add real server with options\n"
        "  --edit-server     -e        edit real server with options\n"
        "  --delete-server   -d        delete real server\n"
        "  --list            -L|-l     list the table\n"
        "  --zero            -Z        zero counters in a service or all services\n"
        "  --set tcp tcpfin udp        set connection timeout values\n"
        "  --start-daemon              start connection sync daemon\n"
        "  --stop-daemon               stop connection sync daemon\n"
        "  --help            -h        display this help message\n\n"
        "virtual-service:\n"
        "  --tcp-service|-t  service-address   service-address is host[:port]\n"
        "  --udp-service|-u  service-address   service-address is host[:port]\n"
        "  --sctp-service    service-address   service-address is host[:port]\n"
        "  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n"
        "\n"
        "Options:\n"
        "  --ipv6         -6                   fwmark entry uses IPv6\n"
        f"  --scheduler    -s scheduler         one of {SCHEDULERS},\n"
        f"                                      the default scheduler is {DEF_SCHED}.\n"
        f"  --pe            engine              alternate persistence engine may be {PE_LIST},\n"
        "                                      not set by default.\n"
        "  --persistent   -p [timeout]         persistent service\n"
        "  --netmask      -M netmask           persistent granularity mask\n"
        "  --real-server  -r server-address    server-address is host (and port)\n"
        "  --gatewaying   -g                   gatewaying (direct routing) (default)\n"
        "  --ipip         -i                   ipip encapsulation (tunneling)\n"
        "  --masquerading -m                   masquerading (NAT)\n"
        "  --tun-type      type                one of ipip|gue|gre,\n"
        "                                      the default tunnel type is ipip.\n"
        "  --tun-port      port                tunnel destination port\n"
        "  --tun-nocsum                        tunnel encapsulation without checksum\n"
        "  --tun-csum                          tunnel encapsulation with checksum\n"
        "  --tun-remcsum                       tunnel encapsulation with remote checksum\n"
        "  --weight       -w weight            capacity of real server\n"
        "  --u-threshold  -x uthreshold        upper threshold of connections\n"
        "  --l-threshold  -y lthreshold        lower threshold of connections\n"
        "  --connection   -c                   output of current IPVS connections\n"
        "  --timeout                           output of timeout (tcp tcpfin udp)\n"
        "  --daemon                            output of daemon information\n"
        "  --stats                             output of statistics information\n"
        "  --rate                              output of rate information\n"
        "  --exact                             expand numbers (display exact values)\n"
        "  --thresholds                        output of thresholds information\n"
        "  --persistent-conn                   output of persistent connection info\n"
        "  --tun-info                          output of tunnel information\n"
        "  --nosort                            disable sorting output of service/server "
        "entries\n"
        "  --sort                              does nothing, for backwards compatibility\n"
        "  --ops          -o                   one-packet scheduling\n"
        "  --numeric      -n                   numeric output of addresses and ports\n"
        "  --sched-flags  -b flags             scheduler flags (comma-separated)\n"
        "Daemon Options:\n"
        "  --syncid sid                        syncid for connection sync (default=255)\n"
        "  --sync-maxlen length                Max sync message length (default=1472)\n"
        "  --mcast-interface interface         multicast interface for connection sync\n"
        "  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n"
        "  --mcast-port port                   UDP port (default=8848)\n"
        "  --mcast-ttl ttl                     Multicast TTL (default=1)\n"
    )


@dataclass
class _Svc:
    """ipvs_service_t as ipvsadm fills it (netmask: IPv4 mask in host order or v6 prefix)."""

    af: int = 0
    protocol: int = 0
    addr: bytes = b""
    port: int = 0
    fwmark: int = 0
    sched_name: str = ""
    flags: int = 0
    timeout: int = 0
    netmask: int = 0xFFFFFFFF
    pe_name: str = ""


@dataclass
class _Dest:
    af: int = 0
    addr: bytes = b""
    port: int = 0
    conn_flags: int = uapi.IP_VS_CONN_F_DROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0


@dataclass
class Command:
    """One parsed command line: the command, the option bits, the format and the values."""

    cmd: int = 0
    options: int = 0
    fmt: int = 0
    svc: _Svc = field(default_factory=_Svc)
    dest: _Dest = field(default_factory=_Dest)
    timeouts: Timeouts = field(default_factory=Timeouts)
    daemon: Daemon = field(default_factory=lambda: Daemon(state=0, mcast_ifn=""))
    apply_file: str = ""
    drain_timeout: float = 30.0

    def has(self, optc: int) -> bool:
        return bool(self.options & (1 << optc))

    @property
    def name(self) -> str:
        return CMDNAMES[self.cmd - 1]

    def service(self) -> Service:
        """The virtual service of this command as a model object."""
        s = self.svc
        af = s.af or uapi.AF_INET
        addr = _addr_text(af, s.addr)
        return Service(
            af=af,
            protocol=s.protocol,
            addr="" if s.fwmark else addr,
            port=s.port,
            fwmark=s.fwmark,
            scheduler=s.sched_name,
            flags=s.flags,
            timeout=s.timeout,
            netmask=s.netmask,
            pe_name=s.pe_name,
        )

    def has_service_key(self) -> bool:
        """ipvsadm's zero test: a fwmark, a non-zero address or a port was given."""
        return bool(self.svc.fwmark or any(self.svc.addr) or self.svc.port)

    def real_server(self) -> Dest:
        d = self.dest
        af = d.af or uapi.AF_INET
        return Dest(
            addr=_addr_text(af, d.addr),
            port=d.port,
            af=af,
            fwd=d.conn_flags & uapi.IP_VS_CONN_F_FWD_MASK,
            weight=d.weight,
            u_threshold=d.u_threshold,
            l_threshold=d.l_threshold,
            tun_type=d.tun_type,
            tun_port=d.tun_port,
            tun_flags=d.tun_flags,
        )


def _addr_text(af: int, raw: bytes) -> str:
    size = 16 if af == uapi.AF_INET6 else 4
    packed = raw[:size].ljust(size, b"\0")
    return str(ipaddress.ip_address(packed))


def _set_option(ce: Command, optc: int) -> None:
    if ce.has(optc):
        raise fail(f"multiple '{OPTNAMES[optc]}' options specified")
    ce.options |= 1 << optc


def _parse_timeout(arg: str | None, lo: int, hi: int) -> int:
    if arg is None:
        return IPVS_SVC_PERSISTENT_TIMEOUT
    value = string_to_number(arg, lo, hi)
    if value == -1:
        raise fail(f"invalid timeout value `{arg}' specified")
    return value


def _parse_fwmark(arg: str) -> int:
    value = strtol(arg)
    if value is None or value == 0 or (value % 2**64) > 0xFFFFFFFF:
        raise fail(f"invalid fwmark value `{arg}' specified")
    return value


def _parse_sched_flags(sched: str, arg: str) -> int:
    sched = sched or DEF_SCHED
    flags = 0
    for flag in filter(None, arg.split(",")):
        bit, needs = _SCHED_FLAGS.get(flag, (None, None))
        if bit is None:
            raise fail(f"invalid scheduler flag `{flag}'")
        flags |= bit
        if needs is not None and sched != needs:
            raise fail(f"incompatible scheduler flag `{flag}'")
    return flags


def _number(arg: str, lo: int, hi: int, what: str) -> int:
    value = string_to_number(arg, lo, hi)
    if value == -1:
        raise fail(f"illegal {what} specified")
    return value


def _mcast_group(ce: Command, arg: str) -> None:
    if ":" in arg:
        raw = inet_pton6(arg)
        if raw is None or raw[0] != 0xFF:
            raise fail(f"invalid IPv6 mcast-group `{arg}'")
        group = str(ipaddress.IPv6Address(raw))
    else:
        try:
            raw = socket.inet_pton(uapi.AF_INET, arg)
        except OSError:
            raw = None
        if raw is None or raw[0] & 0xF0 != 0xE0:
            raise fail(f"invalid IPv4 mcast-group `{arg}'")
        group = str(ipaddress.IPv4Address(raw))
    ce.daemon = replace(ce.daemon, mcast_group=group)


def _first_command(ce: Command, ctx: Context, prog: str) -> None:
    try:
        first = ctx.next_opt()
    except PoptError:
        raise tryhelp(prog) from None
    if first is None:
        raise tryhelp(prog)
    tag, arg = first
    if tag == "h":
        raise Exit(0, out=usage(prog))
    if tag == "v":
        raise Exit(0, out=VERSION_TEXT)
    if tag not in _COMMAND_TAGS:
        raise tryhelp(prog)
    ce.cmd = _COMMAND_TAGS[tag]
    if ce.cmd in (CMD_STARTDAEMON, CMD_STOPDAEMON):
        state = {"master": uapi.IP_VS_STATE_MASTER, "backup": uapi.IP_VS_STATE_BACKUP}.get(
            arg or ""
        )
        if state is None:
            raise fail(
                "illegal start-daemon parameter specified"
                if ce.cmd == CMD_STARTDAEMON
                else "illegal start_daemon specified"
            )
        ce.daemon = replace(ce.daemon, state=state)
    elif ce.cmd == CMD_APPLY:
        ce.apply_file = arg or ""


def _service_option(ce: Command, tag: str, arg: str) -> None:
    _set_option(ce, OPTC_SERVICE)
    if tag == "f":
        ce.svc.af, ce.svc.protocol = uapi.AF_INET, uapi.IPPROTO_TCP
        ce.svc.fwmark = _parse_fwmark(arg)
        return
    ce.svc.protocol = {"t": uapi.IPPROTO_TCP, "u": uapi.IPPROTO_UDP}.get(tag, uapi.IPPROTO_SCTP)
    bits, af, raw, port = parse_service(arg, ce.svc.protocol)
    if af:
        ce.svc.af, ce.svc.addr = af, raw
        if af == uapi.AF_INET6:
            ce.svc.netmask = 128
    if bits & 2:
        ce.svc.port = port
    if not bits & SERVICE_ADDR:
        raise fail("illegal virtual server address[:port] specified")


def _server_option(ce: Command, arg: str) -> None:
    _set_option(ce, OPTC_SERVER)
    bits, af, raw, port = parse_service(arg, ce.svc.protocol)
    ce.dest.af = af or ce.svc.af
    ce.dest.addr = raw if af else ce.svc.addr
    ce.dest.port = port if bits & 2 else ce.svc.port
    if not bits & SERVICE_ADDR:
        raise fail("illegal real server address[:port] specified")


def _netmask_option(ce: Command, arg: str) -> None:
    _set_option(ce, OPTC_NETMASK)
    if ce.svc.af != uapi.AF_INET6:
        raw = inet_aton(arg) or host_to_addr(arg)
        if raw is None:
            raise fail("illegal virtual server persistent mask specified")
        ce.svc.netmask = int.from_bytes(raw, "big")
    else:
        ce.svc.netmask = atoi(arg)
        if not 1 <= ce.svc.netmask <= 128:
            raise fail("illegal ipv6 netmask specified")


def _option(ce: Command, tag: str, arg: str | None, ctx: Context) -> str | None:
    """Apply one option after the command; returns the -b argument when it is seen."""
    a = arg or ""
    if tag in ("t", "u", "sctp-service", "f"):
        _service_option(ce, tag, a)
    elif tag == "s":
        _set_option(ce, OPTC_SCHEDULER)
        ce.svc.sched_name = a[: uapi.IP_VS_SCHEDNAME_MAXLEN - 1]
    elif tag == "p":
        _set_option(ce, OPTC_PERSISTENT)
        ce.svc.flags |= uapi.IP_VS_SVC_F_PERSISTENT
        ce.svc.timeout = _parse_timeout(arg, 1, MAX_TIMEOUT)
    elif tag == "M":
        _netmask_option(ce, a)
    elif tag == "r":
        _server_option(ce, a)
    elif tag in _FORWARDS:
        _set_option(ce, OPTC_FORWARD)
        ce.dest.conn_flags = _FORWARDS[tag]
    elif tag == "w":
        _set_option(ce, OPTC_WEIGHT)
        # Debian's ipvsadm is patched to take weights up to INT_MAX (upstream: 65535).
        ce.dest.weight = _number(a, 0, 2**31 - 1, "weight")
    elif tag == "x":
        _set_option(ce, OPTC_UTHRESHOLD)
        ce.dest.u_threshold = _number(a, 0, 2**31 - 1, "u_threshold")
    elif tag == "y":
        _set_option(ce, OPTC_LTHRESHOLD)
        ce.dest.l_threshold = _number(a, 0, 2**31 - 1, "l_threshold")
    elif tag in _FLAG_TAGS:
        optc, fmt = _FLAG_TAGS[tag]
        _set_option(ce, optc)
        ce.fmt |= fmt
    elif tag == "mcast-interface":
        _set_option(ce, OPTC_MCAST)
        ce.daemon = replace(ce.daemon, mcast_ifn=a[: uapi.IP_VS_IFNAME_MAXLEN - 1])
    elif tag == "I":
        _set_option(ce, OPTC_SYNCID)
        ce.daemon = replace(ce.daemon, syncid=_number(a, 0, 255, "syncid"))
    elif tag == "sort":
        pass
    elif tag == "6":
        if not ce.svc.fwmark:
            raise fail("-6 used before -f\n")
        ce.svc.af, ce.svc.netmask = uapi.AF_INET6, 128
    elif tag == "o":
        _set_option(ce, OPTC_ONEPACKET)
        ce.svc.flags |= uapi.IP_VS_SVC_F_ONEPACKET
    elif tag == "pe":
        _set_option(ce, OPTC_PE)
        ce.svc.pe_name = a[: uapi.IP_VS_PENAME_MAXLEN]
    elif tag == "b":
        _set_option(ce, OPTC_SCHED_FLAGS)
        return a[:127]
    elif tag == "mcast-group":
        _set_option(ce, OPTC_MCAST_GROUP)
        _mcast_group(ce, a)
    elif tag == "mcast-port":
        _set_option(ce, OPTC_MCAST_PORT)
        ce.daemon = replace(ce.daemon, mcast_port=_number(a, 1, 65535, "mcast-port"))
    elif tag == "mcast-ttl":
        _set_option(ce, OPTC_MCAST_TTL)
        ce.daemon = replace(ce.daemon, mcast_ttl=_number(a, 1, 255, "mcast-ttl"))
    elif tag == "sync-maxlen":
        _set_option(ce, OPTC_SYNC_MAXLEN)
        ce.daemon = replace(ce.daemon, sync_maxlen=_number(a, 1, 65535 - 20 - 8, "sync-maxlen"))
    elif tag == "tun-type":
        _set_option(ce, OPTC_TUN_TYPE)
        if a not in TUNNAMES:
            raise fail("illegal tunnel type specified")
        ce.dest.tun_type = TUNNAMES.index(a)
    elif tag == "tun-port":
        _set_option(ce, OPTC_TUN_PORT)
        ce.dest.tun_port = _number(a, 1, 65535, "tunnel port")
    elif tag in _TUN_FLAG_TAGS:
        optc, bit = _TUN_FLAG_TAGS[tag]
        _set_option(ce, optc)
        ce.dest.tun_flags |= bit
    elif tag == "drain-timeout":
        _set_option(ce, OPTC_DRAIN_TIMEOUT)
        try:
            ce.drain_timeout = float(a)
        except ValueError:
            ce.drain_timeout = -1.0
        if not 0 <= ce.drain_timeout < float("inf"):
            raise fail(f"invalid drain timeout `{a}' specified")
    else:
        raise fail(f"invalid option `{ctx.bad_option()}'")
    return None


def _parse_options(argv: list[str]) -> Command:
    prog = argv[0]
    ce = Command()
    ctx = Context(argv, OPTIONS)
    _first_command(ce, ctx, prog)
    sched_flags = ""
    while True:
        try:
            item = ctx.next_opt()
        except PoptError as exc:
            raise LineFailed(f"{ctx.bad_option()}: {exc}") from None
        if item is None:
            break
        flags_arg = _option(ce, item[0], item[1], ctx)
        if flags_arg is not None:
            sched_flags = flags_arg
    if ce.cmd == CMD_TIMEOUT:
        values = [ctx.get_arg() for _ in range(3)]
        if None in values:
            raise fail("--set option requires 3 timeout values")
        tcp, fin, udp = (_parse_timeout(v, 0, MAX_TIMEOUT) for v in values)
        ce.timeouts = Timeouts(tcp, fin, udp)
    extra = ctx.get_arg()
    if extra is not None:
        raise fail(f"unexpected argument {extra}")
    if sched_flags:
        ce.svc.flags &= ~uapi.SCHED_FLAGS
        ce.svc.flags |= _parse_sched_flags(ce.svc.sched_name, sched_flags)
    return ce


def _matrix_check(ce: Command, rules, where: str) -> None:
    """ipvsadm's option matrix check: `rules` pairs a matrix cell ('+', 'x', '1', ' ') with an
    option index; `where` ends every message ("'add-service' command", "'gue' tunnel type")."""
    last = None
    for rule, optc in rules:
        if not ce.has(optc):
            if rule == "+":
                raise fail(f"You need to supply the '{OPTNAMES[optc]}' option for the {where}")
            continue
        if rule == "x":
            raise fail(f"Illegal '{OPTNAMES[optc]}' option with the {where}")
        if rule == "1":
            if last is None:
                last = optc
                continue
            raise fail(
                f"The option '{OPTNAMES[optc]}' conflicts with the '{OPTNAMES[last]}' "
                f"option in the {where}"
            )


def _generic_opt_check(ce: Command) -> None:
    rules = ((rule, j) for j, rule in enumerate(COMMANDS_V_OPTIONS[ce.cmd]))
    _matrix_check(ce, rules, f"'{ce.name}' command")


def _tunnel_opt_check(ce: Command) -> None:
    rules = zip(TUNNEL_TYPES_V_OPTIONS[ce.dest.tun_type], _TUNOPTS, strict=True)
    _matrix_check(ce, rules, f"'{TUNNAMES[ce.dest.tun_type]}' tunnel type")


_TUNNEL_OPTIONS = sum(
    1 << o for o in (OPTC_TUN_TYPE, OPTC_TUN_PORT, OPTC_TUN_NOCSUM, OPTC_TUN_CSUM, OPTC_TUN_REMCSUM)
)


def _apply_opt_check(ce: Command) -> None:
    """--apply's own rules: --watch prints no plan (no --dry-run, --json) and reads its file
    again on SIGHUP (so not stdin); --remove-down is a --watch option."""
    for other in (OPTC_DRY_RUN, OPTC_JSON):
        if ce.has(OPTC_WATCH) and ce.has(other):
            raise fail(
                f"The option 'watch' conflicts with the '{OPTNAMES[other]}' option in the "
                "'apply' command"
            )
    if ce.has(OPTC_REMOVE_DOWN) and not ce.has(OPTC_WATCH):
        raise fail("You need to supply the 'watch' option for the 'remove-down' option")
    if ce.has(OPTC_WATCH) and ce.apply_file == "-":
        raise fail("--watch needs a file (it is read again on SIGHUP), not stdin")


def parse(argv: list[str]) -> Command:
    """parse_options + the checks of process_options, for argv[0] = program name."""
    ce = _parse_options(argv)
    _generic_opt_check(ce)
    svc = ce.svc
    if ce.cmd in (CMD_ADD, CMD_EDIT):
        if not svc.fwmark and not svc.port and not svc.flags & uapi.IP_VS_SVC_F_PERSISTENT:
            raise fail("Zero port specified for non-persistent service")
        if (
            svc.flags & uapi.IP_VS_SVC_F_ONEPACKET
            and not svc.fwmark
            and svc.protocol != uapi.IPPROTO_UDP
        ):
            raise fail("One-Packet Scheduling is only for UDP virtual services")
        svc.sched_name = svc.sched_name or DEF_SCHED
    if ce.cmd == CMD_STARTDAEMON and not ce.daemon.mcast_ifn:
        ce.daemon = replace(ce.daemon, mcast_ifn=DEF_MCAST_IFN)
    fwd = ce.dest.conn_flags & uapi.IP_VS_CONN_F_FWD_MASK
    if ce.cmd in (CMD_ADDDEST, CMD_EDITDEST):
        if not svc.fwmark and fwd in (uapi.IP_VS_CONN_F_TUNNEL, uapi.IP_VS_CONN_F_DROUTE):
            ce.dest.port = svc.port
        if ce.dest.af != svc.af and fwd != uapi.IP_VS_CONN_F_TUNNEL:
            raise fail("Different address family is allowed only for tunneling servers")
        if ce.options & _TUNNEL_OPTIONS and fwd != uapi.IP_VS_CONN_F_TUNNEL:
            raise fail("Tunnel options conflict with forward method")
        _tunnel_opt_check(ce)
    if ce.cmd == CMD_APPLY:
        _apply_opt_check(ce)
    if ce.cmd == CMD_LIST:
        listing = ce.options & ((1 << OPTC_CONNECTION) | (1 << OPTC_TIMEOUT) | (1 << OPTC_DAEMON))
        fmts = ce.options & ((1 << OPTC_STATS) | (1 << OPTC_RATE) | (1 << OPTC_THRESHOLDS))
        tables = ce.options & ((1 << OPTC_TIMEOUT) | (1 << OPTC_DAEMON))
        if (listing and fmts) or (tables and ce.has(OPTC_PERSISTENTCONN)):
            raise fail("options conflicts in the list command")
    return ce


def restore_tokens(line: str) -> list[str]:
    """config_stream_read: a line split on blanks, tabs and CRs, `ipvsadm` words dropped."""
    return [
        t for t in line.replace("\t", " ").replace("\r", " ").split(" ") if t and t != "ipvsadm"
    ]
