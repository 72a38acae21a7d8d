"""tcpvsadm end to end: the real program (a subprocess) against a real Switch on a control
socket; every command, every daemon message, exit codes, and the -L -> -f round trip.

The command x option matrix is checked exhaustively in-process (`run()` is what `main()` runs,
with the same output), the rest through `python -m tcpvsadm`.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from tcpvs import __version__
from tcpvs.table.config import parse_config
from tcpvs.table.listing import snapshot
from tcpvsadm.cli import run
from tests.e2e.test_control_server import ControlDaemon
from tests.support.limits import default_maxclients
from tests.support.procs import ROOT, free_port

TRY_HELP = "Try `tcpvsadm -h' or 'tcpvsadm --help' for more information."
R1, R2, R3 = "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"


def tcpvsadm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tcpvsadm", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


class Admin:
    """The daemon under test and the real tcpvsadm pointed at its socket."""

    def __init__(self, daemon: ControlDaemon) -> None:
        self.daemon = daemon

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return tcpvsadm("--socket", self.daemon.path, *args)

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert (done.returncode, done.stderr) == (0, ""), args
        return done.stdout

    def refused(self, *args: str) -> str:
        """Run a command the daemon must refuse; the table must not change."""
        before = self.daemon.snapshot()
        done = self(*args)
        assert done.returncode == 1, (args, done)
        assert done.stdout == ""
        assert table_of(self.daemon.snapshot()) == table_of(before)
        return done.stderr

    def listing(self) -> str:
        return self.ok("-L", "-n")


def table_of(snap: dict) -> dict:
    """A snapshot without the count of config loads (a refused -f counts one)."""
    return {key: value for key, value in snap.items() if key != "reloads"}


@pytest.fixture
def adm(tmp_path):
    daemon = ControlDaemon(tmp_path / "tcpvsd.sock")
    yield Admin(daemon)
    daemon.close()


def seed_table(adm: Admin) -> None:
    """The seed README's commands (loopback servers), long options and `--pattern=` included."""
    adm.ok("-A", "-i", "http", "-s", "http")
    for server in (R1, R2, R3):
        adm.ok("-a", "-i", "http", "-r", server)
    adm.ok("--add-rule", "-i", "http", "--pattern=/images/.*", "-r", R1)
    adm.ok("--add-rule", "-i", "http", "--pattern=/html/.*", "-r", R2)
    adm.ok("--add-rule", "-i", "http", "--pattern=.*", "-r", R3)


def seed_listing() -> str:
    """The seed table's `-L -n`; the daemon is a Switch in this process, so maxclients is the
    default this process's open-files limit gives (docs/config.md)."""
    return f"""\
TCP Virtual Server version {__version__}
Virtual http {{
    listen = 0.0.0.0:8080
    scheduler = http
    startservers = 8
    maxclients = {default_maxclients()}
    minspareservers = 6
    maxspareservers = 18
    server = {R1} 1
    server = {R2} 1
    server = {R3} 1
    rule = pattern "/images/.*" use server {R1}
    rule = pattern "/html/.*" use server {R2}
    rule = pattern ".*" use server {R3}
}}
"""


def test_seed_readme_sequence(adm, tmp_path):
    seed_table(adm)
    assert adm.listing() == seed_listing()
    listed = adm.ok("--list")  # names, as the README runs it: still the same table
    assert listed.splitlines()[0] == f"TCP Virtual Server version {__version__}"
    assert snapshot(parse_config(listed, "list"))["services"][0]["servers"] == [
        s for s in adm.daemon.snapshot()["services"][0]["servers"]
    ]
    config = tmp_path / "seed.conf"
    config.write_text(seed_listing())
    adm.ok("-F")
    assert adm.listing() == f"TCP Virtual Server version {__version__}\n"
    adm.ok("-f", str(config))
    assert adm.listing() == seed_listing()
    adm.ok("--stop", "-i", "http")  # not running: nothing to do
    adm.ok("--stop")
    assert adm.daemon.snapshot()["services"][0]["running"] is False


def test_no_arguments_lists_and_tcpvs_socket_is_honoured(adm):
    seed_table(adm)
    done = tcpvsadm(env={"TCPVS_SOCKET": adm.daemon.path})
    assert done.returncode == 0
    assert snapshot(parse_config(done.stdout, "x")) == snapshot(parse_config(seed_listing(), "x"))


