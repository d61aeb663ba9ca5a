"""The fault matrix: every external call of one clean rotation, broken at the wire in every mode
of ``tests.e2e.wire_faults``, each in a fresh world; the invariants of DESIGN.md right after the
broken run, then clean re-runs until the rotation that was due is done and every invariant holds.

The world (``scheduled_rotation``): the managed key is 31 days old (rotation due) and held by group
``platform`` and by its hidden target (scope ``review/*``, the secret masked and hidden); its
predecessor went Inactive 8 days ago (deletion window over); project ``platform/deployer`` (scope
``production``) and its credentials file target (scope ``staging``) were just added as targets and
hold nothing yet; success is notified. So one clean run lists keys, reads and writes the state
secret, deletes the predecessor, creates, stores and verifies a key, updates (PUT) the group's
variables and the hidden secret without reading it, creates (POST) the project's variables and its
file variable, promotes the key and publishes to SNS: every kind of call there is, on every
delivery.

Each case:

1. fresh world, one run (``run-faulted``, event ``ev-1``) with the fault; the fault must fire;
   then ``check(settled=False)``, and no secret in the run's report or log records;
2. Lambda's retry of the same invocation a minute later (same run and event id); it must converge:
   the run does not fail, ``check(settled=True)`` (GitLab holds AWSCURRENT's key, which is Active,
   at most two keys, no AWSPENDING, the lock released), and AWSCURRENT is a new key;
3. only if 2 did not converge: the next scheduled run, once a lock the broken run left has
   expired (``LOCK_TTL``); it must converge. ``CaseResult.reruns`` says which cases needed it.

Run it: ``make fault-matrix`` (or ``python -m gitlab_key_rotation_dev.fault_matrix``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from gitlab_key_rotation.lambda_src.rotation.run import RunReport
from gitlab_key_rotation.lambda_src.rotation.state import LOCK_TTL
from gitlab_key_rotation_dev.wire_faults import AWS_MODES, GITLAB_MODES, AwsWire, WireCall, WireFault, gitlab_calls, inject_gitlab
from gitlab_key_rotation_dev.log_guard import leaks
from gitlab_key_rotation_dev.rotation_world import (
    FILE_TARGET,
    GROUP_TARGET,
    HIDDEN_TARGET,
    PROJECT_TARGET,
    REGION,
    RotationWorld,
    aws_client,
    aws_session,
    fresh_world,
)

# ``RotationWorld.ports`` builds its GitLab client with ``retries=2``.
HARNESS_CLIENT_RETRIES = 2
BUILD_OPTIONS = {"notify_on_success": True, "targets": (GROUP_TARGET, PROJECT_TARGET, FILE_TARGET, HIDDEN_TARGET)}


def scheduled_rotation(world: RotationWorld) -> None:
    """The matrix's starting point (see the module docstring). The topic's queue subscription
    goes: nothing here reads it, and moto makes an RSA key per subscription to sign deliveries."""
    sns = aws_client("sns")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=world.sns_topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    world.seed_retirement_due(targets=(GROUP_TARGET, HIDDEN_TARGET))  # the project's targets are new: empty


@dataclass(frozen=True)
class CaseResult:
    fault: WireFault
    faulted_run_failed: bool  # False: the fault was absorbed (a retry, the upsert's re-read)
    reruns: int  # clean runs it took to converge
    violations: tuple[str, ...]

    @property
    def cell(self) -> str:
        """Short outcome for the table: ``absorbed``/``failed``, then the clean runs it took."""
        outcome = "failed" if self.faulted_run_failed else "absorbed"
        return f"{outcome} +{self.reruns}" + (" VIOLATION" if self.violations else "")


@dataclass
class MatrixResult:
    calls: list[WireCall]  # of the clean run, AWS then GitLab
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    def size(self) -> Counter[tuple[str, str]]:
        """Cases by (kind, mode)."""
        return Counter((c.fault.call.kind, c.fault.mode) for c in self.cases)

    @property
    def violations(self) -> list[str]:
        return [f"{c.fault}: {v}" for c in self.cases for v in c.violations]

    def needing_a_second_rerun(self) -> list[CaseResult]:
        return [c for c in self.cases if c.reruns > 1]

    def counts(self) -> str:
        """One line: the size by kind and mode, the second re-runs, the violations."""
        size = ", ".join(f"{kind}/{mode} {n}" for (kind, mode), n in sorted(self.size().items()))
        return (
            f"{len(self.cases)} cases over {len(self.calls)} calls ({size}); "
            f"{len(self.needing_a_second_rerun())} needed a second clean run; {len(self.violations)} violations"
        )

    def table(self) -> str:
        """One row per call of the clean run, one column per mode."""
        by_call: dict[WireCall, dict[str, CaseResult]] = {}
        for case in self.cases:
            by_call.setdefault(case.fault.call, {})[case.fault.mode] = case
        modes = list(dict.fromkeys(AWS_MODES + GITLAB_MODES))
        width = max(len(f"{c.kind} {c.name}") for c in self.calls) + 2
        lines = [f"{'call':<10}{'kind and operation':<{width}}" + "".join(f"{m:<20}" for m in modes)]
        for call, cases in by_call.items():
            cells = "".join(f"{cases[m].cell if m in cases else '-':<20}" for m in modes)
            lines.append(f"{call.side:<7}{call.index:<3}{call.kind + ' ' + call.name:<{width}}{cells}".rstrip())
        return "\n".join(lines)


@contextmanager
def aws_test_env() -> Iterator[pytest.MonkeyPatch]:
    """Fake credentials and a region for boto3, no endpoint override (moto intercepts in-process),
    and a ``MonkeyPatch`` for ``fresh_world``; everything restored on exit."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        yield monkeypatch


