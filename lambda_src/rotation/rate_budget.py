"""``RateBudget``: the GitLab client paces itself instead of finding GitLab's rate limit by 429s.

At most ``max_requests_per_minute`` requests are sent in ANY ``window`` seconds (60): a sliding log
of the send times, so request ``j`` goes out no earlier than ``window`` after request ``j - max``.
Every half-open interval of ``window`` seconds then holds at most ``max`` sends, which includes
each fixed minute of GitLab's Rack::Attack throttle, whatever its phase.

Pure: time comes from ``clock`` (seconds, monotonic) and waiting is ``sleep``, both injectable.
Not thread-safe (one run, one client, one thread).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
# A wait shorter than this is none: a clock that counts whole microseconds (``datetime``) may wake
# a fraction of one early, and waiting for that fraction would never end.
RESOLUTION = 1e-6


class RateBudget:
    """``max_requests_per_minute`` requests in any ``window`` seconds, and none before a pause ends.

    ``take()`` waits until one more request fits and records it; ``delay_for(n)`` says how long
    from now until ``n`` more could all have been sent (to decide whether the next unit of work
    fits in the time left); ``pause_until(moment)`` holds every later request back until
    ``moment`` (on the ``clock``'s scale), e.g. for a 429's ``Retry-After``.
    """

    def __init__(
        self,
        max_requests_per_minute: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if isinstance(max_requests_per_minute, bool) or not isinstance(max_requests_per_minute, int) or max_requests_per_minute < 1:
            raise ValueError(f"max_requests_per_minute must be a whole number >= 1, got {max_requests_per_minute!r}")
        if not window > 0:
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        self.max_requests_per_minute = max_requests_per_minute
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()  # send times within the last window, oldest first
        self._paused_until: float | None = None
        self.taken = 0  # requests recorded
        self.waited = 0.0  # seconds take() slept in all

    def delay_for(self, n: int = 1) -> float:
        """Seconds from now until ``n`` more requests could all have been sent (0.0 when they fit
        now; ``n`` larger than the budget spans several windows)."""
        now = self._clock()
        self._forget_before(now)
        earliest = now if self._paused_until is None else max(now, self._paused_until)
        schedule = list(self._sent)
        limit = self.max_requests_per_minute
        last = now
        for _ in range(max(0, n)):
            last = earliest
            if len(schedule) >= limit:
                last = max(last, schedule[-limit] + self.window)
            schedule.append(last)
            earliest = last
        return last - now

    def take(self) -> float:
        """Wait until one more request fits, record it as sent now; returns the seconds waited."""
        waited = 0.0
        while True:
            delay = self.delay_for(1)
            if delay < RESOLUTION:
                break
            self._sleep(delay)
            waited += delay
        self._sent.append(self._clock())
        self.taken += 1
        self.waited += waited
        return waited

    def pause_until(self, moment: float) -> None:
        """No request before ``moment`` (``clock`` seconds); an earlier pause than the one set is ignored."""
        if self._paused_until is None or moment > self._paused_until:
            self._paused_until = moment

    def pause_for(self, seconds: float) -> None:
        """No request for ``seconds`` from now."""
        self.pause_until(self._clock() + seconds)

    def _forget_before(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        if self._paused_until is not None and self._paused_until <= now:
            self._paused_until = None
