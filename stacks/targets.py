"""What the rotation construct is told to rotate: IAM machine users and their GitLab targets.

The classes are the settings contract's own (``lambda_src.contract``): the Lambda reads its targets
into the same ``GitLabTarget``, so a target the construct accepts is one the Lambda accepts.
"""

from __future__ import annotations

from .lambda_src.contract import GitLabTarget, RotatedUser

__all__ = ["GitLabTarget", "RotatedUser"]
