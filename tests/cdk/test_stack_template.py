"""The default stack (cdk.json's config), resource by resource: properties, policy actions AND
resources, schedules, alarms, and the Lambda environments read back through the Lambdas' own
settings parsers."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation.gitlab_key_rotation import GITLAB_TOKEN_PLACEHOLDER
from gitlab_key_rotation.lambda_src.contract import REVOCATION_ENVIRONMENT, ROTATION_ENVIRONMENT
from tests.cdk.synth import Synthesis, code_dir, lambda_env, resources, stand_in_arns

USER_ARN = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":user/ci-deployer"]]}


def iam_arn(rest: str) -> dict:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":{rest}"]]}


@pytest.fixture(scope="module")
def template(default_synth: Synthesis) -> Template:
    return Template.from_json(default_synth.template())


@pytest.fixture(scope="module")
def raw(default_synth: Synthesis) -> dict:
    return default_synth.template()


def logical_id(raw: dict, resource_type: str, contains: str) -> str:
    (found,) = [k for k in resources(raw, resource_type) if contains in k]
    return found


def logical_id_of_function(raw: dict, handler: str) -> str:
    (found,) = [k for k, r in resources(raw, "AWS::Lambda::Function").items() if r["Properties"]["Handler"] == handler]
    return found


def function(raw: dict, handler: str) -> dict:
    (found,) = [r for r in resources(raw, "AWS::Lambda::Function").values() if r["Properties"]["Handler"] == handler]
    return found


def policy_statements(raw: dict, role_contains: str) -> list[dict]:
    (policy,) = [
        r for r in resources(raw, "AWS::IAM::Policy").values() if role_contains in r["Properties"]["Roles"][0]["Ref"]
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_resource_counts(template: Template) -> None:
    for resource_type, count in {
        "AWS::Lambda::Function": 2,
        "AWS::Lambda::LayerVersion": 1,
        "AWS::IAM::Role": 2,
        "AWS::IAM::Policy": 2,
        "AWS::SecretsManager::Secret": 2,
        "AWS::Events::Rule": 2,
        "AWS::SQS::Queue": 2,
        "AWS::Logs::LogGroup": 2,
        "AWS::Logs::MetricFilter": 0,
        "AWS::CloudWatch::Alarm": 8,
        "AWS::CloudWatch::Dashboard": 2,
        "AWS::SNS::Topic": 1,
        "AWS::SNS::Subscription": 1,
        "AWS::IAM::ManagedPolicy": 0,
    }.items():
        template.resource_count_is(resource_type, count)


def test_stateful_logical_ids_are_pinned(raw: dict) -> None:
    # Renaming a construct on these paths would replace the secrets and lose the keys' state.
    assert "RotationGitLabToken54FF3006" in raw["Resources"]
    assert "RotationStatecideployerBF057DB3" in raw["Resources"]


@pytest.mark.parametrize(
    ("handler", "timeout", "memory", "reserved"),
    [(ROTATION_HANDLER, 300, 256, 1), (REVOCATION_HANDLER, 600, 512, Match.absent())],
)
def test_functions(template: Template, handler: str, timeout: int, memory: int, reserved: object) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler,
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Timeout": timeout,
            "MemorySize": memory,
            "ReservedConcurrentExecutions": reserved,
            "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "LogGroup": {"Ref": Match.any_value()}},
        },
    )


def test_each_function_has_its_own_code_asset_with_its_settings(raw: dict, default_synth: Synthesis) -> None:
    keys = {function(raw, h)["Properties"]["Code"]["S3Key"] for h in (ROTATION_HANDLER, REVOCATION_HANDLER)}
    assert len(keys) == 2
    for handler in (ROTATION_HANDLER, REVOCATION_HANDLER):
        root = code_dir(default_synth, "KeyRotationStack", logical_id_of_function(raw, handler))
        assert sorted(p.name for p in root.iterdir()) == ["gitlab_key_rotation", "settings.json"]


def test_requests_layer_on_the_rotation_function_only(raw: dict) -> None:
    layer_id = logical_id(raw, "AWS::Lambda::LayerVersion", "RequestsLayer")
    layer = raw["Resources"][layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.14"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert function(raw, ROTATION_HANDLER)["Properties"]["Layers"] == [{"Ref": layer_id}]
    assert "Layers" not in function(raw, REVOCATION_HANDLER)["Properties"]


def test_async_retries_off_with_failed_runs_queue(template: Template, raw: dict) -> None:
    for queue_id in resources(raw, "AWS::SQS::Queue"):
        template.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig",
            {
                "MaximumRetryAttempts": 0,
                "Qualifier": "$LATEST",
                "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
            },
        )
    template.resource_properties_count_is("AWS::SQS::Queue", {"SqsManagedSseEnabled": True}, 2)
    template.resource_properties_count_is(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
        2,
    )


def test_log_groups_have_retention(template: Template) -> None:
    template.resource_properties_count_is("AWS::Logs::LogGroup", {"RetentionInDays": 90}, 2)


@pytest.mark.parametrize(
    ("handler", "expression"),
    [("rotation", "cron(0 6-18 ? * MON-FRI *)"), ("revocation", "cron(55 23 ? * FRI *)")],
)
def test_schedules_target_their_function_with_the_queue_as_dlq(raw: dict, handler: str, expression: str) -> None:
    function_id = next(k for k, v in resources(raw, "AWS::Lambda::Function").items() if v["Properties"]["Handler"].startswith(f"gitlab_key_rotation.lambda_src.{handler}."))
    (rule,) = [
        r["Properties"]
        for r in resources(raw, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert rule["ScheduleExpression"] == expression
    assert rule["State"] == "ENABLED"
    target = rule["Targets"][0]
    assert "Input" not in target  # the scheduled event itself
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 7200, "MaximumRetryAttempts": 3}
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith(handler.capitalize())


def test_roles_trust_lambda_and_carry_no_managed_policy(raw: dict) -> None:
    for role in resources(raw, "AWS::IAM::Role").values():
        props = role["Properties"]
        assert props["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]
        assert "ManagedPolicyArns" not in props
        assert "Policies" not in props


def test_rotation_policy_is_exactly_scoped(raw: dict) -> None:
    statements = policy_statements(raw, "RotationJobRole")
    log_group = logical_id(raw, "AWS::Logs::LogGroup", "Rotation")
    queue = logical_id(raw, "AWS::SQS::Queue", "Rotation")
    token = logical_id(raw, "AWS::SecretsManager::Secret", "GitLabToken")
    state = logical_id(raw, "AWS::SecretsManager::Secret", "State")
    topic = logical_id(raw, "AWS::SNS::Topic", "Notifications")
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        ("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"], {"Fn::GetAtt": [log_group, "Arn"]}),
        ("Allow", ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"], {"Fn::GetAtt": [queue, "Arn"]}),
        (
            "Allow",
            ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"],
            USER_ARN,
        ),
        ("Allow", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], {"Ref": token}),
        (
            "Allow",
            [
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            {"Ref": state},
        ),
        ("Allow", "sns:Publish", {"Ref": topic}),
    ]
    assert all("Condition" not in s for s in statements)


def test_revocation_policy_is_scoped_and_denies_the_rotation_user(raw: dict) -> None:
    statements = policy_statements(raw, "RevocationJobRole")
    log_group = logical_id(raw, "AWS::Logs::LogGroup", "Revocation")
    queue = logical_id(raw, "AWS::SQS::Queue", "Revocation")
    topic = logical_id(raw, "AWS::SNS::Topic", "Notifications")
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        ("Allow", ["logs:CreateLogStream", "logs:PutLogEvents"], {"Fn::GetAtt": [log_group, "Arn"]}),
        ("Allow", ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"], {"Fn::GetAtt": [queue, "Arn"]}),
        ("Allow", "iam:GetGroup", [iam_arn("group/developers"), iam_arn("group/contractors")]),
        ("Allow", ["iam:ListAccessKeys", "iam:DeleteAccessKey", "iam:ListUserTags"], iam_arn("user/*")),
        (
            "Deny",
            ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:TagUser", "iam:UntagUser"],
            [iam_arn("user/ci-deployer"), iam_arn("user/*/ci-deployer")],
        ),
        ("Allow", "sns:Publish", {"Ref": topic}),
    ]


def test_secrets_start_with_non_secret_values_and_are_retained(template: Template) -> None:
    template.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "Properties": {"SecretString": json.dumps({"GITLAB_TOKEN": GITLAB_TOKEN_PLACEHOLDER}, separators=(",", ":"))},
            "DeletionPolicy": "Retain",
        },
    )
    template.has_resource(
        "AWS::SecretsManager::Secret",
        {"Properties": {"SecretString": "{}", "Description": Match.string_like_regexp("ci-deployer")}, "DeletionPolicy": "Retain"},
    )


def test_alarms_go_to_the_topic(raw: dict) -> None:
    topic = logical_id(raw, "AWS::SNS::Topic", "Notifications")
    alarms = resources(raw, "AWS::CloudWatch::Alarm").values()
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    metrics = sorted((a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms)
    assert metrics == [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("GitLabKeyRotation", "CurrentKeyAgeDays"),
        ("GitLabKeyRotation", "GitLabTokenDaysLeft"),
        ("GitLabKeyRotation", "RunSucceeded"),
        ("GitLabKeyRotation", "RunSucceeded"),
    ]


def _alarm(raw: dict, id_part: str) -> dict:
    (found,) = [v["Properties"] for k, v in resources(raw, "AWS::CloudWatch::Alarm").items() if id_part in k]
    return found


def _function_ref(raw: dict, name_part: str) -> dict:
    return {"Ref": logical_id(raw, "AWS::Lambda::Function", name_part)}


def test_token_expiry_alarm_reads_the_runs_metric(raw: dict) -> None:
    alarm = _alarm(raw, "RotationTokenExpiryAlarm")
    assert alarm["Namespace"] == "GitLabKeyRotation" and alarm["MetricName"] == "GitLabTokenDaysLeft"
    assert alarm["Dimensions"] == [{"Name": "Function", "Value": _function_ref(raw, "RotationJobFunction")}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Minimum", 86400, 30)
    assert alarm["ComparisonOperator"] == "LessThanOrEqualToThreshold" and alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("id_part", "function_part", "period", "periods"),
    [
        # cron(0 6-18 ? * MON-FRI *): 59 silent UTC hours from Friday 19:00 to Monday 05:00, + 1, + a 2-hour margin
        ("RotationJobHeartbeatAlarm", "RotationJobFunction", 3600, 62),
        # cron(55 23 ? * FRI *): 6 silent UTC days between Fridays, + 1: CloudWatch's 7-day limit exactly
        ("RevocationJobHeartbeatAlarm", "RevocationJobFunction", 86400, 7),
    ],
)
def test_heartbeats_treat_silence_as_breaching(raw: dict, id_part: str, function_part: str, period: int, periods: int) -> None:
    alarm = _alarm(raw, id_part)
    assert alarm["MetricName"] == "RunSucceeded" and alarm["Statistic"] == "Sum"
    assert alarm["Dimensions"] == [{"Name": "Function", "Value": _function_ref(raw, function_part)}]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (period, periods, periods)
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 7 * 86400  # CloudWatch's limit
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "UTC"}}


def test_key_age_alarm_fires_past_period_grace_and_the_longest_gap(raw: dict) -> None:
    alarm = _alarm(raw, "RotationKeyAgeAlarm")
    assert alarm["MetricName"] == "CurrentKeyAgeDays" and alarm["Statistic"] == "Maximum"
    assert alarm["Dimensions"] == [{"Name": "Function", "Value": _function_ref(raw, "RotationJobFunction")}]
    # 30 days + 24 hours of grace + 1 day + the schedule's longest gap (60 hours over the weekend)
    assert alarm["Threshold"] == 30 + 1 + 1 + 2.5 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"


def test_dashboards_show_runs_key_ages_revocations_token_and_the_alarms(raw: dict) -> None:
    bodies = {
        k: json.dumps(v["Properties"]["DashboardBody"]) for k, v in resources(raw, "AWS::CloudWatch::Dashboard").items()
    }
    (rotation,) = [b for k, b in bodies.items() if k.startswith("Rotation")]
    (revocation,) = [b for k, b in bodies.items() if k.startswith("Revocation")]
    for metric in ("RunSucceeded", "RunFailed", "Rotations", "Rollbacks", "GitLabTokenDaysLeft", "CurrentKeyAgeDays"):
        assert metric in rotation
    assert 'IamUser\\",\\"ci-deployer' in rotation  # one line per user
    for metric in ("RunSucceeded", "RunFailed", "KeysRevoked", "MembersScanned"):
        assert metric in revocation
    for alarm_id in ("ErrorsAlarm", "FailedRunsAlarm", "HeartbeatAlarm", "KeyAgeAlarm", "TokenExpiryAlarm"):
        assert logical_id(raw, "AWS::CloudWatch::Alarm", "Rotation" + ("Job" if alarm_id[0] in "EFH" else "") + alarm_id) in rotation
    assert logical_id(raw, "AWS::CloudWatch::Alarm", "RevocationJobHeartbeatAlarm") in revocation


def test_topic_is_ssl_only_with_the_configured_email(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}},
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "platform-team@example.com"})


def test_rotation_settings_are_read_by_the_lambda(raw: dict, default_synth: Synthesis) -> None:
    from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings

    refs = stand_in_arns(raw)
    settings = RotationSettings.load(lambda_env(default_synth, "KeyRotationStack", logical_id_of_function(raw, ROTATION_HANDLER), refs))
    assert settings.gitlab_url == "https://gitlab.com"
    assert settings.gitlab_token_secret_arn == refs["RotationGitLabToken54FF3006"]
    assert settings.notification_topic_arn.startswith("arn:aws:sns:")
    assert (settings.rotation_period_days, settings.grace_period_hours, settings.deletion_window_days) == (30, 24, 7)
    assert settings.gitlab_ca_bundle is None and not settings.dry_run and not settings.rotate_gitlab_token
    (user,) = settings.users
    assert user.iam_user == "ci-deployer"
    assert user.state_secret_arn == refs["RotationStatecideployerBF057DB3"]
    assert [(t.kind, t.id, t.environment_scope, t.access_key_id_variable) for t in user.targets] == [
        ("group", "example-org/platform", "*", "AWS_ACCESS_KEY_ID"),
        ("project", "example-org/platform/deploy-tools", "production", "PROD_AWS_ACCESS_KEY_ID"),
    ]


def test_revocation_settings_are_read_by_the_lambda(raw: dict, default_synth: Synthesis) -> None:
    from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings

    env = lambda_env(default_synth, "KeyRotationStack", logical_id_of_function(raw, REVOCATION_HANDLER), stand_in_arns(raw))
    settings = RevocationSettings.load(env)
    assert settings.groups == ("developers", "contractors")
    assert settings.protected_users == frozenset({"ci-deployer"})
    assert settings.exempt_tag_key == "key-revocation:exempt"
    assert (settings.action, settings.min_key_age_days, settings.max_workers, settings.dry_run) == ("delete", 0, 16, False)


@pytest.mark.parametrize(("module", "names"), [("rotation", ROTATION_ENVIRONMENT), ("revocation", REVOCATION_ENVIRONMENT)])
def test_the_environment_holds_only_the_deploy_time_values_the_lambda_documents(raw: dict, module: str, names: tuple) -> None:
    import importlib
    import re

    documented = set(re.findall(r"^``([A-Z_]+)``", importlib.import_module(f"gitlab_key_rotation.lambda_src.{module}.settings").__doc__, re.M))
    variables = function(raw, f"gitlab_key_rotation.lambda_src.{module}.handler.handler")["Properties"]["Environment"]["Variables"]
    optional = {"MEMBER_ROLE_ARN_PATTERN"}  # only in organization mode (tests/cdk/test_organization.py checks it)
    assert set(variables) == set(names) and documented - optional == set(names)


def test_the_rotation_lambda_recognises_the_created_placeholder() -> None:
    from gitlab_key_rotation.lambda_src.rotation.errors import TokenSecretError
    from gitlab_key_rotation.lambda_src.rotation.token_secret import read_token

    with pytest.raises(TokenSecretError, match="still holds the placeholder GITLAB_TOKEN"):
        read_token(json.dumps({"GITLAB_TOKEN": GITLAB_TOKEN_PLACEHOLDER}), "arn:aws:secretsmanager:eu-west-1:1:secret:t")
