"""The composition root of the revocation Lambda: real adapters in, the run's summary out."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import boto3

from ..common.assume_role import MemberSessions
from ..common.summary import log_summary
from .accounts import account_summaries, revoke_in_accounts, total_summary
from .aws import Boto3Iam, iam_client, publish_failure
from .organization import CLIENT_CONFIG as ORGANIZATIONS_CONFIG
from .organization import Boto3Organization
from .report import summary
from .run import run_revocation
from .settings import RevocationSettings

_log = logging.getLogger(__name__)  # at the level of the package's logger (``common.summary``)


def revoke(settings: RevocationSettings, run_id: str = "") -> dict[str, object]:
    """Revoke, summarise, and publish the summary to the topic (if any) when something failed.

    ``notification`` in the result says whether the failure message was sent. With
    ``settings.accounts`` each account is revoked through its member role (sessions named after
    ``run_id``), logs its own ``revocation account summary`` line, and the result is the total.
    """
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    if settings.accounts is None:
        iam = Boto3Iam(iam_client(settings.max_workers))
        result = summary(run_revocation(settings, iam, now=now), time.monotonic() - started)
    else:
        result = _run_in_accounts(settings, run_id, now, started)
    result["notification"] = _notify(settings, result)
    return result


def _run_in_accounts(settings: RevocationSettings, run_id: str, now: datetime, started: float) -> dict[str, object]:
    sessions = MemberSessions(settings.member_role_arn_pattern or "", "revocation", run_id)
    organization = (
        Boto3Organization(boto3.client("organizations", config=ORGANIZATIONS_CONFIG))
        if settings.accounts == "organization"
        else None
    )
    accounts_run = revoke_in_accounts(
        settings,
        lambda account: Boto3Iam(iam_client(settings.max_workers, sessions.session(account))),
        now,
        organization,
    )
    summaries = account_summaries(accounts_run)
    for entry in summaries:
        log_summary(_log, "revocation account summary", entry, ok=not entry["error_count"])
    return total_summary(settings, summaries, accounts_run.listing_failure, time.monotonic() - started)


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
