"""The executors of a plan's steps: one method per ``plan.Action``, named as it is, in the order of
the protocol (docs/DESIGN.md, steps 3 to 7), dispatched by the ``EXECUTORS`` table.

An executor changes what its step says and yields the report entries of what it changed, each as
soon as it is done: an executor that fails halfway has still reported everything it did before.
It works from the view the step was planned on and never patches it: what a step itself changed
(a key deleted to make room, the keys after a failed ``CreateAccessKey``) is passed on explicitly.
Every change goes through the user's ``observation.Observation`` (its ``iam``, ``state`` and
``write_target``), which keeps what the run knows true for the next view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from .errors import (
    KeyLimitError,
    KeyNotFoundError,
    OutOfTimeError,
    RotationBlockedError,
    RotationFailedError,
    UserNotFoundError,
    describe,
)
from .observation import Observation
from .plan import Action, Step, View
from .ports import AccessKey, GitLab, NewAccessKey, UserPorts
from .request import RunRequest
from .settings import RotatedUser
from .state import CurrentRecord, PendingRecord, TargetValues, target_key
from .verification import VerificationPolicy, verify_key

# IAM's CreateDate and the Lambda's clock may disagree a little.
_CLOCK_SKEW = timedelta(minutes=1)

# A run goes on with the next step or target only while the Lambda has time for one target's
# requests (two writes and the read-back) after the rate budget's pacing, at this much each.
TARGET_REQUESTS = 3
SECONDS_PER_REQUEST = 2.0


def enough_time(time_left: Callable[[], float], gitlab: GitLab) -> bool:
    return time_left() >= gitlab.delay_for(TARGET_REQUESTS) + TARGET_REQUESTS * SECONDS_PER_REQUEST


@dataclass(frozen=True)
class Done:
    """A change made: one entry of the user report's ``actions``."""

    action: str
    key_id: str | None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pushed:
    """A target that now holds a key a step pushed: one entry of the report's ``targets_updated``."""

    target: str


Entries = Iterator[Done | Pushed]


