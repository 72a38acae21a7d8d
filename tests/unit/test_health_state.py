"""The rise/fall machine: a server starts up, goes down after `fall` consecutive failures
(after one while it has never passed), comes back after `rise` consecutive passes; and what
its counters, `since` and `reason()` then say."""

from __future__ import annotations

import pytest

from tcpvs.health.result import CheckResult
from tcpvs.health.state import Health

PASS = CheckResult(True, 200, None, 1.5, 1000.0)
HTTP_500 = CheckResult(False, 500, None, 2.0, 1000.0)
REFUSED = CheckResult(False, None, "connection refused", 0.1, 1000.0)
TIMEOUT = CheckResult(False, None, "timeout", 1000.4, 1000.0)


def feed(health: Health, results: str) -> str:
    """Observe "p"/"f" results at t = 1, 2, ...; "^"/"v" where the state went up/down, "."
    where it stayed."""
    marks = []
    for result in results:
        changed = health.observe(
            PASS if result == "p" else HTTP_500, health.passed + health.failed + 1
        )
        marks.append(("^" if health.up else "v") if changed else ".")
    return "".join(marks)


def test_a_server_starts_up_and_a_first_failure_takes_it_down() -> None:
    """HAProxy's default (init-state up): up at once, but down at once if the very first
    checks fail, without waiting `fall` intervals."""
    health = Health(rise=2, fall=3, since=50.0)
    assert health.up and health.since == 50.0 and health.last is None
    assert health.reason() == "not checked yet"
    assert health.observe(REFUSED, 51.0) is True
    assert not health.up and health.since == 51.0
    assert health.reason() == "1 failed check: connection refused"


def test_after_a_pass_it_takes_fall_failures_to_go_down() -> None:
    health = Health(rise=2, fall=3)
    assert feed(health, "pff") == "..."
    assert health.up
    assert feed(health, "f") == "v"
    assert (health.fails, health.passes) == (3, 0)
    assert health.reason() == "3 failed checks: HTTP 500"


def test_failures_must_be_consecutive() -> None:
    health = Health(rise=2, fall=3)
    assert feed(health, "pffpffpff") == "." * 9
    assert health.up and health.fails == 2


def test_it_comes_back_after_rise_consecutive_passes() -> None:
    health = Health(rise=3, fall=2)
    assert feed(health, "f") == "v"
    assert feed(health, "ppfpp") == "....."  # the failure starts the count again
    assert feed(health, "p") == "^"
    assert health.reason() == "3 passed checks: HTTP 200"
    assert feed(health, "pppf") == "...."  # one failure is not `fall` of them
    assert feed(health, "f") == "v"


def test_changes_are_reported_once_and_counts_go_on() -> None:
    health = Health(rise=1, fall=1)
    assert feed(health, "pfffpppf") == ".v..^..v"
    assert (health.passed, health.failed) == (4, 4)
    assert (health.passes, health.fails) == (0, 1)


def test_since_is_the_time_of_the_last_change() -> None:
    health = Health(rise=2, fall=2, since=10.0)
    health.observe(PASS, 11.0)
    health.observe(HTTP_500, 12.0)
    assert health.up and health.since == 10.0
    health.observe(HTTP_500, 13.0)
    assert not health.up and health.since == 13.0
    health.observe(PASS, 14.0)
    health.observe(PASS, 15.0)
    assert health.up and health.since == 15.0
    assert health.last is PASS


@pytest.mark.parametrize(
    "result, words",
    [
        (PASS, "HTTP 200"),
        (HTTP_500, "HTTP 500"),
        (REFUSED, "connection refused"),
        (TIMEOUT, "timeout after 1s"),
        (CheckResult(False, None, "timeout", 250.2, 0.0), "timeout after 250ms"),
        (CheckResult(False, 200, "timeout", 1500.0, 0.0), "HTTP 200, timeout after 1.5s"),
        (CheckResult(False, 200, "body did not match", 3.0, 0.0), "HTTP 200, body did not match"),
        (CheckResult(True, None, None, 0.3, 0.0), "connected"),  # a tcp check
    ],
)
def test_a_result_in_a_few_words(result: CheckResult, words: str) -> None:
    assert result.describe() == words
    health = Health(rise=1, fall=1)
    health.observe(result, 1.0)
    verb = "passed" if result.ok else "failed"
    assert health.reason() == f"1 {verb} check: {words}"


def test_a_result_as_json() -> None:
    assert REFUSED.as_dict() == {
        "ok": False,
        "status": None,
        "error": "connection refused",
        "duration_ms": 0.1,
        "time": 1000.0,
    }
