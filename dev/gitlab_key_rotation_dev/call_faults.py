"""Counting, breaking and interleaving the rotation's external calls.

``CallLog.wrap`` is the ``wrap`` hook of ``RotationWorld.ports``: every method call on a port
(IAM, state secret, token secret, GitLab, STS, SNS) is counted, and something can happen before
or after the chosen call reaches the real component: by default the run crashes. A ``Crash`` is
a ``BaseException``: no ``except Exception`` in the code under test catches it, just as nothing
runs after a Lambda is killed (timeout, out of memory, a lost sandbox). With ``meanwhile`` the
call instead lets something else happen in the world at that instant (a second run, a human).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# Calls that change something outside the run; a crash right after any other call leaves the
# world exactly as the crash right after the last changing call before it.
CHANGING = {
    "iam.create_key",
    "iam.set_status",
    "iam.delete_key",
    "state.acquire_lock",
    "state.release_lock",
    "state.put_pending",
    "state.put_current",
    "state.drop_pending",
    "token_store.begin_rotation",
    "token_store.abandon_rotation",
    "token_store.write",
    "gitlab.write_variable",
    "gitlab.delete_variable",
    "gitlab.rotate_token",
    "notifier.publish",
}


class Crash(BaseException):
    """The run died here."""


@dataclass
class CallLog:
    """Counts calls. The call chosen by ``fail_at`` (its 0-based number) or by ``at`` (its name,
    e.g. ``"iam.create_key"``, first occurrence) crashes the run, or runs ``meanwhile`` and the
    run carries on."""

    fail_at: int | None = None
    at: str | None = None
    when: Literal["before", "after"] = "before"
    meanwhile: Callable[[], None] | None = None
    calls: list[str] = field(default_factory=list)

    def wrap(self, name: str, port: object) -> object:
        return _CountingPort(name, port, self)

    def call(self, name: str, method, args, kwargs):
        index = len(self.calls)
        self.calls.append(name)
        chosen = index == self.fail_at or (name == self.at and self.calls.count(name) == 1)
        if chosen and self.when == "before":
            self._strike(f"before call {index} ({name})")
        result = method(*args, **kwargs)
        if chosen and self.when == "after":
            self._strike(f"after call {index} ({name})")
        return result

    def _strike(self, where: str) -> None:
        if self.meanwhile is None:
            raise Crash(f"crash injected {where}")
        self.meanwhile()


class _CountingPort:
    def __init__(self, name: str, port: object, log: CallLog):
        self._name = name
        self._port = port
        self._log = log

    def __getattr__(self, attribute: str):
        value = getattr(self._port, attribute)
        if not callable(value):
            return value
        name = f"{self._name}.{attribute}"
        return lambda *args, **kwargs: self._log.call(name, value, args, kwargs)
