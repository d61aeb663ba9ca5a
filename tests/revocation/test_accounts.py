"""Revocation across accounts: each account with its own IAM and its own summary, the run's total,
an account out of reach reported by name while the others go on, the organization's ACTIVE accounts
listed (every page, nested OUs, exclusions), and the settings that say so."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from gitlab_key_rotation.lambda_src.common.assume_role import AccountAccessError
from gitlab_key_rotation.lambda_src.revocation.accounts import account_summaries, revoke_in_accounts, total_summary
from gitlab_key_rotation.lambda_src.revocation.organization import Boto3Organization
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings, SettingsError
from tests.lambda_settings import task_root
from tests.revocation.fake_iam import NOW, FakeIam

B, C, D = "222222222222", "333333333333", "444444444444"
PATTERN = "arn:aws:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-revocation"


def world() -> dict[str, FakeIam]:
    accounts = {}
    for account, developers in ((B, ("alice", "bob")), (C, ("carol",))):
        iam = FakeIam()
        iam.add_group("developers", *developers, "ci-deployer")
        for developer in developers:
            iam.add_key(developer)
        iam.add_key("ci-deployer")
        accounts[account] = iam
    return accounts


def iam_for(accounts: dict[str, FakeIam]):
    def build(account: str) -> FakeIam:
        if account not in accounts:
            raise AccountAccessError(f"account {account}: cannot assume {PATTERN.format(account=account)} (AccessDenied)")
        return accounts[account]

    return build


def settings(**overrides) -> RevocationSettings:
    return RevocationSettings(
        groups=("developers",), protected_users=frozenset({"ci-deployer"}), member_role_arn_pattern=PATTERN, **overrides
    )


def test_each_account_gets_its_own_run_and_an_unreachable_one_is_an_error_naming_it() -> None:
    accounts = world()
    run = revoke_in_accounts(settings(accounts=(B, C, D)), iam_for(accounts), NOW)

    assert accounts[B].keys["alice"] == {} and accounts[B].keys["bob"] == {} and accounts[C].keys["carol"] == {}
    assert len(accounts[B].keys["ci-deployer"]) == 1  # protected in every account
    summaries = account_summaries(run)
    assert [(s["account"], s.get("keys_deleted"), s["error_count"]) for s in summaries] == [(B, 2, 0), (C, 1, 0), (D, None, 1)]
    assert summaries[2]["errors"] == [
        {"subject": f"account {D}", "error": f"account {D}: cannot assume {PATTERN.format(account=D)} (AccessDenied)"}
    ]
    total = total_summary(settings(accounts=(B, C, D)), summaries, run.listing_failure, 1.0)
    assert (total["users_scanned"], total["keys_deleted"], total["error_count"], total["account_count"]) == (5, 3, 1, 3)
    assert total["skipped"] == {"protected": 2, "exempt_list": 0, "exempt_group": 0, "exempt_tag": 0, "user_gone": 0}
    assert total["skipped_users"] == {"protected": [f"{B}/ci-deployer", f"{C}/ci-deployer"]}
    assert {(k["account"], k["user"]) for k in total["revoked_keys"]} == {(B, "alice"), (B, "bob"), (C, "carol")}
    assert total["errors"][0]["subject"] == f"account {D}"


def test_an_error_inside_an_account_is_named_with_its_account() -> None:
    accounts = world()
    accounts[C].errors[("access_keys", "carol")] = RuntimeError("boom")
    run = revoke_in_accounts(settings(accounts=(B, C)), iam_for(accounts), NOW)
    total = total_summary(settings(accounts=(B, C)), account_summaries(run), None, 1.0)
    assert total["errors"] == [{"subject": f"account {C}: user carol", "error": "RuntimeError: boom"}]
    assert total["keys_deleted"] == 2  # B was done


def test_at_most_account_workers_accounts_run_at_once() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    class CountingIam(FakeIam):
        """One user with one key: the account's run ends with its one deletion."""

        def delete_access_key(self, user: str, key_id: str) -> None:
            super().delete_access_key(user, key_id)
            with lock:
                running[0] -= 1

    accounts = {f"{n:012d}": CountingIam(delay=0.02) for n in range(1, 7)}
    for iam in accounts.values():
        iam.add_group("developers", "alice")
        iam.add_key("alice")

    def counting(account: str) -> FakeIam:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        return accounts[account]

    revoke_in_accounts(settings(accounts=tuple(accounts), account_workers=2), counting, NOW)
    assert 1 <= peak[0] <= 2
    assert all(iam.keys["alice"] == {} for iam in accounts.values())


