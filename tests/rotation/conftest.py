"""Fixtures of the rotation tests: moto in-process, the GitLab server over HTTPS, one clock."""

from __future__ import annotations

import moto.iam.models
import pytest
from moto import mock_aws

from gitlab_key_rotation_dev.gitlab_server import GitLabServer
from gitlab_key_rotation_dev.rotation_world import REGION, FakeClock, RotationWorld, build_world


@pytest.fixture
def aws_env(monkeypatch):
    """Fake credentials and a region for boto3; no endpoint override (moto intercepts in-process)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws(aws_env):
    with mock_aws():
        yield


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(moto.iam.models, "utcnow", clock.naive_utc)  # AWS time follows the test's
    return clock


@pytest.fixture
def gitlab():
    with GitLabServer(tls=True) as server:
        yield server


@pytest.fixture
def world(aws, gitlab, clock) -> RotationWorld:
    gitlab.today = clock.now().date()
    return build_world(gitlab, clock)
