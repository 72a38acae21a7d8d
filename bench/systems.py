"""What is measured: the loopback backend (one nginx, two ports) and each system under test
(direct, HAProxy, HAProxy with forced splice, nginx, tcpvs with 1 and 2 workers): data plus one
start function per kind.
Every proxy routes the same way: URIs starting with /a/ go to backend 1, all others to backend 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.procs import Procs, free_port, port_open, wait_until

REPO = Path(__file__).resolve().parent.parent
SIZES: dict[str, int] = {"13 B": 13, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
ROUTES = ("/a/", "/b/")  # one request per route, alternating: both routing outcomes are exercised


def paths(size: int) -> list[str]:
    return [f"{route}{size}" for route in ROUTES]


@dataclass
class Bench:
    """What start functions share: where to write, the backend ports, the proxy CPU."""

    procs: Procs
    work: Path
    proxy_cpu: int | None
    b1: int = 0
    b2: int = 0


@dataclass(frozen=True)
class Running:
    port: int
    proc: subprocess.Popen[bytes] | None  # the proxy; None for direct


@dataclass(frozen=True)
class System:
    name: str
    what: str  # one line for the report
    start: Callable[[Bench], Running]
    unavailable: Callable[[], str | None] = field(default=lambda: None)


def _launch(bench: Bench, name: str, argv: list[str], port: int, cpu: int | None) -> Running:
    log = bench.work / f"{name}.log"
    proc = bench.procs.spawn(argv, cpu=cpu, log=log)
    wait_until(lambda: port_open(port), proc, log)
    return Running(port, proc)


def _nginx(
    bench: Bench, name: str, http: str, cpu: int | None, events: str = ""
) -> subprocess.Popen[bytes]:
    """One nginx master + 1 worker in the foreground, with its own prefix, config and logs;
    `events`: more directives for its events block."""
    prefix = bench.work / name
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096;{events} }}
http {{
    access_log off;
    # The default (1000) would close wrk's connections mid-cell and add reconnects.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
{http}
}}
""")
    argv = ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", f"{prefix}/error.log"]
    return bench.procs.spawn(argv, cpu=cpu, log=bench.work / f"{name}.log")


def _www(bench: Bench) -> Path:
    """The backends' files, /a/SIZE and /b/SIZE (written once per run)."""
    www = bench.work / "www"
    if not www.exists():
        for route in ROUTES:
            (www / route.strip("/")).mkdir(parents=True)
            for size in SIZES.values():
                body = b"Hello, world\n" if size == 13 else b"x" * size
                (www / route.strip("/") / str(size)).write_bytes(body)
    return www


def start_backend(bench: Bench, cpu: int | None) -> subprocess.Popen[bytes]:
    """Static files /a/SIZE and /b/SIZE on two ports, each answer tagged with X-Backend."""
    www = _www(bench)
    bench.b1, bench.b2 = free_port(), free_port()
    servers = "".join(
        f"    server {{ listen 127.0.0.1:{port}; root {www}; add_header X-Backend {tag}; }}\n"
        for tag, port in (("b1", bench.b1), ("b2", bench.b2))
    )
    http = "    sendfile on;\n    tcp_nopush on;\n    open_file_cache max=64;\n" + servers
    proc = _nginx(bench, "backend", http, cpu)
    for port in (bench.b1, bench.b2):
        wait_until(lambda p=port: port_open(p), proc, bench.work / "backend.log")
    return proc


def start_tls_backend(
    bench: Bench, cpu: int | None, pem: Path, ciphers: str
) -> tuple[subprocess.Popen[bytes], int, int]:
    """The same files over HTTPS (TLS 1.2 and 1.3, `ciphers` for 1.2, the certificate and key
    in `pem`) on two more ports, tagged b1 and b2 as above: the servers of a TLS passthrough
    (bench/tls.py). Returns nginx and the two ports."""
    www = _www(bench)
    b1, b2 = free_port(), free_port()
    tls = (
        f"ssl_certificate {pem}; ssl_certificate_key {pem}; "
        f"ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {ciphers};"
    )
    servers = "".join(
        f"    server {{ listen 127.0.0.1:{port} ssl; {tls} root {www}; "
        f"add_header X-Backend {tag}; }}\n"
        for tag, port in (("b1", b1), ("b2", b2))
    )
    # multi_accept: every queued connection at once. With one accept per loop turn, wrk's
    # connections waited seconds in the accept queue while nginx sent 1 MiB answers to the
    # first ones, and wrk spins on a connection in its TLS handshake (it polls it for
    # writable): the 1 MiB cells measured that spin (docs/benchmarks.md, "Passthrough").
    proc = _nginx(
        bench, "backend-tls", "    open_file_cache max=64;\n" + servers, cpu, " multi_accept on;"
    )
    for port in (b1, b2):
        wait_until(partial(port_open, port), proc, bench.work / "backend-tls.log")
    return proc, b1, b2


