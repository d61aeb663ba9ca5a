"""One invocation of the rotation Lambda, from settings and request to a report: the domain's
single entry point. Collaborators come in through ``RunPorts``; ``rotation.composition`` builds the
real ones.

Order: read the GitLab token, check it once (and watch its expiry: a rotated token is stored
before anything else), pre-flight every user and target (which is each user's first
observation: ``rotation.observation``), then reconcile each user. One user's failure
does not stop the others; the report says who failed and why. When the Lambda's time is nearly
up (``RunPorts.time_left``) the run stops at a safe point: the user being reconciled says where
(``stopped``), and the users not started are listed (``not_started``) for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..common.events import EventError
from ..common.metrics import Metric
from .errors import describe
from .observation import Observation
from .plan import Policy
from .ports import (
    Clock,
    GitLab,
    IamKeys,
    Notifier,
    Sleep,
    StateStore,
    StsVerifier,
    TokenStore,
    UserPorts,
    unlimited_time,
)
from .preflight import TokenCheck, check_token, check_users, watch_token_expiry
from .reconcile import Reconciler, UserReport
from .request import RunRequest
from .settings import RotatedUser, RotationSettings
from .steps import enough_time
from .verification import VerificationPolicy

logger = logging.getLogger(__name__)

DEFAULT_VERIFICATION = VerificationPolicy()


@dataclass(frozen=True)
class RunPorts:
    iam: IamKeys
    state_store: Callable[[str], StateStore]  # by state secret ARN
    token_store: TokenStore
    connect_gitlab: Callable[[str], GitLab]  # by token
    verifier: StsVerifier
    clock: Clock
    sleep: Sleep
    notifier: Notifier
    time_left: Callable[[], float] = unlimited_time  # see ``UserPorts``


@dataclass
class RunReport:
    request: RunRequest
    users: list[UserReport] = field(default_factory=list)
    token: TokenCheck | None = None
    error: str | None = None  # the run as a whole failed (bad event, token, pre-flight)
    duration_seconds: float = 0.0
    gitlab_requests: int = 0
    not_started: list[str] = field(default_factory=list)  # users left for the next run: time was up

    @property
    def failed(self) -> bool:
        return self.error is not None or any(u.outcome == "failed" for u in self.users)

    def failure_summary(self) -> str:
        problems = [self.error] if self.error else []
        problems += [f"{u.iam_user}: {u.error}" for u in self.users if u.outcome == "failed"]
        return "; ".join(p for p in problems if p)

    def metrics(self) -> list[Metric]:
        """The run's counters, for the EMF document of the run (``common.metrics``)."""
        actions = [a for u in self.users for a in u.actions]
        failed_users = sum(u.outcome == "failed" for u in self.users)
        metrics = [
            Metric("RunSucceeded", 0 if self.failed else 1),
            Metric("RunFailed", 1 if self.failed else 0),
            Metric("Rotations", sum(a["action"] == "promote_key" for a in actions)),
            # a rollback ends with dropping AWSPENDING of a key it deleted (an abandoned intent has no key)
            Metric("Rollbacks", sum(a["action"] == "drop_pending" and a["key_id"] is not None for a in actions)),
            Metric("UsersFailed", failed_users),
            Metric("Errors", failed_users + (1 if self.error else 0)),
            Metric("GitLabRequests", self.gitlab_requests),
            Metric("DurationSeconds", round(self.duration_seconds, 3), "Seconds"),
        ]
        if self.token is not None and self.token.days_left is not None:
            metrics.append(Metric("GitLabTokenDaysLeft", self.token.days_left, "None"))
        return metrics

    def as_json(self) -> dict:
        data: dict = {
            "event": "rotation_summary",
            "run_id": self.request.run_id,
            "event_id": self.request.event_id,
            "dry_run": self.request.dry_run,
            "force": self.request.force,
            "ok": not self.failed,
            "duration_seconds": round(self.duration_seconds, 3),
            "gitlab_requests": self.gitlab_requests,
            "users": [u.as_json() for u in self.users],
        }
        if self.not_started:
            data["not_started"] = self.not_started
        if self.token is not None:
            data["gitlab_token"] = self.token.as_json()
        if self.error:
            data["error"] = self.error
        return data


def run_rotation(
    settings: RotationSettings,
    request: RunRequest,
    ports: RunPorts,
    verification: VerificationPolicy = DEFAULT_VERIFICATION,
) -> RunReport:
    started = ports.clock.now()
    report = RunReport(request)
    gitlab: GitLab | None = None
    try:
        users = _selected_users(settings, request)
        gitlab = ports.connect_gitlab(ports.token_store.read())
        today = started.date()
        info = check_token(gitlab, settings.gitlab_token_secret_arn, today)
        report.token = watch_token_expiry(
            gitlab,
            info,
            today=today,
            warning_days=settings.token_expiry_warning_days,
            rotate=settings.rotate_gitlab_token,
            dry_run=request.dry_run,
            token_store=ports.token_store,
            token_secret_arn=settings.gitlab_token_secret_arn,
            notifier=ports.notifier,
            run_id=request.run_id,
            now=started,
        )
        observations = [
            Observation(user, ports.iam, ports.state_store(user.state_secret_arn), gitlab, ports.clock)
            for user in users
        ]
        check_users(observations, gitlab, ports.iam)
    except Exception as exc:
        report.error = describe(exc)
    else:
        policy = Policy(
            rotation_period=timedelta(days=settings.rotation_period_days),
            grace_period=timedelta(hours=settings.grace_period_hours),
            deletion_window=timedelta(days=settings.deletion_window_days),
        )
        for observation in observations:
            if report.not_started or not enough_time(ports.time_left, gitlab):
                report.not_started.append(observation.user.iam_user)
                continue
            user_ports = UserPorts(
                observation.iam, observation.state, gitlab, ports.verifier, ports.clock, ports.sleep, ports.time_left
            )
            report.users.append(Reconciler(observation, user_ports, policy, verification, request).run())
    report.duration_seconds = (ports.clock.now() - started).total_seconds()
    report.gitlab_requests = gitlab.requests_sent if gitlab is not None else 0
    _notify(settings, report, ports.notifier)
    return report


def _selected_users(settings: RotationSettings, request: RunRequest) -> tuple[RotatedUser, ...]:
    if request.iam_user is None:
        return settings.users
    chosen = tuple(u for u in settings.users if u.iam_user == request.iam_user)
    if not chosen:
        configured = ", ".join(u.iam_user for u in settings.users)
        raise EventError(
            f"the event's iam_user {request.iam_user!r} is not a configured user; configured: {configured}"
        )
    return chosen


def _notify(settings: RotationSettings, report: RunReport, notifier: Notifier) -> None:
    if report.failed:
        subject, message = "GitLab key rotation failed", report.failure_summary()
    elif settings.notify_on_success and any(u.outcome == "changed" for u in report.users):
        changed = [u for u in report.users if u.outcome == "changed"]
        subject = "GitLab key rotation changed keys"
        message = "; ".join(
            f"{u.iam_user}: " + ", ".join(f"{a['action']} {a['key_id']}" for a in u.actions) for u in changed
        )
    else:
        return
    try:
        notifier.publish(subject, message)
    except Exception as exc:  # the report (and the alarm) still say what happened
        logger.warning("could not publish to the notification topic: %s: %s", type(exc).__name__, exc)
