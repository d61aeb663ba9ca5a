"""Two runs at once, and one event delivered twice: one rotation, never two new keys.

"At once" is made exact: run A is paused after one of its calls while run B runs from start to
end, then A carries on. B starts after every call of A up to and including A taking the lock,
where the race is decided (after it, B always finds A's live lock: the next test).
"""

from __future__ import annotations

from gitlab_key_rotation.lambda_src.rotation.run import RunReport
from gitlab_key_rotation_dev.call_faults import CallLog
from gitlab_key_rotation_dev.rotation_world import RotationWorld, fresh_world
from tests.rotation.seeds import managed


def rotation_due(world: RotationWorld) -> None:
    """A managed key 31 days old, in every target."""
    managed(world, age_days=31)


def created(*reports: RunReport) -> list[str]:
    return [a["key_id"] for r in reports for u in r.users for a in u.actions if a["action"] == "create_key"]


def run_a_with_b_after_call(world: RotationWorld, k: int, **a_options) -> tuple[RunReport, RunReport]:
    """Run A; right after A's call number ``k``, run B (the same event) from start to end."""
    b: list[RunReport] = []

    def run_b() -> None:
        b.append(world.run(run_id="run-b", event_id="ev-1"))

    a = world.run(
        wrap=CallLog(fail_at=k, when="after", meanwhile=run_b).wrap, run_id="run-a", event_id="ev-1", **a_options
    )
    return a, b[0]


def test_two_runs_at_once_make_one_rotation_whichever_call_the_second_starts_after(aws_env, monkeypatch):
    with fresh_world(monkeypatch, rotation_due) as world:
        probe = CallLog()
        assert len(created(world.run(wrap=probe.wrap))) == 1
    calls = probe.calls
    lock_at = calls.index("state.acquire_lock")
    winners = set()
    for k in range(lock_at + 1):
        where = f"B started after A's call {k} ({calls[k]})"
        with fresh_world(monkeypatch, rotation_due) as world:
            a, b = run_a_with_b_after_call(world, k)
            assert not a.failed and not b.failed, (where, a.as_json(), b.as_json())
            assert len(created(a, b)) == 1, where
            assert world.violations(settled=True) == [], where
            winners.add("a" if created(a) else "b")
    assert winners == {"a", "b"}  # the race was really run both ways


def test_a_run_finding_a_live_lock_leaves_the_user_alone_and_does_not_fail(aws_env, monkeypatch):
    with fresh_world(monkeypatch, rotation_due) as world:
        probe = CallLog()
        world.run(wrap=probe.wrap)
    with fresh_world(monkeypatch, rotation_due) as world:
        a, b = run_a_with_b_after_call(world, probe.calls.index("state.acquire_lock"))
        assert a.users[0].outcome == "changed"
        assert b.users[0].outcome == "skipped" and not b.failed
        assert "run run-a holds the rotation lock" in b.users[0].notes[0]


def test_the_same_forced_event_delivered_twice_rotates_once(world):
    rotation_due(world)
    world.clock.advance(days=-20)  # make the key young: only force rotates it
    first = world.run(run_id="req-1", event_id="ev-42", force=True)
    assert len(created(first)) == 1
    world.clock.advance(minutes=1)  # Lambda's async retry, or EventBridge's second delivery
    second = world.run(run_id="req-2", event_id="ev-42", force=True)
    assert created(second) == [] and not second.failed
    assert "this event already forced a rotation" in second.users[0].notes
    third = world.run(run_id="req-3", event_id="ev-43", force=True)  # a new event may force again
    assert len(created(third)) == 1
