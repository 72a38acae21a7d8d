"""ipvsadm's command line: popt grammar, validation messages and exit codes, parsed values.

The (command line, status, stderr) table was recorded from Debian's ipvsadm 1.31 (its option
parser run with the kernel calls stubbed out; the VM cross-check replays such lines against
the real thing); parse() must give the same first error for each.
"""

from __future__ import annotations

import shlex

import pytest

from tcpvs import __version__
from tcpvs.ipvs import uapi
from tcpvs.ipvs.model import Daemon, Dest, Service, Timeouts
from tcpvs.ipvs.options import (
    CMD_ADDDEST,
    CMD_LIST,
    CMD_STARTDAEMON,
    CMD_TIMEOUT,
    FMT_NUMERIC,
    FMT_STATS,
    OPTC_WATCH,
    Exit,
    LineFailed,
    parse,
    restore_tokens,
)
from tcpvs.ipvs.popt import Context, Option, PoptError

TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"

RECORDED = [
    ("-A -t 10.0.0.1", 2, "Zero port specified for non-persistent service\n"),
    ("-A -t 10.0.0.1:0", 2, "Zero port specified for non-persistent service\n"),
    ("-A -t 10.0.0.1:53 -o", 2, "One-Packet Scheduling is only for UDP virtual services\n"),
    ("-A -f 0", 2, "invalid fwmark value `0' specified\n"),
    ("-A -f -1", 2, "invalid fwmark value `-1' specified\n"),
    ("-A -f 4294967296", 2, "invalid fwmark value `4294967296' specified\n"),
    ("-A -f abc", 2, "invalid fwmark value `abc' specified\n"),
    ("-A -6 -f 5", 2, "-6 used before -f\n\n"),
    ("-A -f 5 -6 -M 0", 2, "illegal ipv6 netmask specified\n"),
    ("-A -f 5 -6 -M 129", 2, "illegal ipv6 netmask specified\n"),
    ("-A -t [2001:db8::1]:80 -p -M abc", 2, "illegal ipv6 netmask specified\n"),
    ("-A -t [2001:db8::1] -p", 2, "illegal virtual server address[:port] specified\n"),
    ("-A -t [1.2.3.4]:80", 2, "Zero port specified for non-persistent service\n"),
    ("-A -t 1234", 2, "illegal virtual server address[:port] specified\n"),
    ('-A -t ""', 2, "illegal virtual server address[:port] specified\n"),
    ("-A -t 10.0.0.1:nosuchservice", 2, "illegal virtual server address[:port] specified\n"),
    ("-A -t 10.0.0.1:65536", 2, "illegal virtual server address[:port] specified\n"),
    ("-A -t 10.0.0.1:-1", 2, "illegal virtual server address[:port] specified\n"),
    ("-A -t 10.0.0.1:80 -b sh-fallback", 2, "incompatible scheduler flag `sh-fallback'\n"),
    ("-A -t 10.0.0.1:80 -s mh -b sh-port", 2, "incompatible scheduler flag `sh-port'\n"),
    ("-A -t 10.0.0.1:80 -b bogus", 2, "invalid scheduler flag `bogus'\n"),
    ("-A -t 10.0.0.1:80 -s rr -s wlc", 2, "multiple 'scheduler' options specified\n"),
    ("-A -t 10.0.0.1:80 -t 10.0.0.2:80", 2, "multiple 'service-address' options specified\n"),
    ("-A -t 10.0.0.1:80 -f 3", 2, "multiple 'service-address' options specified\n"),
    (
        "-A -t 10.0.0.1:80 -r 10.0.0.2",
        2,
        "Illegal 'real-server' option with the 'add-service' command\n",
    ),
    ("-A -t 10.0.0.1:80 -w 3", 2, "Illegal 'weight' option with the 'add-service' command\n"),
    ("-A -t 10.0.0.1:80 -n", 2, "Illegal 'numeric' option with the 'add-service' command\n"),
    ("-A -t 10.0.0.1:80 -p 0", 2, "invalid timeout value `0' specified\n"),
    ("-A -t 10.0.0.1:80 -p 2678401", 2, "invalid timeout value `2678401' specified\n"),
    ("-A -t 10.0.0.1:80 -p abc", 2, "invalid timeout value `abc' specified\n"),
    ("-A -t 10.0.0.1:80 foo", 2, "unexpected argument foo\n"),
    ("-A foo -t 10.0.0.1:80", 2, "unexpected argument foo\n"),
    ("-A -t 10.0.0.1:80 -L", 2, "invalid option `-L'\n"),
    ("-A -t 10.0.0.1:80 -h", 2, "invalid option `-h'\n"),
    ("-A -t 10.0.0.1:80 -v", 2, "invalid option `-v'\n"),
    ("-E", 2, "You need to supply the 'service-address' option for the 'edit-service' command\n"),
    (
        "-D -t 10.0.0.1:80 -s rr",
        2,
        "Illegal 'scheduler' option with the 'delete-service' command\n",
    ),
    ("-D", 2, "You need to supply the 'service-address' option for the 'delete-service' command\n"),
    ("-C -n", 2, "Illegal 'numeric' option with the 'flush' command\n"),
    ("-C x", 2, "unexpected argument x\n"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", 2, "illegal weight specified\n"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w abc", 2, "illegal weight specified\n"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -x -1", 2, "illegal u_threshold specified\n"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -y abc", 2, "illegal l_threshold specified\n"),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
        2,
        "You need to supply the 'tun-port' option for the 'gue' tunnel type\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
        2,
        "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0",
        2,
        "illegal tunnel port specified\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
        2,
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-port 5",
        2,
        "Illegal 'tun-port' option with the 'gre' tunnel type\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type ipip --tun-csum",
        2,
        "Illegal 'tun-csum' option with the 'ipip' tunnel type\n",
    ),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan", 2, "illegal tunnel type specified\n"),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre",
        2,
        "Tunnel options conflict with forward method\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-csum",
        2,
        "Tunnel options conflict with forward method\n",
    ),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", 2, "multiple 'forwarding-method' options specified\n"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -m", 2, "multiple 'forwarding-method' options specified\n"),
    (
        "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m",
        2,
        "Different address family is allowed only for tunneling servers\n",
    ),
    (
        "-a -t 10.0.0.1:80",
        2,
        "You need to supply the 'real-server' option for the 'add-server' command\n",
    ),
    (
        "-a -r 10.0.0.2",
        2,
        "You need to supply the 'service-address' option for the 'add-server' command\n",
    ),
    (
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -s rr",
        2,
        "Illegal 'scheduler' option with the 'add-server' command\n",
    ),
    (
        "-d -t 10.0.0.1:80 -r 10.0.0.2 -w 0",
        2,
        "Illegal 'weight' option with the 'delete-server' command\n",
    ),
    (
        "-d -t 10.0.0.1:80",
        2,
        "You need to supply the 'real-server' option for the 'delete-server' command\n",
    ),
    ("-L -c --stats", 2, "options conflicts in the list command\n"),
    (
        "-L --timeout --daemon",
        2,
        "The option 'daemon' conflicts with the 'timeout' option in the 'list' command\n",
    ),
    ("-L --timeout --persistent-conn", 2, "options conflicts in the list command\n"),
    ("-L --daemon --rate", 2, "options conflicts in the list command\n"),
    (
        "-L -t 10.0.0.1:80 -c",
        2,
        "The option 'service-address' conflicts with the 'connection' option in the 'list' "
        "command\n",
    ),
    ("-L -s rr", 2, "Illegal 'scheduler' option with the 'list' command\n"),
    ("--list=5", 255, TRY),
    ("-L -n=3", 255, "-n=3: option does not take an argument\n"),
    ("-L=", 255, TRY),
    ("-L --numeric=yes", 255, "--numeric=yes: option does not take an argument\n"),
    ("-S --stats", 2, "Illegal 'stats' option with the 'save' command\n"),
    ("-Z -n", 2, "Illegal 'numeric' option with the 'zero' command\n"),
    ("--set 1 2", 2, "--set option requires 3 timeout values\n"),
    ("--set 1 2 3 4", 2, "unexpected argument 4\n"),
    ("--set 1 2 x", 2, "invalid timeout value `x' specified\n"),
    ("--set 1 2 2678401", 2, "invalid timeout value `2678401' specified\n"),
    ("--set -1 2 3", 255, "-1: unknown option\n"),
    ("--start-daemon foo", 2, "illegal start-daemon parameter specified\n"),
    ("--start-daemon", 255, TRY),
    ("--start-daemon master --syncid 256", 2, "illegal syncid specified\n"),
    ("--start-daemon master --mcast-group 10.0.0.1", 2, "invalid IPv4 mcast-group `10.0.0.1'\n"),
    ("--start-daemon master --mcast-group fe80::5", 2, "invalid IPv6 mcast-group `fe80::5'\n"),
    (
        "--start-daemon master --mcast-group 224.000.0.1",
        2,
        "invalid IPv4 mcast-group `224.000.0.1'\n",
    ),
    ("--start-daemon master --mcast-port 0", 2, "illegal mcast-port specified\n"),
    ("--start-daemon master --mcast-ttl 256", 2, "illegal mcast-ttl specified\n"),
    ("--start-daemon master --sync-maxlen 65508", 2, "illegal sync-maxlen specified\n"),
    (
        "--stop-daemon master --mcast-interface eth0",
        2,
        "Illegal 'mcast-interface' option with the 'stop-daemon' command\n",
    ),
    ("--stop-daemon x", 2, "illegal start_daemon specified\n"),
    ("-R x", 2, "unexpected argument x\n"),
    ("-V", 255, TRY),
    ("--bogus", 255, TRY),
    ("-L --bogus", 255, "--bogus: unknown option\n"),
    ("-A -t 10.0.0.1:80 --bogus", 255, "--bogus: unknown option\n"),
    ("-A -t", 255, "-t: missing argument\n"),
    ("-A -t 10.0.0.1:80 -s", 255, "-s: missing argument\n"),
    ("foo", 255, TRY),
    ("-- -L", 255, TRY),
    ("-L -- foo", 2, "unexpected argument foo\n"),
    ("-", 255, TRY),
    ("-L -", 2, "unexpected argument -\n"),
    ("-L -Q", 255, "-Q: unknown option\n"),
    ("-LQ", 255, "-LQ: unknown option\n"),
    ("-LA", 2, "invalid option `-LA'\n"),
    ("-A -t 10.0.0.1:80 --start-daemon master", 2, "invalid option `master'\n"),
    ("-6", 255, TRY),
    ("-t 10.0.0.1:80 -A", 255, TRY),
    ("--tcp-service 10.0.0.1:80", 255, TRY),
    ("--sctp-service 10.0.0.1:80 -A", 255, TRY),
    (
        "-A --sctp-service 10.0.0.1:sctp-nosuch",
        2,
        "illegal virtual server address[:port] specified\n",
    ),
    (
        "-A -t 10.0.0.1:80 -M 255.255.255.0 -M 255.0.0.0",
        2,
        "multiple 'netmask' options specified\n",
    ),
    ('-A -t " 10.0.0.1:80"', 2, "illegal virtual server address[:port] specified\n"),
    ('-a -t 10.0.0.1:80 -r 10.0.0.2 -w "5 "', 2, "illegal weight specified\n"),
]


