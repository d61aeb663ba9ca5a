"""Injected faults: rules that change the answer to chosen requests, and the request log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gitlab_key_rotation_dev.gitlab_server.responses import RATE_LIMIT_MESSAGE, Response, default_fault_body

PLAIN_RATE_LIMIT_BODY = "Retry later"  # what GitLab's Rack::Attack sends in some setups


@dataclass
class Fault:
    """A rule made by ``GitLabServer.inject``; ``fired`` counts the requests it answered."""

    method: str | None
    path: re.Pattern[str]
    status: int | None
    body: object
    headers: dict[str, str]
    nth: int
    times: int | None
    delay: float
    after_effect: bool
    disconnect: bool
    seen: int = 0
    fired: int = 0

    def counts(self, method: str, path: str) -> bool:
        """Count a matching request; True when it is one this rule answers (the nth to the
        (nth + times - 1)th)."""
        if (self.method and self.method != method) or not self.path.search(path):
            return False
        self.seen += 1
        last = None if self.times is None else self.nth + self.times - 1
        return self.seen >= self.nth and (last is None or self.seen <= last)

    def response(self) -> Response | None:
        """The injected answer, or None when the rule only delays or disconnects."""
        if self.status is None:
            return None
        body = default_fault_body(self.status) if self.body is None else self.body
        return Response(self.status, body, dict(self.headers))


def first_claim(faults: Iterable[Fault], method: str, path: str) -> Fault | None:
    """The oldest rule that answers the request; every matching rule counts it."""
    claimed = [fault for fault in list(faults) if fault.counts(method, path)]
    if not claimed:
        return None
    claimed[0].fired += 1
    return claimed[0]


def rate_limited(
    *, retry_after: int | None = None, reset_in: float | None = None, plain_text: bool = False
) -> dict[str, object]:
    """Keyword arguments for ``inject`` that answer like GitLab's rate limiter: 429, with a
    ``Retry-After`` header when ``retry_after`` is given, ``RateLimit-Reset`` (epoch seconds)
    ``reset_in`` seconds after this call when given, and a JSON or plain-text (``Retry later``) body.

    ``server.inject(method="PUT", **rate_limited(retry_after=1))``
    """
    headers = {"RateLimit-Limit": "600", "RateLimit-Remaining": "0"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if reset_in is not None:
        headers["RateLimit-Reset"] = str(int(time.time() + reset_in))
    body = PLAIN_RATE_LIMIT_BODY if plain_text else {"message": {"error": RATE_LIMIT_MESSAGE}}
    return {"status": 429, "body": body, "headers": headers}


def late_write(*, after: float) -> dict[str, object]:
    """Keyword arguments for ``inject`` that make GitLab apply a write late: the request is
    held ``after`` seconds, then takes effect (against the state of that moment, on top of
    whatever was written meanwhile), and only then is it answered. With ``after`` longer than
    the client's read timeout the client has given up and gone on (retried, rolled back) before
    the write lands; ``GitLabServer.wait_idle()`` waits for it to land.

    ``server.inject(method="PUT", path=r"/variables/AWS_SECRET", **late_write(after=0.5))``
    """
    if after <= 0:
        raise ValueError(f"after must be positive, got {after!r}")
    return {"delay": after}


@dataclass
class LoggedRequest:
    """One request as the server saw it, logged when it arrived. Never a body, a value or a
    token: the query holds only the parameters GitLab takes in the URL
    (``filter[environment_scope]``, ``page``, ``per_page``)."""

    method: str
    path: str  # raw, URL-encoded
    query: dict[str, str]  # decoded: {"filter[environment_scope]": "*"}
    faulted: bool  # answered (or delayed, or dropped) by an injected fault
    status: int | None = None  # None: no answer (yet): still delayed, or the connection was dropped
    route: str | None = None  # "variables", "variable", "token", "token_rotate"; None: no route
    token_id: int | None = None  # id of the token it carried (None: none this server knows)
    throttled: bool = False  # refused with 429 by the server's rate limit
