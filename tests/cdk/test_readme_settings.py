"""The README documents every setting of the contract, with its default: its table is the one the
contract generates."""

from __future__ import annotations

from gitlab_key_rotation.config import configuration_table
from gitlab_key_rotation.lambda_src.contract.settings import APP
from tests.cdk.synth import REPO


def test_the_readme_table_is_generated_from_the_contract() -> None:
    readme = (REPO / "README.md").read_text()
    assert configuration_table() in readme, (
        "README.md's settings table differs from the contract: paste the output of\n"
        "  .venv/bin/python -c 'from gitlab_key_rotation.config import configuration_table; print(configuration_table())'"
    )


def test_every_cdk_json_setting_has_a_row_with_a_meaning() -> None:
    table = configuration_table()
    for path, item in APP.walk():
        assert f"| `{path}` |" in table
        assert item.doc, f"{path} has no doc text in the contract"
