"""The one settings contract, as a property: any valid cdk.json settings synthesize, and each Lambda
reads back from its code asset and environment exactly what was configured; any of them made
invalid in one place is refused at synth, naming that key."""

from __future__ import annotations

import copy
import re
import string
import tempfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitlab_key_rotation.config import CONTEXT_KEY, ConfigError, load_deployments
from gitlab_key_rotation.key_rotation_stack import KeyRotationStack
from gitlab_key_rotation.lambda_src.contract.rules import KNOWN_REGIONS, LOG_RETENTION_DAYS
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings
from gitlab_key_rotation.lambda_src.rotation.settings import RotationSettings
from tests.cdk.synth import REPO, SKIP_BUNDLING, code_dir, render, resources, stand_in_arns
from tests.cdk.synth import Synthesis

IAM_CHARS = string.ascii_letters + string.digits + "+=,.@_-"
iam_names = st.text(IAM_CHARS, min_size=1, max_size=20)
segments = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True).filter(lambda s: not s.endswith((".", ".git", ".atom")))
paths = st.lists(segments, min_size=1, max_size=4).map("/".join)
target_ids = st.one_of(st.integers(1, 10**9), st.integers(1, 10**9).map(str), paths)
scopes = st.one_of(st.just("*"), st.from_regex(r"[a-zA-Z0-9_/${}.-]([a-zA-Z0-9_/${}. *-]{0,20}[a-zA-Z0-9_/${}.*-])?", fullmatch=True))
variables = st.from_regex(r"[A-Z][A-Z0-9_]{0,30}", fullmatch=True)
tag_keys = st.one_of(st.just(""), st.from_regex(r"[a-zA-Z0-9 _.:/=+@-]{1,40}", fullmatch=True).filter(lambda k: not k.lower().startswith("aws:")))
# (schedule, heartbeat_hours): a rate() or a monthly cron needs heartbeat_hours (checked by the construct from
# the schedule's longest silence, stacks/observability.py, not yet by the contract)
schedules = st.sampled_from([
    ("cron(0 6-18 ? * MON-FRI *)", None), ("cron(15 * ? * * *)", None), ("cron(0 0 1 * ? *)", 0),
    ("rate(1 hour)", 2), ("rate(30 minutes)", 1), ("rate(7 days)", 168),
])  # fmt: skip


@st.composite
def targets(draw: st.DrawFn, index: int) -> dict:
    target = {"kind": draw(st.sampled_from(["group", "project"])), "id": draw(target_ids)}
    if draw(st.booleans()):
        key_var = draw(variables)
        target |= {"access_key_id_variable": f"{key_var}_{index}_ID", "secret_access_key_variable": f"{key_var}_{index}_SECRET"}
    target |= draw(st.fixed_dictionaries({}, optional={
        "environment_scope": scopes, "protected": st.booleans(), "masked": st.booleans(), "raw": st.booleans(),
        "description": st.text(st.characters(codec="utf-8"), max_size=255),
    }))  # fmt: skip
    return target


@st.composite
def valid_settings(draw: st.DrawFn) -> dict:
    names = draw(st.lists(iam_names, min_size=1, max_size=3, unique_by=str.casefold))
    users = []
    for u, name in enumerate(names):
        # distinct variable names per target, so no two targets write the same variable
        user_targets = [draw(targets(10 * u + t)) for t in range(draw(st.integers(1, 3)))]
        for t, target in enumerate(user_targets):
            target.setdefault("access_key_id_variable", f"AWS_ACCESS_KEY_ID_{u}_{t}")
            target.setdefault("secret_access_key_variable", f"AWS_SECRET_ACCESS_KEY_{u}_{t}")
        user = {"iam_user": name, "targets": user_targets}
        if draw(st.booleans()):
            user["iam_path"] = "/" + "".join(f"{s}/" for s in draw(st.lists(segments, min_size=1, max_size=3)))
        users.append(user)
    period = draw(st.integers(1, 400))
    rotation_schedule, rotation_heartbeat = draw(schedules)
    revocation_schedule, revocation_heartbeat = draw(schedules)
    return {
        "stack_name": "Generated",
        "region": draw(st.one_of(st.none(), st.sampled_from(KNOWN_REGIONS))),
        "log_retention_days": draw(st.sampled_from(LOG_RETENTION_DAYS)),
        "gitlab": {
            "url": draw(st.sampled_from(["https://gitlab.com", "https://gitlab.example.com:8443", "https://git.example.org/gitlab/"])),
            "token_expiry_warning_days": draw(st.integers(1, 365)),
            "rotate_token": draw(st.booleans()),
            "max_requests_per_minute": draw(st.integers(1, 2000)),
        },
        "rotation": {
            "users": users,
            "schedule": rotation_schedule,
            "heartbeat_hours": rotation_heartbeat,
            "period_days": period,
            "grace_period_hours": draw(st.integers(0, period * 24 - 1)),
            "deletion_window_days": draw(st.integers(0, 90)),
            "notify_on_success": draw(st.booleans()),
            "dry_run": draw(st.booleans()),
        },
        "revocation": {
            "groups": draw(st.lists(iam_names, min_size=1, max_size=3, unique_by=str.casefold)),
            "exempt_users": draw(st.lists(iam_names, max_size=3, unique_by=str.casefold)),
            "exempt_tag_key": draw(tag_keys),
            "action": draw(st.sampled_from(["delete", "deactivate"])),
            "min_key_age_days": draw(st.integers(0, 30)),
            "max_workers": draw(st.integers(1, 64)),
            "schedule": revocation_schedule,
            "heartbeat_hours": revocation_heartbeat,
        },
    }


