"""Lambda entry point of the weekly developer-key revocation (``revocation.handler.handler``).

Event: ``{}`` or EventBridge's scheduled event; ``{"dry_run": true}`` only reports. A dry run asked
for in the settings (``DRY_RUN``) cannot be turned off by the event.

Logs ONE summary line, ``revocation summary``, whose fields (with the function's JSON log
format) are those of ``revocation.report.summary`` plus ``notification``; returns the same dict.
Raises ``RevocationFailed`` after logging when anything failed, so that the errors alarm fires.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Mapping

from .composition import run
from .settings import RevocationSettings

_log = logging.getLogger(__name__)
_log.setLevel(logging.INFO)  # the summary line is the product's output: never filtered away


class RevocationFailed(Exception):
    """The run finished with errors; the summary log line lists them."""


def handler(event: Any, context: Any) -> dict[str, object]:
    settings = RevocationSettings.from_env(os.environ)
    if _dry_run_requested(event):
        settings = replace(settings, dry_run=True)
    result = run(settings)
    failed = bool(result["error_count"])
    _log.log(logging.ERROR if failed else logging.INFO, "revocation summary", extra=result)
    if failed:
        first = result["errors"][0]
        raise RevocationFailed(
            f"developer key revocation finished with {result['error_count']} error(s); first: "
            f"{first['subject']}: {first['error']}; see the 'revocation summary' log line"
        )
    return result


def _dry_run_requested(event: Any) -> bool:
    if event is None:
        return False
    if not isinstance(event, Mapping):
        raise TypeError(f"the event must be a JSON object, got {type(event).__name__}")
    value = event.get("dry_run", False)
    if not isinstance(value, bool):
        raise ValueError(f"the event's dry_run must be true or false, got {value!r}")
    return value
