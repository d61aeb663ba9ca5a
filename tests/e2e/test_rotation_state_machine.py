"""Random histories of one rotated user: a hypothesis ``RuleBasedStateMachine`` over a rotation
world (moto in-process, the GitLab server on loopback, the real adapters, one fake clock).

The user's targets: a group and a project (two variables each), a credentials file target (one
file variable) and a hidden target (its secret masked and hidden, never read back).

Steps: scheduled runs, forced runs, one event delivered twice (one after the other, or the second
while the first is at a random call), runs broken at a random call (at the wire, ``error`` /
``lost`` / ``drop``, or the Lambda killed there), GitLab outages from a random request of one
run through up to three runs, runs that run out of time (after their k-th GitLab write, or at
their k-th look at the time: before a user, a step or a target), GitLab writes that land late
(after the client's read timeout gave up on them; the run's settling really waits for them),
time passing (past the grace period, the deletion window, the rotation period), and humans: a
key deleted in IAM behind the tool's back, a GitLab variable deleted or mistyped, a credentials
file deleted, mistyped or its profile misnamed, a hidden target's secret or both its variables
deleted.

After every step the invariants of DESIGN.md: ``settled=True`` after a run that nothing broke
(it must also succeed, and an event delivered twice makes at most one new key),
``settled=False`` after any other step. A run that runs out of time must not fail (it stops at a
safe point; the next clean run converges). After a run with late writes, every write has landed
and no target holds a key id with another key's secret.

Humans: a human who deletes the key GitLab holds, or breaks a variable, breaks CI, and invariants
1 and 3 with it, through nobody's fault but their own. Until the next clean run, the violations
naming what the human broke are excused; the next clean run must repair it (push AWSCURRENT's
key again, or rotate when that key is gone) and leave every invariant holding, none excused.

Budget: ``ROTATION_STATE_MACHINE_EXAMPLES`` histories (default 10) of up to
``ROTATION_STATE_MACHINE_STEPS`` steps (default 15): 27 s on a quiet machine, 50 to 120 s on a loaded one. A longer hunt::

    ROTATION_STATE_MACHINE_EXAMPLES=200 ROTATION_STATE_MACHINE_STEPS=25 \\
        .venv/bin/python -m pytest -q tests/e2e/test_rotation_state_machine.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gitlab_key_rotation.lambda_src.rotation.ports import unlimited_time
from gitlab_key_rotation.lambda_src.rotation.run import RunReport
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.fault_matrix import HARNESS_CLIENT_RETRIES, LogRecords, aws_test_env, secret_leaks, wired_world
from gitlab_key_rotation_dev.wire_faults import AWS_MODES, GITLAB_MODES, WireFault, inject_gitlab
from gitlab_key_rotation_dev.call_faults import CallLog, Crash
from gitlab_key_rotation_dev.gitlab_server import late_write
from gitlab_key_rotation_dev.rotation_world import FILE_TARGET, HIDDEN_TARGET, START, TARGETS, USER, RotationWorld
from tests.rotation import seeds

EXAMPLES = int(os.environ.get("ROTATION_STATE_MACHINE_EXAMPLES", "10"))
STEPS = int(os.environ.get("ROTATION_STATE_MACHINE_STEPS", "15"))


# Besides the group and the project, a target of each other delivery: a credentials file, and
# a hidden secret.
HISTORY_TARGETS = (*TARGETS, FILE_TARGET, HIDDEN_TARGET)


def first_run(world: RotationWorld) -> None:
    """State ``{}``: a human's 3-day-old key is in every target, put in by hand (a hidden
    target's secret masked, not hidden: a hidden secret the rotation never wrote is refused)."""
    key_id = world.seed_key(age_days=3)
    for target in world.user.targets:
        world.put_target(target, key_id, world.seeded_keys[key_id], hidden=False)


def managed(world: RotationWorld) -> None:
    """The rotation manages a 10-day-old key, in every target (a hidden target's secret hidden)."""
    seeds.managed(world, age_days=10)


STARTS = {"first run": first_run, "managed": managed}


def delete(variable: str):
    def edit(world: RotationWorld, where: GitLabTarget) -> bool:
        name = getattr(where, variable)
        if world.gitlab.variable(where, name, where.environment_scope) is None:
            return False
        world.gitlab.delete_variable(where, name, where.environment_scope)
        return True

    return edit


