"""No 4 KB ceiling: one construct with 150 targets for a user, and one with 40 users, synthesize and
stay deployable. The environment (only ARNs) stays under Lambda's 4 KB, the role's inline policies
under IAM's 10,240-byte aggregate with the longest ARNs CloudFormation would give them, and the
Lambda reads every target and user from the settings.json in its code asset."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from gitlab_key_rotation import GitLabKeyRotation, GitLabTarget, RotatedUser
from gitlab_key_rotation.gitlab_key_rotation import GENERATED_SECRET_NAME_EXTRA
from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings
from gitlab_key_rotation.monitored_function import ENVIRONMENT_LIMIT_BYTES, environment_size
from tests.cdk.synth import SETTINGS_FILE, Synthesis, code_dir, render, resources, synthesize_app

# IAM: the aggregate size of a role's inline policies, whitespace not counted.
IAM_INLINE_POLICY_LIMIT_BYTES = 10_240
MANAGED_POLICY_LIMIT_BYTES = 6_144
# The longest pseudo parameters a deployment can have (GovCloud, a 12-digit account).
LONG_PSEUDO = {"AWS::Partition": "aws-us-gov", "AWS::AccountId": "123456789012", "AWS::Region": "us-gov-west-1"}
STACKS = {"ManyTargets": "Rotation", "ManyUsers": "Rotation"}


def build(app: cdk.App) -> list[cdk.Stack]:
    many_targets = cdk.Stack(app, "ManyTargets")
    targets = tuple(
        GitLabTarget(kind="project", id=f"platform/services/team-{i // 10}/service-{i:03d}", environment_scope="production")
        for i in range(150)
    )
    GitLabKeyRotation(many_targets, "Rotation", users=[RotatedUser(iam_user="ci-deployer", targets=targets)], gitlab_url="https://gitlab.example.com")
    many_users = cdk.Stack(app, "ManyUsers")
    users = [
        RotatedUser(
            iam_user=f"ci-deployer-{i:02d}",
            iam_path="/ci/machines/",
            targets=(GitLabTarget(kind="project", id=f"platform/app-{i:02d}"), GitLabTarget(kind="group", id=f"team-{i:02d}")),
        )
        for i in range(40)
    ]
    GitLabKeyRotation(many_users, "Rotation", users=users, gitlab_url="https://gitlab.example.com")
    return [many_targets, many_users]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesize_app(build, tmp_path_factory.mktemp("scale"), nag=False)


def longest_arns(template: dict) -> dict[str, str]:
    """Each secret's and topic's ARN at the longest CloudFormation would make it."""
    prefix = f"arn:{LONG_PSEUDO['AWS::Partition']}:secretsmanager:{LONG_PSEUDO['AWS::Region']}:{LONG_PSEUDO['AWS::AccountId']}:secret:"
    refs = {k: prefix + k + "-" + "x" * (GENERATED_SECRET_NAME_EXTRA - 1) for k in resources(template, "AWS::SecretsManager::Secret")}
    refs |= {k: f"arn:aws-us-gov:sns:us-gov-west-1:123456789012:{k}-{'x' * 12}" for k in resources(template, "AWS::SNS::Topic")}
    refs |= {k: f"arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:{k}-{'x' * 12}" for k in resources(template, "AWS::Logs::LogGroup")}
    refs |= {k: f"arn:aws-us-gov:sqs:us-gov-west-1:123456789012:{k}-{'x' * 12}" for k in resources(template, "AWS::SQS::Queue")}
    return refs


def function_id(template: dict) -> str:
    (found,) = resources(template, "AWS::Lambda::Function")
    return found


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_environment_stays_under_lambdas_4_kb(synth: Synthesis, stack: str) -> None:
    template = synth.template(stack)
    variables = render(template["Resources"][function_id(template)]["Properties"]["Environment"]["Variables"], longest_arns(template), LONG_PSEUDO)
    size = environment_size(variables)
    print(f"{stack}: environment {size} bytes with the longest ARNs")
    assert size < ENVIRONMENT_LIMIT_BYTES


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_policies_stay_under_iams_limits(synth: Synthesis, stack: str) -> None:
    """Inline policies: 10,240 bytes together. What CDK moves into overflow managed policies (it
    does past about 6 KB): 6,144 bytes each, at most 10 attached to a role (IAM's default quota)."""
    template = synth.template(stack)
    role_id = template["Resources"][function_id(template)]["Properties"]["Role"]["Fn::GetAtt"][0]
    refs = longest_arns(template)

    def size(document: dict) -> int:
        return len(json.dumps(render(document, refs, LONG_PSEUDO), separators=(",", ":")))

    inline = [p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]]
    managed = [p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::IAM::ManagedPolicy").values() if {"Ref": role_id} in p["Properties"]["Roles"]]
    print(f"{stack}: inline policies {sum(map(size, inline))} bytes, managed {[size(d) for d in managed]} bytes, with the longest ARNs")
    assert sum(map(size, inline)) < IAM_INLINE_POLICY_LIMIT_BYTES
    assert len(managed) <= 10 and all(size(d) <= MANAGED_POLICY_LIMIT_BYTES for d in managed)
    statements = [s for d in inline + managed for s in d["Statement"]]
    state = [s for s in statements if s.get("Sid") == "KeepRotationState"]
    assert sum(len(s["Resource"]) if isinstance(s["Resource"], list) else 1 for s in state) == len(
        [k for k in resources(template, "AWS::SecretsManager::Secret") if "State" in k]
    )  # every state secret by its own ARN, none by a wildcard


def test_the_lambda_reads_150_targets_from_its_asset(synth: Synthesis) -> None:
    settings = load(synth, "ManyTargets")
    (user,) = settings.users
    assert len(user.targets) == 150 and user.targets[149].id == "platform/services/team-14/service-149"


def test_the_lambda_reads_40_users_and_their_state_secrets(synth: Synthesis) -> None:
    template = synth.template("ManyUsers")
    settings = load(synth, "ManyUsers")
    assert [u.iam_user for u in settings.users] == [f"ci-deployer-{i:02d}" for i in range(40)]
    state_ids = [k for k in resources(template, "AWS::SecretsManager::Secret") if "State" in k]
    assert {u.state_secret_arn for u in settings.users} == {longest_arns(template)[k] for k in state_ids}
    assert all(f"State{u.iam_user.replace('-', '')}" in u.state_secret_arn for u in settings.users)  # each user its own


def load(synth: Synthesis, stack: str) -> RotationSettings:
    template = synth.template(stack)
    logical_id = function_id(template)
    variables = render(template["Resources"][logical_id]["Properties"]["Environment"]["Variables"], longest_arns(template), LONG_PSEUDO)
    root = code_dir(synth, stack, logical_id)
    assert Path(root, SETTINGS_FILE).is_file()
    return RotationSettings.load({**variables, "LAMBDA_TASK_ROOT": str(root)})
