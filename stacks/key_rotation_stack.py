"""``KeyRotationStack``: the deployable unit, composed from the checked config of ``config`` (cdk.json)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Aws, CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .config import AppConfig
from .developer_key_revocation import DeveloperKeyRevocation
from .gitlab_key_rotation import GitLabKeyRotation
from .notifications import resolve_topic, slack_channel
from .organization import MemberRolesStackSet, member_template


_R = logs.RetentionDays
# The RetentionDays member of each retention the contract allows (rules.LOG_RETENTION_DAYS, CloudWatch's values).
RETENTION_BY_DAYS = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS, 30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS, 150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS, 545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1096: _R.THREE_YEARS,
    1827: _R.FIVE_YEARS, 2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS, 2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS,
    3653: _R.TEN_YEARS,
}  # fmt: skip


class KeyRotationStack(Stack):
    """``GitLabKeyRotation`` (construct id ``Rotation``) and, unless disabled,
    ``DeveloperKeyRevocation`` (``Revocation``), sharing one SNS topic (and, with
    ``notifications.slack``, an AWS Chatbot Slack channel on it); the revocation role is denied
    any key change on the rotation users. When a function works in other accounts, the roles' ARNs
    are outputs, and with ``organization.deploy_to_ou_ids`` a service-managed StackSet
    (``MemberRoles``) deploys the member roles (``member_stack_props``) to those OUs."""

    def __init__(self, scope: Construct, id: str, *, config: AppConfig, **kwargs: Any):  # noqa: A002
        super().__init__(scope, id, **kwargs)
        encryption_key = (
            kms.Key.from_key_arn(self, "EncryptionKey", config.kms_key_arn) if config.kms_key_arn else None
        )
        self.topic = resolve_topic(
            self, "Notifications", topic=None, email=config.notification_email, encryption_key=encryption_key
        )
        retention = RETENTION_BY_DAYS[config.log_retention_days]
        self.slack_channel = (
            slack_channel(
                self,
                "SlackChannel",
                topic=self.topic,
                workspace_id=config.slack.workspace_id,
                channel_id=config.slack.channel_id,
            )
            if config.slack
            else None
        )

        rotation, gitlab = config.rotation, config.gitlab
        vpc_props = _vpc_props(self, rotation.vpc) if rotation.vpc else {}
        self.rotation = GitLabKeyRotation(
            self,
            "Rotation",
            users=rotation.users,
            gitlab_url=gitlab.url,
            gitlab_token_secret=(
                secretsmanager.Secret.from_secret_complete_arn(self, "GitLabToken", gitlab.token_secret_arn)
                if gitlab.token_secret_arn
                else None
            ),
            gitlab_ca_bundle=gitlab.ca_bundle_file,
            schedule=events.Schedule.expression(rotation.schedule),
            rotation_period=Duration.days(rotation.period_days),
            grace_period=Duration.hours(rotation.grace_period_hours),
            deletion_window=Duration.days(rotation.deletion_window_days),
            token_expiry_warning=Duration.days(gitlab.token_expiry_warning_days),
            gitlab_max_requests_per_minute=gitlab.max_requests_per_minute,
            rotate_gitlab_token=gitlab.rotate_token,
            notification_topic=self.topic,
            notify_on_success=rotation.notify_on_success,
            dry_run=rotation.dry_run,
            encryption_key=encryption_key,
            reserved_concurrent_executions=rotation.reserved_concurrency or None,  # 0 reserves nothing
            timeout=Duration.seconds(rotation.timeout_seconds),
            memory_size=rotation.memory_mb,
            log_retention=retention,
            heartbeat_hours=rotation.heartbeat_hours,
            member_role_name=config.organization.member_role_name,
            **vpc_props,
        )

        revocation = config.revocation
        self.revocation = (
            DeveloperKeyRevocation(
                self,
                "Revocation",
                groups=revocation.groups,
                schedule=events.Schedule.expression(revocation.schedule),
                protected_users=[user.iam_user for user in rotation.users],
                exempt_users=revocation.exempt_users,
                exempt_groups=revocation.exempt_groups,
                exempt_tag_key=revocation.exempt_tag_key,
                action=revocation.action,
                deactivation_grace=Duration.days(revocation.deactivation_grace_days),
                min_key_age=Duration.days(revocation.min_key_age_days),
                max_workers=revocation.max_workers,
                dry_run=revocation.dry_run,
                notification_topic=self.topic,
                encryption_key=encryption_key,
                timeout=Duration.seconds(revocation.timeout_seconds),
                memory_size=revocation.memory_mb,
                log_retention=retention,
                heartbeat_hours=revocation.heartbeat_hours,
                accounts=revocation.accounts,
                organizational_unit_ids=revocation.organizational_unit_ids,
                exclude_accounts=revocation.exclude_accounts,
                member_role_name=config.organization.member_role_name,
                account_workers=revocation.account_workers,
            )
            if revocation.enabled
            else None
        )
        if config.reaches_members:
            self._members(config)

    def _members(self, config: AppConfig) -> None:
        props = member_stack_props(config)
        parameters = {"HubAccountId": Aws.ACCOUNT_ID}
        if props["rotated_users"]:
            parameters["HubRotationRoleArn"] = self.rotation.role.role_arn
        if props["groups"]:
            parameters["HubRevocationRoleArn"] = self.revocation.role.role_arn
        for key, value in parameters.items():
            if key != "HubAccountId":
                CfnOutput(self, key.removeprefix("Hub"), value=value, description=f"The member stack's parameter {key}")
        if config.organization.deploy_to_ou_ids:
            self.member_roles = MemberRolesStackSet(
                self,
                "MemberRoles",
                template=member_template(**props),
                parameters=parameters,
                ou_ids=config.organization.deploy_to_ou_ids,
                call_as=config.organization.call_as,
            )


def member_stack_props(config: AppConfig) -> dict[str, Any]:
    """The props of the ``MemberRolesStack`` that matches ``config``'s hub: the users that live in
    other accounts, and the revocation groups when revocation works in other accounts."""
    revocation = config.revocation
    revokes_members = revocation.enabled and revocation.accounts is not None
    return {
        "member_role_name": config.organization.member_role_name,
        "rotated_users": [user for user in config.rotation.users if user.account is not None],
        "groups": list(revocation.groups) if revokes_members else [],
        "exempt_groups": list(revocation.exempt_groups) if revokes_members else [],
        "protected_users": [user.iam_user for user in config.rotation.users],
        "action": revocation.action,
        "exempt_tag_key": revocation.exempt_tag_key if revokes_members else "",
    }




def _vpc_props(scope: Construct, vpc: AppConfig) -> dict[str, Any]:
    """The rotation function's placement from ids alone: no lookup, so synth needs no credentials.

    The function uses exactly the configured subnets; nothing here needs the VPC's zones.
    """
    imported_vpc = ec2.Vpc.from_vpc_attributes(scope, "Vpc", vpc_id=vpc.vpc_id, availability_zones=Fn.get_azs())
    Annotations.of(imported_vpc).acknowledge_warning(
        "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
        "The function is placed in the subnets named by id; the VPC's zone list is never read.",
    )
    props: dict[str, Any] = {
        "vpc": imported_vpc,
        "vpc_subnets": ec2.SubnetSelection(
            subnets=[ec2.Subnet.from_subnet_id(scope, f"Subnet{i}", subnet) for i, subnet in enumerate(vpc.subnet_ids)]
        ),
    }
    if vpc.security_group_ids:
        props["security_groups"] = [
            ec2.SecurityGroup.from_security_group_id(scope, f"SecurityGroup{i}", group)
            for i, group in enumerate(vpc.security_group_ids)
        ]
    return props
