"""tcpvs-demo: the KTCPVS README session, live on loopback.

Starts three real HTTP servers (r1, r2, r3), a tcpvsd, runs the seed README's tcpvsadm
commands against it, starts the service and sends requests with curl (http.client if curl is
missing), showing `/images/...` and `/html/...` landing on different servers. Everything it
starts is stopped before it exits.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_backend(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = f"served by {name}: {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run(cmd: list[str], shown: str) -> str:
    click.secho(f"$ {shown}", fg="cyan")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = done.stdout + done.stderr
    if out:
        click.echo(out.rstrip("\n"))
    if done.returncode:
        raise click.ClickException(f"{shown} failed ({done.returncode})")
    return done.stdout


def _fetch(port: int, path: str) -> str:
    if shutil.which("curl"):
        return _run(
            ["curl", "-s", f"http://127.0.0.1:{port}{path}"],
            f"curl -s http://127.0.0.1:{port}{path}",
        )
    click.secho(f"$ GET http://127.0.0.1:{port}{path}", fg="cyan")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    text = conn.getresponse().read().decode()
    conn.close()
    click.echo(text.rstrip("\n"))
    return text


@click.command()
@click.option("--port", type=int, default=0, help="Port of the demo service (default: a free one).")
def main(port: int) -> None:
    """Run the KTCPVS README session against a live tcpvsd on loopback."""
    port = port or _free_port()
    servers = {name: _start_backend(name) for name in ("r1", "r2", "r3")}
    addr = {name: f"127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    workdir = tempfile.mkdtemp(prefix="tcpvs-demo-")
    sock = os.path.join(workdir, "tcpvsd.sock")
    daemon = subprocess.Popen([sys.executable, "-m", "tcpvs.daemon", "--socket", sock])
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException("tcpvsd did not start")
            time.sleep(0.05)
        click.echo(f"real servers: {', '.join(f'{n}={a}' for n, a in addr.items())}\n")

        def adm(*args: str) -> str:
            return _run(
                [sys.executable, "-m", "tcpvsadm", "--socket", sock, *args],
                "tcpvsadm " + " ".join(args),
            )

        adm("-A", "-i", "http", "-s", "http", "-l", f"127.0.0.1:{port}")
        for name in ("r1", "r2", "r3"):
            adm("-a", "-i", "http", "-r", addr[name])
        adm("--add-rule", "-i", "http", "--pattern=/images/.*", "-r", addr["r1"])
        adm("--add-rule", "-i", "http", "--pattern=/html/.*", "-r", addr["r2"])
        adm("--add-rule", "-i", "http", "--pattern=.*", "-r", addr["r3"])
        adm("--list", "-n")
        adm("--start", "-i", "http")
        click.echo()
        for path in ("/images/logo.png", "/html/index.html", "/cgi-bin/search?q=lvs"):
            _fetch(port, path)
        click.echo()
        adm("-L", "-n", "--stats")
        adm("--stop", "-i", "http")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
        for server in servers.values():
            server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
