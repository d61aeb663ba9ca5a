"""Reading what the run is given: the event, the token secret, the state secret's versions, the
settings' environment scope. Bad input gets an error that names the problem, never the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitlab_key_rotation.lambda_src.common.events import EventError
from gitlab_key_rotation.lambda_src.rotation.errors import TokenSecretError
from gitlab_key_rotation.lambda_src.rotation.request import parse_event
from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings, SettingsError
from gitlab_key_rotation.lambda_src.rotation.state import (
    CurrentRecord,
    LockRecord,
    PendingRecord,
    StateSecretError,
    TargetValues,
    dump,
    load_current,
    load_lock,
    load_pending,
)
from gitlab_key_rotation.lambda_src.rotation.token_secret import read_token, with_new_token
from tests.lambda_settings import state_secret_env, task_root

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token-AbCdEf"
TOKEN = "glpat-abcdefghijklmnopqrst"
AT = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


# --- the event ------------------------------------------------------------------------------


def test_a_scheduled_event_asks_for_nothing_special_and_its_id_deduplicates():
    request = parse_event(
        {"id": "ev-1", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, "req-1"
    )
    assert (request.force, request.dry_run, request.iam_user, request.event_id) == (False, False, None, "ev-1")


def test_a_manual_event_can_force_restrict_and_dry_run():
    request = parse_event({"force": True, "dry_run": True, "iam_user": "ci-deployer"}, "req-1")
    assert (request.force, request.dry_run, request.iam_user, request.event_id) == (True, True, "ci-deployer", "req-1")


def test_a_replayed_scheduled_event_is_a_normal_run():
    event = {"id": "ev-2", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}, "replay-name": "r1"}
    request = parse_event(event, "req-1")
    assert (request.force, request.dry_run, request.iam_user, request.event_id) == (False, False, None, "ev-2")


def test_a_huge_field_is_not_echoed_in_full():
    with pytest.raises(EventError) as caught:
        parse_event({"f" * 1_000_000: True, "force": "y" * 1_000_000}, "req-1")
    assert len(str(caught.value)) < 1000 and "(1000002 characters)" in str(caught.value)


def test_many_unknown_fields_are_counted_not_listed():
    with pytest.raises(EventError, match=r"'f9'\] and 40 more; allowed"):
        parse_event({f"f{n}": True for n in range(50)}, "req-1")


def test_the_dry_run_setting_applies_without_the_event_asking():
    assert parse_event({}, "req-1", dry_run_setting=True).dry_run is True


@pytest.mark.parametrize(
    "event, message",
    [
        ({"force": "yes"}, "force must be true or false, got a str"),
        ({"forse": True}, "unknown fields ['forse']; allowed: force, dry_run, iam_user"),
        ({"iam_user": ""}, "iam_user must be a non-empty string"),
        ({"iam_user": 7}, "iam_user must be a non-empty string, got a int"),
        (["force"], "must be a JSON object, got a list"),
        ({"detail": {"force": True}}, "detail must be {} (a scheduled event's); options go at the top level"),
        ({"replay-name": ["archive"]}, "replay-name must be a non-empty string, got a list"),
    ],
)
def test_a_bad_event_is_refused_with_what_is_allowed(event, message):
    with pytest.raises(EventError, match="the event") as caught:
        parse_event(event, "req-1")
    assert message in str(caught.value)


# --- the GitLab token secret ------------------------------------------------------------------


def test_the_token_is_read_from_its_json():
    assert read_token(f'{{"GITLAB_TOKEN": "{TOKEN}", "note": "x"}}', ARN) == TOKEN


@pytest.mark.parametrize(
    "text, problem",
    [
        ("not json", "is not valid JSON"),
        ('["GITLAB_TOKEN"]', "holds a JSON list"),
        ('{"TOKEN": "glpat-abcdefghijklmnopqrst"}', "has no GITLAB_TOKEN field"),
        ('{"GITLAB_TOKEN": "  "}', "has an empty GITLAB_TOKEN"),
        ('{"GITLAB_TOKEN": "PLACEHOLDER: put the GitLab token here, see the README section Deploy"}', "placeholder"),
        ('{"GITLAB_TOKEN": "glpat-short"}', "is not a GitLab token"),
        ('{"GITLAB_TOKEN": "glpat-abcdefghij klmnopqrst"}', "is not a GitLab token"),
    ],
)
def test_a_placeholder_empty_or_malformed_token_secret_names_the_secret_and_the_shape(text, problem):
    with pytest.raises(TokenSecretError) as caught:
        read_token(text, ARN)
    message = str(caught.value)
    assert problem in message and ARN in message and '{"GITLAB_TOKEN": "<an access token with scope api>"}' in message
    assert "glpat-abcdefghij" not in message and "klmnopqrst" not in message


def test_a_new_token_keeps_the_secrets_other_fields():
    assert (
        with_new_token('{"GITLAB_TOKEN": "old", "owner": "team"}', TOKEN)
        == f'{{"GITLAB_TOKEN": "{TOKEN}", "owner": "team"}}'
    )


# --- the state secret -------------------------------------------------------------------------


def test_state_records_survive_their_json():
    current = CurrentRecord("AKIA1", "secret-1", AT, "ev-1", "AKIA0", AT)
    assert load_current(dump(current), "here") == current
    pending = PendingRecord("run-1", "ev-1", AT, {"group:1:*:A:B": TargetValues("AKIA0", "s0")}, "AKIA1", "secret-1")
    assert load_pending(dump(pending), "here") == pending
    lock = LockRecord(3, "run-1", AT, released=True)
    assert load_lock(dump(lock), "here") == lock


def test_the_secret_as_the_cdk_creates_it_means_nothing_recorded_yet():
    assert load_current("{}", "here") == CurrentRecord()


def test_records_never_show_a_secret_in_their_repr():
    assert "secret-1" not in repr(CurrentRecord("AKIA1", "secret-1")) + repr(TargetValues("AKIA1", "secret-1"))


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{oops", "is not valid JSON"),
        ("[]", "must hold a JSON object, got list"),
        ('{"access_key_id": "AKIA1"}', "must be both set or both absent"),
        (
            '{"access_key_id": "AKIA1", "secret_access_key": "s", "pushed_at": "yesterday"}',
            "pushed_at must be an ISO 8601 time",
        ),
    ],
)
def test_a_damaged_state_version_is_refused_with_how_to_recover(text, problem):
    with pytest.raises(StateSecretError) as caught:
        load_current(text, "state secret arn:x (AWSCURRENT)")
    assert problem in str(caught.value) and "state secret arn:x (AWSCURRENT)" in str(caught.value)


def test_lock_generations_have_distinct_deterministic_version_ids():
    acquired = LockRecord(4, "run-1", AT)
    assert acquired.version_id(ARN) == LockRecord(4, "run-2", AT).version_id(ARN)  # same generation: one winner
    assert acquired.version_id(ARN) != LockRecord(5, "run-1", AT).version_id(ARN)
    assert acquired.version_id(ARN) != LockRecord(4, "run-1", AT, released=True).version_id(ARN)


# --- settings: the environment scope --------------------------------------------------------


def _settings(tmp_path, scope: str) -> dict[str, str]:
    document = {
        "gitlab_url": "https://gitlab.example.com",
        "users": [{"iam_user": "u", "targets": [{"kind": "project", "id": "g/p", "environment_scope": scope}]}],
    }
    state_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:state-AbCdEf"
    return {**task_root(tmp_path, document), **state_secret_env([state_arn]), "GITLAB_TOKEN_SECRET_ARN": ARN}


@pytest.mark.parametrize("scope", ["*", "production", "review/*", "${CI_ENV}"])
def test_environment_scopes_gitlab_accepts_are_accepted(tmp_path, scope):
    assert RotationSettings.load(_settings(tmp_path, scope)).users[0].targets[0].environment_scope == scope


@pytest.mark.parametrize("scope", ["prod;rm", "prød", "", " production"])
def test_a_bad_environment_scope_is_refused_before_anything_runs(tmp_path, scope):
    with pytest.raises(SettingsError, match=r"environment_scope must be '\*' \(every environment\), an environment name"):
        RotationSettings.load(_settings(tmp_path, scope))
