"""Log records as Lambda's JSON log format shows them: the fields a record got through ``extra=``
stand top-level beside ``message``; a run's summary line (``common.summary``) is read from them."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields ``extra=`` gave the record (what the JSON log format adds to the standard ones)."""
    return {name: value for name, value in vars(record).items() if name not in STANDARD_ATTRIBUTES}


def summary(records: Iterable[logging.LogRecord], messages: Collection[str]) -> dict[str, object]:
    """The fields of the first record whose message is one of ``messages`` (a handler's
    ``SUMMARY_MESSAGE``), or ``{}`` when there is none."""
    for record in records:
        if record.getMessage() in messages:
            return fields(record)
    return {}
