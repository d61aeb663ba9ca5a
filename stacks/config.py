"""The operator's settings: ``cdk.json`` context key ``gitlab-key-rotation``, checked by the settings
contract (``gitlab_key_rotation.lambda_src.contract``) into one ``AppConfig`` per stack.

- Every problem is collected, each naming its key path (``gitlab-key-rotation.rotation.users[0]
  .targets[1].id``), the bad value and what is allowed; they come as one ``ConfigError``.
- ``deployments`` (optional): one stack per entry, the entry's settings merged over the others.
- ``-c gitlab-key-rotation.<key path>=<value>`` overrides one setting (the value is read as JSON
  when it parses, else as a string); a path that names no setting is refused.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Mapping

from .lambda_src.contract import GitLabTarget, RotatedUser, SettingsError
from .lambda_src.contract import settings as declared
from .lambda_src.contract.rules import BASE_DIR, Boolean
from .lambda_src.contract.schema import REQUIRED, Items, Problems, Section, Setting, parse

CONTEXT_KEY = "gitlab-key-rotation"
ConfigError = SettingsError
_OVERRIDE_PREFIX = CONTEXT_KEY + "."
_KEY_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class AppConfig:
    """The checked settings of one stack, read by their cdk.json keys: ``config.rotation.period_days``.

    Sections are ``AppConfig`` views too (``None`` for an absent optional section such as ``vpc``);
    ``rotation.users`` are ``RotatedUser`` objects.
    """

    def __init__(self, section: Section, values: Mapping[str, Any]):
        self._section = section
        self._values = values

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        for item in self._section.fields:
            if item.label("key") != key:
                continue
            if isinstance(item, Section):
                values = self._values[key]
                return None if values is None else AppConfig(item, values)
            value = self._values[item.name]
            if item is declared.USERS:
                return tuple(_user(user) for user in value)
            return tuple(value) if isinstance(value, list) else value
        raise AttributeError(f"{CONTEXT_KEY} has no setting {key!r}")

    def __repr__(self) -> str:
        return f"AppConfig({self._values!r})"

    @property
    def slack(self) -> "AppConfig | None":
        """``notifications.slack`` (``workspace_id``, ``channel_id``), or None."""
        return self.notifications.slack

    @property
    def reaches_members(self) -> bool:
        """Whether a function works in other accounts (users with ``account``, ``revocation.accounts``)."""
        return declared.reaches_members(self._values)


def _user(values: Mapping[str, Any]) -> RotatedUser:
    return RotatedUser(
        iam_user=values["iam_user"],
        iam_path=values["iam_path"],
        targets=tuple(GitLabTarget(**target) for target in values["targets"]),
        account=values["account"],
    )


def load_config(context: Mapping[str, object], base_dir: Path) -> AppConfig:
    """The one stack's settings of a cdk.json without ``deployments``."""
    configs = load_deployments(context, base_dir)
    if len(configs) != 1:
        raise ConfigError([f"{CONTEXT_KEY}.deployments describes {len(configs)} stacks; load them with load_deployments"])
    return configs[0]


def load_deployments(context: Mapping[str, object], base_dir: Path) -> list[AppConfig]:
    """One ``AppConfig`` per stack: per entry of ``deployments``, or one without it.

    ``context`` is the whole CDK context (``app.node.get_all_context()``): its key ``gitlab-key-rotation``
    and any ``gitlab-key-rotation.<key path>`` overrides. Relative file paths are taken from ``base_dir``.
    """
    problems = Problems()
    base = context.get(CONTEXT_KEY)
    if base is None:
        raise ConfigError([f"the CDK context has no key {CONTEXT_KEY!r}: add it to cdk.json (see README, Configuration)"])
    if not isinstance(base, Mapping):
        raise ConfigError([f"{CONTEXT_KEY} must be a JSON object, got {base!r}"])
    base = copy.deepcopy(dict(base))
    overrides = _overrides(context)
    for path, value in overrides.items():
        if path.startswith("deployments"):
            _apply(base, path, value, problems)
    rest = {p: v for p, v in overrides.items() if not p.startswith("deployments")}

    deployments = base.pop("deployments", None)
    if deployments is None:
        entries: list[tuple[str | None, dict]] = [(None, base)]
    elif not isinstance(deployments, list) or not deployments or not all(isinstance(d, Mapping) for d in deployments):
        raise ConfigError([f"{CONTEXT_KEY}.deployments must be a non-empty list of objects, each with stack_name, account and region, got {deployments!r}"])
    else:
        if "stack_name" in base:
            problems.note(f"{CONTEXT_KEY}.stack_name cannot be set with deployments: each entry of {CONTEXT_KEY}.deployments names its stack")
        entries = [(f"{CONTEXT_KEY}.deployments[{i}]", _merged(base, entry)) for i, entry in enumerate(deployments)]

    configs: list[AppConfig] = []
    token = BASE_DIR.set(base_dir)
    try:
        for index, (origin, settings) in enumerate(entries):
            entry = deployments[index] if origin else {}
            for path, value in rest.items():
                _apply(settings, path, value, problems)
            problems.where = _origin(origin, entry, rest)
            before = len(problems.found)
            if origin:
                for key in declared.DEPLOYMENT_KEYS:
                    if settings.get(key) is None:
                        problems.note(f"{origin}.{key} is required in each entry of {CONTEXT_KEY}.deployments")
            values = parse(declared.APP, settings, "", problems, "key")
            if values is not None and len(problems.found) == before:
                organization = values["organization"]
                if organization["member_stack_name"] is None:
                    organization["member_stack_name"] = f"{values['stack_name']}Member"
                configs.append(AppConfig(declared.APP, values))
    finally:
        BASE_DIR.reset(token)
    problems.where = lambda path: path
    names = [settings.get("stack_name") for origin, settings in entries if origin and isinstance(settings.get("stack_name"), str)]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.note(f"{CONTEXT_KEY}.deployments name stack {name!r} more than once: each stack needs its own stack_name")
    problems.raise_if_any()
    return configs


