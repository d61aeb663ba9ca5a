"""The boto3 side of the revocation: the IAM adapter and the failure notification.

One IAM client is shared by all worker threads (botocore clients are thread-safe); its connection
pool is at least as large as the worker pool. botocore's ``adaptive`` retry mode: ``Throttling``
(and other transient errors) are retried with exponential backoff and jitter, and the client's own
rate limiter, shared by every thread, slows all of them down when IAM throttles. The ``standard``
mode retries each call on its own: against a sustained rate limit its workers keep the limit
saturated, and its retry quota (500 units, 5 per throttled retry) runs dry, after which throttled
calls fail without retry (measured: 1,000 members at 20 calls/s, 692 errors with ``standard``, none
with ``adaptive``; ``make bench`` prints both). boto3 honours ``AWS_ENDPOINT_URL``, which is how
the local run points it at moto.server.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..common.keys import AccessKey
from .ports import IncompleteListing, NoSuchEntity

RETRY_ATTEMPTS = 10  # the first call and up to nine retries; throttling backoff grows to 20 s
GROUP_PAGE_SIZE = 1000  # GetGroup's largest page: 5,000 members cost 5 calls, not 50


def iam_client(max_workers: int, session: boto3.session.Session | None = None, retry_mode: str = "adaptive"):
    """``session``: e.g. an account's member role (``common.assume_role``); default boto3's own.
    ``retry_mode`` other than ``adaptive`` is for the benchmark's comparison."""
    return (session or boto3.session.Session()).client(
        "iam",
        config=Config(
            retries={"mode": retry_mode, "max_attempts": RETRY_ATTEMPTS},
            max_pool_connections=max(10, max_workers),
            connect_timeout=5,
            read_timeout=30,
        ),
    )


class Boto3Iam:
    """``revocation.ports.Iam`` over a boto3 IAM client."""

    def __init__(self, client):
        self._client = client

    def group_members(self, group: str) -> list[str]:
        with _no_such_entity():
            pages = _all_pages(self._client.get_group, "Users", GroupName=group, MaxItems=GROUP_PAGE_SIZE)
            return [user["UserName"] for user in pages]

    def access_keys(self, user: str) -> list[AccessKey]:
        with _no_such_entity():
            return [
                AccessKey(id=meta["AccessKeyId"], status=meta["Status"], created=meta["CreateDate"])
                for meta in _all_pages(self._client.list_access_keys, "AccessKeyMetadata", UserName=user)
            ]

    def user_tags(self, user: str) -> dict[str, str]:
        with _no_such_entity():
            return {tag["Key"]: tag["Value"] for tag in _all_pages(self._client.list_user_tags, "Tags", UserName=user)}

    def tag_user(self, user: str, key: str, value: str) -> None:
        with _no_such_entity():
            self._client.tag_user(UserName=user, Tags=[{"Key": key, "Value": value}])

    def untag_user(self, user: str, key: str) -> None:
        with _no_such_entity():
            self._client.untag_user(UserName=user, TagKeys=[key])

    def delete_access_key(self, user: str, key_id: str) -> None:
        with _no_such_entity():
            self._client.delete_access_key(UserName=user, AccessKeyId=key_id)

    def deactivate_access_key(self, user: str, key_id: str) -> None:
        with _no_such_entity():
            self._client.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive")


def _all_pages(call, result_key: str, **params) -> list[dict]:
    """Every item of a Marker-paginated IAM listing, or IncompleteListing.

    botocore's paginator ends quietly when a page says ``IsTruncated`` but carries no ``Marker``;
    here that, and a marker seen before, raise: a listing is complete or it is an error.
    """
    items: list[dict] = []
    seen: set[str] = set()
    while True:
        page = call(**params)
        items += page[result_key]
        if not page.get("IsTruncated"):
            return items
        marker = page.get("Marker")
        if not marker or marker in seen:
            problem = "without a Marker" if not marker else "with a Marker it had given before"
            raise IncompleteListing(
                f"{call.__name__} said more items follow after {len(items)} but answered {problem}; "
                "the listing is incomplete"
            )
        seen.add(marker)
        params["Marker"] = marker


@contextmanager
def _no_such_entity() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            raise NoSuchEntity(str(exc)) from exc
        raise


def publish_failure(topic_arn: str, summary: dict[str, object]) -> None:
    """Send the run's summary to the SNS topic (in the topic's own region)."""
    region = topic_arn.split(":")[3]
    sns = boto3.client("sns", region_name=region, config=Config(retries={"mode": "standard"}))
    sns.publish(
        TopicArn=topic_arn,
        Subject=f"Developer key revocation failed: {summary['error_count']} error(s)",
        Message=json.dumps(summary, indent=2),
    )
