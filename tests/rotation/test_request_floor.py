"""What a run costs, counted where the calls arrive: GitLab requests at the project's GitLab server
(by the run's token), AWS calls at botocore (``AwsWire``, on moto). And a write GitLab applies
late, after the client gave up on it and after the rollback that followed: the run settles it.

A clean rotation of a key held by two targets: the token once; per target one read, two writes,
one read-back. A run with nothing due: the token and one read per target.
"""

from __future__ import annotations

import time
from collections import Counter
from gitlab_key_rotation_dev.gitlab_server import late_write
from gitlab_key_rotation_dev.rotation_world import PROJECT_TARGET, RotationWorld, aws_client, aws_session
from gitlab_key_rotation_dev.wire_faults import AwsWire

from .seeds import managed

TARGETS = 2


def managed_key_due(world: RotationWorld) -> str:
    return managed(world, age_days=31)


def test_a_rotation_costs_four_gitlab_requests_per_target_and_a_run_with_nothing_due_one(world):
    old = managed_key_due(world)
    released = {"generation": 3, "run_id": "run-0", "acquired_at": world.clock.now().isoformat(), "released": True}
    world.put_state(released, stages=["ROTATION_LOCK"])  # as every run after the first finds it
    world.gitlab.clear_log()
    with AwsWire((world.iam, world.secrets, aws_client("sns")), aws_session()) as wire, wire.armed() as aws_calls:
        report = world.run(run_id="run-1")
    assert not report.failed and report.users[0].actions[-1]["previous_key_id"] == old
    assert world.gitlab.request_counts(world.token) == Counter(
        {("GET", "token"): 1, ("GET", "variables"): 2 * TARGETS, ("PUT", "variable"): 2 * TARGETS}
    )
    assert report.gitlab_requests == 1 + 4 * TARGETS
    by_name = Counter(f"{c.kind} {c.name}" for c in aws_calls)
    assert by_name == Counter(
        {
            "secretsmanager GetSecretValue": 3,  # the token; AWSCURRENT and the lock
            "secretsmanager DescribeSecret": 1,
            "iam ListAccessKeys": 1,
            "secretsmanager PutSecretValue": 5,  # lock, intent, AWSPENDING, AWSCURRENT, release
            "iam CreateAccessKey": 1,
            "sts GetCallerIdentity": 3,
            "secretsmanager UpdateSecretVersionStage": 1,
        }
    )
    assert len(aws_calls) == 15

    world.gitlab.clear_log()
    with AwsWire((world.iam, world.secrets), aws_session()) as wire, wire.armed() as aws_calls:
        quiet = world.run(run_id="run-2")
    assert [u.outcome for u in quiet.users] == ["unchanged"]
    assert world.gitlab.request_counts(world.token) == Counter({("GET", "token"): 1, ("GET", "variables"): TARGETS})
    assert len(aws_calls) == 5  # the token; the state secret's labels, AWSCURRENT and lock; the keys


def test_a_write_gitlab_applies_after_the_rollback_is_settled_before_the_run_ends(world, monkeypatch):
    """The project's secret write times out three times (the client's attempts); GitLab applies
    each 1.5 s after it arrived, the last one after the rollback restored the project: the project
    then holds the old key id with the deleted new key's secret. The run waits out the late-write
    horizon (twice the 1 s read timeout), reads the project again and repairs it."""
    old = managed_key_due(world)
    world.client_timeout = (2.0, 1.0)
    monkeypatch.setattr(world.clock, "sleep", lambda seconds: (time.sleep(seconds), world.clock.advance(seconds=seconds)))
    world.gitlab.inject(
        method="PUT", path=r"/projects/[^/]+/variables/AWS_SECRET_ACCESS_KEY", times=3, **late_write(after=1.5)
    )
    report = world.run(run_id="run-1")
    world.gitlab.wait_idle()
    user = report.users[0]
    assert user.outcome == "failed" and "was rolled back" in user.error
    assert [a["action"] for a in user.actions][-2:] == ["drop_pending", "repair_targets"]
    assert any(f"read {PROJECT_TARGET.label} again" in n and "repaired" in n for n in user.notes)
    assert world.held(PROJECT_TARGET) == (old, world.seeded_keys[old])
    assert world.violations(settled=True) == []