def mistype(variable: str, value: str):
    def edit(world: RotationWorld, where: GitLabTarget) -> bool:
        name = getattr(where, variable)
        world.gitlab.set_variable(where, name, value, environment_scope=where.environment_scope, masked=True, raw=True)
        return True

    return edit


def mistype_in_file(half: int, value: str):
    """Rewrite the credentials file with one half (0: the key id, 1: the secret) wrong."""

    def edit(world: RotationWorld, where: GitLabTarget) -> bool:
        pair = list(world.held(where))
        pair[half] = value
        world.put_target(where, pair[0] or "", pair[1] or "")
        return True

    return edit


def misname_the_profile(world: RotationWorld, where: GitLabTarget) -> bool:
    """The key under a profile of another name: the AWS SDK's ``default`` has none."""
    key_id, secret = world.held(where)
    content = f"[ci]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    name = where.credentials_file_variable
    world.gitlab.set_variable(where, name, content, environment_scope=where.environment_scope, variable_type="file")
    return True


def delete_both(world: RotationWorld, where: GitLabTarget) -> bool:
    return any([delete("access_key_id_variable")(world, where), delete("secret_access_key_variable")(world, where)])


def delivery(target: GitLabTarget) -> str:
    return "credentials_file" if target.delivery == "credentials_file" else "hidden" if target.hidden else "variables"


# What a human may do to a target's variables, by delivery; True when it changed something. A
# hidden target's secret cannot be read, so a human who changes its key id or its secret leaves
# a target nobody can tell (the run refuses it: test_delivery); deleting is what they may do.
EDITS = {
    "variables": {
        "delete the key id": delete("access_key_id_variable"),
        "mistype the key id": mistype("access_key_id_variable", "AKIAXXXXXXXXXXXXXXXX"),  # no key has that id
        "mistype the secret": mistype("secret_access_key_variable", "x" * 40),
    },
    "hidden": {
        "delete the secret": delete("secret_access_key_variable"),
        "delete both variables": delete_both,
    },
    "credentials_file": {
        "delete the file": delete("credentials_file_variable"),
        "mistype the key id": mistype_in_file(0, "AKIAXXXXXXXXXXXXXXXX"),
        "mistype the secret": mistype_in_file(1, "x" * 40),
        "misname the profile": misname_the_profile,
    },
}
TARGET_EDITS = [(target, name) for target in HISTORY_TARGETS for name in sorted(EDITS[delivery(target)])]

# A late write: held this long before GitLab applies it, past the client's read timeout (both
# short, so that the run's settling wait, slept for real, stays well under a second).
LATE_WRITE_READ_TIMEOUT = 0.2
LATE_WRITE_AFTER = 0.3


def mismatched_pairs(world: RotationWorld) -> list[str]:
    """Targets holding a key id with another key's secret (as the GitLab server stores them)."""
    seen = world.observe()
    return [
        f"late write: {label} holds {key_id} with a secret that is not its own"
        for label, (key_id, secret) in seen.targets.items()
        if key_id in seen.key_secrets and secret != seen.key_secrets[key_id]
    ]


class RotationHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.exits = ExitStack()
        self.world: RotationWorld
        self.events = 0
        self.settled = False  # what the last step promises: a finished clean run, or anything
        self.broken_by_humans: set[str] = set()  # key ids and target labels, until a clean run repairs them

    @initialize(start=st.sampled_from(sorted(STARTS)))
    def start(self, start: str) -> None:
        monkeypatch = self.exits.enter_context(aws_test_env())
        self.logs = self.exits.enter_context(LogRecords())
        # a token for the whole history: its expiry is a test of its own (test_token_expiry)
        self.world, self.wire = self.exits.enter_context(
            wired_world(
                monkeypatch, STARTS[start], targets=HISTORY_TARGETS, token_expires=START.date() + timedelta(days=3650)
            )
        )

    def teardown(self) -> None:
        self.exits.close()

    # --- runs ------------------------------------------------------------------------------

    def _run(
        self,
        *,
        force: bool = False,
        event_id: str | None = None,
        wrap=None,
        aws_fault: WireFault | None = None,
        time_left=unlimited_time,
    ) -> RunReport:
        self.events += 1
        event_id = event_id or f"ev-{self.events}"
        with self.wire.armed(aws_fault):
            report = self.world.run(
                run_id=f"req-{self.events}", event_id=event_id, force=force, wrap=wrap, time_left=time_left
            )
        self._no_secret_in(report)
        return report

    def _clean(self, report: RunReport) -> None:
        """A run nothing broke: it succeeds and settles, unless a live lock made it stand aside."""
        assert not report.failed, report.as_json()
        self.settled = report.users[0].outcome != "skipped"  # a killed run's lock is still live

    @rule()
    def scheduled_run(self) -> None:
        self._advance(hours=1)
        self._clean(self._run())

    @rule()
    def forced_run(self) -> None:
        self._advance(minutes=1)
        self._clean(self._run(force=True))

    @rule(force=st.booleans(), second_after_call=st.none() | st.integers(0, 60))
    def event_delivered_twice(self, force: bool, second_after_call: int | None) -> None:
        """EventBridge delivers one event twice: one after the other, or the second while the
        first is after one of its calls."""
        self._advance(hours=1)
        event_id = f"ev-twice-{self.events}"
        seconds: list[RunReport] = []
        if second_after_call is None:
            first = self._run(force=force, event_id=event_id)
            self._advance(minutes=1)
            seconds.append(self._run(force=force, event_id=event_id))
        else:
            meanwhile = lambda: seconds.append(self._run(force=force, event_id=event_id))  # noqa: E731
            log = CallLog(fail_at=second_after_call, when="after", meanwhile=meanwhile)
            first = self._run(force=force, event_id=event_id, wrap=log.wrap)
        created = [a["key_id"] for r in [first, *seconds] for a in r.users[0].actions if a["action"] == "create_key"]
        assert len(created) <= 1, f"one event made keys {created}"
        finished = [first, *seconds] if second_after_call is None else [*seconds, first]
        for report in finished:  # each must succeed; the last to finish decides what is promised
            self._clean(report)

    # --- runs something breaks -------------------------------------------------------------

    @rule(index=st.integers(0, 45), mode=st.sampled_from(AWS_MODES), force=st.booleans())
    def aws_call_fails(self, index: int, mode: str, force: bool) -> None:
        self._advance(hours=1)
        self._run(force=force, aws_fault=WireFault.at("aws", index, mode))
        self.settled = False

    @rule(index=st.integers(0, 45), mode=st.sampled_from(GITLAB_MODES), force=st.booleans())
    def gitlab_request_fails(self, index: int, mode: str, force: bool) -> None:
        self._advance(hours=1)
        inject_gitlab(self.world.gitlab, WireFault.at("gitlab", index, mode), client_retries=HARNESS_CLIENT_RETRIES)
        self._run(force=force)
        self.world.gitlab.clear_faults()
        self.settled = False

    @rule(index=st.integers(0, 60), when=st.sampled_from(["before", "after"]), force=st.booleans())
    def lambda_killed(self, index: int, when: str, force: bool) -> None:
        """The Lambda dies at a call (timeout, out of memory): nothing after it runs."""
        self._advance(hours=1)
        try:
            self._run(force=force, wrap=CallLog(fail_at=index, when=when).wrap)
        except Crash:
            pass
        self.settled = False

    @rule(starts_at=st.integers(0, 40), runs=st.integers(1, 3))
    def gitlab_outage(self, starts_at: int, runs: int) -> None:
        """GitLab answers 503 to everything from one request of a scheduled run until after the
        ``runs``-th run (an hour apart) from then on."""
        self.world.gitlab.inject(nth=starts_at + 1, status=503, times=None)
        for _ in range(runs):
            self._advance(hours=1)
            self._run()
        self.world.gitlab.clear_faults()
        self.settled = False

    @rule(
        writes=st.none() | st.integers(1, 12),
        checks=st.integers(0, 10),
        force=st.booleans(),
        rerun=st.booleans(),
    )
    def runs_out_of_time(self, writes: int | None, checks: int, force: bool, rerun: bool) -> None:
        """The Lambda's time runs out after the run's ``writes``-th GitLab write, or at its
        ``checks``-th look at the time (before a user, a step, a target): it stops at the next
        safe point and must not fail. With ``rerun`` the next run follows at once, with time."""
        self._advance(hours=1)
        time_left = self.world.time_left_until(writes=writes, checks=None if writes else checks)
        report = self._run(force=force, time_left=time_left)
        assert not report.failed, report.as_json()
        stopped = bool(report.not_started) or report.users[0].outcome == "stopped"
        event(f"out of time: {'not started' if report.not_started else report.users[0].outcome}")
        if not stopped:  # it finished before the time ran out: a clean run
            self._clean(report)
            return
        self.settled = False
        if rerun:
            self.invariants_hold()
            self._advance(minutes=1)
            self._clean(self._run(force=force))

    @rule(
        method=st.sampled_from(["PUT", "POST", "DELETE"]),
        nth=st.integers(1, 6),
        times=st.integers(1, 3),
        force=st.booleans(),
    )
    def gitlab_write_lands_late(self, method: str, nth: int, times: int, force: bool) -> None:
        """GitLab applies the ``nth`` write of ``method`` (and the ``times - 1`` after it) only after
        the client gave up on it (read timeout): the run must settle it before it ends, so no
        target is left holding a key id with another key's secret."""
        self._advance(hours=1)
        world = self.world
        late = world.gitlab.inject(method=method, path=r"/variables", nth=nth, times=times, **late_write(after=LATE_WRITE_AFTER))
        try:
            with world.late_writes_land(read_timeout=LATE_WRITE_READ_TIMEOUT):
                report = self._run(force=force)
        finally:
            world.gitlab.clear_faults()
        event(f"late write: {late.fired} landed late, run {'failed' if report.failed else 'succeeded'}")
        if not late.fired:
            self._clean(report)
            return
        problems = [p for p in mismatched_pairs(world) if not any(b in p for b in self.broken_by_humans)]
        assert problems == [], (problems, report.as_json())
        if report.failed:  # the write timed out on every attempt: rolled back
            self.settled = False
        else:  # absorbed by a retry: settled, as after any run that succeeds
            self._clean(report)

    # --- time and humans -------------------------------------------------------------------

    @rule(span=st.sampled_from(["10 minutes", "grace period", "deletion window", "rotation period"]))
    def time_passes(self, span: str) -> None:
        configured = self.world.settings
        self._advance(
            **{
                "10 minutes": {"minutes": 10},
                "grace period": {"hours": configured.grace_period_hours + 1},
                "deletion window": {"days": configured.deletion_window_days + 1},
                "rotation period": {"days": configured.rotation_period_days + 1},
            }[span]
        )
        self.settled = False  # a lock may look live or dead now; nothing else changed

    @rule(which=st.integers(0, 1))
    def human_deletes_a_key(self, which: int) -> None:
        keys = sorted(self.world.keys())
        if not keys:
            return
        key_id = keys[which % len(keys)]
        self.world.iam.delete_access_key(UserName=USER, AccessKeyId=key_id)
        self.broken_by_humans.add(key_id)
        self.settled = False

    @rule(change=st.sampled_from(TARGET_EDITS))
    def human_edits_a_variable(self, change: tuple[GitLabTarget, str]) -> None:
        where, edit = change
        held, _ = self.world.held(where)
        if EDITS[delivery(where)][edit](self.world, where):
            # the target, and the key it held: a key no target names any more and the state
            # secret does not hold (a human's key before the first run) looks lost until a run
            self.broken_by_humans |= {where.label, *([held] if held else [])}
        self.settled = False

    # --- after every step ------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        problems = self.world.violations(settled=self.settled)
        if self.settled:
            self.broken_by_humans.clear()  # a clean run must have repaired what humans broke
        else:
            problems = [p for p in problems if not any(broken in p for broken in self.broken_by_humans)]
        assert problems == [], problems

    def _no_secret_in(self, report: RunReport) -> None:
        assert secret_leaks(self.world, self.wire, [report], self.logs.records) == []
        self.logs.records.clear()

    def _advance(self, **delta: float) -> None:
        self.world.clock.advance(**delta)
        self.world.gitlab.today = self.world.clock.now().date()


RotationHistory.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
TestRotationHistory = RotationHistory.TestCase


@pytest.mark.parametrize("where, edit", TARGET_EDITS, ids=[f"{t.label}: {e}" for t, e in TARGET_EDITS])
def test_a_variable_a_human_broke_in_the_grace_period_is_repaired_by_the_next_run(where, edit):
    """Found by this state machine: the repair used to wait for a rotation, and so for the end of
    the previous key's grace period (up to a day of broken CI)."""
    with aws_test_env() as monkeypatch, wired_world(monkeypatch, first_run, targets=HISTORY_TARGETS) as (world, _):
        assert not world.run(run_id="req-1", event_id="ev-1", force=True).failed
        assert EDITS[delivery(where)][edit](world, where)
        world.clock.advance(hours=1)
        report = world.run(run_id="req-2", event_id="ev-2")
        assert not report.failed
        assert world.violations(settled=True) == [], report.users[0].notes
        assert [a["action"] for a in report.users[0].actions] == ["repair_targets"]
