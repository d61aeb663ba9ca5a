"""CDK constructs and the stack of gitlab-key-rotation.

Import the constructs from here to reuse them in another CDK app::

    from stacks import GitLabKeyRotation, DeveloperKeyRevocation, GitLabTarget, RotatedUser
"""

from stacks.developer_key_revocation import DeveloperKeyRevocation
from stacks.gitlab_key_rotation import GitLabKeyRotation
from stacks.key_rotation_stack import KeyRotationStack
from stacks.requests_layer import RequestsLayer
from stacks.targets import GitLabTarget, RotatedUser

__all__ = [
    "DeveloperKeyRevocation",
    "GitLabKeyRotation",
    "GitLabTarget",
    "KeyRotationStack",
    "RequestsLayer",
    "RotatedUser",
]
