"""One user's reconcile run: observe, plan, take the lock, execute step by step, release.

Order of every observation: IAM keys first, then the state secret, then GitLab. A key another run
creates after our listing is invisible to us (we cannot delete it as an orphan); one created
before our listing was created under a lock we then see in the state secret.

Concurrency: the lock (``rotation.state``) is taken only when there is something to change, and
everything is observed and planned again once it is held, so a run never acts on what it saw
before another run finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from .errors import (
    KeyLimitError,
    KeyNotFoundError,
    RotationBlockedError,
    RotationError,
    RotationFailedError,
    UserNotFoundError,
)
from .gitlab_port import GitLab
from .plan import ACTIONS, Plan, Policy, Step, View, plan
from .ports import Clock, IamKeys, NewAccessKey, Sleep, StateStore, StsVerifier
from .request import RunRequest
from .settings import RotatedUser
from .state import LOCK_TTL, CurrentRecord, LockRecord, PendingRecord, TargetValues, target_key
from .targets import push_key, read_target, restore_target
from .verification import VerificationPolicy, verify_key

logger = logging.getLogger(__name__)

MAX_STEPS = 12  # more than any plan holds; a plan that keeps coming back is a bug, not a loop

# IAM's CreateDate and the Lambda's clock may disagree a little.
_CLOCK_SKEW = timedelta(minutes=1)


@dataclass
class UserReport:
    iam_user: str
    outcome: str = "unchanged"  # unchanged | changed | planned | skipped | failed
    actions: list[dict] = field(default_factory=list)
    targets_updated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def act(self, action: str, key_id: str | None, **extra: object) -> None:
        self.actions.append({"action": action, "key_id": key_id, **extra})
        self.outcome = "changed"
        logger.info("%s: %s %s", self.iam_user, action, key_id or "")

    def as_json(self) -> dict:
        data: dict = {"iam_user": self.iam_user, "outcome": self.outcome, "actions": self.actions}
        if self.targets_updated:
            data["targets_updated"] = self.targets_updated
        if self.notes:
            data["notes"] = self.notes
        if self.error:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class UserPorts:
    iam: IamKeys
    state: StateStore
    gitlab: GitLab
    verifier: StsVerifier
    clock: Clock
    sleep: Sleep


class Reconciler:
    def __init__(
        self, user: RotatedUser, ports: UserPorts, policy: Policy, verification: VerificationPolicy, request: RunRequest
    ):
        self.user = user
        self.ports = ports
        self.policy = policy
        self.verification = verification
        self.request = request
        self.report = UserReport(user.iam_user)

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> UserReport:
        try:
            self._run()
        except Exception as exc:
            self.report.outcome = "failed"
            self.report.error = str(exc) if isinstance(exc, RotationError) else f"{type(exc).__name__}: {exc}"
        return self.report

    def _run(self) -> None:
        view = self.observe()
        lock = view.state.lock
        if lock is not None and lock.is_held(view.now):
            self._skip(lock)
            return
        current_plan = self._plan(view)
        if not current_plan.steps:
            return
        if self.request.dry_run:
            self.report.outcome = "planned"
            self.report.actions = [
                {"action": s.action, "key_id": s.key_id, "reason": s.reason, "what": ACTIONS[s.action]}
                | ({"make_room": s.make_room} if s.make_room else {})
                for s in current_plan.steps
            ]
            return
        if all(s.action == "blocked" for s in current_plan.steps):  # nothing to do but explain
            raise RotationBlockedError(current_plan.steps[0].reason)
        mine = LockRecord(lock.generation + 1 if lock else 0, self.request.run_id, view.now)
        if not self.ports.state.acquire_lock(mine):
            self.report.outcome = "skipped"
            self.report.notes.append(f"another run took the rotation lock (generation {mine.generation}) first")
            return
        try:
            self._execute_until_done()
        except Exception:
            try:
                self.ports.state.release_lock(replace(mine, released=True))
            except Exception as exc:  # the run's own error matters more; the lock expires anyway
                logger.warning("could not release the rotation lock of %s: %s", self.user.iam_user, exc)
            raise
        self.ports.state.release_lock(replace(mine, released=True))

    def _skip(self, lock: LockRecord) -> None:
        self.report.outcome = "skipped"
        self.report.notes.append(
            f"run {lock.run_id} holds the rotation lock since {lock.acquired_at.isoformat()}; "
            f"this run leaves the user to it (a lock is taken over after {LOCK_TTL.total_seconds() / 60:.0f} minutes)"
        )

    def _plan(self, view: View) -> Plan:
        result = plan(view, self.policy, self.request.force, self.request.event_id)
        self.report.notes = list(result.notes)
        return result

    def _execute_until_done(self) -> None:
        for _ in range(MAX_STEPS):
            view = self.observe()
            steps = self._plan(view).steps
            if not steps:
                return
            self._execute(steps[0], view)
        raise RotationError(f"the plan for {self.user.iam_user} did not settle after {MAX_STEPS} steps")

    def observe(self) -> View:
        keys = tuple(self.ports.iam.list_keys(self.user.iam_user))
        state = self.ports.state.read()
        held = {target_key(t): read_target(self.ports.gitlab, t) for t in self.user.targets}
        return View(self.ports.clock.now(), keys, state, self.user.targets, held)

    # --- steps -------------------------------------------------------------------------------

    def _execute(self, step: Step, view: View) -> None:
        iam, state, user = self.ports.iam, self.ports.state, self.user.iam_user
        current = view.state.current
        pending = view.state.pending
        logger.info("step %s on key %s for %s: %s", step.action, step.key_id, user, step.reason)
        if step.action == "blocked":
            raise RotationBlockedError(step.reason)
        if step.action == "rotate":
            self._rotate(step, view)
        elif step.action == "resume_pending":
            assert pending is not None and view.state.pending_version is not None
            self._roll_out(pending, view.state.pending_version, view)
        elif step.action == "roll_back_pending":
            assert pending is not None and view.state.pending_version is not None
            self._roll_back(pending, view.state.pending_version, current)
        elif step.action == "drop_promoted_pending":
            assert view.state.pending_version is not None
            state.drop_pending(view.state.pending_version)
        elif step.action == "abandon_pending_intent":
            assert pending is not None and view.state.pending_version is not None
            self._abandon_intent(pending, view.state.pending_version, view)
        elif step.action in ("delete_orphan_key", "delete_previous_key"):
            iam.delete_key(user, step.key_id)
            if step.action == "delete_previous_key":
                state.put_current(replace(current, previous_access_key_id=None, previous_deactivated_at=None))
        elif step.action == "deactivate_previous_key":
            try:
                iam.set_status(user, step.key_id, "Inactive")
            except KeyNotFoundError:  # deleted meanwhile: nothing left to retire
                state.put_current(replace(current, previous_access_key_id=None, previous_deactivated_at=None))
            else:
                state.put_current(replace(current, previous_deactivated_at=view.now))
        elif step.action == "record_deactivation":
            state.put_current(replace(current, previous_deactivated_at=view.now))
        elif step.action == "repair_targets":
            expected = TargetValues(current.access_key_id, current.secret_access_key)
            for target in self.user.targets:
                if view.held[target_key(target)] != expected:
                    push_key(self.ports.gitlab, target, expected.access_key_id, expected.secret_access_key)
                    self.report.targets_updated.append(target.label)
        elif step.action == "forget_previous_key":
            state.put_current(replace(current, previous_access_key_id=None, previous_deactivated_at=None))
        else:
            raise AssertionError(f"no executor for step {step.action}")
        if step.action not in ("rotate", "resume_pending", "roll_back_pending", "abandon_pending_intent"):
            self.report.act(step.action, step.key_id)

    def _rotate(self, step: Step, view: View) -> None:
        iam, state, user = self.ports.iam, self.ports.state, self.user.iam_user
        if step.make_room:
            iam.delete_key(user, step.make_room)
            self.report.act("delete_key_to_make_room", step.make_room)
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
            # IAM may have made the key and lost the answer: its secret is then lost. Clean up now,
            # the intent still stored; should that fail too, the next run abandons the intent.
            try:
                self._abandon_intent(intent, intent_version, replace(view, keys=tuple(iam.list_keys(user))))
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                pass
            raise
        self.report.act("create_key", new.id, reason=step.reason)
        pending = replace(intent, access_key_id=new.id, secret_access_key=new.secret)
        try:
            pending_version = state.put_pending(pending)
        except Exception as exc:
            iam.delete_key(user, new.id)  # its secret is not stored anywhere durable: it must not live
            self.report.act("delete_new_key", new.id)
            raise RotationFailedError(
                f"could not store new key {new.id} as AWSPENDING ({exc}); the key was deleted"
            ) from None
        remaining = tuple(k for k in view.keys if k.id != step.make_room)
        self._roll_out(pending, pending_version, replace(view, keys=remaining))

    def _roll_out(self, pending: PendingRecord, pending_version: str, view: View) -> None:
        """Verify, push to every target with read-back, promote; on any failure roll back."""
        assert pending.access_key_id is not None and pending.secret_access_key is not None
        key = NewAccessKey(pending.access_key_id, pending.secret_access_key, view.now)
        try:
            calls = verify_key(self.ports.verifier, key, self.user.iam_user, self.ports.sleep, self.verification)
            self.report.act("verify_key", key.id, sts_calls=calls)
            for target in self.user.targets:
                push_key(self.ports.gitlab, target, key.id, key.secret)
                self.report.targets_updated.append(target.label)
        except Exception as exc:
            cause = str(exc) if isinstance(exc, RotationError) else f"{type(exc).__name__}: {exc}"
            self._roll_back(pending, pending_version, view.state.current)
            old = view.state.current.access_key_id
            raise RotationFailedError(
                f"rotation to new key {key.id} failed and was rolled back ({cause}); every target holds what it "
                f"held before and the old key {old or '(none recorded)'} was not touched"
            ) from None
        others = [k.id for k in view.keys if k.id != key.id]
        self.ports.state.put_current(
            CurrentRecord(
                access_key_id=key.id,
                secret_access_key=key.secret,
                pushed_at=self.ports.clock.now(),
                event_id=pending.event_id,
                previous_access_key_id=others[0] if others else None,
            )
        )
        self.ports.state.drop_pending(pending_version)
        self.report.act("promote_key", key.id, previous_key_id=others[0] if others else None)

    def _roll_back(self, pending: PendingRecord, pending_version: str, current: CurrentRecord) -> None:
        """Targets back to ``targets_before`` (where they hold the pending key), then delete the
        pending key, then drop AWSPENDING. Raises, leaving the key and AWSPENDING for the next
        run, when a target cannot be put back: deleting a key a target holds would lock CI out.

        A target missing from ``targets_before`` (added to the settings since) gets the current key."""
        key_id, secret = pending.access_key_id, pending.secret_access_key
        fallback = TargetValues(current.access_key_id, current.secret_access_key)
        failures = []
        for target in self.user.targets:
            try:
                held = read_target(self.ports.gitlab, target)
                if held.access_key_id != key_id and held.secret_access_key != secret:
                    continue
                before = pending.targets_before.get(target_key(target), fallback)
                restore_target(self.ports.gitlab, target, before)
                self.report.act("restore_target", key_id, target=target.label)
            except Exception as exc:
                failures.append(f"{target.label}: {exc}")
        if failures:
            raise RotationFailedError(
                f"rollback of new key {key_id} is incomplete, so the key was kept Active and AWSPENDING stays for "
                f"the next run to finish or roll back: could not restore {'; '.join(failures)}"
            )
        if key_id is not None:
            self.ports.iam.delete_key(self.user.iam_user, key_id)
            self.report.act("delete_new_key", key_id)
        self.ports.state.drop_pending(pending_version)
        self.report.act("drop_pending", key_id)

    def _abandon_intent(self, pending: PendingRecord, pending_version: str, view: View) -> None:
        """A run stored its intent, maybe created a key, and died before storing the key: any key
        created since then that nothing knows of is that key, and its secret is lost."""
        current = view.state.current
        known = view.held_ids() | {current.access_key_id, current.previous_access_key_id}
        for key in view.keys:
            if key.id not in known and key.created >= pending.started_at - _CLOCK_SKEW:
                self.ports.iam.delete_key(self.user.iam_user, key.id)
                self.report.act("delete_lost_key", key.id)
        self.ports.state.drop_pending(pending_version)
        self.report.act("drop_pending", None)
