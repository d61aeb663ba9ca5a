"""The default template is deterministic, cfn-lint clean and cdk-nag (AwsSolutions) clean."""

from __future__ import annotations

import pytest

from tests.cdk.lint import lint
from tests.cdk.synth import Synthesis, default_config, synthesize


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(default_synth: Synthesis) -> None:
    assert default_synth.nag_findings() == []
    assert default_synth.validation_error is None


def test_cfn_lint_has_no_error(default_synth: Synthesis) -> None:
    errors, warnings = lint(default_synth.template_text())
    print(f"cfn-lint warnings by rule: {dict(warnings)}")
    assert errors == []


def test_two_synths_are_byte_identical(default_synth: Synthesis, tmp_path: pytest.TempPathFactory) -> None:
    again = synthesize(default_config(), tmp_path, nag=True)
    assert again.template_text() == default_synth.template_text()
