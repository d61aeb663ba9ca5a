"""Bad input: the run fails with an error that says what to fix, and changes nothing at all (no
key, no variable, no state version, not even the lock)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget, RotatedUser
from gitlab_key_rotation_dev.gitlab_server import DEVELOPER
from gitlab_key_rotation_dev.rotation_world import GROUP_TARGET, PROJECT_TARGET, RotationWorld
from tests.rotation.seeds import managed

PLACEHOLDER = "PLACEHOLDER: put the GitLab token here, see the README section Deploy"


@pytest.fixture
def due(world) -> RotationWorld:
    """A rotation is due, so a run that got past pre-flight would change things."""
    managed(world, age_days=31)
    return world


def everything(world: RotationWorld) -> tuple:
    """The user's keys, every variable of the seeded group and project, every state version."""
    stages = world.secrets.describe_secret(SecretId=world.state_arn)["VersionIdsToStages"]
    return (
        world.keys(),
        [world.gitlab.variables(t) for t in (GROUP_TARGET, PROJECT_TARGET)],
        {v: sorted(labels) for v, labels in stages.items()},
    )


def fails_changing_nothing(world: RotationWorld, **options) -> str:
    before = everything(world)
    report = world.run(**options)
    assert report.failed
    assert everything(world) == before
    message = report.failure_summary()
    assert world.token not in message and not any(s in message for s in world.seeded_keys.values())
    return message


def set_token_secret(world: RotationWorld, text: str) -> None:
    world.secrets.put_secret_value(SecretId=world.settings.gitlab_token_secret_arn, SecretString=text)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "is not valid JSON"),
        ('{"token": "glpat-abcdefghijklmnopqrstu"}', "has no GITLAB_TOKEN field"),
        (json.dumps({"GITLAB_TOKEN": PLACEHOLDER}), "still holds the placeholder"),
        (json.dumps({"GITLAB_TOKEN": ""}), "has an empty GITLAB_TOKEN"),
    ],
    ids=["malformed-json", "missing-GITLAB_TOKEN", "placeholder", "empty"],
)
def test_a_bad_token_secret_names_the_secret_and_the_shape_to_put_in(due, text, problem):
    set_token_secret(due, text)
    message = fails_changing_nothing(due)
    assert problem in message and due.settings.gitlab_token_secret_arn in message
    assert '{"GITLAB_TOKEN": "<an access token with scope api>"}' in message


def test_an_expired_token_is_refused(due):
    set_token_secret(
        due, json.dumps({"GITLAB_TOKEN": due.gitlab.add_token("rotation-bot", expires_at=due.clock.now().date())})
    )
    assert "the GitLab token has expired" in fails_changing_nothing(due)


def test_a_revoked_token_is_refused(due):
    due.gitlab.revoke_token(due.token)
    assert "the GitLab token was revoked" in fails_changing_nothing(due)


def test_a_token_without_scope_api_is_refused(due):
    read_only = due.gitlab.add_token(
        "rotation-bot", scopes=("read_api",), expires_at=due.clock.now().date() + timedelta(days=90)
    )
    set_token_secret(due, json.dumps({"GITLAB_TOKEN": read_only}))
    message = fails_changing_nothing(due)
    assert "has scopes ['read_api'] but writing CI/CD variables needs scope api" in message


@pytest.mark.parametrize(
    "target, problem",
    [
        (GitLabTarget(kind="group", id="no-such-group"), "group no-such-group does not exist"),
        (
            GitLabTarget(kind="project", id="platform/no-such-project"),
            "project platform/no-such-project does not exist",
        ),
        (GitLabTarget(kind="project", id="999999"), "project 999999 does not exist"),
    ],
)
def test_an_unknown_group_or_project_is_named(due, target, problem):
    due.settings = replace(due.settings, users=(replace(due.user, targets=(*due.user.targets, target)),))
    assert problem in fails_changing_nothing(due)


def test_a_developer_role_is_not_enough_and_the_error_says_which_role_is(due):
    due.gitlab.add_group("elsewhere")
    due.gitlab.add_project("elsewhere/app")
    target = GitLabTarget(kind="project", id="elsewhere/app")
    due.gitlab.add_member(target, "rotation-bot", DEVELOPER)
    due.settings = replace(due.settings, users=(replace(due.user, targets=(*due.user.targets, target)),))
    message = fails_changing_nothing(due)
    assert "project elsewhere/app" in message and "Maintainer" in message and "a Developer" in message


def test_every_problem_is_listed_at_once(due):
    missing_user = RotatedUser("nobody", due.state_arn, (GitLabTarget(kind="group", id="no-such-group"),))
    due.settings = replace(due.settings, users=(*due.settings.users, missing_user))
    message = fails_changing_nothing(due)
    assert "IAM user nobody does not exist" in message and "group no-such-group does not exist" in message


def test_an_event_naming_an_unknown_user_lists_the_configured_ones(due):
    message = fails_changing_nothing(due, iam_user="someone-else")
    assert "iam_user 'someone-else' is not a configured user; configured: ci-deployer" in message


def test_a_damaged_state_secret_says_how_to_recover(due):
    due.secrets.put_secret_value(SecretId=due.state_arn, SecretString="{oops")
    message = fails_changing_nothing(due)
    assert f"state secret {due.state_arn} (AWSCURRENT) is not valid JSON" in message
    assert "restore the AWSPREVIOUS version" in message
