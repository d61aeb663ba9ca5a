"""One error base for both Lambdas (``common.errors``): its messages are shown as written, any other
error with its type."""

from __future__ import annotations

import pytest

from gitlab_key_rotation.lambda_src.common.assume_role import AccountAccessError
from gitlab_key_rotation.lambda_src.common.errors import OperatorError, describe
from gitlab_key_rotation.lambda_src.common.events import EventError
from gitlab_key_rotation.lambda_src.contract import SettingsError
from gitlab_key_rotation.lambda_src.revocation.handler import RevocationFailed
from gitlab_key_rotation.lambda_src.revocation.ports import IncompleteListing, NoSuchEntity
from gitlab_key_rotation.lambda_src.rotation.errors import RotationError


@pytest.mark.parametrize(
    "error",
    [
        RotationError("IAM user ci-deployer does not exist; create it"),
        EventError("the event has unknown fields ['froce']"),
        SettingsError(["settings.json.groups must be a list"]),
        AccountAccessError("account 111111111111: cannot assume arn:aws:iam::111111111111:role/x"),
        RevocationFailed("developer key revocation finished with 1 error(s)"),
        NoSuchEntity("The user with name alice cannot be found."),
        IncompleteListing("get_group said more items follow after 3 but answered without a Marker"),
    ],
)
def test_every_error_of_the_lambdas_is_an_operator_error_shown_as_written(error):
    assert isinstance(error, OperatorError) and describe(error) == str(error)


def test_another_error_is_shown_with_its_type():
    assert describe(KeyError("x")) == "KeyError: 'x'"


def test_settings_and_event_errors_are_still_value_errors():
    assert issubclass(SettingsError, ValueError) and issubclass(EventError, ValueError)
