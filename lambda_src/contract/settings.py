"""Every setting of the product, declared once: its rule, default, names and meaning.

cdk.json (``gitlab-key-rotation``) is ``APP``; the constructs' props are ``ROTATION_PROPS`` and
``REVOCATION_PROPS``; the Lambdas' ``settings.json`` files are ``ROTATION_RUNTIME`` and
``REVOCATION_RUNTIME``. All five are views of the same ``Setting`` objects.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from . import rules as r
from .schema import Items, Section, Setting

DEFAULT_ROTATION_SCHEDULE = "cron(0 6-18 ? * MON-FRI *)"
DEFAULT_REVOCATION_SCHEDULE = "cron(55 23 ? * FRI *)"
DEFAULT_EXEMPT_TAG_KEY = "key-revocation:exempt"
# Tags the revocation sets itself in deactivate mode (the role may set no other): <prefix><access key
# id> = when it deactivated the key (or first found it Inactive). The exempt tag must not fall under it.
DEACTIVATED_TAG_PREFIX = "key-revocation:deactivated:"
DEFAULT_DESCRIPTION = "Managed by gitlab-key-rotation; do not edit by hand."
MAX_WORKERS_LIMIT = 64  # more threads than this only earn IAM throttling
# GitLab personal, group and project access tokens live at most 365 days (GitLab 16.0+).
TOKEN_MAX_LIFETIME_DAYS = 365
# gitlab.com's highest per-user limit: 2,000 authenticated API requests a minute (today for every
# plan; announced for Ultimate). A budget above it would let the client discover the limit by 429s.
MAX_REQUESTS_PER_MINUTE_LIMIT = 2000

At = Callable[[str], str]

# ---- the GitLab targets and the machine users ---------------------------------------------------

KIND = Setting("kind", r.Choice(("group", "project")), doc="`group` or `project`", runtime=True)
TARGET_ID = Setting("id", r.TargetId(), doc="numeric id or full path of the group or project", runtime=True)
ACCESS_KEY_ID_VARIABLE = Setting(
    "access_key_id_variable", r.VARIABLE_KEY, "AWS_ACCESS_KEY_ID", "variable that receives the access key id", runtime=True
)
SECRET_ACCESS_KEY_VARIABLE = Setting(
    "secret_access_key_variable", r.VARIABLE_KEY, "AWS_SECRET_ACCESS_KEY", "variable that receives the secret key", runtime=True
)
ENVIRONMENT_SCOPE = Setting(
    "environment_scope", r.EnvironmentScope(), "*", "GitLab environment scope of both variables (`*`, `production`, `review/*`)", runtime=True
)
PROTECTED = Setting("protected", r.Boolean(), True, "variables reach protected branches and tags only", runtime=True)
MASKED = Setting("masked", r.Boolean(), True, "GitLab hides the values in job logs", runtime=True)
RAW = Setting("raw", r.Boolean(), True, "GitLab does not expand `$` in the values", runtime=True)
DESCRIPTION = Setting("description", r.DESCRIPTION, DEFAULT_DESCRIPTION, "variable description (at most 255 characters)", runtime=True)
DELIVERY = Setting(
    "delivery", r.Choice(("variables", "credentials_file")), "variables",
    "`variables`: the key id and the secret in two variables, written one after the other (the secret first); "
    "`credentials_file`: one file-type variable holding an AWS credentials file with both (profile `default`), "
    "written at once. GitLab cannot mask a multi-line value, so that variable is never masked: a job that prints "
    "the file shows the secret in its log (`masked` does not apply)",
    runtime=True,
)  # fmt: skip
CREDENTIALS_FILE_VARIABLE = Setting(
    "credentials_file_variable", r.VARIABLE_KEY, "AWS_SHARED_CREDENTIALS_FILE",
    "`credentials_file` delivery: the file variable; GitLab gives the job its path, and the AWS SDKs and CLI read "
    "`AWS_SHARED_CREDENTIALS_FILE` natively",
    runtime=True,
)  # fmt: skip
HIDDEN = Setting(
    "hidden", r.Boolean(), False,
    "`variables` delivery: create the secret variable masked and hidden (GitLab 17.4+), so no one can read it in "
    "GitLab's UI or API. GitLab hides a variable only when it is created: an existing visible one stays visible "
    "(delete it, and the next run creates it hidden). Its value then never reads back: a write is checked by the "
    "key id variable's value and the secret variable being there, hidden",
    runtime=True,
)  # fmt: skip


def _variables_differ(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if v.get("access_key_id_variable") is not None and v.get("access_key_id_variable") == v.get("secret_access_key_variable"):
        yield (
            f"{at('access_key_id_variable')} and {at('secret_access_key_variable')} must differ, "
            f"both are {v['access_key_id_variable']!r}"
        )


def _hidden_needs_variables(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if v.get("hidden") and v.get("delivery") == "credentials_file":
        yield (
            f"{at('hidden')} needs delivery 'variables': GitLab hides only masked variables, and a credentials file "
            "(several lines) cannot be masked"
        )


def target_variables(target: Mapping[str, Any]) -> tuple[str, ...]:
    """The variables a target's delivery writes."""
    if target["delivery"] == "credentials_file":
        return (target["credentials_file_variable"],)
    return (target["access_key_id_variable"], target["secret_access_key_variable"])


