"""The GitLab world the test server holds: users, tokens, groups, projects, memberships, variables.

Plain data with no HTTP in it. ``World`` owns every record and answers the questions the API
layer asks (who is this token, what may this user do here); the rules of the variables API live
in ``variables.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

GUEST = 10
REPORTER = 20
DEVELOPER = 30
MAINTAINER = 40
OWNER = 50
ACCESS_LEVELS = (GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER)

Kind = Literal["group", "project"]
Plan = Literal["free", "premium", "ultimate"]


@dataclass
class User:
    id: int
    username: str


@dataclass
class Token:
    """A personal access token. ``expires_at`` None means it never expires (pre-16.0 tokens)."""

    id: int
    user_id: int
    name: str
    scopes: tuple[str, ...]
    expires_at: date | None
    created_at: datetime
    revoked: bool = False
    last_used_at: datetime | None = None
    # The token this one was rotated from (GitLab's ``previous_personal_access_token_id``): the
    # chain of rotations is the token's family, which reuse detection revokes as a whole.
    previous_id: int | None = None
    rotated: bool = False  # revoked by a rotation (its successor exists)

    def expired(self, today: date) -> bool:
        """GitLab tokens stop working at 00:00 UTC on their ``expires_at`` date."""
        return self.expires_at is not None and self.expires_at <= today

    def as_json(self, today: date) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "revoked": self.revoked,
            "created_at": _iso(self.created_at),
            "description": None,
            "scopes": list(self.scopes),
            "user_id": self.user_id,
            "last_used_at": _iso(self.last_used_at) if self.last_used_at else None,
            "active": not self.revoked and not self.expired(today),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass
class Variable:
    """One CI/CD variable. ``(key, environment_scope)`` is unique within its group or project."""

    key: str
    value: str
    environment_scope: str = "*"
    protected: bool = False
    masked: bool = False
    hidden: bool = False
    raw: bool = False
    variable_type: str = "env_var"
    description: str | None = None
    id: int = 0  # creation order: GitLab's "some variable with that key" is the oldest one

    def as_json(self) -> dict:
        return {
            "variable_type": self.variable_type,
            "key": self.key,
            "value": None if self.hidden else self.value,
            "hidden": self.hidden,
            "protected": self.protected,
            "masked": self.masked,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
            "description": self.description,
        }


@dataclass
class Group:
    id: int
    full_path: str
    parent: Group | None = None
    plan: Plan = "premium"
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    variables: list[Variable] = field(default_factory=list)
    kind: Kind = "group"

    @property
    def root(self) -> Group:
        return self.parent.root if self.parent else self


@dataclass
class Project:
    id: int
    full_path: str
    namespace: Group
    members: dict[int, int] = field(default_factory=dict)
    variables: list[Variable] = field(default_factory=list)
    kind: Kind = "project"


Container = Group | Project


class World:
    """Every record of one server, with the lookups GitLab does. Not thread-safe: the server
    holds its lock around every call."""

    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.groups: dict[int, Group] = {}
        self.projects: dict[int, Project] = {}
        self._next_ids = {"user": 1, "token": 1, "group": 100, "project": 1000, "variable": 1}
        self.today_override: date | None = None

    # ids: groups start at 100 and projects at 1000, so a group id used as a project id is a 404

    def next_id(self, sequence: str) -> int:
        value = self._next_ids[sequence]
        self._next_ids[sequence] = value + 1
        return value

    def today(self) -> date:
        return self.today_override or datetime.now(UTC).date()

    def new_token_string(self) -> str:
        while True:
            candidate = "glpat-" + secrets.token_urlsafe(15)
            if candidate not in self.tokens:
                return candidate

    def user_named(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def find(self, kind: Kind, ref: str) -> Container | None:
        """A group or project by numeric id or full path (case-insensitive), as GitLab finds it."""
        table = self.groups if kind == "group" else self.projects
        if ref.isdigit():
            return table.get(int(ref))
        lowered = ref.lower()
        return next((c for c in table.values() if c.full_path.lower() == lowered), None)

    def access_level(self, user: User, container: Container) -> int:
        """The user's role here: the highest of its own membership and those inherited from
        every ancestor group (0: not a member)."""
        levels = [container.members.get(user.id, 0)]
        group = container.namespace if isinstance(container, Project) else container.parent
        while group is not None:
            levels.append(group.members.get(user.id, 0))
            group = group.parent
        return max(levels)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
