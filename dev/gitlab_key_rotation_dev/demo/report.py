"""Read the emulated world back (IAM keys, GitLab variables) and print it for people.

Only key ids, statuses and ages are shown: a secret access key or a token never is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from gitlab_key_rotation_dev.demo.emulators import Emulators
from gitlab_key_rotation_dev.demo.scenario import Scenario, iam_in, located
from gitlab_key_rotation.config import AppConfig


@dataclass(frozen=True)
class Key:
    id: str
    status: str
    age_days: int

    def __str__(self) -> str:
        return f"{self.id} {self.status:<8} {self.age_days:>3} days old"


@dataclass(frozen=True)
class Variable:
    where: str  # "group example-org/platform (scope *)"
    key: str
    holds: str  # the key id, "(secret set)", or "(missing)"
    value: str | None = field(default=None, repr=False)  # compared, never printed


@dataclass(frozen=True)
class World:
    keys: Mapping[str, tuple[Key, ...]]  # IAM user -> keys
    variables: tuple[Variable, ...]
    # IAM user -> the state secret's AWSCURRENT without the secret: access_key_id, pushed_at,
    # previous_access_key_id, previous_deactivated_at
    state: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)


def observe(emulators: Emulators, config: AppConfig, scenario: Scenario, state_secret_arns: Mapping[str, str]) -> World:
    clients: dict[str | None, object] = {}
    now = datetime.now(timezone.utc)
    keys = {}
    for user in (*scenario.machine_users, *scenario.developers):
        account, name = located(user) if user in scenario.developers else (scenario.accounts.get(user), user)
        if account not in clients:
            clients[account] = iam_in(emulators, account)
        listed = clients[account].list_access_keys(UserName=name)["AccessKeyMetadata"]
        keys[user] = tuple(
            Key(k["AccessKeyId"], k["Status"], (now - k["CreateDate"]).days)
            for k in sorted(listed, key=lambda k: k["CreateDate"])
        )
    variables = []
    for user in config.rotation.users:
        for target in user.targets:
            where = f"{target.kind} {target.id} (scope {target.environment_scope})"
            for name, is_secret in ((target.access_key_id_variable, False), (target.secret_access_key_variable, True)):
                found = emulators.gitlab.variable(target, name, target.environment_scope)
                holds = "(missing)" if found is None else "(secret set)" if is_secret else found.value
                variables.append(Variable(where, name, holds, None if found is None else found.value))
    secrets = emulators.client("secretsmanager")
    state = {}
    for user, arn in state_secret_arns.items():
        current = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        state[user] = {
            k: current.get(k) for k in ("access_key_id", "pushed_at", "previous_access_key_id", "previous_deactivated_at")
        }
    return World(keys=keys, variables=tuple(variables), state=state)


def print_comparison(
    before: World, after: World, scenario: Scenario, config: AppConfig, out: Callable[[str], None] = print
) -> None:
    out("")
    out("IAM access keys (before -> after)")
    for user, old in before.keys.items():
        account = scenario.accounts.get(user)
        role = (f"machine user of account {account}" if account else "machine user") + ": rotated, never revoked" if user in scenario.machine_users else "developer in " + ", ".join(
            scenario.developers[user]
        )
        if user in scenario.exempt_by_tag:
            role += "; exempt by tag"
        out(f"  {user} ({role})")
        new = after.keys.get(user, ())
        old_ids = {k.id for k in old}
        new_ids = {k.id for k in new}
        state = after.state.get(user, {})
        for key in old:
            later = next((k for k in new if k.id == key.id), None)
            fate = "deleted" if later is None else (f"now {later.status}" if later.status != key.status else "unchanged")
            out(f"    {key}  -> {fate}")
            if later is not None and key.id == state.get("previous_access_key_id"):
                out(f"      {_timeline(state, config)}")
        for key in new:
            if key.id not in old_ids:
                out(f"    {key}  (new)")
        if not old and not new_ids:
            out("    no keys")
    out("")
    out("GitLab CI/CD variables (what each holds; secrets are never shown)")
    for old, new in zip(before.variables, after.variables):
        if old.value == new.value:
            change = "unchanged"
        else:
            change = "-> (new secret set)" if new.holds == "(secret set)" else f"-> {new.holds}"
        out(f"  {old.where:<55} {old.key:<28} {old.holds:<22} {change}")


def _timeline(state: Mapping[str, str | None], config: AppConfig) -> str:
    """When the rotation retires the replaced key: Active through the grace period, then Inactive,
    then deleted after the deletion window (each at the first scheduled run past that time)."""
    grace = timedelta(hours=config.rotation.grace_period_hours)
    window = timedelta(days=config.rotation.deletion_window_days)
    pushed = datetime.fromisoformat(state["pushed_at"]) if state.get("pushed_at") else None
    deactivated = state.get("previous_deactivated_at")
    if deactivated:
        inactive_at = datetime.fromisoformat(deactivated)
        return f"replaced key: Inactive since {_at(inactive_at)}, deleted from {_at(inactive_at + window)} (deletion window)"
    if pushed is None:
        return "replaced key: retired by the next runs"
    return (
        f"replaced key: Active until {_at(pushed + grace)} (grace period of {config.rotation.grace_period_hours} h), "
        f"made Inactive at the first run after that, deleted from {_at(pushed + grace + window)} "
        f"({config.rotation.deletion_window_days}-day deletion window)"
    )


def _at(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
