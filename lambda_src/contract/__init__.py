"""The settings contract: one declaration per setting (``settings``), the value rules (``rules``),
and the parser (``schema``), shared by the CDK side and both Lambdas. Pure Python: it ships in the
Lambda code asset and never imports aws_cdk.

The Lambdas get their settings in two parts:

- ``settings.json`` at the root of the function's own code asset (``$LAMBDA_TASK_ROOT``): every
  static setting the Lambda reads (``runtime=True``), by ``name``; no size limit.
- the environment: only what CloudFormation knows at deploy time, the ARNs (names below).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from . import settings as declared
from .schema import Problems, Section, SettingsError, parse

SETTINGS_FILE = "settings.json"

# The environment of the rotation Lambda (deploy-time values only).
ENV_TOKEN_SECRET_ARN = "GITLAB_TOKEN_SECRET_ARN"
ENV_TOPIC_ARN = "NOTIFICATION_TOPIC_ARN"
# arn:<partition>:secretsmanager:<region>:<account>:secret:  (the state secrets' common prefix)
ENV_STATE_SECRET_ARN_PREFIX = "STATE_SECRET_ARN_PREFIX"
# JSON list of the state secrets' names (with their 6-character suffix), in the order of settings.json's users.
ENV_STATE_SECRET_NAMES = "STATE_SECRET_NAMES"
# Organization mode: the member role's ARN with {account} for the account id (its partition is a deploy-time value).
ENV_MEMBER_ROLE_ARN_PATTERN = "MEMBER_ROLE_ARN_PATTERN"
ROTATION_ENVIRONMENT = (ENV_TOKEN_SECRET_ARN, ENV_TOPIC_ARN, ENV_STATE_SECRET_ARN_PREFIX, ENV_STATE_SECRET_NAMES)
REVOCATION_ENVIRONMENT = (ENV_TOPIC_ARN,)
_MEMBER_ROLE_ARN = re.compile(r"\Aarn:aws[\w-]*:iam::\{account\}:role/[\w+=,.@/-]+\Z", re.ASCII)

__all__ = [
    "ENV_MEMBER_ROLE_ARN_PATTERN", "ENV_STATE_SECRET_ARN_PREFIX", "ENV_STATE_SECRET_NAMES", "ENV_TOKEN_SECRET_ARN", "ENV_TOPIC_ARN", "GitLabTarget",
    "REVOCATION_ENVIRONMENT", "ROTATION_ENVIRONMENT", "RotatedUser", "SETTINGS_FILE", "SettingsError", "check_values",
    "declared", "member_role_arn_pattern", "read_runtime_settings", "required_env",
]  # fmt: skip


def check_values(section: Section, data: Mapping[str, Any], path: str, naming: str) -> dict[str, Any]:
    """``parse`` that raises one ``SettingsError`` listing every problem."""
    problems = Problems()
    values = parse(section, data, path, problems, naming)  # type: ignore[arg-type]
    problems.raise_if_any()
    assert values is not None
    return values


def read_runtime_settings(section: Section, env: Mapping[str, str]) -> dict[str, Any]:
    """The Lambda's static settings: ``$LAMBDA_TASK_ROOT/settings.json``, checked by the same rules."""
    path = Path(env.get("LAMBDA_TASK_ROOT") or os.getcwd()) / SETTINGS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError([f"{path} is missing: the function's code asset must hold its {SETTINGS_FILE}"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError([f"{path} is not readable JSON: {exc}"]) from None
    problems = Problems()
    values = parse(section, document, SETTINGS_FILE, problems, "name", runtime_only=True)
    problems.raise_if_any()
    assert values is not None
    return values


def member_role_arn_pattern(env: Mapping[str, str], required: bool) -> str | None:
    """``MEMBER_ROLE_ARN_PATTERN`` (organization mode), checked; ``required`` when settings.json names other accounts."""
    pattern = env.get(ENV_MEMBER_ROLE_ARN_PATTERN) or None
    if pattern is None and not required:
        return None
    if pattern is None or not _MEMBER_ROLE_ARN.match(pattern):
        raise SettingsError([
            f"{ENV_MEMBER_ROLE_ARN_PATTERN} must be the member role's ARN with {{account}} for the account id, like "
            f"'arn:aws:iam::{{account}}:role/gitlab-key-rotation/KeyRotationMember-rotation' (settings.json names other "
            f"accounts), got {pattern!r}"
        ])
    return pattern


def required_env(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise SettingsError([f"environment variable {name} is required"])
    return value


@dataclass(frozen=True)
class GitLabTarget:
    """One GitLab group or project whose CI/CD variables receive the machine user's key.

    ``id`` is the numeric id (``"1234"`` or ``1234``) or the full path (``"my-group/sub-group"``).
    ``protected=True`` exposes the variables only to protected branches and tags; ``masked`` hides
    them in job logs; ``raw`` stops GitLab from expanding ``$`` in them. ``delivery``
    ``"credentials_file"`` writes one file variable (``credentials_file_variable``) holding an AWS
    credentials file instead of two variables; ``hidden`` creates the secret variable masked and
    hidden. Every field is checked
    by the contract's rules (``settings.TARGET``) when the object is made.
    """

    kind: str
    id: str
    access_key_id_variable: str = declared.ACCESS_KEY_ID_VARIABLE.default
    secret_access_key_variable: str = declared.SECRET_ACCESS_KEY_VARIABLE.default
    environment_scope: str = declared.ENVIRONMENT_SCOPE.default
    protected: bool = declared.PROTECTED.default
    masked: bool = declared.MASKED.default
    raw: bool = declared.RAW.default
    description: str = declared.DESCRIPTION.default
    delivery: str = declared.DELIVERY.default
    credentials_file_variable: str = declared.CREDENTIALS_FILE_VARIABLE.default
    hidden: bool = declared.HIDDEN.default

    def __post_init__(self) -> None:
        values = check_values(declared.TARGET, asdict(self), "", "name")
        object.__setattr__(self, "id", values["id"])

    @property
    def label(self) -> str:
        """Human-readable name for logs and errors, e.g. ``group my-group (scope *)``."""
        return f"{self.kind} {self.id} (scope {self.environment_scope})"

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables its delivery writes."""
        return declared.target_variables(asdict(self))

    def to_json(self) -> dict[str, object]:
        """The object ``settings.json`` holds for this target (every field, by name)."""
        return asdict(self)


@dataclass(frozen=True)
class RotatedUser:
    """An IAM machine user whose access key is rotated, and the GitLab targets that receive it.

    ``iam_path`` is the user's IAM path (``"/"`` unless the user was created with one); it only
    shapes the user's ARN in the rotation role's policy. ``account``: the 12-digit id of the account
    the user lives in, reached through its member role (organization mode); None: the account of
    the rotation function itself.
    """

    iam_user: str
    targets: tuple[GitLabTarget, ...]
    iam_path: str = declared.IAM_PATH.default
    account: str | None = declared.USER_ACCOUNT.default

    def __post_init__(self) -> None:
        targets = tuple(self.targets) if isinstance(self.targets, (list, tuple)) else self.targets
        object.__setattr__(self, "targets", targets)
        problems = [
            f"targets[{i}] must be a GitLabTarget, got {t!r}" for i, t in enumerate(targets or ()) if not isinstance(t, GitLabTarget)
        ]
        if problems:
            raise SettingsError(problems)
        check_values(declared.USER, self.to_json(), "", "name")

    def to_json(self) -> dict[str, object]:
        targets = self.targets if isinstance(self.targets, tuple) else ()
        return {"iam_user": self.iam_user, "iam_path": self.iam_path, "targets": [t.to_json() for t in targets], "account": self.account}
