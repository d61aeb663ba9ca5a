"""An in-memory IAM implementing ``revocation.ports.Iam``, for the domain tests.

Thread-safe like the real adapter. It records every call, can hold each call for ``delay``
seconds (to observe concurrency), and raises an injected error for one (operation, subject).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timezone

from gitlab_key_rotation.lambda_src.common.keys import AccessKey
from gitlab_key_rotation.lambda_src.revocation.ports import NoSuchEntity

NOW = datetime(2025, 6, 6, 23, 55, tzinfo=timezone.utc)
LONG_AGO = datetime(2025, 1, 1, tzinfo=timezone.utc)


class FakeIam:
    def __init__(self, delay: float = 0.0):
        self.groups: dict[str, list[str]] = {}
        self.keys: dict[str, dict[str, AccessKey]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, str]] = []
        self.errors: dict[tuple[str, str], Exception] = {}
        self.delay = delay
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._serial = 0

    # --- seeding -------------------------------------------------------------------------------

    def add_group(self, name: str, *members: str) -> None:
        self.groups.setdefault(name, []).extend(members)
        for member in members:
            self.keys.setdefault(member, {})
            self.tags.setdefault(member, {})

    def add_key(self, user: str, status: str = "Active", created: datetime = LONG_AGO) -> str:
        self._serial += 1
        key_id = f"AKIAFAKE{self._serial:012d}"
        self.keys.setdefault(user, {})[key_id] = AccessKey(key_id, status, created)
        return key_id

    def statuses(self, user: str) -> dict[str, str]:
        return {key_id: key.status for key_id, key in self.keys[user].items()}

    def operations(self, name: str) -> list[str]:
        return [subject for operation, subject in self.calls if operation == name]

    # --- the Iam Protocol ----------------------------------------------------------------------

    def group_members(self, group: str) -> list[str]:
        with self._call("group_members", group):
            if group not in self.groups:
                raise NoSuchEntity(f"The group with name {group} cannot be found.")
            return list(self.groups[group])

    def access_keys(self, user: str) -> list[AccessKey]:
        with self._call("access_keys", user):
            return list(self._user(user).values())

    def user_tags(self, user: str) -> dict[str, str]:
        with self._call("user_tags", user):
            self._user(user)
            return dict(self.tags[user])

    def tag_user(self, user: str, key: str, value: str) -> None:
        with self._call("tag_user", user):
            self._user(user)
            self.tags[user][key] = value

    def untag_user(self, user: str, key: str) -> None:
        with self._call("untag_user", user):
            self._user(user)
            self.tags[user].pop(key, None)

    def delete_access_key(self, user: str, key_id: str) -> None:
        with self._call("delete_access_key", user):
            self._key(user, key_id)
            del self.keys[user][key_id]

    def deactivate_access_key(self, user: str, key_id: str) -> None:
        with self._call("deactivate_access_key", user):
            self.keys[user][key_id] = replace(self._key(user, key_id), status="Inactive")

    # --- internals -----------------------------------------------------------------------------

    def _user(self, user: str) -> dict[str, AccessKey]:
        if user not in self.keys:
            raise NoSuchEntity(f"The user with name {user} cannot be found.")
        return self.keys[user]

    def _key(self, user: str, key_id: str) -> AccessKey:
        key = self._user(user).get(key_id)
        if key is None:
            raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found")
        return key

    def _call(self, operation: str, subject: str) -> "_Call":
        return _Call(self, operation, subject)


class _Call:
    def __init__(self, iam: FakeIam, operation: str, subject: str):
        self._iam, self._operation, self._subject = iam, operation, subject

    def __enter__(self) -> None:
        iam = self._iam
        with iam._lock:
            iam.calls.append((self._operation, self._subject))
            iam._in_flight += 1
            iam.max_in_flight = max(iam.max_in_flight, iam._in_flight)
        if iam.delay:
            time.sleep(iam.delay)
        error = iam.errors.get((self._operation, self._subject))
        if error is not None:
            self.__exit__()
            raise error

    def __exit__(self, *exc_info) -> None:
        with self._iam._lock:
            self._iam._in_flight -= 1
