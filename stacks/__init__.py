"""gitlab-key-rotation: CDK constructs that rotate IAM machine-user keys into GitLab CI/CD variables
and revoke developer keys weekly.

Import the constructs from here to reuse them in another CDK app::

    from gitlab_key_rotation import GitLabKeyRotation, DeveloperKeyRevocation, GitLabTarget, RotatedUser

The names are loaded on first use, so that importing the Lambda code that ships inside this package
(``gitlab_key_rotation.lambda_src``) never starts aws-cdk-lib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "DeveloperKeyRevocation": ".developer_key_revocation",
    "GitLabKeyRotation": ".gitlab_key_rotation",
    "GitLabTarget": ".targets",
    "KeyRotationStack": ".key_rotation_stack",
    "RequestsLayer": ".requests_layer",
    "RotatedUser": ".targets",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .developer_key_revocation import DeveloperKeyRevocation
    from .gitlab_key_rotation import GitLabKeyRotation
    from .key_rotation_stack import KeyRotationStack
    from .requests_layer import RequestsLayer
    from .targets import GitLabTarget, RotatedUser


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value
