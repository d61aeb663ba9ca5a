"""Lambda entry point of the weekly developer-key revocation (``revocation.handler.handler``).

Event: ``{}`` or EventBridge's scheduled event (``replay-name`` included); ``{"dry_run": true}``
only reports. A dry run asked for in the settings (``DRY_RUN``) cannot be turned off by the event.
Any other field or type is refused (``common.events.EventError``) before the settings are read or
IAM is called: a typo of ``dry_run`` never becomes a real run.

Logs ONE summary line, ``revocation summary``, whose fields (with the function's JSON log
format) are those of ``revocation.report.summary`` plus ``notification``; returns the same dict.
Raises ``RevocationFailed`` after logging when anything failed, so that the errors alarm fires.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

from ..common.events import parse_event
from .composition import run
from .settings import RevocationSettings

_log = logging.getLogger(__name__)
_log.setLevel(logging.INFO)  # the summary line is the product's output: never filtered away


class RevocationFailed(Exception):
    """The run finished with errors; the summary log line lists them."""


OPTIONS = {"dry_run": bool}


def handler(event: Any, context: Any) -> dict[str, object]:
    request = parse_event(event, OPTIONS)
    settings = RevocationSettings.from_env(os.environ)
    if request.options.get("dry_run"):
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

