"""The constructs' props checked by the settings contract (``lambda_src.contract.settings``):
``Duration`` props are counted in the unit the contract declares, schedules by their expression,
and every problem is reported at once, naming the prop."""

from __future__ import annotations

import json
from typing import Any, Mapping

from aws_cdk import Duration, Token
from aws_cdk import aws_events as events

from .lambda_src.contract import check_values
from .lambda_src.contract.schema import Problems, Section, Setting, SettingsError, parse

_IN_UNIT = {
    "days": lambda d: d.to_days(integral=False),
    "hours": lambda d: d.to_hours(integral=False),
    "seconds": lambda d: d.to_seconds(integral=False),
}


def check_props(section: Section, props: Mapping[str, Any]) -> dict[str, Any]:
    """The checked values (by setting name) of ``props`` (by prop name); raises one ``SettingsError``
    (a ``ValueError``) listing every bad prop. Props that are unresolved tokens are not checked."""
    problems = Problems()
    data: dict[str, Any] = {}
    for item in section.fields:
        label = item.label("prop")
        if label is None or label not in props:
            continue
        value = props[label]
        if isinstance(value, events.Schedule):
            value = value.expression_string
        if isinstance(value, str) and Token.is_unresolved(value):
            continue
        if isinstance(item, Setting) and item.unit and value is not None:
            if not isinstance(value, Duration):
                problems.add(label, f"must be a Duration (e.g. Duration.{item.unit}(...)), got {value!r}")
                continue
            amount = _IN_UNIT[item.unit](value)
            if amount != int(amount):
                problems.add(label, f"must be a whole number of {item.unit}, got {value.to_human_string()}")
                continue
            value = int(amount)
        data[label] = value
    values = parse(section, data, "", problems, "prop")
    problems.raise_if_any()
    assert values is not None
    return values


def settings_file(section: Section, values: Mapping[str, Any]) -> bytes:
    """The Lambda's ``settings.json``: ``values`` (by name) of the settings ``section`` ships, checked
    by the same parse the Lambda runs at start."""
    from .lambda_src.contract.schema import runtime_document

    document = runtime_document(section, values)
    try:
        check_values(section, document, "settings.json", "name")
    except SettingsError as exc:  # the construct accepted what the Lambda would refuse: a contract bug
        raise AssertionError(f"the Lambda would refuse the settings the construct accepted: {exc}") from None
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def default_duration(setting: Setting) -> Duration:
    """The contract's default of a ``Duration`` prop."""
    return {"days": Duration.days, "hours": Duration.hours, "seconds": Duration.seconds}[setting.unit](setting.default)
