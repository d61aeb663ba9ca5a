"""One user's reconcile run: observe, plan (``rotation.plan``), take the lock, execute the plan's
first step (``rotation.steps``), observe and plan again until nothing is left, release.

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

from .errors import RotationBlockedError, RotationError, describe
from .plan import Action, Plan, Policy, View, plan
from .ports import UserPorts
from .request import RunRequest
from .settings import RotatedUser
from .state import LOCK_TTL, LockRecord, target_key
from .steps import Done, Entries, Executor
from .targets import read_target
from .verification import VerificationPolicy

logger = logging.getLogger(__name__)

MAX_STEPS = 12  # more than any plan holds; a plan that keeps coming back is a bug, not a loop


@dataclass
class UserReport:
    iam_user: str
    outcome: str = "unchanged"  # unchanged | changed | planned | skipped | failed
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
        self, user: RotatedUser, ports: UserPorts, policy: Policy, verification: VerificationPolicy, request: RunRequest
    ):
        self.user = user
        self.ports = ports
        self.policy = policy
        self.request = request
        self.executor = Executor(user, ports, verification, request)
        self.report = UserReport(user.iam_user)

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> UserReport:
        try:
            self._run()
        except Exception as exc:
            self.report.outcome = "failed"
            self.report.error = describe(exc)
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
                {"action": str(s.action), "key_id": s.key_id, "reason": s.reason, "what": s.action.description}
                | ({"make_room": s.make_room} if s.make_room else {})
                for s in current_plan.steps
            ]
            return
        if all(s.action is Action.BLOCKED for s in current_plan.steps):  # nothing to do but explain
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
            step = steps[0]
            logger.info("step %s on key %s for %s: %s", step.action, step.key_id, self.user.iam_user, step.reason)
            self.report.record(self.executor.execute(step, view))
        raise RotationError(f"the plan for {self.user.iam_user} did not settle after {MAX_STEPS} steps")

    def observe(self) -> View:
        keys = tuple(self.ports.iam.list_keys(self.user.iam_user))
        state = self.ports.state.read()
        held = {target_key(t): read_target(self.ports.gitlab, t) for t in self.user.targets}
        view = View(self.ports.clock.now(), keys, state, self.user.targets, held)
        self.report.current_key_age_days = _current_key_age_days(view)
        return view


def _current_key_age_days(view: View) -> float | None:
    recorded = view.state.current.access_key_id
    key = next((k for k in view.keys if k.id == recorded), None)
    if key is None:
        active = sorted((k for k in view.keys if k.status == "Active"), key=lambda k: k.created)
        key = active[0] if active else None
    return None if key is None else round((view.now - key.created).total_seconds() / 86400, 2)
