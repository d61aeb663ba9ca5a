"""The GitLab token secret's JSON, ``{"GITLAB_TOKEN": "..."}``: reading it and writing a new token.

The CDK creates the secret with a placeholder the operator must replace. A placeholder, an empty
or malformed secret is refused with a message naming the secret and the shape to put in; the
value itself is never echoed.
"""

from __future__ import annotations

import json
import re

from .errors import TokenSecretError

TOKEN_FIELD = "GITLAB_TOKEN"

# Every GitLab access token format is at least 20 characters of [A-Za-z0-9_.-] (``glpat-...``).
_TOKEN = re.compile(r"\A[A-Za-z0-9_.\-]{20,}\Z")
_PLACEHOLDER_WORDS = ("placeholder", "replace", "changeme", "change-me", "change_me", "todo")


def read_token(secret_text: str | None, secret_arn: str) -> str:
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
    return token


def with_new_token(secret_text: str, token: str) -> str:
    """The secret's JSON (already accepted by ``read_token``) with ``GITLAB_TOKEN`` replaced and
    its other fields kept."""
    data = json.loads(secret_text)
    data[TOKEN_FIELD] = token
    return json.dumps(data, sort_keys=True)
