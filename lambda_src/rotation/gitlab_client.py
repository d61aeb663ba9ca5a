"""``GitLabClient``: the ``rotation.ports.GitLab`` Protocol over GitLab's REST API (``requests``).

Follows ../shared/GITLAB_API.md with as few requests as the rules allow: a target's variables are
read with one list request (``per_page`` 100, pages beyond), filtered to the target's environment
scope; a write is the upsert's second half, PUT when that read found the variable and POST when it
did not (``filter[environment_scope]`` on every PUT and DELETE; a PUT that finds the variable gone
posts, a POST that got no clear answer looks with a GET before it posts again, a POST answered
"has already been taken" puts). The read-back is the caller's: one list request after a target's
writes. Writes whose answer was lost are remembered (``late_write_wait``) so the run can re-read
what a late write may have changed. Every retry is the client's
own (``GitLabClient._send``, one loop like python-gitlab's ``http_request``, and one wait,
``GitLabClient._wait``): only the client knows that a POST must not be blindly repeated, and that
a 409 "Resource lock" is worth a retry while a 409 "multiple variables" is not.

No message, log line or return value contains a variable's value or the token.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from datetime import date
from typing import NoReturn
from urllib.parse import quote

import requests
from urllib3.exceptions import NewConnectionError

from .ports import (
    GitLabAuthError,
    GitLabError,
    GitLabForbiddenError,
    GitLabNotFoundError,
    GitLabOutcomeUnknownError,
    GitLabRejectedError,
    TokenInfo,
    Variable,
)
from .rate_budget import RateBudget
from .settings import GitLabTarget

logger = logging.getLogger(__name__)

Sleep = Callable[[float], None]

DEFAULT_TIMEOUT = (3.05, 20.0)  # (connect, read) seconds
PER_PAGE = 100  # GitLab's maximum: a target with up to 100 variables is read in one request
GATEWAY_STATUSES = frozenset({502, 503, 504})  # retried for IDEMPOTENT_METHODS; 429 for every method
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})
_VARIABLE_NOT_FOUND = frozenset({"404 Variable Not Found", "404 GroupVariable Not Found"})
_RESOURCE_LOCK = "409 Conflict: Resource lock"
NEW_TOKEN_NEEDED = "create a new personal access token with scope api and store it in the GitLab token secret"


class GitLabClient:
    """The rotation's GitLab: one token, one base URL (``https://gitlab.com`` or self-managed,
    without ``/api/v4``), any number of group and project targets.

    ``timeout`` is (connect, read) seconds for every call. ``retries`` bounds the retries of one
    call (429, 502/503/504, connection errors, 409 "Resource lock") and the attempts of an upsert
    after unclear answers; ``backoff`` is the first backoff in seconds (doubling, plus up to as
    much jitter); ``max_wait`` caps any single wait, including ``Retry-After``. ``ca_bundle`` is
    a PEM file to trust instead of the system CAs; it is passed as ``verify=`` on each request
    because ``REQUESTS_CA_BUNDLE`` would otherwise override a session-wide setting.

    ``max_requests_per_minute`` paces every request, retries included, through ``budget`` (a
    ``RateBudget`` on the ``monotonic`` clock, waiting with ``sleep``: the two must agree); a 429's
    wait then goes into the budget, so it holds back the next request and ``budget.delay_for``
    counts it. None: no budget (``budget`` is None).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_bundle: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.time,
        max_requests_per_minute: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an http(s) URL such as https://gitlab.com, got {base_url!r}")
        if not token:
            raise ValueError("token is empty: the GitLab token secret must hold a personal access token")
        self.base_url = base_url.rstrip("/")
        self._api = self.base_url + "/api/v4"
        self._verify: str | bool = ca_bundle or True
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self.requests_sent = 0  # every HTTP request, retries included (the GitLabRequests metric)
        self.budget = (
            None if max_requests_per_minute is None else RateBudget(max_requests_per_minute, clock=monotonic, sleep=sleep)
        )
        # A write sent at t whose answer was lost may still land until t + late_write_horizon:
        # GitLab was still working on it when the client gave up after the read timeout, and we
        # give it as long again to finish.
        self.late_write_horizon = 2 * timeout[1]
        self._unclear_writes: dict[str, float] = {}  # by target path: when the last unclear write was sent
        self._session = requests.Session()
        self._session.headers.update(
            {"PRIVATE-TOKEN": token, "Accept": "application/json", "User-Agent": "gitlab-key-rotation"}
        )

    def close(self) -> None:
        self._session.close()

    # tokens -------------------------------------------------------------------------------

    def token_info(self) -> TokenInfo:
        what = "reading the GitLab token's own details (GET /personal_access_tokens/self)"
        response = self._send("GET", "/personal_access_tokens/self", what)
        if response.status_code != 200:
            self._fail(response, what)
        return _token_info(self._json_object(response, what), what)

    def rotate_token(self, expires_at: date) -> tuple[TokenInfo, str]:
        """One POST, ``expires_at`` always sent (without it GitLab gives one week). A lost answer or
        a 5xx is ``GitLabOutcomeUnknownError``: the rotation may have landed, and the old token must
        not be used again to find out (reuse detection would revoke the new one)."""
        what = "rotating the GitLab token (POST /personal_access_tokens/self/rotate)"
        try:
            response = self._send(
                "POST", "/personal_access_tokens/self/rotate", what, body={"expires_at": expires_at.isoformat()}
            )
        except GitLabError as exc:
            raise GitLabOutcomeUnknownError(f"{what}: no answer ({exc})", None) from None
        if response.status_code >= 500:
            raise GitLabOutcomeUnknownError(f"{what}: GitLab answered {response.status_code}", response.status_code)
        if response.status_code != 200:
            self._fail(response, what)
        try:
            data = self._json_object(response, what)
        except GitLabError as exc:
            raise GitLabOutcomeUnknownError(str(exc), response.status_code) from None
        new_token = data.get("token")
        if not isinstance(new_token, str) or not new_token:
            raise GitLabOutcomeUnknownError(f"{what}: the answer holds no new token", response.status_code)
        self._session.headers["PRIVATE-TOKEN"] = new_token
        return _token_info(data, what), new_token

    # targets and variables ----------------------------------------------------------------

    def read_variables(self, target: GitLabTarget) -> dict[str, Variable]:
        what = f"reading the CI/CD variables of {target.label}"
        found: dict[str, Variable] = {}
        page = "1"
        while page:
            response = self._send("GET", _variables_path(target), what, params={"per_page": PER_PAGE, "page": page})
            if response.status_code != 200:
                self._fail(response, what, target)
            items = self._json(response, what)
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise GitLabError(f"{what}: GitLab's answer is not a list of variables", response.status_code)
            for item in items:
                if item.get("environment_scope", "*") == target.environment_scope and isinstance(item.get("key"), str):
                    found[item["key"]] = _variable(item)
            page = response.headers.get("X-Next-Page", "").strip()
        return found

    def write_variable(
        self,
        target: GitLabTarget,
        key: str,
        value: str,
        *,
        exists: bool,
        variable_type: str = "env_var",
        hidden: bool = False,
    ) -> None:
        what = f"writing {key} to {target.label}"
        attributes = {
            "value": value,
            "variable_type": variable_type,
            "protected": target.protected,
            "masked": (target.masked or hidden) and variable_type == "env_var",  # GitLab cannot mask a file
            "raw": target.raw,
            "description": target.description,
        }
        for attempt in range(self._retries + 1):
            if attempt:  # the last answer was unclear: look before sending again
                self._wait(attempt - 1)
                exists = self._read(target, key, what) is not None
            if self._update(target, key, attributes, what) if exists else self._create(target, key, attributes, hidden, what):
                return
        raise GitLabError(f"{what}: GitLab gave no clear answer to {self._retries + 1} attempts; re-run later", None)

    def delete_variable(self, target: GitLabTarget, key: str) -> None:
        what = f"deleting {key} of {target.label}"
        response = self._send(
            "DELETE", _variable_path(target, key), what, params=_scope_filter(target), written=target
        )
        if response.status_code not in (200, 204) and not _is_variable_404(response):
            self._fail(response, what, target)

    def late_write_wait(self, target: GitLabTarget) -> float | None:
        sent = self._unclear_writes.get(_container_path(target))
        return None if sent is None else max(0.0, sent + self.late_write_horizon - self._monotonic())

    def forget_late_writes(self, target: GitLabTarget) -> None:
        self._unclear_writes.pop(_container_path(target), None)

    def delay_for(self, requests: int) -> float:
        return 0.0 if self.budget is None else self.budget.delay_for(requests)

    def _read(self, target: GitLabTarget, key: str, what: str) -> dict | None:
        """The variable at the target's scope, or None when GitLab says "Variable Not Found"."""
        response = self._send("GET", _variable_path(target, key), what, params=_scope_filter(target))
        if _is_variable_404(response):
            return None
        if response.status_code != 200:
            self._fail(response, what, target)
        return self._json_object(response, what)

    def _update(self, target: GitLabTarget, key: str, attributes: dict, what: str) -> bool:
        """PUT at the target's scope; False when the variable vanished since it was read."""
        response = self._send(
            "PUT", _variable_path(target, key), what, params=_scope_filter(target), body=attributes, written=target
        )
        if _is_variable_404(response):
            return False
        if response.status_code != 200:
            self._fail(response, what, target, attributes["value"])
        scope = self._json_object(response, what).get("environment_scope")
        if scope != target.environment_scope:
            raise GitLabRejectedError(
                f"{what}: GitLab updated {key} at scope {scope!r} instead of {target.environment_scope!r} (a group "
                "updates some variable with the key when the filtered one is gone): restore "
                f"{key} at scope {scope!r} of {target.kind} {target.id} by hand",
                response.status_code,
            )
        return True

    def _create(self, target: GitLabTarget, key: str, attributes: dict, hidden: bool, what: str) -> bool:
        """POST (``masked_and_hidden`` with ``hidden``: GitLab takes it only at creation); False
        when the answer is unclear (none, or 5xx): the caller reads again."""
        body = {"key": key, "environment_scope": target.environment_scope, **attributes}
        if hidden:
            body["masked_and_hidden"] = True
        try:
            response = self._send("POST", _variables_path(target), what, body=body, written=target)
        except GitLabError:
            logger.warning("%s: no answer to the create; reading it again before retrying", what)
            return False
        if response.status_code >= 500:
            logger.warning("%s: answer %s to the create; reading it again before retrying", what, response.status_code)
            return False
        if response.status_code == 400 and _already_taken(response):
            existing = self._read(target, key, what)
            if existing is None:
                raise GitLabRejectedError(
                    f"{what}: GitLab says {key} already exists, yet no {key} has scope {target.environment_scope!r}: "
                    "the group ignores environment scopes (group variables on GitLab Free); use environment_scope '*' "
                    "for this target, or a project target",
                    400,
                )
            return self._update(target, key, attributes, what)
        if response.status_code != 201:
            self._fail(response, what, target, attributes["value"])
        scope = self._json_object(response, what).get("environment_scope")
        if scope != target.environment_scope:
            undo = self._send(
                "DELETE", _variable_path(target, key), what, params={"filter[environment_scope]": scope}, written=target
            )
            cleanup = "it was deleted again" if undo.status_code == 204 else f"delete {key} at scope {scope!r} by hand"
            raise GitLabRejectedError(
                f"{what}: GitLab created {key} at scope {scope!r} instead of {target.environment_scope!r} (the group "
                f"ignores environment scopes: group variables on GitLab Free), {cleanup}; use environment_scope '*' "
                "for this target, or a project target",
                201,
            )
        return True

    # HTTP -----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        written: GitLabTarget | None = None,
    ) -> requests.Response:
        """One call and its retries, at most ``retries`` of them, each after ``_wait``:

        - 429, for every method (POST included: GitLab refused it before doing anything), and a
          connection that could not be made (GitLab saw nothing);
        - 502/503/504 and a lost answer (read timeout, dropped connection) for GET, PUT and DELETE
          only: a POST that got no clear answer may have landed, so its caller looks before it
          posts again;
        - a 409 "Resource lock" (another write to the same resource), but no other 409.

        TLS and other local failures are not retried. Returns the last answer; a call that gets
        no answer at all raises ``GitLabError`` with ``status`` None.

        ``written``: the target a write changes. Each attempt of it that left and got no clear
        answer (no answer, or 502/503/504 from a gateway while GitLab may still be at work) is
        remembered for ``late_write_wait``."""
        attempt = 0
        while True:
            final = attempt == self._retries
            if self.budget is not None:
                self.budget.take()
            self.requests_sent += 1
            sent_at = self._monotonic()
            try:
                response = self._session.request(
                    method,
                    self._api + path,
                    params=params,
                    json=body,
                    timeout=self._timeout,
                    verify=self._verify,
                    allow_redirects=False,  # requests would send PRIVATE-TOKEN to wherever a redirect points
                )
            except requests.RequestException as error:
                if written is not None and _left(error):
                    self._unclear_writes[_container_path(written)] = sent_at
                if final or not _may_retry_failure(method, error):
                    raise GitLabError(
                        f"{what}: no answer from GitLab at {self.base_url} ({type(error).__name__}); check "
                        "gitlab.url, the network path to GitLab and that it is up",
                        None,
                    ) from None
                logger.warning("%s: no answer from GitLab (%s); retrying", what, type(error).__name__)
                self._wait(attempt)
            else:
                if written is not None and response.status_code in GATEWAY_STATUSES:
                    self._unclear_writes[_container_path(written)] = sent_at
                if final or not _may_retry_answer(method, response):
                    return response
                logger.warning("%s: GitLab answered %s; retrying", what, response.status_code)
                response.close()
                self._wait(attempt, response)
            attempt += 1

    def _wait(self, attempt: int, response: requests.Response | None = None) -> None:
        """The one wait before a retry: what the answer asks for (``Retry-After``; on a 429
        without it, ``RateLimit-Reset``), else ``backoff * 2**attempt`` plus up to ``backoff`` of
        jitter; never more than ``max_wait``. With a budget, a 429's wait is the budget's pause
        (its next ``take`` sleeps it)."""
        asked = None if response is None else _asked_wait(response, self._clock())
        seconds = self._backoff * 2**attempt + random.uniform(0, self._backoff) if asked is None else asked
        if self.budget is not None and response is not None and response.status_code == 429:
            self.budget.pause_for(min(self._max_wait, seconds))
        else:
            self._sleep(min(self._max_wait, seconds))

    def _json_object(self, response: requests.Response, what: str) -> dict:
        data = self._json(response, what)
        if not isinstance(data, dict):
            raise GitLabError(f"{what}: GitLab's answer is not the expected JSON object", response.status_code)
        return data

    def _json(self, response: requests.Response, what: str) -> object:
        data = _json_or_none(response)
        if data is None:
            raise GitLabError(
                f"{what}: GitLab answered {response.status_code} without JSON; "
                f"check that gitlab.url ({self.base_url}) is the GitLab base URL",
                response.status_code,
            )
        return data

    def _fail(
        self, response: requests.Response, what: str, target: GitLabTarget | None = None, value: str | None = None
    ) -> NoReturn:
        """Raise the ``GitLabError`` subclass for an unwanted answer, saying what to fix."""
        status = response.status_code
        body = _json_or_none(response)
        detail = _detail(response, body, secrets=(value, self._session.headers.get("PRIVATE-TOKEN")))
        if 300 <= status < 400:
            raise GitLabError(
                f"{what}: GitLab redirected ({status}) to {response.headers.get('Location')!r}; the token is "
                f"never sent after a redirect: set gitlab.url to the address GitLab answers on (now {self.base_url})",
                status,
            )
        if status == 401:
            raise GitLabAuthError(f"{what}: {_auth_problem(body)}", status)
        if status == 403 and isinstance(body, dict) and body.get("error") == "insufficient_scope":
            raise GitLabForbiddenError(
                f"{what}: the token's scopes are not enough (GitLab wants {body.get('scope', 'api')!r}): "
                "create a token with scope api and store it in the GitLab token secret",
                status,
            )
        if status == 403:
            subject = f"{target.kind} {target.id}" if target else "this resource"
            role = "Owner" if target and target.kind == "group" else "Maintainer (or Owner)"
            raise GitLabForbiddenError(
                f"{what}: 403 Forbidden: the token's user needs the {role} role on {subject} to manage its CI/CD "
                "variables (a Developer cannot): raise its role, or use a token of a user that has it",
                status,
            )
        if status == 404 and target and _message(response) in ("404 Project Not Found", "404 Group Not Found"):
            raise GitLabNotFoundError(
                f"{what}: {target.kind} {target.id} does not exist on {self.base_url}, or the token's user cannot see "
                "it: check the numeric id or full path, and that the user is a member",
                status,
            )
        if status == 404:
            raise GitLabNotFoundError(
                f"{what}: GitLab has no such API route ({detail}): check gitlab.url ({self.base_url}, without /api/v4) "
                "and the target's id or full path",
                status,
            )
        if status in (400, 409, 422):
            raise GitLabRejectedError(f"{what}: GitLab refused it ({status}: {detail}){_rejection_hint(body)}", status)
        if status == 429:
            raise GitLabError(
                f"{what}: GitLab still rate-limits after {self._retries} retries (429); re-run later", status
            )
        if status >= 500:
            raise GitLabError(f"{what}: GitLab answered {status} after {self._retries} retries; re-run later", status)
        raise GitLabError(f"{what}: unexpected answer {status} ({detail})", status)


