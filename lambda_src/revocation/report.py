"""The run's summary: one JSON-ready dict for the log line, the SNS message and the return value.

Counts are exact. Lists of names and key ids hold at most ``LIST_LIMIT`` entries each, so that the
line stays far below CloudWatch's event size limit with thousands of users. Key ids and user
names appear; no secret ever does (the revocation never sees one).
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from .run import RevocationReport, SkipReason

LIST_LIMIT = 100


def summary(report: RevocationReport, duration_seconds: float) -> dict[str, object]:
    keys = [key for user in report.users for key in user.keys]
    results = Counter(key.result for key in keys)
    skipped = {
        reason: sorted(user.user for user in report.users if user.skipped == reason)
        for reason in get_args(SkipReason)
    }
    revoked = [key for key in keys if key.result in ("deleted", "deactivated")]
    failures = report.failures
    return {
        "dry_run": report.dry_run,
        "action": report.action,
        "groups": list(report.groups),
        "users_scanned": len(report.users),
        "keys_deleted": results["deleted"],
        "keys_deactivated": results["deactivated"],
        "keys_already_gone": results["already_gone"],
        "keys_spared_young": results["spared_young"],
        "keys_inactive_marked": results["inactive_marked"],
        "keys_inactive_waiting": results["inactive_waiting"],
        "skipped": {reason: len(names) for reason, names in skipped.items()},
        "skipped_users": {reason: names[:LIST_LIMIT] for reason, names in skipped.items() if names},
        "revoked_keys": [
            {"user": key.user, "key_id": key.key_id, "result": key.result} for key in revoked[:LIST_LIMIT]
        ],
        "error_count": len(failures),
        "errors": [{"subject": f.subject, "error": f.error} for f in failures[:LIST_LIMIT]],
        "duration_seconds": round(duration_seconds, 3),
    }
