"""A Lambda's settings as the construct hands them over: ``settings.json`` in the task root
(``LAMBDA_TASK_ROOT``) and the deploy-time ARNs in the environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from gitlab_key_rotation.lambda_src.contract import ENV_STATE_SECRET_ARN_PREFIX, ENV_STATE_SECRET_NAMES, SETTINGS_FILE


def task_root(directory: Path, document: Mapping[str, Any]) -> dict[str, str]:
    """Write ``document`` as ``directory/settings.json``; the environment variable that points there."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SETTINGS_FILE).write_text(json.dumps(document))
    return {"LAMBDA_TASK_ROOT": str(directory)}


def state_secret_env(arns: Sequence[str]) -> dict[str, str]:
    """The compact form of the state secrets' ARNs: their common prefix and the list of names."""
    prefixes = {arn.split(":secret:", 1)[0] + ":secret:" for arn in arns}
    (prefix,) = prefixes
    return {ENV_STATE_SECRET_ARN_PREFIX: prefix, ENV_STATE_SECRET_NAMES: json.dumps([arn.split(":secret:", 1)[1] for arn in arns])}
