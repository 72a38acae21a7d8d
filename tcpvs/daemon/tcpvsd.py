"""tcpvsd: run the virtual services in the foreground (systemd style).

It serves the control socket tcpvsadm talks to; `-f FILE` loads a config at start and starts
its services; SIGHUP reloads that file without dropping connections (without `-f` it is
only logged); SIGTERM/SIGINT stop accepting, let in-flight requests finish (bounded by
--drain-seconds) and exit 0. With `--workers N` (N > 1) it is the master of N worker
processes sharing the listening addresses (tcpvs/daemon/master.py); the control socket, `-f`, SIGHUP
and SIGTERM behave the same.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys

import click
import uvloop

from tcpvs._version import __version__
from tcpvs.control.server import (
    Dispatcher,
    Handler,
    claim_control_path,
    default_socket_path,
    listen_control,
    switch_handler,
)
from tcpvs.daemon.master import Master
from tcpvs.errors import ConfigError, ControlError, TableError
from tcpvs.switch import DEFAULT_DRAIN_SECONDS, Switch

log = logging.getLogger("tcpvsd")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


async def _load(engine: Switch | Master, path: str) -> None:
    await engine.load_config(_read(path), path)
    await engine.start()


async def _engine(
    workers: int, drain_seconds: float, log_level: int
) -> tuple[Switch | Master, Handler]:
    """What serves the table: a Switch in this process, or the master of `workers` workers."""
    if workers == 1:
        switch = Switch(drain_seconds=drain_seconds)
        return switch, switch_handler(switch)
    master = Master(workers, drain_seconds, log_level)
    await master.open()
    return master, master.handle


async def serve(
    config: str | None,
    socket_path: str,
    drain_seconds: float,
    workers: int = 1,
    log_level: int = logging.WARNING,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    engine: Switch | Master | None = None
    try:
        # First: a second tcpvsd must not start workers that share the first one's ports.
        await claim_control_path(socket_path)
        engine, handler = await _engine(workers, drain_seconds, log_level)
        if config is not None:
            await _load(engine, config)
        # Before the control socket exists: whoever sees it may signal us at once, and the
        # default actions would end the daemon (SIGHUP even without a file to reload).
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _hangup, engine, config)
        control = await listen_control(Dispatcher(handler), socket_path)
    except (OSError, ConfigError, TableError, ControlError) as exc:
        log.error("%s", exc)
        if engine is not None:
            await engine.close()
        return 1
    log.info("tcpvsd %s ready, control socket %s", __version__, socket_path)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Already stopping: a repeated signal (a service manager's, a second Ctrl-C) must not
        # kill us with the default action once the loop is closed: exit status 0 stands.
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    log.info("stopping: finishing open requests (at most %gs)", drain_seconds)
    control.close()
    await engine.close()
    return 0


def _hangup(engine: Switch | Master, config: str | None) -> None:
    """SIGHUP: re-read the -f file; without one, say so and go on serving (systemd's reload,
    or a terminal's hangup, must not stop the daemon)."""
    if config is None:
        log.warning("SIGHUP: no config file to reload (tcpvsd was started without -f)")
        return
    asyncio.get_running_loop().create_task(_reload(engine, config))


async def _reload(engine: Switch | Master, path: str) -> None:
    try:
        await _load(engine, path)
        log.info("reloaded %s", path)
    except (OSError, ConfigError, TableError, ControlError) as exc:
        log.error("reload refused, table unchanged: %s", exc)


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as nginx's worker_rlimit_nofile): each
    client connection holds two descriptors, and the usual soft 1024 allows ~500 clients.
    Returns the soft limit now in force (workers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # NOFILE cannot be unlimited: fs.nr_open is the ceiling
        try:
            with open("/proc/sys/fs/nr_open", encoding="ascii") as handle:
                target = int(handle.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
    return soft


def engine_name() -> str:
    from tcpvs.compiled import WHY_PURE

    return "compiled engine" if not WHY_PURE else f"pure-Python engine: {WHY_PURE}"


def _print_version(ctx: click.Context) -> None:
    click.echo(f"tcpvsd, version {__version__} ({engine_name()})")
    ctx.exit()


def log_engine() -> None:
    """Say which engine serves: an operator must know when it is the slow one."""
    from tcpvs.compiled import WHY_PURE

    if WHY_PURE and "TCPVS_PURE_PYTHON" not in WHY_PURE:
        log.warning(
            "running the pure-Python engine (%s): about 3x the CPU per request of the compiled one",
            WHY_PURE,
        )
    else:
        log.info("%s", engine_name())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-f", "--config", "config", metavar="FILE", help="Load FILE at start and start its services."
)
@click.option(
    "--socket",
    "socket_path",
    metavar="PATH",
    default=None,
    help="Control socket (default: $TCPVS_SOCKET or /run/tcpvs/tcpvsd.sock).",
)
@click.option(
    "--drain-seconds",
    type=click.FloatRange(0),
    default=DEFAULT_DRAIN_SECONDS,
    show_default=True,
    help="How long open connections may finish on stop.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Worker processes sharing the listening addresses (SO_REUSEPORT); "
    "1: no extra process, this one serves.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _print_version(ctx) if value else None,
    help="Show the version and which engine runs, then exit.",
)
def main(
    config: str | None,
    socket_path: str | None,
    drain_seconds: float,
    workers: int,
    verbose: int,
) -> None:
    """The tcpvs layer-7 switch daemon (stays in the foreground)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="tcpvsd: %(message)s", stream=sys.stderr)
    log.info("open files limit: %d", raise_nofile_limit())
    log_engine()
    path = socket_path or default_socket_path()
    sys.exit(uvloop.run(serve(config, path, drain_seconds, workers, level)))


if __name__ == "__main__":
    main()
