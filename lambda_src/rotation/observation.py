"""What a run knows of one user's three places (the IAM keys, the state secret, the GitLab
targets), and how that knowledge stays true while the run changes them: each place is read once,
and then changed only through this module, which applies each change the place confirmed to what
it knows. A change whose outcome is not known (an error, a lost answer) makes the run forget that
place, so the next view reads it again.

Reads follow the order of every observation: the state secret first, then the IAM keys, then
GitLab. Reading a place again therefore forgets every place after it: a view never combines a
read with a state read made after it.

Why a view served from memory is as good as a new read: every change to a user's keys, state and
targets is made under the user's rotation lock, and a run that takes lock generation n + 1 proves
that nobody took it since the run read generation n released (``rotation.state``). So what the run
read after that state read is still what is there when it holds the lock (the state is read
first for this), and afterwards only the run itself changes it, through here. A person editing a
variable or a key meanwhile is seen by the next run, or by the read that ends every write to a
target.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from .plan import View
from .ports import AccessKey, Clock, GitLab, IamKeys, KeyStatus, NewAccessKey, StateStore, Variable
from .settings import GitLabTarget, RotatedUser
from .state import CurrentRecord, LockRecord, PendingRecord, StoredState, TargetValues, target_key
from .targets import held, write


class Observation:
    def __init__(self, user: RotatedUser, iam: IamKeys, state: StateStore, gitlab: GitLab, clock: Clock):
        self.user = user
        self._gitlab = gitlab
        self._clock = clock
        self.iam = ObservedIam(self, iam)
        self.state = ObservedState(self, state)
        self._keys: tuple[AccessKey, ...] | None = None
        self._stored: StoredState | None = None
        self._variables: dict[str, dict[str, Variable]] = {}  # by ``target_key``

    # --- reading ---------------------------------------------------------------------------

    def stored(self) -> StoredState:
        if self._stored is None:
            self._keys = None
            self._variables.clear()
            self._stored = self.state.port.read()
        return self._stored

    def keys(self) -> tuple[AccessKey, ...]:
        self.stored()
        if self._keys is None:
            self._variables.clear()
            self._keys = tuple(self.iam.port.list_keys(self.user.iam_user))
        return self._keys

    def variables(self, target: GitLabTarget) -> dict[str, Variable]:
        self.keys()
        name = target_key(target)
        if name not in self._variables:
            self._variables[name] = self._gitlab.read_variables(target)
        return self._variables[name]

    def held(self, target: GitLabTarget) -> TargetValues:
        return held(target, self.variables(target), self._known_secrets())

    def _known_secrets(self) -> dict[str, str]:
        """Key id -> secret of the keys the state secret holds (AWSCURRENT's, AWSPENDING's)."""
        stored = self.stored()
        records = (stored.current, stored.pending) if stored.pending else (stored.current,)
        return {r.access_key_id: r.secret_access_key for r in records if r.access_key_id and r.secret_access_key}

    def view(self) -> View:
        stored, keys = self.stored(), self.keys()
        holding = {target_key(t): self.held(t) for t in self.user.targets}
        return View(self._clock.now(), keys, stored, self.user.targets, holding)

    # --- forgetting ------------------------------------------------------------------------

    def forget_all(self) -> None:
        self._stored = None

    def forget_target(self, target: GitLabTarget) -> None:
        self._variables.pop(target_key(target), None)

    @contextmanager
    def _forgetting(self, place: str) -> Iterator[None]:
        """Forget ``place`` (and so every place after it) when the change in the block fails."""
        try:
            yield
        except BaseException:
            if place == "state":
                self._stored = None
            else:
                self._keys = None
            raise

    # --- changing the targets --------------------------------------------------------------

    def write_target(self, target: GitLabTarget, values: TargetValues) -> None:
        """Make ``target`` hold ``values`` (``targets.write``: written, read back, checked)."""
        before, known = self.variables(target), self._known_secrets()
        self.forget_target(target)  # until the read that ends the write says what it holds
        self._variables[target_key(target)] = write(self._gitlab, target, before, values, known)

    def rewrite_hidden_secret(self, target: GitLabTarget) -> str | None:
        """After writes whose outcome is unknown: a hidden secret may have been left by a write
        that landed late, and no read can tell (GitLab never shows it). Write the secret of the key
        the key id variable names again, when the state secret holds that key; returns the key id
        (None: nothing written: no hidden secret, or a key id the view then reports)."""
        key, known = self.variables(target).get(target.access_key_id_variable), self._known_secrets()
        if not self.secret_hidden(target) or key is None or key.value not in known:
            return None
        self.write_target(target, TargetValues(key.value, known[key.value]))
        return key.value

    def secret_hidden(self, target: GitLabTarget) -> bool:
        """Whether the target's secret variable is hidden: what ``held`` says of its secret is
        then taken from its key id, never read."""
        secret = self.variables(target).get(target.secret_access_key_variable)
        return target.delivery == "variables" and secret is not None and secret.hidden


class ObservedIam:
    """``IamKeys`` for the observed user, applying each confirmed change to the known keys."""

    def __init__(self, observation: Observation, port: IamKeys):
        self._observation = observation
        self.port = port

    def list_keys(self, user: str) -> list[AccessKey]:
        return list(self._observation.keys())

    def create_key(self, user: str) -> NewAccessKey:
        keys = self._observation.keys()
        with self._observation._forgetting("keys"):
            new = self.port.create_key(user)
        self._observation._keys = (*keys, AccessKey(new.id, "Active", new.created))
        return new

    def set_status(self, user: str, key_id: str, status: KeyStatus) -> None:
        keys = self._observation.keys()
        with self._observation._forgetting("keys"):
            self.port.set_status(user, key_id, status)
        self._observation._keys = tuple(replace(k, status=status) if k.id == key_id else k for k in keys)

    def delete_key(self, user: str, key_id: str) -> None:
        keys = self._observation.keys()
        with self._observation._forgetting("keys"):
            self.port.delete_key(user, key_id)
        self._observation._keys = tuple(k for k in keys if k.id != key_id)


class ObservedState:
    """``StateStore`` of the observed user, applying each confirmed write to the known state."""

    def __init__(self, observation: Observation, port: StateStore):
        self._observation = observation
        self.port = port

    def read(self) -> StoredState:
        return self._observation.stored()

    def acquire_lock(self, lock: LockRecord) -> bool:
        stored = self._observation.stored()
        with self._observation._forgetting("state"):
            taken = self.port.acquire_lock(lock)
        self._observation._stored = replace(stored, lock=lock) if taken else None  # lost: another run acts
        return taken

    def release_lock(self, lock: LockRecord) -> None:
        stored = self._observation.stored()
        with self._observation._forgetting("state"):
            self.port.release_lock(lock)
        self._observation._stored = replace(stored, lock=lock)

    def put_pending(self, record: PendingRecord) -> str:
        stored = self._observation.stored()
        with self._observation._forgetting("state"):
            version = self.port.put_pending(record)
        self._observation._stored = replace(stored, pending=record, pending_version=version)
        return version

    def put_current(self, record: CurrentRecord) -> None:
        stored = self._observation.stored()
        with self._observation._forgetting("state"):
            self.port.put_current(record)
        self._observation._stored = replace(stored, current=record)

    def drop_pending(self, version_id: str) -> None:
        stored = self._observation.stored()
        with self._observation._forgetting("state"):
            self.port.drop_pending(version_id)
        if stored.pending_version == version_id:
            stored = replace(stored, pending=None, pending_version=None)
        self._observation._stored = stored
