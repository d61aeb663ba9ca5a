#!/usr/bin/env python3
"""The CDK app: reads the ``gitlab-key-rotation`` context of cdk.json into a typed config and
creates ``KeyRotationStack``. The only place that reads CDK context or the process environment."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from gitlab_key_rotation.config import CONTEXT_KEY, ConfigError, load_config
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack


def main() -> None:
    app = cdk.App()
    try:
        config = load_config({CONTEXT_KEY: app.node.try_get_context(CONTEXT_KEY)}, Path(__file__).resolve().parent)
    except ConfigError as exc:
        sys.exit(f"cdk.json: {exc}")
    env = cdk.Environment(account=config.account, region=config.region) if config.account or config.region else None
    KeyRotationStack(
        app,
        config.stack_name,
        config=config,
        env=env,
        description="Rotates IAM machine-user keys into GitLab CI/CD variables and revokes developer keys weekly",
    )
    app.synth()


if __name__ == "__main__":
    main()