def outcome(line: str) -> tuple[int, str]:
    try:
        parse(["ipvsadm", *shlex.split(line)])
    except Exit as exc:
        return exc.status, exc.err
    except LineFailed as exc:
        return 255, f"{exc}\n"
    return 0, ""


@pytest.mark.parametrize(("line", "status", "err"), RECORDED)
def test_same_error_and_status_as_ipvsadm(line: str, status: int, err: str) -> None:
    assert outcome(line) == (status, err)


@pytest.mark.parametrize(
    "line",
    [
        "-A -t 10.0.0.1:80",
        "-A -t 10.0.0.1 -p",
        "-A -f 5 -6 -M 64",
        "-A -t 10.0.0.1:80 -p=30",
        "-At 10.0.0.1:80",
        "-At10.0.0.1:80",
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000",
        "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -i",
        "-Ln",
        "-L --sort --nosort",
        "-l",
        "--list",
        "-S -n",
        "-Z",
        "--set 1 2 3",
        "--stop-daemon master --syncid 3",
        "-L -X",
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -w +5",
        "-a -t 10.0.0.1:80 -r 10.0.0.2 -w ' 5'",
        "-A -t 10.1:80",
        "-A -t 0x0a000001:80",
        "-A -t 10.0.0.1:80 -b ''",
    ],
)
def test_accepted_like_ipvsadm(line: str) -> None:
    assert outcome(line) == (0, "")


