"""A check's sans-IO parts, without sockets: `Answer` judges bytes however they are cut up,
`Target` works out once what a server's checks connect to and send."""

from __future__ import annotations

import socket

import pytest

from tcpvs.health import probe as probe_module
from tcpvs.health.probe import Answer, Target
from tcpvs.health.spec import CheckSpec, parse_check


def spec(text: str) -> CheckSpec:
    parsed = parse_check(text)
    assert parsed is not None
    return parsed


def judged(text: str, *pieces: bytes, eof: bool = False) -> Answer:
    answer = Answer(spec(text))
    answer.connected()
    for piece in pieces:
        if not answer.done:
            answer.feed(piece)
    if eof and not answer.done:
        answer.end()
    return answer


def verdict(answer: Answer) -> tuple[bool, bool, int | None, str | None]:
    return answer.done, answer.ok, answer.status, answer.error


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nall is well"


def test_a_tcp_check_passes_once_connected() -> None:
    answer = Answer(spec("tcp"))
    assert not answer.done
    answer.connected()
    assert verdict(answer) == (True, True, None, None)


@pytest.mark.parametrize("size", [1, 3, 7, len(OK)])
def test_an_answer_is_judged_however_it_is_cut(size: int) -> None:
    pieces = [OK[i : i + size] for i in range(0, len(OK), size)]
    assert verdict(judged("http", *pieces)) == (True, True, 200, None)
    # with a body to find, the verdict waits for the whole body (Content-Length), no EOF
    answer = judged("http body well$", *pieces)
    assert verdict(answer) == (True, True, 200, None)


def test_the_status_decides_before_the_body_comes() -> None:
    answer = judged("http body ok", b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n")
    assert verdict(answer) == (True, False, 500, None)
    assert verdict(judged("http expect 204", b"HTTP/1.1 204 No\r\n\r\n")) == (True, True, 204, None)


def test_a_chunked_body_ends_with_its_framing_and_a_close_ended_one_at_eof() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert verdict(judged("http body hel+o", chunked)) == (True, True, 200, None)
    close_ended = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nno match here"
    assert not judged("http body hello", close_ended).done  # until EOF
    answer = judged("http body hello", close_ended, eof=True)
    assert verdict(answer) == (True, False, 200, "body did not match")


@pytest.mark.parametrize(
    "pieces, error",
    [
        ((), "no response"),
        ((b"HTTP/1.1 200 OK\r\nContent-Le",), "bad response"),
        ((b"SSH-2.0-OpenSSH_9.2\r\n\r\n",), "bad response"),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok",), "bad response"),  # cut short
    ],
)
def test_what_ends_too_soon_or_is_not_http_fails(pieces: tuple[bytes, ...], error: str) -> None:
    assert judged("http body ok", *pieces, eof=True).error == error


def test_a_failure_keeps_what_was_learnt() -> None:
    answer = judged("http body ok", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    answer.fail("timeout")
    assert verdict(answer) == (True, False, 200, "timeout")
    answer.fail("later")  # the first verdict stands
    assert answer.error == "timeout"


def test_a_body_regex_is_compiled_once() -> None:
    probe_module._pattern.cache_clear()
    for _ in range(5):
        assert judged("http body w.ll", OK).ok
    info = probe_module._pattern.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_a_target_is_worked_out_once_for_all_checks() -> None:
    target = Target(spec("http HEAD /ready"), "10.0.0.2", 8080)
    assert (target.family, target.sockaddr) == (socket.AF_INET, ("10.0.0.2", 8080))
    assert target.request == (
        b"HEAD /ready HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n"
        b"Connection: close\r\nUser-Agent: tcpvs-check\r\n\r\n"
    )
    assert Target(spec("tcp"), "10.0.0.2", 80).request == b""  # a tcp check sends nothing


def test_the_check_port_replaces_the_traffic_port_in_the_address_and_the_host() -> None:
    target = Target(spec("http port 9000"), "2001:db8::7", 80)
    assert target.family == socket.AF_INET6
    assert target.sockaddr[:2] == ("2001:db8::7", 9000)
    assert b"\r\nHost: [2001:db8::7]:9000\r\n" in target.request
    named = Target(spec("http host app.example port 9000"), "10.0.0.2", 80)
    assert b"\r\nHost: app.example\r\n" in named.request


def test_a_name_is_refused_not_resolved_on_the_loop() -> None:
    with pytest.raises(ValueError, match="not a numeric address"):
        Target(spec("tcp"), "localhost", 80)
