"""The boto3 adapters where moto's own behaviour matters: the STS check of a new key (refusals,
endpoint resolution) and the state secret's lock."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.server import ThreadedMotoServer

from gitlab_key_rotation.lambda_src.rotation.aws import Boto3StsVerifier, SecretsStateStore
from gitlab_key_rotation.lambda_src.rotation.errors import KeyNotUsableError
from gitlab_key_rotation.lambda_src.rotation.ports import NewAccessKey
from gitlab_key_rotation.lambda_src.rotation.state import LockRecord
from gitlab_key_rotation_dev.rotation_world import REGION, USER

NOW = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)


def new_key(iam) -> NewAccessKey:
    iam.create_user(UserName=USER)
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    return NewAccessKey(key["AccessKeyId"], key["SecretAccessKey"], NOW)


@mock_aws
@set_initial_no_auth_action_count(2)  # creating the user and its key; then moto checks credentials
def test_with_iam_authentication_on_a_key_aws_does_not_know_is_refused_and_a_known_one_names_the_user(aws_env):
    key = new_key(boto3.client("iam", region_name=REGION))
    verifier = Boto3StsVerifier(boto3.session.Session(region_name=REGION))
    assert verifier.caller_arn(key) == f"arn:aws:iam::123456789012:user/{USER}"
    unknown = NewAccessKey("AKIAIOSFODNN7EXAMPLE", key.secret, NOW)
    with pytest.raises(
        KeyNotUsableError, match="STS refused key AKIAIOSFODNN7EXAMPLE .InvalidClientTokenId."
    ) as refused:
        verifier.caller_arn(unknown)
    assert key.secret not in str(refused.value)


def test_the_new_keys_client_goes_to_the_same_endpoint_as_every_other_client(aws_env, monkeypatch):
    """With ``AWS_ENDPOINT_URL`` set (the local run's moto.server), the client built with the new
    key's credentials must reach that endpoint too: real AWS is not reachable from here, so an
    answer naming the user proves it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        key = new_key(boto3.client("iam", region_name=REGION))
        assert Boto3StsVerifier(boto3.session.Session(region_name=REGION)).caller_arn(key).endswith(f":user/{USER}")
    finally:
        server.stop()


@mock_aws
def test_of_two_runs_taking_the_same_lock_generation_exactly_one_wins(aws_env):
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="state", SecretString="{}")["ARN"]
    store = SecretsStateStore(boto3.client("secretsmanager", region_name=REGION), arn)
    assert store.acquire_lock(LockRecord(0, "run-a", NOW)) is True
    assert store.acquire_lock(LockRecord(0, "run-b", NOW)) is False
    assert store.read().lock == LockRecord(0, "run-a", NOW)
    store.release_lock(LockRecord(0, "run-a", NOW, released=True))
    assert store.read().lock.released and store.acquire_lock(LockRecord(1, "run-b", NOW)) is True


@mock_aws
def test_create_access_key_is_sent_once_even_when_its_answer_times_out(aws_env):
    """A retried CreateAccessKey (no idempotency token) would make a second key or hit
    LimitExceeded while the first key's secret is lost: the real wiring sends it once."""
    from botocore.exceptions import ReadTimeoutError

    from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings
    from gitlab_key_rotation.lambda_src.rotation.composition import real_ports

    settings = RotationSettings(gitlab_url="https://gitlab.example", gitlab_token_secret_arn="arn", users=())
    iam = real_ports(settings).iam
    boto3.client("iam", region_name=REGION).create_user(UserName=USER)
    sent = []

    def answer_lost(request, **_):
        sent.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    iam._create_client.meta.events.register("before-send.iam.CreateAccessKey", answer_lost)
    with pytest.raises(ReadTimeoutError):
        iam.create_key(USER)
    assert len(sent) == 1
