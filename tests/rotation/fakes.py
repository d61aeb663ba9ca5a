"""In-memory fakes of the rotation's ports (``rotation.ports``) for the
reconciler's unit tests: no moto, no network, no waiting. Each keeps the contract of the real
adapter it stands for (``rotation.aws``, ``rotation.gitlab_client``) where the rotation depends
on it (``test_fakes.py`` runs the same contract tests on the fakes and on the real adapters, on moto
and the project's GitLab server):

- ``FakeIam``: IAM's limit of two keys per user (``KeyLimitError``, what the adapter makes of
  ``LimitExceeded``), ``UserNotFoundError`` for an unknown user, ``KeyNotFoundError`` when a gone
  key's status is set, a delete of a gone key is no error; CreateDate is the clock's now.
- ``FakeStateStore``: the state secret's versions and staging labels as ``SecretsStateStore``
  uses Secrets Manager: each put is a new version that takes its labels from the version holding
  them (the old AWSCURRENT becomes AWSPREVIOUS); records are stored as the JSON ``rotation.state``
  writes and read back through its parsers; a version id (the lock's ``ClientRequestToken``) that
  already names a version with other content is refused, so ``acquire_lock`` returns False, and
  the same content again is accepted and changes nothing.
- ``FakeSts``: accepts a key IAM has, Active, with its secret, once ``propagation`` has passed
  since it was created (IAM's eventual consistency); refuses it with ``KeyNotUsableError`` before.
- ``FakeGitLab``: variables by target and scope, the token's details; unknown targets are
  ``GitLabNotFoundError``. A write broken by a fault with ``landed=True`` or a ``GitLabError``
  without a status (no answer) is a write whose outcome the client does not know: it shows in
  ``late_write_wait`` (as already past: a fake's late writes land at once, with ``landed``).
- ``FakeTokenStore``: the token secret's JSON through ``rotation.token_secret``; ``FakeNotifier``.

Every fake counts its calls by method name (``calls``) and can break one: ``fail(name, error)``
raises ``error`` instead of the call, ``landed=True`` after the call had its effect (a lost
answer), ``when`` picks the calls by their arguments, ``times`` how many (None: all);
``before(name, action)`` runs ``action`` just before the next such call (another run
interleaving); ``heal()`` ends every fault.
"""

from __future__ import annotations

import functools
import itertools
import json
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from gitlab_key_rotation.lambda_src.rotation import state as records
from gitlab_key_rotation.lambda_src.rotation import token_secret
from gitlab_key_rotation.lambda_src.rotation.errors import (
    KeyLimitError,
    KeyNotFoundError,
    KeyNotUsableError,
    UserNotFoundError,
)
from gitlab_key_rotation.lambda_src.rotation.ports import GitLabError, GitLabNotFoundError, TokenInfo, Variable
from gitlab_key_rotation.lambda_src.rotation.ports import AccessKey, KeyStatus, NewAccessKey
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.clock import FakeClock

ACCOUNT = "123456789012"


@dataclass
class _Fault:
    name: str
    error: Exception | None
    landed: bool = False
    when: Callable[..., bool] | None = None
    times: int | None = 1
    action: Callable[[], None] | None = None


