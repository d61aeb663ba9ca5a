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
import stat
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

# Staging lives in the temporary directory, in a folder of this user's own: a folder another local
# user could write would let them plant Lambda code under a name this synth predicts.
_STAGING_NAME = f"gitlab-key-rotation-assets-{os.getuid()}" if hasattr(os, "getuid") else "gitlab-key-rotation-assets"


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
    root = _private_staging_root()
    staged = root / digest.hexdigest()[:32]
    if not _holds_exactly(staged, files):
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
        for name, content in files.items():
            target = partial / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        shutil.rmtree(staged, ignore_errors=True)  # a partial or altered copy is never reused
        try:
            os.rename(partial, staged)
        except OSError:  # another synth staged the same content meanwhile
            shutil.rmtree(partial, ignore_errors=True)
        if not _holds_exactly(staged, files):
            raise RuntimeError(f"staging the Lambda code asset in {staged} failed: its files differ from the package's")
    return lambda_.Code.from_asset(str(staged))


def _private_staging_root() -> Path:
    """The staging folder, made private to this user (mode 0700), refused if anybody else owns it or
    may write into it."""
    root = Path(tempfile.gettempdir()) / _STAGING_NAME
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    foreign = hasattr(os, "getuid") and info.st_uid != os.getuid()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or foreign or info.st_mode & 0o022:
        raise RuntimeError(
            f"{root} is not a private directory of this user (a link, owned by another user, or writable by others): "
            "remove it, then synthesize again"
        )
    return root


def _holds_exactly(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Whether ``folder`` holds exactly ``files``, byte for byte."""
    if not folder.is_dir():
        return False
    found = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    return found.keys() == files.keys() and all(
        not path.is_symlink() and path.read_bytes() == files[name] for name, path in found.items()
    )
