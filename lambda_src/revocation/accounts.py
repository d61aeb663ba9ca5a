"""Revocation across accounts (organization mode): the same rules, once per member account.

The accounts are the listed ones, or, with ``accounts`` = ``organization``, every ACTIVE
account of the organization (or of ``organizational_unit_ids``, nested OUs included) minus
``exclude_accounts``, listed afresh at each run. ``account_workers`` accounts are handled at once,
each by ``revocation.run.run_revocation`` with its own IAM (the account's member role) and
its own ``MAX_WORKERS`` users at once. An account whose role cannot be assumed, or whose run fails
as a whole, is an error naming the account; the other accounts go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..common.errors import describe
from .ports import Iam
from .run import Failure, RevocationReport, run_revocation
from .report import LIST_LIMIT, summary
from .settings import RevocationSettings

# The counts of an account's summary that the run's total adds up.
_COUNTS = (
    "users_scanned", "keys_deleted", "keys_deactivated", "keys_already_gone", "keys_spared_young",
    "keys_inactive_marked", "keys_inactive_waiting",
)  # fmt: skip


class Organization(Protocol):
    def active_accounts(self, parent_ids: Sequence[str]) -> list[str]:
        """Ids of the ACTIVE accounts of the organization (every page), or of the OUs in
        ``parent_ids`` and their nested OUs when it is not empty."""


@dataclass(frozen=True)
class AccountRun:
    """One account's run: its report, or why the account could not be handled at all."""

    account: str
    report: RevocationReport | None
    error: str | None
    duration_seconds: float


@dataclass(frozen=True)
class AccountsRun:
    accounts: tuple[AccountRun, ...]
    listing_failure: Failure | None  # the organization's accounts could not be listed


def accounts_to_revoke(settings: RevocationSettings, organization: Organization | None) -> list[str]:
    """The accounts of this run, sorted: the listed ones, or the organization's minus the excluded."""
    if settings.accounts != "organization":
        return sorted(settings.accounts or ())
    if organization is None:
        raise ValueError("accounts 'organization' needs an Organizations client")
    excluded = set(settings.exclude_accounts)
    return sorted(set(organization.active_accounts(settings.organizational_unit_ids)) - excluded)


def revoke_in_accounts(
    settings: RevocationSettings,
    iam_for: Callable[[str], Iam],
    now: datetime,
    organization: Organization | None = None,
) -> AccountsRun:
    """Revoke in every account of the run; ``iam_for(account)`` raises when the account is out of reach."""
    try:
        accounts = accounts_to_revoke(settings, organization)
    except Exception as exc:  # nothing to revoke without the list; the run reports it
        return AccountsRun((), Failure("organization", f"cannot list the organization's accounts: {describe(exc)}"))

    def one(account: str) -> AccountRun:
        started = time.monotonic()
        try:
            report = run_revocation(settings, iam_for(account), now)
        except Exception as exc:  # this account is an error; the others go on
            return AccountRun(account, None, describe(exc), time.monotonic() - started)
        return AccountRun(account, report, None, time.monotonic() - started)

    workers = max(1, min(settings.account_workers, len(accounts)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="account") as pool:
        runs = tuple(pool.map(one, accounts))
    return AccountsRun(runs, None)


def account_summaries(run: AccountsRun) -> list[dict[str, object]]:
    """Each account's own summary (``revocation.report.summary`` plus ``account``), in account order;
    an account out of reach has ``error_count`` 1 and the reason."""
    summaries = []
    for account in run.accounts:
        if account.report is None:
            entry: dict[str, object] = {
                "error_count": 1,
                "errors": [{"subject": f"account {account.account}", "error": account.error}],
                "duration_seconds": round(account.duration_seconds, 3),
            }
        else:
            entry = summary(account.report, account.duration_seconds)
        summaries.append({"account": account.account, **entry})
    return summaries


def total_summary(
    settings: RevocationSettings, summaries: list[dict[str, object]], listing_failure: Failure | None, duration: float
) -> dict[str, object]:
    """The run's total over the accounts: the fields of a one-account summary (counts added up,
    lists capped, errors prefixed with their account), plus ``account_count`` and ``accounts``
    (the counts of each account, at most ``LIST_LIMIT``)."""
    errors = [{"subject": listing_failure.subject, "error": listing_failure.error}] if listing_failure else []
    revoked, skipped, skipped_users = [], {}, {}
    for entry in summaries:
        where = f"account {entry['account']}"
        errors += [
            {"subject": error["subject"] if error["subject"] == where else f"{where}: {error['subject']}", "error": error["error"]}
            for error in entry["errors"]
        ]
        revoked += [{"account": entry["account"], **key} for key in entry.get("revoked_keys", [])]
        for reason, count in entry.get("skipped", {}).items():
            skipped[reason] = skipped.get(reason, 0) + count
        for reason, names in entry.get("skipped_users", {}).items():
            skipped_users.setdefault(reason, []).extend(f"{entry['account']}/{name}" for name in names)
    error_count = int(listing_failure is not None) + sum(int(entry["error_count"]) for entry in summaries)
    return {
        "dry_run": settings.dry_run,
        "action": settings.action,
        "groups": list(dict.fromkeys(settings.groups)),
        **{count: sum(int(entry.get(count, 0)) for entry in summaries) for count in _COUNTS},
        "skipped": skipped,
        "skipped_users": {reason: names[:LIST_LIMIT] for reason, names in skipped_users.items()},
        "revoked_keys": revoked[:LIST_LIMIT],
        "error_count": error_count,
        "errors": errors[:LIST_LIMIT],
        "duration_seconds": round(duration, 3),
        "account_count": len(summaries),
        "accounts": [
            {key: entry[key] for key in ("account", *_COUNTS, "error_count", "duration_seconds") if key in entry}
            for entry in summaries[:LIST_LIMIT]
        ],
    }
