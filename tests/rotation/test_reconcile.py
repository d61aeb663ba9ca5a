"""The reconciler on in-memory fakes of its ports (``fakes.py``): each path of the protocol, fast
and without moto or the GitLab server. The same paths against the real adapters on moto and the
GitLab server over HTTPS are in ``test_starting_states.py``, ``test_target_failures.py``,
``test_crashes.py`` and ``test_concurrency.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.errors import RotationError
from gitlab_key_rotation.lambda_src.rotation.ports import GitLabError, GitLabForbiddenError
from gitlab_key_rotation.lambda_src.rotation.observation import Observation
from gitlab_key_rotation.lambda_src.rotation.plan import Action, Policy
from gitlab_key_rotation.lambda_src.rotation.ports import NewAccessKey, UserPorts, unlimited_time
from gitlab_key_rotation.lambda_src.rotation.reconcile import Reconciler, UserReport
from gitlab_key_rotation.lambda_src.rotation.request import RunRequest
from gitlab_key_rotation.lambda_src.rotation.run import RunPorts, run_rotation
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget, RotatedUser, RotationSettings
from gitlab_key_rotation.lambda_src.rotation.state import LockRecord, target_key
from gitlab_key_rotation.lambda_src.rotation.steps import EXECUTORS
from gitlab_key_rotation.lambda_src.rotation.verification import VerificationPolicy
from gitlab_key_rotation_dev.clock import FakeClock

from .fakes import FakeGitLab, FakeIam, FakeNotifier, FakeStateStore, FakeSts, FakeTokenStore

USER = "ci-deployer"
STATE_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci-deployer-state-AbCdEf"
A = GitLabTarget("group", "platform")
B = GitLabTarget("project", "platform/deployer", environment_scope="production")
POLICY = Policy(rotation_period=timedelta(days=30), grace_period=timedelta(hours=24), deletion_window=timedelta(days=7))


@dataclass
class World:
    clock: FakeClock
    iam: FakeIam
    state: FakeStateStore
    gitlab: FakeGitLab
    sts: FakeSts

    def reconcile(self, run_id: str = "run-1", time_left=unlimited_time, **options) -> UserReport:
        observation = Observation(RotatedUser(USER, STATE_ARN, (A, B)), self.iam, self.state, self.gitlab, self.clock)
        ports = UserPorts(
            observation.iam, observation.state, self.gitlab, self.sts, self.clock, self.clock.sleep, time_left
        )
        request = RunRequest(run_id=run_id, event_id=options.pop("event_id", run_id), **options)
        return Reconciler(observation, ports, POLICY, VerificationPolicy(), request).run()

    def managed(self, *, age_days: float, previous: str | None = None) -> NewAccessKey:
        """A key the rotation already manages, ``age_days`` old: in AWSCURRENT and every target."""
        key = self.iam.add_key(USER, age=timedelta(days=age_days))
        for target in (A, B):
            self.gitlab.hold(target, key)
        pushed_at = self.clock.now() - timedelta(days=age_days)
        record = {"access_key_id": key.id, "secret_access_key": key.secret, "pushed_at": pushed_at.isoformat()}
        self.state.put_json(record | ({"previous_access_key_id": previous} if previous else {}))
        return key

    def current(self) -> str:
        return self.state.stage("AWSCURRENT")["access_key_id"]

    def held(self) -> set[tuple[str | None, str | None]]:
        return {self.gitlab.held(target) for target in (A, B)}

    def secret(self, key_id: str) -> str:
        return self.iam.keys[USER][key_id].secret


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    iam = FakeIam(clock, (USER,))
    gitlab = FakeGitLab((A, B), today=clock.now().date())
    return World(clock, iam, FakeStateStore(STATE_ARN), gitlab, FakeSts(iam, clock))


def names(report: UserReport) -> list[str]:
    return [a["action"] for a in report.actions]


def test_every_step_has_one_executor_named_as_it_is():
    assert {action: executor.__name__ for action, executor in EXECUTORS.items()} == {a: a.value for a in Action}


def test_first_rotation_creates_verifies_pushes_and_promotes(world):
    report = world.reconcile()
    assert report.outcome == "changed" and names(report) == ["create_key", "verify_key", "promote_key"]
    [key_id] = world.iam.status(USER)
    assert world.current() == key_id and world.held() == {(key_id, world.secret(key_id))}
    assert report.targets_updated == [A.label, B.label]
    assert world.sts.verified[-1] == key_id and world.state.stage("AWSPENDING") is None
    assert world.state.stage("ROTATION_LOCK")["released"]
    again = world.reconcile(run_id="run-2")
    assert (again.outcome, again.actions) == ("unchanged", [])


def test_a_key_still_propagating_is_waited_for(world):
    world.sts.propagation = timedelta(seconds=10)
    report = world.reconcile()
    assert names(report) == ["create_key", "verify_key", "promote_key"]
    assert report.actions[1]["sts_calls"] > 3 and sum(world.clock.slept) >= 10


def test_nothing_due_changes_nothing_and_takes_no_lock(world):
    key = world.managed(age_days=3)
    report = world.reconcile()
    assert (report.outcome, report.actions) == ("unchanged", [])
    assert world.state.calls["acquire_lock"] == 0 and world.iam.calls["create_key"] == 0
    assert world.current() == key.id


def test_the_replaced_key_stays_active_through_the_grace_period_then_goes_inactive_then_is_deleted(world):
    old = world.managed(age_days=31)
    rotated = world.reconcile()
    assert names(rotated) == ["create_key", "verify_key", "promote_key"]
    new = world.current()
    assert rotated.actions[-1]["previous_key_id"] == old.id
    world.clock.advance(hours=12)
    waiting = world.reconcile(run_id="run-2")
    assert waiting.actions == [] and any("stays Active until" in n for n in waiting.notes)
    world.clock.advance(hours=13)
    assert names(world.reconcile(run_id="run-3")) == ["deactivate_previous_key"]
    assert world.iam.status(USER) == {old.id: "Inactive", new: "Active"}
    world.clock.advance(days=6)
    assert world.reconcile(run_id="run-4").actions == []
    world.clock.advance(days=2)
    assert names(world.reconcile(run_id="run-5")) == ["delete_previous_key"]
    assert world.iam.status(USER) == {new: "Active"}
    assert world.state.stage("AWSCURRENT").get("previous_access_key_id") is None


def test_a_pending_rotation_a_dead_run_stored_is_finished(world):
    old = world.managed(age_days=31)
    new = world.iam.add_key(USER)
    before = {target_key(t): {"access_key_id": old.id, "secret_access_key": old.secret} for t in (A, B)}
    pending = {"run_id": "run-0", "event_id": "e0", "started_at": world.clock.now().isoformat()}
    world.state.put_json(
        pending | {"access_key_id": new.id, "secret_access_key": new.secret, "targets_before": before}, "AWSPENDING"
    )
    report = world.reconcile()
    assert names(report) == ["verify_key", "promote_key"]
    assert world.current() == new.id and world.held() == {(new.id, new.secret)}
    assert world.state.stage("AWSPENDING") is None and world.iam.calls["create_key"] == 0


def test_an_intent_a_dead_run_left_deletes_the_key_whose_secret_is_lost(world):
    world.managed(age_days=31)
    pending = {"run_id": "run-0", "event_id": "e0", "started_at": world.clock.now().isoformat(), "targets_before": {}}
    world.state.put_json(pending, "AWSPENDING")
    lost = world.iam.add_key(USER)  # created, answer lost, run died
    report = world.reconcile()
    assert names(report)[:2] == ["delete_lost_key", "drop_pending"]
    assert {"action": "delete_lost_key", "key_id": lost.id} in report.actions
    assert lost.id not in world.iam.status(USER)
    assert names(report)[2:] == ["create_key", "verify_key", "promote_key"]  # then the rotation that was due


def test_a_lost_create_key_answer_deletes_the_key_at_once(world):
    world.managed(age_days=31)
    world.iam.fail("create_key", TimeoutError("read timeout"), landed=True)
    report = world.reconcile()
    assert report.outcome == "failed" and "TimeoutError" in report.error
    assert names(report) == ["delete_lost_key", "drop_pending"]
    assert len(world.iam.status(USER)) == 1 and world.state.stage("AWSPENDING") is None


def test_an_orphan_is_deleted(world):
    world.managed(age_days=3)
    orphan = world.iam.add_key(USER, status="Inactive")
    report = world.reconcile()
    assert report.actions == [{"action": "delete_orphan_key", "key_id": orphan.id}]
    assert orphan.id not in world.iam.status(USER)


def test_the_only_active_key_is_kept_though_nothing_knows_it_and_retired_after_the_first_rotation(world):
    human = world.iam.add_key(USER, age=timedelta(days=90))
    plan = world.reconcile(dry_run=True)
    assert any("only Active key" in n for n in plan.notes) and names(plan) == ["rotate"]
    report = world.reconcile()
    assert names(report) == ["create_key", "verify_key", "promote_key"]
    assert report.actions[-1]["previous_key_id"] == human.id and world.iam.status(USER)[human.id] == "Active"


def test_a_failing_target_rolls_everything_back(world):
    old = world.managed(age_days=31)
    world.gitlab.fail(
        "write_variable", GitLabForbiddenError("403 Forbidden", 403), when=lambda target, *_: target == B, times=None
    )
    report = world.reconcile()
    assert report.outcome == "failed" and "was rolled back" in report.error and "403 Forbidden" in report.error
    assert f"old key {old.id} was not touched" in report.error
    assert names(report) == ["create_key", "verify_key", "restore_target", "delete_new_key", "drop_pending"]
    assert world.iam.status(USER) == {old.id: "Active"}
    assert world.held() == {(old.id, old.secret)} and world.current() == old.id
    assert world.state.stage("AWSPENDING") is None and world.state.stage("ROTATION_LOCK")["released"]


def test_a_rollback_that_cannot_restore_a_target_keeps_the_key_and_awspending(world):
    world.managed(age_days=31)
    def key_id_of_b(target, key, value):
        return target == B and key == B.access_key_id_variable

    # every write of B's key id lands but its answer is lost: the rollback has to write it back, and cannot tell
    world.gitlab.fail("write_variable", GitLabError("no answer", None), when=key_id_of_b, times=None, landed=True)
    report = world.reconcile()
    assert "rollback of new key" in report.error and "is incomplete" in report.error
    pending = world.state.stage("AWSPENDING")
    assert pending["access_key_id"] in world.iam.status(USER)
    world.gitlab.heal()  # B works again
    report = world.reconcile(run_id="run-2")
    assert names(report)[:2] == ["verify_key", "promote_key"] and world.current() == pending["access_key_id"]


def test_a_target_that_lost_the_current_key_is_repaired_without_a_new_key(world):
    key = world.managed(age_days=3)
    world.gitlab.delete_variable(B, B.access_key_id_variable)
    world.gitlab.calls.clear()
    report = world.reconcile()
    assert names(report) == ["repair_targets"] and report.targets_updated == [B.label]
    assert world.held() == {(key.id, key.secret)} and world.iam.calls["create_key"] == 0
    assert world.gitlab.calls["write_variable"] == 1  # B's key id: its secret and A still hold the key


def test_a_lock_held_by_a_live_run_is_left_alone(world):
    world.managed(age_days=31)
    lock = LockRecord(4, "run-other", world.clock.now() - timedelta(minutes=5))
    world.state.acquire_lock(lock)
    report = world.reconcile()
    assert report.outcome == "skipped" and "run-other holds the rotation lock" in report.notes[0]
    assert world.iam.calls["create_key"] == 0
    world.clock.advance(minutes=20)  # the other run died: its lock expired
    assert names(world.reconcile(run_id="run-2")) == ["create_key", "verify_key", "promote_key"]
    assert world.state.stage("ROTATION_LOCK")["generation"] == 5


def test_of_two_runs_taking_the_same_lock_generation_the_second_is_skipped(world):
    world.managed(age_days=31)
    rival = LockRecord(0, "run-rival", world.clock.now())
    world.state.before("acquire_lock", lambda: world.state.acquire_lock(rival))
    report = world.reconcile()
    assert report.outcome == "skipped" and "another run took the rotation lock (generation 0)" in report.notes[-1]
    assert world.iam.calls["create_key"] == 0


def test_two_keys_both_in_use_block_the_rotation_with_an_explanation(world):
    world.managed(age_days=31)
    human = world.iam.add_key(USER)
    world.gitlab.hold(B, human)
    report = world.reconcile()
    assert report.outcome == "failed" and "make every target hold the same key" in report.error
    assert world.state.calls["acquire_lock"] == 0


def test_a_dry_run_reports_the_plan_and_changes_nothing(world):
    world.managed(age_days=31)
    report = world.reconcile(dry_run=True)
    assert report.outcome == "planned"
    assert report.actions == [
        {"action": "rotate", "key_id": None, "reason": report.actions[0]["reason"], "what": Action.ROTATE.description}
    ]
    assert world.iam.calls["create_key"] == 0 and world.state.calls["put_pending"] == 0


def test_a_run_reads_the_gitlab_token_once_for_every_user_and_target(world):
    users = tuple(RotatedUser(f"user-{n}", f"{STATE_ARN}-{n}", (A, B)) for n in range(2))
    stores = {u.state_secret_arn: FakeStateStore(u.state_secret_arn) for u in users}
    iam = FakeIam(world.clock, tuple(u.iam_user for u in users))
    ports = RunPorts(
        iam=iam,
        state_store=stores.__getitem__,
        token_store=FakeTokenStore(world.gitlab.token),
        connect_gitlab=lambda token: world.gitlab,
        verifier=FakeSts(iam, world.clock),
        clock=world.clock,
        sleep=world.clock.sleep,
        notifier=FakeNotifier(),
    )
    settings = RotationSettings(gitlab_url="https://gitlab.test", gitlab_token_secret_arn="arn:token", users=users)
    report = run_rotation(settings, RunRequest(run_id="run-1", event_id="run-1"), ports)
    assert not report.failed and [u.outcome for u in report.users] == ["changed", "changed"]
    # the token once; each of the 4 targets read once before the rotation and once after its writes
    assert world.gitlab.calls["token_info"] == 1 and world.gitlab.calls["read_variables"] == 8


def test_the_fakes_keep_iams_two_key_limit(world):
    world.iam.add_key(USER)
    world.iam.add_key(USER)
    with pytest.raises(RotationError, match="LimitExceeded"):
        world.iam.create_key(USER)


def test_a_run_out_of_time_stops_between_targets_and_the_next_run_finishes_the_rotation(world):
    old = world.managed(age_days=31)
    # time for target A's writes, none left after them
    report = world.reconcile(time_left=lambda: 0.0 if world.gitlab.calls["write_variable"] >= 2 else 600.0)
    assert report.outcome == "stopped" and report.error is None
    assert "stopped before writing new key" in report.notes[-1] and "1 of 2 targets hold new key" in report.notes[-1]
    pending = world.state.stage("AWSPENDING")
    new = pending["access_key_id"]
    assert world.gitlab.held(A) == (new, world.secret(new)) and world.gitlab.held(B) == (old.id, old.secret)
    assert world.iam.status(USER) == {old.id: "Active", new: "Active"}  # both work meanwhile
    assert world.state.stage("ROTATION_LOCK")["released"]
    again = world.reconcile(run_id="run-2")
    assert names(again) == ["verify_key", "promote_key"] and again.targets_updated == [B.label]
    assert world.current() == new and world.held() == {(new, world.secret(new))}


def test_a_run_without_time_for_a_step_does_not_start_it(world):
    world.managed(age_days=31)
    report = world.reconcile(time_left=lambda: 1.0)
    assert report.outcome == "stopped" and report.actions == [] and "stopped before rotate" in report.notes[-1]
    assert world.iam.calls["create_key"] == 0 and world.state.stage("ROTATION_LOCK")["released"]


def test_a_write_whose_answer_was_lost_is_read_again_before_the_run_ends_and_repaired(world):
    key = world.managed(age_days=3)
    world.gitlab.delete_variable(B, B.access_key_id_variable)
    # the repair's write of B's key id lands, but its answer is lost: the run cannot tell what B holds
    world.gitlab.fail("write_variable", GitLabError("no answer", None), landed=True)
    report = world.reconcile()
    assert report.outcome == "failed" and world.gitlab.held(B) == (key.id, key.secret)
    assert any("read project platform/deployer (scope production) again" in n for n in report.notes)
    assert world.gitlab.calls["read_variables"] == 3  # A and B at the start, B again after the lost answer
