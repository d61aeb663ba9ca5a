"""The operator's settings: ``cdk.json`` context key ``gitlab-key-rotation``, parsed into typed,
frozen dataclasses. Every error names the key (as a path such as
``gitlab-key-rotation.rotation.users[0].targets[1].kind``), the bad value and what is allowed.
The README section "Configuration" documents each key and its default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from aws_cdk import aws_logs as logs

from .developer_key_revocation import (
    ACCOUNT_WORKERS_LIMIT,
    DEFAULT_EXEMPT_TAG_KEY,
    DEFAULT_REVOCATION_SCHEDULE,
    MAX_WORKERS_LIMIT,
)
from .gitlab_key_rotation import DEFAULT_ROTATION_SCHEDULE
from .notifications import check_email
from .observability import MAX_ALARM_RANGE_HOURS
from .organization import DEFAULT_MEMBER_ROLE_NAME, check_account_ids, check_member_role_name, check_ou_ids
from .targets import GitLabTarget, RotatedUser
from .validation import check_at_least, check_cron, check_https_url, check_iam_name

CONTEXT_KEY = "gitlab-key-rotation"

_SECRET_ARN = re.compile(r"\Aarn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}\Z")
_KMS_KEY_ARN = re.compile(r"\Aarn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+\Z")
_ACCOUNT = re.compile(r"\A\d{12}\Z")
_REGION = re.compile(r"\A[a-z]{2}(-[a-z]+)+-\d\Z")
_STACK_NAME = re.compile(r"\A[A-Za-z][A-Za-z0-9-]{0,127}\Z")
_VPC_ID = re.compile(r"\Avpc-[0-9a-f]{8,17}\Z")
_SUBNET_ID = re.compile(r"\Asubnet-[0-9a-f]{8,17}\Z")
# Slack ids as AWS Chatbot takes them: a workspace (team) id and a channel id.
_SLACK_WORKSPACE = re.compile(r"\A[0-9A-Z]{1,255}\Z")
_SLACK_CHANNEL = re.compile(r"\A[A-Za-z0-9]{1,255}\Z")
_SECURITY_GROUP_ID = re.compile(r"\Asg-[0-9a-f]{8,17}\Z")
_R = logs.RetentionDays
# CloudWatch Logs accepts only these retention periods (days).
RETENTION_BY_DAYS = {
    1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS, 30: _R.ONE_MONTH,
    60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS, 150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS,
    365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS, 545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1096: _R.THREE_YEARS,
    1827: _R.FIVE_YEARS, 2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS, 2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS,
    3653: _R.TEN_YEARS,
}  # fmt: skip


class ConfigError(ValueError):
    """The cdk.json context is wrong; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class GitLabConfig:
    url: str
    token_secret_arn: str | None
    ca_bundle_file: Path | None
    rotate_token: bool
    token_expiry_warning_days: int


@dataclass(frozen=True)
class VpcConfig:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class RotationConfig:
    users: tuple[RotatedUser, ...]
    schedule: str
    period_days: int
    grace_period_hours: int
    deletion_window_days: int
    notify_on_success: bool
    dry_run: bool
    reserved_concurrency: int | None
    timeout_seconds: int
    memory_mb: int
    vpc: VpcConfig | None
    heartbeat_hours: int | None


@dataclass(frozen=True)
class RevocationConfig:
    enabled: bool
    groups: tuple[str, ...]
    schedule: str
    exempt_users: tuple[str, ...]
    exempt_groups: tuple[str, ...]
    exempt_tag_key: str
    action: str
    deactivation_grace_days: int
    min_key_age_days: int
    max_workers: int
    dry_run: bool
    timeout_seconds: int
    memory_mb: int
    heartbeat_hours: int | None
    accounts: tuple[str, ...] | str | None = None
    organizational_unit_ids: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    account_workers: int = 4


@dataclass(frozen=True)
class SlackConfig:
    workspace_id: str
    channel_id: str


@dataclass(frozen=True)
class OrganizationConfig:
    member_role_name: str
    deploy_to_ou_ids: tuple[str, ...]
    call_as: str
    member_stack_name: str


@dataclass(frozen=True)
class AppConfig:
    stack_name: str
    account: str | None
    region: str | None
    notification_email: str | None
    kms_key_arn: str | None
    log_retention_days: int
    slack: SlackConfig | None
    gitlab: GitLabConfig
    rotation: RotationConfig
    revocation: RevocationConfig
    organization: OrganizationConfig

    @property
    def reaches_members(self) -> bool:
        """Whether a function works in other accounts (users with ``account``, ``revocation.accounts``)."""
        return any(user.account for user in self.rotation.users) or (
            self.revocation.enabled and self.revocation.accounts is not None
        )


