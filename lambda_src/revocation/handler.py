"""Lambda entry point of the weekly developer-key revocation (``revocation.handler.handler``).

Event: ``{}`` or EventBridge's scheduled event (``replay-name`` included); ``{"dry_run": true}``
only reports. A dry run asked for in the settings (``dry_run`` of settings.json) cannot be turned off by the event.
Any other field or type is refused (``common.events.EventError``) before the settings are read or
IAM is called: a typo of ``dry_run`` never becomes a real run.

Logs ONE summary line, ``revocation summary`` (``common.summary``), whose fields (top-level in the
function's JSON log format) are those of ``revocation.report.summary`` plus ``notification``;
returns the same dict.
With ``accounts`` (settings.json) each account first logs its own ``revocation account summary`` line and
the summary is the run's total (``revocation.accounts.total_summary``).
Raises ``RevocationFailed`` after logging when anything failed, so that the errors alarm fires.
Before the summary, the run's metrics go to stdout in the embedded metric format
(``common.metrics``, dimension ``Function``): ``RunSucceeded``, ``RunFailed``, ``MembersScanned``,
``KeysRevoked``, ``Errors``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..common import metrics
from ..common.errors import OperatorError
from ..common.events import parse_event
from ..common.summary import handler_logger, log_summary
from .composition import revoke
from .settings import RevocationSettings

_log = handler_logger(__name__)

SUMMARY_MESSAGE = "revocation summary"


class RevocationFailed(OperatorError):
    """The run finished with errors; the summary log line lists them."""


OPTIONS = {"dry_run": bool}


def handler(event: Any, context: Any) -> dict[str, object]:
    started = datetime.now(UTC)
    try:
        request = parse_event(event, OPTIONS)
        settings = RevocationSettings.load(os.environ)
        if request.options.get("dry_run"):
            settings = replace(settings, dry_run=True)
        result = revoke(settings, run_id=getattr(context, "aws_request_id", None) or str(uuid.uuid4()))
    except Exception:
        _emit([metrics.Metric("RunSucceeded", 0), metrics.Metric("RunFailed", 1), metrics.Metric("Errors", 1)], started)
        raise
    failed = bool(result["error_count"])
    _emit(
        [
            metrics.Metric("RunSucceeded", 0 if failed else 1),
            metrics.Metric("RunFailed", 1 if failed else 0),
            metrics.Metric("MembersScanned", result["users_scanned"]),
            metrics.Metric("KeysRevoked", 0 if result["dry_run"] else result["keys_deleted"] + result["keys_deactivated"]),
            metrics.Metric("Errors", result["error_count"]),
        ],
        started,
    )
    log_summary(_log, SUMMARY_MESSAGE, result, ok=not failed)
    if failed:
        first = result["errors"][0]
        raise RevocationFailed(
            f"developer key revocation finished with {result['error_count']} error(s); first: "
            f"{first['subject']}: {first['error']}; see the '{SUMMARY_MESSAGE}' log line"
        )
    return result


def _emit(run_metrics: list[metrics.Metric], started: datetime) -> None:
    """Stamped with the run's start, so a run lands in the time bucket of its schedule."""
    metrics.emit(run_metrics, {metrics.FUNCTION_DIMENSION: metrics.function_name(os.environ)}, started)
