"""The rotation Lambda's entry point: settings (settings.json and environment) and event in, one
summary line out (``rotation summary``, its fields top-level: ``common.summary``).

It raises when anything failed, so the Lambda's Errors metric (and its alarm) fires. The summary
holds user names, actions with key ids, targets and times: never a secret. Before it, the run's
metrics go to stdout in the embedded metric format (``common.metrics``): one document for the run
(dimension ``Function``) and one per user with its current key's age (``Function`` + ``IamUser``,
and ``Function`` alone, whose Maximum is the oldest key of any user).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from ..common import metrics
from ..common.events import EventError
from ..common.summary import handler_logger, log_summary
from .errors import RotationError
from .request import parse_event
from .settings import RotationSettings, SettingsError
from .composition import rotate

logger = handler_logger(__name__)

SUMMARY_MESSAGE = "rotation summary"
SUMMARY_EVENT = "rotation_summary"  # the summary's ``event`` field


class RotationRunFailed(RotationError):
    """Raised at the end of a run that failed: the message is the run's failure summary."""


def handler(event: object, context: object) -> dict:
    run_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    started = datetime.now(UTC)
    try:
        settings = RotationSettings.load(os.environ)
        request = parse_event(event, run_id, settings.dry_run)
    except (SettingsError, EventError) as exc:
        _emit_run_metrics(
            [metrics.Metric("RunSucceeded", 0), metrics.Metric("RunFailed", 1), metrics.Metric("Errors", 1)], started
        )
        refused = {"event": SUMMARY_EVENT, "run_id": run_id, "ok": False, "error": str(exc)}
        log_summary(logger, SUMMARY_MESSAGE, refused, ok=False)
        raise
    report = rotate(settings, request, _remaining_seconds(context))
    _emit_run_metrics(report.metrics(), started)
    for user in report.users:
        if user.current_key_age_days is not None:
            metrics.emit(
                [metrics.Metric("CurrentKeyAgeDays", user.current_key_age_days, "None")],
                {metrics.FUNCTION_DIMENSION: metrics.function_name(os.environ), "IamUser": user.iam_user},
                started,
                dimension_sets=[[metrics.FUNCTION_DIMENSION, "IamUser"], [metrics.FUNCTION_DIMENSION]],
            )
    summary = report.as_json()
    log_summary(logger, SUMMARY_MESSAGE, summary, ok=summary["ok"])
    if report.failed:
        raise RotationRunFailed(report.failure_summary())
    return summary


def _remaining_seconds(context: object) -> Callable[[], float] | None:
    """The Lambda's remaining time in seconds, from its context (None outside Lambda)."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining_ms is None else lambda: remaining_ms() / 1000


def _emit_run_metrics(run_metrics: list[metrics.Metric], started: datetime) -> None:
    """Stamped with the run's start, so a run lands in the time bucket of its schedule."""
    metrics.emit(run_metrics, {metrics.FUNCTION_DIMENSION: metrics.function_name(os.environ)}, started)
