"""The integrity suite's client: many concurrent HTTP exchanges whose every byte is checked.

Each request carries a unique id; the backend (tests/support/backend.py, path /integrity)
logs the sha256 of the body it received under that id and answers a body derived from the id,
with the sha256 of the request body in `X-Req-Sha256`. After a run, `violations()` holds each
outcome against what the client saw and what the servers logged: every request is answered
exactly once by one server, or answered with an error by tcpvs, never lost silently, never
delivered twice unless its method is idempotent (RFC 9110 9.2.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httptools

from tests.support.backend import chunked, integrity_body

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
REQUEST_SIZES = (0, 0, 1, 1000, 64 * 1024 + 3, 300_000, 1_000_000, 3 * 1024 * 1024 + 7)
RESPONSE_SIZES = (0, 13, 13, 64 * 1024, 600_000, 3 * 1024 * 1024 + 7)
EXCHANGE_SECONDS = 30  # one request and its response, at most


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Case:
    """One request of the suite and what the server is told to do with it."""

    id: str
    method: str = "GET"
    req_len: int = 0
    req_chunked: bool = False
    expect: bool = False  # Expect: 100-continue, the body only after the 100
    body_later: bool = False  # the body in writes after the head's, not with it
    resp_len: int = 13
    resp_chunked: bool = False
    fail: str | None = None  # the server closes "after" reading the request, or "mid" response
    close: bool = False  # Connection: close

    @property
    def body(self) -> bytes:
        return hashlib.shake_256(self.id.encode()).digest(self.req_len) if self.req_len else b""

    @property
    def replayable(self) -> bool:
        """What tcpvs may send a second time: idempotent and nothing to resend but the head."""
        return self.method in IDEMPOTENT and not self.req_len and not self.req_chunked

    def head(self) -> bytes:
        query = {"id": self.id, "resp": self.resp_len}
        if self.resp_chunked:
            query["te"] = "chunked"
        if self.fail:
            query["fail"] = self.fail
        lines = [f"{self.method} /integrity?{urlencode(query)} HTTP/1.1", "Host: integrity"]
        if self.req_chunked:
            lines.append("Transfer-Encoding: chunked")
        elif self.req_len or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {self.req_len}")
        if self.expect:
            lines.append("Expect: 100-continue")
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def framed_body(self) -> bytes:
        return chunked(self.id, self.body) if self.req_chunked else self.body


def random_cases(
    count: int, seed: int, prefix: str, fail_share: float = 0.0, methods=("GET", "POST", "PUT")
) -> list[Case]:
    """`count` cases over the whole matrix, the same for the same seed."""
    rng = random.Random(seed)
    cases = []
    for n in range(count):
        req_len = rng.choice(REQUEST_SIZES)
        fail = None
        if rng.random() < fail_share:
            fail = rng.choice(("after", "mid"))
        cases.append(
            Case(
                id=f"{prefix}-{n}",
                method=rng.choice(methods),
                req_len=req_len,
                req_chunked=rng.random() < 0.4,
                expect=req_len > 0 and rng.random() < 0.3,
                body_later=rng.random() < 0.3,
                resp_len=rng.choice(RESPONSE_SIZES),
                resp_chunked=rng.random() < 0.4,
                fail=fail,
                close=rng.random() < 0.1,
            )
        )
    return cases


@dataclass
class Outcome:
    case: Case
    status: int | None = None  # final status; None when no whole response came
    body_sha: str | None = None
    body: bytes = b""  # kept when short (the switch's own error answers)
    headers: dict[str, str] = field(default_factory=dict)
    closed: bool = False  # the connection ended with or after this response
    error: str = ""


class _ResponseReader:
    """httptools callbacks for one response (interim 1xx responses noted, then skipped)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.continued = asyncio.Event()  # a 100 Continue came
        self.done = asyncio.Event()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.sha = hashlib.sha256()
        self.short = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.sha.update(body)
        if len(self.short) < 4096:
            self.short += body[:4096]

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self.continued.set()
            self.headers = {}
            return
        self.status = status
        self.done.set()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, case: Case, expect_wait: float
) -> Outcome:
    response = _ResponseReader()
    outcome = Outcome(case)

    async def send() -> None:
        body = case.framed_body()
        if not (case.expect or case.body_later):
            writer.write(case.head() + body)
            await writer.drain()
            return
        writer.write(case.head())
        await writer.drain()
        if case.expect:
            waits = [asyncio.ensure_future(e.wait()) for e in (response.continued, response.done)]
            await asyncio.wait(waits, timeout=expect_wait, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if response.done.is_set():
                return  # answered without the body (an error): the body is not sent
        else:
            await asyncio.sleep(0.01)
        for at in range(0, len(body), 256 * 1024):
            writer.write(body[at : at + 256 * 1024])
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while not response.done.is_set():
            data = await reader.read(256 * 1024)
            if not data:
                outcome.closed = True
                break
            response.parser.feed_data(data)
    except (ConnectionError, httptools.HttpParserError) as exc:
        outcome.closed, outcome.error = True, repr(exc)
    try:
        await asyncio.wait_for(sender, 5)
    except (ConnectionError, TimeoutError) as exc:
        outcome.closed = True
        outcome.error = outcome.error or f"sending: {exc!r}"
    if response.done.is_set():
        outcome.status = response.status
        outcome.body_sha = response.sha.hexdigest()
        outcome.body = bytes(response.short)
        outcome.headers = response.headers
        if response.headers.get("connection", "").lower() == "close":
            outcome.closed = True
    return outcome


async def run_session(
    port: int, cases: list[Case], pause: tuple[float, float] = (0, 0), expect_wait: float = 5
) -> list[Outcome]:
    """The cases one after the other on keep-alive connections (a new one when closed)."""
    outcomes = []
    rng = random.Random(cases[0].id if cases else 0)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        for case in cases:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            try:
                async with asyncio.timeout(EXCHANGE_SECONDS):
                    outcome = await _exchange(*conn, case, expect_wait)
            except TimeoutError:
                outcome = Outcome(case, closed=True, error="no answer: lost")
            outcomes.append(outcome)
            if outcome.closed or case.close:
                conn[1].close()
                conn = None
            if pause[1]:
                await asyncio.sleep(rng.uniform(*pause))
    finally:
        if conn is not None:
            conn[1].close()
    return outcomes


async def run(
    port: int, cases: list[Case], sessions: int, pause: tuple[float, float] = (0, 0)
) -> list[Outcome]:
    """`cases` spread over `sessions` concurrent client connections."""
    groups = [cases[n::sessions] for n in range(sessions)]
    results = await asyncio.gather(*(run_session(port, group, pause) for group in groups if group))
    return [outcome for group in results for outcome in group]


def is_switch_error(outcome: Outcome, status: int) -> bool:
    """The switch's own error answer (tcpvs.http.responses), not a server's."""
    return outcome.status == status and outcome.body.startswith(b"%d " % status)


def violations(
    outcomes: list[Outcome], received: list[dict], stale_pool: bool = False
) -> list[str]:
    """What went wrong, one line per request; empty when every request was handled right.

    `received`: the backends' log lines. `stale_pool`: servers close idle connections, so a
    request that cannot be replayed may meet a connection closed under it and get 502,
    provided no server ever saw it."""
    seen = Counter(r["id"] for r in received if r.get("id"))
    shas: dict[str, set[str]] = {}
    for r in received:
        if r.get("id"):
            shas.setdefault(r["id"], set()).add(r["sha256"])
    problems = []
    for outcome in outcomes:
        case = outcome.case
        count = seen[case.id]
        where = f"{case} -> status {outcome.status}, server saw it {count}x {outcome.error}"
        if count and shas[case.id] != {sha(case.body)}:
            problems.append(f"server got another body: {where}")
        if case.fail is None:
            if stale_pool and is_switch_error(outcome, 502) and not case.replayable:
                if count:
                    problems.append(f"502 for a request a server processed: {where}")
                continue
            if outcome.status != 200:
                problems.append(f"not answered: {where}")
            elif outcome.body_sha != sha(integrity_body(case.id, case.resp_len)):
                problems.append(f"wrong response body: {where}")
            elif outcome.headers.get("x-req-sha256") != sha(case.body):
                problems.append(f"server echoed another body hash: {where}")
            if count != 1:
                problems.append(f"delivered {count} times: {where}")
        elif case.fail == "after":
            if not is_switch_error(outcome, 502):
                problems.append(f"expected tcpvs's 502: {where}")
            if count < 1 or (count > 1 and case.method not in IDEMPOTENT):
                problems.append(f"a non-idempotent request delivered {count} times: {where}")
        elif case.fail == "mid":
            if outcome.status is not None:
                problems.append(f"a cut response looked whole: {where}")
            if count != 1:
                problems.append(f"response started, yet delivered {count} times: {where}")
    return problems
