"""moto.server on loopback with IAM faults in front: per-call latency, call counts, Throttling,
and a rate limit that answers like real IAM.

The revocation tests use it for throttling over real HTTP (where botocore's retry loop runs: an
in-process ``mock_aws`` answers inside that loop and would still execute a "throttled" call), and
``gitlab_key_rotation_dev.benchmarks.revocation`` uses it for a latency that stands for the real IAM API, with
calls counted where IAM would count them. In-process, ``server.faults.throttle["ListAccessKeys"] = 2``
answers the next two such calls with IAM's ``400 Throttling`` without reaching moto,
``server.faults.limit_rate(20)`` puts a token bucket in front of every IAM call (20 calls per second
on average, bursts of up to ``burst`` calls, default one second's worth): a call finding the bucket
empty gets IAM's ``Throttling`` (HTTP 400, ``Sender``, ``Rate exceeded``, IAM's XML ErrorResponse)
and is counted in ``.throttled`` (as are the injected ones; ``.reset_counts()`` zeroes both).
``server.faults.latency`` / ``.counts`` are plain attributes; from
another process, over HTTP:

``GET  /_faults/counts``        ``{"ListAccessKeys": 5000, ...}``: IAM actions received, retries included
``GET  /_faults/throttled``     ``{"ListAccessKeys": 120, ...}``: of those, answered with Throttling
``POST /_faults/counts/reset``  both of the above back to zero
``POST /_faults/rate``          ``{"per_second": 20, "burst": 20}`` (``{"per_second": null}``: no limit)
``GET  /_faults/cpu``           ``{"seconds": 12.5}``: CPU time of the server's process so far
``POST /_faults/latency``       ``{"seconds": 0.05}``: every IAM call waits this long first
``POST /_faults/seed``          ``{"groups": ["developers"], "users": 5000, "prefix": "dev"}``: users
                                with one Active key each, members of every group named, straight into
                                moto's backend (fast, no latency); ``"account": "222222222222"`` seeds
                                another account than moto's default
"""

from __future__ import annotations

import io
import json
import resource
import threading
import time
from collections import Counter
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

THROTTLING = (
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
    b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class IamFaults:
    """WSGI middleware in front of moto's application; only IAM calls get latency, counts, faults."""

    def __init__(self, app):
        self._app = app
        # IAM calls go straight to moto's IAM app: moto's dispatcher finds the service for every
        # request under one global lock, which would cap the calls per second far below IAM's.
        self._iam_app = create_backend_app("iam")
        self._lock = threading.Lock()
        self.latency = 0.0
        self.counts: Counter[str] = Counter()
        self.throttle: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._rate: float | None = None
        self._burst = 0.0
        self._tokens = 0.0
        self._refilled = 0.0

    def reset_counts(self) -> None:
        """``counts`` and ``throttled`` back to zero."""
        with self._lock:
            self.counts.clear()
            self.throttled.clear()

    def limit_rate(self, per_second: float | None, burst: float | None = None) -> None:
        """A token bucket of ``burst`` tokens (default ``per_second``, at least 1), refilled at
        ``per_second``; starts full. ``None`` removes the limit."""
        with self._lock:
            self._rate = per_second
            self._burst = max(1.0, burst if burst is not None else per_second or 0.0)
            self._tokens = self._burst
            self._refilled = time.monotonic()

    def _over_rate(self) -> bool:
        """Take a token; True when there was none (the caller holds the lock)."""
        if self._rate is None:
            return False
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1:
            return True
        self._tokens -= 1
        return False

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_faults/"):
            return self._control(path, environ, start_response)
        if "/iam/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
            return self._app(environ, start_response)  # moto-api and other services: no faults
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        with self._lock:
            self.counts[action] += 1
            throttled = self.throttle[action] > 0
            if throttled:
                self.throttle[action] -= 1
            else:
                throttled = self._over_rate()
            if throttled:
                self.throttled[action] += 1
        if self.latency:
            time.sleep(self.latency)
        if throttled:
            start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(THROTTLING)))])
            return [THROTTLING]
        return self._iam_app(environ, start_response)

    def _control(self, path, environ, start_response):
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        request = json.loads(raw) if raw else {}
        if path == "/_faults/counts":
            answer: object = dict(self.counts)
        elif path == "/_faults/throttled":
            answer = dict(self.throttled)
        elif path == "/_faults/cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            answer = {"seconds": usage.ru_utime + usage.ru_stime}
        elif path == "/_faults/counts/reset":
            self.reset_counts()
            answer = {}
        elif path == "/_faults/rate":
            self.limit_rate(request["per_second"], request.get("burst"))
            answer = {"per_second": self._rate, "burst": self._burst}
        elif path == "/_faults/latency":
            self.latency = float(request["seconds"])
            answer = {"seconds": self.latency}
        elif path == "/_faults/seed":
            answer = {
                "users": seed_group(
                    request["groups"], int(request["users"]), request["prefix"], request.get("account", DEFAULT_ACCOUNT_ID)
                )
            }
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"no fault control at {path}".encode()]
        data = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def seed_group(groups: list[str], users: int, prefix: str, account: str = DEFAULT_ACCOUNT_ID) -> int:
    """Create the ``groups`` (if new) and ``users`` users ``<prefix>-00000``... with one key each,
    members of every one of them, in ``account``."""
    backend = iam_backends[account]["aws"]
    for group in groups:
        if group not in backend.groups:
            backend.create_group(group)
    for index in range(users):
        name = f"{prefix}-{index:05d}"
        backend.create_user(region_name="us-east-1", user_name=name)
        for group in groups:
            backend.add_user_to_group(group, name)
        backend.create_access_key(name)
    return users


class _KeepAlive(MotoRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open between calls, as AWS endpoints do

    def log_request(self, *args, **kwargs) -> None:
        """One line per request would drown the benchmark's output and the test logs."""


class MotoIamServer:
    """A threaded moto.server on ``127.0.0.1`` (a free port) behind ``IamFaults``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.faults = IamFaults(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, port, self.faults, threaded=True, request_handler=_KeepAlive)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-iam", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "MotoIamServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "MotoIamServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
