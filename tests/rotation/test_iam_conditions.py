"""IAM as it really behaves: new keys that do not work at once, the two-key limit, things that
vanish while a run works (NoSuchEntity)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gitlab_key_rotation_dev.call_faults import CallLog
from gitlab_key_rotation_dev.rotation_world import USER, RotationWorld, build_world
from tests.rotation.seeds import managed


@pytest.fixture
def slow_iam(aws, gitlab, clock) -> RotationWorld:
    """New keys are refused by STS for their first 10 seconds."""
    gitlab.today = clock.now().date()
    return build_world(gitlab, clock, propagation=timedelta(seconds=10))


def test_a_new_key_is_pushed_only_after_sts_accepted_it_several_times_in_a_row(slow_iam):
    old = managed(slow_iam, age_days=31, pushed_days_ago=2)
    slow_iam.gitlab.clear_log()
    report = slow_iam.run()
    assert not report.failed, report.as_json()
    verify = next(a for a in report.users[0].actions if a["action"] == "verify_key")
    assert verify["sts_calls"] == slow_iam.verifier.calls > 3
    assert slow_iam.clock.slept[:4] == [1.0, 2.0, 4.0, 8.0]  # backoff while refused, then successes 2 s apart
    assert slow_iam.violations(settled=True) == []
    assert old in slow_iam.keys()


def test_a_new_key_that_never_starts_working_is_deleted_and_never_reaches_gitlab(aws, gitlab, clock):
    gitlab.today = clock.now().date()
    world = build_world(gitlab, clock, propagation=timedelta(hours=1))
    old = managed(world, age_days=31, pushed_days_ago=2)
    gitlab.clear_log()
    report = world.run()
    assert report.failed
    assert (
        "was still refused by STS after" in report.users[0].error
        and "it was not given to GitLab" in report.users[0].error
    )
    assert world.keys() == {old: "Active"}
    assert not any(r.method in ("PUT", "POST") for r in gitlab.requests)
    assert world.violations(settled=True) == []


def test_a_key_added_by_hand_during_the_run_hits_the_two_key_limit_and_nothing_is_left_behind(world):
    old = managed(world, age_days=31, pushed_days_ago=2)
    human = []

    def someone_adds_a_key():  # between the run's last look at IAM and its CreateAccessKey
        human.append(world.iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"])

    report = world.run(wrap=CallLog(at="iam.create_key", meanwhile=someone_adds_a_key).wrap)
    assert report.failed
    assert "already has two access keys (LimitExceeded)" in report.users[0].error
    assert world.stage("AWSPENDING") is None and world.stage("AWSCURRENT")["access_key_id"] == old
    assert set(world.keys()) == {old, human[0]}
    assert world.stage("ROTATION_LOCK")["released"] is True
    # the next run deletes the stray key (no target, no state: its secret is unknown here) and rotates
    again = world.run(run_id="run-2")
    assert {"action": "delete_orphan_key", "key_id": human[0]} in again.users[0].actions
    assert not again.failed and world.violations(settled=True) == []


def test_a_user_that_does_not_exist_fails_pre_flight_and_nothing_changes(aws, gitlab, clock):
    gitlab.today = clock.now().date()
    world = build_world(gitlab, clock)
    world.iam.delete_user(UserName=USER)
    report = world.run()
    assert report.failed and report.users == []
    assert f"IAM user {USER} does not exist (NoSuchEntity)" in report.error
    assert world.stage("ROTATION_LOCK") is None and world.stage("AWSCURRENT") == {}


def test_a_previous_key_deleted_by_hand_just_before_the_run_retires_it_is_simply_forgotten(world):
    previous = world.seed_key(age_days=40)
    managed(world, age_days=3, pushed_days_ago=2, previous=previous)

    def someone_deletes_it():
        world.iam.delete_access_key(UserName=USER, AccessKeyId=previous)

    report = world.run(wrap=CallLog(at="iam.set_status", meanwhile=someone_deletes_it).wrap)
    assert not report.failed, report.as_json()
    assert "previous_access_key_id" not in world.stage("AWSCURRENT")
    assert world.violations(settled=True) == []
