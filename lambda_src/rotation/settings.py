"""Settings of the rotation Lambda, read once at start.

The static settings come from ``settings.json`` in the function's code asset, declared and checked
by the settings contract (``contract.settings.ROTATION_RUNTIME``: the same rules the construct
applied at synth). The environment carries the deploy-time values only, never a secret:

``GITLAB_TOKEN_SECRET_ARN``     secret whose JSON holds ``{"GITLAB_TOKEN": "..."}``
``NOTIFICATION_TOPIC_ARN``      SNS topic for warnings and failures
``STATE_SECRET_ARN_PREFIX``     ``arn:<partition>:secretsmanager:<region>:<account>:secret:``
``STATE_SECRET_NAMES``          JSON list of the users' state secret names, in the order of settings.json's users
``MEMBER_ROLE_ARN_PATTERN``     organization mode: the member rotation role's ARN with ``{account}``; a user
                                with an ``account`` in settings.json is reached through that account's role
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from ..contract import (
    ENV_STATE_SECRET_ARN_PREFIX,
    ENV_STATE_SECRET_NAMES,
    ENV_TOKEN_SECRET_ARN,
    ENV_TOPIC_ARN,
    GitLabTarget,
    SettingsError,
    read_runtime_settings,
    member_role_arn_pattern,
    required_env,
)
from ..contract.settings import MAX_REQUESTS_PER_MINUTE, ROTATION_RUNTIME

__all__ = ["GitLabTarget", "RotatedUser", "RotationSettings", "SettingsError"]


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
    gitlab_max_requests_per_minute: int = MAX_REQUESTS_PER_MINUTE.default
    notification_topic_arn: str | None = None
    notify_on_success: bool = False
    dry_run: bool = False
    member_role_arn_pattern: str | None = None

    @classmethod
    def load(cls, env: Mapping[str, str]) -> "RotationSettings":
        """``$LAMBDA_TASK_ROOT/settings.json`` plus the ARNs of the environment."""
        values = read_runtime_settings(ROTATION_RUNTIME, env)
        arns = _state_secret_arns(env, len(values["users"]))
        users = tuple(
            RotatedUser(
                iam_user=user["iam_user"],
                state_secret_arn=arn,
                targets=tuple(GitLabTarget(**target) for target in user["targets"]),
                account=user["account"],
            )
            for user, arn in zip(values["users"], arns, strict=True)
        )
        return cls(
            gitlab_url=values["gitlab_url"],
            gitlab_token_secret_arn=required_env(env, ENV_TOKEN_SECRET_ARN),
            users=users,
            gitlab_ca_bundle=values["gitlab_ca_bundle"],
            rotation_period_days=values["rotation_period_days"],
            grace_period_hours=values["grace_period_hours"],
            deletion_window_days=values["deletion_window_days"],
            token_expiry_warning_days=values["token_expiry_warning_days"],
            rotate_gitlab_token=values["rotate_gitlab_token"],
            gitlab_max_requests_per_minute=values["gitlab_max_requests_per_minute"],
            notification_topic_arn=env.get(ENV_TOPIC_ARN) or None,
            notify_on_success=values["notify_on_success"],
            dry_run=values["dry_run"],
            member_role_arn_pattern=member_role_arn_pattern(env, required=any(user.account for user in users)),
        )


def _state_secret_arns(env: Mapping[str, str], count: int) -> list[str]:
    prefix = required_env(env, ENV_STATE_SECRET_ARN_PREFIX)
    if not (prefix.startswith("arn:") and prefix.endswith(":secret:")):
        raise SettingsError([f"{ENV_STATE_SECRET_ARN_PREFIX} must look like 'arn:aws:secretsmanager:<region>:<account>:secret:', got {prefix!r}"])
    try:
        names = json.loads(required_env(env, ENV_STATE_SECRET_NAMES))
    except json.JSONDecodeError as exc:
        raise SettingsError([f"{ENV_STATE_SECRET_NAMES} is not valid JSON: {exc.msg} at position {exc.pos}"]) from None
    if not isinstance(names, list) or len(names) != count or not all(isinstance(n, str) and n for n in names):
        raise SettingsError([f"{ENV_STATE_SECRET_NAMES} must be a JSON list of {count} secret names (one per user of settings.json), got {names!r}"])
    return [prefix + name for name in names]