def test_list_one_service_json_and_stats(adm):
    seed_table(adm)
    adm.ok("-A", "-i", "other", "-l", "127.0.0.1:8181", "-s", "wlc")
    one = adm.ok("-Ln", "-i", "http")
    assert one == seed_listing().split("\n", 1)[1]  # no version header for one service
    assert json.loads(adm.ok("-L", "--json")) == adm.daemon.snapshot()
    assert json.loads(adm.ok("-L", "-i", "other", "--json")) == adm.daemon.snapshot("other")
    stats = adm.ok("-L", "-n", "--stats", "-i", "other")
    assert stats.splitlines()[1] == (
        "    # stopped: connections 0 active / 0 total, requests 0, bytes in 0 / out 0, errors 0"
    )
    assert parse_config(stats, "stats").services["other"].scheduler_name == "wlc"


def test_edits(adm):
    adm.ok("-A", "-i", "web", "-P", "8090", "-s", "wlc")
    adm.ok("-a", "-i", "web", "-r", R1, "-w", "5")  # -w works (KTCPVS lacked it)
    adm.ok("--add-server", "-i", "web", "--real-server", R2, "--weight", "0")
    adm.ok("-e", "-i", "web", "-r", R1, "-w", "7")  # -e edits the weight
    adm.ok("-E", "-i", "web", "-l", "127.0.0.1")  # -l with -E; the port stays
    listing = adm.listing()
    assert "    listen = 127.0.0.1:8090\n" in listing
    assert f"    server = {R1} 7\n    server = {R2} 0\n" in listing
    adm.ok("--edit-service", "-i", "web", "--listen", "127.0.0.2:8091", "-s", "rr")
    adm.ok("-E", "-i", "web", "-P", "8092")  # only the port: the host stays
    svc = adm.daemon.snapshot()["services"][0]
    assert svc["listen"] == {"host": "127.0.0.2", "port": 8092}
    assert svc["scheduler"] == "rr"
    adm.ok("-e", "-i", "web", "-r", R1)  # weight omitted: 1, as in KTCPVS
    adm.ok("--add-rule", "-i", "web", "-p", "/u/([^/]+)", "-r", R1, "-m", "1")
    assert adm.daemon.snapshot()["services"][0]["rules"][0]["match"] == 1
    adm.ok("--del-rule", "-i", "web", "-p", "/u/([^/]+)", "-r", R1)
    adm.ok("-d", "-i", "web", "-r", R2)
    adm.ok("-D", "-i", "web")
    assert adm.daemon.snapshot()["services"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-A", "-i", "http"), "Service already exists"),
        (("-A", "-i", "new", "-s", "nosuch"), "Scheduler not found"),
        (("-A", "-i", "bad/ident"), "illegal ident specified"),
        (("-E", "-i", "nope"), "No such service"),
        (("-E", "-i", "http", "-s", "nosuch"), "Scheduler not found"),
        (("-D", "-i", "nope"), "No such service"),
        (("-a", "-i", "nope", "-r", R1), "Service not defined"),
        (("-a", "-i", "http", "-r", R1), "Destination already exists"),
        (("-e", "-i", "nope", "-r", R1), "Service not defined"),
        (("-e", "-i", "http", "-r", "127.0.0.1:1"), "No such destination"),
        (("-d", "-i", "http", "-r", "127.0.0.1:1"), "No such destination"),
        (("-d", "-i", "http", "-r", R1),
         "Destination is busy: used by rule '/images/.*' of service http"),
        (("-A", "-i", "new", "-l", "127.0.0.1:8080"),
         "service new listens on 127.0.0.1:8080 like service http on 0.0.0.0:8080"),
        (("-A", "-i", "new", "-P", "8080"),
         "service new listens on 0.0.0.0:8080 like service http"),
        (("-E", "-i", "other", "-l", "0.0.0.0:8080"),
         "service other listens on 0.0.0.0:8080 like service http"),
        (("-E", "-i", "other", "-P", "8080"),
         "service other listens on 127.0.0.1:8080 like service http on 0.0.0.0:8080"),
        (("--add-rule", "-i", "nope", "-p", "x", "-r", R1), "No such service"),
        (("--add-rule", "-i", "http", "-p", "x", "-r", "127.0.0.1:1"), "No such destination"),
        (("--add-rule", "-i", "http", "-p", "/images/.*", "-r", R1), "Rule already exists"),
        (("--add-rule", "-i", "http", "-p", "/x/(.*)", "-r", R1, "-m", "2"),
         "pattern has no sub-expression 2"),
        (("--del-rule", "-i", "http", "-p", "/nothing/", "-r", R1), "No such rule"),
        (("--del-rule", "-i", "http", "-p", "/images/.*", "-r", R2), "No such rule"),
        (("-L", "-i", "nope"), "No such service"),
        (("--start", "-i", "nope"), "No such service"),
        (("--stop", "-i", "nope"), "No such service"),
    ],
)  # fmt: skip
def test_daemon_refusals_print_the_table_message_and_change_nothing(adm, args, message):
    seed_table(adm)
    adm.ok("-A", "-i", "other", "-l", "127.0.0.1:8181")
    assert adm.refused(*args) == message + "\n"


