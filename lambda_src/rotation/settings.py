"""Settings of the rotation Lambda, read once from its environment.

This module is the contract between the CDK construct (which writes these variables) and the
Lambda code (which reads them). The environment carries names, ARNs and plain settings only,
never a secret: the GitLab token lives in the secret named by ``GITLAB_TOKEN_SECRET_ARN``.

Variables:

``GITLAB_URL``                  base URL of GitLab, https only (e.g. ``https://gitlab.com``)
``GITLAB_TOKEN_SECRET_ARN``     secret whose JSON holds ``{"GITLAB_TOKEN": "..."}``
``GITLAB_CA_BUNDLE``            optional path of a PEM bundle to trust for GitLab (self-managed)
``ROTATION_USERS``              JSON list of users, see :class:`RotatedUser` / :class:`GitLabTarget`
``ROTATION_PERIOD_DAYS``        rotate when the current key is older (default 30)
``GRACE_PERIOD_HOURS``          previous key stays Active this long after the new one reached GitLab (24)
``DELETION_WINDOW_DAYS``        an Inactive previous key is deleted this long after it was deactivated (7)
``TOKEN_EXPIRY_WARNING_DAYS``   warn from this many days before the GitLab token expires (30)
``ROTATE_GITLAB_TOKEN``         ``true`` to rotate the GitLab token itself when it is about to expire (false)
``NOTIFICATION_TOPIC_ARN``      optional SNS topic for warnings and failures
``NOTIFY_ON_SUCCESS``           ``true`` to also publish a message after a successful rotation (false)
``DRY_RUN``                     ``true`` to only report the plan (false); the event can ask for it too
``MEMBER_ROLE_ARN_PATTERN``     organization mode: the member rotation role's ARN with ``{account}``; a user
                                with ``account`` in ``ROTATION_USERS`` is reached through that account's role
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Mapping

from ..common.env import SettingsError, boolean, integer, json_value, required

TargetKind = Literal["group", "project"]

_ACCOUNT_ID = re.compile(r"\A\d{12}\Z", re.ASCII)
_MEMBER_ROLE_ARN = re.compile(r"\Aarn:aws[\w-]*:iam::\{account\}:role/[\w+=,.@/-]+\Z", re.ASCII)
_VARIABLE_KEY = re.compile(r"\A[a-zA-Z0-9_]{1,255}\Z")
# GitLab's environment_scope: an environment name or a wildcard pattern (letters, digits, _ / $ { } . space - *).
_ENVIRONMENT_SCOPE = re.compile(r"\A[a-zA-Z0-9_/${}. *-]{1,255}\Z")


@dataclass(frozen=True)
class GitLabTarget:
    """One GitLab group or project whose CI/CD variables receive the key."""

    kind: TargetKind
    id: str  # numeric id or full path ("my-group/sub"); the client URL-encodes it
    access_key_id_variable: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_variable: str = "AWS_SECRET_ACCESS_KEY"
    environment_scope: str = "*"
    protected: bool = True
    masked: bool = True
    raw: bool = True
    description: str = "Managed by gitlab-key-rotation; do not edit by hand."

    @property
    def label(self) -> str:
        """Human-readable name for logs and errors, e.g. ``group my-group (scope *)``."""
        return f"{self.kind} {self.id} (scope {self.environment_scope})"


@dataclass(frozen=True)
class RotatedUser:
    """An IAM machine user, the secret holding its key state, and where its key goes."""

    iam_user: str
    state_secret_arn: str
    targets: tuple[GitLabTarget, ...]
    account: str | None = None  # organization mode: the user's account, reached by its member role


@dataclass(frozen=True)
class RotationSettings:
    gitlab_url: str
    gitlab_token_secret_arn: str
    users: tuple[RotatedUser, ...]
    gitlab_ca_bundle: str | None = None
    rotation_period_days: int = 30
    grace_period_hours: int = 24
    deletion_window_days: int = 7
    token_expiry_warning_days: int = 30
    rotate_gitlab_token: bool = False
    notification_topic_arn: str | None = None
    notify_on_success: bool = False
    dry_run: bool = False
    member_role_arn_pattern: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RotationSettings":
        gitlab_url = required(env, "GITLAB_URL").rstrip("/")
        if not gitlab_url.startswith("https://"):
            raise SettingsError(f"GITLAB_URL must start with https://, got {gitlab_url!r}")
        users = _parse_users(json_value(env, "ROTATION_USERS"))
        return cls(
            gitlab_url=gitlab_url,
            gitlab_token_secret_arn=required(env, "GITLAB_TOKEN_SECRET_ARN"),
            users=users,
            gitlab_ca_bundle=env.get("GITLAB_CA_BUNDLE") or None,
            rotation_period_days=integer(env, "ROTATION_PERIOD_DAYS", 30, minimum=1),
            grace_period_hours=integer(env, "GRACE_PERIOD_HOURS", 24),
            deletion_window_days=integer(env, "DELETION_WINDOW_DAYS", 7),
            token_expiry_warning_days=integer(env, "TOKEN_EXPIRY_WARNING_DAYS", 30),
            rotate_gitlab_token=boolean(env, "ROTATE_GITLAB_TOKEN", False),
            notification_topic_arn=env.get("NOTIFICATION_TOPIC_ARN") or None,
            notify_on_success=boolean(env, "NOTIFY_ON_SUCCESS", False),
            dry_run=boolean(env, "DRY_RUN", False),
            **_member_role(env, users),
        )


def _parse_users(data: object) -> tuple[RotatedUser, ...]:
    if not isinstance(data, list) or not data:
        raise SettingsError("ROTATION_USERS must be a non-empty JSON list of users")
    users = []
    for index, item in enumerate(data):
        where = f"ROTATION_USERS[{index}]"
        if not isinstance(item, dict):
            raise SettingsError(f"{where} must be an object, got {type(item).__name__}")
        iam_user = item.get("iam_user")
        state_secret_arn = item.get("state_secret_arn")
        targets = item.get("targets")
        if not isinstance(iam_user, str) or not iam_user:
            raise SettingsError(f"{where}.iam_user must be a non-empty string")
        if not isinstance(state_secret_arn, str) or not state_secret_arn:
            raise SettingsError(f"{where}.state_secret_arn must be a non-empty string")
        if not isinstance(targets, list) or not targets:
            raise SettingsError(f"{where}.targets must be a non-empty list")
        account = item.get("account")
        if account is not None and (not isinstance(account, str) or not _ACCOUNT_ID.match(account)):
            raise SettingsError(f"{where}.account must be a 12-digit AWS account id, got {account!r}")
        users.append(
            RotatedUser(
                iam_user=iam_user,
                state_secret_arn=state_secret_arn,
                targets=tuple(_parse_target(t, f"{where}.targets[{i}]") for i, t in enumerate(targets)),
                account=account,
            )
        )
    return tuple(users)


def _member_role(env: Mapping[str, str], users: tuple[RotatedUser, ...]) -> dict[str, str]:
    pattern = env.get("MEMBER_ROLE_ARN_PATTERN") or None
    if not any(user.account for user in users):
        return {"member_role_arn_pattern": pattern} if pattern else {}
    if pattern is None or not _MEMBER_ROLE_ARN.match(pattern):
        raise SettingsError(
            "MEMBER_ROLE_ARN_PATTERN must be the member rotation role's ARN with {account} for the account id "
            f"(users of ROTATION_USERS have an account), got {pattern!r}"
        )
    return {"member_role_arn_pattern": pattern}


def _parse_target(item: object, where: str) -> GitLabTarget:
    if not isinstance(item, dict):
        raise SettingsError(f"{where} must be an object, got {type(item).__name__}")
    unknown = set(item) - set(GitLabTarget.__dataclass_fields__)
    if unknown:
        raise SettingsError(f"{where} has unknown keys {sorted(unknown)}")
    kind = item.get("kind")
    if kind not in ("group", "project"):
        raise SettingsError(f"{where}.kind must be 'group' or 'project', got {kind!r}")
    target_id = item.get("id")
    if isinstance(target_id, int) and not isinstance(target_id, bool):
        target_id = str(target_id)
    if not isinstance(target_id, str) or not target_id.strip("/"):
        raise SettingsError(f"{where}.id must be a numeric id or a full path, got {target_id!r}")
    target = GitLabTarget(**{**item, "kind": kind, "id": target_id.strip("/")})
    for name in ("access_key_id_variable", "secret_access_key_variable"):
        if not _VARIABLE_KEY.match(getattr(target, name)):
            raise SettingsError(f"{where}.{name} must match [a-zA-Z0-9_]{{1,255}}, got {getattr(target, name)!r}")
    if target.access_key_id_variable == target.secret_access_key_variable:
        raise SettingsError(f"{where}: the key id and secret variables must have different names")
    if not isinstance(target.environment_scope, str) or not _ENVIRONMENT_SCOPE.match(target.environment_scope):
        raise SettingsError(
            f"{where}.environment_scope must be 1 to 255 characters of letters, digits and _ / $ {{ }} . - * or space "
            f"(an environment name or a pattern such as production or review/*), got {target.environment_scope!r}"
        )
    if len(target.description) > 255:
        raise SettingsError(f"{where}.description must be at most 255 characters")
    for name in ("protected", "masked", "raw"):
        if not isinstance(getattr(target, name), bool):
            raise SettingsError(f"{where}.{name} must be true or false")
    return target
