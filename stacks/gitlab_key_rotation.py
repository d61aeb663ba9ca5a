"""``GitLabKeyRotation``: rotates IAM machine users' access keys into GitLab CI/CD variables."""

from __future__ import annotations

import os
from typing import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, Fn, RemovalPolicy, SecretValue, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from .assets import ROTATION_HANDLER
from .ca_bundle_layer import CA_BUNDLE_PATH, GitLabCaBundleLayer
from .lambda_src.contract import (
    ENV_MEMBER_ROLE_ARN_PATTERN,
    ENV_STATE_SECRET_ARN_PREFIX,
    ENV_STATE_SECRET_NAMES,
    ENV_TOKEN_SECRET_ARN,
    ENV_TOPIC_ARN,
    RotatedUser,
    SettingsError,
)
from .lambda_src.contract import settings as declared
from .monitored_function import ARCHITECTURE, RUNTIME, MonitoredFunction
from .notifications import grant_publish, resolve_topic
from .observability import job_metric
from .organization import ROTATION_SUFFIX, member_role_arn, member_role_arn_pattern
from .props import check_props, default_duration, settings_file
from .schedule_gaps import UnsupportedSchedule, longest_gap
from .requests_layer import RequestsLayer

DEFAULT_ROTATION_SCHEDULE = declared.DEFAULT_ROTATION_SCHEDULE
# The value the created token secret starts with; the rotation Lambda recognises it and asks the
# operator to put the real token in (README, "Deploy").
GITLAB_TOKEN_PLACEHOLDER = "PLACEHOLDER: put the GitLab token here, see the README section Deploy"
# The key-age alarm fires when a user's current key is older than the period + the grace period
# + this + the schedule's longest gap (a key that became due just before a silent weekend).
KEY_AGE_MARGIN_DAYS = 1
# A secret that CloudFormation names is "<logical id>-<12 random characters>", and its ARN adds
# "-<6 random characters>": the name part of a state secret ARN is this much longer than its logical id.
GENERATED_SECRET_NAME_EXTRA = 1 + 12 + 1 + 6

_KEY_ACTIONS = [
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
]
_STATE_SECRET_ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
]


