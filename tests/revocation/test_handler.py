"""The Lambda handler end to end against moto: settings from settings.json, the event, IAM,
the one summary log line, the SNS message on failure, and no secret anywhere."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from gitlab_key_rotation.lambda_src.revocation.handler import RevocationFailed, handler
from tests import emf
from tests.lambda_settings import task_root
from tests.revocation.iam_seed import key_statuses, seed_user

SUMMARY_FIELDS = {
    "dry_run", "action", "groups", "users_scanned", "keys_deleted", "keys_deactivated", "keys_already_gone",
    "keys_spared_young", "keys_inactive_marked", "keys_inactive_waiting", "skipped", "skipped_users", "revoked_keys", "error_count", "errors",
    "duration_seconds", "notification",
}


@pytest.fixture
def env(aws, monkeypatch, tmp_path):
    """Writes the Lambda's settings.json the way the construct does; returns a setter for overrides
    (settings by name; NOTIFICATION_TOPIC_ARN goes into the environment)."""
    document = {"groups": ["developers", "contractors"], "protected_users": ["ci-deployer"], "exempt_users": ["dave"]}

    def set_settings(NOTIFICATION_TOPIC_ARN: str | None = None, **values: object) -> None:  # noqa: N803
        document.update(values)
        for name, value in task_root(tmp_path / "task", document).items():
            monkeypatch.setenv(name, value)
        if NOTIFICATION_TOPIC_ARN:
            monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", NOTIFICATION_TOPIC_ARN)

    set_settings()
    return set_settings


@pytest.fixture
def account(aws):
    """Developers and contractors (bob is in both), a rotation user, two exempt users; returns
    every secret access key created, to prove none leaks."""
    created = []
    created += seed_user(aws, "alice", groups=["developers"])
    created += seed_user(aws, "bob", groups=["developers", "contractors"], keys=1, inactive=1)
    created += seed_user(aws, "ci-deployer", groups=["developers"])
    created += seed_user(aws, "dave", groups=["developers"])
    created += seed_user(aws, "erin", groups=["contractors"], tags={"key-revocation:exempt": "until 2030"})
    created += seed_user(aws, "frank", groups=["contractors"], keys=0)
    return [key["SecretAccessKey"] for key in created]


def summary_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gitlab_key_rotation.lambda_src.revocation.handler"]


def test_revokes_the_members_keys_and_logs_one_summary_line(aws, env, account, caplog):
    result = handler({"version": "0", "detail-type": "Scheduled Event", "detail": {}}, None)

    for user in ("alice", "bob"):
        assert key_statuses(aws, user) == {}
    for user in ("ci-deployer", "dave", "erin"):
        assert list(key_statuses(aws, user).values()) == ["Active"]
    [record] = summary_records(caplog)
    assert record.levelno == logging.INFO and record.getMessage() == "revocation summary"
    logged = {field: getattr(record, field) for field in SUMMARY_FIELDS}
    assert logged == result
    assert json.loads(json.dumps(logged)) == logged  # the JSON log format can carry every field
    assert result["groups"] == ["developers", "contractors"]
    assert result["users_scanned"] == 6
    assert result["keys_deleted"] == 3
    assert result["skipped"] == {"protected": 1, "exempt_list": 1, "exempt_group": 0, "exempt_tag": 1, "user_gone": 0}
    assert result["skipped_users"] == {"protected": ["ci-deployer"], "exempt_list": ["dave"], "exempt_tag": ["erin"]}
    assert sorted(k["user"] for k in result["revoked_keys"]) == ["alice", "bob", "bob"]
    assert result["error_count"] == 0 and result["notification"] == "not_needed"
    assert not any(secret in caplog.text or secret in json.dumps(result) for secret in account)


def test_a_dry_run_event_reports_and_changes_nothing(aws, env, account, caplog):
    before = {user: key_statuses(aws, user) for user in ("alice", "bob", "erin")}

    result = handler({"dry_run": True}, None)

    assert {user: key_statuses(aws, user) for user in before} == before
    assert result["dry_run"] is True and result["keys_deleted"] == 3


def test_a_dry_run_in_the_settings_cannot_be_turned_off_by_the_event(aws, env, account):
    env(dry_run=True)

    result = handler({"dry_run": False}, None)

    assert result["dry_run"] is True
    assert len(key_statuses(aws, "alice")) == 1


def test_deactivate_mode_survives_a_second_run_the_same_night(aws, env, account):
    env(action="deactivate")
    [alice_key] = key_statuses(aws, "alice")
    bob_keys = key_statuses(aws, "bob")

    first = handler({}, None)

    assert key_statuses(aws, "alice") == {alice_key: "Inactive"}
    assert set(key_statuses(aws, "bob").values()) == {"Inactive"} and set(key_statuses(aws, "bob")) == set(bob_keys)
    assert (first["keys_deactivated"], first["keys_inactive_marked"], first["keys_deleted"]) == (2, 1, 0)
    marks = {t["Key"]: t["Value"] for t in aws.list_user_tags(UserName="alice")["Tags"]}
    assert list(marks) == [f"key-revocation:deactivated:{alice_key}"]

    second = handler({"id": "same-event-delivered-again"}, None)  # or a manual re-run

    assert key_statuses(aws, "alice") == {alice_key: "Inactive"} and len(key_statuses(aws, "bob")) == 2
    assert (second["keys_deactivated"], second["keys_deleted"], second["keys_inactive_waiting"]) == (0, 0, 3)

    for user in ("alice", "bob"):  # a week passes: the marks are as old as they would then be
        for tag in aws.list_user_tags(UserName=user)["Tags"]:
            aws.tag_user(UserName=user, Tags=[{"Key": tag["Key"], "Value": "2020-01-01T00:00:00Z"}])
    next_week = handler({}, None)

    assert key_statuses(aws, "alice") == {} and key_statuses(aws, "bob") == {}
    assert next_week["keys_deleted"] == 3
    assert aws.list_user_tags(UserName="alice")["Tags"] == []


def test_an_unknown_group_fails_the_run_after_the_others_are_done_and_notifies(aws, env, account, caplog):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="key-alarms")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    env(groups=["ghosts", "developers"], NOTIFICATION_TOPIC_ARN=topic_arn)

    with pytest.raises(RevocationFailed, match="IAM group 'ghosts' does not exist") as raised:
        handler({}, None)

    assert key_statuses(aws, "alice") == {}
    [record] = summary_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.error_count == 1 and record.notification == "sent"
    [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "Developer key revocation failed: 1 error(s)"
    assert json.loads(envelope["Message"])["errors"] == [
        {
            "subject": "group ghosts",
            "error": "IAM group 'ghosts' does not exist; revocation.groups must name existing groups",
        }
    ]
    assert not any(secret in str(raised.value) or secret in message["Body"] for secret in account)


def test_a_failure_without_a_topic_still_raises(aws, env, account, caplog):
    env(groups=["ghosts"])

    with pytest.raises(RevocationFailed, match="1 error"):
        handler({}, None)

    [record] = summary_records(caplog)
    assert record.notification == "not_configured"


def test_a_replayed_scheduled_event_is_a_normal_run(aws, env, account):
    result = handler(
        {
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-27T23:55:00Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/weekly"],
            "detail": {},
            "replay-name": "after-the-outage",
        },
        None,
    )

    assert result["dry_run"] is False and result["keys_deleted"] == 3
    assert key_statuses(aws, "alice") == {}


# metrics: EMF documents on stdout ---------------------------------------------------------


def test_a_run_prints_its_metrics_as_one_emf_document(aws, env, account, capsys, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "revocation-fn")
    result = handler({}, None)
    [run] = emf.documents(capsys.readouterr().out)
    assert run["Function"] == "revocation-fn" and emf.dimension_sets(run) == [["Function"]]
    assert emf.values(run) == {
        "RunSucceeded": 1,
        "RunFailed": 0,
        "MembersScanned": result["users_scanned"],
        "KeysRevoked": 3,
        "Errors": 0,
    }


def test_a_dry_run_revokes_nothing_in_its_metrics(aws, env, account, capsys):
    result = handler({"dry_run": True}, None)
    [run] = emf.documents(capsys.readouterr().out)
    assert result["keys_deleted"] == 3 and emf.values(run)["KeysRevoked"] == 0


def test_a_run_that_cannot_start_counts_as_failed(aws, env, capsys):
    env(groups="developers")  # not a list
    with pytest.raises(Exception, match="settings.json.groups must be a list"):
        handler({}, None)
    [run] = emf.documents(capsys.readouterr().out)
    assert emf.values(run) == {"RunSucceeded": 0, "RunFailed": 1, "Errors": 1}
