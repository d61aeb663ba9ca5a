"""The README's main job as a test: the handlers named in the synthesized template, with the
environment and the role permissions the template gives them, against moto.server and the GitLab
server. A wrong handler path, a missing variable or a missing permission fails here.

One synthesis and one deployment for the module (they cost seconds). The first rotation is a
fixture, so that a test building on it holds on whichever pytest-xdist worker it runs.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from gitlab_key_rotation_dev.demo.deployment import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation_dev.demo.local_run import LocalRun
from gitlab_key_rotation_dev.moto_iam_enforcement import iam_enforcement


@pytest.fixture(scope="module")
def local():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with LocalRun(key_age_days=100) as run:
        yield run


@pytest.fixture(scope="module")
def before(local):
    return local.observe()


@pytest.fixture(scope="module")
def first_rotation(local, before):
    """The deployment's first scheduled rotation, and what the accounts look like after it."""
    invocation = local.invoke(ROTATION_HANDLER, {})
    return invocation, local.observe()


def machine_user(local) -> str:
    return local.scenario.machine_users[0]


def test_rotation_puts_a_verified_new_key_into_every_target_and_keeps_the_old_one_active(local, before, first_rotation):
    old_key = before.keys[machine_user(local)][0]

    invocation, after = first_rotation

    assert invocation.ok, invocation.error
    keys = {k.id: k for k in after.keys[machine_user(local)]}
    assert len(keys) == 2
    assert keys[old_key.id].status == "Active"  # grace period: running pipelines still hold it
    (new_id,) = set(keys) - {old_key.id}
    assert keys[new_id].status == "Active"
    held = {(v.where, v.key): v.holds for v in after.variables}
    id_variables = [v for v in after.variables if v.holds != "(secret set)"]
    assert id_variables and all(v.holds == new_id for v in id_variables), held
    assert all(
        old.value != new.value for old, new in zip(before.variables, after.variables)
    ), "every variable, secrets included, was rewritten"


def test_a_second_run_right_after_changes_nothing(local, first_rotation):
    keys_before = local.observe().keys

    invocation = local.invoke(ROTATION_HANDLER, {})

    assert invocation.ok, invocation.error
    assert local.observe().keys == keys_before


def test_revocation_deletes_developer_keys_but_spares_exempt_and_machine_users(local, before, first_rotation):
    invocation = local.invoke(REVOCATION_HANDLER, {})

    assert invocation.ok, invocation.error
    after = local.observe()
    for developer in local.scenario.developers:
        if developer in local.scenario.exempt_by_tag:
            assert after.keys[developer] == before.keys[developer]
        else:
            assert after.keys[developer] == ()
    assert len(after.keys[machine_user(local)]) == 2  # it sits in a revocation group, yet is protected
    assert invocation.result["skipped_users"]["protected"] == [machine_user(local)]


def test_no_secret_reaches_a_log_record_or_a_return_value(local, first_rotation):
    rotation = local.invoke(ROTATION_HANDLER, {"force": True})
    assert rotation.ok, rotation.error
    secrets = [local.scenario.gitlab_token]
    for variable in local.observe().variables:
        if variable.holds == "(secret set)":
            secrets.append(variable.value)
    text = " ".join(r.getMessage() + repr(vars(r)) for r in rotation.records) + repr(rotation.result)
    assert all(secret and secret not in text for secret in secrets)


# --- least privilege: the synthesized roles can do their job and nothing beside it ----------


def rotation_client(local, service):
    return local.emulators.client(service, **local.credentials[ROTATION_HANDLER].client_kwargs())


def revocation_client(local, service):
    return local.emulators.client(service, **local.credentials[REVOCATION_HANDLER].client_kwargs())


def denied(call) -> bool:
    with iam_enforcement():
        try:
            call()
        except ClientError as error:
            return error.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    return False


def test_the_rotation_role_cannot_touch_another_users_keys(local):
    iam = rotation_client(local, "iam")
    assert denied(lambda: iam.list_access_keys(UserName="dave"))
    assert denied(lambda: iam.create_access_key(UserName="dave"))


def test_the_rotation_role_cannot_read_another_secret(local):
    other = local.emulators.client("secretsmanager").create_secret(Name="someone-elses", SecretString="{}")["ARN"]
    secrets = rotation_client(local, "secretsmanager")
    assert denied(lambda: secrets.get_secret_value(SecretId=other))


def test_the_rotation_role_cannot_write_the_token_secret_unless_token_rotation_is_on(local):
    token_secret = local.deployment.rotation.environment["GITLAB_TOKEN_SECRET_ARN"]
    secrets = rotation_client(local, "secretsmanager")
    assert denied(lambda: secrets.put_secret_value(SecretId=token_secret, SecretString="{}"))


def test_the_revocation_role_cannot_touch_a_rotation_users_key(local):
    user = machine_user(local)
    key_id = local.observe().keys[user][0].id
    iam = revocation_client(local, "iam")
    assert denied(lambda: iam.delete_access_key(UserName=user, AccessKeyId=key_id))
    assert denied(lambda: iam.create_access_key(UserName=user))


def test_the_revocation_role_cannot_read_secrets_or_other_groups(local):
    local.emulators.client("iam").create_group(GroupName="admins")
    iam = revocation_client(local, "iam")
    assert denied(lambda: iam.get_group(GroupName="admins"))
    secrets = revocation_client(local, "secretsmanager")
    token_secret = local.deployment.rotation.environment["GITLAB_TOKEN_SECRET_ARN"]
    assert denied(lambda: secrets.get_secret_value(SecretId=token_secret))