# helpers --------------------------------------------------------------------------------------


def _may_retry_failure(method: str, error: requests.RequestException) -> bool:
    if isinstance(error, requests.exceptions.SSLError):
        return False  # a certificate problem stays one
    if not _left(error):
        return True  # GitLab saw nothing
    return method in IDEMPOTENT_METHODS and isinstance(error, (requests.ConnectionError, requests.Timeout))


def _left(error: requests.RequestException) -> bool:
    """False when the request never reached GitLab: no connection could be made."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return not (isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError))


def _may_retry_answer(method: str, response: requests.Response) -> bool:
    status = response.status_code
    if status == 429:
        return True
    if status == 409:
        return _message(response) == _RESOURCE_LOCK
    return status in GATEWAY_STATUSES and method in IDEMPOTENT_METHODS


def _asked_wait(response: requests.Response, now: float) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date), else on a 429 from
    ``RateLimit-Reset`` (epoch seconds); None when the answer asks nothing readable."""
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    moment = email.utils.parsedate_tz(retry_after) if retry_after else None
    if moment is not None:
        return max(0.0, email.utils.mktime_tz(moment) - now)
    reset = response.headers.get("RateLimit-Reset", "").strip()
    if response.status_code == 429 and reset.isdigit():
        return max(0.0, int(reset) - now)
    return None


