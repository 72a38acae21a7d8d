"""What every exchange shares: its Port and Site, its clock, and choosing, taking and giving
back a real server (the one place a server's `conns` changes)."""

from __future__ import annotations

from collections.abc import Sequence
from time import monotonic
from typing import Protocol

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.table.counters import LATENCY_BOUNDS, MAXCLIENTS, OK, Histogram
from tcpvs.table.model import RealServer, Service

# Client bytes an exchange keeps while nobody takes them yet, before the client is held.
MAX_PENDING = 256 * 1024


class RequestLog(Protocol):
    """Where ended requests are written (tcpvs.observe.access.AccessLog)."""

    def request(
        self,
        exchange: Exchange,
        server: RealServer | None,
        begin: float,
        end: float,
        status: int,
        cause: int,
    ) -> None: ...


class Site:
    """What an exchange reads of the running service (tcpvs.proxy.listener.ServiceListener)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.now = 0.0  # seconds; coarse on purpose (deadlines are checked every tick)
        self.access: RequestLog | None = None  # where ended requests are logged, if anywhere
        self.tls = False  # clients speak TLS, ended here (no splice: the bytes are records)

    def redirect_server(self) -> RealServer | None:
        """The service's `redirect` address as a server (KTCPVS's last resort), if any."""
        return None

    def outlier(self, server: RealServer, reason: str) -> None:
        """`server` failed requests in a row (`reason`): the I/O side may eject it."""

    def clock(self) -> float:
        """Seconds, precisely, for the timers of each request (`now` is too coarse)."""
        return monotonic()


class Port:
    """The actions an exchange asks of its I/O side (tcpvs.proxy.client.ClientConnection).

    Every action returns at once and calls nothing back; the outcome comes later as an event.
    """

    def send_client(self, data: bytes) -> None:
        """Write `data` to the client."""
        raise NotImplementedError

    def send_server(self, data: bytes) -> None:
        """Write `data` to the server connection in use."""
        raise NotImplementedError

    def pass_to_client(self, nbytes: int) -> None:
        """Pass the next `nbytes` the server sends (-1: until it ends) to the client as they
        are, then call `passed(rest)` (rest: bytes read past the end)."""
        raise NotImplementedError

    def open_server(self, server: RealServer, fresh: bool = False) -> bool:
        """Use a pooled connection to `server` now (True), or open a new one (False; always
        when `fresh`), after which `server_ready(False)` or `server_failed(server)` follows."""
        raise NotImplementedError

    def release_server(self) -> None:
        """Put the server connection in use back in the pool (its exchange ended cleanly)."""
        raise NotImplementedError

    def drop_server(self) -> None:
        """Close the server connection in use, or stop opening one."""
        raise NotImplementedError

    def hold_client(self, hold: bool) -> None:
        """Stop (True) or go on (False) reading the client, for the exchange's own reasons."""
        raise NotImplementedError

    def tunnel(self) -> None:
        """From now on pass bytes both ways as they are, each end passed on as a half-close;
        `tunnel_ended()` once both ways have ended."""
        raise NotImplementedError

    def close_client(self) -> None:
        """Close the client connection once what was sent has gone out."""
        raise NotImplementedError

    def abort_client(self) -> None:
        """Cut the client connection now."""
        raise NotImplementedError

    def transferred(self) -> tuple[int, int]:
        """Bytes read from the client and written to it so far (asked only for the access
        log)."""
        raise NotImplementedError


def observe(histogram: Histogram, seconds: float) -> None:
    """Count `seconds` in its bucket of `histogram` (here, not a method of it: compiled, this
    runs twice per request)."""
    index = 0
    for bound in LATENCY_BOUNDS:  # (compiled: a loop over C doubles, most ending at once)
        if seconds <= bound:
            break
        index += 1
    histogram.counts[index] += 1
    histogram.total += seconds