T = TypeVar("T")
_MISSING = object()


class _Section:
    """A JSON object of the config: typed reads, and unknown keys refused (they are typos)."""

    def __init__(self, data: object, where: str, allowed: set[str]):
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a JSON object, got {data!r}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def get(self, key: str, default: object = _MISSING) -> object:
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise ConfigError(f"{self.path(key)} is required")
            return default
        return self.data[key]

    def check(self, key: str, check: Callable[[object, str], T], default: object = _MISSING) -> T:
        value = self.get(key, default)
        try:
            return check(value, self.path(key))
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path(key)} must be true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int | None, minimum: int, maximum: int | None = None) -> int:
        value = self.check(key, lambda v, where: check_at_least(v, minimum, where), default)
        if maximum is not None and value > maximum:
            raise ConfigError(f"{self.path(key)} must be at most {maximum}, got {value}")
        return value

    def pattern(self, key: str, regex: re.Pattern[str], example: str, default: object = _MISSING) -> str | None:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or not regex.match(value):
            raise ConfigError(f"{self.path(key)} must look like {example!r}, got {value!r}")
        return value

    def names(self, key: str, max_length: int, default: object = _MISSING) -> tuple[str, ...]:
        value = self.get(key, default)
        if not isinstance(value, list):
            raise ConfigError(f"{self.path(key)} must be a JSON list of IAM names, got {value!r}")
        try:
            return tuple(check_iam_name(name, f"{self.path(key)}[{i}]", max_length) for i, name in enumerate(value))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def section(self, key: str, allowed: set[str]) -> "_Section":
        return _Section(self.get(key, {}), self.path(key), allowed)


def load_config(context: Mapping[str, object], base_dir: Path) -> AppConfig:
    """Parse ``context[CONTEXT_KEY]``; relative file paths are taken relative to ``base_dir``."""
    if context.get(CONTEXT_KEY) is None:
        raise ConfigError(f"the CDK context has no key {CONTEXT_KEY!r}: add it to cdk.json (see README, Configuration)")
    root = _Section(
        context[CONTEXT_KEY],
        CONTEXT_KEY,
        {"stack_name", "account", "region", "notification_email", "kms_key_arn", "log_retention_days",
         "notifications", "gitlab", "rotation", "revocation", "organization"},
    )  # fmt: skip
    retention = root.integer("log_retention_days", 90, 1)
    if retention not in RETENTION_BY_DAYS:
        raise ConfigError(f"{root.path('log_retention_days')} must be one of {sorted(RETENTION_BY_DAYS)}, got {retention}")
    rotation = _rotation(root.section(
        "rotation",
        {"users", "schedule", "period_days", "grace_period_hours", "deletion_window_days", "notify_on_success",
         "dry_run", "reserved_concurrency", "timeout_seconds", "memory_mb", "vpc", "heartbeat_hours"},
    ))  # fmt: skip
    gitlab = _gitlab(root.section(
        "gitlab", {"url", "token_secret_arn", "ca_bundle_file", "rotate_token", "token_expiry_warning_days"}
    ), base_dir)  # fmt: skip
    if gitlab.rotate_token and rotation.reserved_concurrency != 1:
        raise ConfigError(
            f"{root.path('gitlab')}.rotate_token needs {root.path('rotation')}.reserved_concurrency 1 (runs never "
            "overlap: a run still using the old token while another rotates it makes GitLab revoke the new one), "
            f"got {rotation.reserved_concurrency or 0}"
        )
    revocation = _revocation(root.section(
        "revocation",
        {"enabled", "groups", "schedule", "exempt_users", "exempt_groups", "exempt_tag_key", "action",
         "deactivation_grace_days", "min_key_age_days", "max_workers", "dry_run", "timeout_seconds", "memory_mb",
         "accounts", "organizational_unit_ids", "exclude_accounts", "account_workers", "heartbeat_hours"},
    ))  # fmt: skip
    stack_name = root.pattern("stack_name", _STACK_NAME, "KeyRotationStack", "KeyRotationStack")
    organization = _organization(
        root.section("organization", {"member_role_name", "deploy_to_ou_ids", "call_as", "member_stack_name"}),
        stack_name,
    )
    config = AppConfig(
        stack_name=stack_name,
        account=root.pattern("account", _ACCOUNT, "123456789012", None),
        region=root.pattern("region", _REGION, "eu-west-1", None),
        notification_email=root.check("notification_email", lambda v, w: None if v is None else check_email(v, w), None),
        kms_key_arn=root.pattern("kms_key_arn", _KMS_KEY_ARN, "arn:aws:kms:eu-west-1:123456789012:key/<key id>", None),
        log_retention_days=retention,
        slack=_slack(root.section("notifications", {"slack"})),
        gitlab=gitlab,
        rotation=rotation,
        revocation=revocation,
        organization=organization,
    )
    if organization.deploy_to_ou_ids and not config.reaches_members:
        raise ConfigError(
            f"{root.path('organization.deploy_to_ou_ids')} deploys member roles, but no function works in another "
            "account: give rotation users an 'account', or set revocation.accounts"
        )
    return config


