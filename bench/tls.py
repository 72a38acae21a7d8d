"""TLS: tcpvs against HAProxy in the same run, both terminating HTTPS with the same certificate,
versions and ciphers (bench/run.sh --tls; docs/benchmarks.md, "TLS").

New full handshakes per second and the proxy's CPU per handshake (ECDSA P-256 and RSA 2048
certificates, TLS 1.3 and 1.2; clients: `openssl s_time -new`), resumed TLS 1.2 handshakes,
and keep-alive HTTPS requests of 13 B, 64 KiB and 1 MiB (wrk): req/s and the proxy's CPU per
request. Then the same through a TLS passthrough, both proxies routing by SNI without
decrypting (tcpvs: a raw TCP service with `sni` rules; HAProxy: `mode tcp`, `req.ssl_sni`)
to nginx TLS servers: new connections (bench/sniclient.py: s_time sends no SNI), keep-alive
requests, and system calls per connection and per 1 MiB request (strace: splice or not).
Then what a memory-BIO TLS layer costs per MiB (bench.tlsbio).

    bench/run.sh --tls                            # about 5 minutes; --publish: into the doc
    bench/run.sh --tls --pass-only                # the passthrough rows alone, under 2 minutes
    .venv/bin/python -m bench.tls --rounds 1 --seconds 2        # quick look, this tree's tcpvs

Certificates are made for each run by trustme in the temporary work directory (never kept).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import trustme

from bench import tlsbio
from bench.__main__ import _exit_on_signal, ensure_tools, pinned_cpus
from bench.measure import WRK_LUA, Cell, measure, wrk_script
from bench.procs import Procs, bench_run, cpu_busy, cpu_seconds, set_group_nice
from bench.report import METRICS, _table, loadavg, machine_info, publish, ratio
from bench.report import spread_of as spread
from bench.systems import (
    REPO,
    ROUTES,
    SIZES,
    Bench,
    Running,
    paths,
    start_backend,
    start_haproxy,
    start_tcpvs,
    start_tls_backend,
)
from tcpvs.tls.settings import ALPN, INTERMEDIATE_CIPHERS
from tests.support.syscalls import SyscallCount, count_syscalls

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:tls:begin -->", "<!-- bench:tls:end -->"
PASS_BEGIN, PASS_END = "<!-- bench:tls-pass:begin -->", "<!-- bench:tls-pass:end -->"
NAME = "bench.tcpvs.test"  # the certificates' DNS name (tcpvs serves DNS names), plus 127.0.0.1
KEYS = {"ECDSA P-256": trustme.KeyType.ECDSA, "RSA 2048": trustme.KeyType.RSA}
VERSIONS = {"TLS 1.3": "-tls1_3", "TLS 1.2": "-tls1_2"}
SYSTEMS = ("haproxy", "tcpvs")
BASE, MINE = SYSTEMS
KEEPALIVE_KEY = "ECDSA P-256"  # the keep-alive cells' certificate (only their first handshake)

# Same TLS settings as tcpvs.tls.settings: TLS 1.2 and 1.3, Mozilla intermediate ciphers in
# the server's order (HAProxy's default too), OpenSSL's TLS 1.3 suites (neither sets them),
# ALPN http/1.1, tickets on. One thread, as one tcpvsd process is one event loop on one CPU.
HAPROXY_GLOBAL = f"""\
    ssl-default-bind-ciphers {INTERMEDIATE_CIPHERS}
    ssl-default-bind-options ssl-min-ver TLSv1.2
    tune.ssl.default-dh-param 2048
