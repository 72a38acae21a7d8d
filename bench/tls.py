"""TLS: tcpvs against HAProxy in the same run, both terminating HTTPS with the same certificate,
versions and ciphers (bench/run.sh --tls; docs/benchmarks.md, "TLS").

New full handshakes per second and the proxy's CPU per handshake (ECDSA P-256 and RSA 2048
certificates, TLS 1.3 and 1.2; clients: `openssl s_time -new`), resumed TLS 1.2 handshakes,
and keep-alive HTTPS requests of 13 B, 64 KiB and 1 MiB (wrk): req/s and the proxy's CPU per
request. Then what a memory-BIO TLS layer costs per MiB (bench.tlsbio).

    bench/run.sh --tls                            # about 3.5 minutes; --publish: into the doc
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
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import trustme

from bench import tlsbio
from bench.__main__ import _exit_on_signal, ensure_tools
from bench.measure import Cell, measure, wrk_script
from bench.procs import Procs, cpu_busy, cpu_seconds, set_group_nice
from bench.report import _table, loadavg, machine_info, num, publish
from bench.systems import (
    REPO,
    SIZES,
    Bench,
    Running,
    paths,
    start_backend,
    start_haproxy,
    start_tcpvs,
)
from tcpvs.tls.settings import ALPN, INTERMEDIATE_CIPHERS

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:tls:begin -->", "<!-- bench:tls:end -->"
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
    wall, proxy = t1 - t0, (user1 + sys1) - (user0 + sys0)
    return Handshakes(
        rate=count / wall,
        cpu_us=proxy / count * 1e6,
        sys_us=(sys1 - sys0) / count * 1e6,
        cpu_pct=proxy / wall * 100,
        client_us=client / count * 1e6,
        busy=[
            100 * (b1 - b0) / max(c1 - c0, 1)
            for (b0, c0), (b1, c1) in zip(busy0, busy1, strict=True)
        ],
        count=count,
        resumed=resumed,
    )


def run(
    args: argparse.Namespace, bench: Bench, client_cpu: int | None
) -> tuple[HsResults, KaResults, dict[str, dict[str, str]], dict[str, float | None]]:
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
    bench.procs.stop_all()  # the proxies are idle now; the micro-benchmark runs alone
    cpus = (bench.proxy_cpu, client_cpu) if bench.proxy_cpu is not None else None
    bio = tlsbio_measure(cpus)
    return hs, ka, agreed, bio


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


def spread(values: list[float]) -> str:
    if not values:
        return "–"
    mid = num(statistics.median(values))
    return mid if len(values) == 1 else f"{mid} ({num(min(values))}–{num(max(values))})"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


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


KA_METRICS = [
    ("req/s", "rps"),
    ("MB/s", "mbps"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("proxy CPU µs/req", "cpu_us"),
    ("of which kernel", "sys_us"),
    ("proxy CPU %", "cpu_pct"),
]


def attr(cells: list[Cell], name: str) -> list[float]:
    return [float(v) for c in cells if (v := getattr(c, name)) is not None]


def ka_tables(ka: KaResults, conns: int, proxy: int | None) -> list[str]:
    out = [f"### Keep-alive HTTPS requests (wrk -t1 -c{conns}, {KEEPALIVE_KEY} certificate)", ""]
    rows = []
    for size, row in ka.items():
        for system, cells in row.items():
            if cells:
                errs = sum(c.errors for c in cells)
                label = system + (f" ⚠ {errs} errors" if errs else "")
                rows.append(
                    [
                        size,
                        label,
                        *(spread(attr(cells, a)) for _, a in KA_METRICS),
                        busy(cells, proxy),
                    ]
                )
    out += _table(["size", "system", *(m for m, _ in KA_METRICS), "busy % CPU0/CPU1"], rows)
    out += ["", f"Ratios of medians, {MINE} / {BASE}:", ""]
    rows = [
        [
            size,
            *(
                ratio(med(attr(row.get(MINE, []), a)), med(attr(row.get(BASE, []), a)))
                for _, a in KA_METRICS[:5]
            ),
        ]
        for size, row in ka.items()
    ]
    return out + _table(["size", *(m for m, _ in KA_METRICS[:5])], rows) + [""]


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


def openssl_version() -> str:
    done = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_tools()
    if not shutil.which("openssl"):
        sys.exit("bench: needs openssl (apt-get install openssl)")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    if args.nice:
        set_group_nice(os.getpid(), args.nice)
    if args.tcpvs_bin:
        os.environ["PATH"] = f"{os.path.abspath(args.tcpvs_bin)}{os.pathsep}{os.environ['PATH']}"
    cpus = os.sched_getaffinity(0)
    pin = (
        not args.no_pin
        and {args.wrk_cpu, args.proxy_cpu} <= cpus
        and args.wrk_cpu != args.proxy_cpu
    )
    client_cpu, proxy_cpu = (args.wrk_cpu, args.proxy_cpu) if pin else (None, None)
    pinning = (
        f"clients (s_time, wrk) and backend on CPU{client_cpu}, proxy alone on CPU{proxy_cpu} "
        "(taskset)"
        if pin
        else "none"
    )
    load_before = loadavg()
    procs = Procs(args.nice)
    work = Path(tempfile.mkdtemp(prefix="tcpvs-bench-tls-"))
    work.chmod(0o755)  # nginx workers may run as another user and read www/ below
    keep = args.keep
    try:
        hs, ka, agreed, bio = run(args, Bench(procs, work, proxy_cpu), client_cpu)
    except BaseException:
        keep = True
        raise
    finally:
        procs.stop_all()
        if keep:
            print(f"bench: configs, logs and keys kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    settings = (
        (f"nice {args.nice}; " if args.nice else "")
        + f"{args.seconds} s per cell, {args.rounds} rounds (systems interleaved, order rotated "
        f"each round); handshakes: {args.clients} × `openssl s_time -new` (full handshakes, "
        f"no SNI); requests: wrk -t1 -c{args.conns}, GET /a/SIZE and /b/SIZE alternating"
    )
    info = machine_info(pinning, settings, load_before, args.note)
    info.insert(4, ("openssl", openssl_version()))
    report = render(info, hs, ka, agreed, bio, args.clients, args.conns, proxy_cpu)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tls.md").write_text(report + "\n")
    raw = {
        "info": dict(info),
        "negotiated": agreed,
        "handshakes": {k: {s: [asdict(c) for c in v] for s, v in r.items()} for k, r in hs.items()},
        "keepalive": {k: {s: [asdict(c) for c in v] for s, v in r.items()} for k, r in ka.items()},
        "tlsbio_us_per_mib": bio,
    }
    (RESULTS / "tls.json").write_text(json.dumps(raw, indent=1) + "\n")
    if args.publish:
        publish(DOC, report, BEGIN, END)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench: interrupted; every process it started was stopped")
