"""Many things due at given loop times, on one loop timer: the checker's next checks, the
prober's deadlines.

A timer per item would cost a timer handle each and, worse, a wake-up of the loop each. The
agenda cuts time into slots of `window` seconds and hands out a slot's items together when
the slot ends: 1,000 checks a second cost about 1/window wake-ups, not 1,000. An item goes
into its slot's list, with no heap entry of its own to allocate and sift (a dozen tuple
comparisons among 1,000 items); only the slots' numbers are kept in a heap.

An item that is no longer wanted (a check over before its deadline, a server no longer
checked) is taken out at once with `discard`, not left to be skipped when its time comes: a
check kept alive for its deadline's sake, half a second after it ended, survived the young
generation of the garbage collector, and every check then cost a share of a collection.

The loop is only asked for `time()` and `call_at()`: a test can drive it with a fake clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of an event loop the agenda uses."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...


class Agenda(Generic[T]):
    """`add(when, item)`; `due(items)` is called with the items of each slot once it is over
    (at most `window` after their time, in the order they were added), once each, unless
    `discard(when, item)` took them out before."""

    def __init__(self, loop: Clock, due: Callable[[list[T]], None], window: float) -> None:
        self._loop = loop
        self._due = due
        self._window = window
        self._slots: dict[int, list[T]] = {}  # slot n: [n x window, (n + 1) x window)
        self._order: list[int] = []  # the slots' numbers, a heap
        self._timer: Timer | None = None
        self._armed = 0  # the slot the timer rings for

    def __len__(self) -> int:
        return sum(map(len, self._slots.values()))

    def add(self, when: float, item: T) -> None:
        slot = int(when / self._window)
        items = self._slots.get(slot)
        if items is not None:
            items.append(item)
            return
        self._slots[slot] = [item]
        heapq.heappush(self._order, slot)
        if self._timer is None or slot < self._armed:
            self._arm(slot)

    def discard(self, when: float, item: T) -> None:
        """Take out `item`, added at `when`, if it is still there."""
        items = self._slots.get(int(when / self._window))
        if items is not None:
            try:
                items.remove(item)  # a slot holds the items of `window` seconds: a few dozen
            except ValueError:
                pass  # handed out already

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slots.clear()
        self._order.clear()

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed = slot
        self._timer = self._loop.call_at((slot + 1) * self._window, self._ring)

    def _ring(self) -> None:
        self._timer = None
        slots, order = self._slots, self._order
        # The slot rung for is over even if the clock says a hair before its end (uvloop's
        # timers round to the millisecond), and so is any other whose end has passed.
        last = max(self._armed, int(self._loop.time() / self._window) - 1)
        items = []
        while order and order[0] <= last:
            items += slots.pop(heapq.heappop(order))
        while order and not slots[order[0]]:  # emptied by discard: no timer waits for those
            del slots[heapq.heappop(order)]
        if order:
            self._arm(order[0])  # before `due`, which may add items to earlier slots
        if items:
            self._due(items)
