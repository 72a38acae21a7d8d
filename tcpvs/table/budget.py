"""The retry budget of a service: how many failed requests may be sent again.

Retries help when one server fails and hurt when all of them do: every failed request sent
again adds load to a cluster already down (a retry storm). Like Finagle's RetryBudget and
Envoy's retry budget, retries may add at most a share of the requests served (`retry_budget`
per cent), plus a small burst so that a quiet service can still retry at all. It is a token
bucket filled by the requests counted since it last looked, so that a request costs it nothing:
only a retry reads it.
"""

from __future__ import annotations

# Retries allowed at once before the share of requests governs (also the bucket's size).
RETRY_BURST = 10.0


class RetryBudget:
    def __init__(self) -> None:
        self.tokens = RETRY_BURST
        self.mark = 0  # the service's request count when the bucket was last filled
        self.denied = 0  # retries refused by the budget (the request got an error instead)

    def spend(self, served: int, percent: float) -> bool:
        """One retry, now that the service has served `served` requests (connections for raw
        TCP) in all: True if the budget allows it (and it is counted), False if not."""
        tokens = self.tokens + (served - self.mark) * percent / 100
        self.mark = served
        if tokens > RETRY_BURST:
            tokens = RETRY_BURST
        if tokens < 1:
            self.tokens = tokens
            self.denied += 1
            return False
        self.tokens = tokens - 1
        return True
