"""The one summary line of a run, and the log level that keeps it, for both Lambdas.

Each handler logs exactly one summary line: a fixed message per Lambda (``rotation summary``,
``revocation summary``) whose fields are passed as ``extra=``, so that Lambda's JSON log format
shows them top-level (``{"timestamp", "level", "message", "logger", ..., "ok": true, ...}``), where a
metric filter (``$.event``) or a Logs Insights query can match them. The line is at INFO when the
run is ok, at ERROR when it is not. Its fields hold names, key ids and ARNs: never a secret; no
field may be named like an attribute of ``logging.LogRecord`` (``logging`` refuses those).

The line is the product's output, so it must never be filtered away: ``handler_logger`` gives the
handler module's logger and sets its package's logger to INFO unless someone already chose a level
for it. Lambda's application log level applies to the root logger; botocore (DEBUG logs request
bodies, secrets included) stays at what the root logger allows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping


def handler_logger(name: str) -> logging.Logger:
    """The logger of handler module ``name`` (``__name__``); its package's logger is at INFO
    unless its level was already chosen."""
    package = logging.getLogger(name.rpartition(".")[0])
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)
    return logging.getLogger(name)


def log_summary(logger: logging.Logger, message: str, fields: Mapping[str, object], *, ok: bool) -> None:
    """One summary line: ``message``, ``fields`` top-level, INFO when ``ok`` else ERROR."""
    logger.log(logging.INFO if ok else logging.ERROR, message, extra=dict(fields))
