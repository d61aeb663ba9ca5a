"""The wheel: one import package, gitlab_key_rotation, made of every file of stacks/, lambda_src/ and
layers/, its dist-info, nothing else; its metadata (version, dependency ranges)."""

from __future__ import annotations

import re

import gitlab_key_rotation

from tests.packaging.conftest import REPO, Wheel, pinned

# The repository's folders and where pyproject.toml puts them in the package.
_LAYOUT = {
    "stacks": "gitlab_key_rotation",
    "lambda_src": "gitlab_key_rotation/lambda_src",
    "layers": "gitlab_key_rotation/layers",
}


def repository_files() -> set[str]:
    """Every file of the three folders, by its path in the wheel."""
    return {
        f"{package}/{path.relative_to(REPO / folder).as_posix()}"
        for folder, package in _LAYOUT.items()
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def tree(names: list[str]) -> str:
    """Files per folder, one line each: the summary printed for the issue's note."""
    folders: dict[str, list[str]] = {}
    for name in names:
        folder, _, file = name.rpartition("/")
        folders.setdefault(folder, []).append(file)
    return "\n".join(
        f"{folder}/ ({len(files)}): {' '.join(sorted(files))}" for folder, files in sorted(folders.items())
    )


def test_wheel_holds_the_package_and_its_dist_info_only(wheel: Wheel) -> None:
    names = wheel.names
    print(f"\n{wheel.path.name}: {len(names)} files\n{tree(names)}")
    dist_info = f"gitlab_key_rotation-{gitlab_key_rotation.__version__}.dist-info"
    assert {name.split("/", 1)[0] for name in names} == {"gitlab_key_rotation", dist_info}
    assert {n for n in names if n.startswith("gitlab_key_rotation/")} == repository_files()
    assert {n.removeprefix(dist_info + "/") for n in names if n.startswith(dist_info)} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "top_level.txt",
    }
    # What the package carries besides the constructs' modules: the Lambda code (rotation, revocation,
    # their common modules and the settings contract), the layer's pinned requirements and the typing marker.
    for name in ("py.typed", "lambda_src/rotation/handler.py", "lambda_src/revocation/handler.py",
                 "lambda_src/common/events.py", "lambda_src/contract/settings.py", "layers/requests/requirements.txt"):  # fmt: skip
        assert f"gitlab_key_rotation/{name}" in names


def test_metadata_names_the_version_and_the_cdk_ranges(wheel: Wheel) -> None:
    metadata = wheel.metadata()
    assert re.search(r"^Name: gitlab-key-rotation$", metadata, re.M)
    assert re.search(rf"^Version: {re.escape(gitlab_key_rotation.__version__)}$", metadata, re.M)
    assert re.search(r"^Requires-Python: >=3\.11$", metadata, re.M)
    requires = sorted(wheel.requires())
    assert len(requires) == 2 and requires[0].startswith("aws-cdk-lib") and requires[1].startswith("constructs")
    assert "<3" in requires[0] and "<11" in requires[1], requires
    # The lower bounds are the versions test_lowest_versions.py installs; the repository's own pins
    # lie inside the ranges.
    for name, upper in (("aws-cdk-lib", 3), ("constructs", 11)):
        lowest = _version(wheel.lowest(name))
        assert lowest <= _version(pinned(name)) < (upper,), (name, requires)


def test_changelog_has_an_entry_for_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(gitlab_key_rotation.__version__)}\b", changelog, re.M)


def _version(requirement: str) -> tuple[int, ...]:
    return tuple(int(part) for part in requirement.split("==")[1].split("."))
