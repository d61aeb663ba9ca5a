"""A rotation world for tests: moto (IAM, Secrets Manager, STS, SNS) in-process, the project's
GitLab server over HTTPS on loopback, one clock for both, and the real adapters wired to them.

AWS time follows the test clock (the ``world`` fixture points moto's IAM ``utcnow`` at it), so a
key created "now" has the test's "now" as its CreateDate and the clock can jump days ahead.

A run has unlimited time unless given a ``time_left`` (``RunPorts.time_left``): ``run(time_left=
world.time_left_until(writes=n))`` runs out of time once the GitLab server has received n writes,
``time_left_until(checks=n)`` after the run has asked n times (before each user, step and target).

``with world.late_writes_land():`` makes a write the GitLab server holds (``late_write``) really
land while the run waits: a short client read timeout, and every sleep of the world's time also
waits, for real and at most that long, until the server has no request left in hand.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import boto3
import moto.iam.models
from moto import mock_aws

from gitlab_key_rotation.lambda_src.rotation.aws import Boto3IamKeys, Boto3StsVerifier, SecretsStateStore, SecretsTokenStore, SnsNotifier
from gitlab_key_rotation.lambda_src.rotation.errors import KeyNotUsableError
from gitlab_key_rotation.lambda_src.rotation.composition import STOP_RESERVE_SECONDS
from gitlab_key_rotation.lambda_src.rotation.gitlab_client import GitLabClient
from gitlab_key_rotation.lambda_src.rotation.ports import NewAccessKey, unlimited_time
from gitlab_key_rotation.lambda_src.rotation.request import RunRequest
from gitlab_key_rotation.lambda_src.rotation.run import RunPorts, RunReport, run_rotation
from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget, RotatedUser, RotationSettings
from gitlab_key_rotation.lambda_src.rotation.verification import VerificationPolicy
from gitlab_key_rotation_dev.clock import START, FakeClock
from gitlab_key_rotation_dev.gitlab_server import OWNER, GitLabServer
from gitlab_key_rotation_dev.invariants import Observed, check, held, observe

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
USER = "ci-deployer"

GROUP_TARGET = GitLabTarget(kind="group", id="platform")
PROJECT_TARGET = GitLabTarget(kind="project", id="platform/deployer", environment_scope="production")
TARGETS = (GROUP_TARGET, PROJECT_TARGET)
# The other deliveries, on the same group and project at scopes of their own: the state machine and
# the fault matrix add them to TARGETS.
FILE_TARGET = GitLabTarget(kind="project", id="platform/deployer", environment_scope="staging", delivery="credentials_file")
HIDDEN_TARGET = GitLabTarget(kind="group", id="platform", environment_scope="review/*", hidden=True)

WRITES = ("POST", "PUT", "DELETE")

# Instant, but the same shape as production: backoff doubling, three successes in a row.
FAST_VERIFICATION = VerificationPolicy(give_up_after=40.0)


class PropagatingVerifier:
    """The real STS check on moto, except that a key is refused (as AWS refuses it with
    InvalidClientTokenId) until ``propagation`` has passed on the clock since it was first
    presented: IAM's eventual consistency, which moto does not have. Records every key that
    passed the check."""

    def __init__(self, inner: Boto3StsVerifier, clock: FakeClock, propagation: timedelta = timedelta(0)):
        self.inner = inner
        self.clock = clock
        self.propagation = propagation
        self.first_seen: dict[str, datetime] = {}
        self.verified: set[str] = set()
        self.calls = 0

    def caller_arn(self, key: NewAccessKey) -> str:
        self.calls += 1
        first = self.first_seen.setdefault(key.id, self.clock.now())
        if self.clock.now() - first < self.propagation:
            raise KeyNotUsableError(f"STS refused key {key.id} (InvalidClientTokenId)")
        arn = self.inner.caller_arn(key)
        self.verified.add(key.id)
        return arn


@dataclass
class RotationWorld:
    """Everything one rotation test needs. Build it with ``build_world`` inside ``mock_aws``."""

    gitlab: GitLabServer
    clock: FakeClock
    settings: RotationSettings
    verifier: PropagatingVerifier
    token: str
    iam: object = field(repr=False)
    secrets: object = field(repr=False)
    sns_topic_arn: str = ""
    sqs: object = field(default=None, repr=False)
    sqs_url: str = ""
    seeded_keys: dict[str, str] = field(default_factory=dict)  # key id -> secret, made by "humans"
    client_timeout: tuple[float, float] = (2.0, 1.0)

    @property
    def user(self) -> RotatedUser:
        return self.settings.users[0]

    @property
    def state_arn(self) -> str:
        return self.user.state_secret_arn

    # --- running -------------------------------------------------------------------------

    def ports(
        self,
        wrap: Callable[[str, object], object] = lambda name, port: port,
        time_left: Callable[[], float] = unlimited_time,
    ) -> RunPorts:
        """The real adapters on moto and the GitLab server; ``wrap(name, port)`` may wrap each
        one (the crash tests count and break calls there); ``time_left`` is the Lambda's."""
        clock = self.clock

        def connect(token: str):
            client = GitLabClient(
                self.settings.gitlab_url,
                token,
                ca_bundle=self.settings.gitlab_ca_bundle,
                timeout=self.client_timeout,
                retries=2,
                backoff=0.01,
                max_wait=0.05,
                sleep=clock.sleep,  # waits and the rate budget's pacing pass the world's time
                max_requests_per_minute=self.settings.gitlab_max_requests_per_minute,
                monotonic=lambda: clock.now().timestamp(),
            )
            return wrap("gitlab", client)

        return RunPorts(
            iam=wrap("iam", Boto3IamKeys(self.iam)),
            state_store=lambda arn: wrap("state", SecretsStateStore(self.secrets, arn)),
            token_store=wrap("token_store", SecretsTokenStore(self.secrets, self.settings.gitlab_token_secret_arn)),
            connect_gitlab=connect,
            verifier=wrap("sts", self.verifier),
            clock=clock,
            sleep=clock.sleep,
            notifier=wrap("notifier", SnsNotifier(aws_client("sns"), self.settings.notification_topic_arn)),
            time_left=time_left,
        )

    def run(
        self,
        *,
        wrap=None,
        time_left: Callable[[], float] = unlimited_time,
        run_id: str = "run-1",
        event_id: str | None = None,
        lambda_timeout: float | None = None,
        **options,
    ) -> RunReport:
        """``time_left``: the Lambda's (``time_left_until``); ``lambda_timeout``: instead, the run
        is a Lambda invocation of that many seconds on the world's clock (its remaining time less
        ``STOP_RESERVE_SECONDS``, as the handler gives it)."""
        request = RunRequest(run_id=run_id, event_id=event_id or run_id, **options)
        if lambda_timeout is not None:
            ends = self.clock.now() + timedelta(seconds=lambda_timeout - STOP_RESERVE_SECONDS)
            time_left = lambda: (ends - self.clock.now()).total_seconds()  # noqa: E731
        ports = self.ports(wrap, time_left) if wrap else self.ports(time_left=time_left)
        return run_rotation(self.settings, request, ports, FAST_VERIFICATION)

    @contextmanager
    def late_writes_land(self, read_timeout: float = 0.2) -> Iterator[None]:
        """While open, runs use a client read timeout of ``read_timeout`` seconds, and a sleep of
        the world's time lets a held write land if it lands within it (a real wait that ends as
        soon as the server has nothing in hand). On exit, every held write has landed."""
        clock, timeout = self.clock, self.client_timeout
        fake_sleep = clock.sleep

        def sleep(seconds: float) -> None:
            try:
                self.gitlab.wait_idle(timeout=seconds)
            except TimeoutError:
                pass
            fake_sleep(seconds)

        self.client_timeout, clock.sleep = (timeout[0], read_timeout), sleep
        try:
            yield
        finally:
            self.client_timeout = timeout
            del clock.sleep  # the class's own again
            self.gitlab.wait_idle()

    def time_left_until(self, *, writes: int | None = None, checks: int | None = None) -> Callable[[], float]:
        """A ``time_left`` that is unlimited until the GitLab server has received ``writes`` more
        writes (POST, PUT, DELETE; retries and late ones count on arrival) than now, or until it
        has been asked ``checks`` times, and 0 from then on: the run stops at its next safe point."""

        def received() -> int:
            counts = self.gitlab.request_counts()
            return sum(n for (method, _), n in counts.items() if method in WRITES)

        start, asked = received(), [0]

        def time_left() -> float:
            asked[0] += 1
            out = (writes is not None and received() - start >= writes) or (checks is not None and asked[0] > checks)
            return 0.0 if out else math.inf

        return time_left

    # --- seeding -------------------------------------------------------------------------

    def seed_key(self, *, age_days: float = 0, status: str = "Active", in_targets: bool = False) -> str:
        """A key a human made ``age_days`` ago, optionally already in every target."""
        self.clock.advance(days=-age_days)  # AWS time follows the clock
        key = self.iam.create_access_key(UserName=USER)["AccessKey"]
        self.clock.advance(days=age_days)
        if status != "Active":
            self.iam.update_access_key(UserName=USER, AccessKeyId=key["AccessKeyId"], Status=status)
        self.seeded_keys[key["AccessKeyId"]] = key["SecretAccessKey"]
        if in_targets:
            for target in self.user.targets:
                self.put_target(target, key["AccessKeyId"], key["SecretAccessKey"])
        return key["AccessKeyId"]

    def put_target(self, target: GitLabTarget, key_id: str, secret: str, *, hidden: bool | None = None) -> None:
        """Put a key into ``target`` as its delivery holds it: a credentials file, or the two
        variables, the secret hidden when ``hidden`` (default: the target's ``hidden``)."""
        scope = target.environment_scope
        if target.delivery == "credentials_file":
            content = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
            self.gitlab.set_variable(
                target, target.credentials_file_variable, content, environment_scope=scope, raw=True, variable_type="file"
            )
            return
        self.gitlab.set_variable(
            target, target.access_key_id_variable, key_id, environment_scope=scope, masked=True, raw=True
        )
        self.gitlab.set_variable(
            target,
            target.secret_access_key_variable,
            secret,
            environment_scope=scope,
            masked=True,
            raw=True,
            hidden=target.hidden if hidden is None else hidden,
        )

    def put_state(self, record: dict, stages: list[str] | None = None) -> str:
        return self.secrets.put_secret_value(
            SecretId=self.state_arn, SecretString=json.dumps(record), VersionStages=stages or ["AWSCURRENT"]
        )["VersionId"]

    def seed_retirement_due(self, targets: tuple[GitLabTarget, ...] | None = None) -> tuple[str, str]:
        """A managed key 31 days old (in ``targets``, default all) whose predecessor went Inactive
        8 days ago: a run deletes the predecessor (deletion window over), then rotates. Returns
        (predecessor, current)."""
        previous = self.seed_key(age_days=62, status="Inactive")
        current = self.seed_key(age_days=31)
        for target in self.user.targets if targets is None else targets:
            self.put_target(target, current, self.seeded_keys[current])
        self.put_state(
            {
                "access_key_id": current,
                "secret_access_key": self.seeded_keys[current],
                "pushed_at": (self.clock.now() - timedelta(days=31)).isoformat(),
                "event_id": "ev-0",
                "previous_access_key_id": previous,
                "previous_deactivated_at": (self.clock.now() - timedelta(days=8)).isoformat(),
            }
        )
        return previous, current

    # --- looking ---------------------------------------------------------------------------

    def keys(self) -> dict[str, str]:
        """Key id -> status."""
        return {k["AccessKeyId"]: k["Status"] for k in self.iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]}

    def held(self, target: GitLabTarget) -> tuple[str | None, str | None]:
        """(key id, secret) as the target holds them."""
        return held(self.gitlab, target)

    def stage(self, label: str) -> dict | None:
        stages = self.secrets.describe_secret(SecretId=self.state_arn).get("VersionIdsToStages", {})
        version = next((v for v, labels in stages.items() if label in labels), None)
        if version is None:
            return None
        return json.loads(self.secrets.get_secret_value(SecretId=self.state_arn, VersionId=version)["SecretString"])

    def key_secrets(self) -> dict[str, str]:
        """Key id -> secret, as IAM (moto's backend) knows them: what the invariants compare with."""
        backend = moto.iam.models.iam_backends[ACCOUNT]["aws"]
        return {key_id: key.secret_access_key for key_id, key in backend.access_keys.items()}

    def observe(self) -> Observed:
        return observe(
            iam=self.iam, secrets=self.secrets, gitlab=self.gitlab, user=self.user, key_secrets=self.key_secrets()
        )

    def violations(self, *, settled: bool) -> list[str]:
        return check(
            self.observe(),
            verified=self.verifier.verified,
            seeded=set(self.seeded_keys),
            settled=settled,
            now=self.clock.now(),
        )

    def published(self) -> list[dict]:
        """Messages sent to the notification topic (through an SQS subscription)."""
        messages = self.sqs.receive_message(QueueUrl=self.sqs_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@functools.cache
def aws_session() -> boto3.session.Session:
    """One session (and so one loaded set of service models) for every world: building boto3
    clients is the slowest part of a world. moto intercepts clients made before ``mock_aws``
    starts, and each ``mock_aws`` starts from empty backends."""
    return boto3.session.Session(region_name=REGION)


@functools.cache
def aws_client(service: str):
    return aws_session().client(service)


def build_world(
    gitlab: GitLabServer,
    clock: FakeClock,
    *,
    targets: tuple[GitLabTarget, ...] = TARGETS,
    token_expires: date | None = None,
    token_scopes: tuple[str, ...] = ("api",),
    propagation: timedelta = timedelta(0),
    **setting_overrides,
) -> RotationWorld:
    """Inside ``mock_aws`` with moto's IAM clock on ``clock``: an IAM user, the CDK's secrets
    (state ``{}``, the token), an SNS topic with a queue to read it, and on the GitLab server a
    bot owning group ``platform`` (project ``platform/deployer`` inherits it)."""
    iam = aws_client("iam")
    secrets = aws_client("secretsmanager")
    iam.create_user(UserName=USER)
    state_arn = secrets.create_secret(Name=f"{USER}-state", SecretString="{}")["ARN"]
    gitlab.add_user("rotation-bot")
    token = gitlab.add_token(
        "rotation-bot", scopes=token_scopes, expires_at=token_expires or (START.date() + timedelta(days=200))
    )
    token_arn = secrets.create_secret(Name="gitlab-token", SecretString=json.dumps({"GITLAB_TOKEN": token}))["ARN"]
    gitlab.add_group("platform")
    gitlab.add_project("platform/deployer")
    gitlab.add_member(GROUP_TARGET, "rotation-bot", OWNER)
    sns = aws_client("sns")
    sqs = aws_client("sqs")
    topic = sns.create_topic(Name="rotation-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="rotation-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    settings = RotationSettings(
        gitlab_url=gitlab.url,
        gitlab_token_secret_arn=token_arn,
        users=(RotatedUser(USER, state_arn, targets),),
        gitlab_ca_bundle=gitlab.ca_bundle,
        notification_topic_arn=topic,
    )
    settings = replace(settings, **setting_overrides)
    verifier = PropagatingVerifier(Boto3StsVerifier(aws_session()), clock, propagation)
    return RotationWorld(
        gitlab=gitlab,
        clock=clock,
        settings=settings,
        verifier=verifier,
        token=token,
        iam=iam,
        secrets=secrets,
        sns_topic_arn=topic,
        sqs=sqs,
        sqs_url=queue_url,
    )


@contextmanager
def fresh_world(monkeypatch, setup: Callable[[RotationWorld], None], **build_options) -> Iterator[RotationWorld]:
    """A world of its own (empty moto, a new plain-HTTP GitLab server, a new clock) prepared by
    ``setup``: for tests that need many identical worlds in one test. Needs the ``aws_env``
    fixture (credentials and region)."""
    clock = FakeClock()
    monkeypatch.setattr(moto.iam.models, "utcnow", clock.naive_utc)
    with mock_aws(), GitLabServer() as gitlab:
        gitlab.today = clock.now().date()
        world = build_world(gitlab, clock, **build_options)
        setup(world)
        yield world