class FakePort:
    """Call counting and fault injection, shared by every fake."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []

    def fail(
        self,
        name: str,
        error: Exception,
        *,
        landed: bool = False,
        when: Callable[..., bool] | None = None,
        times: int | None = 1,
    ) -> None:
        self._faults.append(_Fault(name, error, landed, when, times))

    def before(self, name: str, action: Callable[[], None]) -> None:
        self._faults.append(_Fault(name, None, action=action))

    def heal(self) -> None:
        """Every call works again."""
        self._faults.clear()

    def _failing(self, name: str, args: tuple, fault: _Fault) -> None:
        """A fault is about to break this call (for the fakes that note some)."""

    def _fault(self, name: str, args: tuple) -> _Fault | None:
        for fault in self._faults:
            if fault.name == name and fault.times != 0 and (fault.when is None or fault.when(*args)):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None


def port_call(method: Callable) -> Callable:
    """Count the call, and apply the fault chosen for it, if any."""

    @functools.wraps(method)
    def call(self: FakePort, *args, **keywords):
        self.calls[method.__name__] += 1
        fault = self._fault(method.__name__, args)
        if fault is not None and fault.action is not None:
            fault.action()
            fault = None
        if fault is not None:
            self._failing(method.__name__, args, fault)
        if fault is not None and not fault.landed:
            raise fault.error
        result = method(self, *args, **keywords)
        if fault is not None:
            raise fault.error
        return result

    return call


# --- IAM and STS -------------------------------------------------------------------------------


@dataclass
class _Key:
    secret: str = field(repr=False)
    status: KeyStatus
    created: object  # datetime


class FakeIam(FakePort):
    """``rotation.ports.IamKeys``: users and their keys in memory."""

    def __init__(self, clock: FakeClock, users: tuple[str, ...]):
        super().__init__()
        self.clock = clock
        self.keys: dict[str, dict[str, _Key]] = {user: {} for user in users}
        self._ids = itertools.count(1)

    def _user(self, user: str) -> dict[str, _Key]:
        if user not in self.keys:
            raise UserNotFoundError(f"IAM user {user} does not exist (NoSuchEntity)")
        return self.keys[user]

    @port_call
    def list_keys(self, user: str) -> list[AccessKey]:
        return [AccessKey(key_id, key.status, key.created) for key_id, key in self._user(user).items()]

    @port_call
    def create_key(self, user: str) -> NewAccessKey:
        return self.add_key(user)

    @port_call
    def set_status(self, user: str, key_id: str, status: KeyStatus) -> None:
        keys = self._user(user)
        if key_id not in keys:
            raise KeyNotFoundError(f"access key {key_id} of IAM user {user} does not exist (NoSuchEntity)")
        keys[key_id].status = status

    @port_call
    def delete_key(self, user: str, key_id: str) -> None:
        self._user(user).pop(key_id, None)

    def add_key(self, user: str, *, age: timedelta = timedelta(0), status: KeyStatus = "Active") -> NewAccessKey:
        """A key as CreateAccessKey makes it (also what a human did by hand, ``age`` ago)."""
        keys = self._user(user)
        if len(keys) >= 2:
            raise KeyLimitError(f"IAM user {user} already has two access keys (LimitExceeded)")
        key_id = f"AKIAFAKE{next(self._ids):012d}"
        created = self.clock.now() - age
        keys[key_id] = _Key(secrets.token_urlsafe(30), status, created)
        return NewAccessKey(key_id, keys[key_id].secret, created)

    def status(self, user: str) -> dict[str, str]:
        """Key id -> status."""
        return {key_id: key.status for key_id, key in self.keys[user].items()}


class FakeSts(FakePort):
    """``rotation.ports.StsVerifier`` over ``FakeIam``'s keys."""

    def __init__(self, iam: FakeIam, clock: FakeClock, propagation: timedelta = timedelta(0)):
        super().__init__()
        self.iam = iam
        self.clock = clock
        self.propagation = propagation
        self.verified: list[str] = []  # key ids, in the order they passed

    @port_call
    def caller_arn(self, key: NewAccessKey) -> str:
        for user, keys in self.iam.keys.items():
            known = keys.get(key.id)
            if known is None or known.secret != key.secret or known.status != "Active":
                continue
            if self.clock.now() - known.created < self.propagation:
                break
            self.verified.append(key.id)
            return f"arn:aws:iam::{ACCOUNT}:user/{user}"
        raise KeyNotUsableError(f"STS refused key {key.id} (InvalidClientTokenId)")


# --- the state secret --------------------------------------------------------------------------


class FakeStateStore(FakePort):
    """``rotation.ports.StateStore``: one state secret's versions (id -> JSON text) and labels."""

    def __init__(self, arn: str):
        super().__init__()
        self.arn = arn
        self.versions: dict[str, str] = {}
        self.stages: dict[str, str] = {}  # label -> version id
        self._put("{}", ["AWSCURRENT"])  # what the CDK creates

    def _put(self, text: str, labels: list[str], version_id: str | None = None) -> str | None:
        """Secrets Manager's PutSecretValue; None when ``version_id`` names other content."""
        if version_id in self.versions:
            return version_id if self.versions[version_id] == text else None
        version_id = version_id or str(uuid.uuid4())
        self.versions[version_id] = text
        for label in labels:
            if label == "AWSCURRENT" and "AWSCURRENT" in self.stages:
                self.stages["AWSPREVIOUS"] = self.stages["AWSCURRENT"]
            self.stages[label] = version_id
        return version_id

    def _text(self, label: str) -> str | None:
        version = self.stages.get(label)
        return None if version is None else self.versions[version]

    @port_call
    def read(self) -> records.StoredState:
        where = f"state secret {self.arn}"
        current = records.load_current(self._text("AWSCURRENT"), f"{where} (AWSCURRENT)")
        pending_text, lock_text = self._text("AWSPENDING"), self._text(records.LOCK_STAGE)
        pending = None if pending_text is None else records.load_pending(pending_text, f"{where} (AWSPENDING)")
        lock = None if lock_text is None else records.load_lock(lock_text, f"{where} (lock)")
        return records.StoredState(current, pending, self.stages.get("AWSPENDING"), lock)

    @port_call
    def acquire_lock(self, lock: records.LockRecord) -> bool:
        return self._put(records.dump(lock), [records.LOCK_STAGE], lock.version_id(self.arn)) is not None

    @port_call
    def release_lock(self, lock: records.LockRecord) -> None:
        if self._put(records.dump(lock), [records.LOCK_STAGE], lock.version_id(self.arn)) is None:
            raise RuntimeError(f"ResourceExistsException: version {lock.version_id(self.arn)} exists")

    @port_call
    def put_pending(self, record: records.PendingRecord) -> str:
        return self._put(records.dump(record), ["AWSPENDING"])

    @port_call
    def put_current(self, record: records.CurrentRecord) -> None:
        self._put(records.dump(record), ["AWSCURRENT"])

    @port_call
    def drop_pending(self, version_id: str) -> None:
        if self.stages.get("AWSPENDING") == version_id:
            del self.stages["AWSPENDING"]

    def stage(self, label: str) -> dict | None:
        """The JSON of the version holding ``label``."""
        text = self._text(label)
        return None if text is None else json.loads(text)

    def put_json(self, record: dict, label: str = "AWSCURRENT") -> str:
        """A version written by hand (or by an older run)."""
        return self._put(json.dumps(record), [label])