def test_bad_config_file_changes_nothing(adm, tmp_path):
    seed_table(adm)
    before = adm.listing()
    bad = tmp_path / "bad.conf"
    bad.write_text(
        seed_listing().replace("    scheduler = http\n", "    scheduler = http\n\n  x\n")
    )
    assert adm.refused("-f", str(bad)) == f"{bad}:6: unknown key 'x'\n"
    bad.write_text("Virtual a {\n}\nVirtual b {\n    scheduler = nosuch\n}\n")
    assert adm.refused("-f", str(bad)) == f"{bad}:4: Scheduler not found\n"
    bad.write_bytes(b'Virtual a {\n    rule = pattern "\xff" use server 1.2.3.4\n}\n')
    assert adm.refused("-f", str(bad)) == f"{bad}:2: not UTF-8 text\n"
    bad.write_text(seed_listing() + "Virtual twin {\n    listen = 127.0.0.1:8080\n}\n")
    assert adm.refused("-f", str(bad)) == (
        f"{bad}:17: service twin listens on 127.0.0.1:8080 like service http on 0.0.0.0:8080"
        " (line 3)\n"
    )
    missing = tmp_path / "missing.conf"
    done = adm("-f", str(missing))
    assert done.returncode == 2
    assert done.stderr == f"cannot read config file {missing}: No such file or directory\n"
    assert adm.listing() == before


def test_list_flush_load_round_trip(adm, tmp_path):
    seed_table(adm)
    adm.ok("-A", "-i", "users", "-s", "hhttp", "-l", "[::1]:8443")
    for server in (R3, R1, R2):
        adm.ok("-a", "-i", "users", "-r", server, "-w", "3")
        adm.ok("--add-rule", "-i", "users", "-p", "/users/([^/]+)/.*", "-r", server, "-m", "1")
    adm.ok("-A", "-i", "raw", "-s", "wlc", "-P", "7000")
    adm.ok("-a", "-i", "raw", "-r", "[::1]:7001", "-w", "0")
    saved = adm.listing()
    config = tmp_path / "saved.conf"
    config.write_text(saved)
    before = adm.daemon.snapshot()
    adm.ok("-F")
    assert adm.daemon.snapshot()["services"] == []
    adm.ok("-f", str(config))
    assert adm.listing() == saved
    after = adm.daemon.snapshot()
    assert table_of(after) == table_of(before)
    assert after["reloads"] == {"ok": before["reloads"]["ok"] + 1, "failed": 0}


def test_no_daemon(tmp_path):
    path = tmp_path / "none.sock"
    for args in (("-L",), ("-A", "-i", "web"), ("--start",), ()):
        done = tcpvsadm("--socket", str(path), *args)
        assert done.returncode == 3
        assert done.stderr == f"tcpvsd is not running (no control socket at {path})\n"
        assert done.stdout == ""


def test_help_and_version():
    done = tcpvsadm("-h")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == f"tcpvsadm {__version__}"
    assert "  --port         -P port              service port number" in lines
    assert (
        "  --pattern      -p pattern           regular expression matched on the Request-URI"
        in lines
    )
    assert "  --weight       -w weight            capacity of real server" in lines
    assert "  --list            -L        list the table" in lines
    assert "                                      the default scheduler is http." in lines
    from tcpvs.sched import available

    scheduler_line = next(line for line in lines if line.startswith("  --scheduler"))
    assert scheduler_line.endswith("one of " + ("|".join(available()) or "(none installed)"))
    assert tcpvsadm("--help").stdout == done.stdout
    # where the socket comes from, and which one this run would use
    lines = tcpvsadm("-h", env={"TCPVS_SOCKET": "/tmp/elsewhere.sock"}).stdout.splitlines()
    assert lines[-2:] == [
        "  --socket       path                 tcpvsd's control socket (/tmp/elsewhere.sock)",
        "                                      default: $TCPVS_SOCKET, else /run/tcpvs/tcpvsd.sock",
    ]
    for flag in ("-v", "--version"):
        assert tcpvsadm(flag).stdout == f"tcpvsadm {__version__}\n"