def _container_path(target: GitLabTarget) -> str:
    return f"/{target.kind}s/{quote(target.id, safe='')}"


def _variables_path(target: GitLabTarget) -> str:
    return _container_path(target) + "/variables"


def _variable_path(target: GitLabTarget, key: str) -> str:
    return f"{_variables_path(target)}/{quote(key, safe='')}"


def _scope_filter(target: GitLabTarget) -> dict[str, str]:
    return {"filter[environment_scope]": target.environment_scope}


def _variable(item: dict) -> Variable:
    value = item.get("value")
    return Variable(
        value if isinstance(value, str) else None,
        hidden=bool(item.get("hidden")),
        variable_type=str(item.get("variable_type") or "env_var"),
    )


def _token_info(data: dict, what: str) -> TokenInfo:
    try:
        expires_at = data.get("expires_at")
        return TokenInfo(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            active=bool(data.get("active")),
            revoked=bool(data.get("revoked")),
            expires_at=date.fromisoformat(expires_at) if expires_at else None,
        )
    except (KeyError, TypeError, ValueError):
        raise GitLabError(f"{what}: the answer is not a personal access token's details", None) from None


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: requests.Response) -> object:
    body = _json_or_none(response)
    return body.get("message") if isinstance(body, dict) else None


def _is_variable_404(response: requests.Response) -> bool:
    return response.status_code == 404 and _message(response) in _VARIABLE_NOT_FOUND


