"""GitLabClient under a rate budget, against the project's GitLab server over HTTP on loopback.

Time is the tests' ``FakeClock``: the budget's clock reads it and every wait (the budget's and
the retries') advances it, so no test waits in real time.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from moto import mock_aws

from gitlab_key_rotation.lambda_src.rotation.composition import real_ports
from gitlab_key_rotation.lambda_src.rotation.gitlab_client import GitLabClient
from gitlab_key_rotation.lambda_src.rotation.ports import GitLabError
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget, RotationSettings
from gitlab_key_rotation_dev.clock import FakeClock
from gitlab_key_rotation_dev.gitlab_server import MAINTAINER, GitLabServer, rate_limited
from tests.lambda_settings import state_secret_env, task_root

TODAY = date(2030, 6, 15)


@pytest.fixture
def gitlab():
    with GitLabServer(tls=False) as server:
        server.today = TODAY
        server.add_user("bot")
        yield server


@pytest.fixture
def token(gitlab):
    return gitlab.add_token("bot", expires_at=TODAY + timedelta(days=60))


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(gitlab, token, clock):
    clients = []

    def make(**options):
        client = GitLabClient(
            gitlab.url,
            token,
            timeout=(1.0, 2.0),
            backoff=0.5,
            sleep=clock.sleep,
            monotonic=lambda: clock.now().timestamp(),
            **options,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_without_a_budget_nothing_is_paced(gitlab, make_client, clock):
    client = make_client()
    for _ in range(30):
        client.token_info()
    assert client.budget is None
    assert (len(gitlab.requests), clock.slept) == (30, [])


def test_the_budget_paces_every_request_and_counts_them(gitlab, make_client, clock):
    client = make_client(max_requests_per_minute=5)
    for _ in range(12):
        client.token_info()
    assert len(gitlab.requests) == client.requests_sent == client.budget.taken == 12
    assert clock.slept == [60.0, 60.0]  # 5 at once, 5 a minute later, 2 a minute after that
    assert client.budget.delay_for(3) == 0.0  # 2 in this minute: 3 more fit
    assert client.budget.delay_for(4) == 60.0


def test_retries_are_paced_too(gitlab, make_client, clock):
    gitlab.inject(method="GET", status=503, times=2)
    client = make_client(max_requests_per_minute=2)
    client.token_info()
    assert len(gitlab.requests) == client.budget.taken == 3
    budget = clock.slept[2:]  # after two backoffs, the rest of the window for the third
    assert len(budget) == 1 and sum(clock.slept) == pytest.approx(60.0)
    assert client.budget.waited == budget[0]


@pytest.mark.parametrize("plain_text", [False, True])
def test_a_429s_wait_is_the_budgets_pause(gitlab, make_client, clock, plain_text):
    gitlab.inject(method="GET", times=1, **rate_limited(retry_after=7, plain_text=plain_text))
    client = make_client(max_requests_per_minute=100)
    client.token_info()
    assert clock.slept == [7.0]
    assert (client.budget.taken, client.budget.waited) == (2, 7.0)


def test_a_429_without_retry_after_backs_off_through_the_budget(gitlab, make_client, clock):
    gitlab.inject(method="GET", status=429, body="Retry later", times=2)
    client = make_client(max_requests_per_minute=100)
    client.token_info()
    assert len(clock.slept) == 2 and 0.5 <= clock.slept[0] <= 1.0 and 1.0 <= clock.slept[1] <= 1.5
    assert client.budget.waited == pytest.approx(sum(clock.slept))


@pytest.mark.parametrize("bad", [0, 2.5])
def test_a_bad_budget_is_refused(gitlab, token, bad):
    with pytest.raises(ValueError, match="max_requests_per_minute must be a whole number >= 1"):
        GitLabClient(gitlab.url, token, max_requests_per_minute=bad)



# against the server's rate limit (GitLab's fixed 60 s windows per token, on the same fake clock) --

PER_MINUTE = 10
APP = GitLabTarget("project", "platform/app")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def limited(gitlab, clock):
    """The server limits each token to PER_MINUTE requests a minute; ``limit(plain_text, at=)``
    starts the clock ``at`` seconds into a window (the fake clock starts on a minute)."""
    gitlab.add_group("platform")
    gitlab.add_member(gitlab.add_project("platform/app"), "bot", MAINTAINER)

    def limit(*, plain_text: bool, at: float = 0.0) -> None:
        clock.advance(seconds=at)
        gitlab.limit_rate(PER_MINUTE, plain_text=plain_text, clock=lambda: clock.now().timestamp())

    return limit


def work(client: GitLabClient, writes: int) -> None:
    """A rotation's kind of traffic: the token's details, then writes (3 requests each: the
    target's read, the create or update, the read-back)."""
    client.token_info()
    for i in range(writes):
        key = f"KEY_{i % 4}"
        client.write_variable(APP, key, f"{SECRET}{i}", exists=key in client.read_variables(APP))
        client.read_variables(APP)


@pytest.mark.parametrize("plain_text", [False, True], ids=["json-retry-after", "plain-text"])
@pytest.mark.parametrize("at", [0.0, 37.5, 59.9])
def test_under_a_budget_of_the_servers_limit_nothing_is_refused(gitlab, make_client, limited, clock, plain_text, at):
    limited(plain_text=plain_text, at=at)
    client = make_client(max_requests_per_minute=PER_MINUTE)
    work(client, writes=15)  # 46 requests: 5 minutes' worth
    assert (gitlab.throttled, len(gitlab.requests), client.requests_sent) == (0, 46, 46)
    assert len(clock.slept) == 4  # a wait at each full window: 10, 10, 10, 10, 6


def test_without_a_budget_gitlabs_429_is_met_and_waited_out(gitlab, make_client, limited, clock):
    """Each full window costs two 429s: the first says 60 s, capped at max_wait (30), the
    second the 30 s left."""
    limited(plain_text=False)
    client = make_client(max_wait=30.0)
    work(client, writes=15)
    assert (gitlab.throttled, len(gitlab.requests), client.requests_sent) == (8, 54, 54)
    assert clock.slept == [30.0, 30.0] * 4
    assert client.read_variables(APP)["KEY_2"].value == f"{SECRET}14"


def test_without_a_budget_a_bare_429_is_backed_off_until_the_window_turns(gitlab, make_client, limited, clock):
    """GitLab's plain-text 429 says nothing about when: the client's own backoff (0.5, 1, 2, 4 s
    and jitter) gets through only if the window ends within it, here 5 s after the burst."""
    limited(plain_text=True, at=55.0)
    client = make_client()
    work(client, writes=4)  # 13 requests: the 11th meets the limit
    assert 3 <= gitlab.throttled <= 4
    assert len(gitlab.requests) == client.requests_sent == 13 + gitlab.throttled


def test_without_a_budget_a_bare_429_early_in_a_window_outlasts_the_retries(gitlab, make_client, limited):
    """The same burst at a window's start: the backoff (at most 9.5 s) ends long before the
    window, so the call fails; under the budget the same work meets no 429 at all (above)."""
    limited(plain_text=True)
    client = make_client()
    with pytest.raises(GitLabError, match=r"still rate-limits after 4 retries \(429\); re-run later"):
        work(client, writes=4)
    assert gitlab.throttled == 5


def test_a_429_despite_the_budget_holds_back_the_requests_after_it(gitlab, make_client, limited, clock):
    """Another client spent 4 of the token's 10 in this minute: the budgeted client meets
    GitLab's limit once, waits what it asks, and goes on in the next window, still within its
    own 10 in any 60 s."""
    limited(plain_text=False, at=35.0)
    other = make_client()
    for _ in range(4):
        other.token_info()
    client = make_client(max_requests_per_minute=PER_MINUTE)
    work(client, writes=4)  # 13 requests: 6 fit in this window, the 7th is refused
    assert (gitlab.throttled, client.requests_sent) == (1, 14)
    # Retry-After: the window's 25 s left, slept as the budget's pause; then 3 more fit until
    # its 7 sends at :35 leave its own window at :95
    assert clock.slept == [25.0, 35.0]
    assert client.budget.waited == 60.0

# the Lambda's wiring -------------------------------------------------------------------------


STATE_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:state-AbCdEf"


def lambda_settings(tmp_path, **document) -> RotationSettings:
    users = [{"iam_user": "ci", "targets": [{"kind": "project", "id": "1"}]}]
    return RotationSettings.load(
        {
            **task_root(tmp_path, {"gitlab_url": "https://gitlab.example", "users": users, **document}),
            **state_secret_env([STATE_ARN]),
            "GITLAB_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-AbCdEf",
        }
    )


@pytest.mark.parametrize(("document", "budget"), [({}, 80), ({"gitlab_max_requests_per_minute": 7}, 7)])
@mock_aws
def test_the_lambdas_client_is_paced_by_the_setting(aws_env, tmp_path, document, budget):
    settings = lambda_settings(tmp_path, **document)
    client = real_ports(settings).connect_gitlab("glpat-0123456789abcdef")
    assert (settings.gitlab_max_requests_per_minute, client.budget.max_requests_per_minute) == (budget, budget)
    client.close()