# --- GitLab ------------------------------------------------------------------------------------


class FakeGitLab(FakePort):
    """``rotation.ports.GitLab``: the variables of known targets, by scope."""

    def __init__(self, targets: tuple[GitLabTarget, ...], *, scopes: tuple[str, ...] = ("api",), today: date):
        super().__init__()
        self.containers = {(t.kind, t.id) for t in targets}
        self.variables: dict[tuple[str, str, str, str], str] = {}  # (kind, id, scope, key) -> value
        self.unclear: set[tuple[str, str]] = set()  # targets with a write of unknown outcome
        self.info = TokenInfo(1, "rotation-bot", scopes, True, False, today + timedelta(days=200))
        self.token = "glpat-" + secrets.token_urlsafe(20)

    @property
    def requests_sent(self) -> int:
        """One request per call, as if no call were retried."""
        return sum(self.calls.values())

    def _where(self, target: GitLabTarget, key: str) -> tuple[str, str, str, str]:
        if (target.kind, target.id) not in self.containers:
            raise GitLabNotFoundError(f"{target.kind} {target.id} does not exist", 404)
        return target.kind, target.id, target.environment_scope, key

    @port_call
    def token_info(self) -> TokenInfo:
        return self.info

    @port_call
    def rotate_token(self, expires_at: date) -> tuple[TokenInfo, str]:
        self.info = replace(self.info, id=self.info.id + 1, expires_at=expires_at)
        self.token = "glpat-" + secrets.token_urlsafe(20)
        return self.info, self.token

    @port_call
    def read_variables(self, target: GitLabTarget) -> dict[str, Variable]:
        kind, id_, scope, _ = self._where(target, "")
        return {
            key: Variable(value)
            for (k, i, s, key), value in self.variables.items()
            if (k, i, s) == (kind, id_, scope)
        }

    @port_call
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
        self.variables[self._where(target, key)] = value

    @port_call
    def delete_variable(self, target: GitLabTarget, key: str) -> None:
        self.variables.pop(self._where(target, key), None)

    def late_write_wait(self, target: GitLabTarget) -> float | None:
        return 0.0 if (target.kind, target.id) in self.unclear else None

    def forget_late_writes(self, target: GitLabTarget) -> None:
        self.unclear.discard((target.kind, target.id))

    def delay_for(self, requests: int) -> float:
        return 0.0

    def _failing(self, name: str, args: tuple, fault: _Fault) -> None:
        unknown = fault.landed or (isinstance(fault.error, GitLabError) and fault.error.status is None)
        if name in ("write_variable", "delete_variable") and unknown:
            self.unclear.add((args[0].kind, args[0].id))

    def held(self, target: GitLabTarget) -> tuple[str | None, str | None]:
        """(key id, secret) as the target holds them."""
        return (
            self.variables.get(self._where(target, target.access_key_id_variable)),
            self.variables.get(self._where(target, target.secret_access_key_variable)),
        )

    def hold(self, target: GitLabTarget, key: NewAccessKey) -> None:
        """Both variables of ``target`` set by hand to ``key``."""
        self.variables[self._where(target, target.access_key_id_variable)] = key.id
        self.variables[self._where(target, target.secret_access_key_variable)] = key.secret


# --- the rest ----------------------------------------------------------------------------------


class FakeTokenStore(FakePort):
    """``rotation.ports.TokenStore``: the token secret's JSON as ``rotation.token_secret`` reads
    and writes it (a recorded rotation makes ``read`` and ``begin_rotation`` refuse)."""

    ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token-AbCdEf"

    def __init__(self, token: str):
        super().__init__()
        self.text = json.dumps({token_secret.TOKEN_FIELD: token})

    @port_call
    def read(self) -> str:
        return token_secret.read_token(self.text, self.ARN)

    @port_call
    def begin_rotation(self, rotation: token_secret.TokenRotation) -> None:
        token_secret.read_token(self.text, self.ARN)  # a usable token, no rotation in flight
        self.text = token_secret.with_rotation(self.text, rotation)

    @port_call
    def abandon_rotation(self) -> None:
        self.text = token_secret.without_rotation(self.text)

    @port_call
    def write(self, token: str) -> None:
        self.text = token_secret.with_new_token(self.text, token)


class FakeNotifier(FakePort):
    """``rotation.ports.Notifier``: keeps what was published."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, str]] = []

    @port_call
    def publish(self, subject: str, message: str) -> None:
        self.published.append((subject, message))
