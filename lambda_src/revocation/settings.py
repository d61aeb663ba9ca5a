"""Settings of the revocation Lambda, read once from its environment.

The contract between the CDK construct (which writes these variables) and the Lambda code:

``REVOCATION_GROUPS``       JSON list of IAM group names whose members' keys are revoked (required)
``PROTECTED_USERS``         JSON list of IAM user names never touched: the rotation machine users ([])
``EXEMPT_USERS``            JSON list of IAM user names the operator exempts ([])
``EXEMPT_GROUPS``           JSON list of IAM group names whose members are exempt ([]); read completely
                            before anything is revoked, or the run stops
``EXEMPT_TAG_KEY``          users carrying this IAM tag (any value) are skipped (``key-revocation:exempt``;
                            empty string turns the tag check off)
``REVOCATION_ACTION``       ``delete`` (default) or ``deactivate`` (made Inactive, deleted by a run at least
                            ``DEACTIVATION_GRACE_DAYS`` later)
``DEACTIVATION_GRACE_DAYS`` days a key stays Inactive before a run deletes it in deactivate mode (6, at least 1:
                            with the weekly schedule, the next week's run)
``MIN_KEY_AGE_DAYS``        spare keys younger than this many days (0: revoke every key)
``MAX_WORKERS``             users processed at once (default 16, at most 64)
``NOTIFICATION_TOPIC_ARN``  optional SNS topic for the failure summary
``DRY_RUN``                 ``true`` to only report (false); the event can ask for it too

Organization mode (all absent: the function's own account, with its own role):

``REVOCATION_ACCOUNTS``     JSON list of 12-digit account ids, or ``organization`` (every ACTIVE account)
``ORGANIZATIONAL_UNIT_IDS`` with ``organization``: JSON list of OU ids whose accounts (nested OUs too) are revoked
``EXCLUDE_ACCOUNTS``        with ``organization``: JSON list of account ids skipped
``MEMBER_ROLE_ARN_PATTERN`` the member revocation role's ARN with ``{account}`` for the account id (required
                            with ``REVOCATION_ACCOUNTS``)
``ACCOUNT_WORKERS``         accounts handled at once (default 4, at most 16)

User names and the tag key are compared without regard to case, as IAM does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Mapping

from ..common.env import SettingsError, boolean, integer, string_list

Action = Literal["delete", "deactivate"]

_GROUP_NAME = re.compile(r"\A[\w+=,.@-]{1,128}\Z", re.ASCII)
_SNS_TOPIC_ARN = re.compile(r"\Aarn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]{1,256}\Z", re.ASCII)
MAX_WORKERS_LIMIT = 64  # more threads than this only earn IAM throttling
ACCOUNT_WORKERS_LIMIT = 16
_ACCOUNT_ID = re.compile(r"\A\d{12}\Z", re.ASCII)
_OU_ID = re.compile(r"\Aou-[0-9a-z]{4,32}-[a-z0-9]{8,32}\Z", re.ASCII)
_MEMBER_ROLE_ARN = re.compile(r"\Aarn:aws[\w-]*:iam::\{account\}:role/[\w+=,.@/-]+\Z", re.ASCII)
# Tags the revocation sets itself (the role may set no other): <prefix><access key id> = when it was
# deactivated (or first found Inactive). The exempt tag must not fall under it.
DEACTIVATED_TAG_PREFIX = "key-revocation:deactivated:"


@dataclass(frozen=True)
class RevocationSettings:
    groups: tuple[str, ...]
    protected_users: frozenset[str] = frozenset()
    exempt_users: frozenset[str] = frozenset()
    exempt_groups: tuple[str, ...] = ()
    exempt_tag_key: str | None = "key-revocation:exempt"
    action: Action = "delete"
    deactivation_grace_days: int = 6
    min_key_age_days: int = 0
    max_workers: int = 16
    notification_topic_arn: str | None = None
    dry_run: bool = False
    accounts: tuple[str, ...] | Literal["organization"] | None = None
    organizational_unit_ids: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    member_role_arn_pattern: str | None = None
    account_workers: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RevocationSettings":
        groups = _group_names(env, "REVOCATION_GROUPS", None)
        if not groups:
            raise SettingsError("REVOCATION_GROUPS must name at least one IAM group")
        exempt_groups = _group_names(env, "EXEMPT_GROUPS", [])
        exempt_tag_key = env.get("EXEMPT_TAG_KEY", "key-revocation:exempt") or None
        if exempt_tag_key and exempt_tag_key.casefold().startswith(DEACTIVATED_TAG_PREFIX):
            raise SettingsError(
                f"EXEMPT_TAG_KEY must not start with {DEACTIVATED_TAG_PREFIX!r} (the revocation's own tags), "
                f"got {exempt_tag_key!r}"
            )
        action = env.get("REVOCATION_ACTION") or "delete"
        if action not in ("delete", "deactivate"):
            raise SettingsError(f"REVOCATION_ACTION must be 'delete' or 'deactivate', got {action!r}")
        topic_arn = env.get("NOTIFICATION_TOPIC_ARN") or None
        if topic_arn and not _SNS_TOPIC_ARN.match(topic_arn):
            raise SettingsError(f"NOTIFICATION_TOPIC_ARN must be an SNS topic ARN, got {topic_arn!r}")
        max_workers = integer(env, "MAX_WORKERS", 16, minimum=1)
        if max_workers > MAX_WORKERS_LIMIT:
            raise SettingsError(f"MAX_WORKERS must be at most {MAX_WORKERS_LIMIT}, got {max_workers}")
        return cls(
            groups=groups,
            protected_users=frozenset(string_list(env, "PROTECTED_USERS", [])),
            exempt_users=frozenset(string_list(env, "EXEMPT_USERS", [])),
            exempt_groups=exempt_groups,
            exempt_tag_key=exempt_tag_key,
            action=action,
            deactivation_grace_days=integer(env, "DEACTIVATION_GRACE_DAYS", 6, minimum=1),
            min_key_age_days=integer(env, "MIN_KEY_AGE_DAYS", 0),
            max_workers=max_workers,
            notification_topic_arn=topic_arn,
            dry_run=boolean(env, "DRY_RUN", False),
            **_organization(env),
        )


def _organization(env: Mapping[str, str]) -> dict[str, object]:
    raw = env.get("REVOCATION_ACCOUNTS") or None
    if raw is None:
        for name in ("ORGANIZATIONAL_UNIT_IDS", "EXCLUDE_ACCOUNTS", "MEMBER_ROLE_ARN_PATTERN"):
            if env.get(name):
                raise SettingsError(f"{name} needs REVOCATION_ACCOUNTS")
        return {}
    accounts: tuple[str, ...] | str = "organization" if raw == "organization" else _ids(env, "REVOCATION_ACCOUNTS", _ACCOUNT_ID)
    if not accounts:
        raise SettingsError("REVOCATION_ACCOUNTS must name at least one account, or be 'organization'")
    ou_ids = _ids(env, "ORGANIZATIONAL_UNIT_IDS", _OU_ID, [])
    exclude = _ids(env, "EXCLUDE_ACCOUNTS", _ACCOUNT_ID, [])
    if accounts != "organization" and (ou_ids or exclude):
        raise SettingsError("ORGANIZATIONAL_UNIT_IDS and EXCLUDE_ACCOUNTS need REVOCATION_ACCOUNTS=organization")
    pattern = env.get("MEMBER_ROLE_ARN_PATTERN") or ""
    if not _MEMBER_ROLE_ARN.match(pattern):
        raise SettingsError(
            "MEMBER_ROLE_ARN_PATTERN must be the member role's ARN with {account} for the account id, "
            f"like 'arn:aws:iam::{{account}}:role/gitlab-key-rotation/KeyRotationMember-revocation', got {pattern!r}"
        )
    workers = integer(env, "ACCOUNT_WORKERS", 4, minimum=1)
    if workers > ACCOUNT_WORKERS_LIMIT:
        raise SettingsError(f"ACCOUNT_WORKERS must be at most {ACCOUNT_WORKERS_LIMIT}, got {workers}")
    return {
        "accounts": accounts,
        "organizational_unit_ids": ou_ids,
        "exclude_accounts": exclude,
        "member_role_arn_pattern": pattern,
        "account_workers": workers,
    }


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], default: list[str] | None = None) -> tuple[str, ...]:
    values = string_list(env, name, default)
    for value in values:
        if not pattern.match(value):
            raise SettingsError(f"{name} holds {value!r}, which is not an id like {pattern.pattern!r}")
    if len(set(values)) != len(values):
        raise SettingsError(f"{name} lists an id more than once: {list(values)}")
    return values


def _group_names(env: Mapping[str, str], name: str, default: list[str] | None) -> tuple[str, ...]:
    groups = string_list(env, name, default)
    for group in groups:
        if not _GROUP_NAME.match(group):
            raise SettingsError(
                f"{name} holds {group!r}, which is not an IAM group name (1 to 128 of letters, digits and +=,.@_-)"
            )
    return groups
