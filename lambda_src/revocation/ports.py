"""What the revocation needs from IAM: the Protocol, its value type (``common.keys.AccessKey``) and
its errors.

The real implementation is ``revocation.aws.Boto3Iam``; domain tests use an in-memory fake
(``tests/revocation/fake_iam.py``) implementing the same Protocol. Implementations must be safe
to call from several threads.
"""

from __future__ import annotations

from typing import Mapping, Protocol

from ..common.errors import OperatorError
from ..common.keys import AccessKey


class NoSuchEntity(OperatorError):
    """The group, user or key does not exist (IAM's ``NoSuchEntity``), e.g. removed meanwhile."""


class IncompleteListing(OperatorError):
    """A listing said more follows but gave no way to get it (``IsTruncated`` without a new
    ``Marker``): what was read is not the whole answer and must not be used as if it were."""


class Iam(Protocol):
    def group_members(self, group: str) -> list[str]:
        """User names of the group's members, every page, or an error (NoSuchEntity when the
        group is unknown, IncompleteListing, or IAM's error after retries): never a partial list."""

    def access_keys(self, user: str) -> list[AccessKey]:
        """The user's access keys (at most two); NoSuchEntity when the user is gone."""

    def user_tags(self, user: str) -> Mapping[str, str]:
        """The user's tags (key: value), every page, or an error; NoSuchEntity when the user is gone."""

    def tag_user(self, user: str, key: str, value: str) -> None:
        """Set one tag on the user; NoSuchEntity when the user is gone."""

    def untag_user(self, user: str, key: str) -> None:
        """Remove one tag from the user (nothing when it is absent); NoSuchEntity when the user is gone."""

    def delete_access_key(self, user: str, key_id: str) -> None:
        """Delete the key; NoSuchEntity when the key or the user is gone."""

    def deactivate_access_key(self, user: str, key_id: str) -> None:
        """Make the key Inactive; NoSuchEntity when the key or the user is gone."""
