"""The in-memory fakes (``fakes.py``) hold to the contracts of the real adapters: each test runs
against the fake and against the adapter on moto (IAM, the state secret, the token secret) or the
client on the project's GitLab server (GitLab)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.aws import Boto3IamKeys, SecretsStateStore, SecretsTokenStore
from gitlab_key_rotation.lambda_src.rotation.errors import (
    KeyLimitError,
    KeyNotFoundError,
    TokenRotationInDoubtError,
    UserNotFoundError,
)
from gitlab_key_rotation.lambda_src.rotation.gitlab_client import GitLabClient
from gitlab_key_rotation.lambda_src.rotation.ports import GitLabNotFoundError
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation.lambda_src.rotation.state import CurrentRecord, LockRecord, PendingRecord, TargetValues
from gitlab_key_rotation.lambda_src.rotation.token_secret import TokenRotation
from gitlab_key_rotation_dev.gitlab_server import OWNER, GitLabServer
from gitlab_key_rotation_dev.rotation_world import USER, aws_client

from .fakes import FakeGitLab, FakeIam, FakeStateStore, FakeTokenStore

A = GitLabTarget("group", "platform")
B = GitLabTarget("project", "platform/deployer", environment_scope="production")
TOKEN = "glpat-0123456789abcdefghij"
NEW_TOKEN = "glpat-jihgfedcba9876543210"


@pytest.fixture(params=["fake", "moto"])
def iam(request, clock):
    if request.param == "fake":
        return FakeIam(clock, (USER,))
    request.getfixturevalue("aws")
    aws_client("iam").create_user(UserName=USER)
    return Boto3IamKeys(aws_client("iam"))


@pytest.fixture(params=["fake", "moto"])
def store(request):
    if request.param == "fake":
        return FakeStateStore("arn:aws:secretsmanager:eu-west-1:123456789012:secret:state-AbCdEf")
    request.getfixturevalue("aws")
    arn = aws_client("secretsmanager").create_secret(Name="state", SecretString="{}")["ARN"]
    return SecretsStateStore(aws_client("secretsmanager"), arn)


def test_iam_allows_two_keys_active_or_inactive(iam):
    first = iam.create_key(USER)
    iam.set_status(USER, first.id, "Inactive")
    second = iam.create_key(USER)
    with pytest.raises(KeyLimitError):
        iam.create_key(USER)
    assert {k.id: k.status for k in iam.list_keys(USER)} == {first.id: "Inactive", second.id: "Active"}


def test_iam_errors_for_an_unknown_user_or_key(iam):
    with pytest.raises(UserNotFoundError):
        iam.list_keys("nobody")
    with pytest.raises(UserNotFoundError):
        iam.create_key("nobody")
    key = iam.create_key(USER)
    iam.delete_key(USER, key.id)
    iam.delete_key(USER, key.id)  # gone already: no error
    with pytest.raises(KeyNotFoundError):
        iam.set_status(USER, key.id, "Inactive")
    assert iam.list_keys(USER) == []


def test_iam_create_date_is_the_clocks(iam, clock):
    key = iam.create_key(USER)
    [listed] = iam.list_keys(USER)
    assert abs(listed.created - clock.now()) < timedelta(seconds=1) and listed.id == key.id


def test_the_state_secret_starts_empty_and_keeps_current_and_pending_apart(store, clock):
    empty = store.read()
    assert (empty.current, empty.pending, empty.lock) == (CurrentRecord(), None, None)
    before = {"group:g:*:A:S": TargetValues("AKIAOLD", "old-secret")}
    pending = PendingRecord("run-1", "e1", clock.now(), before, "AKIANEW", "new-secret")
    version = store.put_pending(pending)
    current = CurrentRecord("AKIAOLD", "old-secret", clock.now(), "e0")
    store.put_current(current)
    state = store.read()
    assert (state.current, state.pending, state.pending_version) == (current, pending, version)
    newer = store.put_pending(PendingRecord("run-2", "e2", clock.now(), {}))
    store.drop_pending(version)  # not AWSPENDING any more: nothing to drop
    assert store.read().pending_version == newer
    store.drop_pending(newer)
    store.drop_pending(newer)
    assert store.read().pending is None and store.read().current == current


def test_of_two_runs_writing_one_lock_generation_only_the_first_gets_it(store, clock):
    assert store.acquire_lock(LockRecord(0, "run-a", clock.now()))
    assert not store.acquire_lock(LockRecord(0, "run-b", clock.now()))
    assert store.read().lock == LockRecord(0, "run-a", clock.now())
    store.release_lock(LockRecord(0, "run-a", clock.now(), released=True))
    assert store.read().lock.released
    assert store.acquire_lock(LockRecord(1, "run-b", clock.now()))
    assert store.read().lock == LockRecord(1, "run-b", clock.now())


@pytest.fixture(params=["fake", "server"])
def gitlab(request):
    """A GitLab port holding targets A and B, with a token of scope api."""
    if request.param == "fake":
        yield FakeGitLab((A, B), today=date(2031, 3, 14))
        return
    with GitLabServer() as server:
        server.add_user("bot")
        server.add_group("platform")
        server.add_project("platform/deployer")
        server.add_member(A, "bot", OWNER)
        client = GitLabClient(server.url, server.add_token("bot"), retries=0, sleep=lambda s: None)
        yield client
        client.close()


def test_gitlab_variables_live_per_target_and_scope(gitlab):
    port = gitlab
    assert port.read_variables(B) == {}
    port.write_variable(B, "AWS_ACCESS_KEY_ID", "AKIAFAKE000000000001", exists=False)
    port.write_variable(B, "AWS_ACCESS_KEY_ID", "AKIAFAKE000000000002", exists=True)
    assert port.read_variables(B)["AWS_ACCESS_KEY_ID"].value == "AKIAFAKE000000000002"
    other_scope = GitLabTarget("project", "platform/deployer", environment_scope="staging")
    assert port.read_variables(other_scope) == {}
    assert port.read_variables(A) == {}
    port.delete_variable(B, "AWS_ACCESS_KEY_ID")
    port.delete_variable(B, "AWS_ACCESS_KEY_ID")  # gone already: no error
    assert port.read_variables(B) == {}
    assert port.late_write_wait(B) is None  # every write was answered


def test_gitlab_refuses_an_unknown_target(gitlab):
    unknown = GitLabTarget("project", "platform/gone")
    with pytest.raises(GitLabNotFoundError):
        gitlab.read_variables(unknown)


@pytest.fixture(params=["fake", "moto"])
def tokens(request):
    if request.param == "fake":
        return FakeTokenStore(TOKEN)
    request.getfixturevalue("aws")
    secrets = aws_client("secretsmanager")
    arn = secrets.create_secret(Name="gitlab-token", SecretString=json.dumps({"GITLAB_TOKEN": TOKEN}))["ARN"]
    return SecretsTokenStore(secrets, arn)


def test_the_token_secret_refuses_the_token_while_a_rotation_is_recorded(tokens):
    assert tokens.read() == TOKEN
    rotation = TokenRotation(7, "run-1", "2031-03-14T09:00:00+00:00", "2032-03-12")
    tokens.begin_rotation(rotation)
    with pytest.raises(TokenRotationInDoubtError):
        tokens.read()
    with pytest.raises(TokenRotationInDoubtError):
        tokens.begin_rotation(rotation)
    tokens.abandon_rotation()
    assert tokens.read() == TOKEN
    tokens.begin_rotation(rotation)
    tokens.write(NEW_TOKEN)
    assert tokens.read() == NEW_TOKEN
