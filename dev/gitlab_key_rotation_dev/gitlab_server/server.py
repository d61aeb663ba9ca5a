"""``GitLabServer``: the project's GitLab API stand-in, served over real HTTP(S) on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs

import trustme

from gitlab_key_rotation_dev.gitlab_server import api
from gitlab_key_rotation_dev.gitlab_server.faults import Fault, LoggedRequest, first_claim
from gitlab_key_rotation_dev.gitlab_server.model import ACCESS_LEVELS, Container, Group, Kind, Plan, Project, Token, User, Variable, World
from gitlab_key_rotation_dev.gitlab_server.rate_limit import RateLimit
from gitlab_key_rotation_dev.gitlab_server.responses import Response

_LOGGED_QUERY_PARAMETERS = ("filter[environment_scope]", "page", "per_page")


class Where(Protocol):
    """A group or project: a ``Group``/``Project`` of this server, or anything else with a
    ``kind`` (``"group"``/``"project"``) and an ``id`` (numeric id or full path), such as the
    rotation settings' ``GitLabTarget``."""

    @property
    def kind(self) -> str: ...

    @property
    def id(self) -> int | str: ...


class GitLabServer:
    """A GitLab API server (the parts GITLAB_API.md describes) on an ephemeral loopback port.

    Use it as a context manager, or call ``start()`` and ``stop()``::

        with GitLabServer(tls=True) as gitlab:
            bot = gitlab.add_user("rotation-bot")
            token = gitlab.add_token(bot, scopes=("api",), expires_at=date(2031, 1, 1))
            group = gitlab.add_group("platform")
            project = gitlab.add_project("platform/deployer")
            gitlab.add_member(group, bot, OWNER)  # inherited by the project
            gitlab.inject(method="PUT", path=r"/variables/", status=503, nth=2)
            ...  # requests.get(gitlab.url + "/api/v4/...", verify=gitlab.ca_bundle, ...)
            assert gitlab.variable(project, "AWS_ACCESS_KEY_ID").value == "AKIA..."

    Seeding and inspection methods work on the state directly (no HTTP, no validation, no
    faults); the records they return are copies. Every HTTP request is recorded in
    ``requests`` (method, path, route, token id, status; never a value or a token), which
    ``request_counts``, ``requests_by_token`` and ``throttled`` count. ``limit_rate`` puts
    GitLab's per-token rate limit in front of the API.
    """

    def __init__(self, *, tls: bool = False):
        self.tls = tls
        self._world = World()
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._rate_limit: RateLimit | None = None
        self._in_flight = 0  # requests received whose effect (and answer) is still to come
        self._idle = threading.Condition(self._lock)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tempdir: str | None = None
        self._ca_bundle: str | None = None
        self._base_url = ""  # kept after stop() for answers still in flight

    # lifecycle --------------------------------------------------------------------------

    def start(self) -> GitLabServer:
        httpd = _HTTPServer(self)
        if self.tls:
            self._tempdir = tempfile.mkdtemp(prefix="gitlab-server-")
            authority = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            self._ca_bundle = str(Path(self._tempdir, "ca.pem"))
            authority.cert_pem.write_to_path(self._ca_bundle)
            # the handshake happens in the connection's thread, not in the accept loop
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._base_url = f"{'https' if self.tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="gitlab-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and delete the CA bundle. Idempotent."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def __enter__(self) -> GitLabServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give a client, e.g. ``https://127.0.0.1:41234`` (no ``/api/v4``)."""
        if self._httpd is None:
            raise RuntimeError("the GitLab server is not running: call start() or use it as a context manager")
        return self._base_url

    @property
    def ca_bundle(self) -> str | None:
        """Path of the PEM file of the test CA that signed the server's certificate (TLS only);
        pass it to clients as ``verify=``."""
        return self._ca_bundle

    @property
    def today(self) -> date:
        """The server's date (UTC), which decides token expiry; assign a date to move it."""
        return self._world.today()

    @today.setter
    def today(self, value: date | None) -> None:
        self._world.today_override = value

    # seeding and inspection -------------------------------------------------------------

    def add_user(self, username: str) -> User:
        with self._lock:
            if self._world.user_named(username):
                raise ValueError(f"user {username!r} already exists")
            user = User(self._world.next_id("user"), username)
            self._world.users[user.id] = user
            return dataclasses.replace(user)

    def add_token(
        self,
        user: User | str,
        *,
        scopes: Iterable[str] = ("api",),
        expires_at: date | None = None,
        name: str = "gitlab-key-rotation",
        revoked: bool = False,
    ) -> str:
        """Create a personal access token of ``user`` and return the token string.
        ``expires_at`` None makes a token that never expires."""
        with self._lock:
            owner = self._user(user)
            secret = self._world.new_token_string()
            self._world.tokens[secret] = Token(
                id=self._world.next_id("token"),
                user_id=owner.id,
                name=name,
                scopes=tuple(scopes),
                expires_at=expires_at,
                created_at=datetime.now(UTC),
                revoked=revoked,
            )
            return secret

    def token(self, secret: str) -> Token:
        """The record of a token (e.g. to check that a rotated token was revoked)."""
        with self._lock:
            if secret not in self._world.tokens:
                raise LookupError("no such token on this server")
            return dataclasses.replace(self._world.tokens[secret])

    def tokens_of(self, user: User | str) -> list[Token]:
        """Every token of the user, oldest first, revoked ones included."""
        with self._lock:
            owner = self._user(user)
            return [dataclasses.replace(t) for t in self._world.tokens.values() if t.user_id == owner.id]

    def revoke_token(self, secret: str) -> None:
        with self._lock:
            if secret not in self._world.tokens:
                raise LookupError("no such token on this server")
            self._world.tokens[secret].revoked = True

    def add_group(self, full_path: str, *, plan: Plan = "premium") -> Group:
        """Create a group; a nested path (``"platform/team"``) needs its parent group first.
        ``plan`` matters on top-level groups: on ``"free"`` the environment scope of group
        variables is dropped silently, as GitLab does."""
        with self._lock:
            parent = self._parent(full_path)
            group = Group(self._world.next_id("group"), full_path, parent=parent, plan=plan)
            self._world.groups[group.id] = group
            return dataclasses.replace(group)

    def add_project(self, full_path: str) -> Project:
        """Create a project in an existing group (``"platform/team/deployer"``)."""
        with self._lock:
            namespace = self._parent(full_path)
            if namespace is None:
                raise ValueError(f"project {full_path!r} needs a group: projects live in a group here")
            project = Project(self._world.next_id("project"), full_path, namespace=namespace)
            self._world.projects[project.id] = project
            return dataclasses.replace(project)

    def add_member(self, where: Where, user: User | str, access_level: int) -> None:
        """Give ``user`` a role (``GUEST``..``OWNER``, 10..50) here; subgroups and projects
        inherit it. Group variables need ``OWNER``, project variables ``MAINTAINER``."""
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f"access_level must be one of {ACCESS_LEVELS}, got {access_level!r}")
        with self._lock:
            self._container(where).members[self._user(user).id] = access_level

    def set_variable(
        self,
        where: Where,
        key: str,
        value: str,
        *,
        environment_scope: str = "*",
        protected: bool = False,
        masked: bool = False,
        raw: bool = False,
        hidden: bool = False,
        description: str | None = None,
        variable_type: str = "env_var",
    ) -> Variable:
        """Create or replace the variable ``key`` at ``environment_scope``, unvalidated (so a
        test can seed states GitLab's API would refuse)."""
        with self._lock:
            container = self._container(where)
            variable = Variable(
                key=key,
                value=value,
                environment_scope=environment_scope,
                protected=protected,
                masked=masked or hidden,
                hidden=hidden,
                raw=raw,
                variable_type=variable_type,
                description=description,
                id=self._world.next_id("variable"),
            )
            existing = self._find(container, key, environment_scope)
            if existing is None:
                container.variables.append(variable)
            else:
                variable.id = existing.id
                container.variables[container.variables.index(existing)] = variable
            return dataclasses.replace(variable)

    def variables(self, where: Where) -> list[Variable]:
        """Every variable here, oldest first."""
        with self._lock:
            return [dataclasses.replace(v) for v in self._container(where).variables]

    def variable(self, where: Where, key: str, environment_scope: str = "*") -> Variable | None:
        with self._lock:
            found = self._find(self._container(where), key, environment_scope)
            return dataclasses.replace(found) if found else None

    def delete_variable(self, where: Where, key: str, environment_scope: str = "*") -> None:
        with self._lock:
            container = self._container(where)
            found = self._find(container, key, environment_scope)
            if found is None:
                raise LookupError(
                    f"no variable {key} at scope {environment_scope!r} in {container.kind} {container.full_path}"
                )
            container.variables.remove(found)

    # faults and the request log ---------------------------------------------------------

    def inject(
        self,
        *,
        method: str | None = None,
        path: str = "",
        status: int | None = None,
        body: object = None,
        headers: dict[str, str] | None = None,
        nth: int = 1,
        times: int | None = 1,
        delay: float = 0.0,
        after_effect: bool = False,
        disconnect: bool = False,
    ) -> Fault:
        """Answer some requests differently. The rule counts requests whose method is
        ``method`` (None: any) and whose raw path matches the regex ``path`` (``re.search``,
        so ``path=r"/variables/AWS_SECRET"`` works), and fires on the ``nth`` of them and the
        ``times - 1`` after it (``times=None``: forever). When it fires:

        - ``after_effect=False``: the request has no effect; ``after_effect=True``: it takes
          effect first (a write that landed, whose answer is then lost or replaced);
        - then the server waits ``delay`` seconds (longer than the client's read timeout: a
          timeout);
        - then it drops the connection without an answer (``disconnect=True``), or answers
          ``status`` with ``body`` (dict/list: JSON, str: text/plain, bytes: text/html, None:
          GitLab's usual body for that status) and ``headers``; with ``status=None`` the
          request is handled only now (a write takes effect after the delay, on top of what
          was written meanwhile: a late write, see ``late_write()``) and gets its real answer.

        When several rules fire on one request the oldest wins. ``rate_limited()`` in
        ``faults`` builds GitLab's 429s. A request refused by ``limit_rate`` never reaches the
        rules (it is not counted by them). Returns the rule; its ``fired`` counts its answers.
        """
        if nth < 1 or (times is not None and times < 1):
            raise ValueError(f"nth and times must be at least 1, got nth={nth} times={times}")
        if status is None and body is not None:
            raise ValueError("a body needs a status")
        if status is None and not delay and not disconnect:
            raise ValueError("a fault needs a status, a delay or disconnect=True")
        fault = Fault(
            method=method.upper() if method else None,
            path=re.compile(path),
            status=status,
            body=body,
            headers=dict(headers or {}),
            nth=nth,
            times=times,
            delay=delay,
            after_effect=after_effect,
            disconnect=disconnect,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def limit_rate(
        self, per_minute: int | None, *, plain_text: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        """Refuse a token's requests beyond ``per_minute`` in a minute with 429 (None: no
        limit, the default), in fixed windows of 60 s per token as GitLab's Rack::Attack
        throttle does (see ``RateLimit``): GitLab's JSON answer with ``Retry-After`` and
        ``RateLimit-Reset``, or with ``plain_text=True`` the bare ``Retry later`` without them.
        Requests without a token this server knows are not limited. ``clock`` (epoch seconds)
        lets a test step from one window to the next. Setting a limit starts its counters at
        zero; the refusals are counted in ``throttled``."""
        with self._lock:
            self._rate_limit = None if per_minute is None else RateLimit(per_minute, plain_text=plain_text, clock=clock)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, in arrival order (copies)."""
        with self._lock:
            return [dataclasses.replace(entry, query=dict(entry.query)) for entry in self._log]

    def request_counts(self, token: str | None = None) -> Counter[tuple[str, str | None]]:
        """Requests received so far by (method, route kind), e.g. ``("PUT", "variable")``;
        only those carrying ``token`` when given. Route kinds: ``"variables"`` (a list or a
        create), ``"variable"`` (one variable), ``"token"``, ``"token_rotate"``, None (no route).
        Throttled requests count too (GitLab counts them against the limit)."""
        with self._lock:
            if token is not None and token not in self._world.tokens:
                raise LookupError("no such token on this server")
            token_id = self._world.tokens[token].id if token is not None else None
            return Counter(
                (entry.method, entry.route) for entry in self._log if token is None or entry.token_id == token_id
            )

    def requests_by_token(self) -> Counter[int | None]:
        """Requests received so far per token id (``token(secret).id``; None: no token this
        server knows). A token rotated during a run is a new token with its own count."""
        with self._lock:
            return Counter(entry.token_id for entry in self._log)

    @property
    def throttled(self) -> int:
        """How many 429s the rate limit (``limit_rate``) has sent since the log was cleared."""
        with self._lock:
            return sum(entry.throttled for entry in self._log)

    def clear_log(self) -> None:
        """Forget the requests received so far (and so their counts, ``throttled`` too)."""
        with self._lock:
            self._log.clear()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every request received has been handled, those held by a ``delay``
        (a late write) included; ``TimeoutError`` if that takes longer than ``timeout``."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight after {timeout} s")

    # internals --------------------------------------------------------------------------

    def _user(self, user: User | str) -> User:
        username = user.username if isinstance(user, User) else user
        found = self._world.user_named(username)
        if found is None:
            raise LookupError(f"no user {username!r} on this server: add_user({username!r}) first")
        return found

    def _parent(self, full_path: str) -> Group | None:
        if not full_path or full_path != full_path.strip("/"):
            raise ValueError(f"a full path has no leading or trailing '/', got {full_path!r}")
        if self._world.find("group", full_path) or self._world.find("project", full_path):
            raise ValueError(f"{full_path!r} already exists")
        parent_path, _, _ = full_path.rpartition("/")
        if not parent_path:
            return None
        parent = self._world.find("group", parent_path)
        if parent is None:
            raise LookupError(f"no group {parent_path!r}: add_group({parent_path!r}) first")
        return parent

    def _container(self, where: Where) -> Container:
        kind: Kind = where.kind  # type: ignore[assignment]
        if kind not in ("group", "project"):
            raise ValueError(f"kind must be 'group' or 'project', got {kind!r}")
        container = self._world.find(kind, str(where.id))
        if container is None:
            raise LookupError(f"no {kind} {where.id!r} on this server")
        return container

    @staticmethod
    def _find(container: Container, key: str, environment_scope: str) -> Variable | None:
        return next((v for v in container.variables if v.key == key and v.environment_scope == environment_scope), None)

    def _serve(self, request: api.Request) -> Response | None:
        """The answer to one request (None: drop the connection), logged."""
        query = {
            k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items() if k in _LOGGED_QUERY_PARAMETERS
        }
        with self._lock:
            token = api.presented_token(self._world, request)
            entry = LoggedRequest(
                request.method,
                request.path,
                query,
                faulted=False,
                route=api.route_kind(request.path),
                token_id=token.id if token else None,
            )
            self._log.append(entry)
            refusal = self._rate_limit.refusal(token.id) if self._rate_limit and token else None
            if refusal is not None:
                entry.throttled = True
                entry.status = refusal.status
                return refusal
            fault = first_claim(self._faults, request.method, request.path)
            entry.faulted = fault is not None
            answer = api.handle(self._world, request, self._base_url) if fault is None or fault.after_effect else None
            self._in_flight += 1
        try:
            if fault is not None:
                answer = self._faulted_answer(fault, request, answer)
        finally:
            with self._idle:
                entry.status = answer.status if answer else None
                self._in_flight -= 1
                self._idle.notify_all()
        return answer

    def _faulted_answer(self, fault: Fault, request: api.Request, real: Response | None) -> Response | None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.disconnect:
            return None
        injected = fault.response()
        if injected is not None:
            return injected
        if real is None:
            with self._lock:
                real = api.handle(self._world, request, self._base_url)
        return real


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects
    disable_nagle_algorithm = True  # without it every keep-alive request waits ~40 ms for an ACK
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        gitlab = self.server.gitlab
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        request = api.Request(self.command, path, query, self.headers, self.rfile.read(length) if length else b"")
        response = gitlab._serve(request)
        if response is None:
            self.close_connection = True
            return
        data, content_type = response.encoded()
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if content_type:
                self.send_header("Content-Type", content_type)
            if response.status != 204:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (e.g. its read timeout passed during a delay)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the server keeps its own request log."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gitlab: GitLabServer):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.gitlab = gitlab
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        """Quiet about clients that go away or fail the TLS handshake; loud about bugs."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)
