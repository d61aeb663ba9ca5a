"""The rules of GitLab's CI/CD variables API (GITLAB_API.md), applied to a group or project.

Two layers, as in GitLab: parameter coercion (Grape: ``{"error": "key is missing"}``) and model
validation (ActiveRecord: ``{"message": {"value": ["is invalid"]}}``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from gitlab_key_rotation_dev.gitlab_server import responses
from gitlab_key_rotation_dev.gitlab_server.model import Container, Group, Variable, World

KEY_PATTERN = re.compile(r"\A[a-zA-Z0-9_]+\Z")
MASKABLE = re.compile(r"\A[a-zA-Z0-9_+=/@:.~-]{8,}\Z")
MASKABLE_RAW = re.compile(r"\A\S{8,}\Z")
ENVIRONMENT_SCOPE = re.compile(r"\A[a-zA-Z0-9_/${}. *-]+\Z")
VARIABLE_TYPES = ("env_var", "file")
MAX_VALUE_LENGTH = 10_000

_STRINGS = ("key", "value", "variable_type", "environment_scope", "description")
_BOOLEANS = ("protected", "masked", "raw", "masked_and_hidden")
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def coerce(params: Mapping[str, object], *, required: tuple[str, ...] = ()) -> dict[str, object]:
    """The declared variable parameters present in ``params``, typed the way Grape types them."""
    problems = [f"{name} is missing" for name in required if params.get(name) is None]
    attrs: dict[str, object] = {}
    for name in _STRINGS:
        raw = params.get(name)
        if raw is None:
            continue
        if isinstance(raw, (bool, list, dict)):
            problems.append(f"{name} is invalid")
        else:
            attrs[name] = str(raw)
    for name in _BOOLEANS:
        raw = params.get(name)
        if raw is None:
            continue
        if isinstance(raw, bool):
            attrs[name] = raw
        elif isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            attrs[name] = raw.lower() in _TRUE
        else:
            problems.append(f"{name} is invalid")
    if "variable_type" in attrs and attrs["variable_type"] not in VARIABLE_TYPES:
        problems.append("variable_type does not have a valid value")
    if problems:
        raise responses.bad_parameter(", ".join(problems))
    return attrs


def find(container: Container, key: str, scope: str | None) -> Variable | None:
    """GitLab's ``find_variable``: an exact ``filter[environment_scope]`` match when a scope is
    given, 409 when several variables have the key and no scope narrows them down."""
    matches = [v for v in container.variables if v.key == key and (not scope or v.environment_scope == scope)]
    if len(matches) > 1:
        raise responses.conflict(responses.AMBIGUOUS_MESSAGE)
    return matches[0] if matches else None


def create(world: World, container: Container, params: Mapping[str, object]) -> Variable:
    attrs = _drop_unlicensed(container, coerce(params, required=("key", "value")))
    hidden = bool(attrs.pop("masked_and_hidden", False))
    variable = Variable(**attrs, hidden=hidden)  # type: ignore[arg-type]
    variable.masked = variable.masked or hidden
    _validate(variable, container, previous=None)
    variable.id = world.next_id("variable")
    container.variables.append(variable)
    return variable


def update(
    container: Container, key: str, scope: str | None, filter_given: bool, params: Mapping[str, object]
) -> Variable:
    """PUT. Projects update exactly the filtered variable. Groups keep GitLab's quirk: with no
    ``filter`` parameter, or a filter that matches nothing, they update the oldest variable
    that has the key, whatever its scope."""
    attrs = _drop_unlicensed(container, coerce(params))
    attrs.pop("key", None)
    if isinstance(container, Group):
        variable = find(container, key, scope) if filter_given else None
        variable = variable or next((v for v in container.variables if v.key == key), None)
    else:
        variable = find(container, key, scope)
    if variable is None:
        raise responses.not_found(_not_found_name(container))
    # Hidden is set at creation or never: a PUT asking for it (even on a hidden variable), or
    # to undo it, is refused. A hidden variable's value may change; its masking may not.
    hidden = attrs.pop("masked_and_hidden", None)
    if hidden is True or (hidden is False and variable.hidden):
        raise responses.validation_failed({"base": [responses.HIDDEN_MESSAGE]})
    if variable.hidden and attrs.get("masked") is False:
        raise responses.validation_failed({"base": [responses.VISIBILITY_MESSAGE]})
    changed = dataclasses.replace(variable, **attrs)
    _validate(changed, container, previous=variable)
    container.variables[container.variables.index(variable)] = changed
    return changed


def delete(container: Container, key: str, scope: str | None) -> None:
    variable = find(container, key, scope)
    if variable is None:
        raise responses.not_found(_not_found_name(container))
    container.variables.remove(variable)


def found_or_404(container: Container, key: str, scope: str | None) -> Variable:
    variable = find(container, key, scope)
    if variable is None:
        raise responses.not_found(_not_found_name(container))
    return variable


def _not_found_name(container: Container) -> str:
    return "GroupVariable" if isinstance(container, Group) else "Variable"


def _drop_unlicensed(container: Container, attrs: dict[str, object]) -> dict[str, object]:
    """Scoped group variables are a paid feature: on a Free plan the scope is dropped silently."""
    if isinstance(container, Group) and container.root.plan == "free":
        attrs.pop("environment_scope", None)
    return attrs


def _validate(variable: Variable, container: Container, previous: Variable | None) -> None:
    errors: dict[str, list[str]] = {}

    def add(attribute: str, message: str) -> None:
        errors.setdefault(attribute, []).append(message)

    if not variable.key:
        add("key", "can't be blank")
    if len(variable.key) > 255:
        add("key", "is too long (maximum is 255 characters)")
    if not KEY_PATTERN.match(variable.key):
        add("key", "can contain only letters, digits and '_'.")
    if len(variable.value) > MAX_VALUE_LENGTH:
        add("value", f"is too long (maximum is {MAX_VALUE_LENGTH} characters)")
    if variable.masked and not (MASKABLE_RAW if variable.raw else MASKABLE).match(variable.value):
        add("value", "is invalid")
    if not variable.environment_scope:
        add("environment_scope", "can't be blank")
    elif len(variable.environment_scope) > 255:
        add("environment_scope", "is too long (maximum is 255 characters)")
    elif not ENVIRONMENT_SCOPE.match(variable.environment_scope):
        add("environment_scope", "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces")
    if variable.description is not None and len(variable.description) > 255:
        add("description", "is too long (maximum is 255 characters)")
    taken = any(
        v is not previous and v.key == variable.key and v.environment_scope == variable.environment_scope
        for v in container.variables
    )
    if taken:
        add("key", f"({variable.key}) has already been taken")
    if errors:
        raise responses.validation_failed(errors)
