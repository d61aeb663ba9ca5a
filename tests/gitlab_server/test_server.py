"""The GitLab test server answers as GITLAB_API.md says, over real HTTP(S) on loopback."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
import requests

from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.gitlab_server import (
    DEVELOPER,
    MAINTAINER,
    OWNER,
    REPORTER,
    GitLabServer,
    Variable,
    late_write,
    rate_limited,
)
from gitlab_key_rotation_dev.gitlab_server.responses import AMBIGUOUS_MESSAGE, VISIBILITY_MESSAGE

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TODAY = date(2030, 6, 15)


@pytest.fixture
def gitlab():
    with GitLabServer() as server:
        server.today = TODAY
        yield server


@pytest.fixture
def world(gitlab):
    """A bot owning group ``platform`` (with subgroup ``platform/team`` and project
    ``platform/team/app``) and an ``api`` token."""
    gitlab.add_user("bot")
    group = gitlab.add_group("platform")
    gitlab.add_group("platform/team")
    gitlab.add_project("platform/team/app")
    gitlab.add_member(group, "bot", OWNER)
    return gitlab.add_token("bot", expires_at=TODAY + timedelta(days=90))


def call(gitlab, method, path, token=None, *, headers=None, **kwargs) -> requests.Response:
    all_headers = {"PRIVATE-TOKEN": token} if token else {}
    all_headers.update(headers or {})
    return requests.request(method, gitlab.url + "/api/v4" + path, headers=all_headers, timeout=5, **kwargs)


APP = "/projects/platform%2Fteam%2Fapp"
TEAM = "/groups/platform%2Fteam"


# tokens ------------------------------------------------------------------------------------


def test_token_self_describes_the_token_and_never_contains_it(gitlab, world):
    response = call(gitlab, "GET", "/personal_access_tokens/self", world)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "id",
        "name",
        "revoked",
        "created_at",
        "scopes",
        "user_id",
        "last_used_at",
        "active",
        "expires_at",
    }
    assert body["scopes"] == ["api"] and body["active"] is True and body["revoked"] is False
    assert body["expires_at"] == (TODAY + timedelta(days=90)).isoformat()
    assert world not in response.text


def test_bearer_header_works_like_private_token(gitlab, world):
    response = call(gitlab, "GET", "/personal_access_tokens/self", headers={"Authorization": f"Bearer {world}"})
    assert response.status_code == 200


@pytest.mark.parametrize("token", [None, "glpat-unknown"])
def test_missing_or_unknown_token_is_401_unauthorized(gitlab, world, token):
    response = call(gitlab, "GET", APP + "/variables", token)
    assert (response.status_code, response.json()) == (401, {"message": "401 Unauthorized"})


def test_token_expires_at_midnight_utc_on_its_date(gitlab):
    gitlab.add_user("bot")
    token = gitlab.add_token("bot", expires_at=TODAY + timedelta(days=1))
    assert call(gitlab, "GET", "/personal_access_tokens/self", token).status_code == 200
    gitlab.today = TODAY + timedelta(days=1)
    response = call(gitlab, "GET", "/personal_access_tokens/self", token)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "Token is expired. You can either do re-authorization or token refresh.",
    }


def test_revoked_token_is_401_invalid_token(gitlab):
    gitlab.add_user("bot")
    token = gitlab.add_token("bot", revoked=True)
    response = call(gitlab, "GET", "/personal_access_tokens/self", token)
    assert response.status_code == 401
    assert response.json()["error_description"] == "Token was revoked. You have to re-authorize from the user."


def test_any_scope_may_read_its_own_token(gitlab):
    gitlab.add_user("bot")
    token = gitlab.add_token("bot", scopes=("read_user",))
    assert call(gitlab, "GET", "/personal_access_tokens/self", token).json()["scopes"] == ["read_user"]


def test_rotate_revokes_the_old_token_at_once_and_returns_a_new_one(gitlab, world):
    response = call(gitlab, "POST", "/personal_access_tokens/self/rotate", world)
    assert response.status_code == 200
    body = response.json()
    new_token = body.pop("token")
    assert new_token != world and body["expires_at"] == (TODAY + timedelta(days=7)).isoformat()
    assert body["scopes"] == ["api"] and body["name"] == "gitlab-key-rotation"
    assert call(gitlab, "GET", APP + "/variables", new_token).status_code == 200
    assert gitlab.token(world).revoked and not gitlab.token(new_token).revoked


def test_reusing_a_rotated_token_revokes_the_whole_family(gitlab, world):
    """Reuse detection: the old token, already rotated, is used again (a retry after a lost answer):
    GitLab refuses it and revokes its active successors, so whoever holds the new token is locked out."""
    second = call(gitlab, "POST", "/personal_access_tokens/self/rotate", world).json()["token"]
    third = call(gitlab, "POST", "/personal_access_tokens/self/rotate", second).json()["token"]
    assert call(gitlab, "GET", APP + "/variables", third).status_code == 200
    retry = call(gitlab, "POST", "/personal_access_tokens/self/rotate", world)
    assert retry.status_code == 401 and retry.json()["error_description"].startswith("Token was revoked")
    assert gitlab.token(third).revoked
    assert call(gitlab, "GET", APP + "/variables", third).json()["error_description"].startswith("Token was revoked")


def test_a_token_revoked_by_hand_is_refused_without_touching_other_tokens(gitlab, world):
    other = gitlab.add_token("bot")
    gitlab.revoke_token(world)
    assert call(gitlab, "GET", APP + "/variables", world).status_code == 401
    assert not gitlab.token(other).revoked


def test_rotate_sets_the_requested_expiry_within_a_year(gitlab, world):
    wanted = TODAY + timedelta(days=300)
    response = call(
        gitlab, "POST", "/personal_access_tokens/self/rotate", world, json={"expires_at": wanted.isoformat()}
    )
    assert response.json()["expires_at"] == wanted.isoformat()
    too_late = call(
        gitlab,
        "POST",
        "/personal_access_tokens/self/rotate",
        response.json()["token"],
        json={"expires_at": "2099-01-01"},
    )
    assert too_late.status_code == 400 and too_late.json()["message"].startswith("400 Bad request - Expiration date")


def test_rotate_needs_scope_api(gitlab):
    gitlab.add_user("bot")
    token = gitlab.add_token("bot", scopes=("read_api",))
    response = call(gitlab, "POST", "/personal_access_tokens/self/rotate", token)
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    assert not gitlab.token(token).revoked


# routing, visibility, roles and scopes -----------------------------------------------------


def test_an_unencoded_slash_in_a_full_path_matches_no_route(gitlab, world):
    response = call(gitlab, "GET", "/projects/platform/team/app/variables", world)
    assert (response.status_code, response.json()) == (404, {"error": "404 Not Found"})


@pytest.mark.parametrize("ref", ["platform%2Fteam%2Fapp", "PLATFORM%2Fteam%2FApp", "1000"])
def test_projects_are_found_by_encoded_full_path_any_case_or_numeric_id(gitlab, world, ref):
    assert call(gitlab, "GET", f"/projects/{ref}/variables", world).status_code == 200


def test_a_group_id_is_not_a_project_id(gitlab, world):
    response = call(gitlab, "GET", "/projects/100/variables", world)
    assert (response.status_code, response.json()) == (404, {"message": "404 Project Not Found"})


def test_groups_the_user_cannot_see_are_404(gitlab, world):
    gitlab.add_group("secret")
    response = call(gitlab, "GET", "/groups/secret/variables", world)
    assert (response.status_code, response.json()) == (404, {"message": "404 Group Not Found"})


@pytest.mark.parametrize(
    ("kind", "level", "status"),
    [
        ("project", DEVELOPER, 403),
        ("project", MAINTAINER, 200),
        ("group", MAINTAINER, 403),
        ("group", OWNER, 200),
        ("group", REPORTER, 403),
    ],
)
def test_group_variables_need_owner_and_project_variables_maintainer(gitlab, kind, level, status):
    gitlab.add_user("dev")
    group = gitlab.add_group("g")
    project = gitlab.add_project("g/p")
    gitlab.add_member(group if kind == "group" else project, "dev", level)
    token = gitlab.add_token("dev")
    response = call(gitlab, "GET", f"/{kind}s/{group.id if kind == 'group' else project.id}/variables", token)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"message": "403 Forbidden"}


def test_read_api_may_list_but_not_write(gitlab, world):
    read_only = gitlab.add_token("bot", scopes=("read_api",))
    assert call(gitlab, "GET", APP + "/variables", read_only).status_code == 200
    response = call(gitlab, "POST", APP + "/variables", read_only, json={"key": "K", "value": "v"})
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The request requires higher privileges than provided by the access token.",
        "scope": "api",
    }


def test_a_scope_without_api_access_may_not_even_read(gitlab, world):
    token = gitlab.add_token("bot", scopes=("read_repository",))
    response = call(gitlab, "GET", APP + "/variables", token)
    assert response.status_code == 403 and response.json()["scope"] == "api read_api"


def test_wrong_method_is_405(gitlab, world):
    assert call(gitlab, "DELETE", APP + "/variables", world).status_code == 405


# variables -----------------------------------------------------------------------------------


def test_create_read_update_delete_a_project_variable(gitlab, world):
    created = call(
        gitlab,
        "POST",
        APP + "/variables",
        world,
        json={
            "key": "AWS_ACCESS_KEY_ID",
            "value": AWS_KEY_ID,
            "masked": True,
            "protected": True,
            "environment_scope": "production",
            "description": "managed",
        },
    )
    assert created.status_code == 201
    assert created.json() == {
        "variable_type": "env_var",
        "key": "AWS_ACCESS_KEY_ID",
        "value": AWS_KEY_ID,
        "hidden": False,
        "protected": True,
        "masked": True,
        "raw": False,
        "environment_scope": "production",
        "description": "managed",
    }
    path = APP + "/variables/AWS_ACCESS_KEY_ID"
    scoped = {"filter[environment_scope]": "production"}
    assert call(gitlab, "GET", path, world, params=scoped).json()["value"] == AWS_KEY_ID
    updated = call(gitlab, "PUT", path, world, params=scoped, json={"value": "AKIAXXXXXXXXXXXXXXXX"})
    assert updated.status_code == 200 and updated.json()["protected"] is True
    deleted = call(gitlab, "DELETE", path, world, params=scoped)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert gitlab.variables(GitLabTarget("project", "platform/team/app")) == []


def test_form_encoded_bodies_work_too(gitlab, world):
    response = call(gitlab, "POST", TEAM + "/variables", world, data={"key": "K", "value": "v", "protected": "true"})
    assert response.status_code == 201 and response.json()["protected"] is True


def test_a_key_is_unique_per_scope(gitlab, world):
    body = {"key": "AWS_ACCESS_KEY_ID", "value": AWS_KEY_ID}
    assert call(gitlab, "POST", APP + "/variables", world, json=body).status_code == 201
    duplicate = call(gitlab, "POST", APP + "/variables", world, json=body)
    assert (duplicate.status_code, duplicate.json()) == (
        400,
        {"message": {"key": ["(AWS_ACCESS_KEY_ID) has already been taken"]}},
    )
    assert (
        call(gitlab, "POST", APP + "/variables", world, json={**body, "environment_scope": "prod"}).status_code == 201
    )


def test_several_scopes_without_a_filter_are_ambiguous(gitlab, world):
    app = gitlab.add_project("platform/other")
    gitlab.set_variable(app, "K", "star")
    gitlab.set_variable(app, "K", "prod", environment_scope="production")
    for method in ("GET", "PUT", "DELETE"):
        response = call(gitlab, method, f"/projects/{app.id}/variables/K", world, json={"value": "x"})
        assert (response.status_code, response.json()) == (
            409,
            {"message": AMBIGUOUS_MESSAGE},
        )
    scoped = call(
        gitlab, "GET", f"/projects/{app.id}/variables/K", world, params={"filter[environment_scope]": "production"}
    )
    assert scoped.json()["value"] == "prod"


@pytest.mark.parametrize(("path", "message"), [(APP, "404 Variable Not Found"), (TEAM, "404 GroupVariable Not Found")])
def test_a_filter_that_matches_nothing_is_a_variable_404(gitlab, world, path, message):
    gitlab.set_variable(GitLabTarget("project", "platform/team/app"), "K", "v")
    gitlab.set_variable(GitLabTarget("group", "platform/team"), "K", "v")
    response = call(gitlab, "GET", path + "/variables/K", world, params={"filter[environment_scope]": "staging"})
    assert (response.status_code, response.json()) == (404, {"message": message})


def test_project_put_with_a_filter_that_matches_nothing_is_404(gitlab, world):
    target = GitLabTarget("project", "platform/team/app")
    gitlab.set_variable(target, "K", "old")
    response = call(
        gitlab,
        "PUT",
        APP + "/variables/K",
        world,
        params={"filter[environment_scope]": "staging"},
        json={"value": "new"},
    )
    assert response.status_code == 404
    assert gitlab.variable(target, "K").value == "old"


def test_group_put_with_a_filter_that_matches_nothing_updates_some_variable_with_the_key(gitlab, world):
    team = GitLabTarget("group", "platform/team")
    gitlab.set_variable(team, "K", "star")
    gitlab.set_variable(team, "K", "prod", environment_scope="production")
    response = call(
        gitlab,
        "PUT",
        TEAM + "/variables/K",
        world,
        params={"filter[environment_scope]": "staging"},
        json={"value": "new"},
    )
    assert response.status_code == 200 and response.json()["environment_scope"] == "*"
    assert [(v.environment_scope, v.value) for v in gitlab.variables(team)] == [("*", "new"), ("production", "prod")]


def test_group_put_without_a_filter_updates_the_oldest_variable_instead_of_409(gitlab, world):
    team = GitLabTarget("group", "platform/team")
    gitlab.set_variable(team, "K", "prod", environment_scope="production")
    gitlab.set_variable(team, "K", "star")
    assert (
        call(gitlab, "PUT", TEAM + "/variables/K", world, json={"value": "new"}).json()["environment_scope"]
        == "production"
    )


def test_free_tier_groups_drop_the_environment_scope(gitlab, world):
    free = gitlab.add_group("free", plan="free")
    gitlab.add_member(free, "bot", OWNER)
    response = call(
        gitlab,
        "POST",
        "/groups/free/variables",
        world,
        json={"key": "K", "value": "v", "environment_scope": "production"},
    )
    assert response.json()["environment_scope"] == "*"
    again = call(
        gitlab, "POST", "/groups/free/variables", world, json={"key": "K", "value": "v", "environment_scope": "staging"}
    )
    assert again.json() == {"message": {"key": ["(K) has already been taken"]}}


@pytest.mark.parametrize(
    ("value", "raw", "accepted"),
    [
        (AWS_KEY_ID, False, True),
        (AWS_SECRET, False, True),
        ("short7!", True, False),
        ("with space", False, False),
        ("with space", True, False),
        ("has#hash!", False, False),
        ("has#hash!", True, True),
        ("two\nlines", True, False),
        ("exactly8", False, True),
    ],
)
def test_masked_values_must_match_gitlabs_masking_rules(gitlab, world, value, raw, accepted):
    response = call(
        gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": value, "masked": True, "raw": raw}
    )
    if accepted:
        assert response.status_code == 201
    else:
        assert (response.status_code, response.json()) == (400, {"message": {"value": ["is invalid"]}})


def test_masking_is_checked_on_update_too(gitlab, world):
    gitlab.set_variable(GitLabTarget("project", "platform/team/app"), "K", AWS_KEY_ID, masked=True)
    response = call(gitlab, "PUT", APP + "/variables/K", world, json={"value": "short"})
    assert response.json() == {"message": {"value": ["is invalid"]}}


HIDDEN = {"base": ["Only new variables can be set as masked and hidden."]}


BOTH_KINDS = pytest.mark.parametrize(
    ("where", "path"),
    [(GitLabTarget("project", "platform/team/app"), APP), (GitLabTarget("group", "platform/team"), TEAM)],
)


@BOTH_KINDS
def test_a_hidden_variable_shows_no_value_in_any_answer_and_its_value_may_change(gitlab, world, where, path):
    created = call(
        gitlab, "POST", path + "/variables", world, json={"key": "K", "value": AWS_SECRET, "masked_and_hidden": True}
    )
    assert created.status_code == 201
    listed = call(gitlab, "GET", path + "/variables", world).json()
    one = call(gitlab, "GET", path + "/variables/K", world).json()
    updated = call(gitlab, "PUT", path + "/variables/K", world, json={"value": AWS_KEY_ID})
    assert updated.status_code == 200
    for answer in (created.json(), *listed, one, updated.json()):
        assert (answer["hidden"], answer["masked"], answer["value"]) == (True, True, None)
    assert gitlab.variable(where, "K").value == AWS_KEY_ID  # the new value was stored


def test_masked_and_hidden_implies_masked_so_the_value_must_pass_masking(gitlab, world):
    refused = call(
        gitlab,
        "POST",
        APP + "/variables",
        world,
        json={"key": "K", "value": "has space", "masked": False, "masked_and_hidden": True},
    )
    assert (refused.status_code, refused.json()) == (400, {"message": {"value": ["is invalid"]}})
    call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": AWS_SECRET, "masked_and_hidden": True})
    unmaskable = call(gitlab, "PUT", APP + "/variables/K", world, json={"value": "has space"})
    assert (unmaskable.status_code, unmaskable.json()) == (400, {"message": {"value": ["is invalid"]}})


@pytest.mark.parametrize(
    ("hidden", "change", "errors"),
    [
        (False, {"masked_and_hidden": True}, HIDDEN),
        (True, {"masked_and_hidden": True}, HIDDEN),
        (True, {"masked_and_hidden": False}, HIDDEN),
        (True, {"masked": False}, {"base": [VISIBILITY_MESSAGE]}),
    ],
)
def test_hidden_is_set_at_creation_or_never(gitlab, world, hidden, change, errors):
    app = GitLabTarget("project", "platform/team/app")
    gitlab.set_variable(app, "K", AWS_SECRET, masked=True, hidden=hidden)
    response = call(gitlab, "PUT", APP + "/variables/K", world, json={"value": AWS_KEY_ID, **change})
    assert (response.status_code, response.json()) == (400, {"message": errors})
    assert gitlab.variable(app, "K").value == AWS_SECRET


CREDENTIALS_FILE = f"[default]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n"


def test_a_file_variable_holds_a_multi_line_value(gitlab, world):
    body = {"key": "AWS_SHARED_CREDENTIALS_FILE", "value": CREDENTIALS_FILE, "variable_type": "file"}
    created = call(gitlab, "POST", APP + "/variables", world, json=body)
    assert created.status_code == 201
    one = call(gitlab, "GET", APP + "/variables/AWS_SHARED_CREDENTIALS_FILE", world).json()
    listed = call(gitlab, "GET", APP + "/variables", world).json()
    for answer in (created.json(), one, *listed):
        assert (answer["variable_type"], answer["value"], answer["masked"]) == ("file", CREDENTIALS_FILE, False)


@pytest.mark.parametrize("masking", [{"masked": True}, {"masked": True, "raw": True}, {"masked_and_hidden": True}])
def test_a_multi_line_file_variable_cannot_be_masked(gitlab, world, masking):
    body = {"key": "AWS_SHARED_CREDENTIALS_FILE", "value": CREDENTIALS_FILE, "variable_type": "file", **masking}
    response = call(gitlab, "POST", APP + "/variables", world, json=body)
    assert (response.status_code, response.json()) == (400, {"message": {"value": ["is invalid"]}})
    gitlab.set_variable(GitLabTarget("project", "platform/team/app"), "F", CREDENTIALS_FILE, variable_type="file")
    mask_later = call(gitlab, "PUT", APP + "/variables/F", world, json={"masked": True})
    assert (mask_later.status_code, mask_later.json()) == (400, {"message": {"value": ["is invalid"]}})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"key": "BAD-KEY", "value": "v"}, {"message": {"key": ["can contain only letters, digits and '_'."]}}),
        ({"key": "K" * 256, "value": "v"}, {"message": {"key": ["is too long (maximum is 255 characters)"]}}),
        (
            {"key": "K", "value": "v", "description": "d" * 256},
            {"message": {"description": ["is too long (maximum is 255 characters)"]}},
        ),
        ({"key": "K", "value": "v", "variable_type": "secret"}, {"error": "variable_type does not have a valid value"}),
        ({"key": "K"}, {"error": "value is missing"}),
        ({"key": "K", "value": "v", "protected": "maybe"}, {"error": "protected is invalid"}),
        (
            {"key": "K", "value": "v", "environment_scope": "prod!"},
            {
                "message": {
                    "environment_scope": [
                        "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*' and spaces"
                    ]
                }
            },
        ),
    ],
)
def test_bad_parameters_are_400_with_gitlabs_body(gitlab, world, body, expected):
    response = call(gitlab, "POST", APP + "/variables", world, json=body)
    assert (response.status_code, response.json()) == (400, expected)


# pagination --------------------------------------------------------------------------------


def test_the_variables_list_is_paginated_with_gitlabs_headers(gitlab, world):
    target = GitLabTarget("project", "platform/team/app")
    for index in range(45):
        gitlab.set_variable(target, f"K{index:02}", "v")
    first = call(gitlab, "GET", APP + "/variables", world)
    assert [v["key"] for v in first.json()] == [f"K{i:02}" for i in range(20)]
    assert {k: first.headers[k] for k in ("X-Page", "X-Per-Page", "X-Next-Page", "X-Total", "X-Total-Pages")} == {
        "X-Page": "1",
        "X-Per-Page": "20",
        "X-Next-Page": "2",
        "X-Total": "45",
        "X-Total-Pages": "3",
    }
    assert first.links["next"]["url"] == gitlab.url + "/api/v4" + APP + "/variables?page=2&per_page=20"
    last = requests.get(first.links["last"]["url"], headers={"PRIVATE-TOKEN": world}, timeout=5)
    assert len(last.json()) == 5 and last.headers["X-Next-Page"] == "" and "next" not in last.links
    capped = call(gitlab, "GET", APP + "/variables", world, params={"per_page": 500})
    assert capped.headers["X-Per-Page"] == "100" and len(capped.json()) == 45


@BOTH_KINDS
@pytest.mark.parametrize(("count", "pages"), [(100, 1), (101, 2)])
def test_one_list_call_reads_up_to_a_hundred_variables(gitlab, world, where, path, count, pages):
    for index in range(count):
        gitlab.set_variable(where, f"K{index:03}", "v")
    first = call(gitlab, "GET", path + "/variables", world, params={"per_page": 100})
    assert len(first.json()) == 100 and first.headers["X-Total-Pages"] == str(pages)
    assert first.headers["X-Next-Page"] == ("" if pages == 1 else "2")
    assert ("next" in first.links) == (pages > 1)


def test_totals_are_omitted_past_ten_thousand_records(gitlab, world):
    project = gitlab._world.find("project", "platform/team/app")  # seeding 10,001 records through the API is slow
    project.variables.extend(Variable(key=f"K{i}", value="v") for i in range(10_001))
    response = call(gitlab, "GET", APP + "/variables", world, params={"per_page": 100})
    assert "X-Total" not in response.headers and "X-Total-Pages" not in response.headers
    assert response.headers["X-Next-Page"] == "2" and "last" not in response.links


# faults ------------------------------------------------------------------------------------


def test_a_fault_fires_on_the_nth_matching_request_for_times_requests(gitlab, world):
    fault = gitlab.inject(method="GET", path=r"/variables$", status=503, nth=2, times=2)
    statuses = [call(gitlab, "GET", APP + "/variables", world).status_code for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    assert call(gitlab, "GET", "/personal_access_tokens/self", world).status_code == 200
    assert fault.fired == 2
    assert [r.faulted for r in gitlab.requests[:5]] == [False, True, True, False, False]


def test_default_fault_bodies_are_gitlabs(gitlab, world):
    gitlab.inject(path="variables", status=409)
    gitlab.inject(path="variables", status=502, nth=2)
    lock = call(gitlab, "GET", APP + "/variables", world)
    assert lock.json() == {"message": "409 Conflict: Resource lock"}
    gateway = call(gitlab, "GET", APP + "/variables", world)
    assert gateway.status_code == 502 and gateway.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("options", "body", "retry_after"),
    [
        (
            {"retry_after": 7},
            {"message": {"error": "This endpoint has been requested too many times. Try again later."}},
            "7",
        ),
        ({"plain_text": True}, "Retry later", None),
    ],
)
def test_rate_limit_answers_with_json_or_plain_text(gitlab, world, options, body, retry_after):
    gitlab.inject(method="POST", **rate_limited(reset_in=30, **options))
    response = call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": "v"})
    assert response.status_code == 429
    assert (response.json() if isinstance(body, dict) else response.text) == body
    assert response.headers.get("Retry-After") == retry_after
    assert abs(int(response.headers["RateLimit-Reset"]) - (time.time() + 30)) < 3
    assert gitlab.variables(GitLabTarget("project", "platform/team/app")) == []


def test_after_effect_applies_the_write_and_loses_the_answer(gitlab, world):
    gitlab.inject(method="POST", path="/variables", status=503, after_effect=True)
    response = call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": "v"})
    assert response.status_code == 503
    assert gitlab.variable(GitLabTarget("project", "platform/team/app"), "K").value == "v"


def test_a_delay_longer_than_the_read_timeout_is_a_timeout(gitlab, world):
    gitlab.inject(method="PUT", delay=0.5, after_effect=True)
    gitlab.set_variable(GitLabTarget("project", "platform/team/app"), "K", "old")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.put(
            gitlab.url + "/api/v4" + APP + "/variables/K",
            headers={"PRIVATE-TOKEN": world},
            json={"value": "new"},
            timeout=(1, 0.1),
        )
    assert gitlab.variable(GitLabTarget("project", "platform/team/app"), "K").value == "new"


def test_a_delayed_real_answer_still_arrives(gitlab, world):
    gitlab.inject(method="GET", delay=0.2)
    started = time.monotonic()
    assert call(gitlab, "GET", "/personal_access_tokens/self", world).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_disconnect_drops_the_connection_without_an_answer(gitlab, world):
    gitlab.inject(method="POST", disconnect=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": "v"})
    assert gitlab.requests[-1].status is None
    assert gitlab.variables(GitLabTarget("project", "platform/team/app")) == []


def test_a_late_write_lands_after_the_client_gave_up_and_on_top_of_what_it_wrote_next(gitlab, world):
    app = GitLabTarget("project", "platform/team/app")
    gitlab.set_variable(app, "K", "old")
    late = gitlab.inject(method="PUT", path="/variables/K$", **late_write(after=3.0))
    url = gitlab.url + "/api/v4" + APP + "/variables/K"
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.put(url, headers={"PRIVATE-TOKEN": world}, json={"value": "new"}, timeout=(1, 0.2))
    rollback = requests.put(url, headers={"PRIVATE-TOKEN": world}, json={"value": "old"}, timeout=5)
    assert rollback.json()["value"] == "old"
    gitlab.wait_idle()
    assert gitlab.variable(app, "K").value == "new"  # the write the client gave up on, on top of its rollback
    assert late.fired == 1 and [r.status for r in gitlab.requests] == [200, 200]


def test_late_write_needs_a_positive_delay():
    with pytest.raises(ValueError, match="positive"):
        late_write(after=0)


def test_the_request_log_holds_no_value_and_no_token(gitlab, world):
    call(gitlab, "POST", APP + "/variables", world, json={"key": "AWS_SECRET_ACCESS_KEY", "value": AWS_SECRET})
    call(
        gitlab,
        "GET",
        APP + "/variables/AWS_SECRET_ACCESS_KEY",
        world,
        params={"filter[environment_scope]": "*", "value": AWS_SECRET},
    )
    log = repr(gitlab.requests)
    assert AWS_SECRET not in log and world not in log
    assert gitlab.requests[-1].query == {"filter[environment_scope]": "*"}


def test_inject_refuses_rules_that_cannot_fire(gitlab):
    with pytest.raises(ValueError, match="nth and times"):
        gitlab.inject(status=500, nth=0)
    with pytest.raises(ValueError, match="a status, a delay or disconnect"):
        gitlab.inject(path="x")


# rate limit ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_rate_limit_counts_each_tokens_requests_in_fixed_minute_windows(gitlab, world):
    other = gitlab.add_token("bot")
    clock = Clock(120.5)  # half a second into the window [120, 180)
    gitlab.limit_rate(3, clock=clock)
    assert [call(gitlab, "GET", APP + "/variables", world).status_code for _ in range(3)] == [200] * 3
    refused = call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": "v"})
    assert (refused.status_code, refused.json()) == (
        429,
        {"message": {"error": "This endpoint has been requested too many times. Try again later."}},
    )
    assert (refused.headers["Retry-After"], refused.headers["RateLimit-Reset"]) == ("60", "180")
    assert refused.headers["RateLimit-Observed"] == "4" and refused.headers["RateLimit-Limit"] == "3"
    assert gitlab.variables(GitLabTarget("project", "platform/team/app")) == []  # refused: no effect
    assert call(gitlab, "GET", APP + "/variables", other).status_code == 200  # another token, its own counter
    clock.now = 179.2
    late = call(gitlab, "GET", APP + "/variables", world)
    assert (late.status_code, late.headers["Retry-After"]) == (429, "1")
    clock.now = 180.0  # the next window starts at zero
    assert call(gitlab, "GET", APP + "/variables", world).status_code == 200
    assert gitlab.throttled == 2
    assert [r.throttled for r in gitlab.requests] == [False] * 3 + [True, False, True, False]


def test_the_plain_text_rate_limit_says_retry_later_and_not_when(gitlab, world):
    gitlab.limit_rate(1, plain_text=True, clock=Clock(0.0))
    call(gitlab, "GET", APP + "/variables", world)
    refused = call(gitlab, "GET", APP + "/variables", world)
    assert (refused.status_code, refused.text) == (429, "Retry later")
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert not any(name.lower().startswith(("retry-after", "ratelimit")) for name in refused.headers)


def test_the_rate_limit_is_off_by_default_and_can_be_lifted(gitlab, world):
    assert all(call(gitlab, "GET", APP + "/variables", world).status_code == 200 for _ in range(5))
    gitlab.limit_rate(1, clock=Clock(0.0))
    assert [call(gitlab, "GET", APP + "/variables", world).status_code for _ in range(2)] == [200, 429]
    gitlab.limit_rate(None)
    assert call(gitlab, "GET", APP + "/variables", world).status_code == 200


def test_requests_without_a_known_token_are_not_limited(gitlab, world):
    gitlab.limit_rate(1, clock=Clock(0.0))
    assert [call(gitlab, "GET", APP + "/variables", "glpat-unknown").status_code for _ in range(3)] == [401] * 3
    assert gitlab.throttled == 0


def test_a_throttled_request_does_not_reach_the_injected_faults(gitlab, world):
    gitlab.limit_rate(1, clock=Clock(0.0))
    fault = gitlab.inject(method="GET", status=503, nth=2)
    statuses = [call(gitlab, "GET", APP + "/variables", world).status_code for _ in range(2)]
    assert statuses == [200, 429] and fault.seen == 1 and fault.fired == 0


# request counts -----------------------------------------------------------------------------


def test_requests_are_counted_by_method_route_and_token(gitlab, world):
    other = gitlab.add_token("bot")
    call(gitlab, "GET", "/personal_access_tokens/self", world)
    call(gitlab, "GET", APP + "/variables", world)
    call(gitlab, "POST", APP + "/variables", world, json={"key": "K", "value": "v"})
    call(gitlab, "PUT", APP + "/variables/K", world, json={"value": "w"})
    call(gitlab, "GET", APP + "/variables/K", other)
    call(gitlab, "DELETE", APP + "/variables/K", other)
    call(gitlab, "GET", "/projects/platform/team/app/variables", world)  # unencoded: no route
    call(gitlab, "GET", APP + "/variables")  # no token
    assert gitlab.request_counts(token=world) == {
        ("GET", "token"): 1,
        ("GET", "variables"): 1,
        ("POST", "variables"): 1,
        ("PUT", "variable"): 1,
        ("GET", None): 1,
    }
    assert gitlab.request_counts(token=other) == {("GET", "variable"): 1, ("DELETE", "variable"): 1}
    assert gitlab.request_counts()[("GET", "variables")] == 2
    assert gitlab.requests_by_token() == {gitlab.token(world).id: 5, gitlab.token(other).id: 2, None: 1}
    with pytest.raises(LookupError):
        gitlab.request_counts(token="glpat-unknown")
    gitlab.clear_log()
    assert gitlab.request_counts() == {} and gitlab.throttled == 0


# seeding, TLS -------------------------------------------------------------------------------


def test_seeding_errors_say_what_to_do_first(gitlab):
    with pytest.raises(LookupError, match=r"add_group\('a'\) first"):
        gitlab.add_project("a/b")
    with pytest.raises(LookupError, match=r"add_user\('ghost'\) first"):
        gitlab.add_token("ghost")
    gitlab.add_group("a")
    with pytest.raises(ValueError, match="already exists"):
        gitlab.add_group("a")
    with pytest.raises(ValueError, match="access_level must be one of"):
        gitlab.add_member(GitLabTarget("group", "a"), "x", 45)


def test_tls_with_the_test_ca():
    with GitLabServer(tls=True) as server:
        server.add_user("bot")
        token = server.add_token("bot")
        url = server.url + "/api/v4/personal_access_tokens/self"
        assert url.startswith("https://")
        assert (
            requests.get(url, headers={"PRIVATE-TOKEN": token}, verify=server.ca_bundle, timeout=5).status_code == 200
        )
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, headers={"PRIVATE-TOKEN": token}, timeout=5)
        bundle = server.ca_bundle
    assert not __import__("os").path.exists(bundle)
