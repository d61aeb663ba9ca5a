"""The shape of a settings declaration and the one parser that reads every form of it.

A ``Setting`` is declared once, with up to three names:

- ``key``: its key in cdk.json (inside its section, e.g. ``period_days`` in ``rotation``);
- ``prop``: its keyword in the construct's API (e.g. ``rotation_period``, a ``Duration`` in ``unit``);
- ``name``: its key in the Lambda's ``settings.json`` and the field of the Lambda's settings.

``parse`` reads a JSON-shaped object in one of the three namings, fills defaults, and collects
every problem (path, bad value, what is allowed) instead of stopping at the first one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence, Union

from ..common.errors import OperatorError
from .rules import Invalid, Optional, Rule

Naming = Literal["key", "prop", "name"]
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "required"})()
SAME: Any = type("Same", (), {"__repr__": lambda self: "same as name"})()


class SettingsError(OperatorError, ValueError):
    """Settings that cannot work: one line per problem, each naming the key, the value and what is allowed."""

    def __init__(self, problems: Sequence[str]):
        self.problems = tuple(problems)
        super().__init__(self.problems[0] if len(self.problems) == 1 else "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True, eq=False)
class Setting:
    name: str
    rule: Rule
    default: Any = REQUIRED
    doc: str = ""
    key: str | None = SAME
    prop: str | None = SAME
    unit: str | None = None  # the construct prop is a Duration, counted in this unit
    runtime: bool = False  # the Lambda reads it from its settings.json
    default_doc: str | None = None  # the default as the README says it, when not the JSON of ``default``

    def label(self, naming: Naming) -> str | None:
        value = {"key": self.key, "prop": self.prop, "name": self.name}[naming]
        return self.name if value is SAME else value


@dataclass(frozen=True, eq=False)
class Items:
    """A list setting whose items are objects (``section``), e.g. the users or their targets."""

    name: str
    section: "Section"
    min_items: int = 1
    doc: str = ""
    key: str | None = SAME
    prop: str | None = SAME
    runtime: bool = False
    default: Any = REQUIRED
    default_doc: str | None = None

    def label(self, naming: Naming) -> str | None:
        value = {"key": self.key, "prop": self.prop, "name": self.name}[naming]
        return self.name if value is SAME else value


Check = Callable[[Mapping[str, Any], Callable[[str], str]], Iterable[str]]


@dataclass(frozen=True, eq=False)
class Section:
    """A JSON object of settings. ``key`` is its key in the parent (cdk.json only); ``optional``
    sections that are absent (or null) parse to None; ``checks`` relate several of its values."""

    key: str | None
    fields: tuple[Union[Setting, Items, "Section"], ...]
    doc: str = ""
    checks: tuple[Check, ...] = ()
    optional: bool = False

    def label(self, naming: Naming) -> str | None:
        return self.key if naming == "key" else None

    def field(self, name: str) -> Setting | Items:
        for item in self.fields:
            if not isinstance(item, Section) and item.name == name:
                return item
        raise KeyError(name)

    def walk(self, path: str = "") -> Iterator[tuple[str, "Setting | Items | Section"]]:
        """Every setting (and optional section) with its cdk.json key path below this section
        (``rotation.users[].iam_user``)."""
        for item in self.fields:
            label = item.label("key")
            if label is None:
                continue
            here = f"{path}.{label}" if path else label
            if isinstance(item, Section):
                if item.optional:
                    yield here, item
                yield from item.walk(here)
            else:
                yield here, item
                if isinstance(item, Items):
                    yield from item.section.walk(here + "[]")


@dataclass
class Problems:
    """Problems found so far; ``where`` turns a key path into the text shown (e.g. with its origin)."""

    where: Callable[[str], str] = lambda path: path
    found: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        line = f"{self.where(path)} {message}"
        if line not in self.found:
            self.found.append(line)

    def note(self, message: str) -> None:
        if message not in self.found:
            self.found.append(message)

    def raise_if_any(self) -> None:
        if self.found:
            raise SettingsError(self.found)


def refusal(rule: Rule, value: Any, error: Invalid) -> str:
    detail = f" ({error})" if str(error) else ""
    return f"must be {rule.allowed}, got {rule.show(value)}{detail}"


def parse(
    section: Section,
    data: Any,
    path: str,
    problems: Problems,
    naming: Naming,
    runtime_only: bool = False,
) -> dict[str, Any] | None:
    """The values of ``data`` by setting name (sections by their key), defaults filled in.

    A bad or missing value is recorded in ``problems`` and left out of the result; checks that
    need it are skipped. Keys that no setting has are refused: they are typos.
    """
    if not isinstance(data, Mapping):
        problems.add(path, f"must be a JSON object, got {data!r}")
        return None
    fields = [f for f in section.fields if f.label(naming) is not None and (not runtime_only or _shipped(f))]
    labels = {f.label(naming): f for f in fields}
    for unknown in sorted(str(k) for k in data if k not in labels):
        problems.add(_join(path, unknown), f"is not a setting (a typo?); the keys allowed here are {sorted(labels)}")
    values: dict[str, Any] = {}
    for label, item in labels.items():
        at = _join(path, label)
        raw = data.get(label)
        if isinstance(item, Section):
            if raw is None and item.optional:
                values[label] = None
                continue
            parsed = parse(item, {} if raw is None else raw, at, problems, naming, runtime_only)
            if parsed is not None:
                values[label] = parsed
            continue
        if raw is None and naming == "prop" and label in data and isinstance(getattr(item, "rule", None), Optional):
            values[item.name] = None  # a prop given as None means none (in JSON, null means the default)
            continue
        if raw is None:
            if item.default is REQUIRED:
                problems.add(at, "is required")
                continue
            raw = item.default
        if isinstance(item, Items):
            parsed_items = _parse_items(item, raw, at, problems, naming, runtime_only)
            if parsed_items is not None:
                values[item.name] = parsed_items
            continue
        try:
            values[item.name] = item.rule.check(raw)
        except Invalid as error:
            problems.add(at, refusal(item.rule, raw, error))
    names = {f.name: _join(path, f.label(naming)) for f in fields if not isinstance(f, Section)}
    for check in section.checks:  # ``at`` takes a setting's name, or a key path below this section
        for message in check(values, lambda name: problems.where(names.get(name) or _join(path, name))):
            problems.note(message)
    return values


def _parse_items(item: Items, raw: Any, at: str, problems: Problems, naming: Naming, runtime_only: bool) -> list | None:
    if not isinstance(raw, (list, tuple)) or len(raw) < item.min_items:
        what = "a non-empty list" if item.min_items else "a list"
        problems.add(at, f"must be {what} of objects ({item.doc or item.name}), got {raw!r}")
        return None
    before = len(problems.found)
    parsed = [parse(item.section, element, f"{at}[{index}]", problems, naming, runtime_only) for index, element in enumerate(raw)]
    return None if len(problems.found) > before else parsed  # checks on the list need every item whole


def _shipped(item: Setting | Items | Section) -> bool:
    if isinstance(item, Section):
        return any(_shipped(f) for f in item.fields)
    return item.runtime


def _join(path: str, label: str) -> str:
    return f"{path}.{label}" if path else label


def runtime_document(section: Section, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``settings.json`` of a Lambda: the shipped settings of ``values`` (parsed, by name)."""
    document: dict[str, Any] = {}
    for item in section.fields:
        if isinstance(item, Section) or not item.runtime or item.name not in values:
            continue
        value = values[item.name]
        if isinstance(item, Items):
            value = [runtime_document(item.section, element) for element in value]
        document[item.name] = value
    return document