TARGET = Section(
    None,
    (
        KIND, TARGET_ID, ACCESS_KEY_ID_VARIABLE, SECRET_ACCESS_KEY_VARIABLE, ENVIRONMENT_SCOPE, PROTECTED, MASKED, RAW,
        DESCRIPTION, DELIVERY, CREDENTIALS_FILE_VARIABLE, HIDDEN,
    ),
    doc="a GitLab group or project whose CI/CD variables receive the key",
    checks=(_variables_differ, _hidden_needs_variables),
)  # fmt: skip

IAM_USER = Setting("iam_user", r.IAM_USER_NAME, doc="IAM machine user whose key is rotated", runtime=True)
IAM_PATH = Setting("iam_path", r.IamPath(), "/", "the user's IAM path (shapes its ARN in the role's policy)", runtime=True)
TARGETS = Items("targets", TARGET, doc="GitLab targets", runtime=True)
USER_ACCOUNT = Setting(
    "account", r.Optional(r.ACCOUNT), None,
    "organization mode: the account the user lives in, reached through its member role (see \"Across an organization\"); "
    "user names are unique across accounts", runtime=True,
    default_doc="none: the stack's own account",
)  # fmt: skip
USER = Section(None, (IAM_USER, IAM_PATH, TARGETS, USER_ACCOUNT), doc="an IAM machine user and where its key goes")


def _users_distinct(v: Mapping[str, Any], at: At) -> Iterator[str]:
    users = v.get("users")
    if not users:
        return
    names: dict[str, int] = {}
    slots: dict[tuple[str, str, str, str], str] = {}
    for i, user in enumerate(users):
        folded = user["iam_user"].casefold()
        if folded in names:
            yield (
                f"{at('users')}[{i}].iam_user {user['iam_user']!r} repeats {at('users')}[{names[folded]}].iam_user "
                "(IAM user names ignore case): list each machine user once"
            )
        names.setdefault(folded, i)
        for j, target in enumerate(user["targets"]):
            here = f"{at('users')}[{i}].targets[{j}]"
            for variable in dict.fromkeys(target_variables(target)):
                slot = (target["kind"], target["id"], target["environment_scope"], variable)
                if slot in slots:
                    yield (
                        f"{here} writes variable {variable!r} of {target['kind']} {target['id']!r} at environment scope "
                        f"{target['environment_scope']!r}, as {slots[slot]} does: list a target once, or give each its "
                        "own variable names or scope"
                    )
                    break
                slots[slot] = here


USERS = Items("users", USER, doc="IAM machine users", runtime=True)

# ---- GitLab -------------------------------------------------------------------------------------

