"""The rotation's own errors (``common.errors.OperatorError``s). Every message names what is wrong
and what to do, and none carries a secret: key ids and ARNs only."""

from __future__ import annotations

from ..common.errors import OperatorError
from ..common.errors import describe as describe  # the rotation's modules take it from here


class RotationError(OperatorError):
    """Base class: a run (or one user's part of it) failed with a message fit for the operator."""


class UserNotFoundError(RotationError):
    """IAM answered NoSuchEntity for the user."""


class AccountUnreachableError(RotationError):
    """The member role of the user's account could not be assumed (organization mode)."""


class KeyLimitError(RotationError):
    """IAM answered LimitExceeded: the user already has two access keys."""


class KeyNotFoundError(RotationError):
    """IAM answered NoSuchEntity for a key."""


class KeyNotUsableError(RotationError):
    """AWS refused a request signed with the key (not propagated yet, deleted, or wrong secret)."""


class TokenSecretError(RotationError):
    """The GitLab token secret holds no usable token."""


class PreflightError(RotationError):
    """Something the run needs is missing or wrong; nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("pre-flight failed, nothing was changed: " + "; ".join(problems))


class RotationBlockedError(RotationError):
    """Rotation is due but cannot proceed without touching a key that must not be touched."""


class RotationFailedError(RotationError):
    """A rotation failed and was rolled back (or the rollback failed too: the message says so)."""


class OutOfTimeError(RotationError):
    """The Lambda's time is nearly up: the run stops at a safe point (between steps, or between a
    rotation's targets with AWSPENDING holding the key) and leaves the rest to the next run."""


class TokenRotationInDoubtError(RotationError):
    """A rotation of the GitLab token itself may have landed without its new token being stored:
    the old token must never be used again (reuse detection); a human must look."""
