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
from tcpvs.admin.server import AdminServer, parse_admin_address
from tcpvs.configfile import read_config_file
from tcpvs.control.server import (
    Dispatcher,
    Handler,
    claim_control_path,
    default_socket_path,
    listen_control,
    switch_handler,
)
from tcpvs.daemon.logs import setup_logging
from tcpvs.daemon.master import Master, WorkerOptions
from tcpvs.errors import ConfigError, ControlError, TableError, UnreadableConfig
from tcpvs.observe.access import FORMATS, AccessLog
from tcpvs.switch import DEFAULT_DRAIN_SECONDS, Switch
from tcpvs.table.addr import Address
from tcpvs.tls import tickets

log = logging.getLogger("tcpvsd")


async def _load(engine: Switch | Master, path: str) -> None:
    await engine.load_config(read_config_file(path), path)
    await engine.start()


async def _engine(
    workers: int, options: WorkerOptions
) -> tuple[Switch | Master, Handler, AccessLog | None]:
    """What serves the table: a Switch in this process (with its access log), or the master
    of `workers` workers (each writes its own lines)."""
    if workers == 1:
        access = None
        if options.access_log is not None:
            access = AccessLog(options.access_log, options.access_log_format)
        switch = Switch(drain_seconds=options.drain_seconds, access_log=access)
        return switch, switch_handler(switch), access
    master = Master(workers, options)
    await master.open()
    return master, master.handle, None


def _reopen_logs(engine: Switch | Master, access: AccessLog | None) -> None:
    """SIGUSR1 (logrotate's postrotate): the access log files are opened anew."""
    if isinstance(engine, Master):
        engine.signal_workers(signal.SIGUSR1)
    elif access is not None:
        access.reopen()
    log.info("SIGUSR1: access log reopened")


async def serve(
    config: str | None,
    socket_path: str,
    options: WorkerOptions,
    workers: int = 1,
    admin_address: Address | None = None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    engine: Switch | Master | None = None
    access: AccessLog | None = None
    admin: AdminServer | None = None
    try:
        # First: a second tcpvsd must not start workers that share the first one's ports.
        await claim_control_path(socket_path)
        engine, handler, access = await _engine(workers, options)
        if config is not None:
            await _load(engine, config)
        if admin_address is not None:
            admin = AdminServer(admin_address, lambda: handler("snapshot", {}))
            await admin.open()
        # Before the control socket exists: whoever sees it may signal us at once, and the
        # default actions would end the daemon (SIGHUP even without a file to reload).
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _hangup, engine, config)
        loop.add_signal_handler(signal.SIGUSR1, _reopen_logs, engine, access)
        control = await listen_control(Dispatcher(handler), socket_path)
    except (OSError, UnreadableConfig, ConfigError, TableError, ControlError) as exc:
        log.error("%s", exc)
        if admin is not None:
            admin.close()
        if engine is not None:
            await engine.close()
        if access is not None:
            await access.close()
        return 1
    log.info("tcpvsd %s ready, control socket %s", __version__, socket_path)
    if admin_address is not None:
        log.info("admin address http://%s/ (/metrics, /stats.json)", admin_address)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Already stopping: a repeated signal (a service manager's, a second Ctrl-C) must not
        # kill us with the default action once the loop is closed: exit status 0 stands.
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    log.info("stopping: finishing open requests (at most %gs)", options.drain_seconds)
    control.close()
    if admin is not None:
        admin.close()
    await engine.close()
    if access is not None:
        await access.close()
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
    except (OSError, UnreadableConfig, ConfigError, TableError, ControlError) as exc:
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
    from tcpvs.compiled import WHY_NOT_OWN_TLS, WHY_PURE

    if WHY_PURE:
        return f"pure-Python engine: {WHY_PURE}"
    if WHY_NOT_OWN_TLS:
        return f"compiled engine, the event loop's TLS: {WHY_NOT_OWN_TLS}"
    return "compiled engine, tcpvs's TLS"


def _print_version(ctx: click.Context) -> None:
    click.echo(f"tcpvsd, version {__version__} ({engine_name()})")
    ctx.exit()


def log_engine() -> None:
    """Say which engine serves: an operator must know when it is the slow one."""
    from tcpvs.compiled import WHY_NOT_OWN_TLS, WHY_PURE

    if WHY_PURE and "TCPVS_PURE_PYTHON" not in WHY_PURE:
        log.warning(
            "running the pure-Python engine (%s): about 3x the CPU per request of the compiled one",
            WHY_PURE,
        )
    elif WHY_NOT_OWN_TLS:
        log.warning(
            "TLS services run on the event loop's TLS layer (%s): about 150 us more CPU per "
            "handshake than tcpvs's own",
            WHY_NOT_OWN_TLS,
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
    "--tls-ticket-rotation",
    type=click.FloatRange(1),
    default=tickets.DEFAULT_ROTATION,
    show_default=True,
    help="Seconds between TLS session ticket keys; a ticket resumes for two periods more.",
)
@click.option(
    "--tls-ticket-secret",
    metavar="FILE",
    default=None,
    help="Derive the TLS session ticket keys from this file (32 bytes or more), so that "
    "every tcpvsd given it resumes the others' tickets; default: a random secret per start.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Worker processes sharing the listening addresses (SO_REUSEPORT); "
    "1: no extra process, this one serves.",
)
@click.option(
    "--admin",
    "admin",
    metavar="[HOST:]PORT",
    default=None,
    help="Serve the stats page (/), Prometheus metrics (/metrics) and /stats.json on this "
    "address (a bare port: 127.0.0.1). Off by default.",
)
@click.option(
    "--access-log",
    "access_log",
    metavar="FILE|-",
    default=None,
    help="Log every request of every service to FILE (appended; SIGUSR1 reopens it) or to "
    "stderr (-). Without it, only services with `access_log = on` log, to stderr.",
)
@click.option(
    "--access-log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (HAProxy-like) or json (one object per line).",
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
    tls_ticket_rotation: float,
    tls_ticket_secret: str | None,
    workers: int,
    admin: str | None,
    access_log: str | None,
    access_log_format: str,
    verbose: int,
) -> None:
    """The tcpvs layer-7 switch daemon (stays in the foreground)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    setup_logging(level, "tcpvsd")
    try:
        admin_address = None if admin is None else parse_admin_address(admin)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--admin'") from None
    log.info("open files limit: %d", raise_nofile_limit())
    log_engine()
    path = socket_path or default_socket_path()
    # One ticket secret for this tcpvsd: its workers get it too (see tcpvs.tls.tickets).
    try:
        secret = tickets.new_secret()
        if tls_ticket_secret is not None:
            secret = tickets.read_secret(tls_ticket_secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--tls-ticket-secret'") from None
    tickets.configure(secret, tls_ticket_rotation)
    options = WorkerOptions(
        drain_seconds, level, access_log, access_log_format, tls_ticket_rotation
    )
    sys.exit(uvloop.run(serve(config, path, options, workers, admin_address)))


if __name__ == "__main__":
    main()