def test_usage_errors_from_the_real_program(tmp_path):
    sock = str(tmp_path / "none.sock")
    done = tcpvsadm("--socket", sock, "-A", "-D", "-i", "web")
    assert (done.returncode, done.stderr) == (2, "multiple commands specified\n")
    done = tcpvsadm("--socket", sock, "-a", "-i", "web", "-r", R1, "-w", "70000")
    assert (done.returncode, done.stderr) == (2, "illegal weight specified\n")
    done = tcpvsadm("--socket", sock, "-d", "-i", "web", "-r", R1, "-w", "2")
    assert (done.returncode, done.stderr) == (
        2,
        "Illegal 'weight' option with the 'delete-server' command\n",
    )
    done = tcpvsadm("--socket", sock, "-L", "--bogus")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == TRY_HELP


# -- the command x option matrix, exhaustively (in-process) -----------------------------------

OPTION_ARGS = {
    "numeric": ["-n"],
    "ident": ["-i", "web"],
    "scheduler": ["-s", "wlc"],
    "port": ["-P", "80"],
    "real-server": ["-r", R1],
    "weight": ["-w", "2"],
    "pattern": ["-p", "^/x/(.*)"],
    "match": ["-m", "1"],
    "listen": ["-l", "127.0.0.1:81"],
    "stats": ["--stats"],
    "json": ["--json"],
    "state": ["--state", "drain"],
    "check": ["--check", "tcp"],
    "tls": ["--tls", "site.pem"],
    "sni": ["--sni"],
    "server-tls": ["--server-tls", "on"],
}
# + required, x illegal, o optional; columns in OPTION_ARGS order. The corrected KTCPVS matrix.
MATRIX = {
    ("add-service", "-A"): "x+ooxxxxoxxxooxx",
    ("edit-service", "-E"): "x+ooxxxxoxxxooxx",
    ("delete-service", "-D"): "x+xxxxxxxxxxxxxx",
    ("flush", "-F"): "xxxxxxxxxxxxxxxx",
    ("list", "-L"): "ooxxxxxxxooxxxxx",
    ("add-server", "-a"): "x+xx+oxxxxxxoxxo",
    ("edit-server", "-e"): "x+xx+oxxxxxooxxo",
    ("delete-server", "-d"): "x+xx+xxxxxxxxxxx",
    ("add-rule", "--add-rule"): "x+xx+x+oxxxxxxox",
    ("del-rule", "--del-rule"): "x+xx+x+xxxxxxxox",
    ("start", "--start"): "xoxxxxxxxxxxxxxx",
    ("stop", "--stop"): "xoxxxxxxxxxxxxxx",
    ("load-configfile", "-f"): "xxxxxxxxxxxxxxxx",
}