@contextmanager
def wired_world(
    monkeypatch: pytest.MonkeyPatch, setup: Callable[[RotationWorld], None], **build_options
) -> Iterator[tuple[RotationWorld, AwsWire]]:
    """``fresh_world`` with an ``AwsWire`` on the clients its runs use."""
    with fresh_world(monkeypatch, setup, **build_options) as world:
        clients = (world.iam, world.secrets, aws_client("sns"))
        with AwsWire(clients, aws_session()) as wire:
            yield world, wire


class LogRecords(logging.Handler):
    """Every log record (INFO and up) while open; the root logger's level is restored on exit."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogRecords:
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(min(root.getEffectiveLevel(), logging.INFO))
        root.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)


def secret_leaks(
    world: RotationWorld, wire: AwsWire, reports: list[RunReport], records: list[logging.LogRecord]
) -> list[str]:
    """Invariant 6 on what the runs returned and logged: no key secret (of the keys there are, and
    of the keys the runs created and deleted), no GitLab token."""
    secrets = set(world.key_secrets().values()) | set(world.seeded_keys.values()) | wire.key_secrets | {world.token}
    problems = [f"6: {finding}" for finding in leaks(records, secrets)]
    for report in reports:
        text = json.dumps(report.as_json()) + report.failure_summary()
        if any(secret in text for secret in secrets):
            problems.append(f"6: the report of {report.request.run_id} carries a secret")
    return problems


def convergence_problems(world: RotationWorld, report: RunReport, replaced: str) -> list[str]:
    """What keeps the world from being converged after the clean run ``report``."""
    problems = [f"the clean run failed: {report.failure_summary()}"] if report.failed else []
    problems += world.violations(settled=True)
    current = (world.stage("AWSCURRENT") or {}).get("access_key_id")
    if current in (None, replaced):
        problems.append(f"the rotation that was due did not happen: AWSCURRENT holds {current}")
    return problems


def probe(monkeypatch: pytest.MonkeyPatch) -> list[WireCall]:
    """The calls of one clean rotation of ``scheduled_rotation``: AWS first, then GitLab."""
    with wired_world(monkeypatch, scheduled_rotation, **BUILD_OPTIONS) as (world, wire):
        world.gitlab.clear_log()
        with wire.armed() as aws:
            report = world.run(run_id="run-clean", event_id="ev-1")
        if report.failed or world.violations(settled=True):
            raise AssertionError(f"the clean run of the fault matrix failed: {report.as_json()}")
        return aws + gitlab_calls(world.gitlab.requests)


def run_case(monkeypatch: pytest.MonkeyPatch, fault: WireFault) -> CaseResult:
    with LogRecords() as logs, wired_world(monkeypatch, scheduled_rotation, **BUILD_OPTIONS) as (world, wire):
        replaced = world.stage("AWSCURRENT")["access_key_id"]
        on_aws = fault.call.side == "aws"
        with wire.armed(fault if on_aws else None):
            rule = None if on_aws else inject_gitlab(world.gitlab, fault, client_retries=HARNESS_CLIENT_RETRIES)
            faulted = world.run(run_id="run-faulted", event_id="ev-1")
        world.gitlab.clear_faults()
        fired = wire.fired if rule is None else rule.fired > 0
        problems = [] if fired else ["the fault did not fire: the run made different calls than the clean run"]
        problems += [f"after the faulted run: {v}" for v in world.violations(settled=False)]
        world.clock.advance(minutes=1)  # Lambda retries a failed asynchronous invocation
        with wire.armed():
            reports = [faulted, world.run(run_id="run-faulted", event_id="ev-1")]
        remaining = convergence_problems(world, reports[-1], replaced)
        if remaining:
            world.clock.advance(seconds=LOCK_TTL.total_seconds())  # the next scheduled run
            with wire.armed():
                reports.append(world.run(run_id="run-next", event_id="ev-2"))
            remaining = convergence_problems(world, reports[-1], replaced)
        problems += [f"after {len(reports) - 1} clean run(s): {v}" for v in remaining]
        problems += secret_leaks(world, wire, reports, logs.records)
    return CaseResult(fault, faulted.failed, len(reports) - 1, tuple(problems))


def modes_for(call: WireCall, *, full: bool) -> tuple[str, ...]:
    """Every mode of the call's side; without ``full``, a read gets ``error`` only. A read has no
    effect, so breaking it after the effect ends as breaking it before: on AWS only the exception
    type differs (the adapters treat both alike); on GitLab a 502 or a dropped connection on a GET
    is retried by the client as on a PUT, which keeps every mode."""
    if full or call.changing:
        return AWS_MODES if call.side == "aws" else GITLAB_MODES
    return ("error",)


def faults_for(calls: list[WireCall], *, full: bool) -> list[WireFault]:
    return [WireFault(call, mode) for call in calls for mode in modes_for(call, full=full)]


def run_matrix(
    *,
    sides: tuple[str, ...] = ("aws", "gitlab"),
    full: bool = True,
    progress: Callable[[CaseResult], None] | None = None,
) -> MatrixResult:
    """Every call of the clean run on ``sides``, in every mode (``full``), or writes in every mode
    and reads in ``error`` only (see ``modes_for``)."""
    started = time.perf_counter()
    with aws_test_env() as monkeypatch:
        calls = [c for c in probe(monkeypatch) if c.side in sides]
        result = MatrixResult(calls)
        for fault in faults_for(calls, full=full):
            case = run_case(monkeypatch, fault)
            result.cases.append(case)
            if progress:
                progress(case)
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitlab_key_rotation_dev.fault_matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=("aws", "gitlab"), action="append", help="only these calls (default: both)")
    parser.add_argument(
        "--quick", action="store_true", help="the test's matrix: writes in every mode, reads in mode error only"
    )
    args = parser.parse_args(argv)

    def dot(case: CaseResult) -> None:
        print("!" if case.violations else ".", end="", flush=True)

    result = run_matrix(sides=tuple(args.side or ("aws", "gitlab")), full=not args.quick, progress=dot)
    print(f"\n\n{result.table()}\n")
    print("absorbed: the faulted run succeeded anyway; failed: it failed (and alarmed); +n: clean runs to converge\n")
    print(f"matrix: {result.counts()}; {result.seconds:.1f} s")
    for case in result.needing_a_second_rerun():
        print(f"  needed a second clean run: {case.fault}")
    for violation in result.violations:
        print(f"  VIOLATION {violation}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
