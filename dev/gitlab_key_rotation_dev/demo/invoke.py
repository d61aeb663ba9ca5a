"""Call a function's handler the way Lambda does: its handler module imported (the code asset holds the
package's own ``lambda_src``, so it is the same module), ``LAMBDA_TASK_ROOT`` at its code asset in
cdk.out (its ``settings.json``), its own environment from the template plus what the runtime adds, the credentials of its role, and layers
under ``/opt`` (here: a local folder standing for ``/opt``)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import boto3

from gitlab_key_rotation.lambda_src.contract import SETTINGS_FILE
from gitlab_key_rotation_dev.demo.deployment import DeployedFunction
from gitlab_key_rotation_dev.moto_iam_enforcement import RoleCredentials


@dataclass
class Invocation:
    handler: str
    event: Mapping[str, Any]
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    records: list[logging.LogRecord] = field(default_factory=list)
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def metric_documents(self) -> list[dict]:
        """The embedded-metric-format documents the run printed (one JSON object per line)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith('{"_aws"')]


def invoke(
    function: DeployedFunction,
    event: Mapping[str, Any],
    *,
    credentials: RoleCredentials,
    runtime_environment: Mapping[str, str],
    opt_dir: Path,
    live: Callable[[str], None] | None = None,
) -> Invocation:
    """Run the handler once; an exception becomes ``Invocation.error`` (type and message). What it
    prints (its metrics documents) is kept in ``Invocation.stdout``; ``live`` gets each warning as
    it is logged (the GitLab client's retries), so a slow run is never silent."""
    environment = {name: _mounted(value, opt_dir) for name, value in function.environment.items()}
    environment.update(runtime_environment)
    environment.update(credentials.runtime_environment())
    environment["AWS_LAMBDA_FUNCTION_NAME"] = function.logical_id
    module_name, _, attribute = function.handler.rpartition(".")
    invocation = Invocation(handler=function.handler, event=dict(event))
    started = time.monotonic()
    printed, outer = io.StringIO(), sys.stdout

    def shown(line: str) -> None:  # progress goes to the real output, not to the function's
        with contextlib.redirect_stdout(outer):
            live(line)

    with _task_root(function.code_dir, opt_dir) as task_root:
        environment["LAMBDA_TASK_ROOT"] = str(task_root)  # where settings.json is, as in Lambda
        with (
            _process_environment(environment),
            _captured_logs(shown if live else None) as records,
            contextlib.redirect_stdout(printed),
        ):
            boto3.DEFAULT_SESSION = None  # a fresh session per invocation, as in a new Lambda sandbox
            handler = getattr(importlib.import_module(module_name), attribute)
            try:
                invocation.result = handler(dict(event), None)
            except Exception as exc:  # the Lambda runtime reports it; so do we
                invocation.error = f"{type(exc).__name__}: {exc}"
    invocation.seconds = time.monotonic() - started
    invocation.records = records
    invocation.stdout = printed.getvalue()
    return invocation


def _mounted(value: str, opt_dir: Path) -> str:
    """Layers are unpacked under /opt in Lambda; locally ``opt_dir`` stands for it."""
    return str(opt_dir / value.removeprefix("/opt/")) if value.startswith("/opt/") else value


@contextmanager
def _task_root(code_dir: Path, opt_dir: Path) -> Iterator[Path]:
    """The code asset as Lambda unpacks it; when its settings.json names files under /opt (a
    layer's), a copy whose settings.json names them under ``opt_dir`` instead."""
    settings_file = code_dir / SETTINGS_FILE
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    mounted = {k: _mounted(v, opt_dir) if isinstance(v, str) else v for k, v in settings.items()}
    if mounted == settings:
        yield code_dir
        return
    with tempfile.TemporaryDirectory(prefix="demo-task-root-") as copy:
        root = Path(copy) / "task"
        shutil.copytree(code_dir, root)
        (root / SETTINGS_FILE).write_text(json.dumps(mounted))
        yield root


@contextmanager
def _process_environment(environment: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _Collector(logging.Handler):
    def __init__(self, live: Callable[[str], None] | None) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._live = live

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._live is not None and record.levelno == logging.WARNING and record.name.startswith("gitlab_key_rotation"):
            self._live(f"    ... {record.getMessage()}")


@contextmanager
def _captured_logs(live: Callable[[str], None] | None) -> Iterator[list[logging.LogRecord]]:
    collector = _Collector(live)
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector.records
    finally:
        root.removeHandler(collector)