def test_organization_accounts_are_the_active_ones_of_the_ous_and_their_nested_ous(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        root = client.list_roots()["Roots"][0]["Id"]
        workloads = client.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        nested = client.create_organizational_unit(ParentId=workloads, Name="team")["OrganizationalUnit"]["Id"]

        def account(name: str, parent: str | None) -> str:
            created = client.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
            if parent:
                client.move_account(AccountId=created["AccountId"], SourceParentId=root, DestinationParentId=parent)
            return created["AccountId"]

        in_ou, in_nested, outside, closed = account("a", workloads), account("b", nested), account("c", None), account("d", nested)
        client.close_account(AccountId=closed)
        organization = Boto3Organization(client)

        assert organization.active_accounts([workloads]) == sorted([in_ou, in_nested])
        everything = organization.active_accounts([])
        assert {in_ou, in_nested, outside} <= set(everything) and closed not in everything
        listed = revoke_in_accounts(
            settings(accounts="organization", organizational_unit_ids=(workloads,), exclude_accounts=(in_ou,)),
            lambda a: FakeIam(),
            NOW,
            organization,
        )
        assert [run.account for run in listed.accounts] == [in_nested]


def test_an_organization_that_cannot_be_listed_is_one_error_and_nothing_runs() -> None:
    class Refusing:
        def active_accounts(self, parent_ids):
            raise RuntimeError("AccessDeniedException: not the management account")

    run = revoke_in_accounts(settings(accounts="organization"), lambda a: FakeIam(), NOW, Refusing())
    assert run.accounts == () and "cannot list the organization's accounts" in run.listing_failure.error
    total = total_summary(settings(accounts="organization"), account_summaries(run), run.listing_failure, 0.1)
    assert total["error_count"] == 1 and total["errors"][0]["subject"] == "organization"


ENV = {"MEMBER_ROLE_ARN_PATTERN": PATTERN}


def load(tmp_path, document: dict, env: dict = ENV) -> RevocationSettings:
    return RevocationSettings.load({**task_root(tmp_path, {"groups": ["developers"], **document}), **env})


def test_settings_read_the_accounts(tmp_path) -> None:
    listed = load(tmp_path, {"accounts": [B, C], "account_workers": 3})
    assert listed.accounts == (B, C) and listed.account_workers == 3 and listed.member_role_arn_pattern == PATTERN
    whole = load(tmp_path, {"accounts": "organization", "organizational_unit_ids": ["ou-ab12-34cd56ef"], "exclude_accounts": [D]})
    assert whole.accounts == "organization" and whole.exclude_accounts == (D,)
    assert load(tmp_path, {}, {}).accounts is None


@pytest.mark.parametrize(
    ("document", "env", "message"),
    [
        ({"accounts": ["12345"]}, ENV, "(item [0] '12345' is not a 12-digit AWS account id"),
        ({"accounts": [B, B]}, ENV, f"(item [1] '{B}' repeats item [0])"),
        ({"accounts": []}, ENV, "settings.json.accounts must be 'organization' or a non-empty list"),
        ({"accounts": [B], "exclude_accounts": [C]}, ENV, "settings.json.exclude_accounts needs settings.json.accounts = 'organization'"),
        ({"accounts": "organization", "organizational_unit_ids": ["ou-1"]}, ENV, "(item [0] 'ou-1' is not an organizational unit id"),
        ({"accounts": [B]}, {"MEMBER_ROLE_ARN_PATTERN": "arn:aws:iam::1:role/x"}, "MEMBER_ROLE_ARN_PATTERN must be"),
        ({"accounts": [B]}, {}, "MEMBER_ROLE_ARN_PATTERN must be"),
        ({"accounts": [B], "account_workers": 17}, ENV, "settings.json.account_workers must be a whole number from 1 to 16, got 17"),
        ({"exclude_accounts": [C]}, ENV, "settings.json.exclude_accounts needs settings.json.accounts = 'organization'"),
    ],
)
def test_bad_account_settings_are_refused(tmp_path, document: dict, env: dict, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load(tmp_path, document, env)
    assert message in str(error.value)


def test_the_composition_revokes_in_the_organizations_accounts_through_their_roles(monkeypatch) -> None:
    from gitlab_key_rotation.lambda_src.revocation.composition import revoke
    from gitlab_key_rotation_dev.member_accounts import account_clients

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        organizations = boto3.client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        member = organizations.create_account(Email="m@example.com", AccountName="m")["CreateAccountStatus"]["AccountId"]
        iam = account_clients(lambda service, **keys: boto3.client(service, **keys), member)("iam")
        iam.create_group(GroupName="developers")
        iam.create_user(UserName="alice")
        iam.add_user_to_group(GroupName="developers", UserName="alice")
        iam.create_access_key(UserName="alice")
        master = organizations.describe_organization()["Organization"]["MasterAccountId"]

        result = revoke(settings(accounts="organization", exclude_accounts=(master,)), run_id="run-7")

        assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"] == []
        assert (result["account_count"], result["keys_deleted"], result["error_count"]) == (1, 1, 0)
        assert result["accounts"] == [
            {"account": member, "users_scanned": 1, "keys_deleted": 1, "keys_deactivated": 0, "keys_already_gone": 0,
             "keys_spared_young": 0, "keys_inactive_marked": 0, "keys_inactive_waiting": 0, "error_count": 0,
             "duration_seconds": result["accounts"][0]["duration_seconds"]}
        ]  # fmt: skip
