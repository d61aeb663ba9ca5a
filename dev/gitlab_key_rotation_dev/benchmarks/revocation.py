"""Benchmark: the revocation Lambda's code against the usual weekly script, and under IAM's rate limit.

moto.server runs in its own process on loopback behind a WSGI middleware
(``gitlab_key_rotation_dev/moto_iam_server.py``) that delays every IAM call by a fixed latency,
standing for the real IAM API, counts the calls where IAM would count them and, for the throttled
table, answers calls beyond a token-bucket rate with IAM's ``Throttling``. Before each measured run
the account is reset and seeded straight into moto's backend (one group, N members, one Active key
each, and an empty exempt group; no latency). Each measured run is a fresh process, so that its
peak RSS is its own; this code runs as the Lambda does (settings from a settings.json in its task
root, ``composition.revoke``), with boto3 pointed at the server through ``AWS_ENDPOINT_URL``.

Table 1, latency only: the baseline (``weekly_script_baseline.py``, sequential) against this code
with the floor's settings: ``exempt_groups`` (exemption by group, no call per member) and
``EXEMPT_TAG_KEY=''``, i.e. 2 calls per member with one key. The baseline runs in full up to
``--baseline-max`` members (5,000: about 10 minutes); above that on the first ``--sample`` members,
extrapolated and marked "est.".

Table 2, throttled: this code at ``--throttled-size`` members (5,000) for each ``--rates`` (20 and
50 calls per second, bursts of one second's worth), against the floor (calls answered / rate);
and at ``--compare-size`` members (1,000) botocore's ``standard`` retry mode against ``adaptive``
(the Lambda's), to show why the Lambda uses the latter.

Run: ``make bench`` (about 40 minutes; ``python -m gitlab_key_rotation_dev.benchmarks.revocation --help``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

from gitlab_key_rotation.lambda_src.contract import SETTINGS_FILE

GROUP = "developers"
EXEMPT_GROUP = "on-leave"


@dataclass(frozen=True)
class Row:
    users: int
    label: str
    wall_seconds: float
    floor_seconds: float  # latency table: calls x latency (/ workers); throttled: (answered calls - burst) / rate
    calls_per_user: float  # answered calls (throttled answers not included)
    throttled: int
    errors: int
    client_cpu_seconds: float
    server_cpu_seconds: float
    peak_rss_mib: float
    keys_deleted: int
    deletes_seen_by_iam: int
    estimated: bool = False


class ServerControl:
    """The fault middleware's and moto's HTTP control endpoints."""

    def __init__(self, url: str):
        self.url = url

    def _post(self, path: str, body: dict | None = None) -> object:
        data = json.dumps(body or {}).encode()
        request = Request(self.url + path, data=data, method="POST", headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=600) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip().startswith(b"{") else None

    def prepare(self, users: int) -> None:
        """A fresh account with ``users`` members in GROUP, one key each, and an empty EXEMPT_GROUP;
        no latency, no rate limit; counts zeroed."""
        self._post("/_faults/latency", {"seconds": 0})
        self._post("/_faults/rate", {"per_second": None})
        self._post("/moto-api/reset")
        self._post("/_faults/seed", {"groups": [GROUP], "users": users, "prefix": "dev"})
        self._post("/_faults/seed", {"groups": [EXEMPT_GROUP], "users": 0, "prefix": "away"})
        self._post("/_faults/counts/reset")

    def latency(self, seconds: float) -> None:
        self._post("/_faults/latency", {"seconds": seconds})

    def rate(self, per_second: float | None) -> None:
        self._post("/_faults/rate", {"per_second": per_second})

    def counts(self) -> dict[str, int]:
        return self._get("/_faults/counts")

    def throttled(self) -> dict[str, int]:
        return self._get("/_faults/throttled")

    def cpu_seconds(self) -> float:
        return self._get("/_faults/cpu")["seconds"]

    def _get(self, path: str):
        with urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())


def _serve(conn) -> None:
    """The server process: moto.server behind the fault middleware until the driver says stop."""
    from gitlab_key_rotation_dev.moto_iam_server import MotoIamServer

    with MotoIamServer() as server:
        conn.send(server.url)
        conn.recv()


def _measure(kind: str, url: str, options: dict, conn) -> None:
    """A measured run, in its own process: ``kind`` is ``baseline`` or ``this``."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_IAM"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    if kind == "baseline":
        from gitlab_key_rotation_dev.benchmarks.weekly_script_baseline import revoke_like_the_usual_script

        cpu_before, started = _cpu_seconds(), time.monotonic()
        outcome = revoke_like_the_usual_script([GROUP], limit=options.get("limit"))
        outcome["errors"] = 0  # the usual script stops at its first error
    else:
        task_root = tempfile.mkdtemp(prefix="bench-task-root-")  # the function's code asset: its settings.json
        Path(task_root, SETTINGS_FILE).write_text(json.dumps(options["settings"]))
        os.environ["LAMBDA_TASK_ROOT"] = task_root
        result, cpu_before, started = _run_this(options.get("retry_mode"))
        outcome = {
            "users_done": result["users_scanned"],
            "keys_deleted": result["keys_deleted"],
            "errors": result["error_count"],
            "listing_seconds": 0.0,
        }
    outcome["wall_seconds"] = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_seconds"] = usage.ru_utime + usage.ru_stime - cpu_before
    outcome["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    conn.send(outcome)


def _run_this(retry_mode: str | None):
    """The Lambda's run (``composition.revoke``: its settings, its client); with ``retry_mode``, the
    same logic on a client that differs only in that mode."""
    from datetime import datetime, timezone

    from gitlab_key_rotation.lambda_src.revocation import aws, composition
    from gitlab_key_rotation.lambda_src.revocation.report import summary
    from gitlab_key_rotation.lambda_src.revocation.run import run_revocation
    from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings

    settings = RevocationSettings.load(os.environ)
    cpu_before, started = _cpu_seconds(), time.monotonic()
    if retry_mode is None:
        return composition.revoke(settings), cpu_before, started
    client = aws.iam_client(settings.max_workers, retry_mode=retry_mode)
    report = run_revocation(settings, aws.Boto3Iam(client), datetime.now(timezone.utc))
    return summary(report, time.monotonic() - started), cpu_before, started


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(ctx, kind: str, url: str, options: dict) -> dict:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_measure, args=(kind, url, options, child))
    process.start()
    outcome = parent.recv()
    process.join()
    if process.exitcode:
        raise SystemExit(f"the {kind} run failed with exit code {process.exitcode}")
    return outcome


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _measured_run(ctx, control: ServerControl, users: int, latency: float, rate: float | None, kind: str, options: dict):
    """Seed ``users`` members, run ``kind`` with the latency (and rate limit) on; the outcome, IAM's
    counts and throttled answers, server CPU."""
    control.prepare(users)
    control.latency(latency)
    control.rate(rate)
    server_cpu = control.cpu_seconds()
    outcome = _run(ctx, kind, control.url, options)
    server_cpu = control.cpu_seconds() - server_cpu
    control.rate(None)
    control.latency(0)
    return outcome, control.counts(), control.throttled(), server_cpu


