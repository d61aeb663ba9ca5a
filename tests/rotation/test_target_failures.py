"""One of several GitLab targets refuses the new key: everything is rolled back.

Three targets: group ``platform`` first (it takes the new key), then two scopes of project
``platform/deployer``; the project's writes fail. Afterwards the old key is untouched and Active,
every target holds exactly its old values again, the new key is gone, AWSPENDING is dropped, and
the run failed loudly naming the target.
"""

from __future__ import annotations

import pytest

from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.rotation_world import GROUP_TARGET, PROJECT_TARGET, RotationWorld, build_world
from tests.rotation.seeds import managed

STAGING = GitLabTarget(kind="project", id="platform/deployer", environment_scope="staging")
TARGETS = (GROUP_TARGET, PROJECT_TARGET, STAGING)
PROJECT_PUT = r"^/api/v4/projects/[^/]+/variables/"

MASKED_REJECTION = {"message": {"value": ["is invalid"]}}


@pytest.fixture
def world(aws, gitlab, clock) -> RotationWorld:
    gitlab.today = clock.now().date()
    world = build_world(gitlab, clock, targets=TARGETS)
    managed(world, age_days=31)
    return world


def assert_rolled_back(world: RotationWorld, report, old: str, *, mentions: str) -> None:
    assert report.failed
    error = report.users[0].error
    assert "was rolled back" in error and mentions in error and f"old key {old} was not touched" in error
    assert world.keys() == {old: "Active"}
    for target in TARGETS:
        assert world.held(target) == (old, world.seeded_keys[old]), target.label
    assert world.stage("AWSPENDING") is None
    assert world.stage("AWSCURRENT")["access_key_id"] == old
    assert world.violations(settled=True) == []
    actions = [a["action"] for a in report.users[0].actions]
    assert actions[:3] == ["create_key", "verify_key", "restore_target"] and actions[-2:] == [
        "delete_new_key",
        "drop_pending",
    ]


@pytest.mark.parametrize(
    "fault, mentions",
    [
        (dict(status=403), "needs the Maintainer (or Owner) role"),
        (dict(status=400, body=MASKED_REJECTION), "GitLab cannot mask the value"),
        (dict(status=503, times=None), "answered 503 after 2 retries"),
    ],
    ids=["403-forbidden", "400-masked-rejection", "503-unavailable"],
)
def test_a_refusing_target_rolls_everything_back(world, fault, mentions):
    old = world.stage("AWSCURRENT")["access_key_id"]
    world.gitlab.inject(method="PUT", path=PROJECT_PUT, **fault)
    report = world.run()
    assert_rolled_back(world, report, old, mentions=mentions)
    assert PROJECT_TARGET.label in report.users[0].error


def test_a_target_that_times_out_after_the_write_landed_is_put_back_too(world):
    """The secret variable's PUT lands but its answer never comes (three times: the call and
    both retries): the project holds the new secret with the old key id until the rollback."""
    old = world.stage("AWSCURRENT")["access_key_id"]
    world.client_timeout = (2.0, 0.2)
    world.gitlab.inject(method="PUT", path=PROJECT_PUT + "AWS_SECRET_ACCESS_KEY", delay=0.4, after_effect=True, times=3)
    report = world.run()
    assert_rolled_back(world, report, old, mentions="no answer from GitLab")
    restored = [a.get("target") for a in report.users[0].actions if a["action"] == "restore_target"]
    assert restored == [GROUP_TARGET.label, PROJECT_TARGET.label]


def test_a_target_whose_key_id_write_fails_after_its_secret_write_is_put_back(world):
    old = world.stage("AWSCURRENT")["access_key_id"]
    world.gitlab.inject(method="PUT", path=PROJECT_PUT + "AWS_ACCESS_KEY_ID", status=403)
    assert_rolled_back(world, world.run(), old, mentions=PROJECT_TARGET.label)


def test_a_variable_that_did_not_exist_before_is_deleted_again(world):
    old = world.stage("AWSCURRENT")["access_key_id"]
    for key in (STAGING.access_key_id_variable, STAGING.secret_access_key_variable):
        world.gitlab.delete_variable(STAGING, key, STAGING.environment_scope)
    world.gitlab.inject(method="POST", path=r"^/api/v4/projects/[^/]+/variables$", status=403, times=None)
    report = world.run()
    assert report.failed and STAGING.label in report.users[0].error
    assert world.keys() == {old: "Active"}
    assert world.held(STAGING) == (None, None)
    for target in (GROUP_TARGET, PROJECT_TARGET):
        assert world.held(target) == (old, world.seeded_keys[old])


def test_the_next_run_after_a_rollback_rotates_cleanly(world):
    world.gitlab.inject(method="PUT", path=PROJECT_PUT, status=403)
    assert world.run().failed
    report = world.run(run_id="run-2")
    assert not report.failed, report.as_json()
    assert world.violations(settled=True) == []
