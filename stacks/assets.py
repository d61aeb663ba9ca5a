"""Where the package's runtime files live, and the Lambda code asset made from them.

Both are found through the import system (``gitlab_key_rotation.lambda_src`` and
``gitlab_key_rotation.layers``), never relative to the current directory: in the repository they are
the top-level ``lambda_src/`` and ``layers/`` folders, in an installed copy they sit inside the
``gitlab_key_rotation`` package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from . import lambda_src as _lambda_src
from . import layers as _layers

LAMBDA_SRC = Path(_lambda_src.__file__).resolve().parent
REQUESTS_REQUIREMENTS = Path(_layers.__file__).resolve().parent / "requests" / "requirements.txt"

# The asset reproduces the package path, so the handler modules have the same names in the Lambda
# as in an installed copy (``gitlab_key_rotation`` is a namespace package there: no constructs, no CDK).
_PACKAGE_PATH = Path("gitlab_key_rotation") / "lambda_src"
ROTATION_HANDLER = "gitlab_key_rotation.lambda_src.rotation.handler.handler"
REVOCATION_HANDLER = "gitlab_key_rotation.lambda_src.revocation.handler.handler"

_STAGING_ROOT = Path(tempfile.gettempdir()) / "gitlab-key-rotation-assets"


def runtime_files() -> dict[str, bytes]:
    """The product's runtime files (every ``.py`` of ``lambda_src``), by their path in the asset."""
    files: dict[str, bytes] = {}
    for path in sorted(LAMBDA_SRC.rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[(_PACKAGE_PATH / path.relative_to(LAMBDA_SRC)).as_posix()] = path.read_bytes()
    if not files:
        raise FileNotFoundError(f"the Lambda code directory {LAMBDA_SRC} holds no Python files in this installation")
    return files


def lambda_code(extra_files: Mapping[str, bytes] | None = None) -> lambda_.Code:
    """A code asset holding exactly the runtime files, plus ``extra_files`` (such as a settings file)
    at the asset's root.

    The files are staged in a folder named after their content, so the same files give the same
    folder and the same asset hash on every machine, and an edit gives a new one.
    """
    files = {**runtime_files(), **(extra_files or {})}
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    staged = _STAGING_ROOT / digest.hexdigest()[:32]
    if not staged.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=_ensure_dir(_STAGING_ROOT)))
        for name, content in files.items():
            target = partial / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        try:
            os.rename(partial, staged)
        except OSError:  # another synth staged the same content meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return lambda_.Code.from_asset(str(staged))


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
