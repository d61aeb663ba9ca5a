"""What a run should do for one user, decided from what it observed: a pure function. Read this
module first: it is the protocol of docs/DESIGN.md ("Rotation: the protocol", steps 3 to 7), top
to bottom.

``plan`` looks at IAM (the user's keys), the state secret and the GitLab targets and returns the
ordered state-changing steps still to take, plus notes on what it deliberately leaves alone. Each
step is an ``Action``; ``rotation.steps`` has one executor per action, named as it is. The
reconciler (``rotation.reconcile``) executes the first step, observes again and plans again, until
nothing is left: each step is therefore a no-op once done, and a run that died anywhere is
finished by the next one. A dry run reports the plan and stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .ports import AccessKey
from .settings import GitLabTarget
from .state import StoredState, TargetValues, target_key


@dataclass(frozen=True)
class Policy:
    rotation_period: timedelta
    grace_period: timedelta
    deletion_window: timedelta


@dataclass(frozen=True)
class View:
    """One observation of the three places state lives."""

    now: datetime
    keys: tuple[AccessKey, ...]
    state: StoredState
    targets: tuple[GitLabTarget, ...]
    held: dict[str, TargetValues]  # by ``target_key``

    def key(self, key_id: str | None) -> AccessKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    def holders(self, key_id: str) -> list[str]:
        """Labels of the targets whose key id variable names ``key_id``."""
        return [t.label for t in self.targets if self.held[target_key(t)].access_key_id == key_id]

    def held_ids(self) -> set[str]:
        return {v.access_key_id for v in self.held.values() if v.access_key_id}

    def known_ids(self) -> set[str | None]:
        """Keys whose secret is somewhere: in a target, or AWSCURRENT's (current or previous)."""
        current = self.state.current
        return self.held_ids() | {current.access_key_id, current.previous_access_key_id}


class Action(StrEnum):
    """The steps a plan is made of, in the protocol's order; each carries what it does."""

    description: str

    def __new__(cls, value: str, description: str) -> Action:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    # 3. resume or roll back a rotation a dead run left in AWSPENDING
    RESUME_PENDING = "resume_pending", "verify the pending key, push it to every target, promote it"
    ROLL_BACK_PENDING = (
        "roll_back_pending",
        "put the targets back as they were, delete the pending key, drop AWSPENDING",
    )
    DROP_PROMOTED_PENDING = (
        "drop_promoted_pending",
        "the pending key is already AWSCURRENT: remove the AWSPENDING label",
    )
    ABANDON_PENDING_INTENT = (
        "abandon_pending_intent",
        "a run died before storing the key it was creating: delete that key, drop AWSPENDING",
    )
    # 4. orphans
    DELETE_ORPHAN_KEY = "delete_orphan_key", "delete a key nobody holds and whose secret is lost"
    # 5. retire the key the last rotation replaced
    DEACTIVATE_PREVIOUS_KEY = "deactivate_previous_key", "make the replaced key Inactive after the grace period"
    RECORD_DEACTIVATION = (
        "record_deactivation",
        "note when the replaced key was found Inactive (starts the deletion window)",
    )
    DELETE_PREVIOUS_KEY = "delete_previous_key", "delete the replaced key after the deletion window"
    FORGET_PREVIOUS_KEY = "forget_previous_key", "the replaced key is gone from IAM: stop tracking it"
    # 6. repair
    REPAIR_TARGETS = (
        "repair_targets",
        "push AWSCURRENT's key (verified when it was promoted) again to targets that lost it",
    )
    # 7. rotate
    ROTATE = "rotate", "create a key, verify it, push it to every target, promote it"
    BLOCKED = "blocked", "rotation is due but would need a key that must not be touched"


