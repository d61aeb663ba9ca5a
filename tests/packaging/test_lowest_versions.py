"""The wheel's lower bounds are tested, not guessed: a fresh virtualenv with exactly the lowest
aws-cdk-lib and constructs the wheel allows (other dependencies as pip resolves them) synthesizes
the README's sample, both constructs, with the requests layer bundled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.packaging.conftest import Venv, Wheel, make_venv, run, shared
from tests.packaging.test_consumer_apps import check_synthesis, readme_constructs_sample, report_imports


@pytest.fixture(scope="module")
def lowest(wheel: Wheel) -> list[str]:
    return [wheel.lowest("aws-cdk-lib"), wheel.lowest("constructs")]


@pytest.fixture(scope="module")
def lowest_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Wheel, wheelhouse: Path, lowest: list[str]) -> Venv:
    return Venv(
        shared(tmp_path_factory, "lowest-venv", lambda folder: make_venv(folder, wheelhouse, lowest, [wheel.path]))
    )


def test_lowest_cdk_versions_synthesize_both_constructs(
    lowest_venv: Venv, lowest: list[str], wheel: Wheel, layer_wheelhouse: Path, tmp_path: Path
) -> None:
    installed = run([lowest_venv.python, "-m", "pip", "list", "--format", "json"]).stdout
    versions = {p["name"].lower(): p["version"] for p in json.loads(installed)}
    print(f"\nlowest versions tested: {', '.join(lowest)} (jsii {versions['jsii']})")
    assert [f"{name}=={versions[name]}" for name in ("aws-cdk-lib", "constructs")] == lowest

    (tmp_path / "sample.py").write_text(readme_constructs_sample() + report_imports("gitlab_key_rotation"))
    run(
        [lowest_venv.python, "sample.py"],
        cwd=tmp_path,
        env=lowest_venv.env(layer_wheelhouse, CDK_OUTDIR=str(tmp_path / "cdk.out")),
    )

    check_synthesis(tmp_path / "cdk.out", "PlatformSecurity", lowest_venv, wheel)
