"""cdk.json context -> typed config: the defaults, and an error naming key, value and what is
allowed for every kind of bad value."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gitlab_key_rotation.config import CONTEXT_KEY, ConfigError, load_config
from gitlab_key_rotation.targets import GitLabTarget
from tests.cdk.synth import REPO, cdk_json_context

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def load(edit=None, base_dir: Path = REPO):
    context = copy.deepcopy(cdk_json_context())
    if edit:
        edit(context[CONTEXT_KEY])
    return load_config(context, base_dir)


def test_cdk_json_default_is_the_documented_example() -> None:
    config = load()
    assert config.stack_name == "KeyRotationStack" and config.account is None and config.region is None
    assert config.gitlab.url == "https://gitlab.com" and config.gitlab.token_secret_arn is None
    (user,) = config.rotation.users
    assert user.iam_user == "ci-deployer" and user.iam_path == "/"
    assert [t.kind for t in user.targets] == ["group", "project"]
    assert config.revocation.groups == ("developers", "contractors")
    assert config.revocation.enabled and config.revocation.action == "delete"


def test_defaults_of_a_minimal_config() -> None:
    minimal = {
        CONTEXT_KEY: {
            "gitlab": {"url": "https://gitlab.example.com/"},
            "rotation": {"users": [{"iam_user": "ci", "targets": [{"kind": "project", "id": 42}]}]},
            "revocation": {"groups": ["developers"]},
        }
    }
    config = load_config(minimal, REPO)
    assert config.gitlab.url == "https://gitlab.example.com"
    assert config.rotation.users[0].targets == (GitLabTarget(kind="project", id="42"),)
    assert (config.rotation.schedule, config.revocation.schedule) == ("cron(0 6-18 ? * MON-FRI *)", "cron(55 23 ? * FRI *)")
    assert (config.rotation.period_days, config.rotation.grace_period_hours, config.rotation.deletion_window_days) == (30, 24, 7)
    assert config.rotation.reserved_concurrency == 1 and config.log_retention_days == 90
    assert config.revocation.exempt_tag_key == "key-revocation:exempt" and config.notification_email is None


def test_reserved_concurrency_zero_reserves_nothing() -> None:
    assert load(lambda c: c["rotation"].update(reserved_concurrency=0)).rotation.reserved_concurrency is None


def test_token_rotation_needs_runs_that_never_overlap() -> None:
    def edit(c: dict) -> None:
        c["gitlab"].update(rotate_token=True)
        c["rotation"].update(reserved_concurrency=0)

    with pytest.raises(ConfigError, match=r"gitlab-key-rotation.gitlab.rotate_token needs gitlab-key-rotation.rotation.reserved_concurrency 1 .*got 0"):
        load(edit)


def test_heartbeat_hours_default_to_the_schedule_and_can_be_set_or_turned_off() -> None:
    assert load(lambda c: None).rotation.heartbeat_hours is None
    assert load(lambda c: c["rotation"].update(heartbeat_hours=0)).rotation.heartbeat_hours == 0
    assert load(lambda c: c["revocation"].update(heartbeat_hours=168)).revocation.heartbeat_hours == 168
    with pytest.raises(ConfigError, match=r"gitlab-key-rotation.revocation.heartbeat_hours must be at most 168, got 169"):
        load(lambda c: c["revocation"].update(heartbeat_hours=169))


def test_slack_needs_both_ids() -> None:
    config = load(lambda c: c.update(notifications={"slack": {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCDEF"}}))
    assert config.slack is not None and config.slack.channel_id == "C0123ABCDEF"
    assert load(lambda c: None).slack is None
    with pytest.raises(ConfigError, match=r"gitlab-key-rotation.notifications.slack.channel_id is required"):
        load(lambda c: c.update(notifications={"slack": {"workspace_id": "T0123ABCD"}}))
    with pytest.raises(ConfigError, match=r"notifications has unknown key\(s\) \['teams'\]"):
        load(lambda c: c.update(notifications={"teams": {}}))


def test_revocation_can_be_disabled_without_groups() -> None:
    config = load(lambda c: c.update(revocation={"enabled": False}))
    assert not config.revocation.enabled


def test_ca_bundle_file_is_relative_to_the_app_directory(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text(PEM)
    config = load(lambda c: c["gitlab"].update(ca_bundle_file="certs/ca.pem"), base_dir=tmp_path)
    assert config.gitlab.ca_bundle_file == tmp_path / "certs" / "ca.pem"


def _set(path: str, value):
    def edit(root: dict) -> None:
        *parents, last = path.split(".")
        node = root
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("rotation.schedule", "cron(0 6 * * *)", r"rotation\.schedule must be a 6-field .*got 'cron\(0 6 \* \* \*\)' \(5 fields instead of 6\)"),
        ("rotation.schedule", "cron(0 6 * * MON *)", r"rotation\.schedule .*exactly one of day-of-month and day-of-week must be '\?'"),
        ("rotation.schedule", "cron(61 6 ? * MON *)", r"rotation\.schedule .*minutes field '61': '61' is not in 0-59"),
        ("revocation.schedule", "rate(7 days)", r"revocation\.schedule .*got 'rate\(7 days\)' \(it is not of the form cron"),
        ("revocation.schedule", "cron(55 23 ? * FRY *)", r"day-of-week field 'FRY': 'FRY' is not in 1-7 or SUN-SAT"),
        ("rotation.users.0.targets.0.kind", "namespace", r"users\[0\]\.targets\[0\]\.kind must be 'group' or 'project', got 'namespace'"),
        ("rotation.users.0.targets.0.access_key_id_variable", "AWS-KEY", r"targets\[0\]: access_key_id_variable must be a GitLab variable key .*got 'AWS-KEY'"),
        ("rotation.users.0.targets.0.id", "", r"targets\[0\]: id must be a numeric id or a full path"),
        ("rotation.users.0.targets.0.protected", "yes", r"targets\[0\]: protected must be true or false, got 'yes'"),
        ("rotation.users.0.targets.0.colour", "blue", r"targets\[0\] has unknown key\(s\) \['colour'\]; allowed keys are"),
        ("rotation.users.0.iam_user", "ci deployer", r"users\[0\]: iam_user must be an IAM name .*got 'ci deployer'"),
        ("rotation.users.0.iam_path", "ci", r"users\[0\]: iam_path must be an IAM path such as '/' .*got 'ci'"),
        ("rotation.users.0.targets", [], r"users\[0\]\.targets must be a non-empty list of GitLab targets, got \[\]"),
        ("rotation.users", [], r"rotation\.users must be a non-empty list of IAM machine users, got \[\]"),
        ("revocation.groups", [], r"revocation\.groups must name at least one IAM group .*got \[\]"),
        ("revocation.groups", ["devs", "bad group"], r"revocation\.groups\[1\] must be an IAM name .*got 'bad group'"),
        ("revocation.action", "disable", r"revocation\.action must be 'delete' or 'deactivate', got 'disable'"),
        ("gitlab.url", "http://gitlab.example.com", r"gitlab\.url must be an https:// URL .*got 'http://gitlab.example.com'"),
        ("gitlab.url", "gitlab.com", r"gitlab\.url must be an https:// URL"),
        ("gitlab.token_secret_arn", "gitlab-token", r"gitlab\.token_secret_arn must look like 'arn:aws:secretsmanager:.*got 'gitlab-token'"),
        ("gitlab.ca_bundle_file", "missing.pem", r"gitlab\.ca_bundle_file names '.*missing.pem', which is not a file"),
        ("gitlab.token_expiry_warning_days", 0, r"gitlab\.token_expiry_warning_days must be a whole number >= 1, got 0"),
        ("rotation.period_days", -5, r"rotation\.period_days must be a whole number >= 1, got -5"),
        ("rotation.deletion_window_days", -1, r"rotation\.deletion_window_days must be a whole number >= 0, got -1"),
        ("rotation.grace_period_hours", 720, r"rotation\.grace_period_hours \(720\) must be shorter than .*period_days \(30 days = 720 hours\)"),
        ("rotation.period_days", "30", r"rotation\.period_days must be a whole number >= 1, got '30'"),
        ("rotation.timeout_seconds", 1000, r"rotation\.timeout_seconds must be at most 900, got 1000"),
        ("rotation.notify_on_success", "true", r"rotation\.notify_on_success must be true or false, got 'true'"),
        ("rotation.vpc", {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": []}, r"rotation\.vpc\.subnet_ids must be a non-empty list of ids"),
        ("rotation.vpc", {"vpc_id": "my-vpc", "subnet_ids": ["subnet-0123456789abcdef0"]}, r"rotation\.vpc\.vpc_id must look like 'vpc-"),
        ("notification_email", "platform-team", r"notification_email must be an e-mail address .*got 'platform-team'"),
        ("log_retention_days", 100, r"log_retention_days must be one of \[1, 3, .*\], got 100"),
        ("account", "1234", r"account must look like '123456789012', got '1234'"),
        ("kms_key_arn", "alias/mine", r"kms_key_arn must look like 'arn:aws:kms:"),
        ("rotation.retries", 3, r"gitlab-key-rotation\.rotation has unknown key\(s\) \['retries'\]"),
        ("gitlab", "https://gitlab.com", r"gitlab-key-rotation\.gitlab must be a JSON object, got 'https://gitlab.com'"),
    ],
)
def test_bad_values_are_refused_with_key_value_and_what_is_allowed(path: str, value, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load(_set(path, value))
    assert str(caught.value).startswith(f"{CONTEXT_KEY}.")


def test_missing_context_key_says_where_to_put_it() -> None:
    with pytest.raises(ConfigError, match=r"no key 'gitlab-key-rotation': add it to cdk.json"):
        load_config({}, REPO)


def test_app_exits_with_the_config_error(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    context = cdk_json_context()
    context[CONTEXT_KEY]["gitlab"]["url"] = "http://gitlab.com"
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=tmp_path,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "cdk.json: gitlab-key-rotation.gitlab.url must be an https:// URL" in result.stderr