GITLAB_URL = Setting(
    "gitlab_url", r.GitLabUrl(), doc="`https://gitlab.com` or your self-managed GitLab (https, a port and a path are fine)",
    key="url", runtime=True,
)  # fmt: skip
TOKEN_SECRET_ARN = Setting(
    "token_secret_arn", r.Optional(r.SECRET_ARN), None,
    "complete ARN of an existing secret holding `{\"GITLAB_TOKEN\": \"...\"}`",
    prop=None, default_doc="none: a secret is created with a placeholder",
)  # fmt: skip
CA_BUNDLE_FILE = Setting(
    "gitlab_ca_bundle_file", r.Optional(r.PemFile()), None,
    "PEM file (relative to `app.py`'s directory) to trust for a self-managed GitLab; shipped in a small layer "
    "at `/opt/gitlab-ca/ca-bundle.pem`",
    key="ca_bundle_file", prop="gitlab_ca_bundle", default_doc="none (public CAs)",
)  # fmt: skip
ROTATE_TOKEN = Setting(
    "rotate_gitlab_token", r.Boolean(), False,
    "let the Lambda rotate the GitLab token itself before it expires (grants it `PutSecretValue` on the token secret; "
    "needs `rotation.reserved_concurrency` 1; see \"How rotation works\", step 2)",
    key="rotate_token", runtime=True,
)  # fmt: skip
TOKEN_EXPIRY_WARNING = Setting(
    "token_expiry_warning_days", r.Integer(1, TOKEN_MAX_LIFETIME_DAYS, "days"), 30,
    "warn (log line, metric, alarm) from this many days before the token expires (a token lives at most 365 days)",
    prop="token_expiry_warning", unit="days", runtime=True,
)  # fmt: skip
MAX_REQUESTS_PER_MINUTE = Setting(
    "gitlab_max_requests_per_minute", r.Integer(1, MAX_REQUESTS_PER_MINUTE_LIMIT, "requests"), 80,
    "the rotation sends at most this many GitLab requests (retries included) in any 60 seconds, and waits when the "
    "next would exceed it. 80 fits gitlab.com Free (100 a minute, 5,000 an hour: even a whole hour at 80 a minute "
    "is 4,800); Premium (1,250 a minute, 15,000 an hour) fits 250, Ultimate (2,000, 25,000) 416; see \"Pacing\"",
    key="max_requests_per_minute", runtime=True,
)  # fmt: skip
CA_BUNDLE_PATH = Setting(
    "gitlab_ca_bundle", r.Optional(r.AbsolutePath()), None, "where the Lambda finds the CA bundle (set by the construct)",
    key=None, prop=None, runtime=True,
)  # fmt: skip
GITLAB = Section(
    "gitlab", (GITLAB_URL, TOKEN_SECRET_ARN, CA_BUNDLE_FILE, ROTATE_TOKEN, TOKEN_EXPIRY_WARNING, MAX_REQUESTS_PER_MINUTE), doc="GitLab"
)

# ---- rotation -----------------------------------------------------------------------------------

ROTATION_SCHEDULE = Setting(
    "rotation_schedule", r.Schedule(), DEFAULT_ROTATION_SCHEDULE,
    "hourly in the working day: grace windows end promptly, new keys land while people are around",
    key="schedule", prop="schedule",
)  # fmt: skip
ROTATION_PERIOD = Setting(
    "rotation_period_days", r.Integer(1, None, "days"), 30, "rotate when the current key is older",
    key="period_days", prop="rotation_period", unit="days", runtime=True,
)  # fmt: skip
GRACE_PERIOD = Setting(
    "grace_period_hours", r.Integer(0, None, "hours"), 24,
    "the previous key stays Active this long after the new key reached GitLab; must be shorter than the period",
    prop="grace_period", unit="hours", runtime=True,
)  # fmt: skip
DELETION_WINDOW = Setting(
    "deletion_window_days", r.Integer(0, None, "days"), 7,
    "an Inactive previous key is deleted this long after deactivation (the recovery window)",
    prop="deletion_window", unit="days", runtime=True,
)  # fmt: skip
NOTIFY_ON_SUCCESS = Setting("notify_on_success", r.Boolean(), False, "also publish a message after each successful rotation", runtime=True)
ROTATION_DRY_RUN = Setting("dry_run", r.Boolean(), False, "only report the plan", runtime=True)
RESERVED_CONCURRENCY = Setting(
    "reserved_concurrency", r.Integer(0, None), 1,
    "runs never overlap; `0` reserves nothing (accounts with a concurrency quota of 10 cannot reserve any)",
    prop=None,
)  # fmt: skip
ROTATION_TIMEOUT = Setting("rotation_timeout_seconds", r.Integer(30, 900, "seconds"), 300, "Lambda timeout", key="timeout_seconds", prop="timeout", unit="seconds")
MAX_HEARTBEAT_HOURS = 168  # CloudWatch alarms evaluate at most 7 days