def measure_baseline(ctx, control: ServerControl, users: int, latency: float, args) -> Row:
    sample = None if users <= args.baseline_max else min(args.sample, users)
    _progress(f"{users} users: baseline" + (f" on a sample of {sample} members" if sample else ""))
    outcome, counts, _, server_cpu = _measured_run(ctx, control, users, latency, None, "baseline", {"limit": sample})
    done = outcome["users_done"]
    member_calls = counts.get("ListAccessKeys", 0) + counts.get("DeleteAccessKey", 0)
    scale = users / done  # 1 unless sampled
    listing = outcome["listing_seconds"]
    calls = counts.get("GetGroup", 0) + member_calls * scale
    return Row(
        users=users,
        label="baseline: usual script, sequential",
        wall_seconds=listing + (outcome["wall_seconds"] - listing) * scale,
        floor_seconds=calls * latency,
        calls_per_user=calls / users,
        throttled=0,
        errors=0,
        client_cpu_seconds=outcome["cpu_seconds"] * scale,
        server_cpu_seconds=server_cpu * scale,
        peak_rss_mib=outcome["peak_rss_mib"],
        keys_deleted=round(outcome["keys_deleted"] * scale),
        deletes_seen_by_iam=counts.get("DeleteAccessKey", 0),
        estimated=bool(sample),
    )


def measure_this(
    ctx, control, users: int, latency: float, rate: float | None, args, label: str, retry_mode: str | None = None
) -> Row:
    _progress(f"{users} users: {label}")
    settings = {"groups": [GROUP], "exempt_groups": [EXEMPT_GROUP], "exempt_tag_key": "", "max_workers": args.workers}
    options = {"settings": settings, "retry_mode": retry_mode}
    outcome, counts, throttled, server_cpu = _measured_run(ctx, control, users, latency, rate, "this", options)
    answered = sum(counts.values()) - sum(throttled.values())
    pages = counts.get("GetGroup", 0)
    # the bucket starts full with one second's worth of calls
    floor = (answered - rate) / rate if rate else (pages + (answered - pages) / args.workers) * latency
    return Row(
        users=users,
        label=label,
        wall_seconds=outcome["wall_seconds"],
        floor_seconds=floor,
        calls_per_user=answered / users,
        throttled=sum(throttled.values()),
        errors=outcome["errors"],
        client_cpu_seconds=outcome["cpu_seconds"],
        server_cpu_seconds=server_cpu,
        peak_rss_mib=outcome["peak_rss_mib"],
        keys_deleted=outcome["keys_deleted"],
        deletes_seen_by_iam=counts.get("DeleteAccessKey", 0) - throttled.get("DeleteAccessKey", 0),
    )


