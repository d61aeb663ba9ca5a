"""Pre-flight: everything a run needs is checked before it changes anything, and the GitLab
token's own expiry is watched (and, if configured, the token rotated) first of all.

A failed pre-flight raises ``PreflightError`` listing every problem with what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .errors import AccountUnreachableError, PreflightError, RotationError, TokenRotationInDoubtError, UserNotFoundError
from .observation import Observation
from .ports import (
    GitLab,
    GitLabAuthError,
    GitLabError,
    GitLabForbiddenError,
    GitLabOutcomeUnknownError,
    IamKeys,
    Notifier,
    TokenInfo,
    TokenStore,
)
from .settings import GitLabTarget
from .token_secret import TokenRotation, in_doubt_message

logger = logging.getLogger(__name__)

TOKEN_EXPIRING_EVENT = "gitlab_token_expiring"  # the CDK's metric filter matches this field
# What a rotated GitLab token is asked to live: a day under GitLab's one-year maximum. Without an
# ``expires_at`` GitLab gives it one week.
NEW_TOKEN_LIFETIME = timedelta(days=364)


@dataclass(frozen=True)
class TokenCheck:
    expires_at: date | None
    days_left: int | None
    warned: bool = False
    rotated: bool = False

    def as_json(self) -> dict:
        return {
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "days_left": self.days_left,
            "warned": self.warned,
            "rotated": self.rotated,
        }


def check_token(gitlab: GitLab, token_secret_arn: str, today: date) -> TokenInfo:
    """The token works, is active and has scope ``api``."""
    fix = f'create a new access token with scope api and put {{"GITLAB_TOKEN": "..."}} in secret {token_secret_arn}'
    try:
        info = gitlab.token_info()
    except GitLabAuthError as exc:
        raise PreflightError([f"GitLab refused the token ({exc}); {fix}"]) from None
    problems = []
    if info.revoked:
        problems.append(f"the GitLab token {info.name!r} (id {info.id}) is revoked; {fix}")
    elif info.expires_at is not None and info.expires_at <= today:
        problems.append(
            f"the GitLab token {info.name!r} (id {info.id}) expired on {info.expires_at.isoformat()}; {fix}"
        )
    elif not info.active:
        problems.append(f"the GitLab token {info.name!r} (id {info.id}) is not active; {fix}")
    if "api" not in info.scopes:
        problems.append(
            f"the GitLab token {info.name!r} (id {info.id}) has scopes {sorted(info.scopes)} but writing CI/CD "
            f"variables needs scope api; {fix}"
        )
    if problems:
        raise PreflightError(problems)
    return info


def watch_token_expiry(
    gitlab: GitLab,
    info: TokenInfo,
    *,
    today: date,
    warning_days: int,
    rotate: bool,
    dry_run: bool,
    token_store: TokenStore,
    token_secret_arn: str,
    notifier: Notifier,
    run_id: str,
    now: datetime,
) -> TokenCheck:
    """Warn (log record with ``event``/``days_left`` fields, and SNS) from ``warning_days``
    before the token expires; with ``rotate``, rotate it instead and store the new token in the
    secret before anything else, since the old one stops working at once."""
    if info.expires_at is None:
        return TokenCheck(None, None)
    days_left = (info.expires_at - today).days
    if days_left > warning_days:
        return TokenCheck(info.expires_at, days_left)
    if rotate and not dry_run:
        rotation = TokenRotation(
            token_id=info.id,
            run_id=run_id,
            started_at=now.isoformat(timespec="seconds"),
            expires_at=(today + NEW_TOKEN_LIFETIME).isoformat(),
        )
        return _rotate_token(gitlab, rotation, today, token_store, token_secret_arn)
    message = (
        f"The GitLab token {info.name!r} (id {info.id}) used by the key rotation expires on "
        f"{info.expires_at.isoformat()} ({days_left} days left). Rotate it in GitLab and put "
        f'{{"GITLAB_TOKEN": "..."}} in secret {token_secret_arn}, or deploy with token rotation on.'
    )
    logger.warning(message, extra={"event": TOKEN_EXPIRING_EVENT, "days_left": days_left})
    try:
        notifier.publish("GitLab token expires soon", message)
    except Exception as exc:  # the log record above still feeds the alarm
        logger.warning("could not publish the token expiry warning: %s: %s", type(exc).__name__, exc)
    return TokenCheck(info.expires_at, days_left, warned=True)


def _rotate_token(
    gitlab: GitLab, rotation: TokenRotation, today: date, token_store: TokenStore, token_secret_arn: str
) -> TokenCheck:
    """Record the rotation, rotate once, store the new token (which ends the record). A refusal
    changed nothing: the record is dropped. A lost answer, or a new token that cannot be stored,
    leaves the record: every later run stops before using the token, and says what to do."""
    token_store.begin_rotation(rotation)
    try:
        info, token = gitlab.rotate_token(date.fromisoformat(rotation.expires_at))
    except GitLabOutcomeUnknownError as exc:
        raise TokenRotationInDoubtError(in_doubt_message(rotation, token_secret_arn, str(exc))) from None
    except GitLabError as exc:  # GitLab refused: the token is unchanged
        token_store.abandon_rotation()
        raise RotationError(
            f"GitLab refused to rotate token id {rotation.token_id} with expires_at {rotation.expires_at} ({exc}); "
            "the token is unchanged: rotate it by hand in GitLab and store the new one in secret "
            f'{token_secret_arn} as {{"GITLAB_TOKEN": "..."}}'
        ) from None
    try:
        token_store.write(token)
    except Exception as exc:
        cause = (
            f"GitLab rotated it into new token id {info.id}, which could not be stored "
            f"({type(exc).__name__}: {exc}); token id {rotation.token_id} no longer works"
        )
        raise TokenRotationInDoubtError(in_doubt_message(rotation, token_secret_arn, cause)) from None
    logger.info(
        "rotated the GitLab token: new token id %s expires on %s",
        info.id,
        info.expires_at.isoformat() if info.expires_at else "never",
        extra={"event": "gitlab_token_rotated"},
    )
    days_left = (info.expires_at - today).days if info.expires_at else None
    return TokenCheck(info.expires_at, days_left, rotated=True)


def check_users(observations: Sequence[Observation], gitlab: GitLab, iam: IamKeys) -> None:
    """Every IAM user exists; every target exists and its variables are readable with the token
    (reading them needs the role writing them does). These reads are each user's first
    observation, in its order (state secret, keys, targets), which its reconcile starts from. A
    state secret that cannot be read fails only its user, in the reconcile; that user's keys and
    targets are checked here all the same, outside its observation."""
    problems = []
    for observation in observations:
        try:
            observation.stored()
            observed = True
        except Exception:  # noqa: BLE001 - the user's reconcile reads it again and says why it fails
            observed = False
        try:
            observation.keys() if observed else iam.list_keys(observation.user.iam_user)
        except (UserNotFoundError, AccountUnreachableError) as exc:
            problems.append(str(exc))
            observed = False
        read: Callable[[GitLabTarget], object] = observation.variables if observed else gitlab.read_variables
        for target in observation.user.targets:
            try:
                read(target)
            except GitLabForbiddenError as exc:
                problems.append(
                    f"{target.label}: {exc} (variables need the Maintainer role on a project and Owner on a "
                    "group; a Developer gets 403)"
                )
            except GitLabError as exc:
                problems.append(f"{target.label}: {exc}")
    if problems:
        raise PreflightError(problems)
