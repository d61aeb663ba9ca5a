"""From the CDK app to "deployed" in the emulator: synthesize, create the template's resources that
the functions use (secrets, topics), and resolve each function's handler, environment and role
policies against them. moto's CloudFormation cannot deploy this template, so this does the part of
a deployment that the functions can observe."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import aws_cdk as cdk

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation.config import CONTEXT_KEY, AppConfig, load_config
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack
from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings
from gitlab_key_rotation_dev.demo.emulators import ACCOUNT_ID, REGION, Emulators
from gitlab_key_rotation_dev.template_resolver import TemplateResolver

REPO = Path(__file__).resolve().parents[3]



@dataclass(frozen=True)
class DeployedFunction:
    logical_id: str
    handler: str
    environment: Mapping[str, str]
    policy_documents: tuple[Mapping[str, Any], ...]
    code_dir: Path  # the function's code asset as staged in cdk.out (Lambda's LAMBDA_TASK_ROOT)


@dataclass(frozen=True)
class Deployment:
    template: Mapping[str, Any]
    functions: Mapping[str, DeployedFunction]  # by handler
    secret_arns: Mapping[str, str]  # by logical id

    @property
    def rotation(self) -> DeployedFunction:
        return self.functions[ROTATION_HANDLER]

    @property
    def revocation(self) -> DeployedFunction:
        return self.functions[REVOCATION_HANDLER]

    def state_secret_arns(self) -> dict[str, str]:
        """Each machine user's state secret, as the rotation Lambda itself reads them (its
        settings.json plus the ARNs of its environment)."""
        function = self.rotation
        settings = RotationSettings.load({**function.environment, "LAMBDA_TASK_ROOT": str(function.code_dir)})
        return {user.iam_user: user.state_secret_arn for user in settings.users}


def default_context() -> dict[str, Any]:
    """The operator's settings embedded in cdk.json."""
    return copy.deepcopy(json.loads((REPO / "cdk.json").read_text())["context"][CONTEXT_KEY])


def local_config(gitlab_url: str, ca_bundle_file: str, context: Mapping[str, Any] | None = None) -> AppConfig:
    """The embedded settings, with GitLab pointed at the local server and its test CA."""
    settings = copy.deepcopy(dict(context or default_context()))
    settings["gitlab"] = {**settings.get("gitlab", {}), "url": gitlab_url, "ca_bundle_file": ca_bundle_file}
    return load_config({CONTEXT_KEY: settings}, REPO)


def synthesize(config: AppConfig, outdir: Path) -> dict[str, Any]:
    """The stack's template, as ``cdk synth`` writes it into ``outdir`` with the functions' code
    assets (layer bundling skipped: no layer build)."""
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:bundling-stacks": []})
    KeyRotationStack(app, config.stack_name, config=config)
    return app.synth().get_stack_by_name(config.stack_name).template


def deploy(template: Mapping[str, Any], emulators: Emulators, outdir: Path) -> Deployment:
    """Create the template's secrets and topics in the emulator and resolve the functions; their
    code is the asset staged in ``outdir`` (the cdk.out of ``synthesize``)."""
    secrets = emulators.client("secretsmanager")
    sns = emulators.client("sns")
    physical: dict[str, Any] = {}
    secret_arns: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        if kind == "AWS::SecretsManager::Secret":
            initial = properties.get("SecretString")
            arn = secrets.create_secret(Name=logical_id, SecretString=initial if isinstance(initial, str) else "{}")["ARN"]
            physical[logical_id] = secret_arns[logical_id] = arn
        elif kind == "AWS::SNS::Topic":
            arn = sns.create_topic(Name=logical_id)["TopicArn"]
            physical[logical_id] = {"Ref": arn, "TopicArn": arn, "TopicName": logical_id}
        else:  # not used by the functions at run time: a well-formed stand-in ARN is enough
            service = kind.split("::")[1].lower()
            physical[logical_id] = {"Ref": logical_id, "Arn": f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{logical_id}"}
    resolver = TemplateResolver(template, physical, account_id=ACCOUNT_ID, region=REGION)
    functions = {}
    for function in resolver.lambda_functions():
        if function.role_logical_id is None:
            raise ValueError(f"function {function.logical_id} has no role in the template")
        policies = resolver.role_policies(function.role_logical_id)
        if policies.managed_policy_arns:
            raise ValueError(
                f"role of {function.logical_id} uses managed policies {list(policies.managed_policy_arns)}, "
                "whose statements are not in the template"
            )
        functions[function.handler] = DeployedFunction(
            logical_id=function.logical_id,
            handler=function.handler,
            environment=dict(function.environment),
            policy_documents=policies.documents,
            code_dir=_code_dir(template, function.logical_id, outdir),
        )
    for handler in (ROTATION_HANDLER, REVOCATION_HANDLER):
        if handler not in functions:
            raise ValueError(f"the template has no function with handler {handler!r}: found {sorted(functions)}")
    return Deployment(template=template, functions=functions, secret_arns=secret_arns)


def _code_dir(template: Mapping[str, Any], logical_id: str, outdir: Path) -> Path:
    """cdk.out/asset.<hash>: what Lambda unpacks into LAMBDA_TASK_ROOT for this function."""
    key = template["Resources"][logical_id]["Properties"]["Code"]["S3Key"]
    code_dir = outdir / f"asset.{key.removesuffix('.zip')}"
    if not code_dir.is_dir():
        raise ValueError(f"function {logical_id}: its code asset {code_dir} is not in {outdir}")
    return code_dir
