"""The embedded default scenario: what a real account and GitLab look like before the first run.

- each rotation user of the config is an IAM user with one key created ``key_age_days`` ago; that
  key (id and secret) is in the CI/CD variables of every GitLab target of the user, and its state
  secret records it as the current key pushed then (a key the rotation already manages: under the
  rotation period nothing is due);
- a GitLab bot user, Owner of the targets' top-level groups, has a personal access token with scope
  ``api``, which the operator has put into the token secret;
- developers sit in the revocation groups with access keys: ``alice`` (first group, one key),
  ``bob`` (both groups, two keys), ``carol`` (second group, one key), ``dave`` (first group,
  carries the exemption tag), and the machine user sits in the first group too (protected).

Organization mode: a rotation user with an ``account`` is created in that account (under its
``iam_path``); ``developer_accounts`` lists the accounts that get the developers and groups (None:
the hub's own), and a developer of another account is named ``<account>/<name>`` in the scenario.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from moto.backends import get_backend

from gitlab_key_rotation_dev.demo.deployment import Deployment
from gitlab_key_rotation_dev.demo.emulators import ACCOUNT_ID, Emulators
from gitlab_key_rotation.config import AppConfig
from gitlab_key_rotation.lambda_src.rotation.state import CurrentRecord, dump
from gitlab_key_rotation_dev.gitlab_server import OWNER, GitLabServer, User
from gitlab_key_rotation_dev.member_accounts import account_clients

GITLAB_BOT = "ci-rotation-bot"


@dataclass
class Scenario:
    machine_users: tuple[str, ...]
    developers: dict[str, tuple[str, ...]]  # user (``<account>/<name>`` outside the hub) -> IAM groups
    exempt_by_tag: tuple[str, ...]
    gitlab_token: str = field(repr=False)
    accounts: dict[str, str] = field(default_factory=dict)  # machine user -> its account, when not the hub's


def located(name: str) -> tuple[str | None, str]:
    """(account or None for the hub's, IAM user name) of a scenario user name."""
    account, _, user = name.rpartition("/")
    return account or None, user


def iam_in(emulators: Emulators, account: str | None):
    """An IAM client acting in ``account`` (None: the hub's), for seeding and observing."""
    return emulators.client("iam") if account in (None, ACCOUNT_ID) else account_clients(emulators.client, account)("iam")


def seed(
    emulators: Emulators,
    config: AppConfig,
    deployment: Deployment,
    *,
    key_age_days: int = 100,
    developer_accounts: tuple[str | None, ...] = (None,),
) -> Scenario:
    gitlab = emulators.gitlab
    bot = gitlab.add_user(GITLAB_BOT)
    created: set[str] = set()
    token = gitlab.add_token(bot, scopes=("api",), expires_at=date.today() + timedelta(days=200))
    state_secrets = deployment.state_secret_arns()
    for user in config.rotation.users:
        iam = iam_in(emulators, user.account)
        iam.create_user(UserName=user.iam_user, Path=user.iam_path)
        key = iam.create_access_key(UserName=user.iam_user)["AccessKey"]
        created_at = age_key(user.iam_user, key["AccessKeyId"], key_age_days, user.account or ACCOUNT_ID)
        emulators.client("secretsmanager").put_secret_value(
            SecretId=state_secrets[user.iam_user],
            SecretString=dump(
                CurrentRecord(
                    access_key_id=key["AccessKeyId"],
                    secret_access_key=key["SecretAccessKey"],
                    pushed_at=created_at.replace(tzinfo=timezone.utc),
                )
            ),
        )
        for target in user.targets:
            _ensure_container(gitlab, target.kind, target.id, bot, created)
            common = {"environment_scope": target.environment_scope, "protected": target.protected}
            gitlab.set_variable(target, target.access_key_id_variable, key["AccessKeyId"], **common)
            gitlab.set_variable(
                target, target.secret_access_key_variable, key["SecretAccessKey"], masked=True, raw=True, **common
            )
    emulators.client("secretsmanager").put_secret_value(
        SecretId=deployment.rotation.environment["GITLAB_TOKEN_SECRET_ARN"],
        SecretString=json.dumps({"GITLAB_TOKEN": token}),
    )
    groups = config.revocation.groups
    first, second = groups[0], groups[-1]
    people = {"alice": (first,), "bob": tuple(dict.fromkeys((first, second))), "carol": (second,), "dave": (first,)}
    exempt_tag = config.revocation.exempt_tag_key
    developers: dict[str, tuple[str, ...]] = {}
    exempt: list[str] = []
    for account in developer_accounts:
        iam = iam_in(emulators, account)
        prefix = f"{account}/" if account else ""
        for group in groups:
            iam.create_group(GroupName=group)
        for name, member_of in people.items():
            iam.create_user(UserName=name)
            for group in member_of:
                iam.add_user_to_group(GroupName=group, UserName=name)
            for _ in range(2 if name == "bob" else 1):
                key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
                age_key(name, key_id, 12, account or ACCOUNT_ID)
            developers[prefix + name] = member_of
        if exempt_tag:
            iam.tag_user(UserName="dave", Tags=[{"Key": exempt_tag, "Value": "break-glass account"}])
            exempt.append(prefix + "dave")
        for machine_user in config.rotation.users:
            if machine_user.account == account:
                iam.add_user_to_group(GroupName=first, UserName=machine_user.iam_user)
    return Scenario(
        machine_users=tuple(u.iam_user for u in config.rotation.users),
        developers=developers,
        exempt_by_tag=tuple(exempt),
        gitlab_token=token,
        accounts={u.iam_user: u.account for u in config.rotation.users if u.account},
    )


def age_key(user_name: str, access_key_id: str, days: int, account: str = ACCOUNT_ID) -> datetime:
    """Backdate a key's CreateDate in the emulator (the API cannot: AWS sets it at creation); the
    new CreateDate (naive UTC)."""
    user = get_backend("iam")[account]["global"].users[user_name]
    key = next(k for k in user.access_keys if k.access_key_id == access_key_id)
    key.create_date = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)
    return key.create_date


def _ensure_container(gitlab: GitLabServer, kind: str, full_path: str, owner: User, created: set[str]) -> None:
    """Create the target's groups (the bot is Owner of the top one) and project, once each."""
    parts = full_path.split("/")
    group_parts = parts if kind == "group" else parts[:-1]
    for depth in range(1, len(group_parts) + 1):
        path = "/".join(group_parts[:depth])
        if path not in created:
            group = gitlab.add_group(path)
            created.add(path)
            if depth == 1:
                gitlab.add_member(group, owner, OWNER)
    if kind == "project" and full_path not in created:
        gitlab.add_project(full_path)
        created.add(full_path)