def _overrides(context: Mapping[str, object]) -> dict[str, Any]:
    """``gitlab-key-rotation.<key path>`` context keys; a value is read as JSON when it parses, except
    for a setting that holds a string (an account id such as 012345678901 stays as written)."""
    found = {}
    for key, value in context.items():
        if key.startswith(_OVERRIDE_PREFIX):
            path = key[len(_OVERRIDE_PREFIX):]
            if isinstance(value, str):
                value = _override_value(path, value)
            found[path] = value
    return found


def _override_value(path: str, raw: str) -> Any:
    setting = _declared(_tokens(path) or [])
    if setting is not None and getattr(setting, "rule", None) is not None and setting.rule.text:
        if raw == "null":
            return None
        if not raw.startswith('"'):
            return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _declared(tokens: list[str | int]) -> Setting | Items | Section | None:
    """The declaration a key path names (list indexes skipped), or None."""
    node: Setting | Items | Section | None = declared.APP
    for token in tokens:
        if isinstance(token, int):
            continue
        if token == "deployments" and node is declared.APP:
            continue
        section = node.section if isinstance(node, Items) else node
        if not isinstance(section, Section):
            return None
        node = next((f for f in section.fields if f.label("key") == token), None)
        if node is None:
            return None
    return node


def _tokens(path: str) -> list[str | int] | None:
    """``rotation.users[0].iam_user`` -> ``["rotation", "users", 0, "iam_user"]``; None if not a key path."""
    if not _KEY_PATH.fullmatch(path):
        return None
    return [int(index) if index else key for key, index in _TOKEN.findall(path)]


def _apply(settings: dict, path: str, value: Any, problems: Problems) -> None:
    """Set ``path`` (``rotation.users[0].iam_user``) to ``value``; the parse then checks it like any setting."""
    where = f"-c {_OVERRIDE_PREFIX}{path}"
    tokens = _tokens(path)
    if tokens is None:
        problems.note(f"{where}: {path!r} is not a key path such as rotation.period_days or rotation.users[0].iam_user")
        return
    node: Any = settings
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                problems.note(f"{where}: there is no item [{token}] to override (the list has {len(node) if isinstance(node, list) else 0})")
                return
        elif not isinstance(node, dict):
            problems.note(f"{where}: {_OVERRIDE_PREFIX}{_path(tokens[:depth])} is not an object")
            return
        if last:
            node[token] = value
        else:
            if isinstance(token, str) and node.get(token) is None:
                node[token] = {} if isinstance(tokens[depth + 1], str) else []
            node = node[token]


def _path(tokens: list[str | int]) -> str:
    return "".join(f"[{t}]" if isinstance(t, int) else (f".{t}" if i else t) for i, t in enumerate(tokens))


def _merged(base: Mapping[str, Any], entry: Mapping[str, Any]) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in entry.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _origin(origin: str | None, entry: Mapping[str, Any], overrides: Mapping[str, Any]):
    """How a key path is shown: the -c override, the deployment entry, or the shared settings that set it."""

    def where(path: str) -> str:
        tokens = _tokens(path) or []
        for override in overrides:
            override_tokens = _tokens(override)
            if override_tokens and tokens[: len(override_tokens)] == override_tokens:
                return f"{_OVERRIDE_PREFIX}{path} (set with -c)"
        if origin is None or not path:
            return origin or (f"{CONTEXT_KEY}.{path}" if path else CONTEXT_KEY)
        node: Any = entry
        for token in tokens:
            if not isinstance(node, Mapping):
                break  # inside a list or value the entry replaced as a whole
            if token not in node:
                return f"{CONTEXT_KEY}.{path}"
            node = node[token]
        return f"{origin}.{path}"

    return where


def configuration_table() -> str:
    """The README's table of every cdk.json setting, from the contract's declarations."""
    rows = ["| key | default | meaning and what is allowed |", "| --- | --- | --- |"]
    for path, item in declared.APP.walk():
        rows.append(f"| `{path}` | {_default_text(item)} | {_meaning(item)} |".replace("\n", " "))
    rows.append(
        f"| `deployments` | none: one stack from the settings above | list of objects, one stack each: "
        f"{', '.join(f'`{k}`' for k in declared.DEPLOYMENT_KEYS)} (required) plus any setting above, which overrides "
        "the shared one for that stack (objects merge key by key, lists and values replace) |"
    )
    return "\n".join(rows) + "\n"


def _default_text(item: Setting | Items | Section) -> str:
    if isinstance(item, Section):
        return "none"
    if item.default_doc is not None:
        return item.default_doc
    if item.default is REQUIRED:
        return "required"
    if item.default is None:
        return "none"
    if isinstance(item.default, str):
        return f"`{item.default}`" if item.default else '`""`'
    return f"`{json.dumps(item.default)}`"


def _meaning(item: Setting | Items | Section) -> str:
    if isinstance(item, Section):
        text = f"object: {item.doc} (the rows below)"
    elif isinstance(item, Items):
        text = f"list of objects: {item.doc or item.name} (the rows below)"
    elif isinstance(item.rule, Boolean):
        text = f"{item.doc} (`true` or `false`)"
    else:
        text = f"{item.doc}; {item.rule.allowed}"
    return text.replace("|", "\\|")
