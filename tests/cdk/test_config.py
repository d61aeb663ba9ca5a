"""cdk.json context -> checked config: the defaults, the settings that must keep working, every
kind of bad value refused at synth (key path, value, what is allowed; every problem at once; no
password echoed), ``deployments`` and ``-c`` overrides."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitlab_key_rotation.config import CONTEXT_KEY, ConfigError, load_config, load_deployments
from gitlab_key_rotation.targets import GitLabTarget
from tests.cdk.synth import REPO, cdk_json_context

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def load(edit=None, base_dir: Path = REPO, **overrides):
    context = copy.deepcopy(cdk_json_context())
    if edit:
        edit(context[CONTEXT_KEY])
    context |= {f"{CONTEXT_KEY}.{path}": value for path, value in overrides.items()}
    return load_deployments(context, base_dir)


def problems(edit=None, **overrides) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load(edit, **overrides)
    return caught.value.problems


def test_cdk_json_default_is_the_documented_example() -> None:
    (config,) = load()
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
    assert config.rotation.vpc is None


def test_token_rotation_needs_runs_that_never_overlap() -> None:
    def edit(c: dict) -> None:
        c["gitlab"].update(rotate_token=True)
        c["rotation"].update(reserved_concurrency=0)

    assert problems(edit) == (
        "gitlab-key-rotation.gitlab.rotate_token needs gitlab-key-rotation.rotation.reserved_concurrency 1 (runs never "
        "overlap: a run still using the old token while another rotates it makes GitLab revoke the new one), got 0",
    )


def test_heartbeat_hours_default_to_the_schedule_and_can_be_set_or_turned_off() -> None:
    assert load()[0].rotation.heartbeat_hours is None
    assert load(lambda c: c["rotation"].update(heartbeat_hours=0))[0].rotation.heartbeat_hours == 0
    assert load(lambda c: c["revocation"].update(heartbeat_hours=168))[0].revocation.heartbeat_hours == 168
    (problem,) = problems(lambda c: c["revocation"].update(heartbeat_hours=169))
    assert problem.startswith("gitlab-key-rotation.revocation.heartbeat_hours must be a whole number of hours from 0 to 168, or null, got 169")


def test_slack_needs_both_ids() -> None:
    (config,) = load(lambda c: c.update(notifications={"slack": {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCDEF"}}))
    assert config.slack is not None and config.slack.channel_id == "C0123ABCDEF"
    assert load()[0].slack is None
    assert problems(lambda c: c.update(notifications={"slack": {"workspace_id": "T0123ABCD"}})) == (
        "gitlab-key-rotation.notifications.slack.channel_id is required",
    )
    (problem,) = problems(lambda c: c.update(notifications={"teams": {}}))
    assert problem.startswith("gitlab-key-rotation.notifications.teams is not a setting")


def test_revocation_can_be_disabled_without_groups() -> None:
    (config,) = load(lambda c: c.update(revocation={"enabled": False}))
    assert not config.revocation.enabled


def test_ca_bundle_file_is_relative_to_the_app_directory(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text(PEM)
    (config,) = load(lambda c: c["gitlab"].update(ca_bundle_file="certs/ca.pem"), base_dir=tmp_path)
    assert config.gitlab.ca_bundle_file == tmp_path / "certs" / "ca.pem"


def test_a_ca_file_that_is_not_pem_is_refused_with_its_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    (tmp_path / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
    for name, reason in (("ca.pem", "holds no '-----BEGIN CERTIFICATE-----"), ("broken.pem", "certificate 1 is not base64")):
        with pytest.raises(ConfigError, match=rf"{CONTEXT_KEY}\.gitlab\.ca_bundle_file must be the path of a PEM file .*{name}: .*{reason}"):
            load(lambda c, name=name: c["gitlab"].update(ca_bundle_file=name), base_dir=tmp_path)


def _valid(root: dict) -> None:
    root["account"], root["region"] = "123456789012", "us-gov-west-1"
    root["gitlab"]["url"] = "https://gitlab.example.com:8443/gitlab/"
    root["rotation"]["schedule"] = "rate(2 hours)"
    root["rotation"]["users"] = [
        {
            "iam_user": "ci+deployer=1,a.b@c_d-e",
            "iam_path": "/ci/machines/",
            "targets": [
                {"kind": "project", "id": 1234, "environment_scope": "review/*"},
                {"kind": "project", "id": "1234", "environment_scope": "production"},
                {"kind": "group", "id": "org/sub.group/deeper_sub/team-a", "environment_scope": "${CI_ENV} staging"},
                {"kind": "project", "id": "org/sub/app", "protected": False, "masked": False, "raw": False, "description": ""},
            ],
        },
        {"iam_user": "ci-b", "targets": [{"kind": "project", "id": "1234", "access_key_id_variable": "B_ID", "secret_access_key_variable": "B_SECRET"}]},
    ]
    root["revocation"] |= {"exempt_tag_key": "Key Revocation:exempt/@=+-_.", "schedule": "rate(7 days)"}
    root["log_retention_days"] = 3653


def test_settings_that_must_keep_working() -> None:
    (config,) = load(_valid)
    assert config.gitlab.url == "https://gitlab.example.com:8443/gitlab"
    first, second = config.rotation.users
    assert first.iam_path == "/ci/machines/" and [t.id for t in first.targets] == ["1234", "1234", "org/sub.group/deeper_sub/team-a", "org/sub/app"]
    assert [t.environment_scope for t in first.targets][:3] == ["review/*", "production", "${CI_ENV} staging"]
    assert second.targets[0].access_key_id_variable == "B_ID"
    assert config.region == "us-gov-west-1"


def _set(path: str, value):
    def edit(root: dict) -> None:
        *parents, last = path.split(".")
        node = root
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


T0 = "rotation.users[0].targets[0]"
SAME_USER_TWICE = [{"iam_user": "ci", "targets": [{"kind": "group", "id": "g"}]}, {"iam_user": "CI", "targets": [{"kind": "group", "id": "h"}]}]
SAME_VARIABLE = [{"iam_user": "a", "targets": [{"kind": "group", "id": "g"}]}, {"iam_user": "b", "targets": [{"kind": "group", "id": "g"}]}]
SAME_TARGET = [{"iam_user": "a", "targets": [{"kind": "project", "id": "g/p"}, {"kind": "project", "id": "g/p"}]}]

# (key path set, value, the key path the message names, what it says). Each is one bad-setting case.
BAD = [
    # IAM: names, paths, tag keys
    ("rotation.users.0.iam_user", "ci deployer", "rotation.users[0].iam_user", r"must be an IAM user name of 1 to 64 .*got 'ci deployer'"),
    ("rotation.users.0.iam_user", "x" * 65, "rotation.users[0].iam_user", r"must be an IAM user name of 1 to 64"),
    ("rotation.users.0.iam_user", "", "rotation.users[0].iam_user", r"must be an IAM user name"),
    ("rotation.users.0.iam_path", "ci", "rotation.users[0].iam_path", r"must be an IAM path .*got 'ci'"),
    ("rotation.users.0.iam_path", "/ci", "rotation.users[0].iam_path", r"must be an IAM path"),
    ("rotation.users.0.iam_path", "/c i/", "rotation.users[0].iam_path", r"must be an IAM path"),
    ("rotation.users.0.iam_path", "/" + "a/" * 256, "rotation.users[0].iam_path", r"must be an IAM path of up to 512"),
    ("rotation.users", SAME_USER_TWICE, "rotation.users", r"\[1\]\.iam_user 'CI' repeats .*rotation\.users\[0\]\.iam_user \(IAM user names ignore case\)"),
    ("revocation.groups", ["devs", "bad group"], "revocation.groups", r"must be a list, each item an IAM group name .*item \[1\] 'bad group'"),
    ("revocation.groups", ["g" * 129], "revocation.groups", r"IAM group name of 1 to 128"),
    ("revocation.groups", ["developers", "Developers"], "revocation.groups", r"item \[1\] 'Developers' repeats item \[0\]"),
    ("revocation.groups", [], "revocation.groups", r"must name at least one IAM group .*or set gitlab-key-rotation\.revocation\.enabled to false"),
    ("revocation.groups", "developers", "revocation.groups", r"must be a list.*got 'developers' \(not a list\)"),
    ("revocation.exempt_users", ["dave", "dave"], "revocation.exempt_users", r"item \[1\] 'dave' repeats item \[0\]"),
    ("revocation.exempt_users", ["dave smith"], "revocation.exempt_users", r"IAM user name"),
    ("revocation.exempt_tag_key", "aws:exempt", "revocation.exempt_tag_key", r"must be an IAM tag key .*got 'aws:exempt' \(the prefix 'aws:' is reserved for AWS\)"),
    ("revocation.exempt_tag_key", "AWS:Exempt", "revocation.exempt_tag_key", r"the prefix 'aws:' is reserved"),
    ("revocation.exempt_tag_key", "x" * 129, "revocation.exempt_tag_key", r"must be an IAM tag key of 1 to 128"),
    ("revocation.exempt_tag_key", "exempt!", "revocation.exempt_tag_key", r"must be an IAM tag key .*got 'exempt!'"),
    ("revocation.exempt_tag_key", "exempt\nnow", "revocation.exempt_tag_key", r"must be an IAM tag key"),
    ("revocation.exempt_tag_key", True, "revocation.exempt_tag_key", r"must be an IAM tag key .*got True"),
    # GitLab: URL, targets, variables
    ("gitlab.url", "http://gitlab.example.com", "gitlab.url", r"must be the https:// base URL .*got 'http://gitlab.example.com' \(the scheme must be https\)"),
    ("gitlab.url", "gitlab.com", "gitlab.url", r"the scheme must be https"),
    ("gitlab.url", "https://gitlab.com/api/v4", "gitlab.url", r"got 'https://gitlab.com/api/v4' \(drop the trailing /api/v4"),
    ("gitlab.url", "https://gitlab.example.com/gitlab/api/v4/", "gitlab.url", r"drop the trailing /api/v4"),
    ("gitlab.url", "https://bot:hunter2@gitlab.com", "gitlab.url", r"got 'https://bot:\*\*\*@gitlab.com' \(credentials do not belong in the URL"),
    ("gitlab.url", "https://glpat-abc@gitlab.com", "gitlab.url", r"got 'https://\*\*\*@gitlab.com' \(credentials"),
    ("gitlab.url", "https://gitlab.com/?private_token=x", "gitlab.url", r"a query or fragment does not belong"),
    ("gitlab.url", "https://gitlab.com:99999", "gitlab.url", r"it is not a well-formed URL"),
    ("gitlab.url", "https://", "gitlab.url", r"it has no valid host"),
    ("gitlab.url", "https://git lab.com", "gitlab.url", r"must be the https:// base URL"),
    (f"rotation.users.0.targets.0.id", "https://gitlab.com/grp/proj", f"{T0}.id", r"got 'https://gitlab.com/grp/proj' \(it is a URL: give the path after the host, e.g. 'grp/proj'"),
    (f"rotation.users.0.targets.0.id", "gitlab.com/grp/proj", f"{T0}.id", r"it is a URL"),
    (f"rotation.users.0.targets.0.id", "", f"{T0}.id", r"must be a numeric id such as 1234 or a full path"),
    (f"rotation.users.0.targets.0.id", "/grp/proj/", f"{T0}.id", r"no leading or trailing '/'"),
    (f"rotation.users.0.targets.0.id", "grp//proj", f"{T0}.id", r"segment '' is not a GitLab path"),
    (f"rotation.users.0.targets.0.id", "grp/proj.git", f"{T0}.id", r"segment 'proj.git' is not a GitLab path"),
    (f"rotation.users.0.targets.0.id", "my group/proj", f"{T0}.id", r"segment 'my group' is not a GitLab path"),
    (f"rotation.users.0.targets.0.id", 0, f"{T0}.id", r"numeric ids start at 1"),
    (f"rotation.users.0.targets.0.id", 1.5, f"{T0}.id", r"must be a numeric id"),
    (f"rotation.users.0.targets.0.kind", "namespace", f"{T0}.kind", r"must be one of 'group', 'project', got 'namespace'"),
    (f"rotation.users.0.targets.0.access_key_id_variable", "AWS-KEY", f"{T0}.access_key_id_variable", r"must be a GitLab variable key .*got 'AWS-KEY'"),
    (f"rotation.users.0.targets.0.secret_access_key_variable", "K" * 256, f"{T0}.secret_access_key_variable", r"must be a GitLab variable key of 1 to 255"),
    (f"rotation.users.0.targets.0.access_key_id_variable", "AWS_SECRET_ACCESS_KEY", f"{T0}.access_key_id_variable", r"and .*secret_access_key_variable must differ, both are 'AWS_SECRET_ACCESS_KEY'"),
    (f"rotation.users.0.targets.0.environment_scope", "", f"{T0}.environment_scope", r"must be '\*' \(every environment\), an environment name or a wildcard pattern"),
    (f"rotation.users.0.targets.0.environment_scope", "prod;rm", f"{T0}.environment_scope", r"got 'prod;rm'"),
    (f"rotation.users.0.targets.0.environment_scope", "prød", f"{T0}.environment_scope", r"got 'prød'"),
    (f"rotation.users.0.targets.0.environment_scope", "production ", f"{T0}.environment_scope", r"GitLab strips leading and trailing spaces"),
    (f"rotation.users.0.targets.0.environment_scope", "e" * 256, f"{T0}.environment_scope", r"1 to 255 letters"),
    (f"rotation.users.0.targets.0.description", "x" * 256, f"{T0}.description", r"must be a string of 0 to 255 characters"),
    (f"rotation.users.0.targets.0.protected", "yes", f"{T0}.protected", r"must be true or false, got 'yes'"),
    (f"rotation.users.0.targets.0.masked", 1, f"{T0}.masked", r"must be true or false, got 1"),
    (f"rotation.users.0.targets.0.colour", "blue", f"{T0}.colour", r"is not a setting \(a typo\?\); the keys allowed here are \['access_key_id_variable'"),
    ("rotation.users", SAME_VARIABLE, "rotation.users", r"\[1\]\.targets\[0\] writes variable 'AWS_ACCESS_KEY_ID' of group 'g' at environment scope '\*', as .*rotation\.users\[0\]\.targets\[0\] does"),
    ("rotation.users", SAME_TARGET, "rotation.users", r"\[0\]\.targets\[1\] writes variable 'AWS_ACCESS_KEY_ID' of project 'g/p'.*list a target once"),
    ("rotation.users.0.targets", [], "rotation.users[0].targets", r"must be a non-empty list of objects \(GitLab targets\), got \[\]"),
    ("rotation.users.0.targets", {"kind": "group", "id": "g"}, "rotation.users[0].targets", r"must be a non-empty list of objects"),
    ("rotation.users", [], "rotation.users", r"must be a non-empty list of objects \(IAM machine users\), got \[\]"),
    ("rotation.users.0", "ci-deployer", "rotation.users[0]", r"must be a JSON object, got 'ci-deployer'"),
    ("gitlab.token_expiry_warning_days", 400, "gitlab.token_expiry_warning_days", r"must be a whole number of days from 1 to 365, got 400"),
    ("gitlab.token_expiry_warning_days", 0, "gitlab.token_expiry_warning_days", r"from 1 to 365, got 0"),
    ("gitlab.ca_bundle_file", "missing.pem", "gitlab.ca_bundle_file", r"must be the path of a PEM file .*missing.pem' is not a file"),
    ("gitlab.ca_bundle_file", "", "gitlab.ca_bundle_file", r"must be the path of a PEM file"),
    ("gitlab.token_secret_arn", "gitlab-token", "gitlab.token_secret_arn", r"must be the complete ARN of a secret .*got 'gitlab-token'"),
    ("gitlab.token_secret_arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token", "gitlab.token_secret_arn", r"with its 6-character suffix"),
    ("gitlab.rotate_token", "false", "gitlab.rotate_token", r"must be true or false, got 'false'"),
    ("gitlab.max_requests_per_minute", 0, "gitlab.max_requests_per_minute", r"must be a whole number of requests from 1 to 2000, got 0"),
    ("gitlab.max_requests_per_minute", 2001, "gitlab.max_requests_per_minute", r"from 1 to 2000, got 2001"),
    ("gitlab.max_requests_per_minute", 80.5, "gitlab.max_requests_per_minute", r"from 1 to 2000, got 80.5"),
    # EventBridge schedules
    ("rotation.schedule", "cron(0 6 * * *)", "rotation.schedule", r"must be an EventBridge schedule .*got 'cron\(0 6 \* \* \*\)' \(5 fields instead of 6\)"),
    ("rotation.schedule", "cron(0 6 * * MON *)", "rotation.schedule", r"exactly one of day-of-month and day-of-week must be '\?'"),
    ("rotation.schedule", "cron(0 6 ? * ? *)", "rotation.schedule", r"exactly one of day-of-month and day-of-week"),
    ("rotation.schedule", "cron(61 6 ? * MON *)", "rotation.schedule", r"minutes field '61': '61' is not in 0-59"),
    ("rotation.schedule", "cron(0 6 ? * MON 1969)", "rotation.schedule", r"year field '1969': '1969' is not in 1970-2199"),
    ("rotation.schedule", "cron(0 6 ? * MON#6 *)", "rotation.schedule", r"'MON#6' must be <day>#<1-5>"),
    ("rotation.schedule", "cron(0 6 ? JANUARY MON *)", "rotation.schedule", r"month field 'JANUARY'"),
    ("revocation.schedule", "cron(55 23 ? * FRY *)", "revocation.schedule", r"day-of-week field 'FRY': 'FRY' is not in 1-7 or SUN-SAT"),
    ("revocation.schedule", "rate(1 days)", "revocation.schedule", r"EventBridge wants the singular for 1"),
    ("revocation.schedule", "rate(2 day)", "revocation.schedule", r"EventBridge wants the singular for 1"),
    ("revocation.schedule", "rate(0 minutes)", "revocation.schedule", r"a rate must be at least 1"),
    ("revocation.schedule", "rate(1 week)", "revocation.schedule", r"it is neither cron\(...\) nor rate\(...\)"),
    ("revocation.schedule", "every friday", "revocation.schedule", r"it is neither cron"),
    ("revocation.schedule", 5, "revocation.schedule", r"a int, not a string"),
    # CloudWatch Logs
    ("log_retention_days", 100, "log_retention_days", r"must be one of 1, 3, 5, .*3653 \(CloudWatch Logs' values\), got 100"),
    ("log_retention_days", "90", "log_retention_days", r"got '90'"),
    ("log_retention_days", 0, "log_retention_days", r"got 0"),
    # AWS account, region, stack, key, e-mail
    ("region", "eu-west-9", "region", r"must be a known AWS region code such as 'eu-west-1', or null, got 'eu-west-9'"),
    ("region", "EU-WEST-1", "region", r"known AWS region code"),
    ("region", "eu-west-1a", "region", r"known AWS region code"),
    ("account", "1234", "account", r"must be a 12-digit AWS account id .*got '1234'"),
    ("account", 123456789012, "account", r"12-digit AWS account id .*got 123456789012"),
    ("kms_key_arn", "alias/mine", "kms_key_arn", r"must be a KMS key ARN .*\(not an alias\)"),
    ("stack_name", "1stack", "stack_name", r"must be a CloudFormation stack name"),
    ("stack_name", "key_rotation", "stack_name", r"must be a CloudFormation stack name"),
    ("stack_name", "K" * 129, "stack_name", r"must be a CloudFormation stack name"),
    ("notification_email", "platform-team", "notification_email", r"must be an e-mail address .*got 'platform-team'"),
    # Lambda limits
    ("rotation.timeout_seconds", 1000, "rotation.timeout_seconds", r"must be a whole number of seconds from 30 to 900, got 1000"),
    ("revocation.timeout_seconds", 10, "revocation.timeout_seconds", r"from 30 to 900, got 10"),
    ("rotation.memory_mb", 64, "rotation.memory_mb", r"must be a whole number of MB from 128 to 10240, got 64"),
    ("revocation.max_workers", 65, "revocation.max_workers", r"must be a whole number from 1 to 64, got 65"),
    ("revocation.max_workers", 0, "revocation.max_workers", r"from 1 to 64, got 0"),
    ("rotation.reserved_concurrency", -1, "rotation.reserved_concurrency", r"must be a whole number >= 0, got -1"),
    # rotation and revocation timing, switches
    ("rotation.period_days", -5, "rotation.period_days", r"must be a whole number of days >= 1, got -5"),
    ("rotation.period_days", "30", "rotation.period_days", r"must be a whole number of days >= 1, got '30'"),
    ("rotation.period_days", 30.5, "rotation.period_days", r"got 30.5"),
    ("rotation.grace_period_hours", 720, "rotation.grace_period_hours", r"\(720\) must be shorter than gitlab-key-rotation\.rotation\.period_days \(30 days = 720 hours\)"),
    ("rotation.deletion_window_days", -1, "rotation.deletion_window_days", r"must be a whole number of days >= 0, got -1"),
    ("rotation.notify_on_success", "true", "rotation.notify_on_success", r"must be true or false, got 'true'"),
    ("rotation.dry_run", None, None, None),  # null means the default: not a bad setting (kept as a control)
    ("revocation.min_key_age_days", -1, "revocation.min_key_age_days", r"must be a whole number of days >= 0, got -1"),
    ("revocation.action", "disable", "revocation.action", r"must be one of 'delete', 'deactivate', got 'disable'"),
    ("revocation.enabled", "no", "revocation.enabled", r"must be true or false, got 'no'"),
    # VPC
    ("rotation.vpc", {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": []}, "rotation.vpc.subnet_ids", r"must be a non-empty list, each item a subnet id .*\(it is empty\)"),
    ("rotation.vpc", {"vpc_id": "my-vpc", "subnet_ids": ["subnet-0123456789abcdef0"]}, "rotation.vpc.vpc_id", r"must be a VPC id such as 'vpc-"),
    ("rotation.vpc", {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"] * 2}, "rotation.vpc.subnet_ids", r"item \[1\] .* repeats item \[0\]"),
    ("rotation.vpc", {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-1"]}, "rotation.vpc.security_group_ids", r"item \[0\] 'sg-1' is not a security group id"),
    ("rotation.vpc", {"subnet_ids": ["subnet-0123456789abcdef0"]}, "rotation.vpc.vpc_id", r"is required"),
    # structure
    ("rotation.retries", 3, "rotation.retries", r"is not a setting \(a typo\?\); the keys allowed here are \['deletion_window_days'"),
    ("gitlab", "https://gitlab.com", "gitlab", r"must be a JSON object, got 'https://gitlab.com'"),
    ("gitlab.url", None, "gitlab.url", r"is required"),
]
BAD = [case for case in BAD if case[2] is not None]


@pytest.mark.parametrize(("path", "value", "key", "expected"), BAD, ids=[f"{c[0]}={str(c[1])[:30]}" for c in BAD])
def test_bad_values_are_refused_with_key_value_and_what_is_allowed(path: str, value, key: str, expected: str) -> None:
    found = problems(_set(path, value))
    assert len(found) == 1, found
    assert found[0].startswith(f"{CONTEXT_KEY}.{key}"), found[0]
    assert __import__("re").search(expected, found[0]), found[0]


def test_null_means_the_default() -> None:
    (config,) = load(_set("rotation.dry_run", None))
    assert config.rotation.dry_run is False


def test_every_mistake_is_reported_in_one_run() -> None:
    paths = {case[0] for case in BAD}
    leaves = [case for case in BAD if not any(other.startswith(case[0] + ".") for other in paths)]
    distinct = list({case[0]: case for case in leaves}.values())[:30]

    def many(root: dict) -> None:
        for path, value, _key, _expected in distinct:
            _set(path, value)(root)
        root["gitlab"]["url"] = "https://bot:hunter2@gitlab.com"
        root["region"] = "mars-1"

    found = problems(many)
    assert len(found) >= 25, found
    assert any(p.startswith(f"{CONTEXT_KEY}.gitlab.url") for p in found) and any(p.startswith(f"{CONTEXT_KEY}.region") for p in found)
    assert "hunter2" not in "\n".join(found)


def test_missing_context_key_says_where_to_put_it() -> None:
    with pytest.raises(ConfigError, match=r"no key 'gitlab-key-rotation': add it to cdk.json"):
        load_config({}, REPO)


# ---- deployments ------------------------------------------------------------------------------

def _two_accounts(root: dict) -> None:
    del root["stack_name"]
    root["region"] = "eu-west-1"
    root["deployments"] = [
        {"stack_name": "KeyRotation-prod", "account": "111111111111", "rotation": {"period_days": 14}},
        {"stack_name": "KeyRotation-dev", "account": "222222222222", "region": "eu-central-1", "revocation": {"enabled": False}},
    ]


def test_deployments_give_one_config_per_entry_with_its_overrides() -> None:
    prod, dev = load(_two_accounts)
    assert (prod.stack_name, prod.account, prod.region, prod.rotation.period_days) == ("KeyRotation-prod", "111111111111", "eu-west-1", 14)
    assert (dev.stack_name, dev.account, dev.region, dev.rotation.period_days) == ("KeyRotation-dev", "222222222222", "eu-central-1", 30)
    assert prod.revocation.enabled and not dev.revocation.enabled
    assert prod.rotation.users == dev.rotation.users  # the shared settings


def test_a_bad_value_is_named_where_it_is_written() -> None:
    def edit(root: dict) -> None:
        _two_accounts(root)
        root["deployments"][1]["rotation"] = {"period_days": 0}
        root["deployments"][0]["region"] = "eu-west-9"
        root["revocation"]["action"] = "disable"  # shared: reported once, not per deployment

    found = problems(edit)
    assert sorted(p.split(" ")[0] for p in found) == [
        f"{CONTEXT_KEY}.deployments[0].region",
        f"{CONTEXT_KEY}.deployments[1].rotation.period_days",
        f"{CONTEXT_KEY}.revocation.action",
    ]


def test_each_deployment_needs_its_stack_account_and_region() -> None:
    def edit(root: dict) -> None:
        _two_accounts(root)
        del root["region"]
        root["deployments"][1]["stack_name"] = "KeyRotation-prod"
        root["deployments"].append({"account": "333333333333", "region": "eu-west-1"})
        root["deployments"].append({"stack_name": "X", "account": "333333333333", "region": "eu-west-1", "colour": "blue"})

    found = problems(edit)
    assert f"{CONTEXT_KEY}.deployments[0].region is required in each entry of {CONTEXT_KEY}.deployments" in found
    assert f"{CONTEXT_KEY}.deployments[2].stack_name is required in each entry of {CONTEXT_KEY}.deployments" in found
    assert any(p.startswith(f"{CONTEXT_KEY}.deployments[3].colour is not a setting") for p in found)
    assert f"{CONTEXT_KEY}.deployments name stack 'KeyRotation-prod' more than once: each stack needs its own stack_name" in found


def test_a_shared_stack_name_is_refused_with_deployments() -> None:
    def edit(root: dict) -> None:
        _two_accounts(root)
        root["stack_name"] = "KeyRotationStack"

    assert problems(edit) == (f"{CONTEXT_KEY}.stack_name cannot be set with deployments: each entry of {CONTEXT_KEY}.deployments names its stack",)


def test_deployments_must_be_a_list_of_objects() -> None:
    with pytest.raises(ConfigError, match=r"deployments must be a non-empty list of objects"):
        load(_set("deployments", {"prod": {}}))


# ---- -c overrides -----------------------------------------------------------------------------

def test_a_dotted_context_key_overrides_that_setting() -> None:
    (config,) = load(**{"stack_name": "Other", "rotation.period_days": "14", "rotation.users[0].targets[1].environment_scope": "review/*", "gitlab.url": "https://gitlab.example.com"})
    assert (config.stack_name, config.rotation.period_days, config.gitlab.url) == ("Other", 14, "https://gitlab.example.com")
    assert config.rotation.users[0].targets[1].environment_scope == "review/*"


def test_an_override_wins_over_every_deployment_and_can_address_one() -> None:
    prod, dev = load(_two_accounts, **{"rotation.period_days": "7", "deployments[1].account": "333333333333", "notification_email": "null"})
    assert prod.rotation.period_days == dev.rotation.period_days == 7
    assert dev.account == "333333333333" and prod.notification_email is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"rotation.peroid_days": "14"}, f"{CONTEXT_KEY}.rotation.peroid_days (set with -c) is not a setting (a typo?)"),
        ({"rotation.period_days": "fortnight"}, f"{CONTEXT_KEY}.rotation.period_days (set with -c) must be a whole number of days >= 1, got 'fortnight'"),
        ({"rotation.users[3].iam_user": "x"}, f"-c {CONTEXT_KEY}.rotation.users[3].iam_user: there is no item [3] to override (the list has 1)"),
        ({"gitlab.url.host": "x"}, f"-c {CONTEXT_KEY}.gitlab.url.host: {CONTEXT_KEY}.gitlab.url is not an object"),
        ({"rotation..period_days": "1"}, f"-c {CONTEXT_KEY}.rotation..period_days: 'rotation..period_days' is not a key path"),
        ({"gitlab.url": "https://bot:hunter2@gitlab.com"}, f"{CONTEXT_KEY}.gitlab.url (set with -c) must be the https:// base URL"),
    ],
)
def test_an_override_that_names_no_setting_or_a_bad_value_is_refused(overrides: dict, expected: str) -> None:
    found = problems(**overrides)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "hunter2" not in found[0]


def run_app(tmp_path: Path, context: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=tmp_path,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_app_prints_every_problem_and_exits_without_a_traceback(tmp_path: Path) -> None:
    context = cdk_json_context()
    context[CONTEXT_KEY]["gitlab"]["url"] = "https://bot:hunter2@gitlab.com/api/v4"
    context[CONTEXT_KEY]["revocation"]["exempt_tag_key"] = "aws:exempt"
    context[f"{CONTEXT_KEY}.rotation.period_days"] = "0"
    result = run_app(tmp_path, context)
    assert result.returncode == 1
    assert result.stderr.startswith("cdk.json: 3 settings are wrong:\n- gitlab-key-rotation.gitlab.url must be")
    assert "gitlab-key-rotation.rotation.period_days (set with -c)" in result.stderr
    assert "gitlab-key-rotation.revocation.exempt_tag_key" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout
