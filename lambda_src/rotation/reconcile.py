"""One user's reconcile run: observe, plan (``rotation.plan``), take the lock, execute the plan's
first step (``rotation.steps``), observe and plan again until nothing is left, settle the writes
GitLab did not answer, release.

Order of every observation: the state secret first, then the IAM keys, then GitLab.

Concurrency: the lock (``rotation.state``) is taken only when there is something to change, on
the generation after the one the observation's state read found released, so taking it proves no
other run took the lock, and so changed anything, since that read: what was read after it (the
keys, the targets) is still true. A run that finished between the reads is seen whole (its state,
its keys); one that started after the state read makes us lose the lock race and change nothing,
so a key it created, which our listing may show, is never mistaken for an orphan and deleted. The
views after the lock come from the user's ``observation.Observation``, which reads each place once
and applies the run's own confirmed changes, and reads again what a change with an unknown outcome
may have touched.

Late writes: a write GitLab did not answer may still land, after the run went on (even after a
rollback put the target back). Before it releases the lock, succeeded or failed, the run waits
until no such write can land any more, reads those targets again and repairs what it finds
(``_settle``): no run ends with a target holding a mismatched pair because of its own late write.
A hidden secret cannot be read, so there the run writes the secret of the key the key id names
again (``Observation.rewrite_hidden_secret``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .errors import OutOfTimeError, RotationBlockedError, RotationError, describe
from .observation import Observation
from .plan import Action, Plan, Policy, View, plan
from .ports import UserPorts
from .request import RunRequest
from .settings import RotatedUser
from .state import LOCK_TTL, LockRecord
from .steps import Done, Entries, Executor
from .targets import UnknownHiddenSecretError
from .verification import VerificationPolicy

logger = logging.getLogger(__name__)

MAX_STEPS = 12  # more than any plan holds; a plan that keeps coming back is a bug, not a loop
SETTLE_ROUNDS = 3  # repairs of late writes whose own writes went unanswered again: then the next run


@dataclass
class UserReport:
    iam_user: str
    outcome: str = "unchanged"  # unchanged | changed | planned | skipped | stopped | failed
    actions: list[dict] = field(default_factory=list)
    targets_updated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    # Age of the key CI uses at the end of the run (AWSCURRENT's, else the oldest Active key), as
    # last observed; None when the user has no such key. Feeds the key-age metric and its alarm.
    current_key_age_days: float | None = None

    def record(self, entries: Entries) -> None:
        """Add a step's entries as the step makes them (those of a step that fails halfway too)."""
        for entry in entries:
            if isinstance(entry, Done):
                self.actions.append({"action": str(entry.action), "key_id": entry.key_id, **entry.details})
                self.outcome = "changed"
                logger.info("%s: %s %s", self.iam_user, entry.action, entry.key_id or "")
            else:
                self.targets_updated.append(entry.target)

    def as_json(self) -> dict:
        data: dict = {"iam_user": self.iam_user, "outcome": self.outcome, "actions": self.actions}
        if self.current_key_age_days is not None:
            data["current_key_age_days"] = self.current_key_age_days
        if self.targets_updated:
            data["targets_updated"] = self.targets_updated
        if self.notes:
            data["notes"] = self.notes
        if self.error:
            data["error"] = self.error
        return data


