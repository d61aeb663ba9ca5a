"""HTTP answers of the test server, and GitLab's exact error bodies (GITLAB_API.md, "Errors")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus

SCOPE_ERROR_DESCRIPTION = "The request requires higher privileges than provided by the access token."
EXPIRED_DESCRIPTION = "Token is expired. You can either do re-authorization or token refresh."
REVOKED_DESCRIPTION = "Token was revoked. You have to re-authorize from the user."
AMBIGUOUS_MESSAGE = "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'"
RATE_LIMIT_MESSAGE = "This endpoint has been requested too many times. Try again later."
HIDDEN_MESSAGE = "Only new variables can be set as masked and hidden."
VISIBILITY_MESSAGE = "The visibility setting cannot be changed for masked and hidden variables."
_OAUTH_REALM = 'Bearer realm="Protected by OAuth 2.0"'


@dataclass
class Response:
    """What the server sends: ``body`` is JSON-encoded unless it is ``str`` (text/plain) or
    ``bytes`` (sent as they are, text/html), or None (no body)."""

    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", None
        if isinstance(self.body, bytes):
            return self.body, "text/html; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


class ApiError(Exception):
    """Raised anywhere in the API layer to answer with an error instead of a result."""

    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {body!r}")
        self.response = Response(status, body, headers or {})


def route_not_found() -> ApiError:
    """No route matched, e.g. a full path whose ``/`` was not URL-encoded."""
    return ApiError(404, {"error": "404 Not Found"})


def not_found(what: str) -> ApiError:
    """``what``: ``Project``, ``Group``, ``Variable`` or ``GroupVariable``."""
    return ApiError(404, {"message": f"404 {what} Not Found"})


def unauthorized() -> ApiError:
    return ApiError(401, {"message": "401 Unauthorized"})


def invalid_token(description: str) -> ApiError:
    return ApiError(
        401,
        {"error": "invalid_token", "error_description": description},
        {"WWW-Authenticate": f'{_OAUTH_REALM}, error="invalid_token", error_description="{description}"'},
    )


def insufficient_scope(scopes: tuple[str, ...]) -> ApiError:
    scope = " ".join(scopes)
    return ApiError(
        403,
        {"error": "insufficient_scope", "error_description": SCOPE_ERROR_DESCRIPTION, "scope": scope},
        {"WWW-Authenticate": f'{_OAUTH_REALM}, error="insufficient_scope", scope="{scope}"'},
    )


def forbidden() -> ApiError:
    return ApiError(403, {"message": "403 Forbidden"})


def bad_parameter(message: str) -> ApiError:
    """Grape's parameter validation: ``{"error": "key is missing"}``."""
    return ApiError(400, {"error": message})


def validation_failed(errors: dict[str, list[str]]) -> ApiError:
    """The model refused the record: ``{"message": {"value": ["is invalid"]}}``."""
    return ApiError(400, {"message": errors})


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"message": f"400 Bad request - {message}"})


def conflict(message: str) -> ApiError:
    return ApiError(409, {"message": message})


def default_fault_body(status: int) -> object:
    """The body GitLab (or the nginx in front of it) sends with an error of this status."""
    if status == 429:
        return {"message": {"error": RATE_LIMIT_MESSAGE}}
    if status == 409:
        return {"message": "409 Conflict: Resource lock"}
    if status in (502, 503, 504):
        reason = HTTPStatus(status).phrase
        return f"<html><body><h1>{status} {reason}</h1></body></html>".encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return {"message": f"{status} {reason}"}