def eligible(
    servers: Sequence[RealServer], tried: list[RealServer], now: float
) -> Sequence[RealServer]:
    """Servers a scheduler may pick: weight > 0, not failed for this request, not resting.

    The common case (first try, every server up) hands over `servers` itself rather than a
    copy: schedulers take a read-only Sequence, and this runs for every request."""
    if not tried:
        for s in servers:
            if s.weight <= 0 or s.down_until > now:
                break
        else:
            return servers
    return [s for s in servers if s.weight > 0 and s.down_until <= now and s not in tried]


class Exchange:
    """The state every exchange keeps besides its own: where it runs, its deadline, and the
    server it holds. Subclasses implement the events (see tcpvs.exchange.http1 for the list)."""

    def __init__(self, site: Site, port: Port) -> None:
        self.site = site
        self.port = port
        self.state = 0
        # Deadlines cost a transition two stores: the state's start (moved on by activity in
        # the states that say so) and, checked only on the listener's tick, patience().
        self.since = 0.0
        self.extended = False
        self.ctx = ScheduleContext()
        self.tried: list[RealServer] = []
        self.target: RealServer | None = None  # the server being reached, or the last one
        self.server: RealServer | None = None  # the server taken for this exchange
        # the scheduler told that it was taken, to be told it was released (None: not told)
        self.told: Scheduler | None = None
        # The request (raw TCP: the connection) in hand, for the counters and the access log:
        # when it began (0: none in hand), its head was complete, its server connection was
        # ready, its answer's head came (clock() seconds); how often it was sent again; bytes
        # of it read from the client, and the bytes written to the client before it.
        self.t_begin = 0.0
        self.t_ready = 0.0
        self.t_connect = 0.0
        self.t_response = 0.0
        self.retries = 0
        self.req_bytes = 0
        self.out_mark = 0

    def _go(self, state: int, extended: bool) -> None:
        """Enter `state` now; `extended`: activity starts its patience again."""
        self.state = state
        self.since = self.site.now
        self.extended = extended

    def active(self) -> None:
        """Bytes moved (also those passed along without this exchange seeing them)."""
        if self.extended:
            self.since = self.site.now

    def patience(self) -> float:
        """Seconds the current state may last (without activity, where that counts); 0: no
        limit. Checked on each tick of the listener, not per event."""
        raise NotImplementedError

    def expired(self, now: float) -> bool:
        patience = self.patience()
        return patience > 0 and now - self.since >= patience

    # -- servers -------------------------------------------------------------------------------

    def _choose(self, candidates: Sequence[RealServer]) -> RealServer | None:
        service = self.site.service
        return service.scheduler.select(eligible(candidates, self.tried, self.site.now), self.ctx)

    def _take(self, server: RealServer) -> None:
        """`server` relays this connection or request now: counted up, its scheduler told."""
        self.server = server
        server.conns += 1
        server.fail_streak = 0
        scheduler = self.site.service.scheduler
        if scheduler.follows_load:
            self.told = scheduler
            scheduler.taken(server, self.ctx)

    def _give_back(self) -> None:
        """The connection or request of `server` ended, however it ended: counted down, and the
        scheduler that was told it was taken (the service's may have changed since) told."""
        server = self.server
        if server is not None:
            self.server = None
            server.conns -= 1
            told = self.told
            if told is not None:
                self.told = None
                told.released(server)

    def _failed(self, server: RealServer) -> None:
        """`server` refused a connection or timed out connecting: it rests a while."""
        server.failures += 1
        settings = self.site.service.settings
        rest_until = self.site.now + settings.fail_timeout
        if rest_until > server.down_until:  # (a server out by its state stays out)
            server.down_until = rest_until
        self.tried.append(server)
        server.fail_streak += 1
        limit = settings.eject_failures
        if limit and server.fail_streak >= limit:
            server.fail_streak = 0
            self.site.outlier(server, f"{limit} failed connections in a row")

    def _next_try(
        self, candidates: Sequence[RealServer], served: int, stale: RealServer | None = None
    ) -> RealServer | None:
        """Where to send the request (raw TCP: connection) that the last server tried failed:
        a server not tried yet, else `stale` (whose pooled connection had gone stale, so it
        did not itself fail) when given; None when no try is left (`retries`), no server is,
        or the service's retry budget is spent (`served`: its requests so far). Counted."""
        service = self.site.service
        settings = service.settings
        if self.retries >= settings.retries:
            return None
        server = self._choose(candidates)
        if server is None:
            server = stale
        if server is None or not service.budget.spend(served, settings.retry_budget):
            return None
        failed = self.tried[-1]
        self.retries += 1
        failed.retries += 1
        service.stats.retries += 1
        return server

    # -- the request in hand ----------------------------------------------------------------------

    def _open(self) -> None:
        """A request (raw TCP: the connection) begins now."""
        site = self.site
        self.t_begin = site.clock()
        self.t_ready = self.t_connect = self.t_response = 0.0
        self.retries = self.req_bytes = 0
        if site.access is not None:
            self.out_mark = self.port.transferred()[1]

    def _record(self, status: int, cause: int, server: RealServer | None) -> None:
        """The request in hand ended (`status`: what the client got, 0: nothing; `cause`: why,
        counters.OK if it went well; `server`: whose answer it was, None: the switch's):
        counted, and logged, once."""
        begin = self.t_begin
        if begin == 0.0:
            return
        self.t_begin = 0.0
        site = self.site
        end = site.clock()
        stats = site.service.stats
        if cause != OK:
            stats.causes[cause] += 1
        if 100 <= status < 600:
            status_class = status // 100 - 1
            stats.responses[status_class] += 1
            if server is not None:
                server.responses[status_class] += 1
                if status >= 500:
                    server.error_streak += 1
                    limit = site.service.settings.eject_5xx
                    if limit and server.error_streak >= limit:
                        server.error_streak = 0
                        site.outlier(server, f"{limit} answers 5xx in a row")
                else:
                    server.error_streak = 0
        if server is not None:
            observe(server.duration, end - begin)
        access = site.access
        if access is not None:
            access.request(self, server, begin, end, status, cause)

    # -- events (the I/O side calls these) ------------------------------------------------------

    def start(self) -> None:
        """The client connected."""
        raise NotImplementedError

    def client_data(self, data: bytes) -> None:
        raise NotImplementedError

    def client_ended(self) -> None:
        """The client sent its end (a half-close)."""
        raise NotImplementedError

    def server_ready(self, reused: bool) -> None:
        """The server connection asked for is ready (`reused`: it served before)."""
        raise NotImplementedError

    def server_failed(self, server: RealServer) -> None:
        """`server` refused the connection, or did not accept it in time."""
        raise NotImplementedError

    def server_data(self, data: bytes) -> None:
        raise NotImplementedError

    def server_ended(self) -> None:
        """The server connection in use sent its end, or failed."""
        raise NotImplementedError

    def passed(self, rest: bytes) -> None:
        """What pass_to_client asked for went through; `rest`: bytes read past it."""
        raise NotImplementedError

    def tunnel_ended(self) -> None:
        """Both ways of the tunnel ended."""
        raise NotImplementedError

    def broken(self) -> None:
        """Bytes passed along unseen could not be: a side failed, or ended too early."""
        raise NotImplementedError

    def timeout(self) -> None:
        """The deadline passed."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """The service stops."""
        raise NotImplementedError

    def refuse(self) -> None:
        """Over maxclients: refuse this client."""
        self._open()
        self.site.service.stats.errors += 1
        status = self._refusal()
        self.port.close_client()
        self._record(status, MAXCLIENTS, None)

    def _refusal(self) -> int:
        """Answer a refused client if the protocol has a way to (returns the status sent, 0:
        none)."""
        return 0

    def lost(self) -> None:
        """The client connection is gone."""
        self._finish()

    def _finish(self) -> None:
        """Closed: the server given back and its connection dropped."""
        self.state = CLOSED
        self._give_back()
        self.port.drop_server()

    def _close(self) -> None:
        self._finish()
        self.port.close_client()

    def _abort(self) -> None:
        self._finish()
        self.port.abort_client()


CLOSED = 99  # every exchange's last state
