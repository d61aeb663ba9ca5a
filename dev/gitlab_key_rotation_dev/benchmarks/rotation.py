"""Benchmark: one IAM user's key rotated into N GitLab project targets (issue 10, item 5).

The world is the tests' rotation world (``rotation_world.fresh_world``): moto in-process for IAM,
STS, Secrets Manager and SNS, the project's GitLab server over plain HTTP on loopback, the real
adapters, and one fake clock for both. The user's managed key is 10 days old and held by all N
project targets; a forced rotation replaces it, then a scheduled run finds nothing due (the
no-op run). Counted for each run: GitLab requests AT THE SERVER (its request log), AWS API calls
at botocore (``wire_faults.AwsWire``, by service), the wall time, the invariants of DESIGN.md
(``invariants.check(settled=True)``).

Every wait of a run (the key verification's pauses between its STS successes, the client's rate
budget, retry backoff) is a ``sleep`` on the fake clock, which returns at once: the wall time is
the time beyond those waits, the STS wait included (keys work at once here: no propagation
delay). The waits are shown apart, as the fake clock's advance during the run ("waits s").

Section 1 (``--sizes``, default 1 10 100): no rate limit at the server, the client's budget at
``--budget`` (default 2,000/min, the setting's maximum and gitlab.com's current limit, so pacing
plays no part). Section 2 (``--limited``, default 100 targets): the server limits the token to
``--limit`` requests a minute (fixed 60 s windows, GitLab's JSON 429 with ``Retry-After``) and
the client's budget ``gitlab.max_requests_per_minute`` is the same; the rotation is run until it
is complete (at most ``--max-runs`` runs, each the Lambda's retry a minute later), and the table
says how long that took on the fake clock, how many 429s the server sent, and whether a run went
past the Lambda's timeout (300 s by default: the run would have been killed there).

Run: ``make bench-rotation`` (``ARGS="--help"`` for the options).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from gitlab_key_rotation.lambda_src.contract.settings import ROTATION_TIMEOUT
from gitlab_key_rotation.lambda_src.rotation.run import RunReport
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation_dev.fault_matrix import aws_test_env, wired_world
from gitlab_key_rotation_dev.rotation_world import RotationWorld
from gitlab_key_rotation_dev.wire_faults import AwsWire

LAMBDA_TIMEOUT_SECONDS = ROTATION_TIMEOUT.default
WRITES = ("PUT", "POST", "DELETE")


def project_targets(count: int) -> tuple[GitLabTarget, ...]:
    return tuple(GitLabTarget("project", f"platform/p{index:03}") for index in range(count))


def rotation_due_by_force(world: RotationWorld) -> None:
    """Every target holds the managed key, 10 days old: nothing is due until a run is forced."""
    for target in world.user.targets:
        world.gitlab.add_project(target.id)
    current = world.seed_key(age_days=10, in_targets=True)
    world.put_state(
        {
            "access_key_id": current,
            "secret_access_key": world.seeded_keys[current],
            "pushed_at": (world.clock.now() - timedelta(days=10)).isoformat(),
            "event_id": "ev-0",
        }
    )


@dataclass
class Measured:
    """One run as the GitLab server, botocore and the clocks saw it."""

    report: RunReport
    requests: int  # at the GitLab server
    routes: Counter[tuple[str, str | None]]  # of them, by (method, route kind)
    writes: int  # of them, PUT/POST/DELETE
    throttled: int  # 429s the server's rate limit sent
    aws: Counter[str] = field(default_factory=Counter)  # calls by service
    wall: float = 0.0  # seconds
    waits: float = 0.0  # seconds the fake clock advanced (every sleep of the run)
    violations: list[str] = field(default_factory=list)  # check(settled=True): the work is done
    violations_midway: list[str] = field(default_factory=list)  # check(settled=False): more runs to come

    @property
    def outcome(self) -> str:
        if self.report.error:  # the run as a whole failed (token, pre-flight)
            return "failed"
        return ", ".join(user.outcome for user in self.report.users)

    @property
    def aws_total(self) -> int:
        return sum(self.aws.values())

    def aws_by_service(self) -> str:
        return ", ".join(f"{service} {count}" for service, count in sorted(self.aws.items()))

    def requests_by_route(self) -> str:
        """``GET variable 200, PUT variable 200, ...``, most first."""
        return ", ".join(f"{method} {route} {n}" for (method, route), n in self.routes.most_common())


def measure(world: RotationWorld, wire: AwsWire, run_id: str, **options: object) -> Measured:
    world.gitlab.clear_log()
    clock_before = world.clock.now()
    started = time.perf_counter()
    with wire.armed() as calls:
        report = world.run(run_id=run_id, event_id=run_id, **options)
    wall = time.perf_counter() - started
    counts = world.gitlab.request_counts()
    return Measured(
        report=report,
        requests=sum(counts.values()),
        routes=counts,
        writes=sum(n for (method, _route), n in counts.items() if method in WRITES),
        throttled=world.gitlab.throttled,
        aws=Counter(call.kind for call in calls),
        wall=wall,
        waits=(world.clock.now() - clock_before).total_seconds(),
        violations=world.violations(settled=True),
        violations_midway=world.violations(settled=False),
    )


def rotated(world: RotationWorld, replaced: str) -> bool:
    """AWSCURRENT holds a new key and every target holds it."""
    current = (world.stage("AWSCURRENT") or {}).get("access_key_id")
    return current not in (None, replaced) and all(world.held(t)[0] == current for t in world.user.targets)


def problems(world: RotationWorld, replaced: str, runs: list[Measured], noop: Measured | None = None) -> list[str]:
    """What is wrong once ``runs`` are over: the last must have succeeded and settled everything,
    those before it (a run that stopped early, or failed, and left the rest to the next) must
    have held the invariants that hold midway."""
    *before, last = runs
    found = [f"{m.report.request.run_id}: {v}" for m in before for v in m.violations_midway]
    found += [f"{last.report.request.run_id}: {v}" for v in last.violations]
    if last.report.failed:
        found.append(f"{last.report.request.run_id} failed: {last.report.failure_summary()}")
    if not rotated(world, replaced):
        found.append("the forced rotation did not reach every target")
    if noop is not None:
        found += [f"no-op run: {v}" for v in noop.violations]
        if noop.report.failed:
            found.append(f"the no-op run failed: {noop.report.failure_summary()}")
        if noop.writes:
            found.append(f"the no-op run wrote {noop.writes} times to GitLab")
    return found


def scale_row(monkeypatch, targets: int, budget: int) -> tuple[dict[str, object], str]:
    """The table's row for ``targets``, and a line with the runs' GitLab requests by route."""
    options = {"targets": project_targets(targets), "gitlab_max_requests_per_minute": budget}
    with wired_world(monkeypatch, rotation_due_by_force, **options) as (world, wire):
        replaced = world.stage("AWSCURRENT")["access_key_id"]
        rotation = measure(world, wire, "run-forced", force=True)
        world.clock.advance(hours=1)  # the next scheduled run
        noop = measure(world, wire, "run-scheduled")
        found = problems(world, replaced, [rotation], noop)
    return {
        "targets": targets,
        "GitLab req/target rotation": f"{rotation.requests / targets:.1f}",
        "GitLab req/target no-op": f"{noop.requests / targets:.1f}",
        "GitLab requests rotation, no-op": f"{rotation.requests}, {noop.requests}",
        "AWS calls rotation": f"{rotation.aws_total} ({rotation.aws_by_service()})",
        "AWS calls no-op": noop.aws_total,
        "wall s rotation": f"{rotation.wall:.2f}",
        "wall s no-op": f"{noop.wall:.2f}",
        "waits s (fake clock)": f"{rotation.waits:.1f}",
        "invariants": "held" if not found else "; ".join(found),
    }, f"{targets} targets: rotation {rotation.requests_by_route()}; no-op {noop.requests_by_route()}"


def limited_row(monkeypatch, targets: int, limit: int, max_runs: int) -> dict[str, object]:
    options = {"targets": project_targets(targets), "gitlab_max_requests_per_minute": limit}
    with wired_world(monkeypatch, rotation_due_by_force, **options) as (world, wire):
        world.gitlab.limit_rate(limit, clock=lambda: world.clock.now().timestamp())
        replaced = world.stage("AWSCURRENT")["access_key_id"]
        started = world.clock.now()
        # each run is an invocation of the default timeout, and watches its remaining time
        runs = [measure(world, wire, "run-forced", force=True, lambda_timeout=LAMBDA_TIMEOUT_SECONDS)]
        while not rotated(world, replaced) and len(runs) < max_runs:
            world.clock.advance(hours=1)  # the next scheduled run
            runs.append(measure(world, wire, f"run-{len(runs) + 1}", lambda_timeout=LAMBDA_TIMEOUT_SECONDS))
        # waits on the fake clock (the runs' and the gaps between them) plus the runs' work
        total = (world.clock.now() - started).total_seconds() + sum(m.wall for m in runs)
        found = problems(world, replaced, runs)
    # a run's duration: its waits (on the fake clock) and its wall time (the work between them)
    over = [m.report.request.run_id for m in runs if m.waits + m.wall > LAMBDA_TIMEOUT_SECONDS]
    return {
        "targets": targets,
        "limit and budget /min": f"{limit}, {limit}",
        "runs": len(runs),
        "outcomes": "; ".join(f"{m.report.request.run_id} {m.outcome}" for m in runs),
        "total min": f"{total / 60:.1f}",
        "each run min": ", ".join(f"{(m.waits + m.wall) / 60:.1f}" for m in runs),
        f"past the Lambda's {LAMBDA_TIMEOUT_SECONDS} s": ", ".join(over) or "none",
        "GitLab requests": sum(m.requests for m in runs),
        "429s": sum(m.throttled for m in runs),
        "wall s": f"{sum(m.wall for m in runs):.2f}",
        "invariants": "held" if not found else "; ".join(found),
    }


def markdown(rows: list[dict[str, object]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="targets per run (1 10 100)")
    parser.add_argument("--budget", type=int, default=2000, help="client budget per minute in section 1 (2000)")
    parser.add_argument("--limited", type=int, default=100, help="targets in section 2 (100; 0: skip it)")
    parser.add_argument("--limit", type=int, default=100, help="server limit = client budget per minute (100)")
    parser.add_argument("--max-runs", type=int, default=3, help="runs allowed to complete section 2 (3)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the run's records; a failure shows in the table
    print(f"rotation of one IAM user's key into N project targets; {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with aws_test_env() as monkeypatch:
        scale_row(monkeypatch, 1, args.budget)  # warm-up, not shown: the first world loads moto's and botocore's models
        scale, by_route = zip(*(scale_row(monkeypatch, n, args.budget) for n in args.sizes), strict=True)
        print(f"\nforced rotation, then a no-op run; no server limit, client budget {args.budget}/min\n")
        print(markdown(list(scale)))
        print("\nGitLab requests by method and route:\n" + "\n".join(by_route))
        limited = [limited_row(monkeypatch, args.limited, args.limit, args.max_runs)] if args.limited else []
        if limited:
            print(f"\n{args.limited} targets, the server's limit {args.limit}/min per token and the client's budget the same\n")
            print(markdown(limited))
    if args.json:
        print(json.dumps({"scale": list(scale), "limited": limited}, indent=2))


if __name__ == "__main__":
    main()
