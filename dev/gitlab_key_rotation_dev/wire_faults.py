"""Faults at the wire, below the adapters: the real boto3 adapters, botocore, and the GitLab
client's retries and upsert meet them as they would meet a bad network or a bad day at AWS or
GitLab (unlike ``tests.rotation.faults``, which breaks calls at the ports).

AWS (IAM, STS, Secrets Manager, SNS): handlers on botocore's event system. ``AwsWire`` hooks the
clients a ``RotationWorld`` uses and its boto3 session (the verifier makes an STS client per new
key from it), counts every API call at ``before-call`` while armed, and breaks the chosen one:

- ``error``: before it reaches moto, so it has no effect: ``ClientError`` ``ServiceUnavailable``,
  what boto3 raises once its own retries are spent;
- ``lost``: after moto applied it (``after-call``, past botocore's retry loop, so nothing retries
  it): ``ReadTimeoutError``, an answer lost on its way back.

GitLab: the project's GitLab server logs every HTTP request in arrival order, and ``inject``
breaks the chosen one (the rule counts from the moment it is injected):

- ``error``: 503 without effect, for that request and as many after it as the client retries, so
  an idempotent call fails for good (a POST is followed by a read, which then gets the rest);
- ``lost``: the request takes effect, then GitLab answers 502 (a gateway lost the answer);
- ``drop``: the request takes effect, then the connection is dropped without an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from gitlab_key_rotation_dev.gitlab_server import Fault, GitLabServer, LoggedRequest

AWS_MODES = ("error", "lost")
GITLAB_MODES = ("error", "lost", "drop")

# botocore's service ids (hyphenized, as in event names) -> the kind a report shows
_AWS_KINDS = {"iam": "iam", "sts": "sts", "secrets-manager": "secretsmanager", "sns": "sns"}
_AWS_READS = {"ListAccessKeys", "DescribeSecret", "GetSecretValue", "GetCallerIdentity"}
_GITLAB_TARGET = re.compile(r"^/api/v4/(groups|projects)/([^/]+)/variables")


@dataclass(frozen=True)
class WireCall:
    """One external call of a run, as the wire sees it."""

    side: str  # "aws" | "gitlab": calls are numbered per side
    index: int  # 0-based, in the order the run made them
    kind: str  # "iam" | "sts" | "secretsmanager" | "sns" | "gitlab"
    name: str  # "CreateAccessKey", "PUT /projects/platform/deployer/variables/AWS_ACCESS_KEY_ID"
    changing: bool  # it changes something (a read does not)
    target: str = ""  # GitLab only: "group platform", "project platform/deployer", "token"

    def __str__(self) -> str:
        return f"{self.side} call {self.index} ({self.kind} {self.name})"


@dataclass(frozen=True)
class WireFault:
    call: WireCall
    mode: str  # one of AWS_MODES or GITLAB_MODES, by side

    def __post_init__(self) -> None:
        allowed = AWS_MODES if self.call.side == "aws" else GITLAB_MODES
        if self.mode not in allowed:
            raise ValueError(f"mode {self.mode!r} does not exist for {self.call.side} calls; allowed: {allowed}")

    @classmethod
    def at(cls, side: str, index: int, mode: str) -> WireFault:
        """A fault at call ``index`` of ``side``, whatever call that turns out to be."""
        return cls(WireCall(side, index, "any", f"call {index}", changing=True), mode)

    def __str__(self) -> str:
        return f"{self.mode} at {self.call}"


class AwsWire:
    """Counts and breaks the AWS API calls made through ``clients`` and through clients that
    ``session`` makes while it is open, and keeps the secret of every key IAM creates meanwhile.
    Use as a context manager around a world's life (clients copy the session's handlers when they
    are made), and ``armed`` around each run::

        with AwsWire(clients, session) as wire:
            with wire.armed(fault) as calls:
                world.run()
            assert wire.fired
    """

    def __init__(self, clients: Iterable[object], session: boto3.session.Session):
        self._emitters = [client.meta.events for client in clients]
        self._session_events = session.events
        self._uid = f"wire-faults-{id(self)}"
        self._calls: list[WireCall] | None = None  # None: not armed
        self._fault: WireFault | None = None
        self._lose_next_answer = False
        self.fired = False
        self.key_secrets: set[str] = set()  # of every key IAM created while armed: what must never leak

    def __enter__(self) -> AwsWire:
        for emitter in self._emitters:
            emitter.register("before-call", self._before, unique_id=self._uid + "-before")
            emitter.register("after-call", self._after, unique_id=self._uid + "-after")
        self._session_events.register("before-call.sts", self._before, unique_id=self._uid + "-sts-before")
        self._session_events.register("after-call.sts", self._after, unique_id=self._uid + "-sts-after")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for emitter in self._emitters:
            emitter.unregister("before-call", unique_id=self._uid + "-before")
            emitter.unregister("after-call", unique_id=self._uid + "-after")
        self._session_events.unregister("before-call.sts", unique_id=self._uid + "-sts-before")
        self._session_events.unregister("after-call.sts", unique_id=self._uid + "-sts-after")
        self._calls = None  # clients made meanwhile keep the handlers: they stay inert

    @contextmanager
    def armed(self, fault: WireFault | None = None) -> Iterator[list[WireCall]]:
        """Count calls (the list yielded fills as the run goes) and break ``fault``'s call. Armed
        again inside (a second run during one of the first's calls), it counts the inner run's
        calls apart and then goes back to the outer run's."""
        if fault is not None and fault.call.side != "aws":
            raise ValueError(f"AwsWire breaks AWS calls only, got {fault}")
        outer = self._calls, self._fault, self._lose_next_answer, self.fired
        self._calls, self._fault, self._lose_next_answer, self.fired = [], fault, False, False
        try:
            yield self._calls
        finally:
            fired = self.fired
            self._calls, self._fault, self._lose_next_answer, self.fired = outer
            if outer[0] is None:  # the outermost arming: say whether its fault fired
                self.fired = fired

    def _before(self, event_name: str, model, **_: object) -> None:
        if self._calls is None:
            return
        service = event_name.split(".")[1]
        kind = _AWS_KINDS.get(service, service)
        call = WireCall("aws", len(self._calls), kind, model.name, changing=model.name not in _AWS_READS)
        self._calls.append(call)
        if self._fault is None or self._fault.call.index != call.index:
            return
        self.fired = True
        if self._fault.mode == "lost":
            self._lose_next_answer = True
            return
        raise ClientError(
            {
                "Error": {"Code": "ServiceUnavailable", "Message": f"injected: {self._fault}"},
                "ResponseMetadata": {"HTTPStatusCode": 503},
            },
            model.name,
        )

    def _after(self, event_name: str, parsed: dict, **_: object) -> None:
        if self._calls is None:
            return
        secret = parsed.get("AccessKey", {}).get("SecretAccessKey")
        if secret:
            self.key_secrets.add(secret)
        if self._lose_next_answer:
            self._lose_next_answer = False
            raise ReadTimeoutError(endpoint_url=f"https://{event_name.split('.')[1]}.amazonaws.com/ (injected)")


def gitlab_calls(requests: Iterable[LoggedRequest]) -> list[WireCall]:
    """The requests of the server's log as ``WireCall``s (paths decoded, so full paths read)."""
    calls = []
    for index, request in enumerate(requests):
        path = unquote(request.path)
        match = _GITLAB_TARGET.match(request.path)
        target = f"{match[1][:-1]} {unquote(match[2])}" if match else "token"
        name = f"{request.method} {path.removeprefix('/api/v4')}"
        calls.append(WireCall("gitlab", index, "gitlab", name, request.method != "GET", target))
    return calls


def inject_gitlab(server: GitLabServer, fault: WireFault, *, client_retries: int) -> Fault:
    """Break the request numbered ``fault.call.index`` among the requests the server receives
    from now on; return the server's rule (its ``fired`` says whether it did). ``client_retries``:
    how often the client retries a failed idempotent call."""
    if fault.call.side != "gitlab":
        raise ValueError(f"inject_gitlab breaks GitLab requests only, got {fault}")
    nth = fault.call.index + 1
    if fault.mode == "error":
        return server.inject(nth=nth, status=503, times=client_retries + 1)
    if fault.mode == "lost":
        return server.inject(nth=nth, status=502, after_effect=True)
    return server.inject(nth=nth, disconnect=True, after_effect=True)
