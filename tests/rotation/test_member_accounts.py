"""Organization mode in the rotation's settings: a user's ``account`` and the member role pattern
that reaches it (the routing itself is proven end to end in tests/e2e/test_organization.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings, SettingsError
from tests.lambda_settings import state_secret_env, task_root

PATTERN = "arn:aws:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-rotation"


@pytest.fixture(autouse=True)
def _task_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # LAMBDA_TASK_ROOT below is this directory


def _env(account: object = "222222222222", pattern: str | None = PATTERN) -> dict[str, str]:
    user = {"iam_user": "u", "targets": [{"kind": "group", "id": "g"}]}
    if account is not None:
        user["account"] = account
    env = {
        **task_root(Path.cwd(), {"gitlab_url": "https://gitlab.example.com", "users": [user]}),
        **state_secret_env(["arn:aws:secretsmanager:eu-west-1:111111111111:secret:s-AbCdEf"]),
        "GITLAB_TOKEN_SECRET_ARN": "arn:t",
    }
    if pattern is not None:
        env["MEMBER_ROLE_ARN_PATTERN"] = pattern
    return env


def test_a_user_of_another_account_and_the_role_that_reaches_it_are_read() -> None:
    settings = RotationSettings.load(_env())
    assert settings.users[0].account == "222222222222"
    assert settings.member_role_arn_pattern == PATTERN
    assert RotationSettings.load(_env(account=None, pattern=None)).users[0].account is None


@pytest.mark.parametrize(
    ("account", "pattern", "message"),
    [
        ("2222", PATTERN, "settings.json.users[0].account must be a 12-digit AWS account id such as '123456789012', or null, got '2222'"),
        (222222222222, PATTERN, "must be a 12-digit AWS account id such as '123456789012', or null, got 222222222222"),
        ("222222222222", None, "MEMBER_ROLE_ARN_PATTERN must be the member role's ARN with {account}"),
        ("222222222222", "arn:aws:iam::222222222222:role/x", "MEMBER_ROLE_ARN_PATTERN must be"),
    ],
)
def test_a_bad_account_or_pattern_is_refused(account: object, pattern: str | None, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        RotationSettings.load(_env(account, pattern))
    assert message in str(error.value)