@dataclass(frozen=True)
class Step:
    action: Action
    key_id: str | None
    reason: str
    make_room: str | None = None  # ROTATE only: the key deleted first to stay within IAM's 2


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan(view: View, policy: Policy, force: bool, event_id: str) -> Plan:
    result = Plan()
    if view.state.pending is not None:
        result.steps.append(_resume_or_roll_back(view))
        result.notes.append("the other steps are planned once the pending rotation is resolved")
        return result
    deleted = _orphans(view, result)
    deleted |= _retire(view, policy, result)
    if _repair(view, result):
        result.notes.append("rotation is considered once every target holds AWSCURRENT's key again")
        return result
    _rotate(view, policy, force, event_id, deleted, result)
    return result


# --- 3. resume or roll back ---------------------------------------------------------------------


def _resume_or_roll_back(view: View) -> Step:
    pending = view.state.pending
    current = view.state.current
    assert pending is not None
    key_id = pending.access_key_id
    if key_id is None:
        return Step(Action.ABANDON_PENDING_INTENT, None, f"run {pending.run_id} died while creating a key")
    if key_id == current.access_key_id:
        return Step(Action.DROP_PROMOTED_PENDING, key_id, "the pending key was promoted before the run ended")
    key = view.key(key_id)
    if key is None:
        return Step(Action.ROLL_BACK_PENDING, key_id, f"pending key {key_id} no longer exists in IAM")
    if key.status != "Active":
        return Step(Action.ROLL_BACK_PENDING, key_id, f"pending key {key_id} is Inactive")
    return Step(Action.RESUME_PENDING, key_id, f"run {pending.run_id} died after storing key {key_id}")


# --- 4. orphans ---------------------------------------------------------------------------------


def _orphans(view: View, result: Plan) -> set[str]:
    known = view.known_ids()
    active = [k for k in view.keys if k.status == "Active"]
    deleted = set()
    for key in view.keys:
        if key.id in known:
            continue
        if key.status == "Active" and len(active) == 1:
            result.notes.append(
                f"key {key.id} is in no target and not in the state secret, but kept: it is the only Active key"
            )
            continue
        result.steps.append(
            Step(
                Action.DELETE_ORPHAN_KEY,
                key.id,
                f"{key.status} key {key.id} is in no target and not in the state secret",
            )
        )
        deleted.add(key.id)
    return deleted


# --- 5. retire ----------------------------------------------------------------------------------


def _grace_ends(view: View, policy: Policy) -> datetime:
    """When the key AWSCURRENT replaced may stop working: the grace period after the push."""
    return (view.state.current.pushed_at or view.now) + policy.grace_period


def _retire(view: View, policy: Policy, result: Plan) -> set[str]:
    current = view.state.current
    previous_id = current.previous_access_key_id
    if previous_id is None or previous_id == current.access_key_id:
        return set()
    previous = view.key(previous_id)
    if previous is None:
        result.steps.append(
            Step(Action.FORGET_PREVIOUS_KEY, previous_id, f"previous key {previous_id} no longer exists in IAM")
        )
        return set()
    holders = view.holders(previous_id)
    if holders:
        result.notes.append(f"previous key {previous_id} is still held by {', '.join(holders)}: not retired")
        return set()
    if previous.status == "Active":
        grace_ends = _grace_ends(view, policy)
        if view.now >= grace_ends:
            result.steps.append(
                Step(Action.DEACTIVATE_PREVIOUS_KEY, previous_id, f"grace period ended {grace_ends.isoformat()}")
            )
        else:
            result.notes.append(
                f"previous key {previous_id} stays Active until {grace_ends.isoformat()} (grace period)"
            )
        return set()
    deactivated_at = current.previous_deactivated_at
    if deactivated_at is None:
        result.steps.append(Step(Action.RECORD_DEACTIVATION, previous_id, f"previous key {previous_id} is Inactive"))
        return set()
    delete_at = deactivated_at + policy.deletion_window
    if view.now >= delete_at:
        result.steps.append(
            Step(Action.DELETE_PREVIOUS_KEY, previous_id, f"deletion window ended {delete_at.isoformat()}")
        )
        return {previous_id}
    result.notes.append(f"previous key {previous_id} is Inactive and will be deleted after {delete_at.isoformat()}")
    return set()


