"""Synthesizing the app's stack in-process, and reading what came out (template, cdk-nag findings)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from gitlab_key_rotation.config import CONTEXT_KEY, AppConfig, load_config
from gitlab_key_rotation.lambda_src.contract import SETTINGS_FILE
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack

REPO = Path(__file__).resolve().parents[2]
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def cdk_json_context() -> dict:
    return json.loads((REPO / "cdk.json").read_text())["context"]


def default_config() -> AppConfig:
    return load_config(cdk_json_context(), REPO)


@dataclass
class Synthesis:
    outdir: Path
    stack_names: list[str]
    validation_error: str | None  # set when a validation plugin (cdk-nag) failed the synthesis

    def template_text(self, stack_name: str | None = None) -> str:
        return (self.outdir / f"{stack_name or self.stack_names[0]}.template.json").read_text()

    def template(self, stack_name: str | None = None) -> dict:
        return json.loads(self.template_text(stack_name))

    def nag_findings(self) -> list[str]:
        """``rule at construct path`` of every unacknowledged cdk-nag finding."""
        report_file = self.outdir / "validation-report.json"
        if not report_file.exists():
            return []
        report = json.loads(report_file.read_text())
        return [
            f"{violation['ruleName']} at {construct['constructPath']}"
            for plugin in report["pluginReports"]
            for violation in plugin["violations"]
            for construct in violation["violatingConstructs"]
        ]


def synthesize_app(build: Callable[[cdk.App], list[cdk.Stack]], outdir: Path, nag: bool) -> Synthesis:
    """Build stacks into a fresh App (bundling skipped) and synthesize them into ``outdir``.

    A cdk-nag failure does not raise here: the templates are still written, and the findings are
    read from the validation report, so that template tests and the cdk-nag test fail separately.
    """
    app = cdk.App(context=SKIP_BUNDLING, outdir=str(outdir))
    stacks = build(app)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        error = str(exc)
    return Synthesis(outdir=outdir, stack_names=[s.stack_name for s in stacks], validation_error=error)


def synthesize(config: AppConfig, outdir: Path, nag: bool) -> Synthesis:
    return synthesize_app(lambda app: [KeyRotationStack(app, config.stack_name, config=config)], outdir, nag)


def config_with(**sections: dict) -> AppConfig:
    """cdk.json's default config with some keys of the root or of its sections replaced."""
    context = cdk_json_context()
    root = context[CONTEXT_KEY]
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(root.get(key), dict):
            root[key] = {**root[key], **value}
        else:
            root[key] = value
    return load_config(context, REPO)


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"}


def render(value: object, refs: dict[str, str], pseudo: dict[str, str] = PSEUDO) -> object:
    """A template value with ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub``/``Fn::Select``/``Fn::Split``
    resolved, for logical ids in ``refs``
    and the pseudo parameters (default: partition aws, account 123456789012, region eu-west-1)."""
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), = value.items()
        if function == "Ref":
            return pseudo.get(argument) or refs[argument]
        if function == "Fn::GetAtt":
            return refs[argument[0]]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(render(part, refs, pseudo)) for part in parts)
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(render({"Ref": m.group(1)}, refs, pseudo)), argument)
        if function == "Fn::Select":
            index, items = argument
            return render(items, refs, pseudo)[index]
        if function == "Fn::Split":
            separator, text = argument
            return str(render(text, refs, pseudo)).split(separator)
    if isinstance(value, dict):
        return {k: render(v, refs, pseudo) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, refs, pseudo) for v in value]
    return value


def code_dir(synthesis: Synthesis, stack_name: str, function_logical_id: str) -> Path:
    """The function's code asset as staged in cdk.out (what Lambda unpacks into LAMBDA_TASK_ROOT)."""
    key = synthesis.template(stack_name)["Resources"][function_logical_id]["Properties"]["Code"]["S3Key"]
    return synthesis.outdir / f"asset.{key.removesuffix('.zip')}"


def lambda_env(synthesis: Synthesis, stack_name: str, function_logical_id: str, refs: dict[str, str]) -> dict[str, str]:
    """What the function's settings loader sees once deployed: its environment with ``refs`` (logical id
    -> ARN) filled in, and ``LAMBDA_TASK_ROOT`` at its code asset, whose settings.json it reads."""
    template = synthesis.template(stack_name)
    variables = render(template["Resources"][function_logical_id]["Properties"]["Environment"]["Variables"], refs)
    root = code_dir(synthesis, stack_name, function_logical_id)
    assert (root / SETTINGS_FILE).is_file()
    return {**variables, "LAMBDA_TASK_ROOT": str(root)}


def stand_in_arns(template: dict) -> dict[str, str]:
    """A plausible ARN for each secret and topic of the template, as CloudFormation would name them."""
    refs = {k: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{k}-AbCdEfGhIjKl-AbCdEf" for k in resources(template, "AWS::SecretsManager::Secret")}
    refs |= {k: f"arn:aws:sns:eu-west-1:123456789012:{k}" for k in resources(template, "AWS::SNS::Topic")}
    return refs
