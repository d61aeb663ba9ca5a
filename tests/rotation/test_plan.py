"""The pure planner: what a run decides to do from what it observed (no AWS, no GitLab)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gitlab_key_rotation.lambda_src.rotation.plan import Policy, View, plan
from gitlab_key_rotation.lambda_src.rotation.ports import AccessKey
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation.lambda_src.rotation.state import CurrentRecord, PendingRecord, StoredState, TargetValues, target_key

NOW = datetime(2031, 3, 14, 9, 0, tzinfo=UTC)
POLICY = Policy(rotation_period=timedelta(days=30), grace_period=timedelta(hours=24), deletion_window=timedelta(days=7))
A = GitLabTarget(kind="group", id="platform")
B = GitLabTarget(kind="project", id="platform/deployer", environment_scope="production")


def key(key_id: str, age_days: float = 1, status: str = "Active") -> AccessKey:
    return AccessKey(key_id, status, NOW - timedelta(days=age_days))  # type: ignore[arg-type]


def view(keys=(), current: CurrentRecord | None = None, pending=None, held=None) -> View:
    held = held or {}
    current = current or CurrentRecord()
    return View(
        now=NOW,
        keys=tuple(keys),
        state=StoredState(current, pending, "v-pending" if pending else None),
        targets=(A, B),
        held={target_key(t): TargetValues(held.get(t.label), "s" if held.get(t.label) else None) for t in (A, B)},
    )


def both(key_id: str) -> dict:
    return {A.label: key_id, B.label: key_id}


def current(
    key_id: str, pushed_days_ago: float = 1, previous: str | None = None, deactivated_days_ago=None, event="e0"
):
    return CurrentRecord(
        access_key_id=key_id,
        secret_access_key="s",
        pushed_at=NOW - timedelta(days=pushed_days_ago),
        event_id=event,
        previous_access_key_id=previous,
        previous_deactivated_at=NOW - timedelta(days=deactivated_days_ago)
        if deactivated_days_ago is not None
        else None,
    )


def actions(result) -> list[tuple[str, str | None]]:
    return [(s.action, s.key_id if s.action != "rotate" else s.make_room) for s in result.steps]


def decide(v: View, force: bool = False, event_id: str = "e1"):
    return plan(v, POLICY, force, event_id)


# --- starting states without AWSPENDING ------------------------------------------------------


def test_no_key_at_all_rotates_to_create_the_first_one():
    result = decide(view())
    assert actions(result) == [("rotate", None)]
    assert "no key is recorded" in result.steps[0].reason


def test_a_human_key_already_in_gitlab_is_not_an_orphan_and_is_replaced_first_run():
    result = decide(view([key("H", age_days=3)], held=both("H")))
    assert actions(result) == [("rotate", None)]


def test_the_only_active_key_is_kept_even_when_nothing_holds_it():
    result = decide(view([key("H")]))
    assert actions(result) == [("rotate", None)]
    assert any("only Active key" in n for n in result.notes)


def test_an_unknown_inactive_key_is_an_orphan():
    result = decide(view([key("K", 40), key("X", status="Inactive")], current("K", 40), held=both("K")))
    assert actions(result) == [("delete_orphan_key", "X"), ("rotate", None)]


def test_a_young_current_key_held_everywhere_means_nothing_to_do():
    assert actions(decide(view([key("K", 3)], current("K", 3), held=both("K")))) == []


def test_an_old_current_key_is_rotated():
    result = decide(view([key("K", 31)], current("K", 31), held=both("K")))
    assert actions(result) == [("rotate", None)]
    assert "31 days old" in result.steps[0].reason


def test_force_rotates_a_young_key_once_per_event():
    young = view([key("K", 3)], current("K", 3, event="e0"), held=both("K"))
    assert actions(decide(young, force=True, event_id="e1")) == [("rotate", None)]
    already = view([key("K", 3)], current("K", 3, event="e1"), held=both("K"))
    result = decide(already, force=True, event_id="e1")
    assert actions(result) == [] and "already forced" in result.notes[0]


def test_a_target_that_lost_the_current_key_gets_it_back_without_a_new_key():
    result = decide(view([key("K", 3)], current("K", 3), held={A.label: "K"}))
    assert actions(result) == [("repair_targets", "K")]
    assert B.label in result.steps[0].reason and A.label not in result.steps[0].reason


def test_a_target_holding_a_key_iam_no_longer_has_is_repaired_even_in_the_grace_period():
    keys = [key("K", 0.1), key("P", 40)]
    result = decide(view(keys, current("K", 0.1, previous="P"), held={A.label: "K", B.label: "GONE"}))
    assert actions(result) == [("repair_targets", "K")]


def test_a_target_holding_another_active_key_is_not_overwritten_by_a_repair():
    result = decide(view([key("K", 3), key("H", 1)], current("K", 3), held={A.label: "K", B.label: "H"}))
    assert "repair_targets" not in [action for action, _ in actions(result)]


@pytest.mark.parametrize("status, expected", [("Inactive", "is Inactive"), (None, "no longer exists")])
def test_a_current_key_that_is_inactive_or_gone_is_replaced(status, expected):
    keys = [key("K", 3, status)] if status else []
    result = decide(view(keys, current("K", 3), held=both("K")))
    assert result.steps[-1].action == "rotate" and expected in result.steps[-1].reason


# --- retirement -------------------------------------------------------------------------------


def test_the_previous_key_stays_active_through_the_grace_period():
    result = decide(view([key("K", 0.5), key("P", 40)], current("K", 0.5, previous="P"), held=both("K")))
    assert actions(result) == [] and "stays Active until" in result.notes[0]


def test_after_the_grace_period_the_previous_key_is_deactivated_then_deleted_after_the_window():
    keys = [key("K", 2), key("P", 40)]
    assert actions(decide(view(keys, current("K", 2, previous="P"), held=both("K")))) == [
        ("deactivate_previous_key", "P")
    ]
    inactive = [key("K", 2), key("P", 40, "Inactive")]
    waiting = decide(view(inactive, current("K", 2, previous="P", deactivated_days_ago=1), held=both("K")))
    assert actions(waiting) == [] and "will be deleted after" in waiting.notes[0]
    done = decide(view(inactive, current("K", 9, previous="P", deactivated_days_ago=8), held=both("K")))
    assert actions(done) == [("delete_previous_key", "P")]


def test_a_previous_key_found_inactive_without_a_date_gets_one():
    keys = [key("K", 2), key("P", 40, "Inactive")]
    assert actions(decide(view(keys, current("K", 2, previous="P"), held=both("K")))) == [("record_deactivation", "P")]


def test_a_previous_key_a_target_still_holds_is_never_retired():
    keys = [key("K", 2), key("P", 40)]
    result = decide(view(keys, current("K", 2, previous="P"), held={A.label: "K", B.label: "P"}))
    assert ("deactivate_previous_key", "P") not in actions(result)
    assert any("still held by" in n for n in result.notes)


def test_a_previous_key_gone_from_iam_is_forgotten():
    result = decide(view([key("K", 2)], current("K", 2, previous="P"), held=both("K")))
    assert actions(result) == [("forget_previous_key", "P")]


# --- making room ------------------------------------------------------------------------------


def test_a_rotation_due_during_the_grace_period_waits_unless_forced():
    keys = [key("K", 31), key("P", 60)]
    state = current("K", 0.5, previous="P")
    waiting = decide(view(keys, state, held=both("K")))
    assert actions(waiting) == [] and any("waits" in n for n in waiting.notes)
    forced = decide(view(keys, state, held=both("K")), force=True)
    assert actions(forced) == [("rotate", "P")]


def test_an_inactive_previous_key_makes_room_for_a_due_rotation():
    keys = [key("K", 31), key("P", 60, "Inactive")]
    result = decide(view(keys, current("K", 31, previous="P", deactivated_days_ago=2), held=both("K")))
    assert actions(result) == [("rotate", "P")]


def test_two_keys_both_held_by_gitlab_block_the_rotation_with_an_explanation():
    keys = [key("K", 31), key("H", 60)]
    result = decide(view(keys, current("K", 31), held={A.label: "K", B.label: "H"}))
    assert actions(result)[-1] == ("blocked", None)
    reason = result.steps[-1].reason
    assert "K (held by" in reason and "H (held by" in reason and "make every target hold the same key" in reason


# --- AWSPENDING ---------------------------------------------------------------------------------


def pending(key_id: str | None) -> PendingRecord:
    return PendingRecord("run-0", "e0", NOW - timedelta(hours=1), {}, key_id, "s" if key_id else None)


@pytest.mark.parametrize(
    "keys, state, pending_key, expected",
    [
        ([key("K"), key("N", 0)], current("K"), "N", "resume_pending"),
        ([key("K"), key("N", 0, "Inactive")], current("K"), "N", "roll_back_pending"),
        ([key("K")], current("K"), "N", "roll_back_pending"),
        ([key("N", 0)], current("N"), "N", "drop_promoted_pending"),
        ([key("K"), key("N", 0)], current("K"), None, "abandon_pending_intent"),
    ],
    ids=["stored-key-active", "stored-key-inactive", "stored-key-gone", "already-promoted", "died-while-creating"],
)
def test_a_pending_rotation_is_resolved_before_anything_else(keys, state, pending_key, expected):
    result = decide(view(keys, state, pending(pending_key), held=both("K")))
    assert [s.action for s in result.steps] == [expected]
