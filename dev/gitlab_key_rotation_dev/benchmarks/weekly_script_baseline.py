"""The baseline: what the usual weekly key-deleting script does, written the usual way.

For each group one ``GetGroup`` (its first page only: on real IAM that is 100 members, so the
usual script silently misses the rest; moto returns every member in one page, which flatters the
baseline here), then for each member ``ListAccessKeys`` and a ``DeleteAccessKey`` per key, one call
after another, with boto3's default client. ``limit`` stops after that many members, so that the
benchmark can time a sample of a big group and extrapolate.
"""

from __future__ import annotations

import time

import boto3


def revoke_like_the_usual_script(groups: list[str], limit: int | None = None) -> dict[str, float]:
    iam = boto3.client("iam")
    deleted = users_done = 0
    listing_seconds = 0.0
    for group in groups:
        started = time.monotonic()
        users = iam.get_group(GroupName=group)["Users"]
        listing_seconds += time.monotonic() - started
        for user in users[:limit]:
            for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user["UserName"], AccessKeyId=key["AccessKeyId"])
                deleted += 1
            users_done += 1
    return {"users_done": users_done, "keys_deleted": deleted, "listing_seconds": listing_seconds}
