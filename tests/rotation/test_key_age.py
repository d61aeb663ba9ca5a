"""The age of the key CI uses, as each run reports it (the key-age metric and its alarm): the
recorded AWSCURRENT key, else the oldest Active key; a rotation resets it, a blocked run does not."""

from __future__ import annotations

from gitlab_key_rotation_dev.rotation_world import PROJECT_TARGET


def test_an_unmanaged_key_is_aged_by_its_creation(world):
    world.seed_key(age_days=12, in_targets=True)
    report = world.run(dry_run=True)
    assert report.users[0].current_key_age_days == 12.0


def test_a_rotation_resets_the_age_and_time_grows_it(world):
    world.seed_key(age_days=40, in_targets=True)
    assert world.run().users[0].current_key_age_days == 0.0
    world.clock.advance(days=5, hours=12)
    assert world.run(run_id="run-2").users[0].current_key_age_days == 5.5


def test_a_blocked_rotation_keeps_reporting_the_ageing_key(world):
    world.seed_key(age_days=40, in_targets=True)
    other = world.seed_key(age_days=50)
    world.put_target(PROJECT_TARGET, other, world.seeded_keys[other])  # the targets disagree: blocked
    [user] = world.run().users
    assert user.outcome == "failed" and user.current_key_age_days == 50.0  # the oldest Active key
    assert user.as_json()["current_key_age_days"] == 50.0


def test_a_user_without_keys_reports_no_age(world):
    assert world.run(dry_run=True).users[0].current_key_age_days is None
