"""Settings of the revocation Lambda, read once at start.

The static settings come from ``settings.json`` in the function's code asset, declared and checked
by the settings contract (``contract.settings.REVOCATION_RUNTIME``: the same rules the construct
applied at synth). The environment carries the deploy-time value only:

``NOTIFICATION_TOPIC_ARN``  SNS topic for the failure summary
``MEMBER_ROLE_ARN_PATTERN`` organization mode (settings.json has ``accounts``): the member revocation role's ARN
                            with ``{account}`` for the account id

User and group names and the tag key are compared without regard to case, as IAM does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from ..contract import ENV_TOPIC_ARN, SettingsError, member_role_arn_pattern, read_runtime_settings
from ..contract.rules import SNS_TOPIC_ARN, Invalid
from ..contract.settings import DEACTIVATED_TAG_PREFIX, DEFAULT_EXEMPT_TAG_KEY, REVOCATION_RUNTIME

Action = Literal["delete", "deactivate"]
__all__ = ["DEACTIVATED_TAG_PREFIX", "Action", "RevocationSettings", "SettingsError"]


@dataclass(frozen=True)
class RevocationSettings:
    groups: tuple[str, ...]
    protected_users: frozenset[str] = frozenset()
    exempt_users: frozenset[str] = frozenset()
    exempt_groups: tuple[str, ...] = ()
    exempt_tag_key: str | None = DEFAULT_EXEMPT_TAG_KEY
    action: Action = "delete"
    deactivation_grace_days: int = 6
    min_key_age_days: int = 0
    max_workers: int = 16
    notification_topic_arn: str | None = None
    dry_run: bool = False
    accounts: tuple[str, ...] | Literal["organization"] | None = None
    organizational_unit_ids: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    member_role_arn_pattern: str | None = None
    account_workers: int = 4

    @classmethod
    def load(cls, env: Mapping[str, str]) -> "RevocationSettings":
        """``$LAMBDA_TASK_ROOT/settings.json`` plus the topic ARN of the environment."""
        values = read_runtime_settings(REVOCATION_RUNTIME, env)
        topic_arn = env.get(ENV_TOPIC_ARN) or None
        if topic_arn:
            try:
                SNS_TOPIC_ARN.check(topic_arn)
            except Invalid:
                raise SettingsError([f"{ENV_TOPIC_ARN} must be {SNS_TOPIC_ARN.allowed}, got {topic_arn!r}"]) from None
        return cls(
            groups=tuple(values["groups"]),
            protected_users=frozenset(values["protected_users"]),
            exempt_users=frozenset(values["exempt_users"]),
            exempt_groups=tuple(values["exempt_groups"]),
            exempt_tag_key=values["exempt_tag_key"] or None,
            action=values["action"],
            deactivation_grace_days=values["deactivation_grace_days"],
            min_key_age_days=values["min_key_age_days"],
            max_workers=values["max_workers"],
            notification_topic_arn=topic_arn,
            dry_run=values["dry_run"],
            accounts=values["accounts"] if values["accounts"] in (None, "organization") else tuple(values["accounts"]),
            organizational_unit_ids=tuple(values["organizational_unit_ids"]),
            exclude_accounts=tuple(values["exclude_accounts"]),
            member_role_arn_pattern=member_role_arn_pattern(env, required=values["accounts"] is not None),
            account_workers=values["account_workers"],
        )
