"""Many checks at once in one Prober against real servers on 127.0.0.1 (refused, silent, 500,
a body to find), on asyncio and on uvloop: every check gets its one result, none leaves a
descriptor behind, cancelled ones get none, and one owner's failing callback costs nobody
else theirs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvloop

from tcpvs.health.probe import CheckResult, Prober, Target, probe
from tcpvs.health.spec import CheckSpec, parse_check
from tests.support.mute import mute_server
from tests.support.procs import free_port

WAIT = 5.0  # seconds: the bound of every wait in these tests


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    return asyncio.run if request.param == "asyncio" else uvloop.run


def spec(text: str) -> CheckSpec:
    parsed = parse_check(text)
    assert parsed is not None
    return parsed


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled_fds(expected: int) -> int:
    """The open descriptors once the servers of the test closed their ends too (each a loop
    iteration or so after the check's end), or after WAIT."""
    for _ in range(int(WAIT / 0.01)):
        if open_fds() == expected:
            break
        await asyncio.sleep(0.01)
    return open_fds()


@contextlib.asynccontextmanager
async def answering() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server answering GET /500 with a 500, anything else with 200 "hello"; also what it
    read after the head of each request, up to the check's end of the connection."""
    after: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # a tcp check: connected, then closed
            writer.close()
            return
        status = b"500 Oops" if head.startswith(b"GET /500 ") else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\nhello")
        after.append(await reader.read())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    async with server:
        yield server.sockets[0].getsockname()[1], after


@contextlib.contextmanager
def silent(backlog: int = 128):
    """A listening socket nobody accepts from: connections complete in the kernel (the
    backlog's worth) or hang in SYN_SENT; either way no answer ever comes."""
    with socket.create_server(("127.0.0.1", 0), backlog=backlog) as sock:
        yield sock.getsockname()[1]


async def results_of(prober: Prober, checks: list[tuple[str, int]]) -> list[CheckResult]:
    """Start every check at once; their results, in the order of `checks`."""
    loop = asyncio.get_running_loop()
    got: dict[int, CheckResult] = {}
    all_in = loop.create_future()

    def on_result(index: int, result: CheckResult) -> None:
        assert index not in got, "a result given twice"
        got[index] = result
        if len(got) == len(checks) and not all_in.done():
            all_in.set_result(None)

    for index, (text, port) in enumerate(checks):
        target = Target(spec(text), "127.0.0.1", port)
        prober.start(target, lambda result, index=index: on_result(index, result))
    await asyncio.wait_for(all_in, WAIT)
    return [got[index] for index in range(len(checks))]


def outcome(result: CheckResult) -> tuple[bool, int | None, str | None]:
    return result.ok, result.status, result.error


def test_many_checks_at_once_each_get_their_result_and_leave_no_descriptor(run) -> None:
    async def main() -> None:
        async with answering() as (port, after):
            with silent() as mute:
                refused = free_port()
                before = open_fds()
                prober = Prober(asyncio.get_running_loop())
                kinds = [
                    ("http /200", port),
                    ("http /500", port),
                    ("http body ^hel+o$", port),
                    ("http body bye", port),
                    ("tcp", port),
                    ("http", refused),
                    ("tcp", refused),
                    ("http timeout 0.3", mute),
                ]
                results = await results_of(prober, kinds * 25)
                assert [outcome(r) for r in results[: len(kinds)]] == [
                    (True, 200, None),
                    (False, 500, None),
                    (True, 200, None),
                    (False, 200, "body did not match"),
                    (True, None, None),
                    (False, None, "connection refused"),
                    (False, None, "connection refused"),
                    (False, None, "timeout"),
                ]
                assert [outcome(r) for r in results] == [outcome(r) for r in results[:8]] * 25
                timeouts = [r.duration_ms for r in results if r.error == "timeout"]
                assert all(290 <= ms < 300 + WAIT * 1000 for ms in timeouts), timeouts
                assert len(prober) == 0 and await settled_fds(before + 1) == before + 1  # epoll
                prober.close()
                assert open_fds() == before
        # the server read nothing after a request, then the check's end of the connection
        assert set(after) == {b""}

    run(main())


def test_timeouts_leak_no_descriptor(run) -> None:
    async def main() -> None:
        with silent(backlog=8) as mute:
            before = open_fds()
            for _ in range(3):  # 300 timeouts, in rounds of 100 at once
                prober = Prober(asyncio.get_running_loop())
                results = await results_of(prober, [("http timeout 0.05", mute)] * 100)
                assert {r.error for r in results} == {"timeout"}
                prober.close()
            for _ in range(50):  # and through probe(), one at a time
                assert (await probe(spec("http timeout 0.02"), "127.0.0.1", mute)).error == (
                    "timeout"
                )
            assert open_fds() == before

    run(main())


def test_a_cancelled_check_gets_no_result_and_its_connection_is_closed(run) -> None:
    async def main() -> None:
        async with mute_server() as (port, ends):  # the request, then the check's end
            target = Target(spec("http timeout 0.5"), "127.0.0.1", port)
            before = open_fds()
            prober = Prober(asyncio.get_running_loop())
            got: list[CheckResult] = []
            check = prober.start(target, got.append)
            await asyncio.sleep(0.1)  # connected, request sent, no answer
            prober.cancel(check)
            assert (await asyncio.wait_for(ends.get(), WAIT)).startswith(b"GET / HTTP/1.1\r\n")
            await asyncio.sleep(0.6)  # past its deadline
            assert got == [] and len(prober) == 0
            running = prober.start(target, got.append)
            await asyncio.sleep(0.1)
            prober.close()  # ends the checks still running, with no result either
            await asyncio.wait_for(ends.get(), WAIT)
            assert running.over and got == [] and await settled_fds(before) == before

    run(main())


def test_a_probe_cancelled_while_it_waits_leaves_nothing_behind(run) -> None:
    async def main() -> None:
        with silent() as mute:
            before = open_fds()
            task = asyncio.ensure_future(
                probe(spec("http interval 10 timeout 5"), "127.0.0.1", mute)
            )
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert open_fds() == before

    run(main())


def test_one_failing_callback_costs_the_others_nothing(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        async with answering() as (port, _):
            prober = Prober(loop)
            got: list[CheckResult] = []

            def broken(result: CheckResult) -> None:
                raise RuntimeError("owner's bug")

            target = Target(spec("http timeout 1"), "127.0.0.1", port)
            for index in range(10):
                prober.start(target, broken if index == 3 else got.append)
            for _ in range(100):
                if len(got) == 9:
                    break
                await asyncio.sleep(0.05)
            prober.close()
        assert len(got) == 9 and all(result.ok for result in got)
        assert [str(context["exception"]) for context in errors] == ["owner's bug"]

    run(main())


def test_out_of_descriptors_is_a_result_given_later_and_checks_go_on(run) -> None:
    async def main() -> None:
        async with answering() as (port, _):
            prober = Prober(asyncio.get_running_loop())
            target = Target(spec("http timeout 1"), "127.0.0.1", port)
            got: list[CheckResult] = []
            lowest_free = os.dup(0)  # the number the next descriptor would get
            os.close(lowest_free)
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
            try:
                prober.start(target, got.append)
                assert got == []  # never from within start()
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            await asyncio.sleep(0)
            assert [outcome(r) for r in got] == [(False, None, "too many open files")]
            prober.start(target, got.append)
            for _ in range(100):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.02)
            prober.close()
            assert outcome(got[1]) == (True, 200, None)

    run(main())
