"""The Lambda's code path over real HTTP to moto.server: IAM throttling retried by botocore's
retry loop, and the number of IAM calls counted where IAM would count them."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from gitlab_key_rotation.lambda_src.common.events import EventError
from gitlab_key_rotation.lambda_src.revocation.aws import Boto3Iam, iam_client
from gitlab_key_rotation.lambda_src.revocation.handler import handler
from gitlab_key_rotation.lambda_src.revocation.run import run_revocation
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings
from tests.lambda_settings import task_root
from tests.revocation.conftest import REGION
from tests.revocation.iam_seed import key_statuses, seed_user
from gitlab_key_rotation_dev.moto_iam_server import MotoIamServer, seed_group


@pytest.fixture(scope="module")
def server():
    with MotoIamServer() as running:
        yield running


@pytest.fixture
def iam(server, monkeypatch):
    """A clean moto.server account that boto3 reaches through AWS_ENDPOINT_URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_IAM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    requests.post(f"{server.url}/moto-api/reset", timeout=10).raise_for_status()
    server.faults.throttle.clear()
    server.faults.limit_rate(None)
    server.faults.reset_counts()
    return boto3.client("iam")


def test_throttling_is_retried_with_backoff_and_the_run_succeeds(server, iam):
    [key] = seed_user(iam, "xavier", groups=["developers"])
    server.faults.reset_counts()
    server.faults.throttle.update({"ListAccessKeys": 2, "DeleteAccessKey": 1})

    settings = RevocationSettings(groups=("developers",), exempt_tag_key=None)
    report = run_revocation(settings, Boto3Iam(iam_client(max_workers=2)), datetime.now(timezone.utc))

    assert report.failures == ()
    assert [(k.key_id, k.result) for k in report.users[0].keys] == [(key["AccessKeyId"], "deleted")]
    assert server.faults.counts == {"GetGroup": 1, "ListAccessKeys": 3, "DeleteAccessKey": 2}
    assert key_statuses(iam, "xavier") == {}


@pytest.mark.parametrize(
    ("exempt_tag_key", "tag_reads"),
    [("key-revocation:exempt", 5), ("", 0)],
    ids=["tag-check-on", "tag-check-off"],
)
def test_iam_calls_stay_at_the_floor(server, iam, monkeypatch, tmp_path, exempt_tag_key, tag_reads):
    for user in ("amy", "ben", "cat"):
        seed_user(iam, user, groups=["developers"])
    seed_user(iam, "dan", groups=["developers"], keys=2)
    seed_user(iam, "eve", groups=["developers"], keys=0)
    seed_user(iam, "ci-deployer", groups=["developers"])
    seed_user(iam, "fay", groups=["developers"], tags={"key-revocation:exempt": "on leave"})
    server.faults.reset_counts()
    document = {"groups": ["developers"], "protected_users": ["ci-deployer"], "exempt_tag_key": exempt_tag_key}
    for name, value in task_root(tmp_path, document).items():
        monkeypatch.setenv(name, value)

    result = handler({}, None)

    deleted = 5 if exempt_tag_key else 6  # without the tag check fay's key goes too
    assert result["keys_deleted"] == deleted
    assert server.faults.counts == {
        "GetGroup": 1,  # one page (moto returns every member in one page)
        "ListAccessKeys": 6,  # every member but the protected one
        **({"ListUserTags": tag_reads} if tag_reads else {}),  # only members with a key due
        "DeleteAccessKey": deleted,  # one per key
    }


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"dryrun": True}, "unknown fields ['dryrun']; allowed: dry_run (and EventBridge's envelope: version, id,"),
        ({"force": "yes"}, "unknown fields ['force']; allowed: dry_run"),
        ({"dry_run": True, "groups": ["x"]}, "unknown fields ['groups']; allowed: dry_run"),
        ({"dry_run": "true"}, "the event's dry_run must be true or false, got a str"),
        ({"dry_run": 1}, "the event's dry_run must be true or false, got a int"),
        ({"detail": {"dry_run": True}}, "the event's detail must be {}"),
        ({"resources": "arn:aws:events:eu-west-1:123456789012:rule/weekly"}, "resources must be a list of strings"),
        (["dry_run"], "the event must be a JSON object, got a list"),
        ("{}", "the event must be a JSON object, got a str"),
        ({"x" * 1_000_000: True}, "unknown fields ['xxxx"),
    ],
    ids=["typo", "force-is-rotations", "groups", "string-bool", "int-bool", "options-in-detail", "resources",
         "list", "string", "1MB-name"],
)
def test_an_event_not_fully_understood_is_refused_before_any_iam_call(server, iam, monkeypatch, event, message):
    keys = {user: seed_user(iam, user, groups=["developers"])[0]["AccessKeyId"] for user in ("amy", "ben")}
    server.faults.reset_counts()

    with pytest.raises(EventError) as refused:  # before the settings are even read
        handler(event, None)

    assert message in str(refused.value)
    assert len(str(refused.value)) < 1000  # a 1 MB field name is not echoed in full
    assert server.faults.counts == {}
    assert {user: key_statuses(iam, user) for user in keys} == {user: {key: "Active"} for user, key in keys.items()}


def test_over_the_rate_limit_the_server_answers_like_iam(server, iam):
    server.faults.limit_rate(1, burst=1)
    once = boto3.client("iam", config=Config(retries={"total_max_attempts": 1}))

    once.list_users()
    with pytest.raises(ClientError) as throttled:
        once.list_users()

    error = throttled.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"] == {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"}
    assert server.faults.throttled == {"ListUsers": 1}


def test_600_members_at_20_requests_per_second_finish_without_errors(server, iam, monkeypatch, tmp_path):
    seed_group(["developers"], 300, "dev")  # one key each, due
    seed_group(["developers", "on-leave"], 300, "away")  # exempt by group: no call of their own
    server.faults.reset_counts()
    server.faults.limit_rate(20)  # 20 calls per second, bursts of 20
    document = {"groups": ["developers"], "exempt_groups": ["on-leave"], "exempt_tag_key": ""}
    for name, value in task_root(tmp_path, document).items():
        monkeypatch.setenv(name, value)

    result = handler({}, None)

    answered = server.faults.counts - server.faults.throttled
    server.faults.limit_rate(None)
    assert result["error_count"] == 0 and result["users_scanned"] == 600
    assert result["keys_deleted"] == 300 and result["skipped"]["exempt_group"] == 300
    assert answered == {"GetGroup": 2, "ListAccessKeys": 300, "DeleteAccessKey": 300}  # the floor
    assert sum(server.faults.throttled.values()) > 0  # the limit was really hit
    assert key_statuses(iam, "dev-00299") == {} and len(key_statuses(iam, "away-00299")) == 1
