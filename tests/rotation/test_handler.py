"""The Lambda entry point as Lambda calls it: settings.json in its task root and the ARNs in its
environment (what the construct hands over), an event,
the real composition root. One JSON summary line per run; an exception when anything failed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from gitlab_key_rotation.lambda_src.common.events import EventError
from gitlab_key_rotation.lambda_src.rotation.handler import SUMMARY_EVENT, SUMMARY_MESSAGE, RotationRunFailed, handler
from gitlab_key_rotation.lambda_src.rotation.settings import SettingsError
from gitlab_key_rotation_dev.log_guard import render
from gitlab_key_rotation_dev.log_records import fields
from gitlab_key_rotation_dev.rotation_world import PROJECT_TARGET, FakeClock, RotationWorld, build_world
from tests import emf
from tests.lambda_settings import state_secret_env, task_root


@pytest.fixture
def world(aws, gitlab) -> RotationWorld:
    """On real time: the handler's clock is the system's."""
    clock = FakeClock(datetime.now(UTC))
    gitlab.today = clock.now().date()
    return build_world(gitlab, clock)


@pytest.fixture
def env(world, monkeypatch, tmp_path) -> dict[str, str]:
    settings = world.settings
    document = {
        "gitlab_url": settings.gitlab_url,
        "gitlab_ca_bundle": settings.gitlab_ca_bundle,
        "users": [
            {
                "iam_user": world.user.iam_user,
                "targets": [
                    {"kind": t.kind, "id": t.id, "environment_scope": t.environment_scope} for t in world.user.targets
                ],
            }
        ],
    }
    variables = {
        **task_root(tmp_path / "task", document),
        **state_secret_env([world.state_arn]),
        "GITLAB_TOKEN_SECRET_ARN": settings.gitlab_token_secret_arn,
        "NOTIFICATION_TOPIC_ARN": settings.notification_topic_arn,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


CONTEXT = SimpleNamespace(aws_request_id="req-1")


def summaries(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == SUMMARY_EVENT]


def no_secret_in(world: RotationWorld, text: str) -> bool:
    return world.token not in text and not any(s in text for s in world.key_secrets().values())


def test_a_dry_run_returns_and_logs_one_summary_line_and_changes_nothing(world, env, caplog):
    key_id = world.seed_key(age_days=40, in_targets=True)
    with caplog.at_level(logging.INFO):
        result = handler({"dry_run": True}, CONTEXT)
    [line] = summaries(caplog)
    assert line.getMessage() == SUMMARY_MESSAGE and fields(line) == result and line.ok is True
    assert result["dry_run"] is True and result["run_id"] == "req-1"
    [user] = result["users"]
    assert user["outcome"] == "planned" and user["actions"][0]["action"] == "rotate"
    assert world.keys() == {key_id: "Active"} and world.stage("AWSPENDING") is None
    assert no_secret_in(world, render(line))


def test_a_failed_run_raises_after_logging_its_summary_and_alerting(world, env, caplog):
    world.seed_key(age_days=40, in_targets=True)
    other = world.seed_key(age_days=50)
    world.put_target(PROJECT_TARGET, other, world.seeded_keys[other])  # the targets disagree: blocked
    with caplog.at_level(logging.INFO), pytest.raises(RotationRunFailed) as raised:
        handler({"id": "ev-1", "source": "aws.events", "detail-type": "Scheduled Event"}, CONTEXT)
    [line] = summaries(caplog)
    summary = fields(line)
    assert line.levelno == logging.ERROR and summary["ok"] is False and summary["event_id"] == "ev-1"
    assert "ci-deployer: rotation is due" in str(raised.value) and "both are in use" in str(raised.value)
    assert no_secret_in(world, str(raised.value)) and no_secret_in(world, render(line))
    [message] = world.published()
    assert message["Subject"] == "GitLab key rotation failed" and "both are in use" in message["Message"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"froce": True}, "unknown fields ['froce']"),
        ({"dryrun": True}, "unknown fields ['dryrun']"),
        ({"force": "yes"}, "force must be true or false, got a str"),
        ({"detail": {"force": True}}, "detail must be {}"),
    ],
)
def test_a_bad_event_is_refused_before_anything_runs(world, env, caplog, event, message):
    key_id = world.seed_key(age_days=40, in_targets=True)  # rotation is due: a real run would rotate
    with caplog.at_level(logging.INFO), pytest.raises(EventError) as raised:
        handler(event, CONTEXT)
    assert message in str(raised.value)
    [line] = summaries(caplog)
    assert fields(line)["ok"] is False
    assert world.keys() == {key_id: "Active"} and world.stage("AWSPENDING") is None


def test_bad_settings_name_the_setting(world, env, tmp_path):
    document = json.loads((tmp_path / "task" / "settings.json").read_text())
    task_root(tmp_path / "task", {**document, "rotation_period_days": "monthly"})
    with pytest.raises(SettingsError, match="settings.json.rotation_period_days must be a whole number of days >= 1, got 'monthly'"):
        handler({}, CONTEXT)


def test_the_state_secret_names_must_match_the_users(world, env, monkeypatch):
    monkeypatch.setenv("STATE_SECRET_NAMES", "[]")
    with pytest.raises(SettingsError, match=r"STATE_SECRET_NAMES must be a JSON list of 1 secret names \(one per user of settings.json\), got \[\]"):
        handler({}, CONTEXT)


def test_a_young_key_leaves_the_run_unchanged(world, env):
    world.seed_key(age_days=40, in_targets=True)
    world.run()  # now managed, with a brand-new key
    world.clock.advance(hours=1)
    result = handler({}, SimpleNamespace(aws_request_id="req-2"))
    assert result["ok"] and result["users"][0]["outcome"] == "unchanged"
    assert result["gitlab_token"]["days_left"] > 30 and timedelta(seconds=result["duration_seconds"]) < timedelta(
        minutes=1
    )


# metrics: EMF documents on stdout ---------------------------------------------------------


def test_a_rotation_prints_its_metrics_as_emf_documents(world, env, capsys, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "rotation-fn")
    world.seed_key(age_days=40, in_targets=True)
    result = handler({}, CONTEXT)
    run, user = emf.documents(capsys.readouterr().out)
    assert run["Function"] == "rotation-fn" and emf.dimension_sets(run) == [["Function"]]
    counts = emf.values(run)
    assert counts["RunSucceeded"] == 1 and counts["RunFailed"] == 0 and counts["Rotations"] == 1
    assert counts["Rollbacks"] == 0 and counts["Errors"] == 0 and counts["GitLabRequests"] > 0
    assert counts["GitLabTokenDaysLeft"] == result["gitlab_token"]["days_left"] > 30
    assert counts["GitLabRequests"] == result["gitlab_requests"]
    assert user["IamUser"] == "ci-deployer" and emf.dimension_sets(user) == [["Function", "IamUser"], ["Function"]]
    assert emf.values(user) == {"CurrentKeyAgeDays": 0.0}  # the new key


def test_a_failed_run_counts_the_failure(world, env, capsys):
    world.seed_key(age_days=40, in_targets=True)
    other = world.seed_key(age_days=50)
    world.put_target(PROJECT_TARGET, other, world.seeded_keys[other])  # the targets disagree: blocked
    with pytest.raises(RotationRunFailed):
        handler({}, CONTEXT)
    run, user = emf.documents(capsys.readouterr().out)
    assert run["Function"] == "local"  # outside Lambda
    counts = emf.values(run)
    assert counts["RunSucceeded"] == 0 and counts["RunFailed"] == 1 and counts["UsersFailed"] == 1
    assert counts["Errors"] == 1 and counts["Rotations"] == 0
    assert "CurrentKeyAgeDays" in emf.values(user)


def test_a_rollback_is_counted(world, env, capsys):
    world.seed_key(age_days=40, in_targets=True)
    world.gitlab.inject(method="PUT", path="AWS_SECRET_ACCESS_KEY", status=403, times=None)
    with pytest.raises(RotationRunFailed, match="rolled back"):
        handler({}, CONTEXT)
    run, _ = emf.documents(capsys.readouterr().out)
    assert emf.values(run)["Rollbacks"] == 1 and emf.values(run)["RunFailed"] == 1


def test_a_run_refused_before_it_starts_still_counts_as_failed(world, env, capsys):
    with pytest.raises(EventError):
        handler({"froce": True}, CONTEXT)
    [run] = emf.documents(capsys.readouterr().out)
    assert emf.values(run) == {"RunSucceeded": 0, "RunFailed": 1, "Errors": 1}