# --- 6. repair ----------------------------------------------------------------------------------


def _repair(view: View, result: Plan) -> bool:
    """A target that no longer holds AWSCURRENT's key (a variable deleted or edited by hand, or a
    crash between a target's two writes) gets it back at once: no new key, no waiting."""
    current = view.state.current
    key = view.key(current.access_key_id)
    if key is None or key.status != "Active" or current.secret_access_key is None:
        return False  # nothing trustworthy to push: the rotation decides
    expected = TargetValues(current.access_key_id, current.secret_access_key)
    lost = [t.label for t in view.targets if _lost_current_key(view, view.held[target_key(t)], expected)]
    if lost:
        reason = f"{', '.join(lost)} does not hold current key {key.id}"
        result.steps.append(Step(Action.REPAIR_TARGETS, key.id, reason))
    return bool(lost)


def _lost_current_key(view: View, held: TargetValues, expected: TargetValues) -> bool:
    """The target does not hold ``expected``, and what it holds instead does not work either (no
    key id, a key id IAM does not have Active, or AWSCURRENT's id with another secret). A target
    holding another Active key is someone's deliberate choice: the rotation deals with it."""
    if held == expected:
        return False
    other = view.key(held.access_key_id)
    return other is None or other.status != "Active" or other.id == expected.access_key_id


# --- 7. rotate ----------------------------------------------------------------------------------


def _rotation_reason(view: View, policy: Policy, force: bool, event_id: str) -> str | None:
    current = view.state.current
    key_id = current.access_key_id
    if key_id is None:
        return "no key is recorded in the state secret yet"
    key = view.key(key_id)
    if key is None:
        return f"current key {key_id} no longer exists in IAM"
    if key.status != "Active":
        return f"current key {key_id} is Inactive"
    missing = [t.label for t in view.targets if view.held[target_key(t)].access_key_id != key_id]
    if missing:
        return f"{', '.join(missing)} does not hold current key {key_id}"
    if force and current.event_id != event_id:
        return "the event asked for it (force)"
    age = view.now - key.created
    if age >= policy.rotation_period:
        return f"current key {key_id} is {age.days} days old (rotation period {policy.rotation_period.days} days)"
    return None


def _rotate(view: View, policy: Policy, force: bool, event_id: str, deleted: set[str], result: Plan) -> None:
    reason = _rotation_reason(view, policy, force, event_id)
    if reason is None:
        if force:
            result.notes.append("this event already forced a rotation")
        return
    current = view.state.current
    remaining = [k for k in view.keys if k.id not in deleted]
    if len(remaining) < 2:
        result.steps.append(Step(Action.ROTATE, None, reason))
        return
    held = view.held_ids()
    removable = [k for k in remaining if k.id not in held and k.id != current.access_key_id]
    if not removable:
        in_use = ", ".join(
            f"{k.id} ({'held by ' + ', '.join(view.holders(k.id)) if k.id in held else 'AWSCURRENT'})"
            for k in remaining
        )
        result.steps.append(
            Step(
                Action.BLOCKED,
                None,
                f"rotation is due ({reason}) but the user already has two keys and both are in use: {in_use}; "
                "make every target hold the same key (or delete the key that is not needed) and run again",
            )
        )
        return
    room = removable[0]
    if room.id == current.previous_access_key_id and room.status == "Active" and not force:
        grace_ends = _grace_ends(view, policy)
        if view.now < grace_ends:
            result.notes.append(
                f"rotation is due ({reason}) but waits: previous key {room.id} is in its grace period until "
                f'{grace_ends.isoformat()}; invoke with {{"force": true}} to rotate anyway'
            )
            return
    result.steps.append(Step(Action.ROTATE, None, reason, make_room=room.id))
