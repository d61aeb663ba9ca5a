"""``revocation.accounts.Organization`` over boto3's Organizations client (every page followed).

Organizations answers only in the management account or in a delegated administrator account
(or an account its resource-based delegation policy allows): the hub of ``accounts:
"organization"`` must be one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.config import Config

ACTIVE = "ACTIVE"
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10}, connect_timeout=5, read_timeout=20)


class Boto3Organization:
    def __init__(self, client):
        self._client = client

    def active_accounts(self, parent_ids: Sequence[str]) -> list[str]:
        if not parent_ids:
            accounts = self._pages("list_accounts", "Accounts")
        else:
            accounts = [account for parent in self._with_nested(parent_ids) for account in self._pages(
                "list_accounts_for_parent", "Accounts", ParentId=parent
            )]  # fmt: skip
        return sorted({account["Id"] for account in accounts if account.get("Status") == ACTIVE})

    def _with_nested(self, parent_ids: Sequence[str]) -> list[str]:
        """The OUs and every OU below them, each once."""
        seen: list[str] = []
        queue = list(parent_ids)
        while queue:
            parent = queue.pop(0)
            if parent in seen:
                continue
            seen.append(parent)
            queue += [ou["Id"] for ou in self._pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent)]
        return seen

    def _pages(self, operation: str, key: str, **arguments) -> list[dict]:
        return [item for page in self._client.get_paginator(operation).paginate(**arguments) for item in page[key]]
