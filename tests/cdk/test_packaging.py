"""Another CDK app `pip install`s this package and uses the constructs, from another directory:
the README's "Reusing the constructs" sample, run against the installed copy."""

from __future__ import annotations

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cdk.synth import REPO

_NOT_SHIPPED = ("tests", "dev", ".git", ".venv", "node_modules", "cdk.out", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis")


def readme_constructs_sample() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Reusing the constructs in your own app\n", 1)[1].split("\n## ", 1)[0]
    (sample,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return sample


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed with pip into a fresh directory, built from a copy of the checkout
    (so that the build leaves nothing behind in the working tree)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    target = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (target / "gitlab_key_rotation" / "lambda_src" / "installed_copy_marker.py").write_text("# marks the installed copy\n")
    return target


def test_package_ships_the_constructs_code_and_layer_requirements(installed: Path) -> None:
    package = installed / "gitlab_key_rotation"
    assert (package / "gitlab_key_rotation.py").is_file()
    assert (package / "lambda_src" / "rotation" / "settings.py").is_file()
    assert (package / "lambda_src" / "revocation" / "settings.py").is_file()
    assert (package / "layers" / "requests" / "requirements.txt").is_file()
    assert (package / "py.typed").is_file()
    top_level = sorted(p.name for p in installed.iterdir() if not p.name.endswith(".dist-info"))
    assert top_level == ["gitlab_key_rotation"]


def test_readme_sample_synthesizes_from_the_installed_copy_in_another_directory(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(readme_constructs_sample())
    (tmp_path / "run_sample.py").write_text(
        "import runpy, gitlab_key_rotation as p\nprint('package from', p.__file__)\nrunpy.run_path('sample.py', run_name='__main__')\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(installed),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": []}),
    }
    result = subprocess.run(
        [sys.executable, "run_sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"package from {installed / 'gitlab_key_rotation' / '__init__.py'}" in result.stdout
    template = json.loads((tmp_path / "cdk.out" / "PlatformSecurity.template.json").read_text())
    handlers = sorted(r["Properties"]["Handler"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    assert handlers == [REVOCATION_HANDLER, ROTATION_HANDLER]
    # The code asset was staged from the installed lambda_src (which carries a marker file), not
    # from the checkout or the current directory.
    manifest = json.loads((tmp_path / "cdk.out" / "PlatformSecurity.assets.json").read_text())
    staged = [tmp_path / "cdk.out" / a["source"]["path"] for a in manifest["files"].values() if a["source"]["packaging"] == "zip"]
    assert [p.name for p in staged if (p / "gitlab_key_rotation" / "lambda_src" / "installed_copy_marker.py").is_file()], staged
