"""The key as GitLab targets hold it: read it, push a new one, put the old one back.

A target holds a key in two variables (the key id and the secret). GitLab cannot write both at
once, so a push writes the secret first and the key id last: the key id variable is what says
which key a target holds. ``GitLab.put_variable`` reads every write back and raises when the
variable does not hold the value written.
"""

from __future__ import annotations

from .ports import GitLab
from .settings import GitLabTarget
from .state import TargetValues


def read_target(gitlab: GitLab, target: GitLabTarget) -> TargetValues:
    return TargetValues(
        gitlab.get_variable(target, target.access_key_id_variable),
        gitlab.get_variable(target, target.secret_access_key_variable),
    )


def push_key(gitlab: GitLab, target: GitLabTarget, key_id: str, secret: str) -> None:
    gitlab.put_variable(target, target.secret_access_key_variable, secret)
    gitlab.put_variable(target, target.access_key_id_variable, key_id)


def restore_target(gitlab: GitLab, target: GitLabTarget, before: TargetValues) -> None:
    """Put back what ``target`` held before a push: the old values, or no variable at all."""
    for key, value in (
        (target.secret_access_key_variable, before.secret_access_key),
        (target.access_key_id_variable, before.access_key_id),
    ):
        if value is None:
            gitlab.delete_variable(target, key)
        else:
            gitlab.put_variable(target, key, value)
