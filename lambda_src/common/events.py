"""The one strict reader of both Lambdas' events: understood completely, or refused.

An event is a JSON object (``None``, an invocation without payload, counts as ``{}``) whose fields
are each either

- a field of EventBridge's scheduled-event envelope (``version``, ``id``, ``detail-type``,
  ``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``) or ``replay-name``,
  which EventBridge adds when it replays an archive: a normal run, whose ``id`` is the event's id;
  ``detail`` must be ``{}`` (a scheduled event's), so that options put there by mistake are refused
  instead of ignored; or
- one of the handler's own options, declared as ``{name: type}`` (``bool`` or ``str``; a string
  must not be empty).

Anything else - an unknown field (``dryrun`` for ``dry_run``), a wrong type (``{"force": "yes"}``),
a list instead of an object - raises ``EventError`` before the handler does anything. Its message
names the field and lists the allowed ones. Nothing from the event is echoed beyond
``ECHO_LIMIT`` characters per name and ``NAMES_LIMIT`` names, and values never are (only their
type), so a 1 MB field stays a short log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import OperatorError

ENVELOPE: Mapping[str, type] = {
    "version": str,
    "id": str,
    "detail-type": str,
    "source": str,
    "account": str,
    "time": str,
    "region": str,
    "resources": list,
    "detail": dict,
    "replay-name": str,
}
ECHO_LIMIT = 200  # characters of one field name quoted in an error
NAMES_LIMIT = 10  # unknown field names quoted in an error

_KINDS = {bool: "true or false", str: "a non-empty string", list: "a list of strings", dict: "an object"}


class EventError(OperatorError, ValueError):
    """The event is not one the handler fully understands; nothing was done."""


@dataclass(frozen=True)
class Event:
    options: Mapping[str, bool | str]  # only the options the event set
    event_id: str | None  # the envelope's id (the same for a duplicate delivery), if any


def parse_event(event: object, options: Mapping[str, type]) -> Event:
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise EventError(f"the event must be a JSON object, got {_type(event)}")
    unknown = [name for name in event if name not in options and name not in ENVELOPE]
    if unknown:
        raise EventError(
            f"the event has unknown fields {_names(unknown)}; allowed: {', '.join(options) or 'none'}"
            f" (and EventBridge's envelope: {', '.join(ENVELOPE)})"
        )
    for name, kind in ENVELOPE.items():
        if name in event:
            _check(event[name], kind, name)
    if event.get("detail"):
        raise EventError("the event's detail must be {} (a scheduled event's); options go at the top level")
    if not all(isinstance(resource, str) for resource in event.get("resources", [])):
        raise EventError("the event's resources must be a list of strings")
    chosen = {}
    for name, kind in options.items():
        if name in event:
            chosen[name] = _check(event[name], kind, name)
    return Event(options=chosen, event_id=event.get("id") or None)


def _check(value: object, kind: type, name: str) -> object:
    # bool is an int subclass and JSON has no other booleans, so an exact type check is the right one
    if type(value) is not kind or (kind is str and not value):
        raise EventError(f"the event's {name} must be {_KINDS[kind]}, got {_type(value)}")
    return value


def _type(value: object) -> str:
    if isinstance(value, str) and not value:
        return "an empty string"
    return f"a {type(value).__name__}"


def _names(names: list[object]) -> str:
    quoted = [_quote(name) for name in names[:NAMES_LIMIT]]
    more = f" and {len(names) - NAMES_LIMIT} more" if len(names) > NAMES_LIMIT else ""
    return f"[{', '.join(quoted)}]{more}"


def _quote(name: object) -> str:
    text = repr(name)
    if len(text) <= ECHO_LIMIT:
        return text
    return f"{text[:ECHO_LIMIT]}... ({len(text)} characters)"