def _organization(section: _Section, stack_name: str) -> OrganizationConfig:
    call_as = section.get("call_as", "SELF")
    if call_as not in ("SELF", "DELEGATED_ADMIN"):
        raise ConfigError(f"{section.path('call_as')} must be 'SELF' or 'DELEGATED_ADMIN', got {call_as!r}")
    return OrganizationConfig(
        member_role_name=section.check("member_role_name", check_member_role_name, DEFAULT_MEMBER_ROLE_NAME),
        deploy_to_ou_ids=section.check("deploy_to_ou_ids", lambda v, w: check_ou_ids(v, w, allow_root=True), []),
        call_as=call_as,
        member_stack_name=section.pattern("member_stack_name", _STACK_NAME, "KeyRotationMember", f"{stack_name}Member"),
    )


def _gitlab(section: _Section, base_dir: Path) -> GitLabConfig:
    ca_bundle = section.get("ca_bundle_file", None)
    if ca_bundle is not None:
        if not isinstance(ca_bundle, str) or not ca_bundle:
            raise ConfigError(f"{section.path('ca_bundle_file')} must be the path of a PEM file, got {ca_bundle!r}")
        ca_bundle = (base_dir / ca_bundle).resolve()
        if not ca_bundle.is_file():
            raise ConfigError(f"{section.path('ca_bundle_file')} names {str(ca_bundle)!r}, which is not a file")
    return GitLabConfig(
        url=section.check("url", check_https_url),
        token_secret_arn=section.pattern(
            "token_secret_arn", _SECRET_ARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token-AbCdEf", None
        ),
        ca_bundle_file=ca_bundle,
        rotate_token=section.boolean("rotate_token", False),
        token_expiry_warning_days=section.integer("token_expiry_warning_days", 30, 1),
    )


def _rotation(section: _Section) -> RotationConfig:
    users_value = section.get("users")
    if not isinstance(users_value, list) or not users_value:
        raise ConfigError(f"{section.path('users')} must be a non-empty list of IAM machine users, got {users_value!r}")
    users = tuple(_user(_Section(u, f"{section.path('users')}[{i}]", {"iam_user", "iam_path", "targets", "account"}))
                  for i, u in enumerate(users_value))  # fmt: skip
    period_days = section.integer("period_days", 30, 1)
    grace_hours = section.integer("grace_period_hours", 24, 0)
    if grace_hours >= period_days * 24:
        raise ConfigError(
            f"{section.path('grace_period_hours')} ({grace_hours}) must be shorter than "
            f"{section.path('period_days')} ({period_days} days = {period_days * 24} hours)"
        )
    vpc = None
    if section.get("vpc", None) is not None:
        vpc_section = section.section("vpc", {"vpc_id", "subnet_ids", "security_group_ids"})
        vpc = VpcConfig(
            vpc_id=vpc_section.pattern("vpc_id", _VPC_ID, "vpc-0123456789abcdef0"),
            subnet_ids=_ids(vpc_section, "subnet_ids", _SUBNET_ID, "subnet-0123456789abcdef0", required=True),
            security_group_ids=_ids(vpc_section, "security_group_ids", _SECURITY_GROUP_ID, "sg-0123456789abcdef0", required=False),
        )  # fmt: skip
    # 0 reserves nothing (for accounts whose concurrency quota cannot spare any).
    reserved = section.integer("reserved_concurrency", 1, 0)
    return RotationConfig(
        users=users,
        schedule=section.check("schedule", check_cron, DEFAULT_ROTATION_SCHEDULE),
        period_days=period_days,
        grace_period_hours=grace_hours,
        deletion_window_days=section.integer("deletion_window_days", 7, 0),
        notify_on_success=section.boolean("notify_on_success", False),
        dry_run=section.boolean("dry_run", False),
        reserved_concurrency=reserved or None,
        timeout_seconds=section.integer("timeout_seconds", 300, 30, 900),
        memory_mb=section.integer("memory_mb", 256, 128, 10240),
        vpc=vpc,
        heartbeat_hours=_heartbeat_hours(section),
    )


