"""The revocation Lambda's environment contract: defaults, parsing, and errors that name the value."""

from __future__ import annotations

import re

import pytest

from gitlab_key_rotation.lambda_src.common.env import SettingsError
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings


def test_defaults_need_only_the_groups():
    settings = RevocationSettings.from_env({"REVOCATION_GROUPS": '["developers"]'})

    assert settings == RevocationSettings(groups=("developers",))
    assert settings.exempt_tag_key == "key-revocation:exempt"
    assert (settings.action, settings.max_workers, settings.min_key_age_days) == ("delete", 16, 0)
    assert (settings.exempt_groups, settings.deactivation_grace_days) == ((), 6)


def test_every_variable_is_read():
    settings = RevocationSettings.from_env(
        {
            "REVOCATION_GROUPS": '["developers", "contractors"]',
            "PROTECTED_USERS": '["ci-deployer"]',
            "EXEMPT_USERS": '["dave"]',
            "EXEMPT_GROUPS": '["on-leave"]',
            "EXEMPT_TAG_KEY": "",
            "DEACTIVATION_GRACE_DAYS": "13",
            "REVOCATION_ACTION": "deactivate",
            "MIN_KEY_AGE_DAYS": "7",
            "MAX_WORKERS": "32",
            "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:key-alarms",
            "DRY_RUN": "true",
        }
    )

    assert settings == RevocationSettings(
        groups=("developers", "contractors"),
        protected_users=frozenset({"ci-deployer"}),
        exempt_users=frozenset({"dave"}),
        exempt_groups=("on-leave",),
        exempt_tag_key=None,
        deactivation_grace_days=13,
        action="deactivate",
        min_key_age_days=7,
        max_workers=32,
        notification_topic_arn="arn:aws:sns:eu-west-1:123456789012:key-alarms",
        dry_run=True,
    )


def test_the_groups_are_required():
    with pytest.raises(SettingsError, match="environment variable REVOCATION_GROUPS is required"):
        RevocationSettings.from_env({})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REVOCATION_GROUPS": "[]"}, "REVOCATION_GROUPS must name at least one IAM group"),
        ({"REVOCATION_GROUPS": '["dev team"]'}, "REVOCATION_GROUPS holds 'dev team', which is not an IAM group name"),
        ({"REVOCATION_ACTION": "disable"}, "REVOCATION_ACTION must be 'delete' or 'deactivate', got 'disable'"),
        ({"EXEMPT_GROUPS": '["on leave"]'}, "EXEMPT_GROUPS holds 'on leave', which is not an IAM group name"),
        ({"DEACTIVATION_GRACE_DAYS": "0"}, "DEACTIVATION_GRACE_DAYS must be at least 1, got 0"),
        (
            {"EXEMPT_TAG_KEY": "key-revocation:deactivated:all"},
            "EXEMPT_TAG_KEY must not start with 'key-revocation:deactivated:' (the revocation's own tags)",
        ),
        ({"MAX_WORKERS": "0"}, "MAX_WORKERS must be at least 1, got 0"),
        ({"MAX_WORKERS": "500"}, "MAX_WORKERS must be at most 64, got 500"),
        ({"MIN_KEY_AGE_DAYS": "a week"}, "MIN_KEY_AGE_DAYS must be an integer, got 'a week'"),
        ({"NOTIFICATION_TOPIC_ARN": "key-alarms"}, "NOTIFICATION_TOPIC_ARN must be an SNS topic ARN, got 'key-alarms'"),
        ({"PROTECTED_USERS": '"ci-deployer"'}, "PROTECTED_USERS must be a JSON list of non-empty strings"),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        RevocationSettings.from_env({"REVOCATION_GROUPS": '["developers"]', **env})
