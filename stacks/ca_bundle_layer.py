"""A tiny layer that ships the PEM bundle a self-managed GitLab's certificate chains to.

Lambda unpacks layers under ``/opt``; the rotation function finds the bundle at
``CA_BUNDLE_PATH`` (``gitlab_ca_bundle`` of its settings.json). Certificates are public: a layer is a fine
place for them, and it keeps them out of the size-limited environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .lambda_src.contract.rules import pem_problem

_LAYER_FILE = "gitlab-ca/ca-bundle.pem"
CA_BUNDLE_PATH = f"/opt/{_LAYER_FILE}"


def read_pem_bundle(path: Path) -> bytes:
    """The bundle's bytes, after checking them with the settings contract's PEM rule."""
    if not path.is_file():
        raise FileNotFoundError(f"GitLab CA bundle not found: {path} (give the path of a PEM file)")
    content = path.read_bytes()
    problem = pem_problem(content)
    if problem:
        raise ValueError(f"GitLab CA bundle {path}: {problem}")
    return content


@jsii.implements(ILocalBundling)
class CopyFileBundling:
    """Copies one file into the asset at a fixed relative path."""

    def __init__(self, source: Path, destination: str):
        self.source = source
        self.destination = destination

    def try_bundle(self, output_dir: str, _options: object = None) -> bool:  # jsii passes the options as one struct
        target = Path(output_dir) / self.destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, target)
        return True


class GitLabCaBundleLayer(lambda_.LayerVersion):
    """A layer holding ``pem_file`` at ``CA_BUNDLE_PATH``."""

    def __init__(self, scope: Construct, id: str, *, pem_file: str | os.PathLike[str]):  # noqa: A002
        pem = Path(pem_file).resolve()
        content = read_pem_bundle(pem)
        super().__init__(
            scope,
            id,
            code=lambda_.Code.from_asset(
                str(pem.parent),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=hashlib.sha256(content).hexdigest(),
                bundling=BundlingOptions(
                    image=DockerImage.from_registry("scratch"),  # required by CDK, never used
                    local=CopyFileBundling(pem, _LAYER_FILE),
                ),
            ),
            description="CA certificates trusted for the self-managed GitLab",
        )
