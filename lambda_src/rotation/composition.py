"""The composition root of the rotation Lambda: the real adapters, built from the settings."""

from __future__ import annotations

import time
from collections.abc import Callable

import boto3

from ..common.assume_role import MemberSessions
from .accounts import AccountRoutedIamKeys
from .aws import (
    CLIENT_CONFIG,
    CREATE_KEY_CONFIG,
    Boto3IamKeys,
    Boto3StsVerifier,
    SecretsStateStore,
    SecretsTokenStore,
    SnsNotifier,
    SystemClock,
)
from .gitlab_client import DEFAULT_TIMEOUT, GitLabClient
from .request import RunRequest
from .ports import unlimited_time
from .run import RunPorts, RunReport, run_rotation
from .settings import RotationSettings

# Kept from the Lambda's remaining time for what follows the last step: the settling of writes
# GitLab did not answer (up to the client's late_write_horizon, twice its read timeout), the lock's
# release, the metrics and the summary.
STOP_RESERVE_SECONDS = 2 * DEFAULT_TIMEOUT[1] + 10


def real_ports(
    settings: RotationSettings, run_id: str = "", remaining: Callable[[], float] | None = None
) -> RunPorts:
    """``remaining``: seconds the Lambda has left (None: no limit)."""
    session = boto3.session.Session()
    secrets = session.client("secretsmanager", config=CLIENT_CONFIG)
    iam = _iam_keys(session)
    if settings.member_role_arn_pattern:
        members = MemberSessions(settings.member_role_arn_pattern, "rotation", run_id, base=session)
        iam = AccountRoutedIamKeys(iam, settings.users, lambda account: _iam_keys(members.session(account)))
    return RunPorts(
        iam=iam,
        state_store=lambda arn: SecretsStateStore(secrets, arn),
        token_store=SecretsTokenStore(secrets, settings.gitlab_token_secret_arn),
        connect_gitlab=lambda token: GitLabClient(
            settings.gitlab_url,
            token,
            ca_bundle=settings.gitlab_ca_bundle,
            max_requests_per_minute=settings.gitlab_max_requests_per_minute,
        ),
        verifier=Boto3StsVerifier(session),
        clock=SystemClock(),
        sleep=time.sleep,
        notifier=SnsNotifier(session.client("sns", config=CLIENT_CONFIG), settings.notification_topic_arn),
        time_left=unlimited_time if remaining is None else lambda: remaining() - STOP_RESERVE_SECONDS,
    )


def _iam_keys(session: boto3.session.Session) -> Boto3IamKeys:
    return Boto3IamKeys(
        session.client("iam", config=CLIENT_CONFIG), create_client=session.client("iam", config=CREATE_KEY_CONFIG)
    )


def rotate(settings: RotationSettings, request: RunRequest, remaining: Callable[[], float] | None = None) -> RunReport:
    return run_rotation(settings, request, real_ports(settings, request.run_id, remaining))
