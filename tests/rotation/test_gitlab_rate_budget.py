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
from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings
from gitlab_key_rotation_dev.clock import FakeClock
from gitlab_key_rotation_dev.gitlab_server import GitLabServer, rate_limited
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
