"""The invariants of DESIGN.md, checked on what IAM, the state secret and GitLab hold right now.

Reusable by any test that has boto3 clients (moto in-process or moto.server) and the project's
GitLab server::

    seen = observe(iam=..., secrets=..., gitlab=server, user=settings.users[0], key_secrets=...)
    assert check(seen, verified=verifier.verified, seeded=set(seeded_keys)) == []

``check(..., settled=False)`` is for the instant after a crash; ``settled=True`` for after a run
that finished. Each violation is a sentence naming the invariant, the key and the place.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass, field
from datetime import datetime

from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget, RotatedUser
from gitlab_key_rotation.lambda_src.rotation.state import LOCK_TTL
from gitlab_key_rotation_dev.gitlab_server import GitLabServer


@dataclass(frozen=True)
class Observed:
    keys: dict[str, str]  # key id -> "Active" | "Inactive"
    targets: dict[str, tuple[str | None, str | None]]  # target label -> (key id, secret) held
    current: dict  # AWSCURRENT's JSON
    pending: dict | None  # AWSPENDING's JSON, None when there is none
    lock: dict | None  # ROTATION_LOCK's JSON
    key_secrets: dict[str, str] = field(default_factory=dict, repr=False)  # key id -> its real secret, when known


def observe(
    *, iam, secrets, gitlab: GitLabServer, user: RotatedUser, key_secrets: dict[str, str] | None = None
) -> Observed:
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user.iam_user)["AccessKeyMetadata"]}
    stages = secrets.describe_secret(SecretId=user.state_secret_arn).get("VersionIdsToStages", {})

    def stage(label: str) -> dict | None:
        version = next((v for v, labels in stages.items() if label in labels), None)
        if version is None:
            return None
        return json.loads(
            secrets.get_secret_value(SecretId=user.state_secret_arn, VersionId=version)["SecretString"] or "{}"
        )

    return Observed(
        keys=keys,
        targets={t.label: held(gitlab, t) for t in user.targets},
        current=stage("AWSCURRENT") or {},
        pending=stage("AWSPENDING"),
        lock=stage("ROTATION_LOCK"),
        key_secrets=dict(key_secrets or {}),
    )


def held(gitlab: GitLabServer, target: GitLabTarget) -> tuple[str | None, str | None]:
    """(key id, secret) the target holds, as the GitLab server stores them (hidden values too;
    the ``default`` profile of a ``credentials_file`` target's file, read as the AWS SDK reads it)."""
    if target.delivery == "credentials_file":
        variable = gitlab.variable(target, target.credentials_file_variable, target.environment_scope)
        profile = configparser.ConfigParser(interpolation=None)
        if variable is not None:
            profile.read_string(variable.value)
        section = profile["default"] if profile.has_section("default") else {}
        return section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    values = []
    for key in (target.access_key_id_variable, target.secret_access_key_variable):
        variable = gitlab.variable(target, key, target.environment_scope)
        values.append(variable.value if variable else None)
    return values[0], values[1]


def check(
    seen: Observed, *, verified: set[str], seeded: set[str], settled: bool, now: datetime | None = None
) -> list[str]:
    """Every violated invariant, as sentences (empty: all hold).

    ``verified``: keys that passed the STS check; ``seeded``: keys the test made by hand (they
    were never the rotation's to verify); ``now``: the clock, to tell a dead run's expired lock
    (which the next run that needs it takes over) from a held one."""
    problems = []
    current_id = seen.current.get("access_key_id")
    pending_id = (seen.pending or {}).get("access_key_id")
    held = {label: key_id for label, (key_id, _) in seen.targets.items() if key_id}

    # 1. the key each target holds is Active
    for label, key_id in held.items():
        status = seen.keys.get(key_id)
        if status != "Active":
            problems.append(f"1: {label} holds {key_id}, which is {status or 'deleted'} in IAM")
    # 2. AWSCURRENT's key is never deactivated or deleted (AWSPENDING's is deleted by a rollback,
    #    after every target was put back: 1 covers the targets)
    if current_id and seen.keys.get(current_id) != "Active":
        problems.append(f"2: AWSCURRENT key {current_id} is {seen.keys.get(current_id) or 'deleted'} in IAM")
    # 3. only verified keys reach GitLab
    for label, key_id in held.items():
        if key_id not in verified and key_id not in seeded:
            problems.append(f"3: {label} holds {key_id}, which never passed the STS check")
    # 4. at most two keys, and none whose secret is lost
    if len(seen.keys) > 2:
        problems.append(f"4: the user has {len(seen.keys)} keys")
    before = [v.get("access_key_id") for v in (seen.pending or {}).get("targets_before", {}).values()]
    known = set(held.values()) | set(before) | {current_id, pending_id, seen.current.get("previous_access_key_id")}
    unknown = [k for k in seen.keys if k not in known]
    creating = seen.pending is not None and pending_id is None  # a run died between intent and storing
    if unknown and (settled or not creating or len(unknown) > 1):
        problems.append(f"4: keys {unknown} are in no target and not in the state secret: their secret is lost")
    if settled:
        problems.extend(_settled(seen, current_id, now))
    return problems


def _settled(seen: Observed, current_id: str | None, now: datetime | None) -> list[str]:
    problems = []
    if seen.pending is not None:
        problems.append(f"settled: AWSPENDING is still there ({(seen.pending or {}).get('access_key_id')})")
    lock = seen.lock
    expired = lock is not None and now is not None and now - datetime.fromisoformat(lock["acquired_at"]) >= LOCK_TTL
    if lock is not None and not lock.get("released") and not expired:
        problems.append(f"settled: the rotation lock of run {seen.lock.get('run_id')} was not released")
    for label, (key_id, secret) in seen.targets.items():
        if key_id != current_id:
            problems.append(f"settled: {label} holds {key_id}, not AWSCURRENT's {current_id}")
        real = seen.key_secrets.get(key_id or "")
        if real is not None and secret != real:
            problems.append(f"settled: {label}'s secret variable does not belong to {key_id}")
    if current_id in seen.key_secrets and seen.current.get("secret_access_key") != seen.key_secrets[current_id]:
        problems.append(f"settled: AWSCURRENT's secret does not belong to {current_id}")
    return problems
