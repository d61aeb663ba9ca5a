"""One local deployment of the stack, ready to invoke: the composition of the demo's pieces, used
by ``python -m gitlab_key_rotation_dev.demo`` and by the end-to-end tests.

    with LocalRun(progress=print) as local:
        before = local.observe()
        rotation = local.invoke(ROTATION_HANDLER, {})
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from gitlab_key_rotation.assets import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation.key_rotation_stack import member_stack_props
from gitlab_key_rotation_dev.demo.deployment import Deployment, deploy, local_config, synthesize
from gitlab_key_rotation_dev.demo.emulators import ACCOUNT_ID, Emulators, lambda_runtime_environment, running_emulators
from gitlab_key_rotation_dev.member_accounts import account_clients, deploy_member_template
from gitlab_key_rotation_dev.demo.invoke import Invocation, invoke
from gitlab_key_rotation_dev.demo.report import World, observe
from gitlab_key_rotation_dev.demo.scenario import Scenario, seed
from gitlab_key_rotation.ca_bundle_layer import CA_BUNDLE_PATH
from gitlab_key_rotation.config import AppConfig
from gitlab_key_rotation_dev.moto_iam_enforcement import RoleCredentials, iam_enforcement, role_credentials


class LocalRun:
    """Emulators started, the stack synthesized and "deployed", the scenario seeded, and each
    function's role assumed. ``invoke`` runs a handler with IAM enforcement on, so a permission
    missing from the synthesized role fails the run as it would in AWS."""

    def __init__(
        self,
        *,
        key_age_days: int = 100,
        context: Mapping[str, Any] | None = None,
        progress: Callable[[str], None] = lambda _line: None,
        member_accounts: Sequence[str] = (),
    ):
        """``member_accounts``: organization mode, the emulated accounts that get the member
        template (the StackSet's job); the revocation's listed accounts also get developers."""
        self._key_age_days = key_age_days
        self._context = context
        self._progress = progress
        self._member_accounts = tuple(member_accounts)
        self.member_roles: dict[str, dict[str, str]] = {}  # account -> role name -> ARN
        self._stack = ExitStack()
        self.emulators: Emulators
        self.config: AppConfig
        self.deployment: Deployment
        self.scenario: Scenario
        self.credentials: dict[str, RoleCredentials] = {}
        self.opt_dir: Path

    def __enter__(self) -> "LocalRun":
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        say = self._progress
        say("starting the AWS emulator (moto.server) and the GitLab API server (TLS) on loopback")
        self.emulators = self._stack.enter_context(running_emulators())
        say(f"  AWS: {self.emulators.aws_endpoint}   GitLab: {self.emulators.gitlab.url}")
        say("synthesizing the stack from cdk.json's settings (GitLab pointed at the local server)")
        self.config = local_config(self.emulators.gitlab.url, str(self.emulators.gitlab.ca_bundle), self._context)
        self.outdir = Path(tempfile.mkdtemp(prefix="demo-cdk-out-"))
        self._stack.callback(shutil.rmtree, self.outdir, ignore_errors=True)
        template = synthesize(self.config, self.outdir)
        say(f"  {self.config.stack_name}: {len(template['Resources'])} resources")
        say("deploying into the emulator: the template's secrets and topic; each function's environment and role")
        self.deployment = deploy(template, self.emulators, self.outdir)
        self.opt_dir = Path(tempfile.mkdtemp(prefix="demo-opt-"))
        self._stack.callback(shutil.rmtree, self.opt_dir, ignore_errors=True)
        ca_copy = self.opt_dir / CA_BUNDLE_PATH.removeprefix("/opt/")
        ca_copy.parent.mkdir(parents=True)
        shutil.copyfile(str(self.emulators.gitlab.ca_bundle), ca_copy)  # what the CA layer holds
        for function in self.deployment.functions.values():
            say(f"  {function.handler}: {len(function.environment)} environment variables, settings.json in its code asset, role {function.logical_id}Role")
        say(
            f"seeding: machine user(s) with a {self._key_age_days}-day-old key held by GitLab and recorded in the state "
            "secret (managed by the rotation), the GitLab token, developers"
        )
        accounts = self.config.revocation.accounts
        self.scenario = seed(
            self.emulators,
            self.config,
            self.deployment,
            key_age_days=self._key_age_days,
            developer_accounts=tuple(accounts) if isinstance(accounts, tuple) else (None,),
        )
        iam, sts = self.emulators.client("iam"), self.emulators.client("sts")
        for handler, function in self.deployment.functions.items():
            self.credentials[handler] = role_credentials(
                iam, sts, role_name=f"{function.logical_id}Role", documents=function.policy_documents
            )
        if self._member_accounts:
            self._deploy_members()

    def _deploy_members(self) -> None:
        """The StackSet's inline member template, resolved for each member account (what the StackSet deploys)."""
        props = member_stack_props(self.config)
        (stack_set,) = [
            r["Properties"] for r in self.deployment.template["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"
        ]
        template = json.loads(stack_set["TemplateBody"])
        parameters = {"HubAccountId": ACCOUNT_ID}
        if props["rotated_users"]:
            parameters["HubRotationRoleArn"] = self.credentials[ROTATION_HANDLER].role_arn
        if props["groups"]:
            parameters["HubRevocationRoleArn"] = self.credentials[REVOCATION_HANDLER].role_arn
        for account in self._member_accounts:
            iam = account_clients(self.emulators.client, account)("iam")
            self.member_roles[account] = deploy_member_template(template, iam, account=account, parameters=parameters)
            self._progress(f"  account {account}: member roles {sorted(self.member_roles[account])}")

    def observe(self) -> World:
        return observe(self.emulators, self.config, self.scenario, self.deployment.state_secret_arns())

    def invoke(self, handler: str, event: Mapping[str, Any]) -> Invocation:
        """Run one function's handler with its role's credentials, IAM enforcement on."""
        with iam_enforcement():
            return invoke(
                self.deployment.functions[handler],
                event,
                credentials=self.credentials[handler],
                runtime_environment=lambda_runtime_environment(self.emulators),
                opt_dir=self.opt_dir,
                live=self._progress,
            )
