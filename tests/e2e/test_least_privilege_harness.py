"""The least-privilege harness proves what it claims: exact-ARN policies hold on moto, and templates resolve.

Every enforcement test runs twice: in-process (``mock_aws``) and against ``ThreadedMotoServer`` on
loopback, the way the end-to-end run reaches the emulator (``endpoint_url``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto import mock_aws, settings
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.iam.responses import IamResponse
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import ThreadedMotoServer

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation_dev.moto_iam_enforcement import (
    RoleCredentials,
    UnevaluablePolicyError,
    check_evaluable,
    enforcing,
    iam_enforcement,
    role_credentials,
    statement_result,
)
from gitlab_key_rotation_dev.template_resolver import MOTO_ACCOUNT_ID, TemplateResolutionError, TemplateResolver

REGION = "us-east-1"
USER_ARN = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:user"
GROUP_ARN = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:group"
KEY_ACTIONS = ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:DeleteAccessKey"]


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


class Emulator:
    """boto3 clients of one moto: as the test's administrator (before enforcement) or as a role."""

    def __init__(self, endpoint_url: str | None) -> None:
        self.endpoint_url = endpoint_url

    def client(self, service: str, credentials: RoleCredentials | None = None) -> Any:
        secrets = (
            credentials.client_kwargs()
            if credentials
            else {"aws_access_key_id": "admin", "aws_secret_access_key": "admin"}
        )
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint_url, **secrets)

    def role(self, name: str, *documents: dict[str, Any]) -> RoleCredentials:
        return role_credentials(self.client("iam"), self.client("sts"), role_name=name, documents=documents)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["mock_aws", "moto.server"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    if request.param == "mock_aws":
        with mock_aws():
            yield Emulator(endpoint_url=None)
    else:
        url = request.getfixturevalue("moto_server")
        yield Emulator(endpoint_url=url)
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


def denied(call: Callable[[], object]) -> str:
    """Run a call that must be refused; return the error code."""
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"]


# --- IAM users, keys and groups ----------------------------------------------------------------


def test_a_role_scoped_to_one_user_manages_that_users_keys_and_no_one_elses(emulator: Emulator) -> None:
    admin = emulator.client("iam")
    for user in ("ci-deployer", "someone-else"):
        admin.create_user(UserName=user)
    bystander_key = admin.create_access_key(UserName="someone-else")["AccessKey"]["AccessKeyId"]
    role = emulator.role(
        "rotation",
        policy(allow(KEY_ACTIONS + ["iam:GetAccessKeyLastUsed"], f"{USER_ARN}/ci-deployer")),
    )
    iam = emulator.client("iam", role)

    with iam_enforcement():
        created = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
        listed = iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
        assert [key["AccessKeyId"] for key in listed] == [created]
        assert iam.get_access_key_last_used(AccessKeyId=created)["UserName"] == "ci-deployer"
        iam.delete_access_key(UserName="ci-deployer", AccessKeyId=created)

        assert denied(lambda: iam.list_access_keys(UserName="someone-else")) == "AccessDenied"
        assert denied(lambda: iam.create_access_key(UserName="someone-else")) == "AccessDenied"
        assert (
            denied(lambda: iam.delete_access_key(UserName="someone-else", AccessKeyId=bystander_key)) == "AccessDenied"
        )
        assert denied(lambda: iam.get_access_key_last_used(AccessKeyId=bystander_key)) == "AccessDenied"
        assert denied(lambda: iam.list_users()) == "AccessDenied"

    assert admin.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"] == []
    assert [k["AccessKeyId"] for k in admin.list_access_keys(UserName="someone-else")["AccessKeyMetadata"]] == [
        bystander_key
    ]


def test_the_refusal_names_the_action_and_the_exact_resource(emulator: Emulator) -> None:
    emulator.client("iam").create_user(UserName="someone-else")
    iam = emulator.client("iam", emulator.role("rotation", policy(allow(KEY_ACTIONS, f"{USER_ARN}/ci-deployer"))))

    with iam_enforcement(), pytest.raises(ClientError) as refused:
        iam.list_access_keys(UserName="someone-else")

    assert refused.value.response["Error"]["Message"].endswith(
        f"is not authorized to perform: iam:ListAccessKeys on resource: {USER_ARN}/someone-else"
    )


def test_an_explicit_deny_on_a_user_wins_over_an_allow_on_all_users(emulator: Emulator) -> None:
    admin = emulator.client("iam")
    for user in ("ci-deployer", "developer"):
        admin.create_user(UserName=user)
    deny = {"Effect": "Deny", "Action": "iam:*", "Resource": f"{USER_ARN}/ci-deployer"}
    iam = emulator.client("iam", emulator.role("revocation", policy(allow(KEY_ACTIONS, f"{USER_ARN}/*"), deny)))

    with iam_enforcement():
        assert iam.list_access_keys(UserName="developer")["AccessKeyMetadata"] == []
        assert denied(lambda: iam.list_access_keys(UserName="ci-deployer")) == "AccessDenied"


def test_get_group_is_allowed_on_one_group_only(emulator: Emulator) -> None:
    admin = emulator.client("iam")
    for group in ("developers", "admins"):
        admin.create_group(GroupName=group)
    admin.create_user(UserName="dev")
    admin.add_user_to_group(GroupName="developers", UserName="dev")
    iam = emulator.client("iam", emulator.role("revocation", policy(allow("iam:GetGroup", f"{GROUP_ARN}/developers"))))

    with iam_enforcement():
        assert [u["UserName"] for u in iam.get_group(GroupName="developers")["Users"]] == ["dev"]
        assert denied(lambda: iam.get_group(GroupName="admins")) == "AccessDenied"


# --- Secrets Manager and SNS --------------------------------------------------------------------


def test_get_secret_value_is_allowed_on_one_secret_by_arn_or_name_and_denied_on_another(emulator: Emulator) -> None:
    admin = emulator.client("secretsmanager")
    token_arn = admin.create_secret(Name="gitlab-token", SecretString='{"GITLAB_TOKEN": "x"}')["ARN"]
    other_arn = admin.create_secret(Name="other", SecretString="{}")["ARN"]
    secrets = emulator.client(
        "secretsmanager", emulator.role("rotation", policy(allow("secretsmanager:GetSecretValue", token_arn)))
    )

    with iam_enforcement():
        assert secrets.get_secret_value(SecretId=token_arn)["ARN"] == token_arn
        assert secrets.get_secret_value(SecretId="gitlab-token")["ARN"] == token_arn
        # Secrets Manager speaks JSON: the refusal carries AWS's code, not moto's XML answer.
        assert denied(lambda: secrets.get_secret_value(SecretId=other_arn)) == "AccessDeniedException"
        assert denied(lambda: secrets.get_secret_value(SecretId="other")) == "AccessDeniedException"
        assert (
            denied(lambda: secrets.put_secret_value(SecretId=token_arn, SecretString="{}")) == "AccessDeniedException"
        )


def test_the_suffix_wildcard_cdk_grants_on_a_secret_imported_by_name_matches_that_secret_only(
    emulator: Emulator,
) -> None:
    admin = emulator.client("secretsmanager")
    admin.create_secret(Name="gitlab-token", SecretString="{}")
    admin.create_secret(Name="gitlab-token-other", SecretString="{}")
    pattern = f"arn:aws:secretsmanager:{REGION}:{MOTO_ACCOUNT_ID}:secret:gitlab-token-??????"
    secrets = emulator.client(
        "secretsmanager", emulator.role("rotation", policy(allow("secretsmanager:GetSecretValue", pattern)))
    )

    with iam_enforcement():
        assert secrets.get_secret_value(SecretId="gitlab-token")["Name"] == "gitlab-token"
        assert denied(lambda: secrets.get_secret_value(SecretId="gitlab-token-other")) == "AccessDeniedException"


def test_publish_is_allowed_on_one_topic_only(emulator: Emulator) -> None:
    admin = emulator.client("sns")
    alarms = admin.create_topic(Name="alarms")["TopicArn"]
    other = admin.create_topic(Name="other")["TopicArn"]
    sns = emulator.client("sns", emulator.role("rotation", policy(allow("sns:Publish", alarms))))

    with iam_enforcement():
        assert sns.publish(TopicArn=alarms, Message="rotation failed")["MessageId"]
        assert denied(lambda: sns.publish(TopicArn=other, Message="rotation failed")) == "AccessDenied"


# --- authentication, and switching it off again ------------------------------------------------


def test_requests_are_authenticated_while_enforcing_and_not_after(emulator: Emulator) -> None:
    role = emulator.role("rotation", policy(allow("iam:ListUsers", "*")))
    forged = RoleCredentials(role.role_arn, role.access_key_id, "not-the-secret", role.session_token)

    with iam_enforcement():
        assert enforcing()
        assert emulator.client("iam", role).list_users()["Users"] == []
        assert denied(lambda: emulator.client("iam", forged).list_users()) == "SignatureDoesNotMatch"
        assert denied(lambda: emulator.client("iam").list_users()) == "InvalidClientTokenId"

    assert not enforcing()
    assert emulator.client("iam").list_users()["Users"] == []


def test_a_client_built_from_the_environment_alone_acts_as_the_role(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end-to-end run's way: the handler's boto3 finds the emulator and the role in the environment."""
    emulator = Emulator(endpoint_url=moto_server)
    emulator.client("iam").create_user(UserName="ci-deployer")
    role = emulator.role("rotation", policy(allow("iam:ListAccessKeys", f"{USER_ARN}/ci-deployer")))
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_DEFAULT_REGION": REGION,
        **role.runtime_environment(),
    }.items():
        monkeypatch.setenv(name, value)

    try:
        with iam_enforcement():
            iam = boto3.session.Session().client("iam")
            assert iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"] == []
            assert denied(lambda: iam.list_users()) == "AccessDenied"
    finally:
        requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()


def test_leaving_restores_moto_also_when_the_body_raises() -> None:
    before = (
        IamResponse._determine_resource,
        IAMPolicyStatement.is_action_permitted,
        settings.INITIAL_NO_AUTH_ACTION_COUNT,
    )

    with pytest.raises(LookupError, match="the body failed"), iam_enforcement():
        assert SecretsManagerResponse._determine_resource is not None
        raise LookupError("the body failed")

    assert (
        IamResponse._determine_resource,
        IAMPolicyStatement.is_action_permitted,
        settings.INITIAL_NO_AUTH_ACTION_COUNT,
    ) == before
    assert not hasattr(SecretsManagerResponse, "_determine_resource")
    assert "_authenticate_and_authorize_normal_action" not in vars(SecretsManagerResponse)
    assert not enforcing()


def test_enforcement_cannot_be_nested_and_roles_must_be_assumed_before_it() -> None:
    with mock_aws(), iam_enforcement():
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with iam_enforcement():
                pass
        with pytest.raises(RuntimeError, match="before iam_enforcement"):
            Emulator(endpoint_url=None).role("late", policy(allow("iam:ListUsers", "*")))


def test_role_credentials_keep_their_secrets_out_of_repr() -> None:
    with mock_aws():
        credentials = Emulator(endpoint_url=None).role("rotation", policy(allow("iam:ListUsers", "*")))

    shown = repr(credentials)
    assert credentials.access_key_id in shown
    assert credentials.secret_access_key not in shown and credentials.session_token not in shown
    assert credentials.runtime_environment()["AWS_SESSION_TOKEN"] == credentials.session_token


# --- statement evaluation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "action", "resource", "expected"),
    [
        (
            allow("iam:listaccesskeys", f"{USER_ARN}/ci"),
            "iam:ListAccessKeys",
            f"{USER_ARN}/ci",
            PermissionResult.PERMITTED,
        ),
        (allow("iam:List*", f"{USER_ARN}/ci"), "iam:ListAccessKeys", f"{USER_ARN}/CI", PermissionResult.NEUTRAL),
        (allow("iam:*", f"{USER_ARN}/ci.x"), "iam:GetUser", f"{USER_ARN}/ciXx", PermissionResult.NEUTRAL),
        (allow("iam:*", f"{USER_ARN}/c?"), "iam:GetUser", f"{USER_ARN}/ci", PermissionResult.PERMITTED),
        (allow("iam:*", f"{USER_ARN}/c?"), "iam:GetUser", f"{USER_ARN}/cii", PermissionResult.NEUTRAL),
        (allow("*", "*"), "sns:Publish", "arn:aws:sns:us-east-1:1:t", PermissionResult.PERMITTED),
        ({"Effect": "Deny", "NotAction": "iam:Get*", "Resource": "*"}, "iam:GetUser", "*", PermissionResult.NEUTRAL),
        ({"Effect": "Deny", "NotAction": "iam:Get*", "Resource": "*"}, "iam:DeleteUser", "*", PermissionResult.DENIED),
        (
            {"Effect": "Deny", "Action": "iam:*", "NotResource": f"{USER_ARN}/ci"},
            "iam:GetUser",
            f"{USER_ARN}/ci",
            PermissionResult.NEUTRAL,
        ),
        (
            {"Effect": "Deny", "Action": "iam:*", "NotResource": f"{USER_ARN}/ci"},
            "iam:GetUser",
            f"{USER_ARN}/dev",
            PermissionResult.DENIED,
        ),
    ],
    ids=[
        "action-case-insensitive",
        "resource-case-sensitive",
        "dot-is-literal",
        "question-mark-one-char",
        "question-mark-not-two",
        "star-everything",
        "not-action-excluded",
        "not-action-included",
        "not-resource-excluded",
        "not-resource-included",
    ],
)
def test_statements_are_judged_as_iam_judges_them(
    statement: dict[str, Any], action: str, resource: str, expected: PermissionResult
) -> None:
    assert statement_result(statement, action, resource) is expected


def test_statements_it_cannot_evaluate_are_refused_with_their_reason() -> None:
    conditional = {
        **allow("iam:ListUsers", "*"),
        "Sid": "OnlyInRegion",
        "Condition": {"StringEquals": {"aws:RequestedRegion": REGION}},
    }
    with pytest.raises(UnevaluablePolicyError, match=r"statement 1 \(OnlyInRegion\): Condition is not evaluated"):
        check_evaluable(policy(allow("iam:GetUser", "*"), conditional))
    with pytest.raises(UnevaluablePolicyError, match="policy variable in Resource"):
        statement_result(allow("iam:GetUser", f"{USER_ARN}/${{aws:username}}"), "iam:GetUser", f"{USER_ARN}/ci")
    with pytest.raises(UnevaluablePolicyError, match="role 'rotation' document 0"), mock_aws():
        Emulator(endpoint_url=None).role("rotation", policy(conditional))


# --- template resolution -------------------------------------------------------------------------


def join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


PARTITION, ACCOUNT, REGION_REF = {"Ref": "AWS::Partition"}, {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}

TEMPLATE: dict[str, Any] = {
    "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
    "Mappings": {"Periods": {"us-east-1": {"days": "30"}}},
    "Resources": {
        "StateSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        "AlarmTopic": {"Type": "AWS::SNS::Topic"},
        "RotationRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Statement": [
                        {
                            "Action": "sts:AssumeRole",
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                        }
                    ]
                },
                "ManagedPolicyArns": [
                    join("arn:", PARTITION, ":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"),
                    {"Ref": "SharedManagedPolicy"},
                ],
                "Policies": [
                    {"PolicyName": "inline", "PolicyDocument": policy(allow("sns:Publish", {"Ref": "AlarmTopic"}))}
                ],
            },
        },
        "RotationRoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "RotationRoleDefaultPolicy",
                "Roles": [{"Ref": "RotationRole"}],
                "PolicyDocument": policy(
                    allow(KEY_ACTIONS, join("arn:", PARTITION, ":iam::", ACCOUNT, ":user/ci-deployer")),
                    allow(
                        "secretsmanager:GetSecretValue",
                        {
                            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
                            ":secret:gitlab-token-??????"
                        },
                    ),
                    allow(["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], {"Ref": "StateSecret"}),
                ),
            },
        },
        "SharedManagedPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"Roles": [{"Ref": "RotationRole"}], "PolicyDocument": policy(allow("iam:GetUser", "*"))},
        },
        "OtherRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "OtherPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"Roles": [{"Ref": "OtherRole"}], "PolicyDocument": policy(allow("iam:*", "*"))},
        },
        "RotationFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": ROTATION_HANDLER,
                "Role": {"Fn::GetAtt": ["RotationRole", "Arn"]},
                "Environment": {
                    "Variables": {
                        "ROTATION_USERS": join(
                            '[{"iam_user":"ci-deployer","state_secret_arn":"', {"Ref": "StateSecret"}, '"}]'
                        ),
                        "NOTIFICATION_TOPIC_ARN": {"Ref": "AlarmTopic"},
                        "TOPIC_NAME": {"Fn::GetAtt": "AlarmTopic.TopicName"},
                        "GITLAB_TOKEN_SECRET_ARN": {
                            "Fn::Sub": [
                                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Name}",
                                {"Name": "gitlab-token"},
                            ]
                        },
                        "LITERAL": {"Fn::Sub": "${!NotAVariable}-${Stage}-${AlarmTopic.TopicName}"},
                        "ROTATION_PERIOD_DAYS": {"Fn::FindInMap": ["Periods", REGION_REF, "days"]},
                        "DOMAIN": {"Fn::Select": [1, {"Fn::Split": ["//", "https://gitlab.example.com"]}]},
                        "DROPPED": {"Ref": "AWS::NoValue"},
                    }
                },
            },
        },
        "RevocationFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Handler": REVOCATION_HANDLER, "Role": "arn:aws:iam::123456789012:role/imported"},
        },
    },
}

STATE_ARN = f"arn:aws:secretsmanager:{REGION}:{MOTO_ACCOUNT_ID}:secret:state-AbCdEf"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{MOTO_ACCOUNT_ID}:alarms"
PHYSICAL = {
    "StateSecret": STATE_ARN,
    "AlarmTopic": {"Ref": TOPIC_ARN, "TopicName": "alarms"},
    "SharedManagedPolicy": f"arn:aws:iam::{MOTO_ACCOUNT_ID}:policy/shared",
}


def test_functions_are_listed_with_handler_role_and_a_concrete_environment() -> None:
    rotation, revocation = TemplateResolver(TEMPLATE, PHYSICAL).lambda_functions()

    assert (rotation.logical_id, rotation.handler, rotation.role_logical_id) == (
        "RotationFunction",
        ROTATION_HANDLER,
        "RotationRole",
    )
    assert rotation.environment == {
        "ROTATION_USERS": f'[{{"iam_user":"ci-deployer","state_secret_arn":"{STATE_ARN}"}}]',
        "NOTIFICATION_TOPIC_ARN": TOPIC_ARN,
        "TOPIC_NAME": "alarms",
        "GITLAB_TOKEN_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{MOTO_ACCOUNT_ID}:secret:gitlab-token",
        "LITERAL": "${NotAVariable}-prod-alarms",
        "ROTATION_PERIOD_DAYS": "30",
        "DOMAIN": "gitlab.example.com",
    }
    assert (revocation.handler, revocation.role_logical_id, revocation.environment) == (
        REVOCATION_HANDLER,
        None,
        {},
    )


def test_a_roles_policies_gather_inline_attached_and_managed_documents_once() -> None:
    policies = TemplateResolver(TEMPLATE, PHYSICAL, region="eu-west-1").role_policies("RotationRole")

    assert policies.managed_policy_arns == ("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",)
    statements = [statement for document in policies.documents for statement in document["Statement"]]
    assert statements == [
        allow("sns:Publish", TOPIC_ARN),
        allow(KEY_ACTIONS, f"{USER_ARN}/ci-deployer"),
        allow(
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:eu-west-1:{MOTO_ACCOUNT_ID}:secret:gitlab-token-??????",
        ),
        allow(["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], STATE_ARN),
        allow("iam:GetUser", "*"),
    ]


@pytest.mark.parametrize(
    ("value", "physical", "message"),
    [
        ({"Ref": "AlarmTopic"}, {}, r"where: Ref AlarmTopic \(AWS::SNS::Topic\): no physical value given"),
        ({"Ref": "Nowhere"}, {}, "no such resource, parameter or pseudo parameter"),
        (
            {"Fn::GetAtt": ["StateSecret", "Arn"]},
            {"StateSecret": STATE_ARN},
            r"no value for StateSecret.Arn .* give a mapping with 'Arn'",
        ),
        ({"Fn::If": ["IsProd", "a", "b"]}, {}, "where: Fn::If is not supported by this resolver"),
        ({"Fn::Join": ["", ["a", {"Ref": "AWS::NoValue"}, ["nested"]]]}, {}, "expected strings"),
    ],
    ids=["ref-without-physical", "ref-unknown", "getatt-without-attribute", "unsupported-function", "join-non-strings"],
)
def test_what_cannot_be_resolved_is_named_with_its_place(value: Any, physical: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateResolutionError, match=message):
        TemplateResolver(TEMPLATE, physical).resolve(value, "where")


def test_a_non_string_environment_value_and_an_unknown_role_are_refused() -> None:
    template = {
        "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {"N": 3}}}}}
    }
    with pytest.raises(
        TemplateResolutionError,
        match=r"Resources.Fn.Properties.Environment.Variables.N must resolve to a string, got 3",
    ):
        TemplateResolver(template, {}).lambda_functions()
    with pytest.raises(
        TemplateResolutionError,
        match=r"'AlarmTopic' is not an AWS::IAM::Role of the template; roles: \['OtherRole', 'RotationRole'\]",
    ):
        TemplateResolver(TEMPLATE, PHYSICAL).role_policies("AlarmTopic")


# --- both together: the statements a template grants, enforced ---------------------------------------


def test_the_statements_a_template_grants_hold_on_the_emulator_and_nothing_more(emulator: Emulator) -> None:
    admin_secrets, admin_iam = emulator.client("secretsmanager"), emulator.client("iam")
    state_arn = admin_secrets.create_secret(Name="state", SecretString="{}")["ARN"]
    other_arn = admin_secrets.create_secret(Name="other-state", SecretString="{}")["ARN"]
    topic_arn = emulator.client("sns").create_topic(Name="alarms")["TopicArn"]
    for user in ("ci-deployer", "developer"):
        admin_iam.create_user(UserName=user)
    resolver = TemplateResolver(
        TEMPLATE, {**PHYSICAL, "StateSecret": state_arn, "AlarmTopic": {"Ref": topic_arn, "TopicName": "alarms"}}
    )
    (function, _) = resolver.lambda_functions()
    role = emulator.role("rotation", *resolver.role_policies(function.role_logical_id).documents)
    iam, secrets = emulator.client("iam", role), emulator.client("secretsmanager", role)
    state_secret_arn = json.loads(function.environment["ROTATION_USERS"])[0]["state_secret_arn"]

    with iam_enforcement():
        iam.create_access_key(UserName="ci-deployer")
        secrets.put_secret_value(SecretId=state_secret_arn, SecretString="{}")
        emulator.client("sns", role).publish(TopicArn=function.environment["NOTIFICATION_TOPIC_ARN"], Message="done")
        assert denied(lambda: iam.create_access_key(UserName="developer")) == "AccessDenied"
        assert (
            denied(lambda: secrets.put_secret_value(SecretId=other_arn, SecretString="{}")) == "AccessDeniedException"
        )
