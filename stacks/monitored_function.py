"""A scheduled Lambda function with everything it needs to run safely and never fail silently.

Used by both ``GitLabKeyRotation`` and ``DeveloperKeyRevocation``: its own role with no managed
policy (log permissions on its own log group only), an explicit log group with retention, JSON
logs, asynchronous retries off with an SSL-only encrypted SQS queue as on-failure destination
(the rule's undeliverable events land there too), an EventBridge rule, and alarms on the
function's errors, on the queue and, when the job stops succeeding at all, a heartbeat
(``stacks.observability``).
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from aws_cdk import Acknowledgment, Duration, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .assets import lambda_code
from .observability import heartbeat_alarm, heartbeat_window
from .lambda_src.contract import SETTINGS_FILE

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64

# Lambda rejects a function whose environment (keys and values) exceeds 4 KB.
ENVIRONMENT_LIMIT_BYTES = 4096
# An unresolved value (an ARN that CloudFormation fills in) is counted as this many bytes: more than
# any ARN of a CloudFormation-named secret or topic in any partition and region.
TOKEN_STAND_IN_BYTES = 200


def environment_size(environment: Mapping[str, str], unresolved_values: Mapping[str, object] | None = None) -> int:
    """Bytes of the environment as Lambda counts them (keys plus values).

    ``unresolved_values`` gives, for a variable whose value is a token (such as a JSON document
    rendered with ``Stack.to_json_string``), the plain structure it renders; its tokens count as
    ``TOKEN_STAND_IN_BYTES``.
    """
    unresolved_values = unresolved_values or {}
    total = 0
    for key, value in environment.items():
        if key in unresolved_values:
            value = json.dumps(_stand_in_tokens(unresolved_values[key]), separators=(",", ":"))
        elif Token.is_unresolved(value):
            value = "x" * TOKEN_STAND_IN_BYTES
        total += len(key.encode()) + len(value.encode())
    return total


def _stand_in_tokens(value: object) -> object:
    if isinstance(value, str) and Token.is_unresolved(value):
        return "x" * TOKEN_STAND_IN_BYTES
    if isinstance(value, Mapping):
        return {k: _stand_in_tokens(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stand_in_tokens(v) for v in value]
    return value


class MonitoredFunction(Construct):
    """A function from its own code asset (``lambda_src`` plus its ``settings.json``), run by
    ``schedule``, watched by alarms. Only deploy-time values (ARNs) go into ``environment``.

    Created resources: ``role``, ``log_group``, ``dead_letter_queue``, ``function``, ``rule``,
    ``errors_alarm``, ``dead_letter_alarm``, ``heartbeat_alarm`` (None with ``heartbeat_hours=0``).
    ``alarms`` lists those that exist.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,  # noqa: A002
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        unresolved_environment: Mapping[str, object],
        settings_file: bytes,
        schedule: events.Schedule,
        topic: sns.ITopic,
        timeout: Duration,
        memory_size: int,
        reserved_concurrent_executions: int | None,
        log_retention: logs.RetentionDays,
        layers: Sequence[lambda_.ILayerVersion],
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        heartbeat_hours: int | None = None,
    ):
        super().__init__(scope, id)
        job = _job_name(handler)
        window = heartbeat_window(schedule.expression_string, heartbeat_hours, "heartbeat_hours")
        size = environment_size(environment, unresolved_environment)
        if size > ENVIRONMENT_LIMIT_BYTES:
            biggest = max(environment, key=lambda k: environment_size({k: environment[k]}, unresolved_environment))
            raise ValueError(
                f"the environment of {self.node.path} would take up to {size} bytes, over Lambda's limit of "
                f"{ENVIRONMENT_LIMIT_BYTES} (the largest variable is {biggest})"
            )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {job} Lambda; no managed policy, every statement scoped",
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, encryption_key=encryption_key)
        self.log_group.grant_write(self.role)
        if vpc is not None:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="PlaceNetworkInterfacesInTheVpc",
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
            Validations.of(self.role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason=(
                        "Lambda manages the function's network interfaces with these EC2 actions; "
                        "ec2:DescribeNetworkInterfaces works only on '*' and the interface ids are not known in advance."
                    ),
                )
            )

        self.dead_letter_queue = sqs.Queue(
            self,
            "FailedRuns",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter destination of the function and of its schedule rule.",
            )
        )

        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_code(extra_files={SETTINGS_FILE: settings_file}),
            handler=handler,
            role=self.role,
            environment=dict(environment),
            layers=list(layers),
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            retry_attempts=0,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=list(security_groups) if security_groups is not None else None,
        )

        self.rule = events.Rule(
            self,
            "Schedule",
            schedule=schedule,
            description=f"Runs the {job} Lambda (UTC)",
            targets=[
                events_targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=3,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

        alarm_action = cloudwatch_actions.SnsAction(topic)
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "ErrorsAlarm",
            alarm_description=f"The {job} Lambda failed: read its log group for the run's summary line and the error.",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "FailedRunsAlarm",
            alarm_description=(
                f"A run of the {job} Lambda failed, timed out, was throttled or could not be delivered: "
                "its event is in the failed-runs queue."
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.heartbeat_alarm = (
            heartbeat_alarm(
                self, "HeartbeatAlarm", function=self.function, job=job, period=window[0], evaluation_periods=window[1]
            )
            if window
            else None
        )
        self.alarms = [a for a in (self.errors_alarm, self.dead_letter_alarm, self.heartbeat_alarm) if a is not None]
        for alarm in self.alarms:
            alarm.add_alarm_action(alarm_action)


def _job_name(handler: str) -> str:
    """'rotation' for ``gitlab_key_rotation.lambda_src.rotation.handler.handler``."""
    return handler.removesuffix(".handler.handler").rpartition(".")[2]
