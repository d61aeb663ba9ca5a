"""The GitLab token secret's JSON, ``{"GITLAB_TOKEN": "..."}``: reading it, marking a rotation of
the token as in flight, and writing a new token.

The CDK creates the secret with a placeholder the operator must replace. A placeholder, an empty
or malformed secret is refused with a message naming the secret and the shape to put in; the
value itself is never echoed.

A rotation of the token itself is recorded in the secret *before* GitLab is asked
(``rotation_in_flight``: the old token's id, the run, the time), and the new token replaces the
old one and the marker in one write. GitLab revokes a whole token family when an already rotated
token is used again (reuse detection), so while the marker is there no run uses the token at all:
``read_token`` refuses it with what a human must do.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from .errors import TokenRotationInDoubtError, TokenSecretError

TOKEN_FIELD = "GITLAB_TOKEN"
IN_FLIGHT_FIELD = "rotation_in_flight"

# Every GitLab access token format is at least 20 characters of [A-Za-z0-9_.-] (``glpat-...``).
_TOKEN = re.compile(r"\A[A-Za-z0-9_.\-]{20,}\Z")
_PLACEHOLDER_WORDS = ("placeholder", "replace", "changeme", "change-me", "change_me", "todo")


@dataclass(frozen=True)
class TokenRotation:
    """A rotation of the token with id ``token_id`` that ``run_id`` started at ``started_at``
    (ISO 8601), asking for a token that expires on ``expires_at``. No token value."""

    token_id: int
    run_id: str
    started_at: str
    expires_at: str


def read_token(secret_text: str | None, secret_arn: str) -> str:
    """The token; ``TokenRotationInDoubtError`` while a rotation of it is recorded as in flight."""

    def refuse(why: str) -> TokenSecretError:
        return TokenSecretError(
            f"GitLab token secret {secret_arn} {why}; put the JSON "
            f'{{"{TOKEN_FIELD}": "<an access token with scope api>"}} in it '
            "(a personal access token, or a group/project access token with the Owner/Maintainer role)"
        )

    try:
        data = json.loads(secret_text or "")
    except json.JSONDecodeError:
        raise refuse("is not valid JSON") from None
    if not isinstance(data, dict):
        raise refuse(f"holds a JSON {type(data).__name__}, not an object")
    token = data.get(TOKEN_FIELD)
    if token is None:
        raise refuse(f"has no {TOKEN_FIELD} field")
    if not isinstance(token, str) or not token.strip():
        raise refuse(f"has an empty {TOKEN_FIELD}")
    if any(word in token.lower() for word in _PLACEHOLDER_WORDS):
        raise refuse(f"still holds the placeholder {TOKEN_FIELD} written at deploy time")
    if not _TOKEN.match(token):
        raise refuse(f"has a {TOKEN_FIELD} that is not a GitLab token (20+ characters of A-Z a-z 0-9 _ . -)")
    if data.get(IN_FLIGHT_FIELD) is not None:
        raise TokenRotationInDoubtError(in_doubt_message(_marker(data[IN_FLIGHT_FIELD]), secret_arn, "it never finished"))
    return token


def in_doubt_message(rotation: TokenRotation | None, secret_arn: str, cause: str) -> str:
    """What a human must do after a rotation of the token whose outcome is unknown."""
    if rotation is None:
        what = "a rotation of the GitLab token"
        which = "the token"
    else:
        what = (
            f"the rotation of GitLab token id {rotation.token_id} started at {rotation.started_at} "
            f"by run {rotation.run_id}"
        )
        which = f"token id {rotation.token_id}"
    return (
        f"{what} is in doubt: {cause}. No run uses that token again until a human has looked (GitLab revokes "
        f"the whole token family when a rotated token is reused). In GitLab, look at {which} (Access tokens of "
        f"its user): if it is revoked, the rotation landed and the new token is lost: revoke the newer token of "
        f'the same name, create a token with scope api and put {{"{TOKEN_FIELD}": "<new token>"}} in secret '
        f"{secret_arn}; if it is still active, nothing was rotated: delete the field {IN_FLIGHT_FIELD!r} from "
        "the secret's JSON. The next run then goes on"
    )


def _marker(value: object) -> TokenRotation | None:
    try:
        return TokenRotation(**value)  # type: ignore[arg-type]
    except TypeError:
        return None  # a marker edited by hand: still in doubt, without the details


def with_rotation(secret_text: str, rotation: TokenRotation) -> str:
    """The secret's JSON with the in-flight marker added and the token kept."""
    data = json.loads(secret_text)
    data[IN_FLIGHT_FIELD] = asdict(rotation)
    return json.dumps(data, sort_keys=True)


def without_rotation(secret_text: str) -> str:
    """The secret's JSON without the in-flight marker (GitLab refused the rotation: nothing changed)."""
    data = json.loads(secret_text)
    data.pop(IN_FLIGHT_FIELD, None)
    return json.dumps(data, sort_keys=True)


def with_new_token(secret_text: str, token: str) -> str:
    """The secret's JSON with ``GITLAB_TOKEN`` replaced, the in-flight marker dropped and its other
    fields kept: one write, so that the new token and the end of the rotation land together."""
    data = json.loads(secret_text)
    data[TOKEN_FIELD] = token
    data.pop(IN_FLIGHT_FIELD, None)
    return json.dumps(data, sort_keys=True)
