"""The ``requests`` Lambda layer, built with pip on this machine: no Docker.

pip downloads the wheels for the Lambda's platform (``--platform manylinux2014_<arch>
--python-version <runtime's> --only-binary=:all:``) into ``<asset>/python``, where Lambda's Python
runtimes look for layer packages. The asset hash is computed from the pinned requirements, the
platform and the Python version, so the same inputs give the same hash on every machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .assets import REQUESTS_REQUIREMENTS

# Bump when the way the layer is built changes, so that the asset hash changes with it.
_BUILD_RECIPE = "pip-target-python-v1"


def pip_platform(architecture: lambda_.Architecture) -> str:
    """The manylinux platform tag of the wheels a function with this architecture can load."""
    machines = {lambda_.Architecture.ARM_64.name: "aarch64", lambda_.Architecture.X86_64.name: "x86_64"}
    if architecture.name not in machines:
        raise ValueError(f"architecture must be arm64 or x86_64, got {architecture.name!r}")
    return f"manylinux2014_{machines[architecture.name]}"


def python_version(runtime: lambda_.Runtime) -> str:
    """'3.14' for the python3.14 runtime."""
    if runtime.family != lambda_.RuntimeFamily.PYTHON or not runtime.name.startswith("python3."):
        raise ValueError(f"runtime must be a Python 3 Lambda runtime, got {runtime.name!r}")
    return runtime.name.removeprefix("python")


@jsii.implements(ILocalBundling)
class PipInstallBundling:
    """Runs ``python -m pip install --target <out>/python`` for the Lambda's platform, locally."""

    def __init__(self, requirements: Path, platform: str, version: str):
        self.requirements = requirements
        self.platform = platform
        self.version = version

    def command(self, output_dir: str) -> list[str]:
        return [
            sys.executable, "-m", "pip", "install",
            "--requirement", str(self.requirements),
            "--platform", self.platform,
            "--only-binary=:all:",
            "--python-version", self.version,
            "--implementation", "cp",
            "--target", str(Path(output_dir) / "python"),
            "--no-compile",
            "--quiet",
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, _options: object = None) -> bool:  # jsii passes the options as one struct
        # pip honours the operator's pip configuration (index mirror, certificates); only the
        # settings that would change what lands in the layer are neutralised.
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_TARGET", "PIP_PREFIX", "PIP_USER")}
        result = subprocess.run(self.command(output_dir), env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"building the requests layer failed: pip exited with {result.returncode} for "
                f"{self.requirements} (platform {self.platform}, Python {self.version}):\n{result.stderr[-2000:]}"
            )
        # Console scripts carry this machine's interpreter path and are useless in a layer.
        shutil.rmtree(Path(output_dir) / "python" / "bin", ignore_errors=True)
        return True


class RequestsLayer(lambda_.LayerVersion):
    """A layer with ``requests`` and its pinned dependencies for one runtime and architecture.

    ``requirements`` defaults to the package's ``layers/requests/requirements.txt``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,  # noqa: A002
        *,
        runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_14,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        requirements: str | os.PathLike[str] | None = None,
    ):
        requirements_file = Path(requirements) if requirements is not None else REQUESTS_REQUIREMENTS
        if not requirements_file.is_file():
            raise FileNotFoundError(f"requirements of the requests layer not found: {requirements_file}")
        platform, version = pip_platform(architecture), python_version(runtime)
        fingerprint = hashlib.sha256(
            b"\0".join([requirements_file.read_bytes(), platform.encode(), version.encode(), _BUILD_RECIPE.encode()])
        ).hexdigest()
        super().__init__(
            scope,
            id,
            code=lambda_.Code.from_asset(
                str(requirements_file.parent),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=fingerprint,
                bundling=BundlingOptions(
                    # CDK requires an image; it is never pulled because the local bundling always
                    # either succeeds or raises.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-" + runtime.name),
                    local=PipInstallBundling(requirements_file, platform, version),
                ),
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            description=f"requests and its pinned dependencies for {runtime.name} on {architecture.name}",
        )
        self.requirements = requirements_file
        self.platform = platform
        self.python_version = version
