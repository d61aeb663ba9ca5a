"""The per-user state secret: what each of its versions holds, as JSON.

The CDK creates the secret with ``{}`` ("nothing recorded yet"). The rotation Lambda then keeps
three kinds of versions in it, told apart by their staging labels:

``AWSCURRENT``: the key GitLab should hold, and the retirement of the key it replaced::

    {"access_key_id": "AKIA...", "secret_access_key": "...",
     "pushed_at": "2025-01-31T10:00:00+00:00",       # when it reached every target
     "event_id": "...",                               # the event that rotated it (dedupes {"force": true})
     "previous_access_key_id": "AKIA..." | null,      # the key it replaced, being retired
     "previous_deactivated_at": "..." | null}         # when that key was made Inactive

``AWSPENDING`` (only while a rotation is under way, or after a run died in one)::

    {"run_id": "...", "event_id": "...", "started_at": "...",
     "access_key_id": "AKIA..." | null,               # null: the run was about to create the key
     "secret_access_key": "..." | null,
     "targets_before": {"<target key>": {"access_key_id": ... | null,
                                         "secret_access_key": ... | null}}}

``targets_before`` is what every target held before the push: a rollback, even by a later run,
puts exactly that back (and deletes the variables that did not exist).

``ROTATION_LOCK``: the lock that keeps two runs from changing one user at once::

    {"generation": 7, "run_id": "...", "acquired_at": "...", "released": false}

A run takes generation ``n + 1`` after reading generation ``n`` released (or older than
``LOCK_TTL``) by writing a version whose id (``ClientRequestToken``) is derived from the secret
and ``n + 1``: Secrets Manager refuses a second, different version with the same id
(``ResourceExistsException``), so of two runs racing for the same generation exactly one wins.
The loser changes nothing. Releasing writes the same generation with ``"released": true``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .settings import GitLabTarget

# Longer than a Lambda can run (15 minutes): a lock this old belongs to a run that is dead.
LOCK_TTL = timedelta(minutes=20)

LOCK_STAGE = "ROTATION_LOCK"


class StateSecretError(ValueError):
    """A version of the state secret does not hold what this module writes. Names the secret and
    the version's label, never its content."""


@dataclass(frozen=True)
class TargetValues:
    """The two variables of one target; None where the variable does not exist."""

    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)


@dataclass(frozen=True)
class CurrentRecord:
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    pushed_at: datetime | None = None
    event_id: str | None = None
    previous_access_key_id: str | None = None
    previous_deactivated_at: datetime | None = None


@dataclass(frozen=True)
class PendingRecord:
    run_id: str
    event_id: str
    started_at: datetime
    targets_before: dict[str, TargetValues]
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LockRecord:
    generation: int
    run_id: str
    acquired_at: datetime
    released: bool = False

    def is_held(self, now: datetime) -> bool:
        """Held by a live run: not released and younger than ``LOCK_TTL``."""
        return not self.released and now - self.acquired_at < LOCK_TTL

    def version_id(self, secret_arn: str) -> str:
        """The deterministic ``ClientRequestToken`` of this generation (acquire or release)."""
        suffix = "released" if self.released else "acquired"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{secret_arn}#lock/{self.generation}/{suffix}"))


@dataclass(frozen=True)
class StoredState:
    current: CurrentRecord
    pending: PendingRecord | None = None
    pending_version: str | None = None
    lock: LockRecord | None = None


def target_key(target: GitLabTarget) -> str:
    """How ``targets_before`` names a target: kind, id, scope and the variable names (both of
    ``variables`` delivery; ``file:`` and the file variable of ``credentials_file``)."""
    where = f"{target.kind}:{target.id}:{target.environment_scope}:"
    if target.delivery == "credentials_file":
        return where + f"file:{target.credentials_file_variable}"
    return where + f"{target.access_key_id_variable}:{target.secret_access_key_variable}"


# --- JSON ---------------------------------------------------------------------------------------