def _already_taken(response: requests.Response) -> bool:
    message = _message(response)
    keys = message.get("key") if isinstance(message, dict) else None
    return isinstance(keys, list) and any(isinstance(m, str) and m.endswith("has already been taken") for m in keys)


def _auth_problem(body: object) -> str:
    description = body.get("error_description", "") if isinstance(body, dict) else ""
    if "expired" in description:
        return f"the GitLab token has expired: {NEW_TOKEN_NEEDED}"
    if "revoked" in description:
        return f"the GitLab token was revoked: {NEW_TOKEN_NEEDED}"
    return (
        "GitLab does not know the token (401 Unauthorized): check that the GitLab token secret holds a personal access "
        "token of this GitLab instance (gitlab.url)"
    )


def _detail(response: requests.Response, body: object, secrets: tuple[str | None, ...]) -> str:
    """GitLab's own words, short, with anything secret blanked out; never a whole HTML page."""
    if isinstance(body, dict):
        parts = []
        for name in ("message", "error", "error_description"):
            item = body.get(name)
            if isinstance(item, dict):
                parts.extend(
                    f"{field} {', '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
                    for field, msgs in item.items()
                )
            elif item is not None:
                parts.append(str(item))
        text = "; ".join(parts) or "no message"
    elif response.headers.get("Content-Type", "").startswith("text/plain") and len(response.text) <= 200:
        text = response.text.strip() or "empty answer"
    else:
        text = "answer is not JSON"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


def _rejection_hint(body: object) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, dict) and "is invalid" in (message.get("value") or []):
        return (
            ": GitLab cannot mask the value; masked values need 8+ characters of a-z A-Z 0-9 _ + = / @ : . ~ - "
            "(with raw=true: 8+ characters without spaces)"
        )
    if isinstance(message, str) and message.startswith("There are multiple variables"):
        return (
            ": several variables have this key; the client always filters by scope, so this GitLab ignores the filter"
        )
    return ""
