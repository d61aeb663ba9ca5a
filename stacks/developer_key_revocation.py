"""``DeveloperKeyRevocation``: every week, revokes the access keys of the humans in chosen IAM groups."""

from __future__ import annotations

import json
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
from .monitored_function import MonitoredFunction
from .notifications import grant_publish, resolve_topic
from .observability import job_metric
from .organization import (
    DEACTIVATED_TAG_PREFIX,
    DEFAULT_MEMBER_ROLE_NAME,
    REVOCATION_SUFFIX,
    check_account_ids,
    check_member_role_name,
    check_ou_ids,
    mark_deactivated_keys,
    member_role_arn,
    member_role_arn_pattern,
)
from .validation import check_at_least, check_cron, check_iam_name

DEFAULT_REVOCATION_SCHEDULE = "cron(55 23 ? * FRI *)"
DEFAULT_EXEMPT_TAG_KEY = "key-revocation:exempt"
# The revocation Lambda refuses more (lambda_src/revocation/settings.py, MAX_WORKERS_LIMIT).
MAX_WORKERS_LIMIT = 64
ACCOUNT_WORKERS_LIMIT = 16
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
        tag ``key-revocation:deactivated:<key id>``, deleted by a run ``deactivation_grace_days`` later.
    :param deactivation_grace_days: in deactivate mode, how long a key stays Inactive before a run
        deletes it (default 6: with the weekly schedule, the next week's run; at least 1).
    :param min_key_age_days: spare keys younger than this (default 0: revoke every key).
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

    Created resources: ``function``, ``role``, ``rule``, ``topic``, ``dead_letter_queue``,
    ``log_group``, ``alarms`` (errors, failed runs, heartbeat), ``dashboard``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        groups: Sequence[str],
        schedule: events.Schedule | None = None,
        protected_users: Sequence[str] = (),
        exempt_users: Sequence[str] = (),
        exempt_groups: Sequence[str] = (),
        exempt_tag_key: str = DEFAULT_EXEMPT_TAG_KEY,
        action: Literal["delete", "deactivate"] = "delete",
        deactivation_grace_days: int = 6,
        min_key_age_days: int = 0,
        max_workers: int = 16,
        dry_run: bool = False,
        notification_topic: sns.ITopic | None = None,
        notification_email: str | None = None,
        encryption_key: kms.IKey | None = None,
        reserved_concurrent_executions: int | None = None,
        timeout: Duration = Duration.minutes(10),
        memory_size: int = 512,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        heartbeat_hours: int | None = None,
        accounts: Sequence[str] | Literal["organization"] | None = None,
        organizational_unit_ids: Sequence[str] = (),
        exclude_accounts: Sequence[str] = (),
        member_role_name: str = DEFAULT_MEMBER_ROLE_NAME,
        account_workers: int = 4,
    ):
        super().__init__(scope, id_)
        check_member_role_name(member_role_name, "member_role_name")
        if accounts is not None and accounts != "organization":
            if isinstance(accounts, str):
                raise ValueError(f"accounts must be a list of 12-digit account ids or 'organization', got {accounts!r}")
            accounts = check_account_ids(list(accounts), "accounts")
            if not accounts:
                raise ValueError("accounts must name at least one account (or be None for the function's own account)")
        organizational_unit_ids = check_ou_ids(list(organizational_unit_ids), "organizational_unit_ids", allow_root=False)
        exclude_accounts = check_account_ids(list(exclude_accounts), "exclude_accounts")
        if accounts != "organization" and (organizational_unit_ids or exclude_accounts):
            raise ValueError("organizational_unit_ids and exclude_accounts need accounts='organization'")
        check_at_least(account_workers, 1, "account_workers")
        if account_workers > ACCOUNT_WORKERS_LIMIT:
            raise ValueError(f"account_workers must be at most {ACCOUNT_WORKERS_LIMIT}, got {account_workers}")
        groups = _names(groups, "groups", max_length=128)
        if not groups:
            raise ValueError("groups must name at least one IAM group whose members' keys are revoked")
        protected_users = _names(protected_users, "protected_users", max_length=64)
        exempt_users = _names(exempt_users, "exempt_users", max_length=64)
        exempt_groups = _names(exempt_groups, "exempt_groups", max_length=128)
        if action not in ("delete", "deactivate"):
            raise ValueError(f"action must be 'delete' or 'deactivate', got {action!r}")
        if not isinstance(exempt_tag_key, str) or len(exempt_tag_key) > 128:
            raise ValueError(f"exempt_tag_key must be an IAM tag key of at most 128 characters or '', got {exempt_tag_key!r}")
        if exempt_tag_key.lower().startswith(DEACTIVATED_TAG_PREFIX):
            raise ValueError(f"exempt_tag_key must not start with {DEACTIVATED_TAG_PREFIX!r} (the revocation's own tags), got {exempt_tag_key!r}")
        check_at_least(deactivation_grace_days, 1, "deactivation_grace_days")
        check_at_least(min_key_age_days, 0, "min_key_age_days")
        check_at_least(max_workers, 1, "max_workers")
        if max_workers > MAX_WORKERS_LIMIT:
            raise ValueError(f"max_workers must be at most {MAX_WORKERS_LIMIT} (more only earns IAM throttling), got {max_workers}")
        if schedule is None:
            schedule = events.Schedule.expression(DEFAULT_REVOCATION_SCHEDULE)
        elif schedule.expression_string.startswith("cron("):
            check_cron(schedule.expression_string, "schedule")

        self.topic = resolve_topic(
            self, "Notifications", topic=notification_topic, email=notification_email, encryption_key=encryption_key
        )
        environment = {
            "REVOCATION_GROUPS": _json_list(groups),
            "PROTECTED_USERS": _json_list(protected_users),
            "EXEMPT_USERS": _json_list(exempt_users),
            "EXEMPT_GROUPS": _json_list(exempt_groups),
            "EXEMPT_TAG_KEY": exempt_tag_key,
            "REVOCATION_ACTION": action,
            "DEACTIVATION_GRACE_DAYS": str(deactivation_grace_days),
            "MIN_KEY_AGE_DAYS": str(min_key_age_days),
            "MAX_WORKERS": str(max_workers),
            "NOTIFICATION_TOPIC_ARN": self.topic.topic_arn,
            "DRY_RUN": "true" if dry_run else "false",
        }
        if accounts is not None:
            environment["REVOCATION_ACCOUNTS"] = (
                accounts if accounts == "organization" else _json_list(list(accounts))
            )
            environment["MEMBER_ROLE_ARN_PATTERN"] = member_role_arn_pattern(member_role_name, REVOCATION_SUFFIX)
            environment["ACCOUNT_WORKERS"] = str(account_workers)
            if organizational_unit_ids:
                environment["ORGANIZATIONAL_UNIT_IDS"] = _json_list(list(organizational_unit_ids))
            if exclude_accounts:
                environment["EXCLUDE_ACCOUNTS"] = _json_list(list(exclude_accounts))
        job = MonitoredFunction(
            self,
            "Job",
            handler=REVOCATION_HANDLER,
            description="Revokes the access keys of the members of chosen IAM groups",
            environment=environment,
            unresolved_environment={},
            schedule=schedule,
            topic=self.topic,
            timeout=timeout,
            memory_size=memory_size,
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


def _json_list(names: list[str]) -> str:
    return json.dumps(names, separators=(",", ":"))


def _names(values: Sequence[str], where: str, max_length: int) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{where} must be a list of names, got the single string {values!r}")
    names = [check_iam_name(value, f"{where}[{index}]", max_length) for index, value in enumerate(values)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{where} lists {duplicates} more than once")
    return names


def _iam_arn(stack: Stack, resource: str, name: str) -> str:
    return stack.format_arn(
        service="iam", region="", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def _nag_arn(stack: Stack, resource: str, name: str) -> str:
    """How cdk-nag spells ``_iam_arn``'s result in a finding id (pseudo parameters as ``<AWS::...>``)."""
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:{partition}:iam::{account}:{resource}/{name}"