def _heartbeat(job: str) -> Setting:
    return Setting(
        f"{job}_heartbeat_hours", r.Optional(r.Integer(0, MAX_HEARTBEAT_HOURS, "hours")), None,
        "the heartbeat alarm's window: none derives it from the schedule, 1 to 168 hours sets it, 0 turns the alarm off",
        key="heartbeat_hours", prop="heartbeat_hours", default_doc="none: derived from the schedule",
    )  # fmt: skip


ROTATION_HEARTBEAT = _heartbeat("rotation")
REVOCATION_HEARTBEAT = _heartbeat("revocation")
ROTATION_MEMORY = Setting("rotation_memory_mb", r.Integer(128, 10240, "MB"), 256, "Lambda memory", key="memory_mb", prop="memory_size")
VPC = Section(
    "vpc",
    (
        Setting("vpc_id", r.VPC_ID, doc="the VPC", prop=None),
        Setting("subnet_ids", r.ListOf(r.SUBNET_ID, min_items=1), doc="subnets the function runs in", prop=None),
        Setting("security_group_ids", r.ListOf(r.SECURITY_GROUP_ID), [], "security groups (default: a new one, all egress)", prop=None),
    ),
    doc=(
        "to reach a GitLab on a private network; the subnets then need a route to GitLab and to IAM, STS, "
        "Secrets Manager and SNS (NAT or VPC endpoints)"
    ),
    optional=True,
)


def _grace_shorter_than_period(v: Mapping[str, Any], at: At) -> Iterator[str]:
    grace, period = v.get("grace_period_hours"), v.get("rotation_period_days")
    if grace is not None and period is not None and grace >= period * 24:
        yield (
            f"{at('grace_period_hours')} ({grace}) must be shorter than {at('rotation_period_days')} "
            f"({period} days = {period * 24} hours)"
        )


ROTATION = Section(
    "rotation",
    (USERS, ROTATION_SCHEDULE, ROTATION_PERIOD, GRACE_PERIOD, DELETION_WINDOW, NOTIFY_ON_SUCCESS, ROTATION_DRY_RUN,
     RESERVED_CONCURRENCY, ROTATION_TIMEOUT, ROTATION_MEMORY, VPC, ROTATION_HEARTBEAT),
    doc="the machine users' key rotation",
    checks=(_grace_shorter_than_period, _users_distinct),
)  # fmt: skip

# ---- revocation ---------------------------------------------------------------------------------

