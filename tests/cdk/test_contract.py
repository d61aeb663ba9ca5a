"""The contract's tables that mirror AWS: regions (kept equal to aws-cdk-lib's), log retention
values (equal to the RetentionDays the stack maps them to); and the contract ships without CDK."""

from __future__ import annotations

import subprocess
import sys

from aws_cdk.region_info import RegionInfo

from gitlab_key_rotation.key_rotation_stack import RETENTION_BY_DAYS
from gitlab_key_rotation.lambda_src.contract.rules import KNOWN_REGIONS, LOG_RETENTION_DAYS, GitLabUrl


def test_known_regions_are_those_aws_cdk_lib_knows() -> None:
    assert sorted(KNOWN_REGIONS) == sorted(r.name for r in RegionInfo.regions)


def test_every_allowed_retention_maps_to_a_retention_days_member() -> None:
    assert sorted(RETENTION_BY_DAYS) == list(LOG_RETENTION_DAYS)


def test_a_url_with_credentials_is_shown_without_the_password() -> None:
    shown = GitLabUrl().show("https://bot:hunter2@gitlab.example.com:8443/gitlab")
    assert shown == "'https://bot:***@gitlab.example.com:8443/gitlab'"
    assert GitLabUrl().show("https://glpat-secret@gitlab.com") == "'https://***@gitlab.com'"


def test_the_lambdas_settings_load_without_aws_cdk() -> None:
    code = (
        "import sys; import gitlab_key_rotation.lambda_src.rotation.handler, gitlab_key_rotation.lambda_src.revocation.handler;"
        "assert not [m for m in sys.modules if m.startswith(('aws_cdk', 'jsii', 'constructs'))], sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
