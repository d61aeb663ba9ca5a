"""The default template is deterministic, cfn-lint clean and cdk-nag (AwsSolutions) clean."""

from __future__ import annotations

from pathlib import Path

from tests.cdk.lint import lint
from tests.cdk.synth import Synthesis, default_config, synthesize


def test_cdk_nag_aws_solutions_has_no_unacknowledged_finding(default_synth: Synthesis) -> None:
    assert default_synth.nag_findings() == []
    assert default_synth.validation_error is None


def test_cfn_lint_has_no_error(default_synth: Synthesis) -> None:
    errors, warnings = lint(default_synth.template_text())
    print(f"cfn-lint warnings by rule: {dict(warnings)}")
    assert errors == []


def test_two_synths_are_byte_identical(tmp_path: Path) -> None:
    # Back to back (not against the session's synthesis): in a shared checkout, an edit of
    # lambda_src between two synths legitimately changes the code asset's hash.
    first = synthesize(default_config(), tmp_path / "first", nag=False)
    second = synthesize(default_config(), tmp_path / "second", nag=False)
    assert first.template_text() == second.template_text()