class Reconciler:
    def __init__(
        self,
        observation: Observation,
        ports: UserPorts,
        policy: Policy,
        verification: VerificationPolicy,
        request: RunRequest,
    ):
        self.user = observation.user
        self.observation = observation
        self.ports = ports
        self.policy = policy
        self.request = request
        observed = replace(ports, iam=observation.iam, state=observation.state)
        self.executor = Executor(self.user, observation, observed, verification, request)
        self.report = UserReport(self.user.iam_user)

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> UserReport:
        try:
            self._run()
        except OutOfTimeError as exc:
            self.report.outcome = "stopped"
            self.report.notes.append(str(exc))
        except Exception as exc:
            self.report.outcome = "failed"
            self.report.error = describe(exc)
        return self.report

    def _run(self) -> None:
        for attempt in range(2):
            try:
                view = self.observe()
            except UnknownHiddenSecretError:
                if attempt:
                    raise
                # As for a blocked plan below: the targets may have been read after another run
                # rotated since our state read, its new key not yet in what we read: read again.
                self.observation.forget_all()
                continue
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
                    {"action": str(s.action), "key_id": s.key_id, "reason": s.reason, "what": s.action.description}
                    | ({"make_room": s.make_room} if s.make_room else {})
                    for s in current_plan.steps
                ]
                return
            if not all(s.action is Action.BLOCKED for s in current_plan.steps):
                break
            if attempt:  # nothing to do but explain
                raise RotationBlockedError(current_plan.steps[0].reason)
            # That is explained without the lock, so first make sure the view was not taken while
            # another run was rotating (its new key in IAM and GitLab, not in the state read
            # before them): read everything again.
            self.observation.forget_all()
        state = self.observation.state
        mine = LockRecord(lock.generation + 1 if lock else 0, self.request.run_id, view.now)
        if not state.acquire_lock(mine):
            self.report.outcome = "skipped"
            self.report.notes.append(f"another run took the rotation lock (generation {mine.generation}) first")
            return
        try:
            self._execute_until_done()
        except Exception:
            try:
                self._settle()
            except Exception as exc:  # the run's own error matters more; the next run repairs
                logger.warning("could not settle the late writes of %s: %s", self.user.iam_user, describe(exc))
            try:
                state.release_lock(replace(mine, released=True))
            except Exception as exc:  # the run's own error matters more; the lock expires anyway
                logger.warning("could not release the rotation lock of %s: %s", self.user.iam_user, exc)
            raise
        self._settle()
        state.release_lock(replace(mine, released=True))

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
            step = steps[0]
            self.executor.ensure_time(f"{step.action} ({step.reason})")
            logger.info("step %s on key %s for %s: %s", step.action, step.key_id, self.user.iam_user, step.reason)
            self.report.record(self.executor.execute(step, view))
        raise RotationError(f"the plan for {self.user.iam_user} did not settle after {MAX_STEPS} steps")

    def _settle(self) -> None:
        """Wait until no write GitLab left unanswered can land on this user's targets, read them
        again, and repair what a late write changed (``REPAIR_TARGETS`` only: whatever else the
        plan then holds is the next run's to do)."""
        gitlab = self.ports.gitlab
        for _ in range(SETTLE_ROUNDS):
            waits = {t: w for t in self.user.targets if (w := gitlab.late_write_wait(t)) is not None}
            if not waits:
                return
            labels = ", ".join(t.label for t in waits)
            seconds = max(waits.values())
            logger.info("waiting %.1f s for writes to %s GitLab did not answer, then reading them again", seconds, labels)
            if seconds > 0:
                self.ports.sleep(seconds)
            for target in waits:
                gitlab.forget_late_writes(target)
                self.observation.forget_target(target)
                if (key_id := self.observation.rewrite_hidden_secret(target)) is not None:
                    self.report.notes.append(f"wrote the hidden secret of {key_id} to {target.label} again")
            view = self.observe()
            repair = next(
                (s for s in plan(view, self.policy, False, self.request.event_id).steps if s.action is Action.REPAIR_TARGETS),
                None,
            )
            self.report.notes.append(
                f"read {labels} again after writes GitLab did not answer"
                + (f": {repair.reason}, repaired" if repair else ": nothing to repair")
            )
            if repair is not None:
                self.report.record(self.executor.execute(repair, view))
        self.report.notes.append(
            f"writes to {self.user.iam_user}'s targets went unanswered {SETTLE_ROUNDS} times; the next run reads them again"
        )

    def observe(self) -> View:
        view = self.observation.view()
        self.report.current_key_age_days = _current_key_age_days(view)
        return view


def _current_key_age_days(view: View) -> float | None:
    recorded = view.state.current.access_key_id
    key = next((k for k in view.keys if k.id == recorded), None)
    if key is None:
        active = sorted((k for k in view.keys if k.status == "Active"), key=lambda k: k.created)
        key = active[0] if active else None
    return None if key is None else round((view.now - key.created).total_seconds() / 86400, 2)
