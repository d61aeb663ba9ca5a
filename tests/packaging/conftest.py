"""Fixtures of the packaging tests: the wheel, built once per run from a copy of the checkout, and
fresh virtualenvs with it installed non-editable, as another CDK app installs it.

Each is built once per run, also under pytest-xdist (the workers share it, built under a file lock).
Third-party wheels are kept in pytest's cache folder (``.pytest_cache/d/``), so a second run
installs offline; the first run on a fresh machine downloads them from the package index.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitlab_key_rotation.monitored_function import ARCHITECTURE, RUNTIME
from gitlab_key_rotation.requests_layer import pip_platform, python_version

REPO = Path(__file__).resolve().parents[2]
CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"

# What a build from a copy of the checkout leaves out (the wheel's content is set by pyproject.toml;
# this only keeps the copy small).
_NOT_COPIED = ("tests", "dev", ".git", ".venv", "node_modules", "cdk.out", "build", "dist", "*.egg-info",
               "__pycache__", ".pytest_cache", ".hypothesis")  # fmt: skip

# The platform the constructs' requests layer is built for (their functions' runtime and architecture).
LAYER_PLATFORM = (pip_platform(ARCHITECTURE), python_version(RUNTIME))


def run(command: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:  # fmt: skip
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    shown = " ".join(map(str, command))
    assert result.returncode == 0, (
        f"{shown} exited with {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def pinned(name: str) -> str:
    """``name==version`` as pinned in requirements.txt (the versions the repository's app is tested with)."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if re.fullmatch(rf"{re.escape(name)}==[\w.]+", line.strip()):
            return line.strip()
    raise AssertionError(f"requirements.txt pins no {name}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def shared(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` run once per test run, even with several xdist workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' base folders share this parent
    folder, done = root / name, root / f"{name}.done"
    with _locked(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@dataclass(frozen=True)
class Wheel:
    path: Path

    @property
    def names(self) -> list[str]:
        with zipfile.ZipFile(self.path) as archive:
            return archive.namelist()

    def metadata(self) -> str:
        with zipfile.ZipFile(self.path) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            return archive.read(name).decode()

    def requires(self) -> list[str]:
        return re.findall(r"^Requires-Dist: (.+)$", self.metadata(), re.M)

    def lowest(self, name: str) -> str:
        """``name==<lower bound>`` of one of the wheel's dependencies."""
        (requirement,) = [r for r in self.requires() if re.match(rf"{re.escape(name)}\b", r)]
        match = re.search(r">=([\w.]+)", requirement)
        assert match, f"{requirement} has no lower bound"
        return f"{name}=={match.group(1)}"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Wheel:
    """The wheel, built by pip from a copy of the checkout (the build leaves nothing in the working tree)."""

    def build(folder: Path) -> None:
        source = folder / "source"
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_COPIED))
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", folder / "dist", source])

    (path,) = (shared(tmp_path_factory, "wheel", build) / "dist").glob("*.whl")
    return Wheel(path)


def _cache_dir(config: pytest.Config, name: str) -> Path:
    return (
        Path(config.cache.mkdir(name))
        if config.cache is not None
        else Path(config.rootpath) / ".pytest_cache" / "d" / name
    )


def _fill(wheelhouse: Path, key: str, download: Callable[[], None]) -> None:
    """Download into ``wheelhouse`` once per ``key`` (the inputs that decide what is downloaded)."""
    marker = wheelhouse / f".complete-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    with _locked(wheelhouse / ".lock"):
        if not marker.exists():
            download()
            marker.touch()


@pytest.fixture(scope="session")
def wheelhouse(pytestconfig: pytest.Config) -> Path:
    """Third-party wheels for the consumer virtualenvs, kept between runs."""
    return _cache_dir(pytestconfig, "packaging-wheelhouse")


@pytest.fixture(scope="session")
def layer_wheelhouse(pytestconfig: pytest.Config, wheel: Wheel) -> Path:
    """The requests layer's wheels for the Lambda platform, downloaded once: the synths below build
    the layer from them with pip (``PIP_FIND_LINKS`` and ``PIP_NO_INDEX``, the pip settings the
    layer's bundling honours), as a machine with a package mirror would."""
    folder = _cache_dir(pytestconfig, "packaging-layer-wheels")
    with zipfile.ZipFile(wheel.path) as archive:
        requirements = archive.read("gitlab_key_rotation/layers/requests/requirements.txt")
    platform, version = LAYER_PLATFORM

    def download() -> None:
        listed = folder / "requirements.download.txt"
        listed.write_bytes(requirements)
        run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", folder, "--requirement", listed,
             "--platform", platform, "--python-version", version, "--implementation", "cp",
             "--only-binary=:all:"])  # fmt: skip

    _fill(folder, requirements.decode() + platform + version, download)
    return folder


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        (site,) = (self.path / "lib").glob("python3.*/site-packages")
        return site

    def env(self, layer_wheelhouse: Path, **extra: str) -> dict[str, str]:
        """The environment of a consumer's synth: this virtualenv and the pinned CDK CLI first on
        PATH, nothing of the checkout on the import path, the layer built from ``layer_wheelhouse``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CDK_OUTDIR", "CDK_CONTEXT_JSON")
        }
        return {
            **env,
            "PATH": os.pathsep.join([str(self.path / "bin"), str(CDK_CLI.parent), env.get("PATH", "")]),
            "VIRTUAL_ENV": str(self.path),
            "PIP_FIND_LINKS": str(layer_wheelhouse),
            "PIP_NO_INDEX": "1",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20,21,22,23,24,25,26",
            **extra,
        }


def make_venv(folder: Path, wheelhouse: Path, pins: Sequence[str], install: Sequence[str | os.PathLike[str]]) -> Venv:
    """A fresh virtualenv (with pip, which the layer's bundling runs) holding ``install`` (the wheel,
    ``-r`` files), with the third-party versions in ``pins`` (constraints), from ``wheelhouse``."""
    venv = Venv(folder)
    run([sys.executable, "-m", "venv", folder])
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    _fill(wheelhouse, "\n".join(sorted(pins)), lambda: run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", wheelhouse, *pins]
    ))  # fmt: skip
    run([venv.python, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--find-links", wheelhouse,
         "--constraint", constraints, *install])  # fmt: skip
    return venv


def read_assets(outdir: Path, stack: str) -> tuple[Path, list[Path]]:
    """The template path of ``stack`` and the folders of its file assets in ``outdir``."""
    manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
    folders = [
        outdir / a["source"]["path"] for a in manifest["files"].values() if a["source"].get("packaging") == "zip"
    ]
    return outdir / f"{stack}.template.json", folders
