"""The boto3 side of the rotation: IAM keys, the state and token secrets, the STS check of a new
key, SNS. boto3 honours ``AWS_ENDPOINT_URL`` (the local run points it at moto.server), and so does
the STS client built with the new key's credentials.

Error texts of AWS never contain a request's parameters, so a ``ClientError`` message is safe to
pass on; nothing here puts a secret in one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from . import state as records
from .errors import (
    KeyLimitError,
    KeyNotFoundError,
    KeyNotUsableError,
    RotationError,
    TokenRotationInDoubtError,
    TokenSecretError,
    UserNotFoundError,
)
from .ports import AccessKey, KeyStatus, NewAccessKey
from .token_secret import TokenRotation, read_token, with_new_token, with_rotation, without_rotation

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
# CreateAccessKey has no idempotency token: a retry after a lost answer (timeout, 5xx) makes a
# second key, or meets LimitExceeded while the first key's secret is lost. One attempt only: the
# reconciler cleans up after an ambiguous failure, and the next scheduled run tries again.
CREATE_KEY_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)
# STS answers for the new key are our own retry loop's business (rotation.verification).
VERIFIER_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=10)

# What AWS answers when it does not (yet) know a key, or the secret does not match it.
_KEY_REFUSED = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AuthFailure",
    "AccessDenied",
}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


class Boto3IamKeys:
    """``rotation.ports.IamKeys`` over a boto3 IAM client."""

    def __init__(self, client, create_client=None):
        """``create_client``: the client for CreateAccessKey, made with ``CREATE_KEY_CONFIG``
        (default: ``client``)."""
        self._client = client
        self._create_client = create_client or client

    def list_keys(self, user: str) -> list[AccessKey]:
        try:
            pages = self._client.get_paginator("list_access_keys").paginate(UserName=user)
            return [
                AccessKey(meta["AccessKeyId"], meta["Status"], meta["CreateDate"])
                for page in pages
                for meta in page["AccessKeyMetadata"]
            ]
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                raise UserNotFoundError(
                    f"IAM user {user} does not exist (NoSuchEntity); create it or fix rotation.users"
                ) from None
            raise

    def create_key(self, user: str) -> NewAccessKey:
        try:
            key = self._create_client.create_access_key(UserName=user)["AccessKey"]
        except ClientError as exc:
            if _code(exc) == "LimitExceeded":
                raise KeyLimitError(
                    f"IAM user {user} already has two access keys (LimitExceeded): a key was added while this run "
                    "was working; the next run deletes it if nothing holds it"
                ) from None
            if _code(exc) == "NoSuchEntity":
                raise UserNotFoundError(f"IAM user {user} does not exist (NoSuchEntity)") from None
            raise
        return NewAccessKey(key["AccessKeyId"], key["SecretAccessKey"], key["CreateDate"])

    def set_status(self, user: str, key_id: str, status: KeyStatus) -> None:
        try:
            self._client.update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
        except ClientError as exc:
            if _code(exc) == "NoSuchEntity":
                raise KeyNotFoundError(
                    f"access key {key_id} of IAM user {user} does not exist (NoSuchEntity)"
                ) from None
            raise

    def delete_key(self, user: str, key_id: str) -> None:
        try:
            self._client.delete_access_key(UserName=user, AccessKeyId=key_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":  # already gone: done
                raise


class SecretsStateStore:
    """``rotation.ports.StateStore`` over one Secrets Manager secret (see ``rotation.state``)."""

    def __init__(self, client, secret_arn: str):
        self._client = client
        self._arn = secret_arn

    def read(self) -> records.StoredState:
        try:
            stages = self._client.describe_secret(SecretId=self._arn).get("VersionIdsToStages", {})
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise RotationError(
                    f"state secret {self._arn} does not exist; deploy the stack that creates it"
                ) from None
            raise
        by_stage = {stage: version for version, labels in stages.items() for stage in labels}
        where = f"state secret {self._arn}"
        current = records.load_current(self._text(by_stage.get("AWSCURRENT")), f"{where} (AWSCURRENT)")
        pending_version = by_stage.get("AWSPENDING")
        pending = (
            records.load_pending(self._text(pending_version), f"{where} (AWSPENDING)") if pending_version else None
        )
        lock_version = by_stage.get(records.LOCK_STAGE)
        lock = records.load_lock(self._text(lock_version), f"{where} ({records.LOCK_STAGE})") if lock_version else None
        return records.StoredState(current, pending, pending_version, lock)

    def _text(self, version_id: str | None) -> str | None:
        if version_id is None:
            return None
        return self._client.get_secret_value(SecretId=self._arn, VersionId=version_id).get("SecretString")

    def acquire_lock(self, lock: records.LockRecord) -> bool:
        try:
            self._put(records.dump(lock), [records.LOCK_STAGE], lock.version_id(self._arn))
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":
                return False
            raise
        return True

    def release_lock(self, lock: records.LockRecord) -> None:
        self._put(records.dump(lock), [records.LOCK_STAGE], lock.version_id(self._arn))

    def put_pending(self, record: records.PendingRecord) -> str:
        return self._put(records.dump(record), ["AWSPENDING"])

    def put_current(self, record: records.CurrentRecord) -> None:
        self._put(records.dump(record), ["AWSCURRENT"])

    def drop_pending(self, version_id: str) -> None:
        try:
            self._client.update_secret_version_stage(
                SecretId=self._arn, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
            )
        except ClientError as exc:
            # Secrets Manager refuses to remove a label the version does not carry: already
            # dropped (a retry whose first answer was lost) is no error, anything else is.
            if _code(exc) != "InvalidParameterException":
                raise
            stages = self._client.describe_secret(SecretId=self._arn).get("VersionIdsToStages", {})
            if "AWSPENDING" in stages.get(version_id, []):
                raise

    def _put(self, text: str, stages: list[str], token: str | None = None) -> str:
        arguments = {"SecretId": self._arn, "SecretString": text, "VersionStages": stages}
        if token:
            arguments["ClientRequestToken"] = token
        return self._client.put_secret_value(**arguments)["VersionId"]


class SecretsTokenStore:
    """``rotation.ports.TokenStore`` over the GitLab token secret (see ``rotation.token_secret``)."""

    def __init__(self, client, secret_arn: str):
        self._client = client
        self._arn = secret_arn

    def _current(self) -> tuple[str | None, str | None]:
        try:
            answer = self._client.get_secret_value(SecretId=self._arn)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise TokenSecretError(
                    f"GitLab token secret {self._arn} does not exist or has no value; "
                    'put {"GITLAB_TOKEN": "<an access token with scope api>"} in it'
                ) from None
            raise
        return answer.get("SecretString"), answer.get("VersionId")

    def read(self) -> str:
        return read_token(self._current()[0], self._arn)

    def begin_rotation(self, rotation: TokenRotation) -> None:
        """Record the rotation as in flight. The version's ``ClientRequestToken`` derives from the
        version read, so of two runs holding the same token only one records a rotation."""
        text, version = self._current()
        read_token(text, self._arn)  # still a usable token, and no rotation in flight
        request_token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self._arn}#token-rotation/{version}"))
        try:
            self._client.put_secret_value(
                SecretId=self._arn, SecretString=with_rotation(text or "{}", rotation), ClientRequestToken=request_token
            )
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":
                raise TokenRotationInDoubtError(
                    f"another run already started rotating the GitLab token in secret {self._arn}; this run "
                    "does not rotate it again"
                ) from None
            raise

    def abandon_rotation(self) -> None:
        text, _ = self._current()
        self._client.put_secret_value(SecretId=self._arn, SecretString=without_rotation(text or "{}"))

    def write(self, token: str) -> None:
        text, _ = self._current()
        self._client.put_secret_value(SecretId=self._arn, SecretString=with_new_token(text or "{}", token))


class Boto3StsVerifier:
    """``rotation.ports.StsVerifier``: ``GetCallerIdentity`` signed with the new key, on the same
    region and endpoint resolution as every other client (``AWS_REGION``, ``AWS_ENDPOINT_URL``),
    never with the Lambda's own session token."""

    def __init__(self, session: boto3.session.Session | None = None):
        self._session = session or boto3.session.Session()
        self._clients: dict[str, object] = {}

    def caller_arn(self, key: NewAccessKey) -> str:
        client = self._clients.get(key.id)
        if client is None:
            client = self._session.client(
                "sts",
                aws_access_key_id=key.id,
                aws_secret_access_key=key.secret,
                aws_session_token=None,
                config=VERIFIER_CONFIG,
            )
            self._clients[key.id] = client
        try:
            return client.get_caller_identity()["Arn"]
        except ClientError as exc:
            if _code(exc) in _KEY_REFUSED:
                raise KeyNotUsableError(f"STS refused key {key.id} ({_code(exc)})") from None
            raise


class SnsNotifier:
    def __init__(self, client, topic_arn: str | None):
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str) -> None:
        if self._topic_arn:
            self._client.publish(TopicArn=self._topic_arn, Subject=subject[:100], Message=message)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
