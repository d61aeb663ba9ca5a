"""The rotation Lambda's entry point: environment and event in, one JSON summary line out.

It raises when anything failed, so the Lambda's Errors metric (and its alarm) fires. The summary
holds user names, actions with key ids, targets and times: never a secret.
"""

from __future__ import annotations

import json
import logging
import os
import uuid

from ..common.env import SettingsError
from .errors import RotationError
from .request import BadEventError, parse_event
from .settings import RotationSettings
from .wiring import rotate

logger = logging.getLogger(__package__)

SUMMARY_EVENT = "rotation_summary"


class RotationRunFailed(RotationError):
    """Raised at the end of a run that failed: the message is the run's failure summary."""


def handler(event: object, context: object) -> dict:
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    run_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    try:
        settings = RotationSettings.from_env(os.environ)
        request = parse_event(event, run_id, settings.dry_run)
    except (SettingsError, BadEventError) as exc:
        _log_summary({"event": SUMMARY_EVENT, "run_id": run_id, "ok": False, "error": str(exc)})
        raise
    report = rotate(settings, request)
    summary = report.as_json()
    _log_summary(summary)
    if report.failed:
        raise RotationRunFailed(report.failure_summary())
    return summary


def _log_summary(summary: dict) -> None:
    level = logging.INFO if summary["ok"] else logging.ERROR
    logger.log(level, json.dumps(summary, sort_keys=True), extra={"event": SUMMARY_EVENT, "ok": summary["ok"]})
