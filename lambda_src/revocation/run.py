"""Weekly revocation of developers' access keys: who is in scope, which keys go, what happened.

One run:

1. list the members of every exempt group (``exempt_groups``), every page; if any of these
   listings fails or is incomplete the run stops here, before any key is touched: an exemption
   read in part could revoke an exempt user;
2. list the members of every revocation group, every page, and de-duplicate them. A group whose
   listing fails (after the client's retries) or is incomplete is an error naming it, and none of
   what was read of it is used. Its members are still handled if they are in another group that
   was read completely: membership only ever adds a user to the revocation, so a group that could
   not be read never makes anyone exempt, and a user in a complete group is due whatever the other
   group says;
3. handle each user on a bounded thread pool:

   a. protected users (the rotation machine users), listed exempt users and members of an exempt
      group are skipped without any IAM call;
   b. ``ListAccessKeys``; keys younger than the minimum age are spared;
   c. only when a key is due: ``ListUserTags`` when the tag check is on or in deactivate mode;
      a user carrying the exemption tag is skipped;
   d. delete mode: each due key is deleted. Deactivate mode (``_deactivate_mode``): an Active key
      is marked (tag ``key-revocation:deactivated:<key id>`` = the run's time) and made Inactive;
      an Inactive key is deleted only when its mark is at least ``deactivation_grace_days`` old,
      so a duplicate delivery or a re-run the same night deletes nothing; an Inactive key without
      a (valid) mark, e.g. deactivated by a human, gets one now and is deleted a grace period later.

IAM compares user names and tag keys without regard to case, so this module does too: a
protected or exempt user is never revoked because of how its name was spelled in the settings.
``NoSuchEntity`` (a user or key removed meanwhile) counts as done. Any other error is recorded
for that user or key and the run goes on; the caller raises at the end when anything failed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, Mapping

from ..common.errors import describe
from ..common.keys import AccessKey
from .ports import Iam, NoSuchEntity
from .settings import DEACTIVATED_TAG_PREFIX, Action, RevocationSettings

SkipReason = Literal["protected", "exempt_list", "exempt_group", "exempt_tag", "user_gone"]
KeyResult = Literal[
    "deleted",
    "deactivated",
    "already_gone",
    "spared_young",
    "inactive_marked",  # Inactive without the tool's mark (a human's doing): marked now, deleted later
    "inactive_waiting",  # deactivated less than the grace period ago: left alone
]


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
class RevocationReport:
    groups: tuple[str, ...]
    action: Action
    dry_run: bool
    users: tuple[UserOutcome, ...]
    group_failures: tuple[Failure, ...]

    @property
    def failures(self) -> tuple[Failure, ...]:
        return self.group_failures + tuple(f for user in self.users for f in user.failures)


def run_revocation(settings: RevocationSettings, iam: Iam, now: datetime) -> RevocationReport:
    """Revoke the keys of every member of ``settings.groups``; ``now`` is timezone-aware."""
    groups = tuple(dict.fromkeys(settings.groups))
    exempt_members, exempt_failures = _members(tuple(dict.fromkeys(settings.exempt_groups)), iam, "revocation.exempt_groups")
    if exempt_failures:  # stop: never revoke on a partial picture of who is exempt
        stopped = Failure("run", "stopped before touching any key: an exempt group could not be read completely")
        return RevocationReport(groups, settings.action, settings.dry_run, (), exempt_failures + (stopped,))
    members, group_failures = _members(groups, iam, "revocation.groups")
    rules = _Rules(settings, now, exempt_members)
    workers = max(1, min(settings.max_workers, len(members)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="revoke") as pool:
        users = tuple(pool.map(lambda user: _revoke_user(user, rules, iam), members))
    return RevocationReport(
        groups=groups,
        action=settings.action,
        dry_run=settings.dry_run,
        users=users,
        group_failures=group_failures,
    )


def _members(groups: tuple[str, ...], iam: Iam, setting: str) -> tuple[list[str], tuple[Failure, ...]]:
    """Every member of the groups read completely, each once, sorted; and a failure per group that
    was not (nothing of it is used); one group failing does not stop the rest."""
    members: dict[str, None] = {}
    failures = []
    for group in groups:
        try:
            members.update(dict.fromkeys(iam.group_members(group)))
        except NoSuchEntity:
            failures.append(
                Failure(f"group {group}", f"IAM group {group!r} does not exist; {setting} must name existing groups")
            )
        except Exception as exc:  # recorded; none of its members is handled on its account
            failures.append(Failure(f"group {group}", f"listing its members failed: {describe(exc)}"))
    return sorted(members), tuple(failures)


class _Rules:
    """The settings turned into the questions asked about each user and key."""

    def __init__(self, settings: RevocationSettings, now: datetime, exempt_members: list[str]):
        self.protected = frozenset(name.casefold() for name in settings.protected_users)
        self.exempt = frozenset(name.casefold() for name in settings.exempt_users)
        self.exempt_by_group = frozenset(name.casefold() for name in exempt_members)
        self.exempt_tag = settings.exempt_tag_key.casefold() if settings.exempt_tag_key else None
        self.deactivate = settings.action == "deactivate"
        self.dry_run = settings.dry_run
        self.now = now
        self.born_after = now - timedelta(days=settings.min_key_age_days)
        self.grace = timedelta(days=settings.deactivation_grace_days)

    def skip_without_calls(self, user: str) -> SkipReason | None:
        folded = user.casefold()
        if folded in self.protected:
            return "protected"
        if folded in self.exempt:
            return "exempt_list"
        if folded in self.exempt_by_group:
            return "exempt_group"
        return None

    def is_young(self, key: AccessKey) -> bool:
        return key.created > self.born_after

    @property
    def needs_tags(self) -> bool:
        return bool(self.exempt_tag) or self.deactivate

    def carries_exempt_tag(self, tags: Mapping[str, str]) -> bool:
        return self.exempt_tag is not None and any(key.casefold() == self.exempt_tag for key in tags)

    def deactivated_at(self, tags: Mapping[str, str], key: AccessKey) -> datetime | None:
        """When the mark says the key was deactivated; None without a mark or with one that is not
        a time in the past (edited by hand): such a key is marked anew."""
        wanted = marker_tag(key.id).casefold()
        value = next((v for k, v in tags.items() if k.casefold() == wanted), None)
        try:
            when = datetime.strptime(value or "", _MARK_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return when if when <= self.now else None


_MARK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def marker_tag(key_id: str) -> str:
    """The user tag that records when the revocation deactivated this key."""
    return f"{DEACTIVATED_TAG_PREFIX}{key_id}"


def _revoke_user(user: str, rules: _Rules, iam: Iam) -> UserOutcome:
    skipped = rules.skip_without_calls(user)
    if skipped:
        return UserOutcome(user, skipped=skipped)
    try:
        keys = iam.access_keys(user)
        due = [key for key in keys if not rules.is_young(key)]
        tags = iam.user_tags(user) if due and rules.needs_tags else {}
        if rules.carries_exempt_tag(tags):
            return UserOutcome(user, skipped="exempt_tag")
    except NoSuchEntity:
        return UserOutcome(user, skipped="user_gone")
    except Exception as exc:  # one failing user does not stop the others
        return UserOutcome(user, failures=(Failure(f"user {user}", describe(exc)),))

    outcomes = [KeyOutcome(user, key.id, "spared_young") for key in keys if rules.is_young(key)]
    failures = []
    for key in due:
        try:
            result = _deactivate_mode(user, key, tags, rules, iam) if rules.deactivate else _delete(user, key, rules, iam)
        except NoSuchEntity:
            result = "already_gone"
        except Exception as exc:  # the user's other key is still revoked
            failures.append(Failure(f"key {key.id} of user {user}", describe(exc)))
            continue
        outcomes.append(KeyOutcome(user, key.id, result))
    return UserOutcome(user, keys=tuple(outcomes), failures=tuple(failures))


def _delete(user: str, key: AccessKey, rules: _Rules, iam: Iam) -> KeyResult:
    if not rules.dry_run:
        iam.delete_access_key(user, key.id)
    return "deleted"


def _deactivate_mode(user: str, key: AccessKey, tags: Mapping[str, str], rules: _Rules, iam: Iam) -> KeyResult:
    """Mark-then-deactivate an Active key; delete an Inactive one only a grace period after its mark.

    The mark is written before the key is deactivated: if deactivating fails, the next run finds
    the key Active and marks it anew, so a key is never Inactive for less than the grace period
    before deletion. The mark is removed after the key is deleted; a failure to remove it is
    reported, and a leftover mark for a key that no longer exists changes nothing.
    """
    mark = marker_tag(key.id)
    if key.status == "Active":
        if not rules.dry_run:
            iam.tag_user(user, mark, rules.now.strftime(_MARK_FORMAT))
            iam.deactivate_access_key(user, key.id)
        return "deactivated"
    since = rules.deactivated_at(tags, key)
    if since is None:
        if not rules.dry_run:
            iam.tag_user(user, mark, rules.now.strftime(_MARK_FORMAT))
        return "inactive_marked"
    if rules.now - since < rules.grace:
        return "inactive_waiting"
    if not rules.dry_run:
        iam.delete_access_key(user, key.id)
        iam.untag_user(user, mark)
    return "deleted"
