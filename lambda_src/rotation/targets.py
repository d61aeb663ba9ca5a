"""The key as GitLab targets hold it: what a target's variables say it holds, and how to make it
hold another.

A target holds a key in two variables (the key id and the secret). GitLab cannot write both at
once, so a write puts the secret first and the key id last: the key id variable is what says
which key a target holds. Every write starts from what the run last read of the target (whether
a variable exists decides PUT or POST; a variable that already holds its value is not written
again) and ends with one read of the target, which must show what was written.
"""

from __future__ import annotations

from collections.abc import Mapping

from .ports import GitLab, GitLabRejectedError, Variable
from .settings import GitLabTarget
from .state import TargetValues


def held(target: GitLabTarget, variables: Mapping[str, Variable]) -> TargetValues:
    """What ``variables`` (a target's, as ``GitLab.read_variables`` returns them) hold."""
    return TargetValues(
        _value(target, variables, target.access_key_id_variable),
        _value(target, variables, target.secret_access_key_variable),
    )


def write(gitlab: GitLab, target: GitLabTarget, variables: Mapping[str, Variable], values: TargetValues) -> dict:
    """Make ``target`` hold ``values`` (None: no such variable), then read it once and check.

    ``variables``: what the target holds now, as last read. Returns the variables as read back;
    raises ``GitLabRejectedError`` when they do not hold ``values``."""
    for key, value in (
        (target.secret_access_key_variable, values.secret_access_key),
        (target.access_key_id_variable, values.access_key_id),
    ):
        existing = variables.get(key)
        if value is None:
            if existing is not None:
                gitlab.delete_variable(target, key)
        elif existing is None or existing.value != value:
            gitlab.write_variable(target, key, value, exists=existing is not None)
    after = gitlab.read_variables(target)
    if held(target, after) != values:
        raise GitLabRejectedError(
            f"writing the key to {target.label}: its variables do not read back as written; another writer may be "
            "changing them: check the target's CI/CD variables",
            None,
        )
    return after


def _value(target: GitLabTarget, variables: Mapping[str, Variable], key: str) -> str | None:
    variable = variables.get(key)
    if variable is None:
        return None
    if variable.hidden or variable.value is None:
        raise GitLabRejectedError(
            f"reading {key} of {target.label}: it is a hidden variable, so its value cannot be read back and checked: "
            "delete it and let the rotation create it (masked, not hidden)",
            200,
        )
    return variable.value
