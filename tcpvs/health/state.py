"""A server's health as its checks tell it, sans-IO: the rise/fall state machine.

A server starts up, as HAProxy starts its servers by default (`init-state up`): traffic
flows at once instead of waiting `rise` intervals after every start or reload, and a server
that is in fact down costs a single check, because until a check has passed, one failure
takes it down (HAProxy's new server sits at the edge of its health range in the same way).
From then on it takes `fall` consecutive failures to go down and `rise` consecutive passes
to come back up.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcpvs.health.result import CheckResult


@dataclass
class Health:
    rise: int
    fall: int
    since: float = 0.0  # when `up` last changed (or the server was added)
    up: bool = True
    passes: int = 0  # consecutive passes, 0 after a failure
    fails: int = 0  # consecutive failures, 0 after a pass
    passed: int = 0  # all passes
    failed: int = 0  # all failures
    last: CheckResult | None = None

    def observe(self, result: CheckResult, now: float) -> bool:
        """Count `result` in; True exactly when it turned the server up or down."""
        self.last = result
        if result.ok:
            self.passed += 1
            self.passes += 1
            self.fails = 0
            change = not self.up and self.passes >= self.rise
        else:
            self.failed += 1
            self.fails += 1
            self.passes = 0
            change = self.up and self.fails >= (self.fall if self.passed else 1)
        if change:
            self.up = not self.up
            self.since = now
        return change

    def reason(self) -> str:
        """Why the server is as it is, for the log: "3 failed checks: HTTP 500"."""
        if self.last is None:
            return "not checked yet"
        count, verb = (self.passes, "passed") if self.last.ok else (self.fails, "failed")
        return f"{count} {verb} check{'' if count == 1 else 's'}: {self.last.describe()}"
