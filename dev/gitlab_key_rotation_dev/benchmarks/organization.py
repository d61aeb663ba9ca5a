"""Benchmark: the revocation Lambda in organization mode, over many member accounts.

The same server as ``benchmarks.revocation`` (moto.server in its own process behind the fault
middleware: every IAM call waits ``--latency-ms``, calls counted at the server). Each of
``--accounts`` emulated accounts is seeded with one group of ``--members`` members, one Active key
each. A measured run is a fresh process calling the revocation handler as Lambda would, with
``REVOCATION_ACCOUNTS`` listing the accounts: it assumes each account's member role (moto.server
checks no policy, and STS calls get no added latency: one per account) and revokes there,
``ACCOUNT_WORKERS`` accounts at once with ``MAX_WORKERS`` members each.

Run: ``make bench-organization`` (or ``python -m gitlab_key_rotation_dev.benchmarks.organization --help``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

from gitlab_key_rotation.lambda_src.contract import SETTINGS_FILE

from gitlab_key_rotation_dev.benchmarks.revocation import GROUP, ServerControl, _cpu_seconds, _progress, _serve

PATTERN = "arn:aws:iam::{account}:role/gitlab-key-rotation/KeyRotationMember-revocation"


def _measure(url: str, settings: dict, env: dict, conn) -> None:
    import resource

    task_root = tempfile.mkdtemp(prefix="bench-task-root-")  # the function's code asset: its settings.json
    Path(task_root, SETTINGS_FILE).write_text(json.dumps(settings))
    env = {**env, "LAMBDA_TASK_ROOT": task_root}

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_IAM"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
        **env,
    )  # fmt: skip
    from gitlab_key_rotation.lambda_src.revocation.handler import handler

    cpu_before, started = _cpu_seconds(), time.monotonic()
    result = handler({}, None)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send(
        {
            "wall_seconds": time.monotonic() - started,
            "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
            "peak_rss_mib": usage.ru_maxrss / 1024,
            "users_scanned": result["users_scanned"],
            "keys_deleted": result["keys_deleted"],
            "error_count": result["error_count"],
            "account_count": result["account_count"],
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20, help="member accounts (20)")
    parser.add_argument("--members", type=int, default=250, help="members of the group in each account (250)")
    parser.add_argument("--latency-ms", type=int, default=50, help="delay of every IAM call (50)")
    parser.add_argument("--workers", type=int, default=16, help="MAX_WORKERS: members at once per account (16)")
    parser.add_argument(
        "--account-workers", type=int, nargs="+", default=[4], help="ACCOUNT_WORKERS values to measure (4)"
    )
    args = parser.parse_args(argv)
    accounts = [f"{200000000000 + n:012d}" for n in range(1, args.accounts + 1)]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    control = ServerControl(parent.recv())
    lines = [
        f"revocation over {args.accounts} accounts x {args.members} members (one key each), IAM latency "
        f"{args.latency_ms} ms per call, MAX_WORKERS={args.workers}; {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "",
        f"{'ACCOUNT_WORKERS':>15} {'wall s':>8} {'IAM-bound s':>11} {'IAM calls':>9} {'calls/s':>7} {'CPU s':>6} "
        f"{'server CPU s':>12} {'RSS MiB':>7} {'keys deleted':>12} {'errors':>6}",
    ]
    try:
        for account_workers in args.account_workers:
            _progress(f"seeding {args.accounts} x {args.members} members")
            control._post("/_faults/latency", {"seconds": 0})
            control._post("/moto-api/reset")
            for account in accounts:
                control._post("/_faults/seed", {"groups": [GROUP], "users": args.members, "prefix": "dev", "account": account})
            control._post("/_faults/counts/reset")
            control.latency(args.latency_ms / 1000)
            settings = {
                "groups": [GROUP],
                "accounts": accounts,
                "max_workers": args.workers,
                "account_workers": account_workers,
            }
            env = {"MEMBER_ROLE_ARN_PATTERN": PATTERN}
            _progress(f"measuring ACCOUNT_WORKERS={account_workers}")
            server_cpu = control.cpu_seconds()
            receive, send = ctx.Pipe()
            process = ctx.Process(target=_measure, args=(control.url, settings, env, send))
            process.start()
            outcome = receive.recv()
            process.join()
            server_cpu = control.cpu_seconds() - server_cpu
            control.latency(0)
            calls = sum(control.counts().values())
            pages = control.counts().get("GetGroup", 0)
            bound = (pages / min(account_workers, args.accounts) + (calls - pages) / (args.workers * min(account_workers, args.accounts))) * (
                args.latency_ms / 1000
            )
            lines.append(
                f"{account_workers:>15} {outcome['wall_seconds']:>8.1f} {bound:>11.1f} {calls:>9} "
                f"{calls / outcome['wall_seconds']:>7.0f} {outcome['cpu_seconds']:>6.1f} {server_cpu:>12.1f} "
                f"{outcome['peak_rss_mib']:>7.0f} {outcome['keys_deleted']:>12} {outcome['error_count']:>6}"
            )
    finally:
        parent.send("stop")
        server.join(timeout=10)
    lines += [
        "",
        "IAM-bound s: the wall time if IAM's latency were the only cost (group pages / accounts at once +"
        " other calls / (MAX_WORKERS x ACCOUNT_WORKERS), x latency).",
        f"load average at the end {os.getloadavg()[1]:.1f} (5 min)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
