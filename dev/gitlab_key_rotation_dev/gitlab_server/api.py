"""GitLab's REST API over a ``World``: routing, authentication, scopes, roles, pagination.

``handle`` turns one parsed request into one ``Response``; it knows nothing about sockets or
injected faults. The caller holds the world's lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlencode

from gitlab_key_rotation_dev.gitlab_server import responses, variables
from gitlab_key_rotation_dev.gitlab_server.model import GUEST, MAINTAINER, OWNER, Container, Group, Token, User, World
from gitlab_key_rotation_dev.gitlab_server.responses import ApiError, Response

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
TOTALS_LIMIT = 10_000  # GitLab omits X-Total and X-Total-Pages beyond this many records
ROTATED_TOKEN_LIFETIME = timedelta(days=7)
MAX_TOKEN_LIFETIME = timedelta(days=365)

READ_SCOPES = ("api", "read_api")
WRITE_SCOPES = ("api",)
ROTATE_SCOPES = ("api", "self_rotate")


@dataclass
class Request:
    method: str
    path: str  # raw, still URL-encoded, without the query string
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive lookups expected
    body: bytes = b""


@dataclass
class _Call:
    """One authenticated request, with its parameters merged the way Grape merges them."""

    request: Request
    world: World
    user: User
    token: Token
    params: dict[str, object]
    filter_given: bool
    filter_scope: str | None


_Endpoint = Callable[[_Call, tuple[str, ...], str], Response]


def handle(world: World, request: Request, base_url: str) -> Response:
    """Answer ``request`` as GitLab would; ``base_url`` is used for pagination links."""
    try:
        endpoint, scopes, groups = _route(request.method, request.path)
        token = _authenticate(world, request, scopes)
        params, filter_given, filter_scope = _parameters(request)
        call = _Call(request, world, world.users[token.user_id], token, params, filter_given, filter_scope)
        return endpoint(call, groups, base_url)
    except ApiError as error:
        return error.response


# routing ----------------------------------------------------------------------------------


def _token_self(call: _Call, _groups: tuple[str, ...], _base: str) -> Response:
    return Response(200, call.token.as_json(call.world.today()))


def _token_rotate(call: _Call, _groups: tuple[str, ...], _base: str) -> Response:
    world, old = call.world, call.token
    today = world.today()
    expires_at = _date_param(call.params, "expires_at") or today + ROTATED_TOKEN_LIFETIME
    if expires_at <= today:
        raise responses.bad_request("Expiration date must be in the future")
    if expires_at > today + MAX_TOKEN_LIFETIME:
        raise responses.bad_request(f"Expiration date must be before {(today + MAX_TOKEN_LIFETIME).isoformat()}")
    old.revoked = True
    old.rotated = True
    secret = world.new_token_string()
    new = Token(
        id=world.next_id("token"),
        user_id=old.user_id,
        name=old.name,
        scopes=old.scopes,
        expires_at=expires_at,
        created_at=datetime.now(UTC),
        previous_id=old.id,
    )
    world.tokens[secret] = new
    return Response(200, {**new.as_json(today), "token": secret})


def _list_variables(call: _Call, groups: tuple[str, ...], base_url: str) -> Response:
    container = _container(call, groups)
    page = _positive_int(call.params, "page", 1)
    per_page = min(_positive_int(call.params, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    records = container.variables
    start = (page - 1) * per_page
    body = [v.as_json() for v in records[start : start + per_page]]
    return Response(200, body, _pagination_headers(call.request, base_url, page, per_page, len(records)))


def _create_variable(call: _Call, groups: tuple[str, ...], _base: str) -> Response:
    container = _container(call, groups)
    return Response(201, variables.create(call.world, container, call.params).as_json())


def _get_variable(call: _Call, groups: tuple[str, ...], _base: str) -> Response:
    container = _container(call, groups)
    return Response(200, variables.found_or_404(container, unquote(groups[2]), call.filter_scope).as_json())


def _update_variable(call: _Call, groups: tuple[str, ...], _base: str) -> Response:
    container = _container(call, groups)
    variable = variables.update(container, unquote(groups[2]), call.filter_scope, call.filter_given, call.params)
    return Response(200, variable.as_json())


def _delete_variable(call: _Call, groups: tuple[str, ...], _base: str) -> Response:
    container = _container(call, groups)
    variables.delete(container, unquote(groups[2]), call.filter_scope)
    return Response(204)


_CONTAINER = r"/api/v4/(groups|projects)/([^/]+)/variables"
# (route kind, path, methods): the kind names the route in the server's request counts
_ROUTES: tuple[tuple[str, re.Pattern[str], dict[str, tuple[_Endpoint, tuple[str, ...] | None]]], ...] = (
    ("token", re.compile(r"/api/v4/personal_access_tokens/self"), {"GET": (_token_self, None)}),
    (
        "token_rotate",
        re.compile(r"/api/v4/personal_access_tokens/self/rotate"),
        {"POST": (_token_rotate, ROTATE_SCOPES)},
    ),
    (
        "variables",
        re.compile(_CONTAINER),
        {"GET": (_list_variables, READ_SCOPES), "POST": (_create_variable, WRITE_SCOPES)},
    ),
    (
        "variable",
        re.compile(_CONTAINER + r"/([^/]+)"),
        {
            "GET": (_get_variable, READ_SCOPES),
            "PUT": (_update_variable, WRITE_SCOPES),
            "DELETE": (_delete_variable, WRITE_SCOPES),
        },
    ),
)

def route_kind(path: str) -> str | None:
    """Which route the path is (``"variables"``: a list or create, ``"variable"``: one
    variable, ``"token"``, ``"token_rotate"``), None when it matches none."""
    return next((kind for kind, pattern, _ in _ROUTES if pattern.fullmatch(path)), None)


def _route(method: str, path: str) -> tuple[_Endpoint, tuple[str, ...] | None, tuple[str, ...]]:
    """The endpoint, the token scopes it accepts (None: any) and the path's captured parts."""
    for _kind, pattern, methods in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            if method not in methods:
                raise ApiError(405, {"error": "405 Not Allowed"})
            endpoint, scopes = methods[method]
            return endpoint, scopes, match.groups()
    raise responses.route_not_found()