"""
# The clients load no CA store: OpenSSL 3.0's default (SSL_CERT_DIR, a directory) is read at
# every handshake, which doubled s_time's CPU. Unverified, as wrk; the client still checks the
# handshake's signature, as TLS requires.
NO_CA = ["-no-CAfile", "-no-CApath", "-no-CAstore"]


@dataclass(frozen=True)
class Case:
    """One handshake row: a certificate, a TLS version, full or resumed."""

    key: str
    version: str
    resume: bool = False

    @property
    def label(self) -> str:
        return f"{self.key}, {self.version}" + (", resumed" if self.resume else "")


# `s_time -reuse` resumes with TLS 1.2 only: with 1.3 the ticket comes after the handshake
# and s_time never reads it.
CASES = [Case(k, v) for k in KEYS for v in VERSIONS] + [Case("ECDSA P-256", "TLS 1.2", True)]


@dataclass(frozen=True)
class Handshakes:
    """One handshake cell: clients making new connections for a bounded time."""

    rate: float  # handshakes per second, counted by the clients, over the wall time
    cpu_us: float  # proxy CPU (user + kernel) per handshake
    sys_us: float  # the kernel's part
    cpu_pct: float  # proxy CPU / wall time
    client_us: float  # the clients' CPU (all s_time processes) per handshake
    busy: list[float]  # % busy per CPU (whole machine)
    count: int
    resumed: int  # handshakes the clients saw resumed


def _handshakes(
    count: int,
    resumed: int,
    client: float,
    wall: float,
    cpu0: tuple[float, float],
    cpu1: tuple[float, float],
    busy0: list[tuple[int, int]],
    busy1: list[tuple[int, int]],
) -> Handshakes:
    """One cell of handshakes: `count` connections in `wall` seconds, the proxy's (user,
    system) CPU seconds before and after, the clients' CPU seconds, each CPU's busy ticks."""
    proxy = (cpu1[0] + cpu1[1]) - (cpu0[0] + cpu0[1])
    return Handshakes(
        rate=count / wall,
        cpu_us=proxy / count * 1e6,
        sys_us=(cpu1[1] - cpu0[1]) / count * 1e6,
        cpu_pct=proxy / wall * 100,
        client_us=client / count * 1e6,
        busy=[
            100 * (b1 - b0) / max(c1 - c0, 1)
            for (b0, c0), (b1, c1) in zip(busy0, busy1, strict=True)
        ],
        count=count,
        resumed=resumed,
    )


HsResults = dict[str, dict[str, list[Handshakes]]]  # case label -> system -> one per round
KaResults = dict[str, dict[str, list[Cell]]]  # size label -> system -> one per round


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run.sh --tls", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=4, help="seconds per cell (4)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all cells (3)")
    ap.add_argument("--clients", type=int, default=8, help="s_time processes per cell (8)")
    ap.add_argument("--conns", type=int, default=50, help="wrk connections (50)")
    ap.add_argument("--sizes", nargs="*", choices=list(SIZES), default=list(SIZES))
    labels = [c.label for c in CASES]
    ap.add_argument("--cases", nargs="*", choices=labels, default=labels, help="handshake rows")
    ap.add_argument("--wrk-cpu", type=int, default=0, help="CPU for clients and backend (0)")
    ap.add_argument("--proxy-cpu", type=int, default=1, help="CPU for the proxy (1)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    ap.add_argument("--tcpvs-bin", default="", help="directory of the tcpvsd/tcpvsadm to run")
    ap.add_argument("--nice", type=int, default=0, help="niceness of all it starts (root)")
    ap.add_argument("--note", default="", help="a remark for the report (e.g. other load)")
    ap.add_argument("--no-pass", action="store_true", help="skip the passthrough rows")
    ap.add_argument("--pass-only", action="store_true", help="only the passthrough rows")
    ap.add_argument("--publish", action="store_true", help=f"also write into {DOC.name}")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    return ap.parse_args(argv)


def make_certs(work: Path) -> dict[str, Path]:
    """One PEM per key type (private key + chain, as both proxies read it) and the CA's."""
    pems = {}
    for label, key_type in KEYS.items():
        ca = trustme.CA(key_type=key_type)
        leaf = ca.issue_cert(NAME, "127.0.0.1", key_type=key_type)
        slug = label.split()[0].lower()
        pem = work / f"{slug}.pem"
        pem.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
        pem.chmod(0o600)
        ca.cert_pem.write_to_path(str(work / f"{slug}-ca.pem"))
        pems[label] = pem
    return pems


def starters(pem: Path) -> dict[str, Callable[[Bench], Running]]:
    slug = pem.stem
    return {
        BASE: partial(
            start_haproxy,
            name=f"haproxy-{slug}",
            extra="",
            global_extra=HAPROXY_GLOBAL,
            bind=f" ssl crt {pem} alpn {','.join(ALPN)}",
        ),
        MINE: partial(start_tcpvs, name=f"tcpvs-{slug}", extra=f"    tls = {pem}\n"),
    }


def check_routing(port: int, ca: Path, size: int) -> None:
    """Over HTTPS, verified against the run's CA: each path answers 200 with the full body,
    from the backend the routing rules name."""
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        for path in paths(size):
            conn.request("GET", path)
            resp = conn.getresponse()
            body, tag = resp.read(), resp.getheader("X-Backend")
            want = "b1" if path.startswith("/a/") else "b2"
            if resp.status != 200 or len(body) != size or tag != want:
                raise RuntimeError(
                    f"GET {path}: {resp.status}, {len(body)} B from {tag}, want {want}"
                )
    finally:
        conn.close()


