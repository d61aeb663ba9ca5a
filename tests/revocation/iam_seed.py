"""Seeding and reading IAM state in moto for the revocation tests."""

from __future__ import annotations


def seed_user(iam, name: str, *, groups=(), keys: int = 1, inactive: int = 0, tags=None) -> list[dict]:
    """Create the user in ``groups`` (created when missing) with ``keys`` Active and ``inactive``
    Inactive keys; returns the created keys, secrets included, so tests can look for leaks."""
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    for group in groups:
        if group not in {g["GroupName"] for g in iam.list_groups()["Groups"]}:
            iam.create_group(GroupName=group)
        iam.add_user_to_group(GroupName=group, UserName=name)
    created = []
    for index in range(keys + inactive):
        key = iam.create_access_key(UserName=name)["AccessKey"]
        if index >= keys:
            iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
        created.append(key)
    return created


def key_statuses(iam, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
