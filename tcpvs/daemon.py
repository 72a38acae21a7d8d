"""tcpvsd: run the virtual services in the foreground (systemd style).

It serves the control socket tcpvsadm talks to; `-f FILE` loads a config at start and starts
its services; SIGHUP reloads that file without dropping connections; SIGTERM/SIGINT stop
accepting, let in-flight requests finish (bounded by --drain-seconds) and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click
import uvloop

from tcpvs._version import __version__
from tcpvs.control.server import default_socket_path, start_control_server
from tcpvs.errors import ConfigError, ControlError, TableError
from tcpvs.switch import DEFAULT_DRAIN_SECONDS, Switch

log = logging.getLogger("tcpvsd")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


async def _load(switch: Switch, path: str) -> None:
    await switch.load_config(_read(path), path)
    await switch.start()


async def serve(config: str | None, socket_path: str, drain_seconds: float) -> int:
    switch = Switch(drain_seconds=drain_seconds)
    try:
        if config is not None:
            await _load(switch, config)
        control = await start_control_server(switch, socket_path)
    except (OSError, ConfigError, TableError, ControlError) as exc:
        log.error("%s", exc)
        await switch.close()
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if config is not None:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(switch, config)))
    log.info("tcpvsd %s ready, control socket %s", __version__, socket_path)
    await stop.wait()
    log.info("stopping: finishing open requests (at most %gs)", drain_seconds)
    control.close()
    await switch.close()
    return 0


async def _reload(switch: Switch, path: str) -> None:
    try:
        await _load(switch, path)
        log.info("reloaded %s", path)
    except (OSError, ConfigError, TableError) as exc:
        log.error("reload refused, table unchanged: %s", exc)


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
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(__version__, "-V", "--version", prog_name="tcpvsd")
def main(config: str | None, socket_path: str | None, drain_seconds: float, verbose: int) -> None:
    """The tcpvs layer-7 switch daemon (stays in the foreground)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="tcpvsd: %(message)s", stream=sys.stderr)
    path = socket_path or default_socket_path()
    sys.exit(uvloop.run(serve(config, path, drain_seconds)))


if __name__ == "__main__":
    main()
