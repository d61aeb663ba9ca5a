"""cfn-lint over a synthesized template, through its Python API."""

from __future__ import annotations

from collections import Counter

from cfnlint.api import ManualArgs, lint as run_lint
from cfnlint.helpers import REGIONS


def lint(template_text: str, regions: list[str] | None = None) -> tuple[list[str], Counter[str]]:
    """(error messages, count of warnings by rule id) of cfn-lint with every rule enabled, in every
    region unless ``regions`` names those a template is pinned to (AWS Chatbot, for one, exists in
    no China or GovCloud region)."""
    matches = run_lint(
        template_text,
        config=ManualArgs(include_checks=["I"], include_experimental=True, regions=regions or REGIONS),
    )
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]
    warnings = Counter(m.rule.id for m in matches if m.rule.id.startswith("W"))
    return errors, warnings