def test_help_and_version_exit_zero_on_stdout() -> None:
    with pytest.raises(Exit) as help_:
        parse(["ipvsadm", "--help"])
    assert help_.value.status == 0 and help_.value.err == ""
    # ipvsadm's version line first, then pyipvsadm's own line, then ipvsadm's text
    assert help_.value.out.startswith(
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
        f"pyipvsadm (tcpvs {__version__}): ipvsadm's commands, plus --json and --apply FILE "
        "[--dry-run|--watch]\nUsage:\n  ipvsadm -A|E virtual-service"
    )
    assert help_.value.out.endswith(
        "  --mcast-ttl ttl                     Multicast TTL (default=1)\n"
    )
    with pytest.raises(Exit) as version:
        parse(["prog", "-v"])
    assert version.value.out == (
        "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"
        f"pyipvsadm (tcpvs {__version__})\n"
    )


def test_service_defaults_and_values() -> None:
    ce = parse(["ipvsadm", "-A", "-t", "10.0.0.1:http", "-p", "-M", "255.255.255.0"])
    assert ce.service() == Service.tcp(
        "10.0.0.1", 80, scheduler="wlc", flags=1, timeout=360, netmask=0xFFFFFF00
    )
    ce = parse(["ipvsadm", "-E", "-u", "[2001:db8::1]:53", "-s", "sh", "-b", "sh-port", "-o"])
    assert ce.service() == Service.udp("2001:db8::1", 53, scheduler="sh", flags=0x14, netmask=128)
    fw = parse(
        ["ipvsadm", "-A", "-f", "4294967295", "-6", "-p", "60", "-M", "64", "--pe", "sip"]
    ).service()
    assert (fw.fwmark, fw.af, fw.netmask, fw.timeout, fw.pe_name) == (
        4294967295,
        uapi.AF_INET6,
        64,
        60,
        "sip",
    )