class Executor:
    """Executes the steps of one user's plan; the reconciler holds the lock meanwhile. ``ports``:
    the observation's ``iam`` and ``state``, and the verifier, clock and sleep."""

    def __init__(
        self,
        user: RotatedUser,
        observation: Observation,
        ports: UserPorts,
        verification: VerificationPolicy,
        request: RunRequest,
    ):
        self.user = user
        self.observation = observation
        self.ports = ports
        self.verification = verification
        self.request = request

    def execute(self, step: Step, view: View) -> Entries:
        return EXECUTORS[step.action](self, step, view)

    def ensure_time(self, before: str) -> None:
        """Raise ``OutOfTimeError`` unless there is time for one more target's writes."""
        if not enough_time(self.ports.time_left, self.ports.gitlab):
            raise OutOfTimeError(f"stopped before {before}: the Lambda's time was nearly up")

    # --- 3. resume or roll back -------------------------------------------------------------

    def resume_pending(self, step: Step, view: View) -> Entries:
        pending, version = _pending(view)
        yield from self._roll_out(pending, version, view, replacing=_other_key(view.keys, pending.access_key_id))

    def roll_back_pending(self, step: Step, view: View) -> Entries:
        pending, version = _pending(view)
        yield from self._roll_back(pending, version, view.state.current)

    def drop_promoted_pending(self, step: Step, view: View) -> Entries:
        _, version = _pending(view)
        self.ports.state.drop_pending(version)
        yield Done(step.action, step.key_id)

    def abandon_pending_intent(self, step: Step, view: View) -> Entries:
        pending, version = _pending(view)
        yield from self._abandon_intent(pending, version, view.keys, view.known_ids())

    # --- 4. orphans -------------------------------------------------------------------------

    def delete_orphan_key(self, step: Step, view: View) -> Entries:
        self.ports.iam.delete_key(self.user.iam_user, _key_id(step))
        yield Done(step.action, step.key_id)

    # --- 5. retire --------------------------------------------------------------------------

    def deactivate_previous_key(self, step: Step, view: View) -> Entries:
        current = view.state.current
        try:
            self.ports.iam.set_status(self.user.iam_user, _key_id(step), "Inactive")
        except KeyNotFoundError:  # deleted meanwhile: nothing left to retire
            self.ports.state.put_current(_without_previous(current))
        else:
            self.ports.state.put_current(replace(current, previous_deactivated_at=view.now))
        yield Done(step.action, step.key_id)

    def record_deactivation(self, step: Step, view: View) -> Entries:
        self.ports.state.put_current(replace(view.state.current, previous_deactivated_at=view.now))
        yield Done(step.action, step.key_id)

    def delete_previous_key(self, step: Step, view: View) -> Entries:
        self.ports.iam.delete_key(self.user.iam_user, _key_id(step))
        self.ports.state.put_current(_without_previous(view.state.current))
        yield Done(step.action, step.key_id)

    def forget_previous_key(self, step: Step, view: View) -> Entries:
        self.ports.state.put_current(_without_previous(view.state.current))
        yield Done(step.action, step.key_id)

    # --- 6. repair --------------------------------------------------------------------------

    def repair_targets(self, step: Step, view: View) -> Entries:
        current = view.state.current
        assert current.access_key_id is not None and current.secret_access_key is not None
        expected = TargetValues(current.access_key_id, current.secret_access_key)
        for target in self.user.targets:
            if view.held[target_key(target)] != expected:
                self.ensure_time(f"repairing {target.label}")
                self.observation.write_target(target, expected)
                yield Pushed(target.label)
        yield Done(step.action, step.key_id)

    # --- 7. rotate --------------------------------------------------------------------------

    def rotate(self, step: Step, view: View) -> Entries:
        """7.1 make room, 7.2 write the intent, create the key and store it as AWSPENDING, then
        ``_roll_out`` (7.3 to 7.6)."""
        iam, state, user = self.ports.iam, self.ports.state, self.user.iam_user
        if step.make_room:
            iam.delete_key(user, step.make_room)
            yield Done("delete_key_to_make_room", step.make_room)
        intent = PendingRecord(
            run_id=self.request.run_id,
            event_id=self.request.event_id,
            started_at=view.now,
            targets_before=dict(view.held),
        )
        intent_version = state.put_pending(intent)
        try:
            new = iam.create_key(user)
        except (KeyLimitError, UserNotFoundError):  # IAM refused: no key was made
            state.drop_pending(intent_version)
            raise
        except Exception:
            # IAM may have made the key and lost the answer: its secret is then lost. Clean up now
            # from the keys as they are now, the intent still stored; should that fail too, the
            # next run abandons the intent.
            try:
                yield from self._abandon_intent(intent, intent_version, iam.list_keys(user), view.known_ids())
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                pass
            raise
        yield Done("create_key", new.id, {"reason": step.reason})
        pending = replace(intent, access_key_id=new.id, secret_access_key=new.secret)
        try:
            pending_version = state.put_pending(pending)
        except Exception as exc:
            iam.delete_key(user, new.id)  # its secret is not stored anywhere durable: it must not live
            yield Done("delete_new_key", new.id)
            raise RotationFailedError(
                f"could not store new key {new.id} as AWSPENDING ({exc}); the key was deleted"
            ) from None
        replacing = _other_key([k for k in view.keys if k.id != step.make_room], new.id)
        yield from self._roll_out(pending, pending_version, view, replacing)

    def blocked(self, step: Step, view: View) -> Entries:
        raise RotationBlockedError(step.reason)

    # --- the parts of 3 and 7 ---------------------------------------------------------------

    def _roll_out(self, pending: PendingRecord, pending_version: str, view: View, replacing: str | None) -> Entries:
        """7.3 verify, 7.4 push to every target that does not hold it yet, with read-back, 7.5
        promote (``replacing`` becomes the previous key, to be retired); on any failure 7.6 roll
        back."""
        assert pending.access_key_id is not None and pending.secret_access_key is not None
        key = NewAccessKey(pending.access_key_id, pending.secret_access_key, view.now)
        values = TargetValues(key.id, key.secret)
        holding = 0
        try:
            calls = verify_key(self.ports.verifier, key, self.user.iam_user, self.ports.sleep, self.verification)
            yield Done("verify_key", key.id, {"sts_calls": calls})
            for target in self.user.targets:
                if self.observation.held(target) != values:
                    self.ensure_time(f"writing new key {key.id} to {target.label}")
                    self.observation.write_target(target, values)
                    yield Pushed(target.label)
                holding += 1
        except OutOfTimeError as exc:  # a safe point: AWSPENDING has what the next run needs to finish
            raise OutOfTimeError(
                f"{exc}; {holding} of {len(self.user.targets)} targets hold new key {key.id}, which AWSPENDING "
                "holds: the next run finishes the rotation, and the old key works until then"
            ) from None
        except Exception as exc:
            cause = describe(exc)
            yield from self._roll_back(pending, pending_version, view.state.current)
            old = view.state.current.access_key_id or ", ".join(sorted(view.held_ids() - {key.id}))
            raise RotationFailedError(
                f"rotation to new key {key.id} failed and was rolled back ({cause}); every target holds what it "
                f"held before and the old key {old or '(none: no target held a key)'} was not touched"
            ) from None
        self.ports.state.put_current(
            CurrentRecord(
                access_key_id=key.id,
                secret_access_key=key.secret,
                pushed_at=self.ports.clock.now(),
                event_id=pending.event_id,
                previous_access_key_id=replacing,
            )
        )
        self.ports.state.drop_pending(pending_version)
        yield Done("promote_key", key.id, {"previous_key_id": replacing})

    def _roll_back(self, pending: PendingRecord, pending_version: str, current: CurrentRecord) -> Entries:
        """Targets back to ``targets_before`` (where they hold the pending key), then delete the
        pending key, then drop AWSPENDING. Raises, leaving the key and AWSPENDING for the next
        run, when a target cannot be put back: deleting a key a target holds would lock CI out.

        A target missing from ``targets_before`` (added to the settings since) gets the current key.
        A hidden secret cannot be read, and a run that died between a target's two writes left
        the new secret under the old key id: a hidden target is restored whatever its key id says."""
        key_id, secret = pending.access_key_id, pending.secret_access_key
        fallback = TargetValues(current.access_key_id, current.secret_access_key)
        failures = []
        for target in self.user.targets:
            try:
                held = self.observation.held(target)
                holds_it = held.access_key_id == key_id or held.secret_access_key == secret
                if not holds_it and not self.observation.secret_hidden(target):
                    continue
                before = pending.targets_before.get(target_key(target), fallback)
                self.observation.write_target(target, before)
                yield Done("restore_target", key_id, {"target": target.label})
            except Exception as exc:
                failures.append(f"{target.label}: {exc}")
        if failures:
            raise RotationFailedError(
                f"rollback of new key {key_id} is incomplete, so the key was kept Active and AWSPENDING stays for "
                f"the next run to finish or roll back: could not restore {'; '.join(failures)}"
            )
        if key_id is not None:
            self.ports.iam.delete_key(self.user.iam_user, key_id)
            yield Done("delete_new_key", key_id)
        self.ports.state.drop_pending(pending_version)
        yield Done("drop_pending", key_id)

    def _abandon_intent(
        self, pending: PendingRecord, pending_version: str, keys: Sequence[AccessKey], known: set[str | None]
    ) -> Entries:
        """A run stored its intent, maybe created a key, and died before storing the key: any of
        ``keys`` created since then that is not ``known`` is that key, and its secret is lost."""
        for key in keys:
            if key.id not in known and key.created >= pending.started_at - _CLOCK_SKEW:
                self.ports.iam.delete_key(self.user.iam_user, key.id)
                yield Done("delete_lost_key", key.id)
        self.ports.state.drop_pending(pending_version)
        yield Done("drop_pending", None)