# authentication and authorization ---------------------------------------------------------


def _revoke_family(world: World, reused: Token) -> None:
    """Reuse detection (GitLab 16.3+): a token that was already rotated is used again, so it may
    have leaked; every token of its rotation chain is revoked, the active successor included."""
    by_id = {t.id: t for t in world.tokens.values()}
    family = {reused.id}
    while True:
        grown = family | {t.id for t in by_id.values() if t.previous_id in family}
        grown |= {by_id[i].previous_id for i in family if by_id[i].previous_id in by_id}
        if grown == family:
            break
        family = grown
    for token_id in family:
        by_id[token_id].revoked = True


def presented_token(world: World, request: Request) -> Token | None:
    """The token the request carries (``PRIVATE-TOKEN``, else ``Authorization: Bearer``),
    whatever its state (expired, revoked); None when it carries none this server knows."""
    secret = request.headers.get("PRIVATE-TOKEN")
    authorization = request.headers.get("Authorization") or ""
    if not secret and authorization.startswith("Bearer "):
        secret = authorization.removeprefix("Bearer ").strip()
    return world.tokens.get(secret or "")


def _authenticate(world: World, request: Request, scopes: tuple[str, ...] | None) -> Token:
    token = presented_token(world, request)
    if token is None:
        raise responses.unauthorized()
    if token.expired(world.today()):
        raise responses.invalid_token(responses.EXPIRED_DESCRIPTION)
    if token.revoked:
        if token.rotated:
            _revoke_family(world, token)
        raise responses.invalid_token(responses.REVOKED_DESCRIPTION)
    if scopes is not None and not set(scopes) & set(token.scopes):
        raise responses.insufficient_scope(scopes)
    token.last_used_at = datetime.now(UTC)
    return token


def _container(call: _Call, groups: tuple[str, ...]) -> Container:
    """The group or project of the path; 404 when missing or invisible to the user, 403 when
    the user's role may not manage its variables (groups: Owner, projects: Maintainer)."""
    kind = "group" if groups[0] == "groups" else "project"
    container = call.world.find(kind, unquote(groups[1]))
    level = call.world.access_level(call.user, container) if container else 0
    if container is None or level < GUEST:
        raise responses.not_found("Group" if kind == "group" else "Project")
    if level < (OWNER if isinstance(container, Group) else MAINTAINER):
        raise responses.forbidden()
    return container


# parameters -------------------------------------------------------------------------------


def _parameters(request: Request) -> tuple[dict[str, object], bool, str | None]:
    """Query and body merged (the body wins), plus ``filter[environment_scope]`` from either."""
    params: dict[str, object] = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if request.body and content_type == "application/json":
        try:
            body = json.loads(request.body)
        except ValueError:
            raise responses.bad_parameter("The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise responses.bad_parameter("The request body must be a JSON object")
        params.update(body)
    elif request.body:
        params.update(
            {k: v[0] for k, v in parse_qs(request.body.decode(errors="replace"), keep_blank_values=True).items()}
        )
    nested = params.pop("filter", None)
    flat = params.pop("filter[environment_scope]", None)
    filter_given = nested is not None or flat is not None
    scope = nested.get("environment_scope") if isinstance(nested, dict) else flat
    return params, filter_given, scope if isinstance(scope, str) else None


def _positive_int(params: Mapping[str, object], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise responses.bad_parameter(f"{name} is invalid") from None
    if value < 1:
        raise responses.bad_parameter(f"{name} does not have a valid value")
    return value


def _date_param(params: Mapping[str, object], name: str) -> date | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise responses.bad_parameter(f"{name} is invalid") from None


def _pagination_headers(request: Request, base_url: str, page: int, per_page: int, total: int) -> dict[str, str]:
    pages = max(1, -(-total // per_page))
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "X-Next-Page": str(page + 1) if page < pages else "",
    }
    if total <= TOTALS_LIMIT:
        headers["X-Total"] = str(total)
        headers["X-Total-Pages"] = str(pages)
    query = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}

    def link(to_page: int, rel: str) -> str:
        return f'<{base_url}{request.path}?{urlencode({**query, "page": to_page, "per_page": per_page})}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < pages:
        links.append(link(page + 1, "next"))
    links.append(link(1, "first"))
    if total <= TOTALS_LIMIT:
        links.append(link(pages, "last"))
    headers["Link"] = ", ".join(links)
    return headers
