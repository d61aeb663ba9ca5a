#!/usr/bin/env python3
"""The CDK app: reads the ``gitlab-key-rotation`` settings of cdk.json (with its ``deployments`` and
any ``-c gitlab-key-rotation.<key path>=<value>`` overrides) and creates one ``KeyRotationStack`` per
deployment. The only place that reads CDK context or the process environment."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from gitlab_key_rotation.config import ConfigError, load_deployments
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack, member_stack_props
from gitlab_key_rotation.organization import MemberRolesStack


def main() -> None:
    app = cdk.App()
    try:
        configs = load_deployments(app.node.get_all_context(), Path(__file__).resolve().parent)
    except ConfigError as exc:
        count = len(exc.problems)
        sys.exit(f"cdk.json: {exc}" if count == 1 else f"cdk.json: {count} settings are wrong:\n{exc}")
    try:
        _build(app, configs)
    except ValueError as exc:  # a value only the constructs can judge (e.g. a schedule no heartbeat can watch)
        sys.exit(f"cdk.json: {exc}")
    app.synth()


def _build(app: cdk.App, configs: list) -> None:
    for config in configs:
        env = cdk.Environment(account=config.account, region=config.region) if config.account or config.region else None
        KeyRotationStack(
            app,
            config.stack_name,
            config=config,
            env=env,
            description="Rotates IAM machine-user keys into GitLab CI/CD variables and revokes developer keys weekly",
        )
        if config.reaches_members:
            # The member roles as a plain stack, for an account outside the StackSet's OUs (or without
            # AWS Organizations): cdk deploy <member_stack_name> --parameters ... in that account.
            MemberRolesStack(
                app,
                config.organization.member_stack_name,
                description="Roles that the hub's key rotation and revocation functions assume in this account",
                **member_stack_props(config),
            )


if __name__ == "__main__":
    main()
