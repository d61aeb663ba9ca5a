"""The organization scenario of the local run (``make demo ARGS=--organization``): one hub and
three member accounts of one emulator.

- the hub (moto's default account) keeps ``ci-deployer`` (as in the default run), the secrets and
  the GitLab token;
- ``ci-deployer-b`` lives in account B and ``ci-deployer-c`` in account C, under the machine-user
  path ``/gitlab-key-rotation/``, each with its own GitLab group;
- the revocation runs in B, C and D (``revocation.accounts``), each seeded with the developers;
- B, C and D get the member template, as the StackSet would deploy it.
"""

from __future__ import annotations

import copy
from typing import Any

from gitlab_key_rotation.organization import MEMBER_PATH
from gitlab_key_rotation_dev.demo.deployment import default_context

MEMBER_ACCOUNTS = ("222222222222", "333333333333", "444444444444")


def organization_context(revocation_accounts: tuple[str, ...] = MEMBER_ACCOUNTS) -> dict[str, Any]:
    """cdk.json's settings plus organization mode over ``MEMBER_ACCOUNTS``."""
    context = copy.deepcopy(default_context())
    context["organization"] = {"deploy_to_ou_ids": ["ou-ab12-34cd56ef"]}
    for account, suffix in ((MEMBER_ACCOUNTS[0], "b"), (MEMBER_ACCOUNTS[1], "c")):
        context["rotation"]["users"].append(
            {
                "iam_user": f"ci-deployer-{suffix}",
                "iam_path": MEMBER_PATH,
                "account": account,
                "targets": [{"kind": "group", "id": f"example-org/team-{suffix}"}],
            }
        )
    context["revocation"]["accounts"] = list(revocation_accounts)
    return context
