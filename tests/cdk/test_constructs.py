"""The constructs used on their own inside someone else's stack, with every optional feature on,
and the config's VPC / KMS / existing-secret / CA-bundle path through KeyRotationStack; plus the
props that must be refused before anything is synthesized."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from gitlab_key_rotation import DeveloperKeyRevocation, GitLabKeyRotation, GitLabTarget, KeyRotationStack, RotatedUser
from gitlab_key_rotation.ca_bundle_layer import CA_BUNDLE_PATH, CopyFileBundling
from gitlab_key_rotation.lambda_src.contract.schema import REQUIRED
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget as RuntimeGitLabTarget
from tests.cdk.lint import lint
from tests.cdk.synth import Synthesis, config_with, lambda_env, render, resources, stand_in_arns, synthesize_app

TOKEN_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token-AbCdEf"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:platform-alerts"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
ENV = cdk.Environment(account="123456789012", region="eu-west-1")


@pytest.fixture(scope="module")
def pem_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "gitlab-ca.pem"
    path.write_text(PEM)
    return path


def build_variants(app: cdk.App, pem_file: Path) -> list[cdk.Stack]:
    stack = cdk.Stack(app, "Variants", env=ENV)
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-0123456789abcdef0", availability_zones=["eu-west-1a"], private_subnet_ids=["subnet-0123456789abcdef0"]
    )
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    rotation = GitLabKeyRotation(
        stack,
        "SelfManaged",
        users=[
            RotatedUser(iam_user="ci-a", iam_path="/machines/", targets=(GitLabTarget(kind="group", id="platform"),)),
            RotatedUser(
                iam_user="ci-b",
                targets=(GitLabTarget(kind="project", id="123", environment_scope="prod", protected=False),),
            ),
        ],
        gitlab_url="https://gitlab.internal.example",
        gitlab_token_secret=secretsmanager.Secret.from_secret_complete_arn(stack, "Token", TOKEN_ARN),
        gitlab_ca_bundle=pem_file,
        schedule=events.Schedule.expression("cron(15 * ? * * *)"),
        rotate_gitlab_token=True,
        notification_topic=sns.Topic.from_topic_arn(stack, "Alerts", TOPIC_ARN),
        notification_email="oncall@example.com",
        encryption_key=key,
        vpc=vpc,
        dry_run=True,
    )
    DeveloperKeyRevocation(
        stack, "Revocation", groups=["devs"], exempt_groups=["on-leave", "devs"], action="deactivate",
        deactivation_grace=cdk.Duration.days(13), exempt_tag_key="", notification_topic=rotation.topic,
    )  # fmt: skip
    DeveloperKeyRevocation(stack, "StandaloneRevocation", groups=["interns"], protected_users=["ci-a"])

    configured = config_with(
        account="123456789012",
        region="eu-west-1",
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        gitlab={"token_secret_arn": TOKEN_ARN, "ca_bundle_file": str(pem_file)},
        notifications={"slack": {"workspace_id": "T0123ABCD", "channel_id": "C0123ABCDEF"}},
        rotation={"reserved_concurrency": 0, "heartbeat_hours": 30, "vpc": {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}},
        revocation={"enabled": False},
    )
    return [stack, KeyRotationStack(app, "FromConfig", config=configured, env=ENV)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory, pem_file: Path) -> Synthesis:
    return synthesize_app(lambda app: build_variants(app, pem_file), tmp_path_factory.mktemp("variants"), nag=True)


def the_function(template: dict, name_part: str) -> dict:
    (found,) = [v["Properties"] for k, v in resources(template, "AWS::Lambda::Function").items() if k.startswith(name_part)]
    return found


def statements(template: dict, role_part: str) -> list[dict]:
    (policy,) = [v for v in resources(template, "AWS::IAM::Policy").values() if v["Properties"]["Roles"][0]["Ref"].startswith(role_part)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def statement(template: dict, role_part: str, sid: str) -> dict:
    (found,) = [s for s in statements(template, role_part) if s.get("Sid") == sid]
    return found


def test_cdk_nag_has_no_unacknowledged_finding(synth: Synthesis) -> None:
    assert synth.nag_findings() == []


@pytest.mark.parametrize("stack_name", ["Variants", "FromConfig"])
def test_cfn_lint_has_no_error(synth: Synthesis, stack_name: str) -> None:
    # FromConfig is pinned to eu-west-1 and has a Slack channel (AWS Chatbot is not in every region)
    errors, _ = lint(synth.template_text(stack_name), regions=["eu-west-1"] if stack_name == "FromConfig" else None)
    assert errors == []


def test_user_arns_follow_iam_paths(synth: Synthesis) -> None:
    resource = statement(synth.template("Variants"), "SelfManagedJobRole", "RotateMachineUserKeys")["Resource"]
    assert render(resource, {}) == ["arn:aws:iam::123456789012:user/machines/ci-a", "arn:aws:iam::123456789012:user/ci-b"]


def test_one_state_secret_per_user_encrypted_with_the_key(synth: Synthesis) -> None:
    template = synth.template("Variants")
    secrets = resources(template, "AWS::SecretsManager::Secret")
    assert sorted(secrets) == ["SelfManagedStateciaEDF82D97", "SelfManagedStatecibE8EBB85D"]  # pinned: stateful
    assert all(s["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("Key") for s in secrets.values())
    state = statement(template, "SelfManagedJobRole", "KeepRotationState")
    assert state["Resource"] == [{"Ref": k} for k in secrets]


def test_existing_token_secret_is_read_and_written_when_token_rotation_is_on(synth: Synthesis) -> None:
    template = synth.template("Variants")
    stmts = statements(template, "SelfManagedJobRole")
    read = [s for s in stmts if s["Action"] == ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]]
    assert [s["Resource"] for s in read] == [TOKEN_ARN]
    assert statement(template, "SelfManagedJobRole", "StoreRotatedGitLabToken")["Resource"] == TOKEN_ARN
    assert "GitLabToken" not in json.dumps(list(template["Resources"]))


def test_kms_key_grants_and_log_encryption(synth: Synthesis) -> None:
    template = synth.template("Variants")
    kms_statements = [s for s in statements(template, "SelfManagedJobRole") if "kms:Decrypt" in s["Action"]]
    assert len(kms_statements) == 1 and kms_statements[0]["Resource"]["Fn::GetAtt"][0].startswith("Key")
    log_groups = [v["Properties"] for k, v in resources(template, "AWS::Logs::LogGroup").items() if k.startswith("SelfManaged")]
    assert all("KmsKeyId" in g for g in log_groups)


def test_vpc_placement_with_eni_permissions(synth: Synthesis) -> None:
    template = synth.template("Variants")
    vpc_config = the_function(template, "SelfManaged")["VpcConfig"]
    assert vpc_config["SubnetIds"] == ["subnet-0123456789abcdef0"]
    eni = statement(template, "SelfManagedJobRole", "PlaceNetworkInterfacesInTheVpc")
    assert eni["Resource"] == "*" and "ec2:CreateNetworkInterface" in eni["Action"]
    assert "VpcConfig" not in the_function(template, "StandaloneRevocation")


def the_function_id(template: dict, name_part: str) -> str:
    (found,) = [k for k in resources(template, "AWS::Lambda::Function") if k.startswith(name_part)]
    return found


def test_ca_bundle_layer_and_settings(synth: Synthesis) -> None:
    from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings

    template = synth.template("Variants")
    fn = the_function(template, "SelfManaged")
    env = lambda_env(synth, "Variants", the_function_id(template, "SelfManaged"), stand_in_arns(template) | {"Key961B73FD": "k"})
    assert RotationSettings.load(env).gitlab_ca_bundle == CA_BUNDLE_PATH
    layer_ids = [layer["Ref"] for layer in fn["Layers"]]
    assert [i for i in layer_ids if "RequestsLayer" in i] and [i for i in layer_ids if "GitLabCaBundle" in i]


def test_requests_layer_asset_hash_is_the_same_in_every_stack(synth: Synthesis, default_synth: Synthesis) -> None:
    # A custom hash over requirements, platform and Python version: independent of the stack, the
    # construction order, the machine and the directory, so CI and operators upload the same layer.
    def layer_keys(template: dict) -> set[str]:
        return {r["Properties"]["Content"]["S3Key"] for k, r in resources(template, "AWS::Lambda::LayerVersion").items() if "RequestsLayer" in k}

    keys = layer_keys(synth.template("Variants")) | layer_keys(synth.template("FromConfig")) | layer_keys(default_synth.template())
    assert len(keys) == 1


def test_ca_bundle_bundling_copies_the_pem(tmp_path: Path, pem_file: Path) -> None:
    assert CopyFileBundling(pem_file, "gitlab-ca/ca-bundle.pem").try_bundle(str(tmp_path))
    assert (tmp_path / "gitlab-ca" / "ca-bundle.pem").read_text() == PEM
    assert CA_BUNDLE_PATH == "/opt/gitlab-ca/ca-bundle.pem"


def test_given_topic_is_used_and_subscribed(synth: Synthesis) -> None:
    template = synth.template("Variants")
    assert the_function(template, "SelfManaged")["Environment"]["Variables"]["NOTIFICATION_TOPIC_ARN"] == TOPIC_ARN
    subscriptions = [v["Properties"] for v in resources(template, "AWS::SNS::Subscription").values()]
    assert subscriptions == [{"Endpoint": "oncall@example.com", "Protocol": "email", "TopicArn": TOPIC_ARN}]
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert all(a["Properties"]["AlarmActions"] == [TOPIC_ARN] for k, a in alarms.items() if k.startswith(("SelfManaged", "Revocation")))


def test_reserved_concurrency_none_and_rotation_settings(synth: Synthesis) -> None:
    from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings

    assert "ReservedConcurrentExecutions" not in the_function(synth.template("FromConfig"), "Rotation")
    template = synth.template("Variants")
    fn = the_function(template, "SelfManaged")
    assert fn["ReservedConcurrentExecutions"] == 1  # token rotation needs runs that never overlap
    refs = stand_in_arns(template)
    settings = RotationSettings.load(lambda_env(synth, "Variants", the_function_id(template, "SelfManaged"), refs))
    assert settings.dry_run and settings.rotate_gitlab_token and settings.gitlab_ca_bundle == CA_BUNDLE_PATH
    assert [u.iam_user for u in settings.users] == ["ci-a", "ci-b"]
    assert [u.state_secret_arn for u in settings.users] == [refs["SelfManagedStateciaEDF82D97"], refs["SelfManagedStatecibE8EBB85D"]]
    assert settings.users[1].targets[0] == RuntimeGitLabTarget(kind="project", id="123", environment_scope="prod", protected=False)
    (rule,) = [v["Properties"] for k, v in resources(template, "AWS::Events::Rule").items() if k.startswith("SelfManaged")]
    assert rule["ScheduleExpression"] == "cron(15 * ? * * *)"


def test_revocation_variants_grant_only_what_the_action_needs(synth: Synthesis) -> None:
    template = synth.template("Variants")
    deactivating = statement(template, "RevocationJobRole", "RevokeMemberKeys")["Action"]
    # no tag check, but the marks of deactivated keys are read
    assert deactivating == ["iam:ListAccessKeys", "iam:DeleteAccessKey", "iam:UpdateAccessKey", "iam:ListUserTags"]
    marking = statement(template, "RevocationJobRole", "MarkDeactivatedKeys")
    assert (marking["Action"], render(marking["Resource"], {})) == (
        ["iam:TagUser", "iam:UntagUser"], "arn:aws:iam::123456789012:user/*",
    )  # fmt: skip
    assert marking["Condition"] == {
        "ForAllValues:StringLike": {"aws:TagKeys": "key-revocation:deactivated:*"},
        "Null": {"aws:TagKeys": "false"},
    }
    listing = statement(template, "RevocationJobRole", "ListGroupMembers")
    assert render(listing["Resource"], {}) == [
        "arn:aws:iam::123456789012:group/devs", "arn:aws:iam::123456789012:group/on-leave",
    ]  # fmt: skip
    assert not [s for s in statements(template, "StandaloneRevocationJobRole") if s.get("Sid") == "MarkDeactivatedKeys"]
    assert not [s for s in statements(template, "RevocationJobRole") if s["Effect"] == "Deny"]
    deny = statement(template, "StandaloneRevocationJobRole", "NeverTouchProtectedUsers")
    assert render(deny["Resource"], {}) == ["arn:aws:iam::123456789012:user/ci-a", "arn:aws:iam::123456789012:user/*/ci-a"]
    from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings

    settings = RevocationSettings.load(lambda_env(synth, "Variants", the_function_id(template, "Revocation"), stand_in_arns(template)))
    assert settings.exempt_tag_key is None and settings.action == "deactivate" and settings.protected_users == frozenset()
    assert settings.exempt_groups == ("on-leave", "devs") and settings.deactivation_grace_days == 13
    assert len(resources(template, "AWS::SNS::Topic")) == 1  # the standalone revocation created its own


def test_key_rotation_stack_from_config_with_vpc_kms_and_existing_secret(synth: Synthesis) -> None:
    template = synth.template("FromConfig")
    fn = the_function(template, "Rotation")
    assert fn["VpcConfig"] == {"SecurityGroupIds": ["sg-0123456789abcdef0"], "SubnetIds": ["subnet-0123456789abcdef0"]}
    assert fn["Environment"]["Variables"]["GITLAB_TOKEN_SECRET_ARN"] == TOKEN_ARN
    assert not resources(template, "AWS::SecretsManager::Secret").keys() - {k for k in template["Resources"] if "State" in k}
    assert len(resources(template, "AWS::Lambda::Function")) == 1  # revocation disabled
    topic_id, topic = next(iter(resources(template, "AWS::SNS::Topic").items()))
    assert topic["Properties"]["KmsMasterKeyId"].startswith("arn:aws:kms:")
    (heartbeat,) = [v["Properties"] for k, v in resources(template, "AWS::CloudWatch::Alarm").items() if "Heartbeat" in k]
    assert (heartbeat["Period"], heartbeat["EvaluationPeriods"]) == (3600, 30)  # rotation.heartbeat_hours


def test_slack_channel_gets_the_topic_with_a_read_only_guardrail(synth: Synthesis) -> None:
    template = synth.template("FromConfig")
    ((topic_id, _),) = resources(template, "AWS::SNS::Topic").items()
    (channel,) = resources(template, "AWS::Chatbot::SlackChannelConfiguration").values()
    props = channel["Properties"]
    assert (props["SlackWorkspaceId"], props["SlackChannelId"]) == ("T0123ABCD", "C0123ABCDEF")
    assert props["SnsTopicArns"] == [{"Ref": topic_id}]
    assert props["GuardrailPolicies"] == [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/ReadOnlyAccess"]]}]
    (role,) = [r for k, r in resources(template, "AWS::IAM::Role").items() if k.startswith("SlackChannel")]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "chatbot.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    assert not [p for p in resources(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"][0]["Ref"].startswith("SlackChannel")]


# ---- props refused before synthesis -------------------------------------------------------------

USER = RotatedUser(iam_user="ci", targets=(GitLabTarget(kind="group", id="g"),))


@pytest.fixture()
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "Props")


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"users": []}, r"users must be a non-empty list of objects \(IAM machine users\), got \[\]"),
        ({"users": [USER, RotatedUser(iam_user="CI", targets=(GitLabTarget(kind="project", id="1"),))]}, r"users\[1\]\.iam_user 'CI' repeats users\[0\]\.iam_user"),
        (
            {"users": [USER, RotatedUser(iam_user="ci-2", targets=(GitLabTarget(kind="group", id="g"),))]},
            r"users\[1\]\.targets\[0\] writes variable 'AWS_ACCESS_KEY_ID' of group 'g' at environment scope '\*', as users\[0\]\.targets\[0\] does",
        ),
        ({"users": ["ci"]}, r"users\[0\] must be a RotatedUser, got 'ci'"),
        ({"gitlab_url": "http://gitlab.example.com"}, r"gitlab_url must be the https:// base URL .*got 'http://gitlab.example.com' \(the scheme must be https\)"),
        ({"grace_period": cdk.Duration.hours(48), "rotation_period": cdk.Duration.days(2)}, r"grace_period \(48\) must be shorter than rotation_period \(2 days = 48 hours\)"),
        ({"grace_period": cdk.Duration.minutes(90)}, r"grace_period must be a whole number of hours, got 1 hour 30 minutes"),
        ({"rotation_period": 30}, r"rotation_period must be a Duration \(e.g. Duration.days\(...\)\), got 30"),
        ({"token_expiry_warning": cdk.Duration.days(400)}, r"token_expiry_warning must be a whole number of days from 1 to 365, got 400"),
        ({"gitlab_max_requests_per_minute": 0}, r"gitlab_max_requests_per_minute must be a whole number of requests from 1 to 2000, got 0"),
        ({"schedule": events.Schedule.expression("cron(0 6 * * MON *)")}, r"schedule must be an EventBridge schedule .*exactly one of"),
        ({"vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)}, r"vpc_subnets and security_groups need vpc"),
        ({"reserved_concurrent_executions": 0}, r"reserved_concurrent_executions must be a whole number >= 1, or null, got 0"),
        ({"notification_email": "nobody"}, r"notification_email must be an e-mail address"),
        ({"heartbeat_hours": 169}, r"heartbeat_hours must be a whole number of hours from 0 to 168, or null, got 169"),
        (
            {"schedule": events.Schedule.expression("cron(0 6 1 * ? *)")},
            r"the schedule 'cron\(0 6 1 \* \? \*\)' can stay silent for 30 whole days, longer than CloudWatch can watch .*set heartbeat_hours",
        ),
        (
            {"rotate_gitlab_token": True, "reserved_concurrent_executions": None},
            r"rotate_gitlab_token needs reserved_concurrent_executions 1 \(runs never overlap: .*revoke the new one\), got None",
        ),
        ({"timeout": cdk.Duration.minutes(20)}, r"timeout must be a whole number of seconds from 30 to 900, got 1200"),
    ],
)
def test_rotation_props_are_refused(stack: cdk.Stack, props: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        GitLabKeyRotation(stack, "Rotation", **{"users": [USER], "gitlab_url": "https://gitlab.com", **props})


def test_ca_bundle_must_be_pem(stack: cdk.Stack, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match=r"gitlab_ca_bundle must be the path of a PEM file .*ca.txt: it holds no '-----BEGIN CERTIFICATE-----"):
        GitLabKeyRotation(stack, "Rotation", users=[USER], gitlab_url="https://gitlab.com", gitlab_ca_bundle=not_pem)


def test_every_bad_prop_is_listed_at_once(stack: cdk.Stack) -> None:
    from gitlab_key_rotation.lambda_src.contract import SettingsError

    with pytest.raises(SettingsError) as caught:
        GitLabKeyRotation(stack, "Rotation", users=[USER], gitlab_url="https://gitlab.com/api/v4", memory_size=64, dry_run="no")
    assert [p.split(" ")[0] for p in caught.value.problems] == ["gitlab_url", "dry_run", "memory_size"]


def test_environment_size_counts_unresolved_arns_generously(stack: cdk.Stack) -> None:
    from gitlab_key_rotation.monitored_function import TOKEN_STAND_IN_BYTES, environment_size

    topic = sns.Topic(stack, "T")
    assert environment_size({"A": topic.topic_arn}) == 1 + TOKEN_STAND_IN_BYTES
    assert environment_size({"U": "ignored"}, {"U": [{"arn": topic.topic_arn}]}) == 1 + len('[{"arn":""}]') + TOKEN_STAND_IN_BYTES


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"groups": []}, r"groups must name at least one IAM group"),
        ({"groups": "developers"}, r"groups must be a list, .*got 'developers' \(not a list\)"),
        ({"groups": ["dev ops"]}, r"groups must be a list, each item an IAM group name .*\(item \[0\] 'dev ops' is not"),
        ({"groups": ["a", "A"]}, r"groups must be .*\(item \[1\] 'A' repeats item \[0\]\)"),
        ({"exempt_users": ["a", "a"]}, r"exempt_users must be .*\(item \[1\] 'a' repeats item \[0\]\)"),
        ({"action": "disable"}, r"action must be one of 'delete', 'deactivate', got 'disable'"),
        ({"max_workers": 0}, r"max_workers must be a whole number from 1 to 64, got 0"),
        ({"max_workers": 65}, r"max_workers must be a whole number from 1 to 64, got 65"),
        ({"min_key_age": cdk.Duration.hours(36)}, r"min_key_age must be a whole number of days, got 1 day 12 hours"),
        ({"exempt_tag_key": "aws:exempt"}, r"exempt_tag_key must be an IAM tag key .*the prefix 'aws:' is reserved"),
        ({"schedule": events.Schedule.expression("cron(55 23 ? * FRI)")}, r"schedule must be an EventBridge schedule .*5 fields instead of 6"),
    ],
)
def test_revocation_props_are_refused(stack: cdk.Stack, props: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        DeveloperKeyRevocation(stack, "Revocation", **{"groups": ["developers"], **props})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: GitLabTarget(kind="namespace", id="g"), r"kind must be one of 'group', 'project', got 'namespace'"),
        (lambda: GitLabTarget(kind="group", id="g", access_key_id_variable="X", secret_access_key_variable="X"), r"must differ, both are 'X'"),
        (lambda: GitLabTarget(kind="group", id="g", environment_scope=""), r"environment_scope must be '\*' \(every environment\)"),
        (lambda: GitLabTarget(kind="group", id="g", description="x" * 256), r"description must be a string of 0 to 255 characters"),
        (lambda: GitLabTarget(kind="project", id="https://gitlab.com/grp/proj"), r"it is a URL: give the path after the host"),
        (lambda: RotatedUser(iam_user="ci", targets=()), r"targets must be a non-empty list of objects"),
        (lambda: RotatedUser(iam_user="x" * 65, targets=(GitLabTarget(kind="group", id="g"),)), r"iam_user must be an IAM user name of 1 to 64"),
    ],
)
def test_target_and_user_values_are_refused(make, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        make()


def test_the_construct_and_the_lambda_share_one_target_class_declared_by_the_contract() -> None:
    import dataclasses

    from gitlab_key_rotation.lambda_src.contract.settings import TARGET

    assert GitLabTarget is RuntimeGitLabTarget
    assert [(f.name, f.default) for f in dataclasses.fields(GitLabTarget)] == [
        (s.name, dataclasses.MISSING if s.default is REQUIRED else s.default) for s in TARGET.fields
    ]


def test_layer_build_follows_architecture_and_runtime() -> None:
    from aws_cdk import aws_lambda as lambda_

    from gitlab_key_rotation.requests_layer import PipInstallBundling, pip_platform, python_version

    assert pip_platform(lambda_.Architecture.ARM_64) == "manylinux2014_aarch64"
    assert pip_platform(lambda_.Architecture.X86_64) == "manylinux2014_x86_64"
    assert python_version(lambda_.Runtime.PYTHON_3_14) == "3.14"
    with pytest.raises(ValueError, match=r"runtime must be a Python 3 Lambda runtime, got 'nodejs22.x'"):
        python_version(lambda_.Runtime.NODEJS_22_X)
    command = PipInstallBundling(Path("req.txt"), "manylinux2014_aarch64", "3.14").command("/out")
    assert command[1:] == [
        "-m", "pip", "install", "--requirement", "req.txt", "--platform", "manylinux2014_aarch64", "--only-binary=:all:",
        "--python-version", "3.14", "--implementation", "cp", "--target", "/out/python", "--no-compile", "--quiet",
    ]  # fmt: skip
