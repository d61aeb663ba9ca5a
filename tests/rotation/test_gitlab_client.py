"""GitLabClient against the project's GitLab server over real HTTP (and TLS) on loopback.

Waits are recorded through the client's ``sleep`` parameter instead of slept, so retry tests
are fast and can check every wait.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.gitlab_client import GitLabClient
from gitlab_key_rotation.lambda_src.rotation.ports import (
    GitLabAuthError,
    GitLabError,
    GitLabForbiddenError,
    GitLabNotFoundError,
    GitLabOutcomeUnknownError,
    GitLabRejectedError,
)
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation.lambda_src.rotation.state import TargetValues
from gitlab_key_rotation.lambda_src.rotation.targets import held, write
from gitlab_key_rotation_dev.gitlab_server import DEVELOPER, MAINTAINER, OWNER, GitLabServer, rate_limited

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
NEW_KEY_ID = "AKIAI44QH8DHBEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TODAY = date(2030, 6, 15)
RETRIES = 3

APP = GitLabTarget("project", "platform/team/app", environment_scope="production")
TEAM = GitLabTarget("group", "platform/team")
VARIABLE = "AWS_ACCESS_KEY_ID"


@pytest.fixture
def gitlab():
    with GitLabServer() as server:
        server.today = TODAY
        server.add_user("bot")
        platform = server.add_group("platform")
        server.add_group("platform/team")
        server.add_project("platform/team/app")
        server.add_member(platform, "bot", OWNER)
        yield server


@pytest.fixture
def token(gitlab):
    return gitlab.add_token("bot", expires_at=TODAY + timedelta(days=60))


@pytest.fixture
def waits():
    return []


@pytest.fixture
def make_client(gitlab, waits):
    clients = []

    def make(token, **overrides):
        options = {"timeout": (1.0, 2.0), "retries": RETRIES, "backoff": 0.01, "max_wait": 10.0, "sleep": waits.append}
        client = GitLabClient(overrides.pop("url", gitlab.url), token, **{**options, **overrides})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client, token):
    return make_client(token)


def calls(gitlab):
    """The requests the server saw, as (method, last path segment) pairs."""
    return [(r.method, r.path.rsplit("/", 1)[-1]) for r in gitlab.requests]


def assert_secret_free(error: Exception, *secrets: str) -> None:
    for secret in (SECRET, KEY_ID, NEW_KEY_ID, *secrets):
        assert secret not in str(error)


# tokens ------------------------------------------------------------------------------------


def test_token_info(client, token):
    info = client.token_info()
    assert (info.scopes, info.active, info.revoked, info.expires_at) == (
        ("api",),
        True,
        False,
        TODAY + timedelta(days=60),
    )
    assert token not in repr(info)


@pytest.mark.parametrize(
    ("state", "message"),
    [("expired", "has expired"), ("revoked", "was revoked"), ("unknown", "does not know the token")],
)
def test_a_token_that_does_not_work_is_an_auth_error_saying_what_to_do(gitlab, make_client, state, message):
    token = (
        "glpat-unknown-0123456789"
        if state == "unknown"
        else gitlab.add_token("bot", expires_at=TODAY if state == "expired" else None, revoked=state == "revoked")
    )
    with pytest.raises(GitLabAuthError, match=message) as raised:
        make_client(token).token_info()
    assert raised.value.status == 401
    assert_secret_free(raised.value, token)


def test_rotate_token_switches_the_client_to_the_new_token(gitlab, client, token):
    info, new_token = client.rotate_token(TODAY + timedelta(days=200))
    assert info.expires_at == TODAY + timedelta(days=200) and new_token != token
    assert gitlab.token(token).revoked
    assert client.token_info().id == info.id
    assert gitlab.token(new_token).last_used_at is not None


def test_rotate_token_sends_expires_at_once(gitlab, client):
    _, new_token = client.rotate_token(TODAY + timedelta(days=364))
    assert calls(gitlab) == [("POST", "rotate")]
    assert gitlab.token(new_token).expires_at == TODAY + timedelta(days=364)  # GitLab's default is a week


def test_rotate_token_whose_answer_is_lost_never_uses_the_old_token_again(gitlab, client, token):
    gitlab.inject(method="POST", path="rotate", status=502, after_effect=True)
    with pytest.raises(GitLabOutcomeUnknownError, match="GitLab answered 502") as raised:
        client.rotate_token(TODAY + timedelta(days=30))
    assert calls(gitlab) == [("POST", "rotate")]  # not retried, and no look with the old token
    [new] = [t for t in gitlab.tokens_of("bot") if t.previous_id == gitlab.token(token).id]
    assert not new.revoked  # reuse detection never fired
    assert_secret_free(raised.value, token)


def test_rotate_token_whose_connection_dropped_is_in_doubt_too(gitlab, client, token):
    gitlab.inject(method="POST", path="rotate", disconnect=True)
    with pytest.raises(GitLabOutcomeUnknownError, match="no answer"):
        client.rotate_token(TODAY + timedelta(days=30))
    assert calls(gitlab) == [("POST", "rotate")]


def test_rotate_token_needs_scope_api(gitlab, make_client):
    with pytest.raises(GitLabForbiddenError, match="scope api"):
        make_client(gitlab.add_token("bot", scopes=("read_api",))).rotate_token(TODAY + timedelta(days=30))


# reading a target ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        GitLabTarget("group", "platform"),
        GitLabTarget("group", "platform/team"),
        GitLabTarget("group", "101"),
        GitLabTarget("project", "platform/team/app"),
        GitLabTarget("project", "1000"),
    ],
)
def test_read_variables_accepts_groups_and_projects_by_path_or_id(client, target):
    assert client.read_variables(target) == {}


def test_read_variables_names_the_role_a_developer_lacks(gitlab, make_client):
    gitlab.add_user("dev")
    gitlab.add_member(APP, "dev", DEVELOPER)
    with pytest.raises(
        GitLabForbiddenError, match=r"needs the Maintainer \(or Owner\) role on project platform/team/app"
    ) as raised:
        make_client(gitlab.add_token("dev")).read_variables(APP)
    assert raised.value.status == 403


def test_read_variables_says_groups_need_owner(gitlab, make_client):
    gitlab.add_user("maintainer")
    gitlab.add_member(TEAM, "maintainer", MAINTAINER)
    with pytest.raises(GitLabForbiddenError, match="needs the Owner role on group platform/team"):
        make_client(gitlab.add_token("maintainer")).read_variables(TEAM)


@pytest.mark.parametrize("target", [GitLabTarget("project", "platform/nope"), GitLabTarget("group", "hidden")])
def test_read_variables_says_a_missing_or_invisible_target_does_not_exist(gitlab, client, target):
    gitlab.add_group("hidden")  # exists, but the bot is no member
    with pytest.raises(
        GitLabNotFoundError, match=f"{target.kind} {target.id} does not exist .* or the token's user cannot see it"
    ):
        client.read_variables(target)


def test_a_target_is_read_with_one_request_holding_its_scope_only(gitlab, client):
    gitlab.set_variable(APP, VARIABLE, KEY_ID)  # scope *
    gitlab.set_variable(APP, VARIABLE, NEW_KEY_ID, environment_scope="production")
    gitlab.set_variable(APP, "AWS_SECRET_ACCESS_KEY", SECRET, environment_scope="production")
    gitlab.set_variable(APP, "OTHER", "other-value", environment_scope="staging")
    read = client.read_variables(APP)
    assert {key: v.value for key, v in read.items()} == {VARIABLE: NEW_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    assert calls(gitlab) == [("GET", "variables")] and gitlab.requests[0].query["per_page"] == "100"


def test_a_target_with_more_than_100_variables_is_read_a_page_of_100_at_a_time(gitlab, client):
    for n in range(150):
        gitlab.set_variable(APP, f"VARIABLE_{n}", f"value-{n}", environment_scope="production")
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    read = client.read_variables(APP)
    assert len(read) == 151 and read[VARIABLE].value == KEY_ID
    assert [r.query["page"] for r in gitlab.requests] == ["1", "2"]


def test_a_hidden_variable_reads_as_hidden_without_a_value(gitlab, client):
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production", hidden=True)
    [variable] = client.read_variables(APP).values()
    assert (variable.value, variable.hidden) == (None, True)
    with pytest.raises(GitLabRejectedError, match="hidden variable"):
        held(APP, client.read_variables(APP), {})


# writing ---------------------------------------------------------------------------------------


def test_a_new_variable_is_created_with_one_post_and_the_targets_settings(gitlab, client):
    target = GitLabTarget("project", "1000", environment_scope="review/*", protected=False, raw=False, description="d")
    client.write_variable(target, VARIABLE, KEY_ID, exists=False)
    variable = gitlab.variable(target, VARIABLE, "review/*")
    assert (variable.value, variable.masked, variable.protected, variable.raw, variable.description) == (
        KEY_ID,
        True,
        False,
        False,
        "d",
    )
    assert calls(gitlab) == [("POST", "variables")]
    assert client.late_write_wait(target) is None  # answered


def test_an_existing_variable_is_updated_with_one_put_at_the_targets_scope_only(gitlab, client):
    gitlab.set_variable(APP, VARIABLE, "star-value")
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=True)
    assert [(v.environment_scope, v.value, v.masked) for v in gitlab.variables(APP)] == [
        ("*", "star-value", False),
        ("production", NEW_KEY_ID, True),
    ]
    assert calls(gitlab) == [("PUT", VARIABLE)]
    assert all(r.query == {"filter[environment_scope]": "production"} for r in gitlab.requests)


def test_writing_a_target_is_its_writes_and_one_read_back(gitlab, client):
    targets = [
        GitLabTarget("group", "platform", access_key_id_variable="DEPLOY_KEY_ID"),
        GitLabTarget("group", "101", environment_scope="staging"),
        GitLabTarget("project", "platform/team/app", environment_scope="production"),
    ]
    for target in targets:
        gitlab.clear_log()
        after = write(client, target, client.read_variables(target), TargetValues(KEY_ID, SECRET), {})
        assert held(target, after, {}) == TargetValues(KEY_ID, SECRET)
        assert calls(gitlab) == [("GET", "variables"), ("POST", "variables"), ("POST", "variables"), ("GET", "variables")]
    assert [v.key for v in gitlab.variables(targets[0])] == ["AWS_SECRET_ACCESS_KEY", "DEPLOY_KEY_ID"]
    gitlab.clear_log()
    write(client, APP, client.read_variables(APP), TargetValues(KEY_ID, SECRET), {})
    assert calls(gitlab) == [("GET", "variables"), ("GET", "variables")]  # already held: nothing written


def test_a_value_that_does_not_read_back_is_an_error(gitlab, client):
    gitlab.inject(method="GET", path=r"/variables$", status=200, nth=1, body=[])
    with pytest.raises(GitLabRejectedError, match="do not read back as written"):
        write(client, APP, {}, TargetValues(NEW_KEY_ID, SECRET), {})


def test_a_value_gitlab_cannot_mask_is_rejected_without_the_value(client):
    with pytest.raises(GitLabRejectedError, match="cannot mask the value") as raised:
        client.write_variable(APP, VARIABLE, "has space in it", exists=False)
    assert raised.value.status == 400
    assert "has space" not in str(raised.value)


def test_a_scope_gitlab_refuses_is_rejected_with_gitlabs_words(client):
    target = GitLabTarget("project", "platform/team/app")
    # The settings contract refuses this scope; a GitLab with stricter rules than it knows must still be heard.
    object.__setattr__(target, "environment_scope", "prod!")
    with pytest.raises(GitLabRejectedError, match="environment_scope can contain only letters") as raised:
        client.write_variable(target, VARIABLE, KEY_ID, exists=False)
    assert raised.value.status == 400


def test_delete_variable_is_idempotent(gitlab, client):
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    gitlab.set_variable(APP, VARIABLE, "other", environment_scope="*")
    client.delete_variable(APP, VARIABLE)
    client.delete_variable(APP, VARIABLE)
    assert [v.environment_scope for v in gitlab.variables(APP)] == ["*"]
    with pytest.raises(GitLabNotFoundError):
        client.delete_variable(GitLabTarget("project", "platform/gone"), VARIABLE)


# the upsert's races, and writes whose answer was lost -------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "after_effect": True},  # landed, answer replaced by a 5xx
        {"delay": 0.5, "after_effect": True},  # landed, answer never came in time
        {"disconnect": True, "after_effect": True},  # landed, connection dropped
        {"status": 500},  # did not land
        {"disconnect": True},  # did not land
    ],
)
def test_a_create_without_a_clear_answer_is_read_again_and_never_posted_blindly(gitlab, make_client, token, fault):
    gitlab.inject(method="POST", **fault)
    client = make_client(token, timeout=(1.0, 0.2))
    client.write_variable(APP, VARIABLE, KEY_ID, exists=False)
    assert gitlab.variable(APP, VARIABLE, "production").value == KEY_ID
    landed = fault.get("after_effect", False)
    follow_up = [("GET", VARIABLE), ("PUT", VARIABLE)] if landed else [("GET", VARIABLE), ("POST", "variables")]
    assert calls(gitlab) == [("POST", "variables"), *follow_up]
    unclear = fault.get("status") != 500  # a 500 is GitLab's own answer: it is done with the request
    assert (client.late_write_wait(APP) is not None) == unclear


def test_a_write_whose_answer_was_lost_may_land_until_twice_the_read_timeout_after_it_was_sent(
    gitlab, make_client, token
):
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    gitlab.inject(method="PUT", delay=0.5)  # the first PUT times out; the retry is answered
    client = make_client(token, timeout=(1.0, 0.2))
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=True)
    wait = client.late_write_wait(APP)
    assert wait is not None and 0 < wait <= 2 * 0.2
    assert client.late_write_wait(TEAM) is None
    client.forget_late_writes(APP)
    assert client.late_write_wait(APP) is None


def test_already_taken_switches_to_put(gitlab, client):
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")  # created since the target was read
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=False)
    assert calls(gitlab) == [("POST", "variables"), ("GET", VARIABLE), ("PUT", VARIABLE)]
    assert gitlab.variable(APP, VARIABLE, "production").value == NEW_KEY_ID


def test_a_variable_deleted_since_the_target_was_read_is_created(gitlab, client):
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=True)
    assert calls(gitlab) == [("PUT", VARIABLE), ("GET", VARIABLE), ("POST", "variables")]
    assert gitlab.variable(APP, VARIABLE, "production").value == NEW_KEY_ID


@pytest.mark.parametrize(
    ("delete_fails", "cleanup"),
    [(False, "it was deleted again"), (True, "delete AWS_ACCESS_KEY_ID at scope '*' by hand")],
)
def test_free_tier_group_that_drops_the_scope_of_a_new_variable(gitlab, client, delete_fails, cleanup):
    free = gitlab.add_group("free", plan="free")
    gitlab.add_member(free, "bot", OWNER)
    target = GitLabTarget("group", "free", environment_scope="production")
    if delete_fails:
        gitlab.inject(method="DELETE", status=500)
    with pytest.raises(
        GitLabRejectedError, match="created AWS_ACCESS_KEY_ID at scope '\\*' instead of 'production'"
    ) as raised:
        client.write_variable(target, VARIABLE, KEY_ID, exists=False)
    assert cleanup in str(raised.value)
    assert len(gitlab.variables(target)) == (1 if delete_fails else 0)


def test_free_tier_group_that_says_taken_but_has_no_such_scope(gitlab, client):
    free = gitlab.add_group("free", plan="free")
    gitlab.add_member(free, "bot", OWNER)
    gitlab.set_variable(free, VARIABLE, "star-value")
    target = GitLabTarget("group", "free", environment_scope="production")
    with pytest.raises(GitLabRejectedError, match="ignores environment scopes"):
        client.write_variable(target, VARIABLE, KEY_ID, exists=False)
    assert gitlab.variable(free, VARIABLE).value == "star-value"


def test_a_group_update_that_hit_another_scope_is_reported(gitlab, client):
    gitlab.set_variable(TEAM, VARIABLE, KEY_ID)
    wrong = {"key": VARIABLE, "value": None, "environment_scope": "staging", "hidden": False}
    gitlab.inject(method="PUT", status=200, body=wrong)  # GitLab's answer when the filtered variable vanished
    with pytest.raises(GitLabRejectedError, match="updated AWS_ACCESS_KEY_ID at scope 'staging' instead of '\\*'"):
        client.write_variable(TEAM, VARIABLE, NEW_KEY_ID, exists=True)


# retries ------------------------------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(gitlab, client, waits):
    gitlab.inject(method="PUT", **rate_limited(retry_after=7))
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=True)
    assert waits == [7.0]


def test_429_without_retry_after_waits_until_ratelimit_reset(gitlab, client, waits):
    gitlab.inject(method="GET", **rate_limited(reset_in=5))
    client.read_variables(APP)
    assert len(waits) == 1 and 3.5 <= waits[0] <= 5.0


def test_429_with_plain_text_and_no_headers_backs_off(gitlab, client, waits):
    gitlab.inject(method="GET", status=429, body="Retry later", times=2)
    assert client.read_variables(APP) == {}
    assert len(waits) == 2 and 0.01 <= waits[0] <= 0.02 and 0.02 <= waits[1] <= 0.03


def test_429_is_retried_for_a_create_too(gitlab, client, waits):
    gitlab.inject(method="POST", **rate_limited(retry_after=1, plain_text=True))
    client.write_variable(APP, VARIABLE, KEY_ID, exists=False)
    assert waits == [1.0]
    assert calls(gitlab) == [("POST", "variables"), ("POST", "variables")]


def test_waits_are_capped(gitlab, make_client, token, waits):
    gitlab.inject(method="GET", **rate_limited(retry_after=3600))
    make_client(token, max_wait=2.5).token_info()
    assert waits == [2.5]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_with_exponential_backoff_and_jitter(gitlab, client, waits, status):
    gitlab.inject(method="GET", status=status, times=RETRIES)
    client.token_info()
    assert len(waits) == RETRIES
    for attempt, wait in enumerate(waits):
        assert 0.01 * 2**attempt <= wait <= 0.01 * 2**attempt + 0.01


def test_gateway_errors_that_do_not_stop_fail_after_the_retries(gitlab, client):
    gitlab.inject(method="GET", status=503, times=None)
    with pytest.raises(GitLabError, match=f"answered 503 after {RETRIES} retries") as raised:
        client.read_variables(APP)
    assert raised.value.status == 503
    assert len(gitlab.requests) == RETRIES + 1


def test_a_read_timeout_is_retried_for_a_read(gitlab, make_client, token):
    gitlab.inject(method="GET", delay=3.0)
    assert make_client(token, timeout=(1.0, 0.2)).token_info().active
    first, second = gitlab.requests
    assert first.faulted and (second.faulted, second.status) == (False, 200)


def test_a_resource_lock_is_retried_and_an_ambiguity_is_not(gitlab, client, waits):
    gitlab.set_variable(APP, VARIABLE, KEY_ID, environment_scope="production")
    gitlab.inject(method="PUT", status=409)  # "409 Conflict: Resource lock"
    client.write_variable(APP, VARIABLE, NEW_KEY_ID, exists=True)
    assert len(waits) == 1
    ambiguous = {
        "message": "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"
    }
    gitlab.inject(method="PUT", status=409, body=ambiguous)
    gitlab.clear_log()
    with pytest.raises(GitLabRejectedError, match="ignores the filter"):
        client.write_variable(APP, VARIABLE, KEY_ID, exists=True)
    assert len(gitlab.requests) == 1


def test_no_server_is_a_gitlab_error_without_status(make_client, token, waits):
    with GitLabServer() as gone:
        url = gone.url
    with pytest.raises(GitLabError, match="no answer from GitLab") as raised:
        make_client(token, url=url).token_info()
    assert raised.value.status is None
    assert len(waits) == RETRIES  # connection errors are retried with backoff


# TLS, redirects, odd answers -----------------------------------------------------------------


def test_tls_with_a_custom_ca_bundle_despite_requests_ca_bundle_in_the_environment(monkeypatch, waits):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with GitLabServer(tls=True) as server:
        server.add_user("bot")
        token = server.add_token("bot")
        assert GitLabClient(server.url, token, ca_bundle=server.ca_bundle, sleep=waits.append).token_info().active
        with pytest.raises(GitLabError, match="SSLError"):
            GitLabClient(server.url, token, sleep=waits.append).token_info()
        assert waits == []  # a certificate problem is not retried


def test_a_redirect_is_not_followed_with_the_token(gitlab, client, token):
    with GitLabServer() as elsewhere:
        gitlab.inject(
            method="GET",
            status=301,
            body="",
            headers={"Location": elsewhere.url + "/api/v4/personal_access_tokens/self"},
        )
        with pytest.raises(GitLabError, match="redirected"):
            client.token_info()
        assert elsewhere.requests == []


def test_an_answer_that_is_not_json_is_a_clear_error(gitlab, client):
    gitlab.inject(method="GET", status=200, body=b"<html>Sign in</html>")
    with pytest.raises(GitLabError, match="without JSON"):
        client.token_info()


def test_constructor_refuses_a_bad_url_or_an_empty_token():
    with pytest.raises(ValueError, match="base_url must be an http"):
        GitLabClient("gitlab.com", "glpat-x")
    with pytest.raises(ValueError, match="token is empty"):
        GitLabClient("https://gitlab.com", "")


def test_no_log_record_carries_a_value_or_the_token(gitlab, make_client, token, caplog):
    client = make_client(token, timeout=(1.0, 0.2))
    gitlab.inject(method="POST", status=503, after_effect=True)
    gitlab.inject(method="PUT", **rate_limited(retry_after=1))
    with caplog.at_level(logging.DEBUG):
        client.write_variable(APP, "AWS_SECRET_ACCESS_KEY", SECRET, exists=False)
        client.write_variable(APP, "AWS_SECRET_ACCESS_KEY", SECRET[::-1], exists=True)
        with pytest.raises(GitLabRejectedError):
            client.write_variable(APP, "AWS_SECRET_ACCESS_KEY", "not maskable " + SECRET, exists=True)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records and SECRET not in text and SECRET[::-1] not in text and token not in text