def negotiated(port: int, version: str) -> str:
    """What `openssl s_client` (the handshake clients' defaults) agrees on: version, cipher,
    key exchange group, signature, ALPN."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", VERSIONS[version]]
    argv += ["-alpn", "http/1.1", *NO_CA]
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
    )
    out = done.stdout + done.stderr
    fields = []
    for pattern in (
        r"New, (\S+), Cipher is",
        r"New, \S+, Cipher is (\S+)",
        r"Server Temp Key: ([^,\n]+)",
        r"Peer signature type: (\S+)",
        r"ALPN protocol: (\S+)",
    ):
        found = re.search(pattern, out)
        fields.append(found.group(1) if found else "?")
    return ", ".join(fields)


def handshakes(
    port: int,
    case: Case,
    pid: int,
    *,
    seconds: int,
    clients: int,
    cpu: int | None,
    work: Path,
) -> Handshakes:
    """`clients` processes of `openssl s_time -new` (or -reuse) against port, all at once."""
    argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", VERSIONS[case.version]]
    # s_time stops once the wall clock's second has changed `-time` times after its start
    argv += ["-reuse" if case.resume else "-new", "-time", str(max(seconds - 1, 1))]
    argv += NO_CA
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    if (frac := time.time() % 1) > 0.8:  # start them all within one second: they stop together
        time.sleep(1.02 - frac)
    outs = [work / f"s_time.{i}.out" for i in range(clients)]
    procs: list[subprocess.Popen[bytes]] = []
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, (user0, sys0), t0 = cpu_busy(), cpu_seconds(pid), time.monotonic()
    try:
        for out in outs:
            with out.open("wb") as stdout:  # one character per connection: not a pipe
                procs.append(
                    subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT
                    )
                )
        for proc in procs:
            proc.wait(timeout=seconds + 30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    t1, (user1, sys1), busy1 = time.monotonic(), cpu_seconds(pid), cpu_busy()
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    count = resumed = 0
    for proc, out in zip(procs, outs, strict=True):
        text = out.read_text(errors="replace")
        found = re.search(r"^(\d+) connections in \d+ real seconds", text, re.MULTILINE)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"s_time exited {proc.returncode}: {text[-500:]}")
        count += int(found.group(1))
        progress = text[: found.start()]
        resumed += progress.count("r")  # one character per connection: r resumed, * full
    if not count:
        raise RuntimeError("s_time made no connection")
    client = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return _handshakes(count, resumed, client, t1 - t0, (user0, sys0), (user1, sys1), busy0, busy1)


def terminating(
    args: argparse.Namespace, bench: Bench, client_cpu: int | None
) -> tuple[HsResults, KaResults, dict[str, dict[str, str]]]:
    """The proxies terminating HTTPS: handshake rows, then keep-alive requests, by rounds."""
    start_backend(bench, client_cpu)
    pems = make_certs(bench.work)
    cases = [c for c in CASES if c.label in args.cases]
    keys = sorted({c.key for c in cases} | ({KEEPALIVE_KEY} if args.sizes else set()))
    running: dict[tuple[str, str], Running] = {}
    for key in keys:
        for system, start in starters(pems[key]).items():
            running[system, key] = r = start(bench)
            for size in SIZES.values():
                check_routing(r.port, pems[key].with_name(f"{pems[key].stem}-ca.pem"), size)
    agreed: dict[str, dict[str, str]] = {}  # "key, version" -> system -> what was negotiated
    for key in keys:
        for version in VERSIONS:
            row = agreed[f"{key}, {version}"] = {
                system: negotiated(running[system, key].port, version) for system in SYSTEMS
            }
            if len(set(row.values())) != 1:
                print(f"bench: {key}, {version}: not the same TLS: {row}", file=sys.stderr)
    script = wrk_script(bench.work)

    def pid(system: str, key: str) -> int:
        proc = running[system, key].proc
        assert proc is not None
        if proc.poll() is not None:
            raise RuntimeError(f"{system} ({key}) exited {proc.returncode} during the run")
        return proc.pid

    def keepalive(system: str, key: str, size: int, seconds: int) -> Cell:
        port = running[system, key].port
        return measure(
            port,
            paths(size),
            pid(system, key),
            seconds=seconds,
            conns=args.conns,
            cpu=client_cpu,
            script=script,
            scheme="https",
        )

    for system, key in running:  # warm-up: 1 s of keep-alive requests and 50 handshakes each
        keepalive(system, key, 13, 1)
    hs: HsResults = {c.label: {s: [] for s in SYSTEMS} for c in cases}
    ka: KaResults = {size: {s: [] for s in SYSTEMS} for size in args.sizes}
    order = list(SYSTEMS)
    for rnd in range(args.rounds):
        order = order[1:] + order[:1] if rnd else order  # rotate: no system always goes first
        for case in cases:
            for system in order:
                h = handshakes(
                    running[system, case.key].port,
                    case,
                    pid(system, case.key),
                    seconds=args.seconds,
                    clients=args.clients,
                    cpu=client_cpu,
                    work=bench.work,
                )
                hs[case.label][system].append(h)
                print(
                    f"round {rnd + 1}/{args.rounds}  {case.label:<28} {system:<8} "
                    f"{h.rate:>7.0f} handshakes/s  {h.cpu_us:6.0f} µs CPU each  "
                    f"proxy {h.cpu_pct:3.0f} %  clients {h.client_us:4.0f} µs each",
                    file=sys.stderr,
                )
        for size in args.sizes:
            for system in order:
                c = keepalive(system, KEEPALIVE_KEY, SIZES[size], args.seconds)
                ka[size][system].append(c)
                print(
                    f"round {rnd + 1}/{args.rounds}  {size:>6}  {system:<8} {c.rps:>9.0f} req/s"
                    f"  p99 {c.p99_ms:6.2f} ms  {c.cpu_us or 0:.1f} µs/req",
                    file=sys.stderr,
                )
    return hs, ka, agreed


def run(
    args: argparse.Namespace, bench: Bench, client_cpu: int | None
) -> tuple[
    HsResults, KaResults, dict[str, dict[str, str]], PassResults | None, dict[str, float | None]
]:
    """Terminating, then passthrough (each with its own rounds), then bench.tlsbio alone."""
    hs, ka, agreed = ({}, {}, {}) if args.pass_only else terminating(args, bench, client_cpu)
    passed = None if args.no_pass else passthrough(args, bench, client_cpu)
    bench.procs.stop_all()  # the proxies are idle now; the micro-benchmark runs alone
    cpus = (bench.proxy_cpu, client_cpu) if bench.proxy_cpu is not None else None
    bio = {} if args.pass_only else tlsbio_measure(cpus)
    return hs, ka, agreed, passed, bio


# Passthrough: the proxies route TLS by SNI without decrypting it; TLS servers behind them.

PASS_NAMES = (f"a.{NAME}", f"b.{NAME}")  # routed to b1 and b2 by both proxies
PASS_KEY, PASS_VERSION = "ECDSA P-256", "TLS 1.3"  # the backends' certificate; handshake row
PASS_SNI = PASS_NAMES[0]  # wrk's server name (one per wrk process): rule 1, backend b1
HAPROXY_PASS = """\
global
    nbthread 1
    maxconn 4000
{global_extra}defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
{extra}
frontend fe
    bind 127.0.0.1:{port}{bind}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req_ssl_hello_type 1 }}
    use_backend b1 if {{ req.ssl_sni -i {name_a} }}
    use_backend b2 if {{ req.ssl_sni -i {name_b} }}
backend b1
    server s1 127.0.0.1:{b1}
backend b2
    server s2 127.0.0.1:{b2}
