"""A tcpvsd worker process (`tcpvsd --workers N` starts N of them; not run by hand).

It runs an ordinary Switch whose listeners use SO_REUSEPORT, so every worker accepts on the
same addresses and the kernel spreads new connections over them. Its table is administered
by the master only, over the socketpair end it inherits (`--control-fd`), with the control
socket's own JSON-lines dispatcher. It stops (finishing open requests, like tcpvsd) on
SIGTERM/SIGINT, and when that stream ends: a master that died leaves no worker behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys

import uvloop

from tcpvs.control.protocol import MAX_LINE
from tcpvs.control.server import Dispatcher, switch_handler
from tcpvs.daemon.logs import setup_logging
from tcpvs.observe.access import FORMATS, AccessLog
from tcpvs.switch import Switch
from tcpvs.tls import tickets

log = logging.getLogger("tcpvsd")


async def serve(
    control_fd: int, drain_seconds: float, access_log: str | None, access_format: str
) -> int:
    access = None if access_log is None else AccessLog(access_log, access_format)
    # (checks=False: the master checks the servers and tells every worker: set_health)
    switch = Switch(drain_seconds=drain_seconds, reuse_port=True, access_log=access, checks=False)
    control = socket.socket(fileno=control_fd)
    reader, writer = await asyncio.open_unix_connection(sock=control, limit=MAX_LINE)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)  # the master reloads, not us
    if access is not None:
        loop.add_signal_handler(signal.SIGUSR1, access.reopen)  # passed on by the master
    commands = loop.create_task(Dispatcher(switch_handler(switch)).serve_stream(reader, writer))
    signalled = loop.create_task(stop.wait())
    await asyncio.wait((commands, signalled), return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        log.warning("the master is gone: stopping")
    signalled.cancel()
    commands.cancel()  # also closes the control stream: the master sees this worker go
    await switch.close()
    if access is not None:
        await access.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tcpvs.daemon.worker", description=__doc__)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--drain-seconds", type=float, required=True)
    parser.add_argument("--index", type=int, default=0, help="for the log lines")
    parser.add_argument("--log-level", type=int, default=logging.WARNING)
    parser.add_argument("--access-log", default=None)
    parser.add_argument("--access-log-format", choices=FORMATS, default="text")
    parser.add_argument("--tls-ticket-secret-fd", type=int, required=True)
    parser.add_argument("--tls-ticket-rotation", type=float, required=True)
    args = parser.parse_args(argv)
    with open(args.tls_ticket_secret_fd, "rb") as secret:
        tickets.configure(secret.read(), args.tls_ticket_rotation)
    setup_logging(args.log_level, f"tcpvsd[worker {args.index}]")
    run = serve(args.control_fd, args.drain_seconds, args.access_log, args.access_log_format)
    sys.exit(uvloop.run(run))


if __name__ == "__main__":
    main()
