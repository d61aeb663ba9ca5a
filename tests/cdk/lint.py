"""cfn-lint over a synthesized template, through its Python API."""

from __future__ import annotations

from collections import Counter

from cfnlint.api import lint_all


def lint(template_text: str) -> tuple[list[str], Counter[str]]:
    """(error messages, count of warnings by rule id) of cfn-lint with every rule enabled."""
    matches = lint_all(template_text)
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    warnings = Counter(m.rule.id for m in matches if m.rule.id.startswith("W"))
    return errors, warnings
