"""The boto3 IAM adapter: against moto, and against botocore's Stubber where moto cannot tell
(moto ignores MaxItems, so pagination is proven with scripted pages)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from gitlab_key_rotation.lambda_src.revocation.aws import GROUP_PAGE_SIZE, Boto3Iam, iam_client
from gitlab_key_rotation.lambda_src.revocation.ports import IncompleteListing, NoSuchEntity
from tests.revocation.iam_seed import key_statuses, seed_user

CREATED = datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_reads_members_keys_and_tags(aws):
    alice_keys = seed_user(
        aws, "alice", groups=["developers"], keys=1, inactive=1, tags={"key-revocation:exempt": ""}
    )
    seed_user(aws, "bob", groups=["developers"], keys=0)
    adapter = Boto3Iam(iam_client(max_workers=4))

    assert adapter.group_members("developers") == ["alice", "bob"]
    keys = {key.id: key for key in adapter.access_keys("alice")}
    assert {key_id: key.status for key_id, key in keys.items()} == {
        alice_keys[0]["AccessKeyId"]: "Active",
        alice_keys[1]["AccessKeyId"]: "Inactive",
    }
    assert all(key.created.tzinfo is not None for key in keys.values())
    assert adapter.access_keys("bob") == []
    assert adapter.user_tags("alice") == {"key-revocation:exempt": ""}


def test_deactivates_and_deletes_keys_and_sets_and_removes_a_tag(aws):
    first, second = seed_user(aws, "carol", keys=2, tags={"team": "web"})
    adapter = Boto3Iam(iam_client(max_workers=4))

    adapter.deactivate_access_key("carol", first["AccessKeyId"])
    adapter.delete_access_key("carol", second["AccessKeyId"])
    adapter.tag_user("carol", "key-revocation:deactivated:X", "2026-12-01T21:00:00Z")

    assert key_statuses(aws, "carol") == {first["AccessKeyId"]: "Inactive"}
    assert adapter.user_tags("carol") == {"team": "web", "key-revocation:deactivated:X": "2026-12-01T21:00:00Z"}
    adapter.untag_user("carol", "key-revocation:deactivated:X")
    assert adapter.user_tags("carol") == {"team": "web"}


def test_missing_group_user_or_key_raise_no_such_entity(aws):
    seed_user(aws, "dave", keys=0)
    adapter = Boto3Iam(iam_client(max_workers=4))

    with pytest.raises(NoSuchEntity, match="ghosts"):
        adapter.group_members("ghosts")
    with pytest.raises(NoSuchEntity):
        adapter.access_keys("nobody")
    with pytest.raises(NoSuchEntity):
        adapter.user_tags("nobody")
    with pytest.raises(NoSuchEntity):
        adapter.tag_user("nobody", "k", "v")
    with pytest.raises(NoSuchEntity):
        adapter.delete_access_key("dave", "AKIAGONE000000000000")
    with pytest.raises(NoSuchEntity):
        adapter.deactivate_access_key("dave", "AKIAGONE000000000000")


def test_other_errors_pass_through_unchanged():
    client = iam_client(max_workers=4)
    with Stubber(client) as stubber:
        stubber.add_client_error("list_access_keys", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ClientError, match="AccessDenied"):
            Boto3Iam(client).access_keys("erin")


ACCOUNT_ARN = "arn:aws:iam::123456789012"


def _user(name: str) -> dict:
    return {
        "Path": "/",
        "UserName": name,
        "UserId": f"AIDA{name.upper():0<17}",
        "Arn": f"{ACCOUNT_ARN}:user/{name}",
        "CreateDate": CREATED,
    }


def _group_page(users: list[str], marker: str | None, truncated: bool | None = None) -> dict:
    page = {
        "Group": {
            "Path": "/",
            "GroupName": "developers",
            "GroupId": "AGPA0000000000000001",
            "Arn": f"{ACCOUNT_ARN}:group/developers",
            "CreateDate": CREATED,
        },
        "Users": [_user(name) for name in users],
        "IsTruncated": marker is not None if truncated is None else truncated,
    }
    if marker:
        page["Marker"] = marker
    return page


FIRST_PAGE = {"GroupName": "developers", "MaxItems": GROUP_PAGE_SIZE}


@pytest.fixture
def paged(monkeypatch) -> Iterator[tuple[Boto3Iam, Stubber]]:
    """The adapter over a stubbed client whose first ``GetGroup`` page of ``developers`` holds two
    members and points to ``page-2``; a test adds the pages that follow."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = iam_client(max_workers=4)
    with Stubber(client) as stubber:
        stubber.add_response("get_group", _group_page(["u1", "u2"], "page-2"), FIRST_PAGE)
        yield Boto3Iam(client), stubber


def test_group_members_follow_every_page_at_the_largest_page_size(paged):
    adapter, stubber = paged
    stubber.add_response("get_group", _group_page(["u3"], "page-3"), {**FIRST_PAGE, "Marker": "page-2"})
    stubber.add_response("get_group", _group_page(["u4"], None), {**FIRST_PAGE, "Marker": "page-3"})

    assert adapter.group_members("developers") == ["u1", "u2", "u3", "u4"]
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("second_page", "problem"),
    [
        (_group_page(["u3"], None, truncated=True), "answered without a Marker"),
        (_group_page(["u3"], "page-2"), "answered with a Marker it had given before"),
    ],
    ids=["truncated-without-marker", "marker-repeated"],
)
def test_a_listing_that_ends_early_is_an_error_not_a_short_list(paged, second_page, problem):
    adapter, stubber = paged
    stubber.add_response("get_group", second_page, {**FIRST_PAGE, "Marker": "page-2"})

    with pytest.raises(IncompleteListing, match=f"get_group said more items follow after 3 but {problem}"):
        adapter.group_members("developers")


def test_a_page_that_fails_fails_the_whole_listing(paged):
    adapter, stubber = paged
    stubber.add_client_error("get_group", "Throttling", "Rate exceeded", 400)

    with pytest.raises(ClientError, match="Throttling"):
        adapter.group_members("developers")


def test_the_client_pools_a_connection_per_worker_and_uses_adaptive_retries():
    config = iam_client(max_workers=48).meta.config

    assert config.max_pool_connections >= 48
    assert config.retries["mode"] == "adaptive"
