"""``GitLabKeyRotation``: rotates IAM machine users' access keys into GitLab CI/CD variables."""

from __future__ import annotations

import os
from typing import Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, RemovalPolicy, SecretValue, Stack, Validations
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
from .monitored_function import ARCHITECTURE, RUNTIME, MonitoredFunction
from .notifications import grant_publish, resolve_topic
from .observability import job_metric
from .schedule_gaps import UnsupportedSchedule, longest_gap
from .organization import DEFAULT_MEMBER_ROLE_NAME, ROTATION_SUFFIX, check_member_role_name, member_role_arn, member_role_arn_pattern
from .requests_layer import RequestsLayer
from .targets import RotatedUser
from .validation import check_at_least, check_cron, check_https_url

DEFAULT_ROTATION_SCHEDULE = "cron(0 6-18 ? * MON-FRI *)"
# The value the created token secret starts with; the rotation Lambda recognises it and asks the
# operator to put the real token in (README, "Deploy").
GITLAB_TOKEN_PLACEHOLDER = "PLACEHOLDER: put the GitLab token here, see the README section Deploy"
# The key-age alarm fires when a user's current key is older than the period + the grace period
# + this + the schedule's longest gap (a key that became due just before a silent weekend).
KEY_AGE_MARGIN_DAYS = 1

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

    The previous key stays Active for ``grace_period_hours`` after the new key reached every
    target, is then made Inactive, and is deleted ``deletion_window_days`` later.

    :param users: the IAM machine users and their GitLab targets (at least one user).
    :param gitlab_url: ``https://gitlab.com`` or the https URL of a self-managed GitLab.
    :param gitlab_token_secret: an existing secret whose JSON is ``{"GITLAB_TOKEN": "..."}``; default:
        a new secret holding a placeholder that the operator replaces after the first deploy.
    :param gitlab_ca_bundle: path of a PEM file to trust for a self-managed GitLab; shipped in a
        small layer. Default: the public CAs of the Lambda runtime (via ``certifi``).
    :param schedule: when to run (UTC). Default ``cron(0 6-18 ? * MON-FRI *)``: hourly in the
        working day, so grace windows end promptly and new keys appear while people are around.
    :param rotation_period_days: rotate when the current key is older (default 30).
    :param grace_period_hours: how long the previous key stays Active (default 24); less than the period.
    :param deletion_window_days: how long an Inactive previous key is kept for recovery (default 7).
    :param token_expiry_warning_days: warn (log, metric, alarm) from this many days before the
        GitLab token expires (default 30).
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
    :param timeout: default 5 minutes. :param memory_size: MB, default 256.
    :param log_retention: default three months.
    :param heartbeat_hours: the heartbeat alarm's window: None (default) derives it from the
        schedule (62 hours for the default one), 1 to 168 sets it, 0 turns the alarm off.
    :param member_role_name: users with an ``account`` are reached through the role
        ``/gitlab-key-rotation/<member_role_name>-rotation`` of that account (``MemberRoles``); the
        function may assume that role in those accounts only. Default ``KeyRotationMember``.

    Created resources: ``function``, ``role``, ``rule``, ``token_secret``, ``state_secrets`` (by IAM
    user name), ``topic``, ``dead_letter_queue``, ``log_group``, ``alarms`` (errors, failed runs,
    heartbeat, key age, token expiry), ``key_age_alarm``, ``token_expiry_alarm``, ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        users: Sequence[RotatedUser],
        gitlab_url: str,
        gitlab_token_secret: secretsmanager.ISecret | None = None,
        gitlab_ca_bundle: str | os.PathLike[str] | None = None,
        schedule: events.Schedule | None = None,
        rotation_period_days: int = 30,
        grace_period_hours: int = 24,
        deletion_window_days: int = 7,
        token_expiry_warning_days: int = 30,
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
        timeout: Duration = Duration.minutes(5),
        memory_size: int = 256,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        heartbeat_hours: int | None = None,
        member_role_name: str = DEFAULT_MEMBER_ROLE_NAME,
    ):
        super().__init__(scope, id_)
        users = _check_users(users)
        check_member_role_name(member_role_name, "member_role_name")
        member_accounts = sorted({user.account for user in users if user.account is not None})
        gitlab_url = check_https_url(gitlab_url, "gitlab_url")
        check_at_least(rotation_period_days, 1, "rotation_period_days")
        check_at_least(grace_period_hours, 0, "grace_period_hours")
        check_at_least(deletion_window_days, 0, "deletion_window_days")
        check_at_least(token_expiry_warning_days, 1, "token_expiry_warning_days")
        if grace_period_hours >= rotation_period_days * 24:
            raise ValueError(
                f"grace_period_hours ({grace_period_hours}) must be shorter than the rotation period "
                f"({rotation_period_days} days = {rotation_period_days * 24} hours)"
            )
        if schedule is None:
            schedule = events.Schedule.expression(DEFAULT_ROTATION_SCHEDULE)
        elif schedule.expression_string.startswith("cron("):
            check_cron(schedule.expression_string, "schedule")
        if rotate_gitlab_token and reserved_concurrent_executions != 1:
            raise ValueError(
                "rotate_gitlab_token needs reserved_concurrent_executions=1 (runs that never overlap): a run still "
                "using the old token while another rotates it would make GitLab revoke the new token too (reuse "
                f"detection); got {reserved_concurrent_executions}"
            )
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
        environment = {
            "GITLAB_URL": gitlab_url,
            "GITLAB_TOKEN_SECRET_ARN": self.token_secret.secret_arn,
            "ROTATION_PERIOD_DAYS": str(rotation_period_days),
            "GRACE_PERIOD_HOURS": str(grace_period_hours),
            "DELETION_WINDOW_DAYS": str(deletion_window_days),
            "TOKEN_EXPIRY_WARNING_DAYS": str(token_expiry_warning_days),
            "ROTATE_GITLAB_TOKEN": _flag(rotate_gitlab_token),
            "NOTIFICATION_TOPIC_ARN": self.topic.topic_arn,
            "NOTIFY_ON_SUCCESS": _flag(notify_on_success),
            "DRY_RUN": _flag(dry_run),
        }
        if gitlab_ca_bundle is not None:
            layers.append(GitLabCaBundleLayer(self, "GitLabCaBundle", pem_file=gitlab_ca_bundle))
            environment["GITLAB_CA_BUNDLE"] = CA_BUNDLE_PATH
        rotation_users = [
            {
                "iam_user": user.iam_user,
                "state_secret_arn": self.state_secrets[user.iam_user].secret_arn,
                "targets": [target.to_json() for target in user.targets],
                **({"account": user.account} if user.account is not None else {}),
            }
            for user in users
        ]
        if member_accounts:
            environment["MEMBER_ROLE_ARN_PATTERN"] = member_role_arn_pattern(member_role_name, ROTATION_SUFFIX)
        environment["ROTATION_USERS"] = Stack.of(self).to_json_string(rotation_users)

        job = MonitoredFunction(
            self,
            "Job",
            handler=ROTATION_HANDLER,
            description="Rotates IAM machine-user access keys into GitLab CI/CD variables",
            environment=environment,
            unresolved_environment={"ROTATION_USERS": rotation_users},
            schedule=schedule,
            topic=self.topic,
            timeout=timeout,
            memory_size=memory_size,
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
        if rotate_gitlab_token:
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

        self.token_expiry_alarm = self._token_expiry_alarm(token_expiry_warning_days)
        self.key_age_alarm = self._key_age_alarm(
            rotation_period_days + grace_period_hours / 24 + _schedule_margin_days(schedule.expression_string)
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


def _check_users(users: Sequence[RotatedUser]) -> tuple[RotatedUser, ...]:
    users = tuple(users)
    if not users:
        raise ValueError("users must name at least one IAM machine user to rotate")
    names: set[str] = set()
    slots: dict[tuple[str, str, str, str], str] = {}
    for user in users:
        if not isinstance(user, RotatedUser):
            raise ValueError(f"users must be RotatedUser objects, got {user!r}")
        if user.iam_user.lower() in names:
            raise ValueError(f"IAM user {user.iam_user!r} is listed twice in users (IAM names ignore case)")
        names.add(user.iam_user.lower())
        for slot in user.variable_slots:
            if slot in slots:
                kind, target_id, scope, variable = slot
                raise ValueError(
                    f"{kind} {target_id!r} variable {variable!r} at environment scope {scope!r} would receive the keys "
                    f"of both {slots[slot]!r} and {user.iam_user!r}: give each its own variable or scope"
                )
            slots[slot] = user.iam_user
    return users


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _acknowledge_rotation_outside_secrets_manager(secret: secretsmanager.Secret, reason: str) -> None:
    Validations.of(secret).acknowledge(Acknowledgment(id="AwsSolutions-SMG4", reason=reason))
