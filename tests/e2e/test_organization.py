"""Organization mode on emulated AWS: one hub, member accounts in the same moto (credentials of a role
assumed in account B act on B), the synthesized member template deployed into them, both handlers run
from the hub under their real roles with IAM enforcement on (trust policies judged across accounts).

Accounts: B and C hold a machine user each and the developers; D holds developers only; E is listed
for revocation but never got the member roles; F got the member roles but is in no list of the hub.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from gitlab_key_rotation_dev.demo.deployment import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation_dev.demo.local_run import LocalRun
from gitlab_key_rotation_dev.demo.organization import MEMBER_ACCOUNTS, organization_context
from gitlab_key_rotation_dev.member_accounts import account_clients
from gitlab_key_rotation_dev.moto_iam_enforcement import iam_enforcement

B, C, D = MEMBER_ACCOUNTS
MISSING = "555555555555"  # listed for revocation, no member roles
OUTSIDE = "666666666666"  # member roles deployed, not listed by the hub
ROLE_PATH = "gitlab-key-rotation"


@pytest.fixture(scope="module")
def local():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    context = organization_context(revocation_accounts=(*MEMBER_ACCOUNTS, MISSING))
    with LocalRun(key_age_days=100, context=context, member_accounts=(*MEMBER_ACCOUNTS, OUTSIDE)) as run:
        yield run


@pytest.fixture(scope="module")
def before(local):
    return local.observe()


def _assumed(local, handler: str, account: str, suffix: str):
    """Clients of the member role ``suffix`` in ``account``, assumed with the hub function's credentials."""
    hub = local.emulators.client("sts", **local.credentials[handler].client_kwargs())
    credentials = hub.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ROLE_PATH}/KeyRotationMember-{suffix}", RoleSessionName="test"
    )["Credentials"]
    return local.emulators.client(
        "iam",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_rotation_rotates_each_user_in_its_own_account(local, before):
    invocation = local.invoke(ROTATION_HANDLER, {})

    assert invocation.ok, invocation.error
    after = local.observe()
    for user, group in (("ci-deployer", "platform"), ("ci-deployer-b", "team-b"), ("ci-deployer-c", "team-c")):
        new = {k.id for k in after.keys[user]} - {k.id for k in before.keys[user]}
        assert len(new) == 1, (user, after.keys[user])
        held = {v.holds for v in after.variables if f"example-org/{group} " in v.where and v.holds != "(secret set)"}
        assert held == new, (user, held)

def test_revocation_revokes_in_every_listed_account_and_reports_the_missing_role(local, before):
    machine_users = ("ci-deployer-b", "ci-deployer-c")
    protected = {user: local.observe().keys[user] for user in machine_users}  # rotated or not on this worker
    invocation = local.invoke(REVOCATION_HANDLER, {})

    assert not invocation.ok
    assert f"account {MISSING}" in invocation.error and "cannot assume" in invocation.error
    after = local.observe()
    for account in MEMBER_ACCOUNTS:
        for developer in ("alice", "bob", "carol"):
            assert before.keys[f"{account}/{developer}"] and after.keys[f"{account}/{developer}"] == ()
        assert after.keys[f"{account}/dave"] == before.keys[f"{account}/dave"]  # exempt by tag
    for machine_user in machine_users:
        assert after.keys[machine_user] == protected[machine_user]  # protected: every key stays as it was
    lines = {
        getattr(r, "account", None): r for r in invocation.records if r.getMessage() == "revocation account summary"
    }
    assert sorted(lines) == sorted((*MEMBER_ACCOUNTS, MISSING))
    assert all(lines[a].keys_deleted == 4 and lines[a].error_count == 0 for a in MEMBER_ACCOUNTS)
    assert lines[MISSING].error_count == 1
    (total,) = [r for r in invocation.records if r.getMessage() == "revocation summary"]
    assert total.keys_deleted == 12 and total.error_count == 1 and total.account_count == 4


def test_the_hub_role_is_denied_in_an_account_outside_its_list(local):
    with iam_enforcement(), pytest.raises(ClientError) as refused:
        _assumed(local, REVOCATION_HANDLER, OUTSIDE, "revocation")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with iam_enforcement(), pytest.raises(ClientError):
        _assumed(local, ROTATION_HANDLER, D, "rotation")  # D has no machine user: not in the rotation's list


def test_a_member_role_trusts_only_its_own_hub_function(local):
    with iam_enforcement(), pytest.raises(ClientError) as refused:
        _assumed(local, ROTATION_HANDLER, B, "revocation")
    assert "trust policy" in str(refused.value) or refused.value.response["Error"]["Code"] == "AccessDenied"


def test_member_roles_deny_users_outside_their_scope(local):
    with iam_enforcement():
        rotation = _assumed(local, ROTATION_HANDLER, B, "rotation")
        assert rotation.list_access_keys(UserName="ci-deployer-b")["AccessKeyMetadata"]
        with pytest.raises(ClientError) as refused:
            rotation.create_access_key(UserName="alice")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        revocation = _assumed(local, REVOCATION_HANDLER, B, "revocation")
        key_id = revocation.list_access_keys(UserName="ci-deployer-b")["AccessKeyMetadata"][0]["AccessKeyId"]
        with pytest.raises(ClientError) as denied:
            revocation.delete_access_key(UserName="ci-deployer-b", AccessKeyId=key_id)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_rotation_with_a_member_role_gone_fails_its_preflight_naming_the_account_and_changes_nothing(local):
    iam_c = account_clients(local.emulators.client, C)("iam")
    role = "KeyRotationMember-rotation"
    for policy in iam_c.list_role_policies(RoleName=role)["PolicyNames"]:
        iam_c.delete_role_policy(RoleName=role, PolicyName=policy)
    iam_c.delete_role(RoleName=role)
    before = local.observe()

    invocation = local.invoke(ROTATION_HANDLER, {"force": True})

    assert not invocation.ok
    assert f"IAM user ci-deployer-c: account {C}: cannot assume" in invocation.error
    assert local.observe().keys == before.keys
