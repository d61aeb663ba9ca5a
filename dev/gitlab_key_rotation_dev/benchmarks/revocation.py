"""Benchmark: the revocation Lambda's code against the usual weekly script, at 1,000 and 5,000 users.

moto.server runs in its own process on loopback behind a WSGI middleware
(``tests/revocation/moto_iam_server.py``) that delays every IAM call by a fixed latency, standing
for the real IAM API, and counts the calls where IAM would count them. Before each measured run
the account is reset and seeded straight into moto's backend (one group, N members, one Active key
each; no latency). Each measured run is a fresh process, so that its peak RSS is its own; it calls
the Lambda's handler exactly as Lambda would (``{}`` event, settings from a settings.json in its task root), with
boto3 pointed at the server through ``AWS_ENDPOINT_URL``.

The baseline runs in full up to ``--baseline-max`` users (1,000). Above that, it would take
``users x 2 x latency`` (5,000 users: 8+ minutes), so it runs on the first ``--sample`` members of
the big group and its wall time is extrapolated: GetGroup time + per-member time x N; the table
marks such figures "est.". This code runs with its default settings at every size, and with the
exemption-tag check off (2 calls per member instead of 3) at ``--tag-check-off-sizes``.

Run: ``make bench`` (or ``python -m gitlab_key_rotation_dev.benchmarks.revocation --help``).
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


@dataclass(frozen=True)
class Row:
    users: int
    label: str
    wall_seconds: float
    latency_bound_seconds: float  # the wall time if IAM's latency were the only cost
    calls_per_user: float
    calls_per_second: float
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
        """A fresh account with ``users`` members in GROUP, one key each; no latency; counts zeroed."""
        self._post("/_faults/latency", {"seconds": 0})
        self._post("/moto-api/reset")
        self._post("/_faults/seed", {"group": GROUP, "users": users, "prefix": "dev"})
        self._post("/_faults/counts/reset")

    def latency(self, seconds: float) -> None:
        self._post("/_faults/latency", {"seconds": seconds})

    def counts(self) -> dict[str, int]:
        return self._get("/_faults/counts")

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
        from benchmarks.weekly_script_baseline import revoke_like_the_usual_script

        cpu_before, started = _cpu_seconds(), time.monotonic()
        outcome = revoke_like_the_usual_script([GROUP], limit=options.get("limit"))
    else:
        task_root = tempfile.mkdtemp(prefix="bench-task-root-")  # the function's code asset: its settings.json
        Path(task_root, SETTINGS_FILE).write_text(json.dumps(options["settings"]))
        os.environ["LAMBDA_TASK_ROOT"] = task_root
        from gitlab_key_rotation.lambda_src.revocation.handler import handler

        cpu_before, started = _cpu_seconds(), time.monotonic()
        result = handler({}, None)
        outcome = {
            "users_done": result["users_scanned"],
            "keys_deleted": result["keys_deleted"],
            "listing_seconds": 0.0,
        }
    outcome["wall_seconds"] = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_seconds"] = usage.ru_utime + usage.ru_stime - cpu_before
    outcome["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    conn.send(outcome)


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


def _measured_run(ctx, control: ServerControl, users: int, latency: float, kind: str, options: dict):
    """Seed ``users`` members, run ``kind`` with the latency on; the outcome, IAM's counts, server CPU."""
    control.prepare(users)
    control.latency(latency)
    server_cpu = control.cpu_seconds()
    outcome = _run(ctx, kind, control.url, options)
    server_cpu = control.cpu_seconds() - server_cpu
    control.latency(0)
    return outcome, control.counts(), server_cpu


def measure_baseline(ctx, control: ServerControl, users: int, latency: float, args) -> Row:
    sample = None if users <= args.baseline_max else min(args.sample, users)
    _progress(f"{users} users: baseline" + (f" on a sample of {sample} members" if sample else ""))
    outcome, counts, server_cpu = _measured_run(ctx, control, users, latency, "baseline", {"limit": sample})
    done = outcome["users_done"]
    member_calls = counts.get("ListAccessKeys", 0) + counts.get("DeleteAccessKey", 0)
    scale = users / done  # 1 unless sampled
    listing = outcome["listing_seconds"]
    return Row(
        users=users,
        label="baseline: usual script, sequential",
        wall_seconds=listing + (outcome["wall_seconds"] - listing) * scale,
        latency_bound_seconds=(counts.get("GetGroup", 0) + member_calls * scale) * latency,
        calls_per_user=(counts.get("GetGroup", 0) + member_calls * scale) / users,
        calls_per_second=sum(counts.values()) / outcome["wall_seconds"],
        client_cpu_seconds=outcome["cpu_seconds"] * scale,
        server_cpu_seconds=server_cpu * scale,
        peak_rss_mib=outcome["peak_rss_mib"],
        keys_deleted=round(outcome["keys_deleted"] * scale),
        deletes_seen_by_iam=counts.get("DeleteAccessKey", 0),
        estimated=bool(sample),
    )


