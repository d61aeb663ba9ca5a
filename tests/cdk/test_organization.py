"""Organization mode at synth: the settings' errors, the hub's StackSet and cross-account grants, and
the member template (asset-free, inline-sized, cdk-nag and cfn-lint clean)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from gitlab_key_rotation.config import CONTEXT_KEY, AppConfig, ConfigError, load_config
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack, member_stack_props
from gitlab_key_rotation.organization import TEMPLATE_BODY_LIMIT_BYTES, MemberRolesStack
from tests.cdk.lint import lint
from tests.cdk.synth import REPO, Synthesis, cdk_json_context, code_dir, resources, synthesize_app

MEMBER_USER = {
    "iam_user": "ci-member",
    "iam_path": "/gitlab-key-rotation/",
    "account": "222222222222",
    "targets": [{"kind": "group", "id": "example-org/members"}],
}


def organization_config(edit=None) -> AppConfig:
    context = copy.deepcopy(cdk_json_context())
    root = context[CONTEXT_KEY]
    root["organization"] = {"deploy_to_ou_ids": ["ou-ab12-34cd56ef"], "call_as": "DELEGATED_ADMIN"}
    root["rotation"]["users"].append(copy.deepcopy(MEMBER_USER))
    root["revocation"]["accounts"] = ["222222222222", "333333333333"]
    if edit:
        edit(root)
    return load_config(context, REPO)


@pytest.fixture(scope="module")
def org_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    config = organization_config()
    return synthesize_app(
        lambda app: [
            KeyRotationStack(app, "Hub", config=config),
            MemberRolesStack(app, "Member", **member_stack_props(config)),
        ],
        tmp_path_factory.mktemp("org-synth"),
        nag=True,
    )


def _policy_statements(template: dict, role_prefix: str) -> list[dict]:
    return [
        statement
        for logical_id, policy in resources(template, "AWS::IAM::Policy").items()
        if logical_id.startswith(role_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _arn_text(value: object) -> str:
    """A Fn::Join'd ARN as text, pseudo parameters and Refs as ${Name}."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(part if isinstance(part, str) else "${%s}" % part["Ref"] for part in value["Fn::Join"][1])
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["rotation"]["users"][1].update(account="22222222222"), "users[1].account must be a 12-digit AWS account id such as '123456789012', or null, got '22222222222'"),
        (lambda r: r["rotation"]["users"][1].update(account=222222222222), "users[1].account must be a 12-digit AWS account id such as '123456789012', or null, got 222222222222"),
        (lambda r: r["revocation"].update(accounts=["222222222222", "222222222222"]), "revocation.accounts must be 'organization' or a non-empty list of distinct 12-digit account ids (as strings), or null, got ['222222222222', '222222222222'] (item [1] '222222222222' repeats item [0])"),
        (lambda r: r["revocation"].update(accounts=["1234"]), "(item [0] '1234' is not a 12-digit AWS account id"),
        (lambda r: r["revocation"].update(accounts="all"), "revocation.accounts must be 'organization' or a non-empty list of distinct 12-digit account ids (as strings), or null, got 'all'"),
        (lambda r: r["revocation"].update(accounts=[]), "got [] (it is empty)"),
        (lambda r: r["organization"].update(deploy_to_ou_ids=["ou-xyz"]), "deploy_to_ou_ids must be a list, each item an organizational unit id"),
        (lambda r: r["organization"].update(deploy_to_ou_ids=["ou-ab12-34cd56ef", "ou-ab12-34cd56ef"]), "(item [1] 'ou-ab12-34cd56ef' repeats item [0])"),
        (lambda r: r["revocation"].update(organizational_unit_ids=["ou-ab12-34cd56ef"]), "organizational_unit_ids needs gitlab-key-rotation.revocation.accounts = 'organization'"),
        (lambda r: r["revocation"].update(accounts="organization", organizational_unit_ids=["r-ab12"]), "organizational_unit_ids must be a list, each item an organizational unit id such as 'ou-ab12-34cd56ef', none repeated (case-insensitive), got ['r-ab12']"),
        (lambda r: r["revocation"].update(accounts="organization", exclude_accounts=["42"]), "exclude_accounts must be a list, each item a 12-digit AWS account id"),
        (lambda r: r["organization"].update(member_role_name="x" * 54), "member_role_name must be an IAM role name of 1 to 53"),
        (lambda r: r["organization"].update(call_as="ADMIN"), "call_as must be one of 'SELF', 'DELEGATED_ADMIN', got 'ADMIN'"),
        (lambda r: r["organization"].update(unknown=1), "organization.unknown is not a setting (a typo?)"),
        (lambda r: (r["rotation"]["users"].pop(), r["revocation"].pop("accounts")), "no function works in another account"),
    ],
)
def test_bad_organization_settings_are_refused_at_synth(edit, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        organization_config(edit)
    assert message in str(error.value)


def test_organization_and_its_subset_accounts_parse() -> None:
    config = organization_config(
        lambda r: r["revocation"].update(
            accounts="organization", organizational_unit_ids=["ou-ab12-34cd56ef"], exclude_accounts=["444444444444"]
        )
    )
    assert config.revocation.accounts == "organization"
    assert config.revocation.exclude_accounts == ("444444444444",)
    assert config.organization.member_role_name == "KeyRotationMember"
    assert [u.account for u in config.rotation.users] == [None, "222222222222"]


def test_the_stack_set_is_service_managed_auto_deployed_to_the_ous_in_one_region(org_synth: Synthesis) -> None:
    (stack_set,) = resources(org_synth.template("Hub"), "AWS::CloudFormation::StackSet").values()
    properties = stack_set["Properties"]
    assert properties["PermissionModel"] == "SERVICE_MANAGED"
    assert properties["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert properties["CallAs"] == "DELEGATED_ADMIN"
    assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert properties["OperationPreferences"] == {
        "FailureTolerancePercentage": 10, "MaxConcurrentPercentage": 25, "RegionConcurrencyType": "PARALLEL"
    }  # fmt: skip
    (instances,) = properties["StackInstancesGroup"]
    assert instances == {
        "DeploymentTargets": {"OrganizationalUnitIds": ["ou-ab12-34cd56ef"]},
        "Regions": [{"Ref": "AWS::Region"}],
    }
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]}
    assert parameters == {
        "HubAccountId": {"Ref": "AWS::AccountId"},
        "HubRotationRoleArn": {"Fn::GetAtt": [next(iter(_roles(org_synth, "Hub", "RotationJobRole"))), "Arn"]},
        "HubRevocationRoleArn": {"Fn::GetAtt": [next(iter(_roles(org_synth, "Hub", "RevocationJobRole"))), "Arn"]},
    }


