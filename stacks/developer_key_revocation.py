"""``DeveloperKeyRevocation``: every week, revokes the access keys of the humans in chosen IAM groups."""

from __future__ import annotations

from typing import Literal, Sequence

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .assets import REVOCATION_HANDLER
from .lambda_src.contract import ENV_MEMBER_ROLE_ARN_PATTERN, ENV_TOPIC_ARN
from .lambda_src.contract import settings as declared
from .monitored_function import MonitoredFunction
from .notifications import grant_publish, resolve_topic
from .observability import job_metric
from .organization import REVOCATION_SUFFIX, mark_deactivated_keys, member_role_arn, member_role_arn_pattern
from .props import check_props, default_duration, settings_file

DEFAULT_REVOCATION_SCHEDULE = declared.DEFAULT_REVOCATION_SCHEDULE
DEFAULT_EXEMPT_TAG_KEY = declared.DEFAULT_EXEMPT_TAG_KEY
_MUTATE_KEY_ACTIONS = ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]


class DeveloperKeyRevocation(Construct):
    """One Lambda that, on ``schedule``, deletes (or deactivates) the access keys of every member
    of ``groups``, except protected and exempt users.

    :param groups: names of the IAM groups whose members' keys are revoked (at least one).
    :param schedule: when to run (UTC). Default ``cron(55 23 ? * FRI *)``: Friday night.
    :param protected_users: IAM user names never touched, e.g. the rotation machine users; the
        role also carries an explicit Deny on their keys.
    :param exempt_users: IAM user names the operator exempts (checked by the Lambda only).
    :param exempt_groups: IAM groups whose members are exempt: one ``GetGroup`` per group and page,
        no call per member; a run that cannot read them completely stops before touching any key.
    :param exempt_tag_key: users carrying this IAM tag are skipped; ``""`` turns the check off.
    :param action: ``"delete"`` (default) or ``"deactivate"``: made Inactive and marked with the user
        tag ``key-revocation:deactivated:<key id>``, deleted by a run ``deactivation_grace`` later.
    :param deactivation_grace: in deactivate mode, how long a key stays Inactive before a run
        deletes it (default 6 days: with the weekly schedule, the next week's run; whole days, at least 1).
    :param min_key_age: spare keys younger than this (default 0 days: revoke every key; whole days).
    :param max_workers: users processed at once (default 16, at most 64).
    :param dry_run: only report what would be revoked (default False).
    :param notification_topic: where alarms and the failure summary go; default: a new topic.
    :param notification_email: an address subscribed to the topic.
    :param encryption_key: a customer-managed KMS key for the log group and a created topic.
    :param reserved_concurrent_executions: default None (reserve nothing).
    :param timeout: default 10 minutes. :param memory_size: MB, default 512.
    :param log_retention: default three months.
    :param heartbeat_hours: the heartbeat alarm's window: None (default) derives it from the
        schedule (7 UTC days for a weekly one), 1 to 168 hours sets it, 0 turns the alarm off.
    :param accounts: None (default): the function's own account, with its own role. A list of
        12-digit account ids, or ``"organization"`` (every ACTIVE account of the organization, or of
        ``organizational_unit_ids``, listed at each run, minus ``exclude_accounts``): each account is
        reached through its role ``/gitlab-key-rotation/<member_role_name>-revocation``
        (``MemberRoles``), and the function's own role gets no IAM permission of its own.
    :param organizational_unit_ids: with ``"organization"``: only the accounts under these OUs
        (nested OUs included). :param exclude_accounts: with ``"organization"``: accounts skipped.
    :param member_role_name: default ``KeyRotationMember``.
    :param account_workers: accounts handled at once (default 4, at most 16), each with
        ``max_workers`` users at once.

    Every value is checked by the settings contract (``gitlab_key_rotation.lambda_src.contract``),
    the rules the Lambda applies to its ``settings.json``; a ``ValueError`` lists every bad prop.

    Created resources: ``function``, ``role``, ``rule``, ``topic``, ``dead_letter_queue``,
    ``log_group``, ``alarms`` (errors, failed runs, heartbeat), ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,  # noqa: A002 - aws-cdk-lib's Python constructs name it so
        *,
        groups: Sequence[str],
        schedule: events.Schedule | None = None,
        protected_users: Sequence[str] = (),
        exempt_users: Sequence[str] = (),
        exempt_groups: Sequence[str] = (),
        exempt_tag_key: str = DEFAULT_EXEMPT_TAG_KEY,
        action: Literal["delete", "deactivate"] = "delete",
        deactivation_grace: Duration = default_duration(declared.DEACTIVATION_GRACE),
        min_key_age: Duration = default_duration(declared.MIN_KEY_AGE),
        max_workers: int = declared.MAX_WORKERS.default,
        dry_run: bool = False,
        notification_topic: sns.ITopic | None = None,
        notification_email: str | None = None,
        encryption_key: kms.IKey | None = None,
        reserved_concurrent_executions: int | None = None,
        timeout: Duration = default_duration(declared.REVOCATION_TIMEOUT),
        memory_size: int = declared.REVOCATION_MEMORY.default,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        heartbeat_hours: int | None = None,
        accounts: Sequence[str] | Literal["organization"] | None = None,
        organizational_unit_ids: Sequence[str] = (),
        exclude_accounts: Sequence[str] = (),
        member_role_name: str = declared.DEFAULT_MEMBER_ROLE_NAME,
        account_workers: int = declared.ACCOUNT_WORKERS.default,
    ):
        super().__init__(scope, id)
        values = check_props(
            declared.REVOCATION_PROPS,
            {
                "groups": groups,
                "schedule": schedule,
                "protected_users": protected_users,
                "exempt_users": exempt_users,
                "exempt_groups": exempt_groups,
                "exempt_tag_key": exempt_tag_key,
                "action": action,
                "deactivation_grace": deactivation_grace,
                "min_key_age": min_key_age,
                "max_workers": max_workers,
                "dry_run": dry_run,
                "timeout": timeout,
                "memory_size": memory_size,
                "notification_email": notification_email,
                "heartbeat_hours": heartbeat_hours,
                "accounts": accounts,
                "organizational_unit_ids": organizational_unit_ids,
                "exclude_accounts": exclude_accounts,
                "member_role_name": member_role_name,
                "account_workers": account_workers,
            },
        )
        groups, protected_users, accounts = values["groups"], values["protected_users"], values["accounts"]
        action, exempt_tag_key, exempt_groups = values["action"], values["exempt_tag_key"], values["exempt_groups"]
        if schedule is None:
            schedule = events.Schedule.expression(declared.DEFAULT_REVOCATION_SCHEDULE)

        self.topic = resolve_topic(
            self, "Notifications", topic=notification_topic, email=notification_email, encryption_key=encryption_key
        )
        environment = {ENV_TOPIC_ARN: self.topic.topic_arn}
        if accounts is not None:
            environment[ENV_MEMBER_ROLE_ARN_PATTERN] = member_role_arn_pattern(member_role_name, REVOCATION_SUFFIX)
        job = MonitoredFunction(
            self,
            "Job",
            handler=REVOCATION_HANDLER,
            description="Revokes the access keys of the members of chosen IAM groups",
            environment=environment,
            unresolved_environment={},
            settings_file=settings_file(declared.REVOCATION_RUNTIME, values),
            schedule=schedule,
            topic=self.topic,
            timeout=Duration.seconds(values["revocation_timeout_seconds"]),
            memory_size=values["revocation_memory_mb"],
            reserved_concurrent_executions=reserved_concurrent_executions,
            log_retention=log_retention,
            layers=[],  # the revocation code needs boto3 only, which the runtime provides
            encryption_key=encryption_key,
            heartbeat_hours=heartbeat_hours,
        )
        self.function = job.function
        self.role = job.role
        self.rule = job.rule
        self.log_group = job.log_group
        self.dead_letter_queue = job.dead_letter_queue
        self.alarms = job.alarms
        self.dashboard = self._dashboard()

        if accounts is None:
            self._grant_own_account(groups, exempt_groups, action, exempt_tag_key, protected_users)
        else:
            self._grant_member_accounts(accounts, member_role_name)
        grant_publish(self.topic, self.role)

    def _grant_member_accounts(self, accounts: Sequence[str] | str, member_role_name: str) -> None:
        """Assume the member revocation role of the listed accounts (of any account of the
        organization with ``"organization"``, plus reading the organization's accounts)."""
        stack = Stack.of(self)
        listed = accounts != "organization"
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AssumeMemberRevocationRoles",
                actions=["sts:AssumeRole"],
                resources=[
                    member_role_arn(account, member_role_name, REVOCATION_SUFFIX)
                    for account in (accounts if listed else ["*"])
                ],
            )
        )
        if listed:
            return
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListOrganizationAccounts",
                actions=[
                    "organizations:ListAccounts",
                    "organizations:ListAccountsForParent",
                    "organizations:ListOrganizationalUnitsForParent",
                ],
                resources=["*"],
            )
        )
        partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:{partition}:iam::*:role/gitlab-key-rotation/{member_role_name}{REVOCATION_SUFFIX}]",
                reason=(
                    "With accounts 'organization' the accounts are listed at run time; only the member "
                    "revocation role, by its path and name, may be assumed in any of them."
                ),
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="The Organizations list actions support no resource narrower than '*' for the whole organization.",
            ),
        )

    def _grant_own_account(
        self, groups: list[str], exempt_groups: list[str], action: str, exempt_tag_key: str, protected_users: list[str]
    ) -> None:
        stack = Stack.of(self)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListGroupMembers",
                actions=["iam:GetGroup"],
                resources=[_iam_arn(stack, "group", group) for group in dict.fromkeys(groups + exempt_groups)],
            )
        )
        user_actions = ["iam:ListAccessKeys", "iam:DeleteAccessKey"]
        if action == "deactivate":
            user_actions.append("iam:UpdateAccessKey")
        if exempt_tag_key or action == "deactivate":
            user_actions.append("iam:ListUserTags")
        any_user = _iam_arn(stack, "user", "*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(sid="RevokeMemberKeys", actions=user_actions, resources=[any_user])
        )
        if action == "deactivate":
            self.role.add_to_principal_policy(mark_deactivated_keys(any_user))
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_nag_arn(stack, 'user', '*')}]",
                reason=(
                    "Group members are only known at run time (iam:GetGroup); users outside the groups are "
                    "never touched by the code, and the rotation machine users are denied explicitly."
                ),
            )
        )
        if protected_users:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="NeverTouchProtectedUsers",
                    effect=iam.Effect.DENY,
                    actions=[*_MUTATE_KEY_ACTIONS, "iam:TagUser", "iam:UntagUser"],
                    resources=[
                        arn
                        for user in protected_users
                        # any IAM path: user/<name> and user/<path>/<name>
                        for arn in (_iam_arn(stack, "user", user), _iam_arn(stack, "user", f"*/{user}"))
                    ],
                )
            )

    def _dashboard(self) -> cloudwatch.Dashboard:
        fn, day = self.function, Duration.days(1)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(56))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Key revocation alarms", alarms=self.alarms, width=24, height=3)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs per day",
                left=[
                    job_metric(fn, "RunSucceeded", period=day, label="succeeded"),
                    job_metric(fn, "RunFailed", period=day, label="failed"),
                    job_metric(fn, "Errors", period=day, label="errors"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Keys revoked and members scanned per day",
                left=[job_metric(fn, "KeysRevoked", period=day, label="keys revoked")],
                right=[job_metric(fn, "MembersScanned", period=day, label="members scanned")],
                width=12,
            ),
        )
        return dashboard


def _iam_arn(stack: Stack, resource: str, name: str) -> str:
    return stack.format_arn(
        service="iam", region="", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def _nag_arn(stack: Stack, resource: str, name: str) -> str:
    """How cdk-nag spells ``_iam_arn``'s result in a finding id (pseudo parameters as ``<AWS::...>``)."""
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:{partition}:iam::{account}:{resource}/{name}"
