"""Read the emulated world back (IAM keys, GitLab variables) and print it for people.

Only key ids, statuses and ages are shown: a secret access key or a token never is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
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


def observe(emulators: Emulators, config: AppConfig, scenario: Scenario) -> World:
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
    return World(keys=keys, variables=tuple(variables))


def print_comparison(before: World, after: World, scenario: Scenario, out: Callable[[str], None] = print) -> None:
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
        for key in old:
            later = next((k for k in new if k.id == key.id), None)
            fate = "deleted" if later is None else (f"now {later.status}" if later.status != key.status else "unchanged")
            out(f"    {key}  -> {fate}")
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
