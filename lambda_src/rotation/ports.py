"""What the rotation logic needs from AWS and from the world, as small Protocols and value types.

The real adapters are in ``rotation.aws`` (boto3); domain tests use in-memory fakes implementing
the same Protocols. GitLab's Protocol lives in ``rotation.gitlab_port``. No ``repr`` of a value
type here shows a secret: fields holding one are ``repr=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from .gitlab_port import GitLab
from .state import CurrentRecord, LockRecord, PendingRecord, StoredState
from .token_secret import TokenRotation

KeyStatus = Literal["Active", "Inactive"]


@dataclass(frozen=True)
class AccessKey:
    """An IAM access key as ``ListAccessKeys`` shows it (no secret)."""

    id: str
    status: KeyStatus
    created: datetime


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


@dataclass(frozen=True)
class UserPorts:
    """What one user's reconcile run works with."""

    iam: IamKeys
    state: StateStore
    gitlab: GitLab
    verifier: StsVerifier
    clock: Clock
    sleep: Sleep