def test_scheduler_name_is_cut_to_15_characters() -> None:
    ce = parse(["ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "abcdefghijklmnopqrstuvwxyz"])
    assert ce.service().scheduler == "abcdefghijklmno"


def test_real_server_defaults_and_port_rules() -> None:
    dr = parse(["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080"])
    assert dr.cmd == CMD_ADDDEST
    assert dr.real_server() == Dest("10.0.0.2", 80, weight=1)  # DR: the service port wins
    nat = parse(["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m", "-w", "0"])
    assert nat.real_server() == Dest("10.0.0.2", 8080, fwd=uapi.IP_VS_CONN_F_MASQ, weight=0)
    nat_noport = parse(["ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-m"])
    assert nat_noport.real_server().port == 80
    gue = parse(
        [
            "ipvsadm",
            "-e",
            "-f",
            "9",
            "-r",
            "[2001:db8::9]:99",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
            "--tun-remcsum",
            "-x",
            "10",
            "-y",
            "5",
        ]
    ).real_server()
    assert gue == Dest(
        "2001:db8::9",
        99,
        fwd=uapi.IP_VS_CONN_F_TUNNEL,
        tun_type=1,
        tun_port=6080,
        tun_flags=2,
        u_threshold=10,
        l_threshold=5,
    )


def test_list_timeouts_and_daemon_values() -> None:
    ce = parse(["ipvsadm", "-Ln", "--stats", "-t", "10.0.0.1:80"])
    assert ce.cmd == CMD_LIST and ce.fmt == FMT_NUMERIC | FMT_STATS
    assert parse(["ipvsadm", "--set", "900", "0", "300"]).timeouts == Timeouts(900, 0, 300)
    assert parse(["ipvsadm", "--set", "1", "2", "3"]).cmd == CMD_TIMEOUT
    start = parse(
        [
            "ipvsadm",
            "--start-daemon",
            "backup",
            "--syncid",
            "5",
            "--mcast-group",
            "ff02::1:3",
            "--mcast-port",
            "9000",
            "--mcast-ttl",
            "3",
            "--sync-maxlen",
            "1400",
        ]
    )
    assert start.cmd == CMD_STARTDAEMON
    assert start.daemon == Daemon(uapi.IP_VS_STATE_BACKUP, "eth0", 5, 1400, "ff02::1:3", 9000, 3)
    stop = parse(["ipvsadm", "--stop-daemon", "master"])
    assert stop.daemon == Daemon(uapi.IP_VS_STATE_MASTER, "", 0)


def test_zero_sends_no_service_for_an_all_zero_key() -> None:
    assert not parse(["ipvsadm", "-Z"]).has_service_key()
    assert not parse(["ipvsadm", "-Z", "-t", "0.0.0.0:0"]).has_service_key()
    assert parse(["ipvsadm", "-Z", "-f", "1"]).has_service_key()


def test_pyipvsadm_options_keep_ipvsadm_rules() -> None:
    assert outcome("-L --json") == (0, "")
    assert outcome("-A -t 10.0.0.1:80 --json") == (
        2,
        "Illegal 'json' option with the 'add-service' command\n",
    )
    assert outcome("--apply f --dry-run --drain-timeout 2.5") == (0, "")
    assert outcome("--apply f --drain-timeout -1") == (2, "invalid drain timeout `-1' specified\n")
    assert outcome("-L --dry-run") == (2, "Illegal 'dry-run' option with the 'list' command\n")
    assert outcome("--apply f --watch --remove-down --drain-timeout 0") == (0, "")
    assert parse(["pyipvsadm", "--apply", "f", "--watch"]).has(OPTC_WATCH)
    for other in ("dry-run", "json"):
        assert outcome(f"--apply f --{other} --watch") == (
            2,
            f"The option 'watch' conflicts with the '{other}' option in the 'apply' command\n",
        )
    assert outcome("--apply f --remove-down") == (
        2,
        "You need to supply the 'watch' option for the 'remove-down' option\n",
    )
    assert outcome("--apply - --watch") == (
        2,
        "--watch needs a file (it is read again on SIGHUP), not stdin\n",
    )
    assert outcome("-A -t 10.0.0.1:80 --watch") == (
        2,
        "Illegal 'watch' option with the 'add-service' command\n",
    )


TABLE = (
    Option("alpha", "a", "a"),
    Option("beta", "b", "b", True),
    Option("gamma", "g", "g", True, optional=True),
)


def scan(*argv: str) -> list[tuple[str, str | None]]:
    ctx = Context(["prog", *argv], TABLE)
    out = []
    while (item := ctx.next_opt()) is not None:
        out.append(item)
    return out + [("leftovers", " ".join(ctx.leftovers))]


def test_popt_grammar() -> None:
    assert scan("-ab", "x") == [("a", None), ("b", "x"), ("leftovers", "")]
    assert scan("-abx", "--beta=y", "--beta", "z", "-b=w") == [
        ("a", None),
        ("b", "x"),
        ("b", "y"),
        ("b", "z"),
        ("b", "w"),
        ("leftovers", ""),
    ]
    assert scan("-g", "-a", "--gamma", "v", "-g") == [
        ("g", None),
        ("a", None),
        ("g", "v"),
        ("g", None),
        ("leftovers", ""),
    ]
    assert scan("p", "-a", "--", "-b", "-") == [("a", None), ("leftovers", "p -b -")]
    assert scan("-b", "-a") == [("b", "-a"), ("leftovers", "")]


@pytest.mark.parametrize(
    ("argv", "bad", "text"),
    [
        (["--delta"], "--delta", "unknown option"),
        (["-aq"], "-aq", "unknown option"),
        (["-b"], "-b", "missing argument"),
        (["--alpha=1"], "--alpha=1", "option does not take an argument"),
        (["-a=1"], "-a=1", "option does not take an argument"),
        (["-alpha"], "-alpha", "unknown option"),
    ],
)
def test_popt_errors(argv: list[str], bad: str, text: str) -> None:
    ctx = Context(["prog", *argv], TABLE)
    with pytest.raises(PoptError) as exc:
        while ctx.next_opt() is not None:
            pass
    assert (ctx.bad_option(), str(exc.value)) == (bad, text)


def test_restore_tokens() -> None:
    assert restore_tokens("ipvsadm -A\t-t 10.0.0.1:80  -s rr\r") == [
        "-A",
        "-t",
        "10.0.0.1:80",
        "-s",
        "rr",
    ]
    assert restore_tokens("   ") == []