def dump(record: CurrentRecord | PendingRecord | LockRecord) -> str:
    if isinstance(record, CurrentRecord):
        data: dict = {
            "access_key_id": record.access_key_id,
            "secret_access_key": record.secret_access_key,
            "pushed_at": _time(record.pushed_at),
            "event_id": record.event_id,
            "previous_access_key_id": record.previous_access_key_id,
            "previous_deactivated_at": _time(record.previous_deactivated_at),
        }
        data = {k: v for k, v in data.items() if v is not None}
    elif isinstance(record, PendingRecord):
        data = {
            "run_id": record.run_id,
            "event_id": record.event_id,
            "started_at": _time(record.started_at),
            "access_key_id": record.access_key_id,
            "secret_access_key": record.secret_access_key,
            "targets_before": {
                name: {"access_key_id": v.access_key_id, "secret_access_key": v.secret_access_key}
                for name, v in record.targets_before.items()
            },
        }
    else:
        data = {
            "generation": record.generation,
            "run_id": record.run_id,
            "acquired_at": _time(record.acquired_at),
            "released": record.released,
        }
    return json.dumps(data, sort_keys=True)


def load_current(text: str | None, where: str) -> CurrentRecord:
    data = _object(text, where)
    if not data:
        return CurrentRecord()
    reader = _Reader(data, where)
    record = CurrentRecord(
        access_key_id=reader.string("access_key_id", optional=True),
        secret_access_key=reader.string("secret_access_key", optional=True),
        pushed_at=reader.time("pushed_at", optional=True),
        event_id=reader.string("event_id", optional=True),
        previous_access_key_id=reader.string("previous_access_key_id", optional=True),
        previous_deactivated_at=reader.time("previous_deactivated_at", optional=True),
    )
    if (record.access_key_id is None) != (record.secret_access_key is None):
        raise StateSecretError(f"{where}: access_key_id and secret_access_key must be both set or both absent")
    return record


def load_pending(text: str | None, where: str) -> PendingRecord:
    reader = _Reader(_object(text, where), where)
    before = reader.data.get("targets_before")
    if not isinstance(before, dict):
        raise StateSecretError(f"{where}: targets_before must be an object")
    targets_before = {}
    for name, values in before.items():
        inner = _Reader(values if isinstance(values, dict) else {}, f"{where} targets_before[{name!r}]")
        targets_before[name] = TargetValues(
            inner.string("access_key_id", optional=True), inner.string("secret_access_key", optional=True)
        )
    record = PendingRecord(
        run_id=reader.string("run_id"),
        event_id=reader.string("event_id"),
        started_at=reader.time("started_at"),
        targets_before=targets_before,
        access_key_id=reader.string("access_key_id", optional=True),
        secret_access_key=reader.string("secret_access_key", optional=True),
    )
    if (record.access_key_id is None) != (record.secret_access_key is None):
        raise StateSecretError(f"{where}: access_key_id and secret_access_key must be both set or both absent")
    return record


def load_lock(text: str | None, where: str) -> LockRecord:
    reader = _Reader(_object(text, where), where)
    generation = reader.data.get("generation")
    released = reader.data.get("released")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise StateSecretError(f"{where}: generation must be a non-negative integer")
    if not isinstance(released, bool):
        raise StateSecretError(f"{where}: released must be true or false")
    return LockRecord(generation, reader.string("run_id"), reader.time("acquired_at"), released)


def _object(text: str | None, where: str) -> dict:
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateSecretError(
            f"{where} is not valid JSON ({exc.msg} at position {exc.pos}); "
            "put {} to start afresh, or restore the AWSPREVIOUS version"
        ) from None
    if not isinstance(data, dict):
        raise StateSecretError(f"{where} must hold a JSON object, got {type(data).__name__}")
    return data


class _Reader:
    def __init__(self, data: dict, where: str):
        self.data = data
        self.where = where

    def string(self, name: str, optional: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise StateSecretError(f"{self.where}: {name} must be a non-empty string")
        return value

    def time(self, name: str, optional: bool = False) -> datetime | None:
        value = self.string(name, optional)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise StateSecretError(f"{self.where}: {name} must be an ISO 8601 time, got {value!r}") from None
        if moment.tzinfo is None:
            raise StateSecretError(f"{self.where}: {name} must carry a time zone, got {value!r}")
        return moment.astimezone(UTC)


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
