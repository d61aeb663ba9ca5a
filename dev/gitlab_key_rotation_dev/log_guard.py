"""Suite-wide guard: no log record of any test may carry a secret.

Every record that reaches the root logger during a test (INFO and up from every library; our own
code logs nothing secret at DEBUG either) is kept, rendered the way a log handler would render it
(message, extra fields, exception and stack text) and searched, when the test ends, for:

- the secret of every access key moto's IAM holds at the end of the test, and of every key it
  created during the test (recorded at creation: a test that resets moto midway, like the fault
  matrix's fresh worlds, would otherwise hide the keys of its earlier worlds); moto in-process and
  ``moto.server`` threads share both,
- anything shaped like a GitLab token (``glpat-...``: the project's GitLab server makes those),
- any value a test registered with ``register_secret``.

A hit fails the test in its teardown and names the logger and the kind of secret, never the value.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback

import pytest

from gitlab_key_rotation_dev.log_records import fields

GITLAB_TOKEN = re.compile(r"glpat-[A-Za-z0-9_\-]{8,}")
_MIN_SECRET_LENGTH = 16  # shorter values would match by accident

_registered: set[str] = set()
_created_this_test: set[str] = set()


def register_secret(value: str) -> None:
    """Make the guard look for ``value`` too (a token or key a test made without moto or the
    GitLab server)."""
    if len(value) >= _MIN_SECRET_LENGTH:
        _registered.add(value)


def moto_key_secrets() -> set[str]:
    """The secret of every IAM access key moto holds right now (nothing when moto is not loaded)."""
    models = sys.modules.get("moto.iam.models")
    if models is None:
        return set()
    return {
        key.secret_access_key
        for partitions in models.iam_backends.values()
        for backend in partitions.values()
        for key in backend.access_keys.values()
    }


def render(record: logging.LogRecord) -> str:
    """All the text a handler could write for ``record``."""
    try:
        parts = [record.getMessage()]
    except Exception:  # a bad format string still leaves its parts readable
        parts = [str(record.msg), repr(record.args)]
    parts += [f"{name}={value!r}" for name, value in fields(record).items()]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def leaks(records: list[logging.LogRecord], secrets: set[str]) -> list[str]:
    """One sentence per record that carries a secret (the sentence does not)."""
    found = []
    for record in records:
        text = render(record)
        if any(secret in text for secret in secrets if len(secret) >= _MIN_SECRET_LENGTH):
            found.append(f"{record.name} {record.levelname} at {record.pathname}:{record.lineno} logged a secret value")
        elif GITLAB_TOKEN.search(text):
            found.append(f"{record.name} {record.levelname} at {record.pathname}:{record.lineno} logged a GitLab token")
    return found


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_keep = _Keep()


def _record_created_keys() -> None:
    """Wrap moto's ``AccessKey`` so that each new key's secret is noted as it is made."""
    from moto.iam.models import AccessKey

    make = AccessKey.__init__

    def make_and_note(self: AccessKey, *args: object, **kwargs: object) -> None:
        make(self, *args, **kwargs)
        _created_this_test.add(self.secret_access_key)

    AccessKey.__init__ = make_and_note  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    _record_created_keys()
    root = logging.getLogger()
    root.addHandler(_keep)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def no_secret_in_logs():
    _keep.records.clear()
    _created_this_test.clear()
    yield
    found = leaks(_keep.records, moto_key_secrets() | _created_this_test | _registered)
    _keep.records.clear()
    _created_this_test.clear()
    if found:
        pytest.fail("secrets reached the logs:\n" + "\n".join(found), pytrace=False)
