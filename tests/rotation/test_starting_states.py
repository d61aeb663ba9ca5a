"""Every starting state a user can be in, against moto and the GitLab server over HTTPS: the run
ends in the state DESIGN.md wants, with every invariant holding, and a second run does nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.state import target_key
from gitlab_key_rotation_dev.rotation_world import PROJECT_TARGET, RotationWorld
from tests.rotation.seeds import managed


def settle(world: RotationWorld, **options) -> dict:
    """Run, check the run succeeded and left every invariant holding, check that a second run
    has nothing to do; return the first run's user report."""
    report = world.run(**options)
    assert not report.failed, report.as_json()
    assert world.violations(settled=True) == []
    again = world.run(run_id="run-again")
    assert again.users[0].actions == [], again.as_json()
    return report.users[0].as_json()




def pending_record(world: RotationWorld, key_id: str | None, before: str | None, run_minutes_ago: float = 30) -> dict:
    held = {"access_key_id": before, "secret_access_key": world.seeded_keys[before]} if before else {}
    return {
        "run_id": "run-dead",
        "event_id": "ev-dead",
        "started_at": (world.clock.now() - timedelta(minutes=run_minutes_ago)).isoformat(),
        "access_key_id": key_id,
        "secret_access_key": world.seeded_keys[key_id] if key_id else None,
        "targets_before": {target_key(t): held for t in world.user.targets},
    }


def new_current(world: RotationWorld) -> str:
    current = world.stage("AWSCURRENT")
    assert current and current["access_key_id"] not in world.seeded_keys
    return current["access_key_id"]


# --- no AWSPENDING --------------------------------------------------------------------------


def test_a_user_without_keys_gets_a_first_one_in_every_target(world):
    report = settle(world)
    key_id = new_current(world)
    assert world.keys() == {key_id: "Active"}
    assert [a["action"] for a in report["actions"]] == ["create_key", "verify_key", "promote_key"]
    assert report["targets_updated"] == [t.label for t in world.user.targets]
    assert world.stage("AWSCURRENT").get("previous_access_key_id") is None


@pytest.mark.parametrize("in_targets", [True, False], ids=["held-by-gitlab", "held-by-nobody"])
def test_a_human_made_active_key_is_replaced_and_retired_not_deleted(world, in_targets):
    human = world.seed_key(age_days=3, in_targets=in_targets)
    settle(world)
    new = new_current(world)
    assert world.keys() == {human: "Active", new: "Active"}  # Active through the grace period
    assert world.stage("AWSCURRENT")["previous_access_key_id"] == human


def test_an_unknown_inactive_key_is_deleted_as_an_orphan(world):
    orphan = world.seed_key(age_days=90, status="Inactive")
    report = settle(world)
    assert {"action": "delete_orphan_key", "key_id": orphan} in report["actions"]
    assert orphan not in world.keys()


def test_with_two_keys_the_one_gitlab_holds_survives_and_the_other_goes(world):
    held = world.seed_key(age_days=5, in_targets=True)
    other = world.seed_key(age_days=1)
    report = settle(world)
    assert {"action": "delete_orphan_key", "key_id": other} in report["actions"]
    assert set(world.keys()) == {held, new_current(world)}


def test_a_young_managed_key_is_left_alone(world):
    key_id = managed(world, age_days=3)
    report = settle(world)
    assert report["actions"] == [] and report["outcome"] == "unchanged"
    assert world.keys() == {key_id: "Active"}


def test_an_old_managed_key_is_rotated_and_becomes_the_previous_key(world):
    old = managed(world, age_days=31)
    report = settle(world)
    new = new_current(world)
    assert world.keys() == {old: "Active", new: "Active"}
    assert world.held(PROJECT_TARGET) == (new, world.stage("AWSCURRENT")["secret_access_key"])
    assert "31 days old" in report["actions"][0]["reason"]


def test_the_previous_key_goes_inactive_after_the_grace_period_and_is_deleted_after_the_window(world):
    previous = world.seed_key(age_days=40)
    current = managed(world, age_days=2, previous=previous)
    settle(world)
    assert world.keys() == {current: "Active", previous: "Inactive"}
    world.clock.advance(days=7, hours=1)
    settle(world, run_id="run-week-later")
    assert world.keys() == {current: "Active"}
    assert "previous_access_key_id" not in world.stage("AWSCURRENT")


def test_two_keys_that_gitlab_both_holds_block_a_due_rotation_and_nothing_changes(world):
    first = managed(world, age_days=31)
    second = world.seed_key(age_days=40)
    world.put_target(PROJECT_TARGET, second, world.seeded_keys[second])
    before = world.observe()
    report = world.run()
    assert report.failed
    error = report.users[0].error
    assert "both are in use" in error and first in error and second in error
    assert world.observe() == before


# --- with AWSPENDING (a run died mid-rotation) ---------------------------------------------------


def test_a_stored_pending_key_that_reached_one_target_is_finished(world):
    old = managed(world, age_days=31)
    pending = world.seed_key()
    world.put_state(pending_record(world, pending, before=old), ["AWSPENDING"])
    world.put_target(world.user.targets[0], pending, world.seeded_keys[pending])
    report = settle(world)
    assert [a["action"] for a in report["actions"]][:2] == ["verify_key", "promote_key"]
    assert world.stage("AWSCURRENT")["access_key_id"] == pending
    assert world.stage("AWSCURRENT")["previous_access_key_id"] == old


@pytest.mark.parametrize("fate", ["deleted", "Inactive"])
def test_a_pending_key_someone_deleted_or_deactivated_is_rolled_back(world, fate):
    old = managed(world, age_days=3)
    pending = world.seed_key()
    world.put_state(pending_record(world, pending, before=old), ["AWSPENDING"])
    world.put_target(world.user.targets[0], pending, world.seeded_keys[pending])
    if fate == "deleted":
        world.iam.delete_access_key(UserName="ci-deployer", AccessKeyId=pending)
    else:
        world.iam.update_access_key(UserName="ci-deployer", AccessKeyId=pending, Status="Inactive")
    report = settle(world)
    assert {"action": "restore_target", "key_id": pending, "target": world.user.targets[0].label} in report["actions"]
    assert world.keys() == {old: "Active"}
    assert all(world.held(t) == (old, world.seeded_keys[old]) for t in world.user.targets)


def test_a_run_that_died_while_creating_a_key_has_that_key_deleted_then_rotates(world):
    old = managed(world, age_days=31)
    world.put_state(pending_record(world, None, before=old, run_minutes_ago=30), ["AWSPENDING"])
    world.clock.advance(minutes=-29)
    lost = world.iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]  # its secret is lost
    world.clock.advance(minutes=29)
    report = settle(world)
    assert {"action": "delete_lost_key", "key_id": lost} in report["actions"]
    assert set(world.keys()) == {old, new_current(world)}


def test_a_pending_key_that_was_already_promoted_only_loses_its_label(world):
    key_id = managed(world, age_days=1)
    world.put_state(pending_record(world, key_id, before=None), ["AWSPENDING"])
    report = settle(world)
    assert report["actions"] == [{"action": "drop_promoted_pending", "key_id": key_id}]
    assert world.stage("AWSPENDING") is None
