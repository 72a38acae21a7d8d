"""The agenda the checker and the prober share, on a fake clock: items come out when their
slot ends, a slot's together, each once, unless discarded; one timer is armed at a time, never
for a slot emptied."""

from __future__ import annotations

from collections.abc import Callable

from tcpvs.health.agenda import Agenda


class FakeTimer:
    def __init__(self, clock: FakeClock, when: float, callback: Callable[[], object]) -> None:
        self.clock, self.when, self.callback = clock, when, callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """The loop's time() and call_at(); `run_until(t)` rings the timers due, in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(self, when, callback)
        self.timers.append(timer)
        return timer

    def armed(self) -> list[float]:
        return [t.when for t in self.timers if not t.cancelled]

    def run_until(self, end: float) -> None:
        while True:
            live = [t for t in self.timers if not t.cancelled and t.when <= end]
            if not live:
                break
            timer = min(live, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = end


def agenda(window: float = 0.01, stale: Callable[[str], bool] | None = None):
    clock = FakeClock()
    rings: list[tuple[float, list[str]]] = []
    kwargs = {} if stale is None else {"stale": stale}
    table: Agenda[str] = Agenda(
        clock, lambda items: rings.append((clock.now, items)), window, **kwargs
    )
    return clock, table, rings


def test_the_items_of_a_slot_come_out_together_when_it_ends() -> None:
    clock, table, rings = agenda(window=0.5)
    for when, item in [(1.2, "a"), (1.4, "b"), (1.1, "c"), (2.3, "d"), (1.6, "e")]:
        table.add(when, item)
    assert clock.armed() == [1.5]  # one timer, at the end of the earliest slot
    clock.run_until(10.0)
    # in the order they were added within a slot: they are started (or failed) together
    assert rings == [(1.5, ["a", "b", "c"]), (2.0, ["e"]), (2.5, ["d"])]
    assert len(table) == 0 and clock.armed() == []


def test_an_earlier_slot_rearms_the_one_timer() -> None:
    clock, table, rings = agenda(window=1.0)
    table.add(5.5, "late")
    table.add(2.5, "early")
    table.add(3.5, "between")  # later than the timer: no new timer
    assert clock.armed() == [3.0]
    clock.run_until(10.0)
    assert rings == [(3.0, ["early"]), (4.0, ["between"]), (6.0, ["late"])]


def test_items_added_by_the_callback_are_scheduled() -> None:
    clock = FakeClock()
    seen: list[tuple[float, str]] = []

    def due(items: list[str]) -> None:
        for item in items:
            seen.append((clock.now, item))
            if len(seen) < 4:
                table.add(clock.now + 0.75, item)  # as the checker does after a check

    table: Agenda[str] = Agenda(clock, due, 0.5)
    table.add(0.25, "s")
    clock.run_until(10.0)
    assert seen == [(0.5, "s"), (1.5, "s"), (2.5, "s"), (3.5, "s")]


def test_an_item_in_the_past_comes_out_at_once() -> None:
    clock, table, rings = agenda(window=1.0)
    clock.now = 7.2
    table.add(3.0, "overdue")  # (a timeout shorter than the time a batch took)
    clock.run_until(7.2)
    assert rings == [(7.2, ["overdue"])]


def test_discarded_items_never_come_out_and_no_timer_waits_for_their_slot() -> None:
    clock, table, rings = agenda(window=1.0)
    for when, item in [(1.0, "a"), (1.5, "a2"), (2.0, "b"), (3.0, "c"), (3.5, "c2"), (4.0, "d")]:
        table.add(when, item)
    for when, item in [(1.5, "a2"), (2.0, "b"), (3.0, "c"), (3.5, "c2")]:
        table.discard(when, item)  # over before their time, as most of a prober's deadlines
    table.discard(3.0, "c")  # again, or never added: nothing happens
    table.discard(9.0, "z")
    clock.run_until(2.0)
    assert rings == [(2.0, ["a"])]
    assert clock.armed() == [5.0]  # not 3.0 or 4.0: those slots are emptied, and dropped
    assert len(table) == 1
    table.discard(4.0, "d")  # while the timer waits for it
    clock.run_until(10.0)
    assert rings == [(2.0, ["a"])] and len(table) == 0


def test_a_timer_ringing_a_little_early_still_hands_its_slot_out() -> None:
    # uvloop's timers round to the millisecond: one may ring a hair before its time, and must
    # not then find nothing to do and ring again at once.
    clock, table, rings = agenda(window=0.01)
    table.add(1.0045, "a")
    clock.now = 1.0095
    clock.timers.pop().callback()
    assert rings == [(1.0095, ["a"])] and clock.armed() == []


def test_close_cancels_the_timer_and_forgets_the_items() -> None:
    clock, table, rings = agenda()
    table.add(1.0, "a")
    table.close()
    assert clock.armed() == [] and len(table) == 0
    clock.run_until(5.0)
    assert rings == []
