"""What one invocation asks for, read from its event by the shared strict parser
(``common.events``): EventBridge's scheduled event (``replay-name`` included) is a normal run, and a
manual invocation's JSON object may set these options:

``force``     ``true``: rotate now even when the current key is younger than the rotation period
``dry_run``   ``true``: report the plan and change nothing
``iam_user``  only reconcile this one of the configured users

Any other field, or a wrong type, is refused (``common.events.EventError``) before anything runs.

``event_id`` deduplicates: EventBridge may deliver one event twice and Lambda retries an async
invocation with the same request id, so a forced rotation records the id of the event that
caused it and the same event never forces a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..common.events import parse_event as parse_strictly

OPTIONS = {"force": bool, "dry_run": bool, "iam_user": str}


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    event_id: str
    force: bool = False
    dry_run: bool = False
    iam_user: str | None = None


def parse_event(event: object, run_id: str, dry_run_setting: bool = False) -> RunRequest:
    parsed = parse_strictly(event, OPTIONS)
    options = parsed.options
    return RunRequest(
        run_id=run_id,
        event_id=parsed.event_id or run_id,
        force=bool(options.get("force", False)),
        dry_run=bool(options.get("dry_run", False)) or dry_run_setting,
        iam_user=options.get("iam_user"),  # type: ignore[arg-type]
    )
