"""The outcome of one health check, as the prober reports it and the state machine takes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    status: int | None  # the HTTP status, when an answer's head was read
    error: str | None  # "connection refused", "timeout", "bad response", "body did not match"...
    duration_ms: float
    time: float  # wall clock (time.time()) when the check started

    def as_dict(self) -> dict[str, object]:
        """For JSON (the check's kind is the caller's to add)."""
        return asdict(self)

    def describe(self) -> str:
        """A few words for a log line: "HTTP 500", "connection refused", "timeout after 1s"."""
        parts = [] if self.status is None else [f"HTTP {self.status}"]
        if self.error == "timeout":
            parts.append(f"timeout after {_duration(self.duration_ms)}")
        elif self.error is not None:
            parts.append(self.error)
        return ", ".join(parts) or ("connected" if self.ok else "failed")


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}".removesuffix(".0") + "s"
