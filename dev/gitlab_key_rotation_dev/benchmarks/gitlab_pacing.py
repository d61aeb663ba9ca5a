"""Benchmark: the rotation's GitLab client with and without its rate budget, against GitLab's limit.

The project's GitLab server (plain HTTP on loopback) limits the token to ``--limit`` requests a
minute in fixed 60 s windows, as gitlab.com's throttle does, answering either GitLab's JSON 429
with ``Retry-After`` or the bare plain-text ``Retry later`` without it. The client makes
``--calls`` calls (``GET /personal_access_tokens/self``, one request each when not refused) with
its production retry settings, under each budget of ``--budgets`` (``none``: no budget). Server
and client share one fake clock, so minutes of pacing take about a second; the times shown are
that clock's. Counted at the server: requests received and 429s sent.

Run: ``python -m gitlab_key_rotation_dev.benchmarks.gitlab_pacing`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import logging
from datetime import date

from gitlab_key_rotation.lambda_src.rotation.gitlab_client import GitLabClient
from gitlab_key_rotation.lambda_src.rotation.ports import GitLabError

from gitlab_key_rotation_dev.clock import FakeClock
from gitlab_key_rotation_dev.gitlab_server import GitLabServer


def measure(limit: int, budget: int | None, plain_text: bool, calls: int, phase: float) -> dict[str, object]:
    clock = FakeClock()
    clock.advance(seconds=phase)
    seconds = lambda: clock.now().timestamp()  # noqa: E731
    with GitLabServer() as server:
        server.add_user("bot")
        token = server.add_token("bot", expires_at=date(2099, 1, 1))
        server.limit_rate(limit, plain_text=plain_text, clock=seconds)
        client = GitLabClient(server.url, token, sleep=clock.sleep, monotonic=seconds, max_requests_per_minute=budget)
        start = seconds()
        failed = 0
        for _ in range(calls):
            try:
                client.token_info()
            except GitLabError:
                failed += 1
        client.close()
        return {
            "429": "plain text" if plain_text else "JSON, Retry-After",
            "budget": "none" if budget is None else f"{budget}/min",
            "requests": len(server.requests),
            "429s": server.throttled,
            "failed calls": failed,
            "minutes": round((seconds() - start) / 60, 2),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=100, help="the server's limit per minute (gitlab.com Free: 100)")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--budgets", default="80,100,none", help="comma-separated budgets per minute, or none")
    parser.add_argument("--phase", type=float, default=0.0, help="seconds into a window the clock starts at")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # one retry warning per 429 otherwise
    budgets = [None if b.strip() == "none" else int(b) for b in args.budgets.split(",")]
    print(f"{args.calls} calls against a limit of {args.limit}/min per token (fixed 60 s windows), starting {args.phase} s into one")
    rows = [measure(args.limit, b, plain, args.calls, args.phase) for plain in (False, True) for b in budgets]
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