def run_in_process(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(args, out, err)
    return status, out.getvalue(), err.getvalue()


def matrix_cases():
    names = list(OPTION_ARGS)
    for (command, flag), row in MATRIX.items():
        base = [flag, "x.conf"] if flag == "-f" else [flag]
        required = [names[i] for i, cell in enumerate(row) if cell == "+"]
        for name, cell in zip(names, row, strict=True):
            others = [a for n in required if n != name for a in OPTION_ARGS[n]]
            if cell == "+":
                expected = (
                    2,
                    f"You need to supply the '{name}' option for the '{command}' command",
                )
                yield pytest.param(base + others, expected, id=f"{command}-needs-{name}")
            elif cell == "x":
                expected = (2, f"Illegal '{name}' option with the '{command}' command")
                args = base + others + OPTION_ARGS[name]
                yield pytest.param(args, expected, id=f"{command}-refuses-{name}")
            else:  # allowed: the command gets as far as asking the daemon
                yield pytest.param(
                    base + others + OPTION_ARGS[name], (3, None), id=f"{command}-allows-{name}"
                )


@pytest.mark.parametrize(("args", "expected"), list(matrix_cases()))
def test_command_option_matrix(args, expected, tmp_path):
    status, out, err = run_in_process(["--socket", str(tmp_path / "none.sock"), *args])
    if expected[1] is None:
        assert (status, err) == (
            3,
            f"tcpvsd is not running (no control socket at {tmp_path}/none.sock)\n",
        )
    else:
        assert (status, out, err) == (expected[0], "", expected[1] + "\n")


BAD_MATCH = "illegal match number specified"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-A", "-i", "w", "-P", "0"], "illegal server port specified"),
        (["-A", "-i", "w", "-P", "65535"], "illegal server port specified"),
        (["-A", "-i", "w", "-P", "http"], "illegal server port specified"),
        (["-A", "-i", "w", "-l", "1.2.3.4:70000"],
         "illegal address:port specified: port 70000 out of range 1-65535"),
        (["-A", "-i", "w", "--listen", "no.such.host.invalid"],
         "illegal address:port specified: cannot resolve host 'no.such.host.invalid'"),
        (["-a", "-i", "w", "-r", R1, "-w", "65536"], "illegal weight specified"),
        (["-a", "-i", "w", "-r", R1, "-w", "-1"], "illegal weight specified"),
        (["-e", "-i", "w", "-r", R1, "--weight", "heavy"], "illegal weight specified"),
        (["-a", "-i", "w", "-r", "1.2.3.4:0"],
         "illegal address:port specified: port 0 out of range 1-65535"),
        (["-a", "-i", "w", "-r", "1.2.3.4:nosuchservice"],
         "illegal address:port specified: unknown service 'nosuchservice'"),
        (["-a", "-i", "w", "-r", "[::1"], "illegal address:port specified"),
        (["--add-rule", "-i", "w", "-p", "(x)", "-r", R1, "-m", "11"], BAD_MATCH),
        (["--add-rule", "-i", "w", "-p", "(x)", "-r", R1, "-m", "one"], BAD_MATCH),
        (["--add-rule", "-i", "w", "-p", 'say "hi"', "-r", R1], "illegal pattern specified"),
        (["--add-rule", "-i", "w", "-p", "", "-r", R1], "illegal pattern specified"),
        (["-A", "-D", "-i", "w"], "multiple commands specified"),
        (["-L", "-L"], "multiple commands specified"),
        (["-f", "a.conf", "-f", "b.conf"], "multiple commands specified"),
        (["-L", "-n", "-n"], "multiple '-n' options specified"),
        (["-a", "-i", "w", "-r", R1, "-w", "1", "--weight", "2"], "multiple '-w' options specified"),  # noqa: E501
        (["-L", "--json", "--json"], "multiple '--json' options specified"),
        (["-L", "--socket", "x"], "multiple '--socket' options specified"),
        (["-L", "extra"], "unknown arguments found in command line"),
    ],
)  # fmt: skip
def test_option_values_and_repetitions(args, message, tmp_path):
    status, out, err = run_in_process(["--socket", str(tmp_path / "none.sock"), *args])
    assert (status, out, err) == (2, "", message + "\n")


@pytest.mark.parametrize("args", [["-n"], ["-i", "web"], ["--json"]])
def test_options_without_a_command(args):
    assert run_in_process(args) == (2, "", f"no command specified\n{TRY_HELP}\n")


def test_unknown_option_and_missing_value():
    status, _, err = run_in_process(["-L", "-x"])
    assert status == 2 and err.endswith(f"\n{TRY_HELP}\n") and "-x" in err
    status, _, err = run_in_process(["-A", "-i"])
    assert status == 2 and err.endswith(f"\n{TRY_HELP}\n") and "'-i'" in err


# -- --start with the real engine ------------------------------------------------------------


class _Named(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"{self.server.server_port} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_start_and_stop_with_a_real_listener(adm):
    """Needs the engine (tcpvs.proxy.listener): `--start` serves, `--stop` stops accepting."""
    backends = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Named) for _ in range(2)]
    for backend in backends:
        threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        images, rest = (f"127.0.0.1:{b.server_port}" for b in backends)
        port = free_port()
        adm.ok("-A", "-i", "web", "-l", f"127.0.0.1:{port}")
        adm.ok("-a", "-i", "web", "-r", images)
        adm.ok("-a", "-i", "web", "-r", rest)
        adm.ok("--add-rule", "-i", "web", "-p", "^/images/", "-r", images)
        adm.ok("--add-rule", "-i", "web", "-p", ".*", "-r", rest)
        adm.ok("--start", "-i", "web")
        adm.ok("--start", "-i", "web")  # already running: nothing happens (no fall into --stop)
        for path, backend in (("/images/a.png", backends[0]), ("/html/", backends[1])):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                reply = b""
                while chunk := client.recv(65536):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.0 200") or reply.startswith(b"HTTP/1.1 200")
            assert reply.endswith(f"{backend.server_port} {path}\n".encode())
        adm.ok("--stop")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        for backend in backends:
            backend.shutdown()
            backend.server_close()
