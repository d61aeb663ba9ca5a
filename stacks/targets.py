"""What the rotation construct is told to rotate: IAM machine users and their GitLab targets.

``GitLabTarget`` has exactly the fields (names, defaults, meaning) of the Lambda's
``rotation.settings.GitLabTarget``, so that it maps 1:1 onto the ``ROTATION_USERS`` JSON.
Both classes check their values when they are created, with messages that name the field.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from .validation import check_iam_name, check_iam_path, check_variable_key

TargetKind = Literal["group", "project"]
_ACCOUNT_ID = re.compile(r"\A\d{12}\Z")


@dataclass(frozen=True)
class GitLabTarget:
    """One GitLab group or project whose CI/CD variables receive the machine user's key.

    ``id`` is the numeric id (``"1234"``) or the full path (``"my-group/sub-group"``).
    ``protected=True`` exposes the variables only to protected branches and tags;
    ``masked`` hides them in job logs; ``raw`` stops GitLab from expanding ``$`` in them.
    """

    kind: TargetKind
    id: str
    access_key_id_variable: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_variable: str = "AWS_SECRET_ACCESS_KEY"
    environment_scope: str = "*"
    protected: bool = True
    masked: bool = True
    raw: bool = True
    description: str = "Managed by gitlab-key-rotation; do not edit by hand."

    def __post_init__(self) -> None:
        if self.kind not in ("group", "project"):
            raise ValueError(f"kind must be 'group' or 'project', got {self.kind!r}")
        if isinstance(self.id, int) and not isinstance(self.id, bool):
            object.__setattr__(self, "id", str(self.id))
        if not isinstance(self.id, str) or not self.id.strip("/") or any(c.isspace() for c in self.id):
            raise ValueError(f"id must be a numeric id or a full path like 'my-group/my-project', got {self.id!r}")
        object.__setattr__(self, "id", self.id.strip("/"))
        check_variable_key(self.access_key_id_variable, "access_key_id_variable")
        check_variable_key(self.secret_access_key_variable, "secret_access_key_variable")
        if self.access_key_id_variable == self.secret_access_key_variable:
            raise ValueError(
                "access_key_id_variable and secret_access_key_variable must differ, "
                f"both are {self.access_key_id_variable!r}"
            )
        if not isinstance(self.environment_scope, str) or not 1 <= len(self.environment_scope) <= 255:
            raise ValueError(f"environment_scope must be 1 to 255 characters ('*' for all), got {self.environment_scope!r}")
        for name in ("protected", "masked", "raw"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.description, str) or len(self.description) > 255:
            raise ValueError(f"description must be a string of at most 255 characters, got {self.description!r}")

    def to_json(self) -> dict[str, object]:
        """The object the Lambda reads for this target (every field, spelled as in the Lambda)."""
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
    iam_path: str = "/"
    account: str | None = None

    def __post_init__(self) -> None:
        check_iam_name(self.iam_user, "iam_user", max_length=64)
        check_iam_path(self.iam_path, "iam_path")
        if self.account is not None and (not isinstance(self.account, str) or not _ACCOUNT_ID.match(self.account)):
            raise ValueError(f"account of IAM user {self.iam_user!r} must be a 12-digit AWS account id, got {self.account!r}")
        targets = tuple(self.targets)
        if not targets:
            raise ValueError(f"targets of IAM user {self.iam_user!r} must name at least one GitLab group or project")
        for target in targets:
            if not isinstance(target, GitLabTarget):
                raise ValueError(f"targets of IAM user {self.iam_user!r} must be GitLabTarget objects, got {target!r}")
        object.__setattr__(self, "targets", targets)

    @property
    def variable_slots(self) -> list[tuple[str, str, str, str]]:
        """(kind, id, environment scope, variable key) of every GitLab variable this user's key fills."""
        return [
            (target.kind, target.id, target.environment_scope, variable)
            for target in self.targets
            for variable in (target.access_key_id_variable, target.secret_access_key_variable)
        ]
