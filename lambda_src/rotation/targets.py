"""The key as GitLab targets hold it: what a target's variables say it holds, and how to make it
hold another. A target's ``delivery`` decides how:

- ``variables``: two variables, the key id and the secret. GitLab cannot write both at once, so a
  write puts the secret first and the key id last: the key id variable says which key a target
  holds. With ``hidden`` the secret variable is created masked and hidden; GitLab then never
  shows its value, so it is taken to be the secret of the key the key id variable names, which
  must be a key whose secret the state secret holds (one this rotation wrote); any other hidden
  secret is an error, never overwritten on a guess.
- ``credentials_file``: one file-type variable holding an AWS credentials file with both halves,
  written at once (no moment with a mismatched pair).

Every write starts from what the run last read of the target (whether a variable exists decides
PUT or POST; a variable that already holds its value is not written again) and ends with one read
of the target, which must show what was written.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping

from .ports import GitLab, GitLabRejectedError, Variable
from .settings import GitLabTarget
from .state import TargetValues

PROFILE = "default"


class UnknownHiddenSecretError(GitLabRejectedError):
    """A hidden secret under a key id whose secret the state secret does not hold. Read together
    with a state read made before another run rotated (its new key in the target, not yet in the
    state this run read), it is the other run's key: the reconciler reads everything again once."""


def held(target: GitLabTarget, variables: Mapping[str, Variable], known: Mapping[str, str]) -> TargetValues:
    """What ``variables`` (a target's, as ``GitLab.read_variables`` returns them) hold.
    ``known``: key id -> secret of the keys the state secret holds (for a hidden secret)."""
    if target.delivery == "credentials_file":
        file = variables.get(target.credentials_file_variable)
        return _parse(file.value) if file is not None and file.value is not None else TargetValues(None, None)
    key_id = _readable(target, variables, target.access_key_id_variable)
    secret = variables.get(target.secret_access_key_variable)
    if secret is None or not secret.hidden:
        return TargetValues(key_id, _readable(target, variables, target.secret_access_key_variable))
    if not target.hidden:
        raise GitLabRejectedError(
            f"reading {target.secret_access_key_variable} of {target.label}: it is a hidden variable, so its value "
            "cannot be read back and checked: set hidden: true for this target, or delete the variable and let the "
            "rotation create it (masked, not hidden)",
            200,
        )
    if key_id not in known:
        raise UnknownHiddenSecretError(
            f"reading {target.label}: its secret variable {target.secret_access_key_variable} is hidden and its key id "
            f"variable names {key_id or 'no key'}, whose secret this rotation never wrote, so what the target holds "
            "cannot be told: delete both variables (the next run writes them) or put the rotation's current key in them",
            200,
        )
    return TargetValues(key_id, known[key_id])


def write(
    gitlab: GitLab,
    target: GitLabTarget,
    variables: Mapping[str, Variable],
    values: TargetValues,
    known: Mapping[str, str],
) -> dict[str, Variable]:
    """Make ``target`` hold ``values`` (None: no such variable), then read it once and check.

    ``variables``: what the target holds now, as last read; ``known`` as for ``held`` (it must
    hold ``values`` when the target is hidden). Returns the variables as read back; raises
    ``GitLabRejectedError`` when they do not hold ``values``."""
    for key, value, options in _writes(target, values):
        existing = variables.get(key)
        if value is None:
            if existing is not None:
                gitlab.delete_variable(target, key)
        elif existing is None or existing.value != value or existing.variable_type != options["variable_type"]:
            gitlab.write_variable(target, key, value, exists=existing is not None, **options)
    after = gitlab.read_variables(target)
    if held(target, after, known) != values:
        raise GitLabRejectedError(
            f"writing the key to {target.label}: its variables do not read back as written; another writer may be "
            "changing them: check the target's CI/CD variables",
            None,
        )
    return after


def _writes(target: GitLabTarget, values: TargetValues) -> list[tuple[str, str | None, dict]]:
    """(variable, value, options of ``GitLab.write_variable``) in the order they are written."""
    if target.delivery == "credentials_file":
        content = None if values.access_key_id is None else _credentials_file(values)
        return [(target.credentials_file_variable, content, {"variable_type": "file", "hidden": False})]
    return [
        (target.secret_access_key_variable, values.secret_access_key, {"variable_type": "env_var", "hidden": target.hidden}),
        (target.access_key_id_variable, values.access_key_id, {"variable_type": "env_var", "hidden": False}),
    ]


def _credentials_file(values: TargetValues) -> str:
    return (
        f"[{PROFILE}]\naws_access_key_id = {values.access_key_id}\naws_secret_access_key = {values.secret_access_key}\n"
    )


def _parse(content: str) -> TargetValues:
    """The key in a credentials file's ``default`` profile; (None, None) for anything else."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(content)
    except configparser.Error:
        return TargetValues(None, None)
    if not parser.has_section(PROFILE):
        return TargetValues(None, None)
    profile = parser[PROFILE]
    return TargetValues(profile.get("aws_access_key_id") or None, profile.get("aws_secret_access_key") or None)


def _readable(target: GitLabTarget, variables: Mapping[str, Variable], key: str) -> str | None:
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
