"""A whole rotation (the rotation world: moto and the GitLab server over HTTPS) against GitLab's
per-token rate limit, on the world's clock: the budget's pacing passes the world's time."""

from __future__ import annotations

from gitlab_key_rotation_dev.rotation_world import build_world

PER_MINUTE = 3  # a first rotation into two targets is 9 requests: three minutes of them


def test_a_rotation_under_a_budget_of_gitlabs_limit_meets_no_429(aws, gitlab, clock):
    gitlab.today = clock.now().date()
    world = build_world(gitlab, clock, gitlab_max_requests_per_minute=PER_MINUTE)
    gitlab.limit_rate(PER_MINUTE, clock=lambda: clock.now().timestamp())
    report = world.run()
    assert not report.failed, report.failure_summary()
    assert [a["action"] for u in report.users for a in u.actions][-1] == "promote_key"
    assert report.gitlab_requests > 2 * PER_MINUTE  # more than two minutes' worth: paced
    assert gitlab.throttled == 0
    assert world.violations(settled=True) == []