def _roles(synthesis: Synthesis, stack: str, prefix: str) -> dict[str, dict]:
    return {k: v for k, v in resources(synthesis.template(stack), "AWS::IAM::Role").items() if k.startswith(prefix)}


def test_the_inline_body_is_the_plain_member_stack_and_fits(org_synth: Synthesis) -> None:
    (stack_set,) = resources(org_synth.template("Hub"), "AWS::CloudFormation::StackSet").values()
    body = stack_set["Properties"]["TemplateBody"]
    assert len(body.encode()) < TEMPLATE_BODY_LIMIT_BYTES
    assert json.loads(body) == org_synth.template("Member")


def test_the_member_template_holds_roles_and_policies_only(org_synth: Synthesis) -> None:
    member = org_synth.template("Member")
    assert {r["Type"] for r in member["Resources"].values()} == {"AWS::IAM::Role", "AWS::IAM::Policy"}
    assert sorted(member["Parameters"]) == ["HubAccountId", "HubRevocationRoleArn", "HubRotationRoleArn"]
    assert "Rules" not in member and "Conditions" not in member  # no bootstrap version check


def test_member_roles_trust_only_the_hub_function_roles(org_synth: Synthesis) -> None:
    roles = resources(org_synth.template("Member"), "AWS::IAM::Role")
    by_name = {role["Properties"]["RoleName"]: role["Properties"] for role in roles.values()}
    assert sorted(by_name) == ["KeyRotationMember-revocation", "KeyRotationMember-rotation"]
    for name, parameter in (("KeyRotationMember-rotation", "HubRotationRoleArn"), ("KeyRotationMember-revocation", "HubRevocationRoleArn")):
        properties = by_name[name]
        assert properties["Path"] == "/gitlab-key-rotation/"
        (statement,) = properties["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
        assert _arn_text(statement["Principal"]["AWS"]) == "arn:${AWS::Partition}:iam::${HubAccountId}:root"
        assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"Ref": parameter}}}


def test_member_rotation_role_touches_only_the_configured_machine_users(org_synth: Synthesis) -> None:
    (statement,) = _policy_statements(org_synth.template("Member"), "MemberRolesRotationRole")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]
    assert _arn_text(statement["Resource"]) == "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/gitlab-key-rotation/ci-member"


