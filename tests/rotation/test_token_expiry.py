"""The GitLab token's own expiry: a warning (log record for the metric filter, SNS message) from
``TOKEN_EXPIRY_WARNING_DAYS`` before, or, with ``ROTATE_GITLAB_TOKEN``, a rotation whose new token
is stored before anything else happens, and that can never lock the rotator out: against the
project's GitLab server, whose reuse detection revokes a token family when a rotated token is used
again, a lost answer, a store that fails and a crash between the answer and the store each stop
every later run before it uses the old token."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.aws import SecretsTokenStore
from gitlab_key_rotation.lambda_src.rotation.errors import TokenRotationInDoubtError
from gitlab_key_rotation.lambda_src.rotation.preflight import TOKEN_EXPIRING_EVENT
from gitlab_key_rotation.lambda_src.rotation.token_secret import IN_FLIGHT_FIELD, TokenRotation
from gitlab_key_rotation_dev.call_faults import CallLog, Crash
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


def _secret(world: RotationWorld) -> dict:
    return json.loads(world.secrets.get_secret_value(SecretId=world.settings.gitlab_token_secret_arn)["SecretString"])


def _newest_token(world: RotationWorld):
    return world.gitlab.tokens_of("rotation-bot")[-1]


def test_with_rotation_on_the_new_token_is_stored_before_anything_else(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True, rotation_period_days=1)
    expiring.clock.advance(days=2)  # the key is due too: the run must use the new token for it
    expiring.gitlab.today = expiring.clock.now().date()
    log = CallLog()
    report = expiring.run(wrap=log.wrap, run_id="run-2")
    assert not report.failed, report.as_json()
    assert report.token.rotated and report.token.days_left == 364  # expires_at sent: GitLab's default is a week
    rotated = log.calls.index("gitlab.rotate_token")
    assert log.calls[rotated - 1] == "token_store.begin_rotation" and log.calls[rotated + 1] == "token_store.write"
    assert log.calls.count("gitlab.rotate_token") == 1
    assert expiring.gitlab.token(expiring.token).revoked  # GitLab revoked the old one at once
    stored = _secret(expiring)
    new_token = stored["GITLAB_TOKEN"]
    assert IN_FLIGHT_FIELD not in stored  # the new token and the end of the rotation land in one write
    assert new_token != expiring.token and not expiring.gitlab.token(new_token).revoked
    assert any(a["action"] == "promote_key" for a in report.users[0].actions)  # done with the new token
    assert new_token not in json.dumps(report.as_json())


def test_a_dry_run_only_warns_even_with_rotation_on(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    report = expiring.run(run_id="run-2", dry_run=True)
    assert report.token.warned and not report.token.rotated
    assert not expiring.gitlab.token(expiring.token).revoked
    assert IN_FLIGHT_FIELD not in _secret(expiring)


def _assert_locked_until_a_human_looks(world: RotationWorld, report, cause: str) -> None:
    """The run failed saying what to do; the next run stops before any GitLab call, so the old
    token is never reused and the family GitLab made is not revoked by reuse detection."""
    assert report.failed and report.users == []
    assert "is in doubt" in report.error and cause in report.error
    assert f"secret {world.settings.gitlab_token_secret_arn}" in report.error and IN_FLIGHT_FIELD in report.error
    assert world.gitlab.token(world.token).revoked  # the rotation landed
    lost = _newest_token(world)
    assert lost.previous_id == world.gitlab.token(world.token).id and not lost.revoked
    [message] = [m for m in world.published() if m["Subject"] == "GitLab key rotation failed"]
    assert "is in doubt" in message["Message"]
    world.gitlab.clear_log()
    again = world.run(run_id="run-3")
    assert again.failed and "is in doubt" in again.error and "it never finished" in again.error
    assert world.gitlab.requests == []  # the old token was not used again
    assert not _newest_token(world).revoked
    for text in (report.error, again.error, json.dumps(again.as_json())):
        assert world.token not in text


def test_a_crash_between_the_answer_and_the_store_stops_every_later_run_until_a_human_looks(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    with pytest.raises(Crash):
        expiring.run(wrap=CallLog(at="gitlab.rotate_token", when="after").wrap, run_id="run-2")
    assert _secret(expiring)[IN_FLIGHT_FIELD]["run_id"] == "run-2"
    expiring.gitlab.clear_log()
    report = expiring.run(run_id="run-3")
    assert report.failed and "started at" in report.error and "by run run-2" in report.error
    assert expiring.gitlab.requests == []
    assert not _newest_token(expiring).revoked  # no reuse detection: nobody used the old token again
    # what the message says to do when the old token is revoked: a new token in the secret
    fresh = expiring.gitlab.add_token("rotation-bot", expires_at=expiring.clock.now().date() + timedelta(days=300))
    expiring.secrets.put_secret_value(
        SecretId=expiring.settings.gitlab_token_secret_arn, SecretString=json.dumps({"GITLAB_TOKEN": fresh})
    )
    assert not expiring.run(run_id="run-4").failed


def test_a_rotated_token_that_cannot_be_stored_stops_and_says_what_to_do(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    arn = expiring.settings.gitlab_token_secret_arn

    def storing_fails():  # the marker is there; the store of the new token is refused
        expiring.secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=7)

    report = expiring.run(wrap=CallLog(at="token_store.write", meanwhile=storing_fails).wrap, run_id="run-2")
    expiring.secrets.restore_secret(SecretId=arn)  # a human undoes the deletion: the marker is still there
    assert "could not be stored" in report.error and "no longer works" in report.error
    _assert_locked_until_a_human_looks(expiring, report, "could not be stored")


def test_a_lost_answer_to_the_rotate_call_is_never_followed_by_the_old_token(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    expiring.gitlab.inject(method="POST", path="rotate", status=502, after_effect=True)
    expiring.gitlab.clear_log()
    report = expiring.run(run_id="run-2")
    rotate = [i for i, r in enumerate(expiring.gitlab.requests) if r.path.endswith("/rotate")]
    assert len(rotate) == 1 and rotate[0] == len(expiring.gitlab.requests) - 1  # nothing after it
    _assert_locked_until_a_human_looks(expiring, report, "GitLab answered 502")


def test_a_rotation_gitlab_refuses_changes_nothing_and_drops_the_record(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    expiring.gitlab.inject(method="POST", path="rotate", status=400, body={"message": "400 Bad request - Expiration date"})
    report = expiring.run(run_id="run-2")
    assert report.failed and "GitLab refused to rotate token id" in report.error and "unchanged" in report.error
    assert IN_FLIGHT_FIELD not in _secret(expiring) and not expiring.gitlab.token(expiring.token).revoked
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=False)
    assert not expiring.run(run_id="run-3").failed  # the old token still works


def test_a_run_started_while_another_rotates_the_token_leaves_the_token_alone(expiring):
    expiring.settings = replace(expiring.settings, rotate_gitlab_token=True)
    second: list = []

    def another_run():
        expiring.gitlab.clear_log()
        second.append(expiring.run(run_id="run-3"))
        assert expiring.gitlab.requests == []

    report = expiring.run(wrap=CallLog(at="gitlab.rotate_token", meanwhile=another_run).wrap, run_id="run-2")
    assert not report.failed and report.token.rotated
    assert second[0].failed and "by run run-2" in second[0].error
    assert not expiring.gitlab.token(_secret(expiring)["GITLAB_TOKEN"]).revoked


def test_two_runs_holding_the_same_token_record_only_one_rotation(expiring):
    """The token secret's version decides: the second ``begin_rotation`` from the same version is refused."""
    store = SecretsTokenStore(expiring.secrets, expiring.settings.gitlab_token_secret_arn)
    other = SecretsTokenStore(expiring.secrets, expiring.settings.gitlab_token_secret_arn)
    rotation = TokenRotation(token_id=1, run_id="run-a", started_at="2030-01-01T00:00:00+00:00", expires_at="2031-01-01")

    def read_then_race(_original=other._current):
        text, version = _original()
        store.begin_rotation(rotation)  # the first run records its rotation between the other's read and write
        return text, version

    other._current = read_then_race
    with pytest.raises(TokenRotationInDoubtError, match="another run already started rotating"):
        other.begin_rotation(replace(rotation, run_id="run-b"))
    assert _secret(expiring)[IN_FLIGHT_FIELD]["run_id"] == "run-a"