def user_arn(scope: Construct, user: RotatedUser) -> str:
    """``arn:${Partition}:iam::${Account}:user<path><name>`` of the stack that holds ``scope``."""
    return Stack.of(scope).format_arn(
        service="iam",
        region="",
        resource="user",
        resource_name=user.iam_path.lstrip("/") + user.iam_user,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


class GitLabKeyRotation(Construct):
    """One Lambda that rotates the access keys of ``users`` and writes each new key into the
    CI/CD variables of that user's GitLab targets, on ``schedule``.

    The previous key stays Active for ``grace_period`` after the new key reached every
    target, is then made Inactive, and is deleted ``deletion_window_days`` later.

    :param users: the IAM machine users and their GitLab targets (at least one user).
    :param gitlab_url: ``https://gitlab.com`` or the https URL of a self-managed GitLab.
    :param gitlab_token_secret: an existing secret whose JSON is ``{"GITLAB_TOKEN": "..."}``; default:
        a new secret holding a placeholder that the operator replaces after the first deploy.
    :param gitlab_ca_bundle: path of a PEM file to trust for a self-managed GitLab; shipped in a
        small layer. Default: the public CAs of the Lambda runtime (via ``certifi``).
    :param schedule: when to run (UTC). Default ``cron(0 6-18 ? * MON-FRI *)``: hourly in the
        working day, so grace windows end promptly and new keys appear while people are around.
    :param rotation_period: rotate when the current key is older (default 30 days; whole days).
    :param grace_period: how long the previous key stays Active (default 24 hours; whole hours);
        shorter than the period.
    :param deletion_window: how long an Inactive previous key is kept for recovery (default 7 days).
    :param token_expiry_warning: warn (log, metric, alarm) this long before the GitLab token
        expires (default 30 days, at most 365: a token lives no longer).
    :param gitlab_max_requests_per_minute: the Lambda sends at most this many GitLab requests in
        any 60 seconds (default 80: under gitlab.com Free's 100 a minute, and 4,800 in a whole hour
        against its 5,000; 1 to 2,000).
    :param rotate_gitlab_token: let the Lambda rotate the GitLab token itself before it expires;
        grants it write access to the token secret (default False). Needs
        ``reserved_concurrent_executions=1``.
    :param notification_topic: where alarms and the Lambda's messages go; default: a new topic.
    :param notification_email: an address subscribed to the topic (it must confirm the subscription).
    :param notify_on_success: also publish a message after every successful rotation (default False).
    :param dry_run: the Lambda only reports what it would do (default False).
    :param encryption_key: a customer-managed KMS key for the secrets, the log group and a created
        topic; default: the AWS managed keys. The key's policy must let CloudWatch Logs use it.
    :param vpc: run the function in this VPC (e.g. to reach a GitLab on a private network); it then
        needs a route to GitLab and to the IAM, STS, Secrets Manager and SNS endpoints.
    :param vpc_subnets: subnets to use in ``vpc`` (default: the VPC's private subnets).
    :param security_groups: security groups of the function (default: a new one, all egress).
    :param reserved_concurrent_executions: default 1, so that two runs never overlap; None reserves
        nothing (for accounts whose concurrency quota is too small to reserve any).
    :param requests_layer: a layer providing ``requests``; default: a new ``RequestsLayer``.
    :param timeout: default 5 minutes (30 seconds to 15 minutes). :param memory_size: MB, default 256.
    :param log_retention: default three months.
    :param heartbeat_hours: the heartbeat alarm's window: None (default) derives it from the
        schedule (62 hours for the default one), 1 to 168 sets it, 0 turns the alarm off.
    :param member_role_name: users with an ``account`` are reached through the role
        ``/gitlab-key-rotation/<member_role_name>-rotation`` of that account (``MemberRoles``); the
        function may assume that role in those accounts only. Default ``KeyRotationMember``.

    Every value is checked by the settings contract (``gitlab_key_rotation.lambda_src.contract``),
    the rules the Lambda applies to its ``settings.json``; a ``ValueError`` lists every bad prop.

    Created resources: ``function``, ``role``, ``rule``, ``token_secret``, ``state_secrets`` (by IAM
    user name), ``topic``, ``dead_letter_queue``, ``log_group``, ``alarms`` (errors, failed runs,
    heartbeat, key age, token expiry), ``key_age_alarm``, ``token_expiry_alarm``, ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,  # noqa: A002 - aws-cdk-lib's Python constructs name it so
        *,
        users: Sequence[RotatedUser],
        gitlab_url: str,
        gitlab_token_secret: secretsmanager.ISecret | None = None,
        gitlab_ca_bundle: str | os.PathLike[str] | None = None,
        schedule: events.Schedule | None = None,
        rotation_period: Duration = default_duration(declared.ROTATION_PERIOD),
        grace_period: Duration = default_duration(declared.GRACE_PERIOD),
        deletion_window: Duration = default_duration(declared.DELETION_WINDOW),
        token_expiry_warning: Duration = default_duration(declared.TOKEN_EXPIRY_WARNING),
        gitlab_max_requests_per_minute: int = declared.MAX_REQUESTS_PER_MINUTE.default,
        rotate_gitlab_token: bool = False,
        notification_topic: sns.ITopic | None = None,
        notification_email: str | None = None,
        notify_on_success: bool = False,
        dry_run: bool = False,
        encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        reserved_concurrent_executions: int | None = 1,
        requests_layer: lambda_.ILayerVersion | None = None,
        timeout: Duration = default_duration(declared.ROTATION_TIMEOUT),
        memory_size: int = declared.ROTATION_MEMORY.default,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        heartbeat_hours: int | None = None,
        member_role_name: str = declared.DEFAULT_MEMBER_ROLE_NAME,
    ):
        super().__init__(scope, id)
        users = tuple(users) if isinstance(users, (list, tuple)) else users
        not_users = [f"users[{i}] must be a RotatedUser, got {u!r}" for i, u in enumerate(users) if not isinstance(u, RotatedUser)]
        if not_users or isinstance(users, str):
            raise SettingsError(not_users or [f"users must be a list of RotatedUser, got {users!r}"])
        values = check_props(
            declared.ROTATION_PROPS,
            {
                "users": [user.to_json() for user in users],
                "gitlab_url": gitlab_url,
                "gitlab_ca_bundle": None if gitlab_ca_bundle is None else str(gitlab_ca_bundle),
                "rotate_gitlab_token": rotate_gitlab_token,
                "token_expiry_warning": token_expiry_warning,
                "gitlab_max_requests_per_minute": gitlab_max_requests_per_minute,
                "schedule": schedule,
                "rotation_period": rotation_period,
                "grace_period": grace_period,
                "deletion_window": deletion_window,
                "notify_on_success": notify_on_success,
                "dry_run": dry_run,
                "timeout": timeout,
                "memory_size": memory_size,
                "notification_email": notification_email,
                "reserved_concurrent_executions": reserved_concurrent_executions,
                "heartbeat_hours": heartbeat_hours,
                "member_role_name": member_role_name,
            },
        )
        member_accounts = sorted({user.account for user in users if user.account is not None})
        if schedule is None:
            schedule = events.Schedule.expression(declared.DEFAULT_ROTATION_SCHEDULE)
        if vpc is None and (vpc_subnets is not None or security_groups is not None):
            raise ValueError("vpc_subnets and security_groups need vpc: pass the VPC the function runs in")

        self.topic = resolve_topic(
            self, "Notifications", topic=notification_topic, email=notification_email, encryption_key=encryption_key
        )

        self.token_secret = gitlab_token_secret or secretsmanager.Secret(
            self,
            "GitLabToken",
            description="GitLab API token (scope api) used to write CI/CD variables: replace the placeholder",
            secret_object_value={"GITLAB_TOKEN": SecretValue.unsafe_plain_text(GITLAB_TOKEN_PLACEHOLDER)},
            encryption_key=encryption_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        if gitlab_token_secret is None:
            _acknowledge_rotation_outside_secrets_manager(
                self.token_secret,
                "The GitLab token is rotated in GitLab (or by this Lambda with rotate_gitlab_token), "
                "not by a Secrets Manager rotation function.",
            )

        self.state_secrets: dict[str, secretsmanager.Secret] = {}
        for user in users:
            secret = secretsmanager.Secret(
                self,
                f"State-{user.iam_user}",
                description=f"Access-key rotation state of IAM user {user.iam_user} (AWSCURRENT/AWSPENDING/AWSPREVIOUS)",
                secret_string_value=SecretValue.unsafe_plain_text("{}"),
                encryption_key=encryption_key,
                removal_policy=RemovalPolicy.RETAIN,
            )
            _acknowledge_rotation_outside_secrets_manager(
                secret, "This secret records the key that this construct's own Lambda rotates on its schedule."
            )
            self.state_secrets[user.iam_user] = secret

        layers: list[lambda_.ILayerVersion] = [
            requests_layer or RequestsLayer(self, "RequestsLayer", runtime=RUNTIME, architecture=ARCHITECTURE)
        ]
        values["gitlab_ca_bundle"] = None
        if gitlab_ca_bundle is not None:
            layers.append(GitLabCaBundleLayer(self, "GitLabCaBundle", pem_file=values["gitlab_ca_bundle_file"]))
            values["gitlab_ca_bundle"] = CA_BUNDLE_PATH
        stack = Stack.of(self)
        state_secrets = [self.state_secrets[user.iam_user] for user in users]
        environment = {
            ENV_TOKEN_SECRET_ARN: self.token_secret.secret_arn,
            ENV_TOPIC_ARN: self.topic.topic_arn,
            ENV_STATE_SECRET_ARN_PREFIX: Fn.sub("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"),
            ENV_STATE_SECRET_NAMES: stack.to_json_string(
                [stack.split_arn(secret.secret_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name for secret in state_secrets]
            ),
        }
        # What the names can grow to once CloudFormation has named the secrets.
        longest_names = ["x" * (len(stack.resolve(stack.get_logical_id(secret.node.default_child))) + GENERATED_SECRET_NAME_EXTRA)
                         for secret in state_secrets]  # fmt: skip
        if member_accounts:
            environment[ENV_MEMBER_ROLE_ARN_PATTERN] = member_role_arn_pattern(member_role_name, ROTATION_SUFFIX)

        job = MonitoredFunction(
            self,
            "Job",
            handler=ROTATION_HANDLER,
            description="Rotates IAM machine-user access keys into GitLab CI/CD variables",
            environment=environment,
            unresolved_environment={ENV_STATE_SECRET_NAMES: longest_names},
            settings_file=settings_file(declared.ROTATION_RUNTIME, values),
            schedule=schedule,
            topic=self.topic,
            timeout=Duration.seconds(values["rotation_timeout_seconds"]),
            memory_size=values["rotation_memory_mb"],
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_retention=log_retention,
            layers=layers,
            encryption_key=encryption_key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            heartbeat_hours=heartbeat_hours,
        )
        self.function = job.function
        self.role = job.role
        self.rule = job.rule
        self.log_group = job.log_group
        self.dead_letter_queue = job.dead_letter_queue

        local_users = [user for user in users if user.account is None]
        if local_users:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="RotateMachineUserKeys",
                    actions=_KEY_ACTIONS,
                    resources=[user_arn(self, user) for user in local_users],
                )
            )
        if member_accounts:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AssumeMemberRotationRoles",
                    actions=["sts:AssumeRole"],
                    resources=[member_role_arn(account, member_role_name, ROTATION_SUFFIX) for account in member_accounts],
                )
            )
        self.token_secret.grant_read(self.role)
        if values["rotate_gitlab_token"]:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="StoreRotatedGitLabToken",
                    actions=["secretsmanager:PutSecretValue"],
                    resources=[self.token_secret.secret_arn],
                )
            )
            if self.token_secret.encryption_key is not None:
                self._grant_secret_key_use(self.token_secret.encryption_key)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="KeepRotationState",
                actions=_STATE_SECRET_ACTIONS,
                resources=[secret.secret_arn for secret in self.state_secrets.values()],
            )
        )
        if encryption_key is not None:
            self._grant_secret_key_use(encryption_key)
        grant_publish(self.topic, self.role)

        self.token_expiry_alarm = self._token_expiry_alarm(values["token_expiry_warning_days"])
        self.key_age_alarm = self._key_age_alarm(
            values["rotation_period_days"] + values["grace_period_hours"] / 24 + _schedule_margin_days(schedule.expression_string)
        )
        self.alarms = [*job.alarms, self.key_age_alarm, self.token_expiry_alarm]
        for alarm in (self.key_age_alarm, self.token_expiry_alarm):
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(users)

    def _grant_secret_key_use(self, key: kms.IKey) -> None:
        """What Secrets Manager needs of a customer-managed key on the caller's behalf: Decrypt to
        read a secret, GenerateDataKey to store a new version (no wildcard actions)."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseTheSecretsKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            )
        )

    def _token_expiry_alarm(self, warning_days: int) -> cloudwatch.Alarm:
        """Alarm while the runs report ``GitLabTokenDaysLeft`` at or under the warning threshold."""
        return cloudwatch.Alarm(
            self,
            "TokenExpiryAlarm",
            alarm_description=(
                f"The GitLab token expires in {warning_days} days or less: create a new token (scope api) and put it "
                "into the token secret as {\"GITLAB_TOKEN\": \"...\"}."
            ),
            metric=job_metric(self.function, "GitLabTokenDaysLeft", statistic="Minimum", period=Duration.days(1)),
            threshold=warning_days,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _key_age_alarm(self, threshold_days: float) -> cloudwatch.Alarm:
        """Alarm when the oldest current key of any user (``CurrentKeyAgeDays`` without the user
        dimension: the maximum over the users) is older than ``threshold_days``."""
        threshold_days = round(threshold_days, 2)
        return cloudwatch.Alarm(
            self,
            "KeyAgeAlarm",
            alarm_description=(
                f"A rotated user's current access key is older than {threshold_days} days (period + grace + margin): "
                "the runs happen but do not rotate it (a blocked or failing rotation, a target that refuses the key). "
                "The dashboard shows which user; its last run summary says why. See the README section 'Operating it'."
            ),
            metric=job_metric(self.function, "CurrentKeyAgeDays", statistic="Maximum"),
            threshold=threshold_days,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # no run: the heartbeat's business
        )

    def _dashboard(self, users: tuple[RotatedUser, ...]) -> cloudwatch.Dashboard:
        fn = self.function
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(14))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Key rotation alarms", alarms=self.alarms, width=24, height=3)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs per hour",
                left=[
                    job_metric(fn, "RunSucceeded", label="succeeded"),
                    job_metric(fn, "RunFailed", label="failed"),
                    job_metric(fn, "UsersFailed", label="users failed"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Rotations and rollbacks",
                left=[job_metric(fn, "Rotations", label="rotations"), job_metric(fn, "Rollbacks", label="rollbacks")],
                right=[job_metric(fn, "GitLabRequests", label="GitLab requests")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="GitLab token days left",
                left=[job_metric(fn, "GitLabTokenDaysLeft", statistic="Minimum", label="days left")],
                left_annotations=[self.token_expiry_alarm.to_annotation()],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Current key age per user (days)",
                left=[
                    job_metric(fn, "CurrentKeyAgeDays", statistic="Maximum", label=user.iam_user, IamUser=user.iam_user)
                    for user in users
                ],
                left_annotations=[self.key_age_alarm.to_annotation()],
                width=24,
            )
        )
        return dashboard


def _schedule_margin_days(expression: str) -> float:
    try:
        gap = longest_gap(expression)
    except UnsupportedSchedule:  # rate(): runs at least that often; a day of margin is plenty
        return KEY_AGE_MARGIN_DAYS
    return KEY_AGE_MARGIN_DAYS + round(gap.total_seconds() / 86400, 2)


def _acknowledge_rotation_outside_secrets_manager(secret: secretsmanager.Secret, reason: str) -> None:
    Validations.of(secret).acknowledge(Acknowledgment(id="AwsSolutions-SMG4", reason=reason))
