"""Reading typed values out of a Lambda's environment, with errors that name the variable."""

from __future__ import annotations

import json
from typing import Mapping


class SettingsError(ValueError):
    """The Lambda's environment is wrong: the message names the variable and what is allowed."""


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise SettingsError(f"environment variable {name} is required")
    return value


def integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def json_value(env: Mapping[str, str], name: str, default: object = None) -> object:
    raw = env.get(name)
    if raw in (None, ""):
        if default is None:
            raise SettingsError(f"environment variable {name} is required")
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None


def string_list(env: Mapping[str, str], name: str, default: list[str] | None = None) -> tuple[str, ...]:
    value = json_value(env, name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{name} must be a JSON list of non-empty strings, got {value!r}")
    return tuple(value)