def render(latency_rows: list[Row], throttled_rows: list[Row], args, started_load: float) -> str:
    header = (
        f"IAM latency {args.latency_ms} ms per call (moto.server on loopback, calls counted at the server); "
        f"MAX_WORKERS={args.workers}; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average (1 min) {started_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    columns = (
        f"{'users':>6}  {'implementation':<44} {'wall s':>9} {'floor s':>8} {'calls/user':>10} {'throttled':>9} "
        f"{'errors':>6} {'CPU s':>8} {'server CPU s':>12} {'RSS MiB':>7} {'keys deleted':>12} {'deletes at IAM':>14} "
        f"{'ratio':>7}"
    )
    lines = [header, ""]
    for title, rows in (("latency only", latency_rows), ("throttled", throttled_rows)):
        if not rows:
            continue
        lines += [title, columns, "-" * len(columns)]
        baselines = {row.users: row for row in latency_rows if row.label.startswith("baseline")}
        for row in rows:
            if title == "throttled":
                ratio = f"{row.wall_seconds / row.floor_seconds:.2f}"
            else:
                base = baselines.get(row.users)
                ratio = "" if row is base or base is None else f"{base.wall_seconds / row.wall_seconds:.1f}x"
            est = " est." if row.estimated else ""
            deletes = f"{row.deletes_seen_by_iam}" + (" (sample)" if row.estimated else "")
            lines.append(
                f"{row.users:>6}  {row.label:<44} {f'{row.wall_seconds:.1f}{est}':>9} {row.floor_seconds:>8.1f} "
                f"{row.calls_per_user:>10.3f} {row.throttled:>9} {row.errors:>6} "
                f"{f'{row.client_cpu_seconds:.1f}{est}':>8} {f'{row.server_cpu_seconds:.1f}{est}':>12} "
                f"{row.peak_rss_mib:>7.0f} {row.keys_deleted:>12} {deletes:>14} {ratio:>7}"
            )
        lines.append("")
    lines += [
        "floor s: latency only: calls x latency (/ MAX_WORKERS for this code, group pages sequential);"
        " throttled: (calls answered - the burst of one second's worth) / the rate limit.",
        "calls/user: IAM calls answered (throttled answers not included) per member; throttled: answers"
        " 'Throttling' (each retried).",
        "ratio: latency only: baseline wall / this wall; throttled: wall / floor.",
        "CPU s: user+system CPU of the measured process; server CPU s: moto.server's process during the run."
        " When their sum nears wall time x CPUs, the machine's CPU, not IAM, is the limit.",
    ]
    if any(row.estimated for row in latency_rows):
        lines.append(
            f"est.: the baseline ran on the first {args.sample} members of the group; wall time = its GetGroup time"
            " + its time per member x all members; CPU and keys deleted scaled by members (EXTRAPOLATED, not measured)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000], help="latency table group sizes (1000 5000)")
    parser.add_argument("--latency-ms", type=int, default=50, help="delay of every IAM call (50)")
    parser.add_argument("--workers", type=int, default=16, help="MAX_WORKERS of this implementation (16)")
    parser.add_argument("--baseline-max", type=int, default=5000, help="largest group the baseline runs in full (5000)")
    parser.add_argument("--sample", type=int, default=500, help="members the baseline runs on above that (500)")
    parser.add_argument("--throttled-size", type=int, default=5000, help="members of the throttled runs (5000; 0: none)")
    parser.add_argument("--rates", type=float, nargs="*", default=[20, 50], help="IAM rate limits, calls/s (20 50)")
    parser.add_argument("--compare-size", type=int, default=1000, help="members of the standard-vs-adaptive runs (1000; 0: none)")
    args = parser.parse_args(argv)

    latency = args.latency_ms / 1000
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    control = ServerControl(parent.recv())
    started, started_load = time.monotonic(), os.getloadavg()[0]
    latency_rows: list[Row] = []
    throttled_rows: list[Row] = []
    try:
        for users in args.sizes:
            latency_rows.append(measure_baseline(ctx, control, users, latency, args))
            label = "this: exempt_groups, tag check off (floor)"
            latency_rows.append(measure_this(ctx, control, users, latency, None, args, label))
        for rate in args.rates:
            if args.compare_size:
                for mode in ("standard", "adaptive"):
                    label = f"this at {rate:g} calls/s, botocore {mode} retries"
                    row = measure_this(ctx, control, args.compare_size, latency, rate, args, label, retry_mode=mode)
                    throttled_rows.append(row)
            if args.throttled_size:
                label = f"this at {rate:g} calls/s (the Lambda: adaptive)"
                throttled_rows.append(measure_this(ctx, control, args.throttled_size, latency, rate, args, label))
    finally:
        parent.send("stop")
        server.join(timeout=10)
    _progress(f"done in {time.monotonic() - started:.0f} s")
    print(render(latency_rows, throttled_rows, args, started_load))


if __name__ == "__main__":
    main()
