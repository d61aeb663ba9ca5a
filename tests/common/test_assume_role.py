"""The member-role adapter shared by both Lambdas, against moto with IAM enforcement on: sessions
named after the run, short, acting in the member account; an account out of reach is an error
naming it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from gitlab_key_rotation.lambda_src.common.assume_role import (
    SESSION_SECONDS,
    AccountAccessError,
    MemberSessions,
    role_arn,
    session_name,
)
from gitlab_key_rotation_dev.member_accounts import account_clients
from gitlab_key_rotation_dev.moto_iam_enforcement import iam_enforcement, role_credentials

MEMBER = "222222222222"
PATTERN = "arn:aws:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-rotation"
OTHER_ROLE = "arn:aws:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-revocation"
MISSING = "444444444444"


@pytest.fixture
def hub(monkeypatch):
    """A hub function role that may assume the member roles of MEMBER and MISSING; in MEMBER the
rotation role trusts it, the revocation role trusts another role; MISSING has no role."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        seed = lambda service, **keys: boto3.client(service, **keys)  # noqa: E731
        credentials = role_credentials(
            boto3.client("iam"),
            boto3.client("sts"),
            role_name="hub-rotation",
            documents=[{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [
                    role_arn(PATTERN, MEMBER), role_arn(OTHER_ROLE, MEMBER), role_arn(PATTERN, MISSING)
                ]}
            ]}],
        )  # fmt: skip
        member_iam = account_clients(seed, MEMBER)("iam")
        for job, trusted in (("rotation", credentials.role_arn), ("revocation", "arn:aws:iam::123456789012:role/hub-revocation")):
            member_iam.create_role(
                RoleName=f"KeyRotationMember-{job}",
                Path="/gitlab-key-rotation/",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": trusted}},
                }]}),
            )  # fmt: skip
        member_iam.put_role_policy(
            RoleName="KeyRotationMember-rotation",
            PolicyName="keys",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "iam:ListAccessKeys", "Resource": f"arn:aws:iam::{MEMBER}:user/ci"}
            ]}),
        )  # fmt: skip
        member_iam.create_user(UserName="ci")
        member_iam.create_access_key(UserName="ci")
        with iam_enforcement():
            yield boto3.session.Session(**{k: v for k, v in credentials.client_kwargs().items()})


def test_session_names_carry_the_run_and_fit_sts_rules() -> None:
    assert session_name("rotation", "8f14e45f-ceea-467a-9af8-0123456789ab") == "rotation-8f14e45f-ceea-467a-9af8-0123456789ab"
    assert session_name("revocation", "run id/with:odd*chars") == "revocation-run-id-with-odd-chars"
    assert len(session_name("revocation", "x" * 100)) == 64


def test_a_member_session_acts_in_the_member_account_as_its_role_for_a_short_named_session(hub) -> None:
    sessions = MemberSessions(PATTERN, "rotation", "run-1", base=hub)
    member = sessions.session(MEMBER)
    identity = member.client("sts").get_caller_identity()
    assert identity["Account"] == MEMBER
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/KeyRotationMember-rotation/rotation-run-1"
    assert [k["UserName"] for k in member.client("iam").list_access_keys(UserName="ci")["AccessKeyMetadata"]] == ["ci"]
    expiry = member.get_credentials()._expiry_time
    assert (expiry - datetime.now(timezone.utc)).total_seconds() <= SESSION_SECONDS


@pytest.mark.parametrize(
    ("pattern", "account", "why"),
    [
        (PATTERN, "333333333333", "not authorized to perform: sts:AssumeRole on resource"),  # the hub's policy
        (PATTERN, MISSING, "(no such role)"),  # allowed, but the role was never deployed there
        (OTHER_ROLE, MEMBER, "(its trust policy)"),  # the role trusts another hub role
    ],
)
def test_an_account_out_of_reach_is_an_error_naming_account_and_role(hub, pattern: str, account: str, why: str) -> None:
    sessions = MemberSessions(pattern, "rotation", "run-1", base=hub)
    with pytest.raises(AccountAccessError) as refused:
        sessions.session(account)
    assert str(refused.value).startswith(f"account {account}: cannot assume {role_arn(pattern, account)} (AccessDenied: ")
    assert why in str(refused.value)


def test_credentials_near_their_end_are_refreshed_before_a_call(hub) -> None:
    from moto.sts.models import sts_backends

    assumed = sts_backends[MEMBER]["aws"].assumed_roles
    # A refresh margin longer than the session: "near its end" from the start, so every call renews it.
    member = MemberSessions(PATTERN, "rotation", "run-2", base=hub, refresh_before_seconds=SESSION_SECONDS + 1).session(MEMBER)
    first = len(assumed)
    iam = member.client("iam")
    iam.list_access_keys(UserName="ci")
    iam.list_access_keys(UserName="ci")
    renewals = assumed[first:]
    assert len(renewals) >= 2
    assert {role.session_name for role in renewals} == {"rotation-run-2"}
