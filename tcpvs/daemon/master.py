"""tcpvsd's master for `--workers N` (N > 1): N worker processes serve the same table.

Like nginx's or HAProxy's master, it accepts no client connection: each worker
(tcpvs/daemon/worker.py) runs its own Switch with SO_REUSEPORT listeners, and the kernel spreads
new connections over them. The master owns the control socket and keeps the workers'
tables identical: every change is forwarded to every worker (one request at a time, under
one lock), and the answer is worker 0's, since identical tables answer alike (a worker that
answers otherwise is logged as an error). `snapshot` sums the workers' counters
(`merge_snapshots`) and adds their pids and counts under "workers". A worker that dies is
replaced by a new one loaded with the last table a worker reported; a worker whose master
died exits when its control stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tcpvs._version import __version__
from tcpvs.control.protocol import encode_request
from tcpvs.errors import ConfigError, ControlError
from tcpvs.health.checker import Checker, judge
from tcpvs.health.result import CheckResult
from tcpvs.table.addr import Address, format_address
from tcpvs.table.config import parse_config
from tcpvs.table.listing import merge_snapshots, render_config, server_snapshot
from tcpvs.table.model import RealServer, Service
from tcpvs.table.operations import Table
from tcpvs.tls import tickets

log = logging.getLogger("tcpvsd")

ASK_SECONDS = 30.0  # a worker silent this long is stuck: it is killed and replaced
REPLY_LIMIT = 64 * 1024 * 1024  # a snapshot of a large table is one long line
STOP_MARGIN = 5.0  # beyond --drain-seconds before workers still running are killed
RESTART_DELAY, MAX_RESTART_DELAY = 0.1, 5.0
STABLE_SECONDS = 5.0  # a worker that lived this long resets the restart back-off


@dataclass(eq=False)
class Worker:
    """One worker process and the master's end of its control stream."""

    index: int
    proc: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    started: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ask(self, line: bytes) -> dict[str, Any] | None:
        """The reply to one request line; None if the worker is gone or stuck (then it is
        killed, and its supervisor replaces it)."""
        try:
            self.writer.write(line)
            await self.writer.drain()
            message = json.loads(await asyncio.wait_for(self.reader.readline(), ASK_SECONDS))
            if isinstance(message, dict) and isinstance(message.get("ok"), bool):
                return message
        except (OSError, TimeoutError, ValueError):  # ValueError: not JSON, or EOF
            pass
        log.error("worker %d (pid %d) did not answer", self.index, self.pid)
        self.signal(signal.SIGKILL)
        return None

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker is started with (tcpvsd's options that concern them)."""

    drain_seconds: float
    log_level: int = logging.WARNING
    access_log: str | None = None  # path, or "-" for stderr
    access_log_format: str = "text"
    ticket_rotation: float = tickets.DEFAULT_ROTATION

    def arguments(self) -> list[str]:
        args = [
            f"--drain-seconds={self.drain_seconds!r}",
            f"--log-level={self.log_level}",
            f"--tls-ticket-rotation={self.ticket_rotation!r}",
        ]
        if self.access_log is not None:
            args += [
                f"--access-log={self.access_log}",
                f"--access-log-format={self.access_log_format}",
            ]
        return args


async def spawn_worker(index: int, options: WorkerOptions) -> Worker:
    """A fresh interpreter running tcpvs.daemon.worker on one end of a new socketpair (never a fork
    of this process: its event loop and sockets stay here). It reads this process's TLS
    ticket secret from a pipe (not its command line, which anyone may read), so that every
    worker seals and opens the same tickets."""
    ours, theirs = socket.socketpair()
    secret_read, secret_write = os.pipe()
    try:
        os.write(secret_write, tickets.process_keys().secret)
        os.close(secret_write)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tcpvs.daemon.worker",
            f"--control-fd={theirs.fileno()}",
            f"--tls-ticket-secret-fd={secret_read}",
            f"--index={index}",
            *options.arguments(),
            stdin=asyncio.subprocess.DEVNULL,
            pass_fds=(theirs.fileno(), secret_read),
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        os.close(secret_read)
    reader, writer = await asyncio.open_unix_connection(sock=ours, limit=REPLY_LIMIT)
    return Worker(index, proc, reader, writer, asyncio.get_running_loop().time())


def _without_stats(data: Any) -> Any:
    """A reply without its counters, which differ from worker to worker."""
    if isinstance(data, dict):
        return {k: _without_stats(v) for k, v in data.items() if k != "stats"}
    if isinstance(data, list):
        return [_without_stats(v) for v in data]
    return data


def _result(reply: dict[str, Any]) -> Any:
    if not reply["ok"]:
        raise ControlError(str(reply.get("error") or "a worker refused the request"))
    return reply.get("result")


def worker_summary(worker: Worker, snap: dict[str, Any]) -> dict[str, Any]:
    """What `snapshot` says of one worker: its pid and how much it served."""
    services = [svc["stats"] for svc in snap["services"]]
    return {
        "index": worker.index,
        "pid": worker.pid,
        "total_conns": sum(s["total_conns"] for s in services),
        "requests": sum(s["requests"] for s in services),
    }


class Master:
    """Runs `count` workers and answers control requests for all of them (`handle`)."""

    def __init__(self, count: int, options: WorkerOptions):
        self.count = count
        self.options = options
        self.drain_seconds = options.drain_seconds
        self.loads = {"ok": 0, "failed": 0}  # config files loaded, by result
        self.workers: list[Worker | None] = [None] * count
        self.lock = asyncio.Lock()  # one table change (or restart) at a time
        self.table: dict[str, Any] = {"version": __version__, "services": []}  # for restarts
        self.closing = False
        self._supervisors: set[asyncio.Task[None]] = set()
        # The health checks run here, once, on a copy of the table (`checked`, rebuilt from
        # each new snapshot); a server's change of health goes to every worker (set_health).
        self.checked = Table()
        self.checker = Checker(self._checked_servers, self._report)
        self._telling: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        """Start every worker; on a failure stop those that started and raise ControlError."""
        started = await asyncio.gather(
            *(self._spawn(i) for i in range(self.count)), return_exceptions=True
        )
        for worker in started:
            if isinstance(worker, Worker):
                self.workers[worker.index] = worker
                self._supervise(worker)
        failed = [exc for exc in started if isinstance(exc, BaseException)]
        if failed:
            await self.close()
            raise ControlError(f"cannot start the workers: {failed[0]}")
        self.checker.start()

    async def _spawn(self, index: int) -> Worker:
        worker = await spawn_worker(index, self.options)
        if await worker.ask(encode_request("version", {})) is None:
            await worker.proc.wait()
            worker.close()
            raise ControlError(f"worker {index} did not start (see the log)")
        log.info("worker %d running as pid %d", index, worker.pid)
        return worker

    # -- control requests -------------------------------------------------------------------

    async def handle(self, op: str, args: dict[str, Any]) -> Any:
        """The control socket's handler: `op` (checked) for every worker, as one answer."""
        if op == "version":
            return __version__
        async with self.lock:
            if op == "snapshot":
                return await self._snapshot(args)
            if op != "load_config":
                return await self._change(op, args)
            try:
                result = await self._change(op, args)
            except ControlError:
                self.loads["failed"] += 1
                raise
            self.loads["ok"] += 1
            return result

    async def load_config(self, text: str, filename: str = "<config>") -> None:
        await self.handle("load_config", {"text": text, "filename": filename})

    async def start(self, ident: str | None = None) -> None:
        await self.handle("start", {} if ident is None else {"ident": ident})

    async def _broadcast(self, op: str, args: dict[str, Any]) -> list[tuple[Worker, Any]]:
        """(worker, reply) of every worker that answered, worker 0 first."""
        line = encode_request(op, args)
        live = [w for w in self.workers if w is not None]
        replies = await asyncio.gather(*(w.ask(line) for w in live))
        answered = [(w, r) for w, r in zip(live, replies, strict=True) if r is not None]
        if not answered:
            raise ControlError("no tcpvsd worker is running (see the daemon's log)")
        return answered

    async def _change(self, op: str, args: dict[str, Any]) -> Any:
        (first, reply), *others = await self._broadcast(op, args)
        expected = _without_stats(reply)
        for worker, other in others:
            if _without_stats(other) != expected:
                log.error(
                    "WORKERS DISAGREE on %s: worker %d answered %s but worker %d answered %s",
                    op,
                    first.index,
                    json.dumps(reply)[:500],
                    worker.index,
                    json.dumps(other)[:500],
                )
        if reply["ok"]:
            await self._remember(first)
        return _result(reply)

    async def _remember(self, worker: Worker) -> None:
        """Keep the table as it now is, to load it into a worker that replaces a dead one."""
        reply = await worker.ask(encode_request("snapshot", {}))
        if reply is not None and reply["ok"]:
            self.table = reply["result"]
            self._copy_table()

    # -- health checks ------------------------------------------------------------------------

    def _copy_table(self) -> None:
        """`checked`: the table as the workers now have it, with each server's check results
        carried over from the previous copy (what the checks have learnt)."""
        try:
            table = parse_config(render_config(self.table, numeric=True, header=False), "<table>")
        except ConfigError as exc:  # the workers' own listing: cannot happen
            log.error("cannot copy the table for the health checks: %s", exc)
            return
        for snap in self.table["services"]:
            service = table.services[snap["ident"]]
            service.running = snap["running"]
            before = self.checked.services.get(service.ident)
            for server, data in zip(service.servers, snap["servers"], strict=True):
                server.admin, server.health = data["admin"], data["health"]
                previous = None if before is None else before.find_server(server.address)
                if previous is not None:
                    server.checks = previous.checks
        self.checked = table

    def _checked_servers(self) -> Iterator[tuple[Service, RealServer]]:
        for service in self.checked.services.values():
            if service.running:
                for server in service.servers:
                    yield service, server

    def _report(self, service: Service, server: RealServer, result: CheckResult) -> None:
        health = judge(service, server, result)
        if health is None:
            return
        args = {"ident": service.ident, "server": format_address(server.address), "health": health}
        task = asyncio.get_running_loop().create_task(self.handle("set_health", args))
        self._telling.add(task)
        task.add_done_callback(self._told)

    def _told(self, task: asyncio.Task[Any]) -> None:
        self._telling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not tell the workers a server's health: %s", task.exception())

    def _add_check_results(self, snap: dict[str, Any]) -> None:
        """The check results in a merged snapshot are the master's (workers do not check)."""
        for svc in snap["services"]:
            service = self.checked.services.get(svc["ident"])
            if service is None:
                continue
            for data in svc["servers"]:
                mine = service.find_server(Address(data["host"], data["port"]))
                if mine is not None:
                    ours = server_snapshot(mine)
                    data["check"], data["checks"] = ours["check"], ours["checks"]

    async def _snapshot(self, args: dict[str, Any]) -> dict[str, Any]:
        answered = await self._broadcast("snapshot", args)
        snaps = [_result(reply) for _, reply in answered]
        merged = merge_snapshots(snaps)
        merged["reloads"] = dict(self.loads)
        self._add_check_results(merged)
        merged["workers"] = [
            worker_summary(worker, snap) for (worker, _), snap in zip(answered, snaps, strict=True)
        ]
        return merged

    # -- supervision ------------------------------------------------------------------------

    def _supervise(self, worker: Worker, delay: float = RESTART_DELAY) -> None:
        task = asyncio.get_running_loop().create_task(self._watch(worker, delay))
        self._supervisors.add(task)
        task.add_done_callback(self._supervisors.discard)

    async def _watch(self, worker: Worker, delay: float) -> None:
        """Wait for the worker to exit; unless we are stopping, replace it (waiting `delay`
        first, longer each time while workers keep dying young)."""
        status = await worker.proc.wait()
        worker.close()
        if self.workers[worker.index] is worker:
            self.workers[worker.index] = None
        if self.closing:
            return
        if asyncio.get_running_loop().time() - worker.started >= STABLE_SECONDS:
            delay = RESTART_DELAY
        log.error("worker %d (pid %d) exited with status %s", worker.index, worker.pid, status)
        while not self.closing:
            await asyncio.sleep(delay)
            delay = min(delay * 4, MAX_RESTART_DELAY)
            async with self.lock:
                if self.closing:
                    return
                new = await self._replace(worker.index)
            if new is not None:
                log.warning("worker %d restarted as pid %d", new.index, new.pid)
                self._supervise(new, delay)
                return

    async def _replace(self, index: int) -> Worker | None:
        """A new worker for slot `index`, serving the current table; None if that failed."""
        try:
            worker = await self._spawn(index)
        except (OSError, ControlError) as exc:
            log.error("cannot restart worker %d: %s", index, exc)
            return None
        running = [svc["ident"] for svc in self.table["services"] if svc["running"]]
        text = render_config(self.table, numeric=True, header=False)
        requests = [("load_config", {"text": text, "filename": "<table>"})]
        requests += [("start", {"ident": ident}) for ident in running]
        for op, args in requests:
            reply = await worker.ask(encode_request(op, args))
            if reply is None or not reply["ok"]:
                why = "no answer" if reply is None else reply.get("error")
                log.error("worker %d refused the current table (%s): %s", index, op, why)
                worker.signal(signal.SIGKILL)
                await worker.proc.wait()
                worker.close()
                return None
        self.workers[index] = worker
        return worker

    def signal_workers(self, sig: int) -> None:
        """Pass `sig` on to every worker (SIGUSR1: reopen the access log)."""
        for worker in self.workers:
            if worker is not None:
                worker.signal(sig)

    async def close(self) -> None:
        """Stop every worker: SIGTERM (they finish open requests), SIGKILL past the drain."""
        await self.checker.close()
        for task in list(self._telling):
            task.cancel()
        async with self.lock:  # a worker being replaced now joins `live` first
            self.closing = True
            live = [w for w in self.workers if w is not None]
        for worker in live:
            worker.signal(signal.SIGTERM)
        waiting = asyncio.gather(*(w.proc.wait() for w in live))
        try:
            await asyncio.wait_for(waiting, self.drain_seconds + STOP_MARGIN)
        except TimeoutError:
            log.error("workers still running after %gs: killing them", self.drain_seconds)
            for worker in live:
                worker.signal(signal.SIGKILL)
            await asyncio.gather(*(w.proc.wait() for w in live))
        for task in list(self._supervisors):
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        for worker in live:
            worker.close()
