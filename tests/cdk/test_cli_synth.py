"""`cdk synth` with the pinned CLI, the way an operator runs it, but from another directory and
without any AWS credentials; the only test that really bundles the requests layer (pip downloads
the Lambda platform's wheels from the package index)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER
from tests.cdk.synth import REPO

CDK_CLI = REPO / "node_modules" / ".bin" / "cdk"


def run_cdk(workdir: Path, *arguments: str, settings: dict | None = None) -> subprocess.CompletedProcess:
    """The pinned CLI in ``workdir`` with cdk.json's app (and ``settings`` for its context key, if given)."""
    if not CDK_CLI.exists():
        pytest.fail(f"the pinned CDK CLI is not installed at {CDK_CLI}: run `make install`")
    cdk_json = json.loads((REPO / "cdk.json").read_text())
    cdk_json["app"] = f"{sys.executable} {REPO / 'app.py'}"
    if settings is not None:
        cdk_json["context"]["gitlab-key-rotation"] = settings
    (workdir / "cdk.json").write_text(json.dumps(cdk_json))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    env |= {"HOME": str(workdir), "AWS_EC2_METADATA_DISABLED": "true", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    return subprocess.run([str(CDK_CLI), *arguments, "--no-notices"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cloud_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("operator-dir")
    outdir = workdir / "cdk.out"
    result = run_cdk(workdir, "synth", "--quiet", "--output", str(outdir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return outdir


def test_deployments_and_overrides_through_the_cli(tmp_path: Path) -> None:
    """One stack per deployment; a dotted -c overrides its setting; a -c naming no setting is refused."""
    settings = json.loads((REPO / "cdk.json").read_text())["context"]["gitlab-key-rotation"]
    del settings["stack_name"]
    settings["region"] = "eu-west-1"
    settings["deployments"] = [
        {"stack_name": "KeyRotation-prod", "account": "111111111111"},
        {"stack_name": "KeyRotation-dev", "account": "222222222222", "revocation": {"enabled": False}},
    ]
    listed = run_cdk(tmp_path, "ls", "-c", "gitlab-key-rotation.deployments[1].stack_name=KeyRotation-staging", settings=settings)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert listed.stdout.split() == ["KeyRotation-prod", "KeyRotation-staging"]
    refused = run_cdk(tmp_path, "ls", "-c", "gitlab-key-rotation.rotation.peroid_days=14", "-c", "gitlab-key-rotation.stack_name=X", settings=settings)
    assert refused.returncode != 0
    assert "gitlab-key-rotation.rotation.peroid_days (set with -c) is not a setting" in refused.stderr
    assert "gitlab-key-rotation.deployments name stack 'X' more than once" in refused.stderr  # -c applies to every deployment
    assert "Traceback" not in refused.stderr


def asset_dir(assembly: Path, logical_id_part: str, resource_type: str) -> Path:
    template = json.loads((assembly / "KeyRotationStack.template.json").read_text())
    (resource,) = [r for k, r in template["Resources"].items() if logical_id_part in k and r["Type"] == resource_type]
    return assembly / resource["Metadata"]["aws:asset:path"]


def test_template_is_written(cloud_assembly: Path) -> None:
    template = json.loads((cloud_assembly / "KeyRotationStack.template.json").read_text())
    assert {r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"} == {
        ROTATION_HANDLER,
        REVOCATION_HANDLER,
    }


def test_code_asset_is_lambda_src_without_bytecode_and_its_settings(cloud_assembly: Path) -> None:
    from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings

    code = asset_dir(cloud_assembly, "RotationJobFunction", "AWS::Lambda::Function")
    assert sorted(p.name for p in code.iterdir()) == ["gitlab_key_rotation", "settings.json"]
    package = code / "gitlab_key_rotation"
    assert sorted(p.name for p in package.iterdir()) == ["lambda_src"]  # a namespace: no constructs, no CDK
    assert sorted(p.name for p in (package / "lambda_src").iterdir()) == ["__init__.py", "common", "contract", "revocation", "rotation"]
    assert (package / "lambda_src" / "rotation" / "settings.py").is_file()
    assert not [p for p in code.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    arns = {"GITLAB_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf", "STATE_SECRET_NAMES": '["s-AbCdEf"]',
            "STATE_SECRET_ARN_PREFIX": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"}  # fmt: skip
    assert RotationSettings.load({**arns, "LAMBDA_TASK_ROOT": str(code)}).users[0].iam_user == "ci-deployer"


def test_requests_layer_holds_requests_for_the_lambda_platform_and_no_boto(cloud_assembly: Path) -> None:
    layer = asset_dir(cloud_assembly, "RequestsLayer", "AWS::Lambda::LayerVersion")
    site = layer / "python"
    assert (site / "requests" / "__init__.py").is_file()
    assert not (site / "boto3").exists() and not (site / "botocore").exists()
    assert not (site / "bin").exists()
    native = [p.name for p in site.rglob("*.so")]
    assert native and all("cpython-314-aarch64-linux-gnu" in name for name in native), native
    pinned = {line.split("==")[0] for line in (REPO / "layers/requests/requirements.txt").read_text().split() if "==" in line}
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in site.glob("*.dist-info")}
    assert installed == pinned


def test_layer_size(cloud_assembly: Path) -> None:
    layer = asset_dir(cloud_assembly, "RequestsLayer", "AWS::Lambda::LayerVersion")
    files = [p for p in sorted(layer.rglob("*")) if p.is_file()]
    unzipped = sum(p.stat().st_size for p in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(layer))
    print(f"requests layer: {len(files)} files, {unzipped / 1024:.0f} KiB unzipped, {len(buffer.getvalue()) / 1024:.0f} KiB zipped")
    assert unzipped < 10 * 1024 * 1024  # a few MB; a boto3 that crept in would add ~20 MB
