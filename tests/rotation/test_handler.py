"""The Lambda entry point as Lambda calls it: environment variables (the CDK's contract), an event,
the real composition root. One JSON summary line per run; an exception when anything failed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from gitlab_key_rotation.lambda_src.common.env import SettingsError
from gitlab_key_rotation.lambda_src.rotation.handler import SUMMARY_EVENT, RotationRunFailed, handler
from gitlab_key_rotation.lambda_src.rotation.request import BadEventError
from gitlab_key_rotation_dev.rotation_world import PROJECT_TARGET, FakeClock, RotationWorld, build_world


@pytest.fixture
def world(aws, gitlab) -> RotationWorld:
    """On real time: the handler's clock is the system's."""
    clock = FakeClock(datetime.now(UTC))
    gitlab.today = clock.now().date()
    return build_world(gitlab, clock)


@pytest.fixture
def env(world, monkeypatch) -> dict[str, str]:
    settings = world.settings
    variables = {
        "GITLAB_URL": settings.gitlab_url,
        "GITLAB_TOKEN_SECRET_ARN": settings.gitlab_token_secret_arn,
        "GITLAB_CA_BUNDLE": settings.gitlab_ca_bundle,
        "ROTATION_USERS": json.dumps(
            [
                {
                    "iam_user": world.user.iam_user,
                    "state_secret_arn": world.state_arn,
                    "targets": [
                        {"kind": t.kind, "id": t.id, "environment_scope": t.environment_scope}
                        for t in world.user.targets
                    ],
                }
            ]
        ),
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
    assert json.loads(line.getMessage()) == result and line.ok is True
    assert result["dry_run"] is True and result["run_id"] == "req-1"
    [user] = result["users"]
    assert user["outcome"] == "planned" and user["actions"][0]["action"] == "rotate"
    assert world.keys() == {key_id: "Active"} and world.stage("AWSPENDING") is None
    assert no_secret_in(world, line.getMessage())


def test_a_failed_run_raises_after_logging_its_summary_and_alerting(world, env, caplog):
    world.seed_key(age_days=40, in_targets=True)
    other = world.seed_key(age_days=50)
    world.put_target(PROJECT_TARGET, other, world.seeded_keys[other])  # the targets disagree: blocked
    with caplog.at_level(logging.INFO), pytest.raises(RotationRunFailed) as raised:
        handler({"id": "ev-1", "source": "aws.events", "detail-type": "Scheduled Event"}, CONTEXT)
    [line] = summaries(caplog)
    summary = json.loads(line.getMessage())
    assert line.levelno == logging.ERROR and summary["ok"] is False and summary["event_id"] == "ev-1"
    assert "ci-deployer: rotation is due" in str(raised.value) and "both are in use" in str(raised.value)
    assert no_secret_in(world, str(raised.value)) and no_secret_in(world, line.getMessage())
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
    with caplog.at_level(logging.INFO), pytest.raises(BadEventError) as raised:
        handler(event, CONTEXT)
    assert message in str(raised.value)
    [line] = summaries(caplog)
    assert json.loads(line.getMessage())["ok"] is False
    assert world.keys() == {key_id: "Active"} and world.stage("AWSPENDING") is None


def test_a_bad_environment_names_the_variable(world, env, monkeypatch):
    monkeypatch.setenv("ROTATION_PERIOD_DAYS", "monthly")
    with pytest.raises(SettingsError, match="ROTATION_PERIOD_DAYS must be an integer, got 'monthly'"):
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
