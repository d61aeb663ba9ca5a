"""Weekly revocation of developers' access keys: who is in scope, which keys go, what happened.

One run: list the members of every configured group (each group once, every page), de-duplicate
the users, then handle each user on a bounded thread pool:

1. protected users (the rotation machine users) and users listed as exempt are skipped without
   any IAM call;
2. ``ListAccessKeys``; keys younger than the minimum age are spared;
3. only when a key is due, and only when the tag check is on, ``ListUserTags``: a user carrying
   the exemption tag is skipped;
4. each due key is deleted, or in ``deactivate`` mode made Inactive (a key that is Inactive
   already, i.e. since the previous run, is deleted).

IAM compares user names and tag keys without regard to case, so this module does too: a
protected or exempt user is never revoked because of how its name was spelled in the settings.
``NoSuchEntity`` (a user or key removed meanwhile) counts as done. Any other error is recorded
for that user or key and the run goes on; the caller raises at the end when anything failed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .iam_port import AccessKey, Iam, NoSuchEntity
from .settings import Action, RevocationSettings

SkipReason = Literal["protected", "exempt_list", "exempt_tag", "user_gone"]
KeyResult = Literal["deleted", "deactivated", "already_gone", "spared_young"]


@dataclass(frozen=True)
class KeyOutcome:
    """What happened to one key (in a dry run: what would have happened)."""

    user: str
    key_id: str
    result: KeyResult


@dataclass(frozen=True)
class Failure:
    """Something that could not be done: ``subject`` names the group, user or key."""

    subject: str
    error: str


@dataclass(frozen=True)
class UserOutcome:
    user: str
    skipped: SkipReason | None = None
    keys: tuple[KeyOutcome, ...] = ()
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True)
class RunReport:
    groups: tuple[str, ...]
    action: Action
    dry_run: bool
    users: tuple[UserOutcome, ...]
    group_failures: tuple[Failure, ...]

    @property
    def failures(self) -> tuple[Failure, ...]:
        return self.group_failures + tuple(f for user in self.users for f in user.failures)


def revoke_developer_keys(settings: RevocationSettings, iam: Iam, now: datetime) -> RunReport:
    """Revoke the keys of every member of ``settings.groups``; ``now`` is timezone-aware."""
    groups = tuple(dict.fromkeys(settings.groups))
    members, group_failures = _members(groups, iam)
    rules = _Rules(settings, now)
    workers = max(1, min(settings.max_workers, len(members)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="revoke") as pool:
        users = tuple(pool.map(lambda user: _revoke_user(user, rules, iam), members))
    return RunReport(
        groups=groups,
        action=settings.action,
        dry_run=settings.dry_run,
        users=users,
        group_failures=group_failures,
    )


def _members(groups: tuple[str, ...], iam: Iam) -> tuple[list[str], tuple[Failure, ...]]:
    """Every member of every group, each once, sorted; a group that fails does not stop the rest."""
    members: dict[str, None] = {}
    failures = []
    for group in groups:
        try:
            members.update(dict.fromkeys(iam.group_members(group)))
        except NoSuchEntity:
            failures.append(
                Failure(
                    f"group {group}",
                    f"IAM group {group!r} does not exist; revocation.groups must name existing groups",
                )
            )
        except Exception as exc:  # recorded, the other groups still run
            failures.append(Failure(f"group {group}", _describe(exc)))
    return sorted(members), tuple(failures)


class _Rules:
    """The settings turned into the questions asked about each user and key."""

    def __init__(self, settings: RevocationSettings, now: datetime):
        self.protected = frozenset(name.casefold() for name in settings.protected_users)
        self.exempt = frozenset(name.casefold() for name in settings.exempt_users)
        self.exempt_tag = settings.exempt_tag_key.casefold() if settings.exempt_tag_key else None
        self.deactivate = settings.action == "deactivate"
        self.dry_run = settings.dry_run
        self.born_after = now - timedelta(days=settings.min_key_age_days)

    def skip_without_calls(self, user: str) -> SkipReason | None:
        folded = user.casefold()
        if folded in self.protected:
            return "protected"
        if folded in self.exempt:
            return "exempt_list"
        return None

    def is_young(self, key: AccessKey) -> bool:
        return key.created > self.born_after

    def carries_exempt_tag(self, tag_keys: frozenset[str]) -> bool:
        return any(key.casefold() == self.exempt_tag for key in tag_keys)


def _revoke_user(user: str, rules: _Rules, iam: Iam) -> UserOutcome:
    skipped = rules.skip_without_calls(user)
    if skipped:
        return UserOutcome(user, skipped=skipped)
    try:
        keys = iam.access_keys(user)
        due = [key for key in keys if not rules.is_young(key)]
        if due and rules.exempt_tag and rules.carries_exempt_tag(iam.user_tag_keys(user)):
            return UserOutcome(user, skipped="exempt_tag")
    except NoSuchEntity:
        return UserOutcome(user, skipped="user_gone")
    except Exception as exc:  # one failing user does not stop the others
        return UserOutcome(user, failures=(Failure(f"user {user}", _describe(exc)),))

    outcomes = [KeyOutcome(user, key.key_id, "spared_young") for key in keys if rules.is_young(key)]
    failures = []
    for key in due:
        try:
            outcomes.append(_revoke_key(user, key, rules, iam))
        except Exception as exc:  # the user's other key is still revoked
            failures.append(Failure(f"key {key.key_id} of user {user}", _describe(exc)))
    return UserOutcome(user, keys=tuple(outcomes), failures=tuple(failures))


def _revoke_key(user: str, key: AccessKey, rules: _Rules, iam: Iam) -> KeyOutcome:
    deactivate = rules.deactivate and key.status == "Active"
    result: KeyResult = "deactivated" if deactivate else "deleted"
    if rules.dry_run:
        return KeyOutcome(user, key.key_id, result)
    try:
        if deactivate:
            iam.deactivate_access_key(user, key.key_id)
        else:
            iam.delete_access_key(user, key.key_id)
    except NoSuchEntity:
        return KeyOutcome(user, key.key_id, "already_gone")
    return KeyOutcome(user, key.key_id, result)


def _describe(exc: Exception) -> str:
    """The error for the summary: its type and message (IAM errors carry names and ARNs, no secret)."""
    return f"{type(exc).__name__}: {exc}"
