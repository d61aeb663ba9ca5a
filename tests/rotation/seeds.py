"""Starting states the rotation tests seed into a ``RotationWorld``."""

from __future__ import annotations

from datetime import timedelta

from gitlab_key_rotation_dev.rotation_world import RotationWorld


def managed(
    world: RotationWorld,
    *,
    age_days: float,
    pushed_days_ago: float | None = None,
    previous: str | None = None,
    deactivated_days_ago: float | None = None,
) -> str:
    """A user the rotation already manages: a key ``age_days`` old in the state secret and every
    target, pushed ``pushed_days_ago`` (default: when it was created); returns its id."""
    key_id = world.seed_key(age_days=age_days, in_targets=True)
    pushed = age_days if pushed_days_ago is None else pushed_days_ago
    record = {
        "access_key_id": key_id,
        "secret_access_key": world.seeded_keys[key_id],
        "pushed_at": (world.clock.now() - timedelta(days=pushed)).isoformat(),
        "event_id": "ev-0",
    }
    if previous:
        record["previous_access_key_id"] = previous
    if deactivated_days_ago is not None:
        record["previous_deactivated_at"] = (world.clock.now() - timedelta(days=deactivated_days_ago)).isoformat()
    world.put_state(record)
    return key_id
