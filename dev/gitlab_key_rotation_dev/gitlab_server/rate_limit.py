"""A rate limit per token, as GitLab's authenticated API throttle enforces it."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from email.utils import formatdate

from gitlab_key_rotation_dev.gitlab_server.faults import PLAIN_RATE_LIMIT_BODY
from gitlab_key_rotation_dev.gitlab_server.responses import RATE_LIMIT_MESSAGE, Response

PERIOD = 60  # seconds


class RateLimit:
    """``per_minute`` requests per token in each minute, modelled on GitLab's
    ``throttle_authenticated_api``, a Rack::Attack throttle: fixed windows of ``PERIOD`` (60) seconds
    aligned to the epoch (window ``int(now // 60)``), one counter per (window, token). Every
    request counts, a refused one too; the one that takes the counter past ``per_minute`` and
    every later one in that window are refused, and the next window starts again at zero. So a
    client may spend a whole minute's budget in a burst at the end of one window and another at
    the start of the next, as with GitLab.

    The refusal is a 429, either GitLab's throttle answer (``plain_text=False``): JSON
    ``{"message": {"error": "This endpoint has been requested too many times. Try again later."}}``
    with ``Retry-After`` (seconds until the window ends, rounded up), ``RateLimit-Reset`` (the
    window's end, epoch seconds), ``RateLimit-ResetTime``, ``RateLimit-Limit``,
    ``RateLimit-Observed``, ``RateLimit-Remaining`` and ``RateLimit-Name``; or Rack::Attack's
    bare answer (``plain_text=True``): ``Retry later`` as text/plain with no header to say when
    (no ``Retry-After``, no ``RateLimit-*``), so the client has nothing but its own backoff.

    ``clock`` (epoch seconds) lets a test move between windows without waiting.
    """

    def __init__(self, per_minute: int, *, plain_text: bool = False, clock: Callable[[], float] = time.time):
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute!r}")
        self.per_minute = per_minute
        self.plain_text = plain_text
        self._clock = clock
        self._window = -1
        self._counts: Counter[int] = Counter()

    def refusal(self, token_id: int) -> Response | None:
        """Count one request of the token; the 429 to send when it is over the limit, else None."""
        now = self._clock()
        window = int(now // PERIOD)
        if window != self._window:  # a new window: the old counters expire
            self._window = window
            self._counts.clear()
        self._counts[token_id] += 1
        observed = self._counts[token_id]
        if observed <= self.per_minute:
            return None
        if self.plain_text:
            return Response(429, PLAIN_RATE_LIMIT_BODY)
        reset = (window + 1) * PERIOD
        headers = {
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": str(self.per_minute),
            "RateLimit-Observed": str(observed),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": formatdate(reset, usegmt=True),
            "Retry-After": str(max(1, math.ceil(reset - now))),
        }
        return Response(429, {"message": {"error": RATE_LIMIT_MESSAGE}}, headers)
