"""The revocation Lambda's settings: settings.json (checked by the settings contract) and the topic
ARN of the environment; defaults, every value read, every problem named with what is allowed."""

from __future__ import annotations

import re

import pytest

from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings, SettingsError
from tests.lambda_settings import task_root


def load(tmp_path, document, **env):
    return RevocationSettings.load({**task_root(tmp_path, document), **env})


def test_defaults_need_only_the_groups(tmp_path):
    settings = load(tmp_path, {"groups": ["developers"]})

    assert settings == RevocationSettings(groups=("developers",))
    assert settings.exempt_tag_key == "key-revocation:exempt"
    assert (settings.action, settings.max_workers, settings.min_key_age_days) == ("delete", 16, 0)
    assert (settings.exempt_groups, settings.deactivation_grace_days) == ((), 6)


def test_every_setting_is_read(tmp_path):
    document = {
        "groups": ["developers", "contractors"],
        "protected_users": ["ci-deployer"],
        "exempt_users": ["dave"],
        "exempt_groups": ["on-leave"],
        "exempt_tag_key": "",
        "deactivation_grace_days": 13,
        "action": "deactivate",
        "min_key_age_days": 7,
        "max_workers": 32,
        "dry_run": True,
    }
    settings = load(tmp_path, document, NOTIFICATION_TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:key-alarms")

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


def test_a_missing_settings_file_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(SettingsError, match=r"settings.json is missing: the function's code asset must hold its settings.json"):
        RevocationSettings.load({"LAMBDA_TASK_ROOT": str(tmp_path)})


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, {"groups": [], "action": "disable", "max_workers": 500, "colour": "blue"})
    assert len(caught.value.problems) == 4


@pytest.mark.parametrize(
    ("document", "env", "message"),
    [
        ({"groups": []}, {}, "settings.json.groups must name at least one IAM group"),
        ({"groups": ["dev team"]}, {}, "settings.json.groups must be a list, each item an IAM group name"),
        ({"action": "disable"}, {}, "settings.json.action must be one of 'delete', 'deactivate', got 'disable'"),
        ({"max_workers": 0}, {}, "settings.json.max_workers must be a whole number from 1 to 64, got 0"),
        ({"max_workers": 500}, {}, "settings.json.max_workers must be a whole number from 1 to 64, got 500"),
        ({"min_key_age_days": "a week"}, {}, "settings.json.min_key_age_days must be a whole number of days >= 0, got 'a week'"),
        ({"exempt_tag_key": "aws:exempt"}, {}, "the prefix 'aws:' is reserved for AWS"),
        ({"protected_users": "ci-deployer"}, {}, "settings.json.protected_users must be a list"),
        ({"exempt_users": ["a", "A"]}, {}, "item [1] 'A' repeats item [0]"),
        ({}, {"NOTIFICATION_TOPIC_ARN": "key-alarms"}, "NOTIFICATION_TOPIC_ARN must be an SNS topic ARN, got 'key-alarms'"),
        ({"exempt_groups": ["on leave"]}, {}, "settings.json.exempt_groups must be a list, each item an IAM group name"),
        ({"deactivation_grace_days": 0}, {}, "settings.json.deactivation_grace_days must be a whole number of days >= 1, got 0"),
        (
            {"exempt_tag_key": "key-revocation:deactivated:all"},
            {},
            "settings.json.exempt_tag_key must not start with 'key-revocation:deactivated:' (the revocation's own tags)",
        ),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(tmp_path, document, env, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(tmp_path, {"groups": ["developers"], **document}, **env)


def test_a_file_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "settings.json").write_text("{groups: developers}")
    with pytest.raises(SettingsError, match="settings.json is not readable JSON"):
        RevocationSettings.load({"LAMBDA_TASK_ROOT": str(tmp_path)})