def measure_this(ctx, control: ServerControl, users: int, latency: float, args, label: str, settings: dict) -> Row:
    _progress(f"{users} users: {label}")
    outcome, counts, server_cpu = _measured_run(ctx, control, users, latency, "this", {"settings": settings})
    calls = sum(counts.values())
    pages = counts.get("GetGroup", 0)
    return Row(
        users=users,
        label=label,
        wall_seconds=outcome["wall_seconds"],
        latency_bound_seconds=(pages + (calls - pages) / args.workers) * latency,
        calls_per_user=calls / users,
        calls_per_second=calls / outcome["wall_seconds"],
        client_cpu_seconds=outcome["cpu_seconds"],
        server_cpu_seconds=server_cpu,
        peak_rss_mib=outcome["peak_rss_mib"],
        keys_deleted=outcome["keys_deleted"],
        deletes_seen_by_iam=counts.get("DeleteAccessKey", 0),
    )


def render(rows: list[Row], args) -> str:
    header = (
        f"IAM latency {args.latency_ms} ms per call (moto.server on loopback, calls counted at the server); "
        f"MAX_WORKERS={args.workers}; {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[1]:.1f} (5 min)"
    )
    columns = (
        f"{'users':>6}  {'implementation':<40} {'wall s':>9} {'IAM-bound s':>11} {'calls/user':>10} {'calls/s':>7} "
        f"{'CPU s':>8} {'server CPU s':>12} {'peak RSS MiB':>12} {'keys deleted':>12} {'deletes at IAM':>14} "
        f"{'baseline/this':>13}"
    )
    lines = [header, "", columns, "-" * len(columns)]
    baselines = {row.users: row for row in rows if row.label.startswith("baseline")}
    for row in rows:
        base = baselines[row.users]
        ratio = "" if row is base else f"{base.wall_seconds / row.wall_seconds:.1f}x"
        est = " est." if row.estimated else ""
        deletes = f"{row.deletes_seen_by_iam}" + (" (sample)" if row.estimated else "")
        lines.append(
            f"{row.users:>6}  {row.label:<40} {f'{row.wall_seconds:.1f}{est}':>9} {row.latency_bound_seconds:>11.1f} "
            f"{row.calls_per_user:>10.3f} {row.calls_per_second:>7.0f} {f'{row.client_cpu_seconds:.1f}{est}':>8} "
            f"{f'{row.server_cpu_seconds:.1f}{est}':>12} {row.peak_rss_mib:>12.0f} "
            f"{row.keys_deleted:>12} {deletes:>14} {ratio:>13}"
        )
    lines += [
        "",
        "IAM-bound s: the wall time if IAM's latency were the only cost (calls x latency,"
        " / MAX_WORKERS for this code).",
        "calls/user and calls/s: IAM calls counted at the server (retries included) per member,"
        " per second of wall time.",
        "CPU s: user+system CPU of the measured process (the Lambda's own work); server CPU s: moto.server's process"
        " during the run. When their sum nears wall time x CPUs, the machine's CPU, not IAM latency, is the limit.",
    ]
    if any(row.estimated for row in rows):
        lines += [
            f"est.: the baseline ran on the first {args.sample} members of the group; wall time = its GetGroup time"
            " + its time per member x all members; CPU and keys deleted scaled by members; peak RSS as measured"
            " (the whole GetGroup answer was loaded).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="group sizes (1000 5000)")
    parser.add_argument("--latency-ms", type=int, default=50, help="delay of every IAM call (50)")
    parser.add_argument("--workers", type=int, default=16, help="MAX_WORKERS of this implementation (16)")
    parser.add_argument("--baseline-max", type=int, default=1000, help="largest group the baseline runs in full (1000)")
    parser.add_argument("--sample", type=int, default=250, help="members the baseline runs on above that (250)")
    parser.add_argument(
        "--tag-check-off-sizes", type=int, nargs="*", default=[1000],
        help="group sizes at which this code also runs with EXEMPT_TAG_KEY='' (1000)",
    )
    args = parser.parse_args(argv)

    latency = args.latency_ms / 1000
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    control = ServerControl(parent.recv())
    started = time.monotonic()
    rows = []
    try:
        for users in args.sizes:
            rows.append(measure_baseline(ctx, control, users, latency, args))
            base_settings = {"groups": [GROUP], "max_workers": args.workers}
            rows.append(measure_this(ctx, control, users, latency, args, "this: default (tag check on)", base_settings))
            if users in args.tag_check_off_sizes:
                tag_check_off = {**base_settings, "exempt_tag_key": ""}
                label = "this: exempt_tag_key='' (tag check off)"
                rows.append(measure_this(ctx, control, users, latency, args, label, tag_check_off))
    finally:
        parent.send("stop")
        server.join(timeout=10)
    _progress(f"done in {time.monotonic() - started:.0f} s")
    print(render(rows, args))


if __name__ == "__main__":
    main()
