"""What the rotation logic needs from GitLab: the Protocol, its value types and its errors.

The real implementation is ``rotation.gitlab_client.GitLabClient`` (``requests`` over HTTPS);
domain tests use an in-memory fake implementing the same Protocol. No message built here or in an
implementation may contain a variable value or the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from .settings import GitLabTarget


@dataclass(frozen=True)
class TokenInfo:
    """``GET /personal_access_tokens/self``, without the token itself."""

    id: int
    name: str
    scopes: tuple[str, ...]
    active: bool
    revoked: bool
    expires_at: date | None  # the token stops working at 00:00 UTC on this date


class GitLabError(Exception):
    """A GitLab call failed. ``status`` is the HTTP status (None for a network failure).

    The message says what was called and what to fix, never a value or the token.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class GitLabAuthError(GitLabError):
    """401: the token is missing, unknown, expired or revoked."""


class GitLabForbiddenError(GitLabError):
    """403: wrong token scope, or a role too low (group variables need Owner, projects Maintainer)."""


class GitLabNotFoundError(GitLabError):
    """404 about the group or project itself (not about a variable)."""


class GitLabRejectedError(GitLabError):
    """400/409: GitLab refused the request (e.g. a masked value it will not accept)."""


class GitLabOutcomeUnknownError(GitLabError):
    """A write got no answer (or a 5xx): it may have landed."""


class GitLab(Protocol):
    requests_sent: int  # HTTP requests sent so far, retries included
    def token_info(self) -> TokenInfo:
        """The token's own metadata; raises GitLabAuthError when it does not work."""

    def rotate_token(self, expires_at: date) -> tuple[TokenInfo, str]:
        """Rotate the token itself, once; returns the new metadata and the new token, which this
        client uses from then on. The old token stops working at once: store the new one first.
        Raises ``GitLabOutcomeUnknownError`` when the answer was lost (the rotation may have landed)."""

    def check_target(self, target: GitLabTarget, token: TokenInfo | None = None) -> None:
        """Raise a GitLabError naming the fix unless the target exists and the token may manage
        its variables (a read of the variables list needs the same role as a write). ``token``:
        the token's details as the run already read them (None: read them now)."""

    def get_variable(self, target: GitLabTarget, key: str) -> str | None:
        """The value of ``key`` at the target's environment scope, or None when it does not exist."""

    def put_variable(self, target: GitLabTarget, key: str, value: str) -> None:
        """Create or update ``key`` at the target's scope with the target's settings (protected,
        masked, raw, description), following the upsert of GITLAB_API.md, then read it back:
        raise a GitLabError unless the variable now holds ``value``."""

    def delete_variable(self, target: GitLabTarget, key: str) -> None:
        """Delete ``key`` at the target's scope; a variable that is already gone is not an error."""
