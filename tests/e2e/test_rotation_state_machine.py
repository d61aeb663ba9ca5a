"""Random histories of one rotated user: a hypothesis ``RuleBasedStateMachine`` over a rotation
world (moto in-process, the GitLab server on loopback, the real adapters, one fake clock).

Steps: scheduled runs, forced runs, one event delivered twice (one after the other, or the second
while the first is at a random call), runs broken at a random call (at the wire, ``error`` /
``lost`` / ``drop``, or the Lambda killed there), GitLab outages from a random request of one
run through up to three runs, time passing (past the grace period, the deletion window, the
rotation period), and humans: a key deleted in IAM behind the tool's back, a GitLab variable
deleted or mistyped.

After every step the invariants of DESIGN.md: ``settled=True`` after a run that nothing broke
(it must also succeed, and an event delivered twice makes at most one new key),
``settled=False`` after any other step.

Humans: a human who deletes the key GitLab holds, or breaks a variable, breaks CI, and invariants
1 and 3 with it, through nobody's fault but their own. Until the next clean run, the violations
naming what the human broke are excused; the next clean run must repair it (push AWSCURRENT's
key again, or rotate when that key is gone) and leave every invariant holding, none excused.

Budget: ``ROTATION_STATE_MACHINE_EXAMPLES`` histories (default 10) of up to
``ROTATION_STATE_MACHINE_STEPS`` steps (default 15): about 20 s. A longer hunt (300 x 30: 16 min)::

    ROTATION_STATE_MACHINE_EXAMPLES=500 ROTATION_STATE_MACHINE_STEPS=30 \\
        .venv/bin/python -m pytest -q tests/e2e/test_rotation_state_machine.py
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gitlab_key_rotation.lambda_src.rotation.run import RunReport
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.fault_matrix import HARNESS_CLIENT_RETRIES, LogRecords, aws_test_env, secret_leaks, wired_world
from gitlab_key_rotation_dev.wire_faults import AWS_MODES, GITLAB_MODES, WireFault, inject_gitlab
from gitlab_key_rotation_dev.call_faults import CallLog, Crash
from gitlab_key_rotation_dev.rotation_world import GROUP_TARGET, START, TARGETS, USER, RotationWorld
from tests.rotation import seeds

EXAMPLES = int(os.environ.get("ROTATION_STATE_MACHINE_EXAMPLES", "10"))
STEPS = int(os.environ.get("ROTATION_STATE_MACHINE_STEPS", "15"))


def first_run(world: RotationWorld) -> None:
    """State ``{}``: a human's 3-day-old key is in every target."""
    world.seed_key(age_days=3, in_targets=True)


def managed(world: RotationWorld) -> None:
    """The rotation manages a 10-day-old key, in every target."""
    seeds.managed(world, age_days=10)


STARTS = {"first run": first_run, "managed": managed}


def delete_key_id(world: RotationWorld, where: GitLabTarget) -> bool:
    if world.gitlab.variable(where, where.access_key_id_variable, where.environment_scope) is None:
        return False
    world.gitlab.delete_variable(where, where.access_key_id_variable, where.environment_scope)
    return True


def mistype(variable: str, value: str):
    def edit(world: RotationWorld, where: GitLabTarget) -> bool:
        name = getattr(where, variable)
        world.gitlab.set_variable(where, name, value, environment_scope=where.environment_scope, masked=True, raw=True)
        return True

    return edit


# What a human may do to a target's variables; True when it changed something.
EDITS = {
    "delete the key id": delete_key_id,
    "mistype the key id": mistype("access_key_id_variable", "AKIAXXXXXXXXXXXXXXXX"),  # no key has that id
    "mistype the secret": mistype("secret_access_key_variable", "x" * 40),
}


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
            wired_world(monkeypatch, STARTS[start], token_expires=START.date() + timedelta(days=3650))
        )

    def teardown(self) -> None:
        self.exits.close()

    # --- runs ------------------------------------------------------------------------------

    def _run(
        self, *, force: bool = False, event_id: str | None = None, wrap=None, aws_fault: WireFault | None = None
    ) -> RunReport:
        self.events += 1
        event_id = event_id or f"ev-{self.events}"
        with self.wire.armed(aws_fault):
            report = self.world.run(run_id=f"req-{self.events}", event_id=event_id, force=force, wrap=wrap)
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

    @rule(where=st.sampled_from(TARGETS), edit=st.sampled_from(sorted(EDITS)))
    def human_edits_a_variable(self, where: GitLabTarget, edit: str) -> None:
        held, _ = self.world.held(where)
        if EDITS[edit](self.world, where):
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


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_variable_a_human_broke_in_the_grace_period_is_repaired_by_the_next_run(edit):
    """Found by this state machine: the repair used to wait for a rotation, and so for the end of
    the previous key's grace period (up to a day of broken CI)."""
    with aws_test_env() as monkeypatch, wired_world(monkeypatch, first_run) as (world, _):
        assert not world.run(run_id="req-1", event_id="ev-1", force=True).failed
        assert EDITS[edit](world, GROUP_TARGET)
        world.clock.advance(hours=1)
        report = world.run(run_id="req-2", event_id="ev-2")
        assert not report.failed
        assert world.violations(settled=True) == [], report.users[0].notes
        assert [a["action"] for a in report.users[0].actions] == ["repair_targets"]
