"""The suite-wide log guard (``tests/log_guard.py``) really finds secrets, wherever a record
carries them, and does not cry wolf over key ids."""

from __future__ import annotations

import logging

from gitlab_key_rotation_dev.log_guard import leaks, moto_key_secrets
from gitlab_key_rotation_dev.rotation_world import USER


def record(message: str, *args, exc: BaseException | None = None, **extra) -> logging.LogRecord:
    made = logging.makeLogRecord(
        {"name": "rotation.test", "levelno": logging.INFO, "levelname": "INFO", "msg": message, "args": args}
    )
    if exc is not None:
        made.exc_info = (type(exc), exc, None)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_the_guard_knows_every_secret_moto_handed_out_and_finds_it_anywhere_in_a_record(world):
    key = world.iam.create_access_key(UserName=USER)["AccessKey"]
    secret = key["SecretAccessKey"]
    assert secret in moto_key_secrets()
    carriers = [
        record("pushed %s", secret),
        record("summary", extra_field={"nested": [secret]}),
        record("failed", exc=RuntimeError(f"bad value {secret}")),
    ]
    found = leaks(carriers, moto_key_secrets())
    assert len(found) == 3 and not any(secret in line for line in found)
    assert leaks([record("created key %s", key["AccessKeyId"])], moto_key_secrets()) == []


def test_the_guard_finds_gitlab_tokens_without_being_told_them():
    assert leaks([record("token glpat-abcdefghijklmnopqrst works")], set()) != []
    assert leaks([record("the token glpat-... expires soon")], set()) == []


def test_a_real_run_logs_key_ids_but_never_a_secret(world, caplog):
    world.seed_key(age_days=40, in_targets=True)
    with caplog.at_level(logging.INFO):
        report = world.run()
    new_key = report.users[0].actions[0]["key_id"]
    rotation_records = [r for r in caplog.records if r.name.startswith("gitlab_key_rotation.lambda_src.rotation")]
    assert any(new_key in r.getMessage() for r in rotation_records)
    assert leaks(caplog.records, moto_key_secrets() | {world.token}) == []


def test_the_guard_still_knows_a_key_after_moto_was_reset_during_the_test():
    import boto3
    from moto import mock_aws

    from gitlab_key_rotation_dev import log_guard

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        iam.create_user(UserName="gone")
        secret = iam.create_access_key(UserName="gone")["AccessKey"]["SecretAccessKey"]
    assert secret not in moto_key_secrets()  # mock_aws reset the backends on exit
    assert secret in log_guard._created_this_test