def start_direct(bench: Bench) -> Running:
    return Running(bench.b1, None)


HAPROXY = """\
global
    nbthread 1
    maxconn 4000
{global_extra}defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    http-reuse always
{extra}
frontend fe
    bind 127.0.0.1:{port}{bind}
    use_backend b1 if {{ path_beg /a/ }}
    default_backend b2
backend b1
    server s1 127.0.0.1:{b1}
backend b2
    server s2 127.0.0.1:{b2}
"""


def start_haproxy(
    bench: Bench,
    name: str,
    extra: str,
    global_extra: str = "",
    bind: str = "",
    template: str = HAPROXY,
    **fields: object,
) -> Running:
    """`extra` goes into `defaults`, `global_extra` into `global` (lines ending in a newline),
    `bind` after the frontend's address (e.g. TLS: `ssl crt FILE`, bench/tls.py); `template`
    and its `fields`: another configuration (e.g. TCP mode, bench/tls.py's passthrough)."""
    port = free_port()
    conf = bench.work / f"{name}.cfg"
    conf.write_text(
        template.format(
            extra=extra,
            global_extra=global_extra,
            bind=bind,
            port=port,
            b1=bench.b1,
            b2=bench.b2,
            **fields,
        )
    )
    return _launch(bench, name, ["haproxy", "-db", "-f", str(conf)], port, bench.proxy_cpu)


def start_nginx(bench: Bench) -> Running:
    port = free_port()
    upstreams = "".join(
        f"    upstream {tag} {{ server 127.0.0.1:{b}; keepalive 32; keepalive_requests 1000000; }}"
        "\n"
        for tag, b in (("b1", bench.b1), ("b2", bench.b2))
    )
    http = (
        upstreams
        + f"""\
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # Buffer 1 MiB answers in memory only: a temp file on disk would measure the disk.
        proxy_max_temp_file_size 0;
        location /a/ {{ proxy_pass http://b1; }}
        location / {{ proxy_pass http://b2; }}
    }}"""
    )
    proc = _nginx(bench, "nginx", http, bench.proxy_cpu)
    wait_until(lambda: port_open(port), proc, bench.work / "nginx.log")
    return Running(port, proc)


# A tcpvs install to compare with in the same run (a build from before a data-path change):
# the directory holding its tcpvsd and tcpvsadm, e.g. a venv's bin/ (docs/benchmarks.md).
BEFORE = os.environ.get("TCPVS_BEFORE", "")


def tcpvs_commands(bin_dir: str = "") -> tuple[list[str], list[str], dict[str, str] | None]:
    """(tcpvsd, tcpvsadm, env): those in `bin_dir`, else the installed scripts, else this
    tree's entry points."""
    if bin_dir:
        return [os.path.join(bin_dir, "tcpvsd")], [os.path.join(bin_dir, "tcpvsadm")], None
    tcpvsd, tcpvsadm = shutil.which("tcpvsd"), shutil.which("tcpvsadm")
    if tcpvsd and tcpvsadm:
        return [tcpvsd], [tcpvsadm], None
    run = "import sys; from {} import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return (
        [sys.executable, "-c", run.format("tcpvs.daemon.tcpvsd")],
        [sys.executable, "-c", run.format("tcpvsadm.cli")],
        env,
    )


