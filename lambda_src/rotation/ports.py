"""What the rotation logic needs from AWS, from GitLab and from the world, as small Protocols,
their value types and their errors.

The real adapters are ``rotation.aws`` (boto3) and ``rotation.gitlab_client.GitLabClient``
(``requests`` over HTTPS); the reconciler's unit tests use the in-memory fakes of
``tests/rotation/fakes.py``, implementing the same Protocols. No ``repr`` of a value type here
shows a secret (fields holding one are ``repr=False``), and no message built here or in an
implementation contains a variable value or the token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from ..common.keys import AccessKey, KeyStatus
from .settings import GitLabTarget
from .state import CurrentRecord, LockRecord, PendingRecord, StoredState
from .token_secret import TokenRotation


@dataclass(frozen=True)
class TokenInfo:
    """``GET /personal_access_tokens/self``, without the token itself."""

    id: int
    name: str
    scopes: tuple[str, ...]
    active: bool
    revoked: bool
    expires_at: date | None  # the token stops working at 00:00 UTC on this date


class GitLabError(Exception):
    """A GitLab call failed. ``status`` is the HTTP status (None for a network failure).

    The message says what was called and what to fix, never a value or the token.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class GitLabAuthError(GitLabError):
    """401: the token is missing, unknown, expired or revoked."""


class GitLabForbiddenError(GitLabError):
    """403: wrong token scope, or a role too low (group variables need Owner, projects Maintainer)."""


class GitLabNotFoundError(GitLabError):
    """404 about the group or project itself (not about a variable)."""


class GitLabRejectedError(GitLabError):
    """400/409: GitLab refused the request (e.g. a masked value it will not accept)."""


class GitLabOutcomeUnknownError(GitLabError):
    """A write got no answer (or a 5xx): it may have landed."""


@dataclass(frozen=True)
class Variable:
    """One CI/CD variable at a target's environment scope, as GitLab shows it."""

    value: str | None = field(repr=False)  # None when GitLab hides it (``masked_and_hidden``)
    hidden: bool = False
    variable_type: str = "env_var"  # or "file"


class GitLab(Protocol):
    requests_sent: int  # HTTP requests sent so far, retries included

    def token_info(self) -> TokenInfo:
        """The token's own metadata; raises GitLabAuthError when it does not work."""

    def rotate_token(self, expires_at: date) -> tuple[TokenInfo, str]:
        """Rotate the token itself, once; returns the new metadata and the new token, which this
        client uses from then on. The old token stops working at once: store the new one first.
        Raises ``GitLabOutcomeUnknownError`` when the answer was lost (the rotation may have landed)."""

    def read_variables(self, target: GitLabTarget) -> dict[str, Variable]:
        """Every variable of the target at its environment scope, by key: one request when the
        target has at most 100 variables (all scopes counted), a page of 100 per request beyond.
        Raises a GitLabError naming the fix when the target does not exist or the token may not
        manage its variables (reading them needs the same role as writing them)."""

    def write_variable(
        self,
        target: GitLabTarget,
        key: str,
        value: str,
        *,
        exists: bool,
        variable_type: str = "env_var",
        hidden: bool = False,
    ) -> None:
        """Create (``exists`` False) or update ``key`` at the target's scope with the target's
        settings (protected, masked, raw, description), of ``variable_type``, and ``hidden`` at
        creation (GitLab's ``masked_and_hidden``; an update leaves it as it is), following the upsert of GITLAB_API.md: an update that finds the variable gone
        creates it, a create that finds it taken updates it, an unclear create is looked up before
        it is sent again. No read-back: the caller reads the target once after its writes."""

    def delete_variable(self, target: GitLabTarget, key: str) -> None:
        """Delete ``key`` at the target's scope; a variable that is already gone is not an error."""

    def late_write_wait(self, target: GitLabTarget) -> float | None:
        """None when every write sent to the target got a clear answer; else the seconds from now
        until the last write whose answer was lost (a timeout, a dropped connection, a gateway
        5xx) can no longer land (0 when that time has passed)."""

    def forget_late_writes(self, target: GitLabTarget) -> None:
        """The caller has waited ``late_write_wait`` and read the target again: stop tracking."""

    def delay_for(self, requests: int) -> float:
        """Seconds from now until ``requests`` more requests fit the rate budget (0 without one)."""


@dataclass(frozen=True)
class NewAccessKey:
    """The answer of ``CreateAccessKey``: the only moment the secret exists outside IAM."""

    id: str
    secret: str = field(repr=False)
    created: datetime


class IamKeys(Protocol):
    def list_keys(self, user: str) -> list[AccessKey]:
        """Every key of ``user``; raises ``UserNotFoundError`` when the user does not exist."""

    def create_key(self, user: str) -> NewAccessKey:
        """Raises ``KeyLimitError`` when the user already has two keys."""

    def set_status(self, user: str, key_id: str, status: KeyStatus) -> None:
        """Raises ``KeyNotFoundError`` when the key is gone."""

    def delete_key(self, user: str, key_id: str) -> None:
        """Deleting a key that is already gone is not an error."""


class StateStore(Protocol):
    """The per-user state secret (see ``rotation.state`` for its versions and JSON)."""

    def read(self) -> StoredState: ...

    def acquire_lock(self, lock: LockRecord) -> bool:
        """Write ``lock`` unless another run already wrote that generation: False when it did."""

    def release_lock(self, lock: LockRecord) -> None: ...

    def put_pending(self, record: PendingRecord) -> str:
        """Store ``record`` as a new version labelled AWSPENDING; return the version id."""

    def put_current(self, record: CurrentRecord) -> None:
        """Store ``record`` as a new version labelled AWSCURRENT (the old one becomes AWSPREVIOUS)."""

    def drop_pending(self, version_id: str) -> None:
        """Remove the AWSPENDING label from that version; a label already gone is not an error."""


class StsVerifier(Protocol):
    def caller_arn(self, key: NewAccessKey) -> str:
        """``sts:GetCallerIdentity`` signed with ``key``; raises ``KeyNotUsableError`` when AWS does
        not accept the key (yet)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class Sleep(Protocol):
    def __call__(self, seconds: float) -> None: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> None:
        """Send a message to the operators (SNS); a no-op when no topic is configured."""


class TokenStore(Protocol):
    """The secret holding ``{"GITLAB_TOKEN": "..."}`` (see ``rotation.token_secret``)."""

    def read(self) -> str:
        """The token; raises ``TokenSecretError`` naming the secret when it holds no usable token,
        ``TokenRotationInDoubtError`` while a rotation of it is recorded as in flight."""

    def begin_rotation(self, rotation: TokenRotation) -> None:
        """Durably record that the token is being rotated, before GitLab is asked; raises
        ``TokenRotationInDoubtError`` when another run already recorded one for this token."""

    def abandon_rotation(self) -> None:
        """Drop the record: GitLab refused the rotation, the token is unchanged."""

    def write(self, token: str) -> None:
        """Store a new token and drop the record in one write, keeping any other keys of the JSON."""


def unlimited_time() -> float:
    return math.inf


@dataclass(frozen=True)
class UserPorts:
    """What one user's reconcile run works with. ``time_left``: seconds until the run must have
    stopped (the Lambda's remaining time less what settling and the summary need)."""

    iam: IamKeys
    state: StateStore
    gitlab: GitLab
    verifier: StsVerifier
    clock: Clock
    sleep: Sleep
    time_left: Callable[[], float] = unlimited_time