"""
TCPVS_PASS = """\
Virtual pass {{
    listen = 127.0.0.1:{port}
    scheduler = wlc
    server = 127.0.0.1:{b1} 1
    server = 127.0.0.1:{b2} 1
    rule = sni "{name_a}" use server 127.0.0.1:{b1}
    rule = sni "{name_b}" use server 127.0.0.1:{b2}
}}
"""
# wrk resolves the URL's host in Lua: connect to 127.0.0.1 whatever the name (it stays the
# TLS server name and the Host header), with no DNS lookup.
WRK_RESOLVE = """\
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
"""
SYSCALL_REQUESTS = 64  # 1 MiB requests per strace pass, on one keep-alive connection
SYSCALL_CONNECTIONS = 200  # new connections per strace pass, one after another
NEW, MIB = "new connection", "1 MiB request"  # the strace passes


@dataclass
class PassResults:
    conns: dict[str, list[Handshakes]]  # system -> one per round
    ka: KaResults
    negotiated: dict[str, str]  # system -> what the client and the backend agreed on
    syscalls: dict[str, dict[str, SyscallCount]]  # NEW or MIB -> system -> under strace -c


def make_pass_cert(work: Path) -> tuple[Path, Path]:
    """The backends' certificate (both names) and its CA: the proxies hold no key."""
    ca = trustme.CA(key_type=KEYS[PASS_KEY])
    leaf = ca.issue_cert(*PASS_NAMES, key_type=KEYS[PASS_KEY])
    pem, ca_pem = work / "pass.pem", work / "pass-ca.pem"
    pem.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
    pem.chmod(0o600)
    ca.cert_pem.write_to_path(str(ca_pem))
    return pem, ca_pem


def pass_request(port: int, ca: Path | None, name: str) -> http.client.HTTPConnection:
    """An HTTPS connection through the passthrough on 127.0.0.1:port with server name `name`,
    the certificate checked against `ca` (None: unverified, as wrk)."""
    if ca is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(ca))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPConnection(name, port, timeout=10)
    conn.sock = context.wrap_socket(sock, server_hostname=name)
    return conn


def check_pass_routing(port: int, ca: Path, size: int) -> str:
    """Each name, verified against the run's CA (the backends' certificate: the TLS is theirs),
    answers every path with 200 and the full body from the backend its rule names. Returns
    what was negotiated (version, cipher)."""
    agreed = ""
    for name, want in zip(PASS_NAMES, ("b1", "b2"), strict=True):
        conn = pass_request(port, ca, name)
        try:
            for path in paths(size):
                conn.request("GET", path)
                resp = conn.getresponse()
                body, tag = resp.read(), resp.getheader("X-Backend")
                if resp.status != 200 or len(body) != size or tag != want:
                    raise RuntimeError(
                        f"{name} GET {path}: {resp.status}, {len(body)} B from {tag}, want {want}"
                    )
            tls = conn.sock
            assert isinstance(tls, ssl.SSLSocket)
            cipher = tls.cipher()
            agreed = f"{tls.version()}, {cipher[0] if cipher else '?'}"
        finally:
            conn.close()
    return agreed


def sni_handshakes(
    port: int, pid: int, *, seconds: int, clients: int, cpu: int | None, work: Path
) -> Handshakes:
    """`clients` processes of bench/sniclient.py against port, between the same two instants:
    new connections, each a full TLS handshake with a backend, names in turn."""
    start = time.time() + 0.6  # time for the clients to start (Python) before counting
    argv = [sys.executable, str(Path(__file__).with_name("sniclient.py")), str(port)]
    argv += [f"{start:.3f}", f"{start + seconds:.3f}", VERSIONS[PASS_VERSION], *PASS_NAMES]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    outs = [work / f"sniclient.{i}.out" for i in range(clients)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for out in outs:
            with out.open("wb") as stdout:
                procs.append(
                    subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT
                    )
                )
        time.sleep(max(start - time.time(), 0))
        busy0, (user0, sys0), t0 = cpu_busy(), cpu_seconds(pid), time.monotonic()
        for proc in procs:
            proc.wait(timeout=seconds + 30)
        t1, (user1, sys1), busy1 = time.monotonic(), cpu_seconds(pid), cpu_busy()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    count = resumed = 0
    client = 0.0
    for proc, out in zip(procs, outs, strict=True):
        text = out.read_text(errors="replace")
        found = re.search(r"^(\d+) connections in .*\nresumed (\d+)\ncpu (\S+)", text, re.M)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"sniclient exited {proc.returncode}: {text[-500:]}")
        count += int(found.group(1))
        resumed += int(found.group(2))
        client += float(found.group(3))
    if not count:
        raise RuntimeError("sniclient made no connection")
    return _handshakes(count, resumed, client, t1 - t0, (user0, sys0), (user1, sys1), busy0, busy1)


