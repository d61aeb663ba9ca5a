"""The composition root of the revocation Lambda: real adapters in, the run's summary out."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from .aws import Boto3Iam, iam_client, publish_failure
from .logic import revoke_developer_keys
from .report import summary
from .settings import RevocationSettings


def run(settings: RevocationSettings) -> dict[str, object]:
    """Revoke, summarise, and publish the summary to the topic (if any) when something failed.

    ``notification`` in the result says whether the failure message was sent.
    """
    started = time.monotonic()
    iam = Boto3Iam(iam_client(settings.max_workers))
    report = revoke_developer_keys(settings, iam, now=datetime.now(timezone.utc))
    result = summary(report, time.monotonic() - started)
    result["notification"] = _notify(settings, result)
    return result


def _notify(settings: RevocationSettings, result: dict[str, object]) -> str:
    if not result["error_count"]:
        return "not_needed"
    if not settings.notification_topic_arn:
        return "not_configured"
    try:
        publish_failure(settings.notification_topic_arn, result)
    except Exception as exc:  # the run raises anyway; the log line says why no message came
        return f"failed: {type(exc).__name__}: {exc}"
    return "sent"
