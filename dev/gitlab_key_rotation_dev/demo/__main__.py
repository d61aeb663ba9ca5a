"""``python -m gitlab_key_rotation_dev.demo`` (``make demo``): the product's main job, locally, on the embedded settings.

Starts the AWS emulator and the project's GitLab API server, synthesizes the stack, "deploys" it
into the emulator, seeds a CI machine user whose 100-day-old key GitLab holds (and its state secret records) and
developers with keys, then invokes the handlers named in the template (rotation, then revocation) with the
environment and the role permissions the template gives them. Prints what changed; exits 1 if a
run failed (with ``--gitlab-outage``: unless the rotation failed and was rolled back cleanly).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from gitlab_key_rotation.lambda_src.revocation.handler import SUMMARY_MESSAGE as REVOCATION_SUMMARY
from gitlab_key_rotation.lambda_src.rotation.handler import SUMMARY_MESSAGE as ROTATION_SUMMARY
from gitlab_key_rotation_dev import log_records
from gitlab_key_rotation_dev.demo.deployment import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation_dev.demo.invoke import Invocation
from gitlab_key_rotation_dev.demo.local_run import LocalRun
from gitlab_key_rotation_dev.demo.organization import MEMBER_ACCOUNTS, organization_context
from gitlab_key_rotation_dev.demo.report import print_comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitlab_key_rotation_dev.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help='rotate even if the key is young (event {"force": true})')
    parser.add_argument("--dry-run", action="store_true", help='both functions only report (event {"dry_run": true})')
    parser.add_argument(
        "--gitlab-outage", action="store_true", help="GitLab answers 503 on the second target: watch the rollback"
    )
    parser.add_argument(
        "--key-age-days",
        type=int,
        default=100,
        help="age of the machine user's managed key (default 100; under the rotation period nothing is due)",
    )
    parser.add_argument(
        "--organization",
        action="store_true",
        help="organization mode: a hub and three member accounts (machine users in two, developers in all three)",
    )
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto.server's access log

    started = time.monotonic()
    step = _Progress()
    organization = (
        {"context": organization_context(), "member_accounts": MEMBER_ACCOUNTS} if args.organization else {}
    )
    with LocalRun(key_age_days=args.key_age_days, progress=step, **organization) as local:
        before = local.observe()
        if args.gitlab_outage:
            second = local.config.rotation.users[0].targets[-1]
            where = "groups" if second.kind == "group" else "projects"
            local.emulators.gitlab.inject(path=rf"/{where}/[^/]+/variables", method="PUT", status=503, times=None)
            local.emulators.gitlab.inject(path=rf"/{where}/[^/]+/variables", method="POST", status=503, times=None)
            step(f"injected: GitLab answers 503 to every write on {second.kind} {second.id}")
        rotation_event = {k: True for k, on in (("force", args.force), ("dry_run", args.dry_run)) if on}
        step(f"invoking {ROTATION_HANDLER} with event {json.dumps(rotation_event)}")
        rotation = local.invoke(ROTATION_HANDLER, rotation_event)
        _show(rotation, step, local.config.rotation.period_days)
        local.emulators.gitlab.clear_faults()
        revocation_event = {"dry_run": True} if args.dry_run else {}
        step(f"invoking {REVOCATION_HANDLER} with event {json.dumps(revocation_event)}")
        revocation = local.invoke(REVOCATION_HANDLER, revocation_event)
        _show(revocation, step, local.config.rotation.period_days)
        after = local.observe()
        print_comparison(before, after, local.scenario, local.config)

    print()
    if args.gitlab_outage:
        rolled_back = not rotation.ok and before.keys[local.scenario.machine_users[0]] == after.keys[
            local.scenario.machine_users[0]
        ] and [v.value for v in before.variables] == [v.value for v in after.variables]
        verdict = "rotation failed on the outage and was rolled back: same keys, same GitLab values" if rolled_back else (
            "the outage did not end in a clean rollback"
        )
        ok = rolled_back and revocation.ok
    else:
        ok = rotation.ok and revocation.ok
        verdict = "both runs succeeded" if ok else "a run failed (see above)"
    print(f"{'OK' if ok else 'FAILED'}: {verdict} ({time.monotonic() - started:.1f}s)")
    return 0 if ok else 1


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {line}", flush=True)


def _show(invocation: Invocation, say: _Progress, period_days: int) -> None:
    outcome = "succeeded" if invocation.ok else f"FAILED: {invocation.error}"
    say(f"  {outcome} ({invocation.seconds:.1f}s)")
    summary = log_records.summary(invocation.records, (ROTATION_SUMMARY, REVOCATION_SUMMARY))
    would = "would " if summary.get("dry_run") else ""
    for user in summary.get("users", []):
        name = user.get("iam_user", "?")
        for action in user.get("actions", []):
            details = ", ".join(f"{k}={v}" for k, v in action.items() if k not in ("action", "what") and v is not None)
            say(f"    {name}: {would}{action['action']} {details}")
        age = user.get("current_key_age_days")
        if user.get("outcome") == "unchanged":
            why = f"its key is {age:g} days old, under the {period_days}-day period" if age is not None else "nothing due"
            say(f"    {name}: nothing rotated: {why}")
        for note in user.get("notes", []):
            say(f"    {name}: note: {note}")
    for account in summary.get("accounts", []):
        say(
            f"    account {account['account']}: {account.get('users_scanned', 0)} users scanned, "
            f"{'would delete' if would else 'deleted'} {account.get('keys_deleted', 0)} keys, {account['error_count']} errors"
        )
    if "users_scanned" in summary:
        say(
            f"    groups {summary['groups']}: {summary['users_scanned']} users scanned, "
            f"{would}delete {summary['keys_deleted']} keys, {would}deactivate {summary['keys_deactivated']}, "
            f"skipped {summary['skipped_users']}, {summary['error_count']} errors"
            if would
            else f"    groups {summary['groups']}: {summary['users_scanned']} users scanned, "
            f"{summary['keys_deleted']} keys deleted, {summary['keys_deactivated']} deactivated, "
            f"skipped {summary['skipped_users']}, {summary['error_count']} errors"
        )
    for document in invocation.metric_documents():
        names = [m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
        labels = {k: document[k] for k in ("IamUser",) if k in document}
        say(f"    metrics{' ' + str(labels) if labels else ''}: " + ", ".join(f"{n}={document[n]}" for n in names))


if __name__ == "__main__":
    sys.exit(main())