def tcpvs_unavailable(bin_dir: str = "") -> str | None:
    tcpvsd, tcpvsadm, env = tcpvs_commands(bin_dir)
    for argv in (tcpvsd, tcpvsadm):
        try:
            done = subprocess.run([*argv, "--help"], capture_output=True, env=env, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{argv[-1]} --help`: {exc}"
        if done.returncode != 0:
            last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            return f"`--help` exited {done.returncode}: {last[-1] if last else ''}"
    return None


TCPVS_CONF = """\
Virtual bench {{
    listen = 127.0.0.1:{port}
    scheduler = http
    server = 127.0.0.1:{b1} 1
    server = 127.0.0.1:{b2} 1
    rule = pattern "^/a/" use server 127.0.0.1:{b1}
    rule = pattern ".*" use server 127.0.0.1:{b2}
}}
"""


def start_tcpvs(
    bench: Bench,
    name: str = "tcpvs",
    workers: int = 1,
    bin_dir: str = "",
    access_log: bool = False,
    extra: str = "",
    template: str = TCPVS_CONF,
    **fields: object,
) -> Running:
    """As users run it: tcpvsd in the foreground, then tcpvsadm -f FILE and --start; with
    `access_log`, every request logged to a file in the work directory; `extra`: more lines
    of the Virtual block (e.g. `tls = FILE`, bench/tls.py); `template` and its `fields`:
    another Virtual block (e.g. bench/tls.py's passthrough).

    With workers > 1 it is not pinned: its workers may use every CPU, wrk's and the
    backend's included (that sharing is what such a run shows on a small machine)."""
    tcpvsd, tcpvsadm, env = tcpvs_commands(bin_dir)
    # tcpvsd.sock, tcpvs.conf, tcpvs.log for the `tcpvs` system (bench/idle.py uses them)
    port, sock, conf = free_port(), bench.work / f"{name}d.sock", bench.work / f"{name}.conf"
    text = template.format(port=port, b1=bench.b1, b2=bench.b2, **fields)
    conf.write_text(text[: text.rindex("}")] + extra + "}\n")
    log = bench.work / f"{name}.log"
    argv = [*tcpvsd, "--socket", str(sock)] + (["--workers", str(workers)] if workers > 1 else [])
    if access_log:
        argv += ["--access-log", str(bench.work / f"{name}-access.log")]
    cpu = bench.proxy_cpu if workers == 1 else None
    proc = bench.procs.spawn(argv, cpu=cpu, log=log, env=env)
    wait_until(sock.exists, proc, log)
    for args in (["-f", str(conf)], ["--start"]):
        done = subprocess.run(
            [*tcpvsadm, "--socket", str(sock), *args], capture_output=True, env=env, timeout=30
        )
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"tcpvsadm {' '.join(args)}: exit {done.returncode}: {out}")
    wait_until(lambda: port_open(port), proc, log)
    return Running(port, proc)


SYSTEMS: list[System] = [
    System("direct", "wrk straight to backend 1 (no proxy)", start_direct),
    System(
        "haproxy",
        "HAProxy, HTTP mode, 1 thread, path_beg /a/ routing, http-reuse always, forwardfor",
        partial(start_haproxy, name="haproxy", extra=""),
    ),
    System(
        "haproxy-splice",
        "the same + `option splice-request` and `option splice-response`",
        partial(
            start_haproxy,
            name="haproxy-splice",
            extra="    option splice-request\n    option splice-response",
        ),
    ),
    System(
        "nginx",
        "nginx, 1 worker, two locations, upstream keepalive 32, HTTP/1.1, X-Forwarded-For",
        start_nginx,
    ),
    System(
        "tcpvs",
        "tcpvsd configured by tcpvsadm -f: scheduler http, two rules, XFF on, stats on",
        start_tcpvs,
        tcpvs_unavailable,
    ),
    System(
        "tcpvs-log",
        "the same with `tcpvsd --access-log FILE`: one text line per request",
        partial(start_tcpvs, name="tcpvs-log", access_log=True),
        tcpvs_unavailable,
    ),
    System(
        "tcpvs-before",
        "the same, as built before a data-path change: the tcpvsd in $TCPVS_BEFORE",
        partial(start_tcpvs, name="tcpvs-before", bin_dir=BEFORE),
        lambda: tcpvs_unavailable(BEFORE) if BEFORE else "TCPVS_BEFORE is not set",
    ),
    System(
        "tcpvs-2w",
        "the same with `tcpvsd --workers 2` (SO_REUSEPORT), not pinned: both CPUs",
        partial(start_tcpvs, name="tcpvs-2w", workers=2),
        tcpvs_unavailable,
    ),
]
BASELINE, DIRECT = "haproxy", "direct"
