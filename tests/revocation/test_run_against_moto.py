"""A whole run of the logic through the real adapter and client against moto, with the world
changing mid-run: users and keys removed by someone else."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3

from gitlab_key_rotation.lambda_src.revocation.aws import Boto3Iam, iam_client
from gitlab_key_rotation.lambda_src.revocation.run import KeyOutcome, run_revocation
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings
from tests.revocation.iam_seed import key_statuses, seed_user


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_users_and_keys_removed_by_someone_else_mid_run_count_as_done(aws):
    seed_user(aws, "ursula", groups=["developers"])
    [victor_key] = seed_user(aws, "victor", groups=["developers"])
    seed_user(aws, "walter", groups=["developers"])
    client = iam_client(max_workers=2)
    other_admin = boto3.client("iam")

    def remove_ursula_first(params, **_):
        if params.get("UserName") == "ursula":
            for key in other_admin.list_access_keys(UserName="ursula")["AccessKeyMetadata"]:
                other_admin.delete_access_key(UserName="ursula", AccessKeyId=key["AccessKeyId"])
            other_admin.delete_user(UserName="ursula")

    def delete_victors_key_first(params, **_):
        if params.get("UserName") == "victor":
            other_admin.delete_access_key(UserName="victor", AccessKeyId=params["AccessKeyId"])

    client.meta.events.register("before-parameter-build.iam.ListAccessKeys", remove_ursula_first)
    client.meta.events.register("before-parameter-build.iam.DeleteAccessKey", delete_victors_key_first)

    report = run_revocation(RevocationSettings(groups=("developers",)), Boto3Iam(client), now())

    outcomes = {user.user: user for user in report.users}
    assert report.failures == ()
    assert outcomes["ursula"].skipped == "user_gone"
    assert outcomes["victor"].keys == (KeyOutcome("victor", victor_key["AccessKeyId"], "already_gone"),)
    assert key_statuses(aws, "walter") == {}