REVOCATION_ENABLED = Setting("enabled", r.Boolean(), True, "`false` deploys the rotation only", prop=None)
GROUPS = Setting(
    "groups", r.ListOf(r.IAM_GROUP_NAME), [], "IAM group names whose members' keys are revoked",
    runtime=True, default_doc="required when enabled",
)  # fmt: skip
REVOCATION_SCHEDULE = Setting(
    "revocation_schedule", r.Schedule(), DEFAULT_REVOCATION_SCHEDULE, "Friday 23:55 UTC", key="schedule", prop="schedule"
)
EXEMPT_USERS = Setting(
    "exempt_users", r.ListOf(r.IAM_USER_NAME), [], "user names never touched (the rotation users are always protected)", runtime=True
)
PROTECTED_USERS = Setting(
    "protected_users", r.ListOf(r.IAM_USER_NAME), [], "users never touched, also denied in the role (the rotation users)",
    key=None, runtime=True,
)  # fmt: skip
EXEMPT_GROUPS = Setting(
    "exempt_groups", r.ListOf(r.IAM_GROUP_NAME), [],
    "IAM groups whose members are skipped (one `GetGroup` per group and page, no call per member); read completely "
    "before anything is revoked, or the run stops", runtime=True,
)  # fmt: skip
EXEMPT_TAG_KEY = Setting(
    "exempt_tag_key", r.IamTagKey(), DEFAULT_EXEMPT_TAG_KEY, "users carrying this IAM tag are skipped; `\"\"` turns the check off", runtime=True
)
ACTION = Setting(
    "action", r.Choice(("delete", "deactivate")), "delete",
    "or `deactivate`: made Inactive and tagged `key-revocation:deactivated:<key id>`, deleted by a run at least "
    "`deactivation_grace_days` later", runtime=True,
)  # fmt: skip
DEACTIVATION_GRACE = Setting(
    "deactivation_grace_days", r.Integer(1, None, "days"), 6,
    "deactivate mode: how long a key stays Inactive before a run deletes it (6: the next weekly run; a second run the "
    "same night deletes nothing)", prop="deactivation_grace", unit="days", runtime=True,
)  # fmt: skip
MIN_KEY_AGE = Setting(
    "min_key_age_days", r.Integer(0, None, "days"), 0, "spare keys younger than this", prop="min_key_age", unit="days", runtime=True
)
MAX_WORKERS = Setting("max_workers", r.Integer(1, MAX_WORKERS_LIMIT), 16, "users processed at once", runtime=True)
REVOCATION_DRY_RUN = Setting("dry_run", r.Boolean(), False, "only report", runtime=True)
REVOCATION_TIMEOUT = Setting("revocation_timeout_seconds", r.Integer(30, 900, "seconds"), 600, "Lambda timeout", key="timeout_seconds", prop="timeout", unit="seconds")
REVOCATION_MEMORY = Setting("revocation_memory_mb", r.Integer(128, 10240, "MB"), 512, "Lambda memory", key="memory_mb", prop="memory_size")


ACCOUNTS = Setting(
    "accounts", r.Optional(r.AccountsOrOrganization()), None,
    "organization mode: revoke in these accounts (or `\"organization\"`: every ACTIVE account) through their member roles",
    runtime=True, default_doc="none: the stack's own account",
)  # fmt: skip
OU_IDS = Setting(
    "organizational_unit_ids", r.ListOf(r.OU_ID), [], "with `accounts` `\"organization\"`: only the accounts under these OUs",
    runtime=True,
)  # fmt: skip
EXCLUDE_ACCOUNTS = Setting("exclude_accounts", r.ListOf(r.ACCOUNT), [], "with `accounts` `\"organization\"`: accounts skipped", runtime=True)
ACCOUNT_WORKERS_LIMIT = 16
ACCOUNT_WORKERS = Setting("account_workers", r.Integer(1, ACCOUNT_WORKERS_LIMIT), 4, "accounts handled at once", runtime=True)


