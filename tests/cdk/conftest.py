"""Fixtures of the CDK tests: each synthesis is shared by the tests that read it (jsii start-up
and synthesis cost seconds each)."""

from __future__ import annotations

import os

# Before anything imports aws_cdk: jsii's notices about this machine's Node.js are noise here.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22,23,24,25,26")

import pytest  # noqa: E402

from tests.cdk.synth import Synthesis, default_config, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The stack of cdk.json's default config, synthesized once with cdk-nag's AwsSolutions checks."""
    return synthesize(default_config(), tmp_path_factory.mktemp("default-synth"), nag=True)
