"""The GitLab token's own expiry: a warning (log record for the metric filter, SNS message) from
``TOKEN_EXPIRY_WARNING_DAYS`` before, or, with ``ROTATE_GITLAB_TOKEN``, a rotation whose new token
is stored before anything else happens."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.preflight import TOKEN_EXPIRING_EVENT
from gitlab_key_rotation_dev.call_faults import CallLog
from gitlab_key_rotation_dev.rotation_world import RotationWorld, build_world


@pytest.fixture
def expiring(aws, gitlab, clock) -> RotationWorld:
    """The GitLab token expires in 10 days; the key needs nothing."""
    gitlab.today = clock.now().date()
    world = build_world(gitlab, clock, token_expires=clock.now().date() + timedelta(days=10))
    world.seed_key(age_days=1, in_targets=True)
    world.run(run_id="run-setup")  # take the key over: from here on the runs only look
    world.sqs.purge_queue(QueueUrl=world.sqs_url)
    return world


def test_a_token_expiring_soon_is_warned_about_in_the_log_and_on_the_topic(expiring, caplog):
    with caplog.at_level(logging.INFO):
        report = expiring.run(run_id="run-2")
    assert not report.failed and report.token.warned and report.token.days_left == 10
    warning = next(r for r in caplog.records if getattr(r, "event", None) == TOKEN_EXPIRING_EVENT)
    assert warning.levelno == logging.WARNING and warning.days_left == 10
    assert "expires on" in warning.getMessage() and expiring.settings.gitlab_token_secret_arn in warning.getMessage()
    [message] = expiring.published()
    assert message["Subject"] == "GitLab token expires soon" and "10 days left" in message["Message"]


def test_no_warning_while_the_token_has_time(expiring, caplog):
    expiring.settings = replace(expiring.settings, token_expiry_warning_days=7)
    with caplog.at_level(logging.INFO):
        report = expiring.run(run_id="run-2")
    assert not report.token.warned
    assert not any(getattr(r, "event", None) == TOKEN_EXPIRING_EVENT for r in caplog.records)
    assert expiring.published() == []


def test_with_rotation_on_the_new_token_is_stored_before_anything_else(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True, rotation_period_days=1)
    expiring.clock.advance(days=2)  # the key is due too: the run must use the new token for it
    expiring.gitlab.today = expiring.clock.now().date()
    log = CallLog()
    report = expiring.run(wrap=log.wrap, run_id="run-2")
    assert not report.failed, report.as_json()
    assert report.token.rotated and report.token.days_left == 364
    rotated = log.calls.index("gitlab.rotate_token")
    assert log.calls[rotated + 1] == "token_store.write"
    assert expiring.gitlab.token(expiring.token).revoked  # GitLab revoked the old one at once
    stored = json.loads(
        expiring.secrets.get_secret_value(SecretId=expiring.settings.gitlab_token_secret_arn)["SecretString"]
    )
    new_token = stored["GITLAB_TOKEN"]
    assert new_token != expiring.token and not expiring.gitlab.token(new_token).revoked
    assert any(a["action"] == "promote_key" for a in report.users[0].actions)  # done with the new token
    assert new_token not in json.dumps(report.as_json())


def test_a_dry_run_only_warns_even_with_rotation_on(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    report = expiring.run(run_id="run-2", dry_run=True)
    assert report.token.warned and not report.token.rotated
    assert not expiring.gitlab.token(expiring.token).revoked


def test_a_rotated_token_that_cannot_be_stored_is_a_loud_failure_naming_the_way_out(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)

    def secret_goes_away():
        expiring.secrets.delete_secret(
            SecretId=expiring.settings.gitlab_token_secret_arn, ForceDeleteWithoutRecovery=True
        )

    report = expiring.run(wrap=CallLog(at="token_store.write", meanwhile=secret_goes_away).wrap, run_id="run-2")
    assert report.failed and report.users == []
    assert "the GitLab token was rotated" in report.error and "the old token no longer works" in report.error
    assert "create a new token with scope api" in report.error
