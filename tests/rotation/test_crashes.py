"""A run killed before or after every external call it makes, then a clean re-run.

For each scenario the run is first made once to list its calls (IAM, state secret, token secret,
GitLab, STS, SNS: every method call on a port). Then, in a fresh world each time, the run is
killed before call i, and after call i, for every i: the invariants of DESIGN.md must hold at
that instant. The world after a crash depends only on the changing calls made before it (a crash
after a read leaves what the crash after the last write before it left), so the clean re-run,
which must succeed, settle every invariant and leave nothing for a further run to do, is made
once per distinct state: after every changing call, and before the first call.

The re-run comes after the dead run's lock expired, as the next scheduled run would.
"""

from __future__ import annotations


import pytest

from gitlab_key_rotation.lambda_src.rotation.state import LOCK_TTL
from gitlab_key_rotation_dev.call_faults import CHANGING, CallLog, Crash
from gitlab_key_rotation_dev.rotation_world import RotationWorld, fresh_world


def retire_then_rotate(world: RotationWorld) -> None:
    """A managed key 31 days old whose predecessor went Inactive 8 days ago: the run deletes
    the predecessor (deletion window over), then rotates: lock, intent, create, store, verify,
    push to two targets, promote, release. (The first run on a human's key makes the same calls
    minus the retirement; its starting state is in ``test_starting_states``.)"""
    world.seed_retirement_due()


def test_a_crash_before_or_after_any_call_leaves_the_invariants_and_a_rerun_converges(
    aws_env, monkeypatch, record_property
):
    scenario = retire_then_rotate
    with fresh_world(monkeypatch, scenario, notification_topic_arn=None) as world:
        log = CallLog()
        assert not world.run(wrap=log.wrap).failed
    calls = log.calls
    points = [(i, when) for i in range(len(calls)) for when in ("before", "after")]
    reruns = 0
    for i, when in points:
        where = f"crash {when} call {i} ({calls[i]})"
        with fresh_world(monkeypatch, scenario, notification_topic_arn=None) as world:
            with pytest.raises(Crash):
                world.run(wrap=CallLog(fail_at=i, when=when).wrap)
            assert world.violations(settled=False) == [], where
            if not ((when == "after" and calls[i] in CHANGING) or (i, when) == (0, "before")):
                continue
            reruns += 1
            world.clock.advance(seconds=LOCK_TTL.total_seconds() + 1)
            rerun = world.run(run_id="run-rerun")
            assert not rerun.failed, (where, rerun.as_json())
            assert world.violations(settled=True) == [], where
            assert world.run(run_id="run-after").users[0].actions == [], where
    record_property("fault_points", len(points))
    record_property("distinct_states_rerun", reruns)
    print(f"{len(calls)} calls, {len(points)} fault points, {reruns} distinct states re-run")
    assert reruns == sum(c in CHANGING for c in calls) + 1