def _user(section: _Section) -> RotatedUser:
    targets_value = section.get("targets")
    if not isinstance(targets_value, list) or not targets_value:
        raise ConfigError(f"{section.path('targets')} must be a non-empty list of GitLab targets, got {targets_value!r}")
    targets = []
    for index, item in enumerate(targets_value):
        where = f"{section.path('targets')}[{index}]"
        target = _Section(item, where, set(GitLabTarget.__dataclass_fields__))
        kind = target.get("kind")
        if kind not in ("group", "project"):
            raise ConfigError(f"{where}.kind must be 'group' or 'project', got {kind!r}")
        try:
            targets.append(GitLabTarget(**target.data))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    account = section.pattern("account", _ACCOUNT, "222222222222", None)
    try:
        return RotatedUser(
            iam_user=section.get("iam_user"), iam_path=section.get("iam_path", "/"), targets=tuple(targets), account=account
        )
    except ValueError as exc:
        raise ConfigError(f"{section.where}: {exc}") from None


def _ids(section: _Section, key: str, regex: re.Pattern[str], example: str, required: bool) -> tuple[str, ...]:
    value = section.get(key, [] if not required else _MISSING)
    if not isinstance(value, list) or (required and not value):
        raise ConfigError(f"{section.path(key)} must be a {'non-empty ' if required else ''}list of ids like {example!r}, got {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not regex.match(item):
            raise ConfigError(f"{section.path(key)}[{index}] must look like {example!r}, got {item!r}")
    return tuple(value)


def _revocation(section: _Section) -> RevocationConfig:
    enabled = section.boolean("enabled", True)
    groups = section.names("groups", 128, [] if not enabled else _MISSING)
    if enabled and not groups:
        raise ConfigError(
            f"{section.path('groups')} must name at least one IAM group (or set {section.path('enabled')} to false), got []"
        )
    action = section.get("action", "delete")
    if action not in ("delete", "deactivate"):
        raise ConfigError(f"{section.path('action')} must be 'delete' or 'deactivate', got {action!r}")
    exempt_tag_key = section.get("exempt_tag_key", DEFAULT_EXEMPT_TAG_KEY)
    if not isinstance(exempt_tag_key, str) or len(exempt_tag_key) > 128:
        raise ConfigError(f"{section.path('exempt_tag_key')} must be an IAM tag key (at most 128 characters) or '' for none, got {exempt_tag_key!r}")
    accounts = section.get("accounts", None)
    if accounts is not None and accounts != "organization":
        if not isinstance(accounts, list) or not accounts:
            raise ConfigError(
                f"{section.path('accounts')} must be a non-empty list of 12-digit account ids, or 'organization', got {accounts!r}"
            )
        accounts = section.check("accounts", check_account_ids)
    ou_ids = section.check("organizational_unit_ids", lambda v, w: check_ou_ids(v, w, allow_root=False), [])
    exclude = section.check("exclude_accounts", check_account_ids, [])
    if accounts != "organization":
        for key, value in (("organizational_unit_ids", ou_ids), ("exclude_accounts", exclude)):
            if value:
                raise ConfigError(f"{section.path(key)} needs {section.path('accounts')} = 'organization', got {value!r}")
    return RevocationConfig(
        enabled=enabled,
        groups=groups,
        schedule=section.check("schedule", check_cron, DEFAULT_REVOCATION_SCHEDULE),
        exempt_users=section.names("exempt_users", 64, []),
        exempt_groups=section.names("exempt_groups", 128, []),
        exempt_tag_key=exempt_tag_key,
        action=action,
        deactivation_grace_days=section.integer("deactivation_grace_days", 6, 1),
        min_key_age_days=section.integer("min_key_age_days", 0, 0),
        max_workers=section.integer("max_workers", 16, 1, MAX_WORKERS_LIMIT),
        dry_run=section.boolean("dry_run", False),
        timeout_seconds=section.integer("timeout_seconds", 600, 30, 900),
        memory_mb=section.integer("memory_mb", 512, 128, 10240),
        heartbeat_hours=_heartbeat_hours(section),
        accounts=accounts,
        organizational_unit_ids=ou_ids,
        exclude_accounts=exclude,
        account_workers=section.integer("account_workers", 4, 1, ACCOUNT_WORKERS_LIMIT),
    )


def _heartbeat_hours(section: _Section) -> int | None:
    """None (derived from the schedule), 0 (no heartbeat alarm) or 1 to 168 hours."""
    if section.get("heartbeat_hours", None) is None:
        return None
    return section.integer("heartbeat_hours", None, 0, MAX_ALARM_RANGE_HOURS)


def _slack(section: _Section) -> SlackConfig | None:
    if section.get("slack", None) is None:
        return None
    slack = section.section("slack", {"workspace_id", "channel_id"})
    return SlackConfig(
        workspace_id=slack.pattern("workspace_id", _SLACK_WORKSPACE, "T0123456789"),
        channel_id=slack.pattern("channel_id", _SLACK_CHANNEL, "C0123456789"),
    )