EXECUTORS: dict[Action, Callable[[Executor, Step, View], Entries]] = {
    Action.RESUME_PENDING: Executor.resume_pending,
    Action.ROLL_BACK_PENDING: Executor.roll_back_pending,
    Action.DROP_PROMOTED_PENDING: Executor.drop_promoted_pending,
    Action.ABANDON_PENDING_INTENT: Executor.abandon_pending_intent,
    Action.DELETE_ORPHAN_KEY: Executor.delete_orphan_key,
    Action.DEACTIVATE_PREVIOUS_KEY: Executor.deactivate_previous_key,
    Action.RECORD_DEACTIVATION: Executor.record_deactivation,
    Action.DELETE_PREVIOUS_KEY: Executor.delete_previous_key,
    Action.FORGET_PREVIOUS_KEY: Executor.forget_previous_key,
    Action.REPAIR_TARGETS: Executor.repair_targets,
    Action.ROTATE: Executor.rotate,
    Action.BLOCKED: Executor.blocked,
}


def _pending(view: View) -> tuple[PendingRecord, str]:
    pending, version = view.state.pending, view.state.pending_version
    assert pending is not None and version is not None
    return pending, version


def _key_id(step: Step) -> str:
    assert step.key_id is not None
    return step.key_id


def _other_key(keys: Sequence[AccessKey], new_key_id: str | None) -> str | None:
    """The key a new key replaces: the user's other one (IAM allows two), if any."""
    return next((k.id for k in keys if k.id != new_key_id), None)


def _without_previous(current: CurrentRecord) -> CurrentRecord:
    return replace(current, previous_access_key_id=None, previous_deactivated_at=None)
