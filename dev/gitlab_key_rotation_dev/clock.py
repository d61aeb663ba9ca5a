"""The tests' time, shared by the moto world (``rotation_world``) and the in-memory fakes: no AWS,
no network, so a fake-only test can import it without loading moto."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

START = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


class FakeClock:
    """The test's time: ``sleep`` advances it instead of waiting."""

    def __init__(self, start: datetime = START):
        self.moment = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.moment

    def naive_utc(self) -> datetime:
        return self.moment.replace(tzinfo=None)

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds``, rounded up to the microsecond ``datetime`` resolves (as a real
        sleep lasts at least as long as asked: rounded down, a wait until a moment could fall
        short of it forever)."""
        self.slept.append(seconds)
        self.moment += timedelta(microseconds=math.ceil(seconds * 1_000_000))