def synthesize(settings: dict, outdir: Path) -> Synthesis:
    (config,) = load_deployments({CONTEXT_KEY: settings}, REPO)
    app = cdk.App(context=SKIP_BUNDLING, outdir=str(outdir))
    KeyRotationStack(app, config.stack_name, config=config)
    app.synth()
    return Synthesis(outdir=outdir, stack_names=[config.stack_name], validation_error=None)


def function_ids(template: dict) -> dict[str, str]:
    return {r["Properties"]["Handler"].split(".")[2]: k for k, r in resources(template, "AWS::Lambda::Function").items()}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_settings())
def test_valid_settings_synthesize_and_each_lambda_reads_them_back(settings: dict) -> None:
    with tempfile.TemporaryDirectory() as outdir:
        synthesis = synthesize(settings, Path(outdir))
        template = synthesis.template()
        ids = function_ids(template)
        refs = stand_in_arns(template)

        def env(job: str) -> dict[str, str]:
            variables = render(template["Resources"][ids[job]]["Properties"]["Environment"]["Variables"], refs)
            return {**variables, "LAMBDA_TASK_ROOT": str(code_dir(synthesis, "Generated", ids[job]))}

        rotation = RotationSettings.load(env("rotation"))
        revocation = RevocationSettings.load(env("revocation"))

    configured = settings["rotation"]
    assert rotation.gitlab_url == settings["gitlab"]["url"].rstrip("/")
    assert (rotation.rotation_period_days, rotation.grace_period_hours, rotation.deletion_window_days) == (
        configured["period_days"], configured["grace_period_hours"], configured["deletion_window_days"])  # fmt: skip
    assert (rotation.token_expiry_warning_days, rotation.rotate_gitlab_token) == (settings["gitlab"]["token_expiry_warning_days"], settings["gitlab"]["rotate_token"])
    assert rotation.gitlab_max_requests_per_minute == settings["gitlab"]["max_requests_per_minute"]
    assert (rotation.dry_run, rotation.notify_on_success) == (configured["dry_run"], configured["notify_on_success"])
    assert [u.iam_user for u in rotation.users] == [u["iam_user"] for u in configured["users"]]
    for user, wanted in zip(rotation.users, configured["users"], strict=True):
        assert user.state_secret_arn in refs.values()
        for target, given_target in zip(user.targets, wanted["targets"], strict=True):
            assert {k: getattr(target, k) for k in given_target} == {**given_target, "id": str(given_target["id"])}
    assert len({u.state_secret_arn for u in rotation.users}) == len(rotation.users)
    wanted_revocation = settings["revocation"]
    assert revocation.groups == tuple(wanted_revocation["groups"])
    assert revocation.exempt_users == frozenset(wanted_revocation["exempt_users"])
    assert revocation.protected_users == frozenset(u["iam_user"] for u in configured["users"])
    assert revocation.exempt_tag_key == (wanted_revocation["exempt_tag_key"] or None)
    assert (revocation.action, revocation.min_key_age_days, revocation.max_workers) == (
        wanted_revocation["action"], wanted_revocation["min_key_age_days"], wanted_revocation["max_workers"])  # fmt: skip


# One way to break each kind of setting: (where, the bad value). The generated settings are valid,
# so the only problem reported is the one put in, named by its key path.
BREAKS = [
    (("gitlab", "url"), "https://bot:hunter2@gitlab.com"),
    (("gitlab", "url"), "https://gitlab.com/api/v4"),
    (("gitlab", "token_expiry_warning_days"), 366),
    (("gitlab", "max_requests_per_minute"), 0),
    (("rotation", "users", 0, "iam_user"), "ci deployer"),
    (("rotation", "users", 0, "iam_path"), "machines"),
    (("rotation", "users", 0, "targets", 0, "id"), "https://gitlab.com/grp/proj"),
    (("rotation", "users", 0, "targets", 0, "environment_scope"), "prod;rm"),
    (("rotation", "users", 0, "targets", 0, "access_key_id_variable"), "AWS-KEY"),
    (("rotation", "users", 0, "targets", 0, "description"), "x" * 256),
    (("rotation", "schedule"), "cron(0 6 * * *)"),
    (("rotation", "period_days"), 0),
    (("rotation", "deletion_window_days"), -1),
    (("revocation", "exempt_tag_key"), "aws:exempt"),
    (("revocation", "groups"), ["bad group"]),
    (("revocation", "max_workers"), 65),
    (("revocation", "schedule"), "rate(1 days)"),
    (("log_retention_days"), 100),
    (("region",), "eu-west-9"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_settings(), st.sampled_from(BREAKS))
def test_valid_settings_broken_in_one_place_are_refused_naming_that_key(settings: dict, broken: tuple) -> None:
    where, value = broken
    where = (where,) if isinstance(where, str) else where
    bad = copy.deepcopy(settings)
    node = bad
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    with pytest.raises(ConfigError) as caught:
        load_deployments({CONTEXT_KEY: bad}, REPO)
    path = CONTEXT_KEY + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
    (problem,) = caught.value.problems
    assert problem.startswith(path + " "), problem
    assert "hunter2" not in problem
    assert re.search(r"must be .*, got ", problem), problem