def test_member_revocation_role_keeps_the_deny_on_every_machine_user(org_synth: Synthesis) -> None:
    statements = {s["Sid"]: s for s in _policy_statements(org_synth.template("Member"), "MemberRolesRevocationRole")}
    assert sorted(statements) == ["ListGroupMembers", "NeverTouchMachineUsers", "RevokeMemberKeys"]
    assert [_arn_text(r) for r in statements["ListGroupMembers"]["Resource"]] == [
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:group/developers",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:group/contractors",
    ]
    deny = statements["NeverTouchMachineUsers"]
    assert deny["Effect"] == "Deny"
    assert deny["Action"] == ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser", "iam:UntagUser"]
    prefix = "arn:${AWS::Partition}:iam::${AWS::AccountId}:user/"
    assert [_arn_text(r).removeprefix(prefix) for r in deny["Resource"]] == [
        "gitlab-key-rotation/*", "ci-deployer", "*/ci-deployer", "ci-member", "*/ci-member"
    ]  # fmt: skip


def test_hub_roles_may_assume_only_the_member_roles_of_the_listed_accounts(org_synth: Synthesis) -> None:
    hub = org_synth.template("Hub")
    rotation = {s.get("Sid"): s for s in _policy_statements(hub, "RotationJobRole")}
    assert _arn_text(rotation["AssumeMemberRotationRoles"]["Resource"]) == (
        "arn:${AWS::Partition}:iam::222222222222:role/gitlab-key-rotation/KeyRotationMember-rotation"
    )
    # the hub's own key permissions cover the hub's own user only
    assert _arn_text(rotation["RotateMachineUserKeys"]["Resource"]).endswith(":user/ci-deployer")
    revocation = {s.get("Sid"): s for s in _policy_statements(hub, "RevocationJobRole")}
    assert [_arn_text(r) for r in revocation["AssumeMemberRevocationRoles"]["Resource"]] == [
        f"arn:${{AWS::Partition}}:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-revocation"
        for account in ("222222222222", "333333333333")
    ]
    # with accounts listed, the hub's revocation role has no IAM permission of its own
    assert not any(str(s["Action"]).startswith("iam:") or "iam:" in str(s["Action"]) for s in revocation.values())


def test_accounts_organization_may_assume_the_member_role_anywhere_and_list_the_organization(tmp_path: Path) -> None:
    config = organization_config(lambda r: r["revocation"].update(accounts="organization", exclude_accounts=["444444444444"]))
    synthesis = synthesize_app(lambda app: [KeyRotationStack(app, "Hub", config=config)], tmp_path, nag=True)
    assert synthesis.nag_findings() == []
    hub = synthesis.template("Hub")
    revocation = {s.get("Sid"): s for s in _policy_statements(hub, "RevocationJobRole")}
    assert _arn_text(revocation["AssumeMemberRevocationRoles"]["Resource"]) == (
        "arn:${AWS::Partition}:iam::*:role/gitlab-key-rotation/KeyRotationMember-revocation"
    )
    assert revocation["ListOrganizationAccounts"]["Action"] == [
        "organizations:ListAccounts", "organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"
    ]  # fmt: skip
    (function,) = [
        f for k, f in resources(hub, "AWS::Lambda::Function").items() if k.startswith("RevocationJob")
    ]
    environment = function["Properties"]["Environment"]["Variables"]
    (function_id,) = [k for k in resources(hub, "AWS::Lambda::Function") if k.startswith("RevocationJob")]
    settings = json.loads((code_dir(synthesis, "Hub", function_id) / "settings.json").read_text())
    assert settings["accounts"] == "organization" and settings["exclude_accounts"] == ["444444444444"]
    assert _arn_text(environment["MEMBER_ROLE_ARN_PATTERN"]) == (
        "arn:${AWS::Partition}:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-revocation"
    )


def test_cdk_nag_is_clean_on_hub_and_member(org_synth: Synthesis) -> None:
    assert org_synth.nag_findings() == []
    assert org_synth.validation_error is None


@pytest.mark.parametrize("stack", ["Hub", "Member"])
def test_cfn_lint_is_clean(org_synth: Synthesis, stack: str) -> None:
    errors, _ = lint(org_synth.template_text(stack))
    assert errors == []


def test_cfn_lint_is_clean_on_the_inline_body(org_synth: Synthesis) -> None:
    (stack_set,) = resources(org_synth.template("Hub"), "AWS::CloudFormation::StackSet").values()
    errors, _ = lint(stack_set["Properties"]["TemplateBody"])
    assert errors == []


@pytest.mark.parametrize("module", ["rotation", "revocation"])
def test_organization_environment_names_are_documented_by_the_lambdas(org_synth: Synthesis, module: str) -> None:
    import importlib
    import re

    documented = set(re.findall(r"^``([A-Z_]+)``", importlib.import_module(f"gitlab_key_rotation.lambda_src.{module}.settings").__doc__, re.M))
    (function,) = [
        f for f in resources(org_synth.template("Hub"), "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == f"gitlab_key_rotation.lambda_src.{module}.handler.handler"
    ]
    variables = set(function["Properties"]["Environment"]["Variables"])
    assert "MEMBER_ROLE_ARN_PATTERN" in variables
    assert variables <= documented
