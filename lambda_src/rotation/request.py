"""What one invocation asks for, read from its event.

The event is either EventBridge's scheduled event (its envelope fields are ignored) or a manual
invocation's JSON object with these optional fields:

``force``     ``true``: rotate now even when the current key is younger than the rotation period
``dry_run``   ``true``: report the plan and change nothing
``iam_user``  only reconcile this one of the configured users

``event_id`` deduplicates: EventBridge may deliver one event twice and Lambda retries an async
invocation with the same request id, so a forced rotation records the id of the event that
caused it and the same event never forces a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RotationError

_OPTIONS = ("force", "dry_run", "iam_user")
_EVENTBRIDGE_ENVELOPE = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


class BadEventError(RotationError):
    """The event is not something this Lambda understands."""


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    event_id: str
    force: bool = False
    dry_run: bool = False
    iam_user: str | None = None


def parse_event(event: object, run_id: str, dry_run_setting: bool = False) -> RunRequest:
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise BadEventError(f"the event must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - set(_OPTIONS) - set(_EVENTBRIDGE_ENVELOPE))
    if unknown:
        raise BadEventError(f"the event has unknown fields {unknown}; allowed: {', '.join(_OPTIONS)}")
    flags = {}
    for name in ("force", "dry_run"):
        value = event.get(name, False)
        if not isinstance(value, bool):
            raise BadEventError(f"the event's {name} must be true or false, got a {type(value).__name__}")
        flags[name] = value
    iam_user = event.get("iam_user")
    if iam_user is not None and (not isinstance(iam_user, str) or not iam_user):
        raise BadEventError("the event's iam_user must be a non-empty string (an IAM user name)")
    event_id = event.get("id")
    return RunRequest(
        run_id=run_id,
        event_id=event_id if isinstance(event_id, str) and event_id else run_id,
        force=flags["force"],
        dry_run=flags["dry_run"] or dry_run_setting,
        iam_user=iam_user,
    )