def sni_connections(port: int, n: int) -> int:
    """n new connections, one after another, each a full TLS handshake with a backend (names
    in turn, no verification, as bench/sniclient.py); returns n."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        with context.wrap_socket(sock, server_hostname=PASS_NAMES[i % len(PASS_NAMES)]) as tls:
            if tls.session_reused:
                raise RuntimeError(f"connection {i}: resumed")
    return n


def mib_requests(port: int, n: int) -> int:
    """n GET requests of 1 MiB, one after another on one keep-alive HTTPS connection through
    the passthrough (as wrk: unverified, server name PASS_SNI); returns n."""
    conn = pass_request(port, None, PASS_SNI)
    try:
        for i in range(n):
            conn.request("GET", paths(SIZES["1 MiB"])[i % len(ROUTES)])
            resp = conn.getresponse()
            if resp.status != 200 or len(resp.read()) != SIZES["1 MiB"]:
                raise RuntimeError(f"request {i}: status {resp.status} or short body")
    finally:
        conn.close()
    return n


def passthrough(args: argparse.Namespace, bench: Bench, client_cpu: int | None) -> PassResults:
    """Both proxies routing TLS by SNI to nginx TLS servers: new connections (full handshakes
    with the backend), then keep-alive HTTPS requests, by rounds; then system calls per 1 MiB
    request and per new connection (strace -c, one at a time): whether bytes were spliced."""
    pem, ca = make_pass_cert(bench.work)
    _, b1, b2 = start_tls_backend(bench, client_cpu, pem, INTERMEDIATE_CIPHERS)
    sni = replace(bench, b1=b1, b2=b2)
    name_a, name_b = PASS_NAMES
    starts: dict[str, Callable[[Bench], Running]] = {
        BASE: partial(
            start_haproxy,
            name="haproxy-pass",
            extra="",
            template=HAPROXY_PASS,
            name_a=name_a,
            name_b=name_b,
        ),
        MINE: partial(
            start_tcpvs, name="tcpvs-pass", template=TCPVS_PASS, name_a=name_a, name_b=name_b
        ),
    }
    running = {system: start(sni) for system, start in starts.items()}
    agreed = {}
    for system, r in running.items():
        for size in SIZES.values():
            agreed[system] = check_pass_routing(r.port, ca, size)
    script = bench.work / "pass.lua"
    script.write_text(WRK_LUA + WRK_RESOLVE)

    def pid(system: str) -> int:
        proc = running[system].proc
        assert proc is not None
        if proc.poll() is not None:
            raise RuntimeError(f"{system} (passthrough) exited {proc.returncode} during the run")
        return proc.pid

    def keepalive(system: str, size: int, seconds: int) -> Cell:
        return measure(
            running[system].port,
            paths(size),
            pid(system),
            seconds=seconds,
            conns=args.conns,
            cpu=client_cpu,
            script=script,
            scheme="https",
            host=PASS_SNI,
        )

    for system in running:  # warm-up: 1 s of keep-alive requests each
        keepalive(system, 13, 1)
    result = PassResults(
        {s: [] for s in SYSTEMS},
        {z: {s: [] for s in SYSTEMS} for z in args.sizes},
        agreed,
        {NEW: {}, MIB: {}},
    )
    order = list(SYSTEMS)
    for rnd in range(args.rounds):
        order = order[1:] + order[:1] if rnd else order
        for system in order:
            h = sni_handshakes(
                running[system].port,
                pid(system),
                seconds=args.seconds,
                clients=args.clients,
                cpu=client_cpu,
                work=bench.work,
            )
            result.conns[system].append(h)
            print(
                f"round {rnd + 1}/{args.rounds}  passthrough, new connections {system:<8} "
                f"{h.rate:>7.0f} conn/s  {h.cpu_us:6.1f} µs CPU each  "
                f"proxy {h.cpu_pct:3.0f} %  clients {h.client_us:4.0f} µs each",
                file=sys.stderr,
            )
        for size in args.sizes:
            for system in order:
                c = keepalive(system, SIZES[size], args.seconds)
                result.ka[size][system].append(c)
                print(
                    f"round {rnd + 1}/{args.rounds}  passthrough {size:>6}  {system:<8} "
                    f"{c.rps:>9.0f} req/s  p99 {c.p99_ms:6.2f} ms  {c.cpu_us or 0:.1f} µs/req",
                    file=sys.stderr,
                )
    if shutil.which("strace"):
        for system, r in running.items():
            result.syscalls[NEW][system] = count_syscalls(
                pid(system), partial(sni_connections, r.port, SYSCALL_CONNECTIONS)
            )
            result.syscalls[MIB][system] = count_syscalls(
                pid(system), partial(mib_requests, r.port, SYSCALL_REQUESTS)
            )
    return result


def tlsbio_measure(cpus: tuple[int, int | None] | None) -> dict[str, float | None]:
    """bench.tlsbio in its own process: the sender on the proxies' CPU, the reader on the
    clients'."""
    argv = [sys.executable, "-m", "bench.tlsbio", "--json"]
    if cpus is not None and cpus[1] is not None:
        argv += ["--cpus", str(cpus[0]), str(cpus[1])]
    else:
        argv += ["--cpus", "-1", "-1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
    if done.returncode != 0:
        print(f"bench: bench.tlsbio failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return {}
    result: dict[str, float | None] = json.loads(done.stdout)
    return result


# Reporting


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def busy(cells: list[Handshakes] | list[Cell], proxy: int | None) -> str:
    """Busy % per CPU; `⚠ +N` when the proxy's CPU (pinned) was busier than the proxy by N
    points in a cell (other processes ran there: a disturbed cell)."""
    ncpu = min((len(c.busy) for c in cells), default=0)
    text = "/".join(f"{statistics.median(c.busy[i] for c in cells):.0f}" for i in range(ncpu))
    if proxy is None or proxy >= ncpu:
        return text
    others = [c.busy[proxy] - c.cpu_pct for c in cells if c.cpu_pct is not None]
    worst = max(others, default=0.0)
    return text + (f" ⚠ +{worst:.0f}" if worst > 5 else "")


def hs_tables(hs: HsResults, clients: int, proxy: int | None) -> list[str]:
    out = [
        f"### New TLS handshakes (`openssl s_time`, {clients} processes)",
        "",
        "handshakes/s compares the proxies where the proxy's CPU is near 100 %; below that the "
        "clients (on the other CPU) set the rate, and *handshakes per CPU-second* (1 / proxy "
        "CPU per handshake: what one core of the proxy would do) is the comparison. "
        "`⚠ +N` after the busy columns: in one of the cells the proxy's CPU was N points busier "
        "than the proxy itself (other processes ran there).",
        "",
    ]
    head = [
        "certificate, version",
        "system",
        "handshakes/s",
        "proxy CPU µs/handshake",
        "of which kernel",
        "proxy CPU %",
        "clients' CPU µs/handshake",
        "busy % CPU0/CPU1",
    ]
    rows = []
    for label, row in hs.items():
        for system, cells in row.items():
            if not cells:
                continue
            resumed = sum(c.resumed for c in cells) / max(sum(c.count for c in cells), 1)
            note = f" ({resumed:.0%} resumed)" if "resumed" in label else ""
            rows.append(
                [
                    label + note,
                    system,
                    spread([c.rate for c in cells]),
                    spread([c.cpu_us for c in cells]),
                    spread([c.sys_us for c in cells]),
                    spread([c.cpu_pct for c in cells]),
                    spread([c.client_us for c in cells]),
                    busy(cells, proxy),
                ]
            )
    out += _table(head, rows)
    out += ["", f"Ratios of medians, {MINE} / {BASE}:", ""]
    rows = []
    for label, row in hs.items():
        mine, base = row.get(MINE, []), row.get(BASE, [])
        rows.append(
            [
                label,
                ratio(med([c.rate for c in mine]), med([c.rate for c in base])),
                ratio(med([c.cpu_us for c in mine]), med([c.cpu_us for c in base])),
                # what one core would do: handshakes per CPU-second of the proxy
                ratio(med([1e6 / c.cpu_us for c in mine]), med([1e6 / c.cpu_us for c in base])),
            ]
        )
    head = ["certificate, version", "handshakes/s", "proxy CPU/handshake", "handshakes per CPU-s"]
    return out + _table(head, rows) + [""]


def attr(cells: list[Cell], name: str) -> list[float]:
    return [float(v) for c in cells if (v := getattr(c, name)) is not None]


def ka_rows(ka: KaResults, extra: Callable[[list[Cell]], list[str]]) -> list[list[str]]:
    """One row per size and system of keep-alive cells: the metrics' spreads, then `extra`."""
    rows = []
    for size, row in ka.items():
        for system, cells in row.items():
            if cells:
                errs = sum(c.errors for c in cells)
                label = system + (f" ⚠ {errs} errors" if errs else "")
                spreads = [spread(attr(cells, a)) for _, a in METRICS]
                rows.append([size, label, *spreads, *extra(cells)])
    return rows


def ka_tables(ka: KaResults, conns: int, proxy: int | None) -> list[str]:
    out = [f"### Keep-alive HTTPS requests (wrk -t1 -c{conns}, {KEEPALIVE_KEY} certificate)", ""]
    rows = ka_rows(ka, lambda cells: [busy(cells, proxy)])
    out += _table(["size", "system", *(m for m, _ in METRICS), "busy % CPU0/CPU1"], rows)
    out += ["", f"Ratios of medians, {MINE} / {BASE}:", ""]
    rows = [
        [
            size,
            *(
                ratio(med(attr(row.get(MINE, []), a)), med(attr(row.get(BASE, []), a)))
                for _, a in METRICS[:5]
            ),
        ]
        for size, row in ka.items()
    ]
    return out + _table(["size", *(m for m, _ in METRICS[:5])], rows) + [""]


def targets_table(hs: HsResults, ka: KaResults) -> list[str]:
    rows = []
    for label, row in hs.items():
        if "resumed" in label:
            continue
        mine, base = row.get(MINE, []), row.get(BASE, [])
        rates = med([c.rate for c in mine]), med([c.rate for c in base])
        per_cpu = med([1e6 / c.cpu_us for c in mine]), med([1e6 / c.cpu_us for c in base])
        if rates[0] is None or not rates[1] or per_cpu[0] is None or not per_cpu[1]:
            continue
        r_rate, r_cpu = rates[0] / rates[1], per_cpu[0] / per_cpu[1]
        ok = r_rate >= 0.9 and r_cpu >= 0.9
        rows.append(
            [
                f"handshakes/s, {label}",
                f">= 0.9× {BASE}",
                f"{r_rate:.2f}× measured, {r_cpu:.2f}× per CPU-second",
                "met" if ok else "**missed**",
            ]
        )
    big = ka.get("1 MiB", {})
    mine_cpu, base_cpu = (
        med(attr(big.get(MINE, []), "cpu_us")),
        med(attr(big.get(BASE, []), "cpu_us")),
    )
    if mine_cpu is not None and base_cpu:
        r = mine_cpu / base_cpu
        rows.append(
            [
                "1 MiB over TLS, proxy CPU per request",
                f"<= 1.0× {BASE}",
                f"{r:.2f}×",
                "met" if r <= 1.0 else "**missed**",
            ]
        )
    if not rows:
        return []
    head = ["### TLS targets (this run's medians)", ""]
    return head + _table(["target", "", "measured", ""], rows) + [""]


def render(
    info: list[tuple[str, str]],
    hs: HsResults,
    ka: KaResults,
    agreed: dict[str, dict[str, str]],
    bio: dict[str, float | None],
    clients: int,
    conns: int,
    proxy: int | None,
) -> str:
    out = ["## Latest TLS results", ""]
    out += [f"- **{k}**: {v}" for k, v in info]
    out += [
        "",
        "Systems (one certificate each, made by trustme for the run; same backend and routing "
        "as the plain bench):",
        "",
        f"- `{BASE}`: HAProxy, `nbthread 1` (one thread, as one tcpvsd process), "
        "`bind ... ssl crt FILE alpn http/1.1`, `ssl-default-bind-ciphers` = tcpvs's "
        "INTERMEDIATE_CIPHERS in the server's order (HAProxy's default, as tcpvs), "
        "`ssl-default-bind-options ssl-min-ver TLSv1.2`, OpenSSL's TLS 1.3 suites, "
        "tickets on; HTTP mode, path_beg /a/ routing, http-reuse always, forwardfor",
        f"- `{MINE}`: one tcpvsd configured by tcpvsadm -f, `tls = FILE` in its Virtual block "
        "(tcpvs.tls.settings: TLS 1.2 and 1.3, the same ciphers in the server's order, ALPN "
        "http/1.1, tickets on); "
        "scheduler http, two rules, XFF on, stats on",
        "",
        "Negotiated (`openssl s_client`, the handshake clients' defaults: version, cipher, "
        "key exchange, signature, ALPN):",
        "",
    ]
    rows = [[label, *(row.get(s, "–") for s in SYSTEMS)] for label, row in agreed.items()]
    out += _table(["certificate, version", *SYSTEMS], rows) + [""]
    out += hs_tables(hs, clients, proxy) + ka_tables(ka, conns, proxy) + targets_table(hs, ka)
    if bio:
        out += ["### Sending 1 MiB over TLS, by path (`python -m bench.tlsbio`)", ""]
        out += _table(
            ["CPU of the sending thread", "µs per MiB"], [list(r) for r in tlsbio.rows(bio)]
        ) + [""]
    return "\n".join(out)


def core_us(cells: list[Handshakes] | list[Cell], proxy: int | None) -> list[float]:
    """µs of the proxy's CPU busy per connection or request, all of it: the proxy's own time
    and the kernel's work on that CPU charged to no process (softirq while it would idle).
    Only when pinned: the proxy's CPU runs nothing else of the bench."""
    out = []
    for c in cells:
        per_s = c.rps if isinstance(c, Cell) else c.rate
        if proxy is not None and proxy < len(c.busy) and per_s:
            out.append(c.busy[proxy] / 100 / per_s * 1e6)
    return out


def render_pass(
    info: list[tuple[str, str]], res: PassResults, clients: int, conns: int, proxy: int | None
) -> str:
    out = ["## Latest TLS passthrough results", ""]
    out += [f"- **{k}**: {v}" for k, v in info]
    agreed = sorted(set(res.negotiated.values()))
    out += [
        "",
        "Systems (no key: the TLS is between the clients and two nginx TLS servers on CPU"
        "0, one trustme ECDSA P-256 certificate for both names):",
        "",
        f"- `{BASE}`: HAProxy, `nbthread 1`, `mode tcp`, `tcp-request inspect-delay 5s`, "
        "`tcp-request content accept if { req_ssl_hello_type 1 }`, "
        "`use_backend bN if { req.ssl_sni -i NAME }` for the two names (no splice option)",
        f"- `{MINE}`: one tcpvsd, a raw TCP Virtual: `scheduler = wlc`, two servers, "
        '`rule = sni "NAME" use server HOST:PORT` for the two names (splice above 512 KiB)',
        "",
        f"Names: `{PASS_NAMES[0]}` → b1, `{PASS_NAMES[1]}` → b2, checked through both proxies "
        "against the run's CA and the backends' X-Backend tag. Negotiated with the backends: "
        + (", ".join(agreed) or "?")
        + ".",
        "",
        f"### New connections through the passthrough ({clients} × `bench/sniclient.py`, "
        f"{PASS_VERSION}, SNI, each a full handshake with nginx)",
        "",
        "The backends' handshakes run on the clients' CPU, which sets the rate: the proxies' "
        "comparison is CPU per connection (a ClientHello peeked, a backend connection, the "
        "handshake's records relayed, two closes). *proxy's CPU busy*: all the time the "
        "proxy's CPU (it runs nothing else) was busy, per connection or request: the proxy's "
        "own CPU plus the kernel's network work there that no process is charged for.",
        "",
    ]
    rows = []
    for system, cells in res.conns.items():
        if cells:
            full = sum(c.count - c.resumed for c in cells) / max(sum(c.count for c in cells), 1)
            rows.append(
                [
                    system,
                    spread([c.rate for c in cells]),
                    spread([c.cpu_us for c in cells]),
                    spread([c.sys_us for c in cells]),
                    spread(core_us(cells, proxy)),
                    spread([c.cpu_pct for c in cells]),
                    spread([c.client_us for c in cells]),
                    f"{full:.0%}",
                    busy(cells, proxy),
                ]
            )
    head = ["system", "connections/s", "proxy CPU µs/connection", "of which kernel"]
    head += ["proxy's CPU busy µs/connection", "proxy CPU %", "clients' CPU µs/connection"]
    head += ["full handshakes", "busy % CPU0/CPU1"]
    out += _table(head, rows)
    out += [
        "",
        f"### Keep-alive HTTPS through the passthrough (wrk -t1 -c{conns}, SNI `{PASS_SNI}`)",
        "",
    ]
    rows = ka_rows(res.ka, lambda cells: [spread(core_us(cells, proxy)), busy(cells, proxy)])
    head = ["size", "system", *(m for m, _ in METRICS), "proxy's CPU busy µs/req"]
    out += _table(head + ["busy % CPU0/CPU1"], rows)
    out += ["", f"### Passthrough: ratios of medians, {MINE} / {BASE}", ""]
    mine, base = res.conns.get(MINE, []), res.conns.get(BASE, [])
    rows = [
        [
            "new connections",
            ratio(med([c.rate for c in mine]), med([c.rate for c in base])),
            ratio(med([c.cpu_us for c in mine]), med([c.cpu_us for c in base])),
            ratio(med([1e6 / c.cpu_us for c in mine]), med([1e6 / c.cpu_us for c in base])),
            ratio(med(core_us(mine, proxy)), med(core_us(base, proxy))),
        ]
    ]
    for size, row in res.ka.items():
        m, b = row.get(MINE, []), row.get(BASE, [])
        cpu_m, cpu_b = med(attr(m, "cpu_us")), med(attr(b, "cpu_us"))
        rows.append(
            [
                f"keep-alive {size}",
                ratio(med(attr(m, "rps")), med(attr(b, "rps"))),
                ratio(cpu_m, cpu_b),
                ratio(cpu_b, cpu_m),
                ratio(med(core_us(m, proxy)), med(core_us(b, proxy))),
            ]
        )
    head = ["row", "connections/s or req/s", "proxy CPU per connection or request"]
    head += ["per proxy CPU-second", "proxy's CPU busy per connection or request"]
    out += _table(head, rows) + [""]
    if any(res.syscalls.values()):
        out += [
            "### System calls through the passthrough (strace -c -f, no other load)",
            "",
            f"Per new connection: {SYSCALL_CONNECTIONS} full TLS 1.3 handshakes one after "
            f"another; per 1 MiB request: {SYSCALL_REQUESTS} requests on one keep-alive "
            "connection.",
            "",
        ]
        groups = {
            "splice": ("splice",),
            "read": ("read", "recvfrom", "recvmsg", "readv"),
            "write": ("write", "sendto", "sendmsg", "writev"),
            "epoll": ("epoll_wait", "epoll_pwait", "epoll_ctl"),
        }
        rows = []
        for unit, per_system in res.syscalls.items():
            for system, c in per_system.items():
                per = [
                    sum(c.calls.get(x, 0) for x in names) / c.requests for names in groups.values()
                ]
                top = ", ".join(f"{name} {v:.1f}" for name, v in c.top(6))
                rows.append([unit, system, f"{c.per_request:.1f}", *(f"{v:.1f}" for v in per), top])
        out += _table(["per", "system", "all", *groups, "most frequent"], rows) + [""]
    return "\n".join(out)


def openssl_version() -> str:
    done = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.no_pass and args.pass_only:
        sys.exit("bench: --no-pass and --pass-only exclude each other")
    ensure_tools()
    if not shutil.which("openssl"):
        sys.exit("bench: needs openssl (apt-get install openssl)")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    if args.nice:
        set_group_nice(os.getpid(), args.nice)
    if args.tcpvs_bin:
        os.environ["PATH"] = f"{os.path.abspath(args.tcpvs_bin)}{os.pathsep}{os.environ['PATH']}"
    client_cpu, proxy_cpu = pinned_cpus(args)
    pin = proxy_cpu is not None
    pinning = (
        f"clients (s_time, bench/sniclient.py, wrk) and backends on CPU{client_cpu}, proxy "
        f"alone on CPU{proxy_cpu} (taskset)"
        if pin
        else "none"
    )
    load_before = loadavg()
    procs = Procs(args.nice)
    with bench_run(procs, "tcpvs-bench-tls-", args.keep, "configs, logs and keys") as work:
        hs, ka, agreed, passed, bio = run(args, Bench(procs, work, proxy_cpu), client_cpu)
    settings = (
        (f"nice {args.nice}; " if args.nice else "")
        + f"{args.seconds} s per cell, {args.rounds} rounds (systems interleaved, order rotated "
        "each round)"
        + (
            ""
            if args.pass_only
            else f"; handshakes: {args.clients} × `openssl s_time -new` (full handshakes, no SNI)"
        )
        + (
            ""
            if args.no_pass
            else f"; passthrough, new connections: {args.clients} × `bench/sniclient.py` (full "
            f"{PASS_VERSION} handshakes with the backends, SNI {' and '.join(PASS_NAMES)} in turn)"
        )
        + f"; requests: wrk -t1 -c{args.conns}, GET /a/SIZE and /b/SIZE alternating"
        + ("" if args.no_pass else f" (passthrough: SNI {PASS_SNI})")
    )
    info = machine_info(pinning, settings, load_before, args.note)
    info.insert(4, ("openssl", openssl_version()))
    report = (
        ""
        if args.pass_only
        else render(info, hs, ka, agreed, bio, args.clients, args.conns, proxy_cpu)
    )
    pass_report = render_pass(info, passed, args.clients, args.conns, proxy_cpu) if passed else ""
    text = "\n\n".join(r for r in (report, pass_report) if r)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tls.md").write_text(text + "\n")
    raw: dict[str, object] = {
        "info": dict(info),
        "negotiated": agreed,
        "handshakes": {k: {s: [asdict(c) for c in v] for s, v in r.items()} for k, r in hs.items()},
        "keepalive": {k: {s: [asdict(c) for c in v] for s, v in r.items()} for k, r in ka.items()},
        "tlsbio_us_per_mib": bio,
    }
    if passed:
        raw["passthrough"] = {
            "negotiated": passed.negotiated,
            "connections": {s: [asdict(c) for c in v] for s, v in passed.conns.items()},
            "keepalive": {
                k: {s: [asdict(c) for c in v] for s, v in r.items()} for k, r in passed.ka.items()
            },
            "syscalls": {
                unit: {s: asdict(c) for s, c in per.items()}
                for unit, per in passed.syscalls.items()
            },
        }
    (RESULTS / "tls.json").write_text(json.dumps(raw, indent=1) + "\n")
    if args.publish:
        if report:
            publish(DOC, report, BEGIN, END)
        if pass_report:
            publish(DOC, pass_report, PASS_BEGIN, PASS_END)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; every process it started was stopped")
