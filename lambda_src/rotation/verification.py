"""Proving a new access key works before it goes anywhere: ``sts:GetCallerIdentity`` signed with it.

A new IAM key takes roughly 3 to 15 seconds to work everywhere, and one success can come from an
edge that already knows the key while the next request lands on one that does not. So: back off
while AWS refuses the key, then ask for several successes in a row, and give up after a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import KeyNotUsableError, RotationError
from .ports import NewAccessKey, Sleep, StsVerifier


@dataclass(frozen=True)
class VerificationPolicy:
    successes_in_a_row: int = 3
    pause_between_successes: float = 2.0
    first_backoff: float = 1.0
    max_backoff: float = 8.0
    give_up_after: float = 90.0  # seconds spent waiting, in total


def verify_key(
    verifier: StsVerifier, key: NewAccessKey, iam_user: str, sleep: Sleep, policy: VerificationPolicy
) -> int:
    """Return the number of calls it took; raise ``KeyNotUsableError`` when AWS still refuses the
    key after ``give_up_after`` seconds, ``RotationError`` when it belongs to another identity."""
    waited = 0.0
    backoff = policy.first_backoff
    streak = 0
    calls = 0
    while True:
        calls += 1
        try:
            arn = verifier.caller_arn(key)
        except KeyNotUsableError as exc:
            streak = 0
            if waited >= policy.give_up_after:
                raise KeyNotUsableError(
                    f"new key {key.id} was still refused by STS after {waited:.0f}s and {calls} attempts "
                    f"(last: {exc}); it was not given to GitLab"
                ) from None
            sleep(backoff)
            waited += backoff
            backoff = min(backoff * 2, policy.max_backoff)
            continue
        if not is_user_arn(arn, iam_user):
            raise RotationError(f"new key {key.id} authenticates as {arn}, not as IAM user {iam_user}")
        streak += 1
        if streak >= policy.successes_in_a_row:
            return calls
        sleep(policy.pause_between_successes)
        waited += policy.pause_between_successes


def is_user_arn(arn: str, iam_user: str) -> bool:
    """``arn:aws:iam::123456789012:user/some/path/<iam_user>``."""
    parts = arn.split(":", 5)
    return (
        len(parts) == 6
        and parts[2] == "iam"
        and parts[5].startswith("user/")
        and parts[5].rsplit("/", 1)[-1] == iam_user
    )