def _organization_filters(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if v.get("accounts") != "organization":
        for name in ("organizational_unit_ids", "exclude_accounts"):
            if v.get(name):
                yield f"{at(name)} needs {at('accounts')} = 'organization', got {v[name]!r}"


def _exempt_tag_not_own(v: Mapping[str, Any], at: At) -> Iterator[str]:
    tag = v.get("exempt_tag_key")
    if tag and tag.casefold().startswith(DEACTIVATED_TAG_PREFIX):
        yield f"{at('exempt_tag_key')} must not start with {DEACTIVATED_TAG_PREFIX!r} (the revocation's own tags), got {tag!r}"


def _groups_when_enabled(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if v.get("enabled", True) and v.get("groups") == []:
        yield f"{at('groups')} must name at least one IAM group whose members' keys are revoked" + (
            f" (or set {at('enabled')} to false)" if "enabled" in v else ""
        )


REVOCATION = Section(
    "revocation",
    (REVOCATION_ENABLED, GROUPS, REVOCATION_SCHEDULE, EXEMPT_USERS, EXEMPT_GROUPS, PROTECTED_USERS, EXEMPT_TAG_KEY,
     ACTION, DEACTIVATION_GRACE, MIN_KEY_AGE, MAX_WORKERS, REVOCATION_DRY_RUN, REVOCATION_TIMEOUT, REVOCATION_MEMORY, REVOCATION_HEARTBEAT,
     ACCOUNTS, OU_IDS, EXCLUDE_ACCOUNTS, ACCOUNT_WORKERS),
    doc="the weekly developer key revocation",
    checks=(_groups_when_enabled, _organization_filters, _exempt_tag_not_own),
)  # fmt: skip

# ---- the app ------------------------------------------------------------------------------------

STACK_NAME = Setting("stack_name", r.STACK_NAME, "KeyRotationStack", "CloudFormation stack name", prop=None)
ACCOUNT = Setting("account", r.Optional(r.ACCOUNT), None, "pin the stack to an account", prop=None, default_doc="unset (environment-agnostic)")
REGION = Setting("region", r.Optional(r.Region()), None, "pin the stack to a region (a known region code)", prop=None, default_doc="unset (environment-agnostic)")
NOTIFICATION_EMAIL = Setting(
    "notification_email", r.Optional(r.EMAIL), None,
    "address subscribed to the SNS topic of alarms and job messages (confirm the e-mail)", default_doc="none",
)  # fmt: skip
KMS_KEY_ARN = Setting(
    "kms_key_arn", r.Optional(r.KMS_KEY_ARN), None,
    "customer-managed key for the secrets, log groups and topic; its key policy must allow CloudWatch Logs and CloudWatch alarms",
    prop=None, default_doc="none (AWS managed keys)",
)  # fmt: skip
LOG_RETENTION = Setting(
    "log_retention_days", r.Choice(r.LOG_RETENTION_DAYS, "CloudWatch Logs' values"), 90, "retention of both log groups", prop=None
)

NOTIFICATIONS = Section(
    "notifications",
    (
        Section(
            "slack",
            (
                Setting("slack_workspace_id", r.SLACK_WORKSPACE_ID, doc="the workspace, authorized for AWS Chatbot", key="workspace_id", prop=None),
                Setting("slack_channel_id", r.SLACK_CHANNEL_ID, doc="the channel", key="channel_id", prop=None),
            ),
            doc=(
                "an AWS Chatbot Slack channel subscribed to the topic, its role without permissions and its guardrail "
                "`ReadOnlyAccess`. Authorize the Slack workspace once in the AWS Chatbot console first; AWS Chatbot "
                "exists in the commercial regions only"
            ),
            optional=True,
        ),
    ),
    doc="where alarms and messages go besides the topic",
)
DEFAULT_MEMBER_ROLE_NAME = "KeyRotationMember"
MEMBER_ROLE_NAME = Setting(
    "member_role_name", r.MEMBER_ROLE_NAME, DEFAULT_MEMBER_ROLE_NAME,
    "name of the member roles (`/gitlab-key-rotation/<name>-rotation` and `-revocation`) in other accounts",
)  # fmt: skip
ORGANIZATION = Section(
    "organization",
    (
        MEMBER_ROLE_NAME,
        Setting("deploy_to_ou_ids", r.ListOf(r.OU_OR_ROOT_ID), [], "deploy the member roles to these OUs (a service-managed StackSet)", prop=None),
        Setting("call_as", r.Choice(("SELF", "DELEGATED_ADMIN")), "SELF", "who creates the StackSet", prop=None),
        Setting(
            "member_stack_name", r.Optional(r.STACK_NAME), None, "name of the member roles' stack",
            prop=None, default_doc="`<stack_name>Member`",
        ),
    ),
    doc="organization mode",
)


def reaches_members(v: Mapping[str, Any]) -> bool:
    """Whether parsed cdk.json settings make a function work in other accounts."""
    users = (v.get("rotation") or {}).get("users") or []
    revocation = v.get("revocation") or {}
    return any(u.get("account") for u in users) or (revocation.get("enabled", True) and revocation.get("accounts") is not None)


def _member_roles_need_members(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if (v.get("organization") or {}).get("deploy_to_ou_ids") and "rotation" in v and "revocation" in v and not reaches_members(v):
        yield (
            f"{at('organization.deploy_to_ou_ids')} deploys member roles, but no function works in another account: "
            "give rotation users an 'account', or set revocation.accounts"
        )


def _token_rotation_in_cdk_json(v: Mapping[str, Any], at: At) -> Iterator[str]:
    rotate = (v.get("gitlab") or {}).get("rotate_gitlab_token")
    reserved = (v.get("rotation") or {}).get("reserved_concurrency")
    if rotate and reserved is not None and reserved != 1:
        yield _token_rotation_problem(at("gitlab.rotate_token"), at("rotation.reserved_concurrency"), reserved)


def _token_rotation_in_props(v: Mapping[str, Any], at: At) -> Iterator[str]:
    if v.get("rotate_gitlab_token") and "reserved_concurrent_executions" in v and v["reserved_concurrent_executions"] != 1:
        yield _token_rotation_problem(at("rotate_gitlab_token"), at("reserved_concurrent_executions"), v["reserved_concurrent_executions"])


def _token_rotation_problem(rotate: str, reserved: str, got: Any) -> str:
    return (
        f"{rotate} needs {reserved} 1 (runs never overlap: a run still using the old token while another rotates "
        f"it makes GitLab revoke the new one), got {got}"
    )


APP = Section(
    None,
    (STACK_NAME, ACCOUNT, REGION, NOTIFICATION_EMAIL, KMS_KEY_ARN, LOG_RETENTION, NOTIFICATIONS, GITLAB, ROTATION,
     REVOCATION, ORGANIZATION),
    doc="cdk.json context key gitlab-key-rotation",
    checks=(_token_rotation_in_cdk_json, _member_roles_need_members),
)
# What one entry of ``deployments`` must or may set besides any other setting.
DEPLOYMENT_KEYS = ("stack_name", "account", "region")

# ---- the constructs' props and the Lambdas' settings.json: flat views of the same settings --------

_RESERVED_PROP = Setting(
    "reserved_concurrent_executions", r.Optional(r.Integer(1, None)), 1,
    "runs never overlap; None reserves nothing", key=None,
)  # fmt: skip

ROTATION_PROPS = Section(
    None,
    (GITLAB_URL, CA_BUNDLE_FILE, ROTATE_TOKEN, TOKEN_EXPIRY_WARNING, MAX_REQUESTS_PER_MINUTE, USERS, ROTATION_SCHEDULE,
     ROTATION_PERIOD, GRACE_PERIOD, DELETION_WINDOW, NOTIFY_ON_SUCCESS, ROTATION_DRY_RUN, ROTATION_TIMEOUT, ROTATION_MEMORY, NOTIFICATION_EMAIL,
     _RESERVED_PROP, ROTATION_HEARTBEAT, MEMBER_ROLE_NAME),
    checks=(_grace_shorter_than_period, _users_distinct, _token_rotation_in_props),
)  # fmt: skip
REVOCATION_PROPS = Section(
    None,
    (GROUPS, REVOCATION_SCHEDULE, EXEMPT_USERS, EXEMPT_GROUPS, PROTECTED_USERS, EXEMPT_TAG_KEY, ACTION,
     DEACTIVATION_GRACE, MIN_KEY_AGE, MAX_WORKERS, REVOCATION_DRY_RUN, REVOCATION_TIMEOUT, REVOCATION_MEMORY,
     NOTIFICATION_EMAIL, REVOCATION_HEARTBEAT, ACCOUNTS, OU_IDS, EXCLUDE_ACCOUNTS, MEMBER_ROLE_NAME, ACCOUNT_WORKERS),
    checks=(_groups_when_enabled, _organization_filters, _exempt_tag_not_own),
)  # fmt: skip
ROTATION_RUNTIME = Section(
    None,
    (GITLAB_URL, CA_BUNDLE_PATH, ROTATE_TOKEN, TOKEN_EXPIRY_WARNING, MAX_REQUESTS_PER_MINUTE, USERS, ROTATION_PERIOD,
     GRACE_PERIOD, DELETION_WINDOW, NOTIFY_ON_SUCCESS, ROTATION_DRY_RUN),
    checks=(_grace_shorter_than_period, _users_distinct),
)  # fmt: skip
REVOCATION_RUNTIME = Section(
    None,
    (GROUPS, EXEMPT_USERS, EXEMPT_GROUPS, PROTECTED_USERS, EXEMPT_TAG_KEY, ACTION, DEACTIVATION_GRACE, MIN_KEY_AGE,
     MAX_WORKERS, REVOCATION_DRY_RUN, ACCOUNTS, OU_IDS, EXCLUDE_ACCOUNTS, ACCOUNT_WORKERS),
    checks=(_groups_when_enabled, _organization_filters, _exempt_tag_not_own),
)  # fmt: skip
