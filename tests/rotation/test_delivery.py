"""The two delivery options of a target, against the project's GitLab server and moto:
``delivery: credentials_file`` (one file variable, one write per rotation, a credentials file the
AWS SDK reads) and ``hidden: true`` (the secret variable created masked and hidden, its value never
read back)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import boto3
import pytest

from gitlab_key_rotation.lambda_src.rotation.settings import GitLabTarget
from gitlab_key_rotation.lambda_src.rotation.state import LOCK_TTL
from gitlab_key_rotation_dev.call_faults import CallLog, Crash
from gitlab_key_rotation_dev.gitlab_server import late_write
from gitlab_key_rotation_dev.rotation_world import USER, RotationWorld, build_world

FILE_TARGET = GitLabTarget("project", "platform/deployer", environment_scope="production", delivery="credentials_file")
HIDDEN_TARGET = GitLabTarget("group", "platform", hidden=True)


@pytest.fixture
def world(aws, gitlab, clock) -> RotationWorld:
    gitlab.today = clock.now().date()
    return build_world(gitlab, clock, targets=(FILE_TARGET, HIDDEN_TARGET))


def current(world: RotationWorld) -> tuple[str, str]:
    state = world.stage("AWSCURRENT")
    return state["access_key_id"], state["secret_access_key"]


def requests_to(world: RotationWorld, path: str) -> Counter:
    return Counter(r.method for r in world.gitlab.requests if path in r.path)


def test_a_credentials_file_target_gets_one_file_variable_in_one_write_that_the_aws_sdk_reads(
    world, tmp_path, monkeypatch
):
    report = world.run(run_id="run-1")
    assert not report.failed, report.as_json()
    key_id, secret = current(world)
    file = world.gitlab.variable(FILE_TARGET, "AWS_SHARED_CREDENTIALS_FILE", "production")
    assert (file.variable_type, file.masked, file.protected) == ("file", False, True)
    assert world.gitlab.variable(FILE_TARGET, "AWS_ACCESS_KEY_ID", "production") is None
    # what a CI job does with it: GitLab writes the value to a file and puts its path in the variable
    path = tmp_path / "credentials"
    path.write_text(file.value)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    credentials = boto3.session.Session().get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.method) == (key_id, secret, "shared-credentials-file")

    world.gitlab.clear_log()
    again = world.run(run_id="run-2", event_id="ev-2", force=True)
    assert not again.failed and current(world)[0] != key_id
    # the project: one list read, ONE write (both halves at once), one read-back
    assert requests_to(world, "/projects/") == Counter({"GET": 2, "PUT": 1})


def test_a_hidden_target_gets_its_secret_created_masked_and_hidden_and_rotated_without_reading_it(world):
    first = world.run(run_id="run-1")
    assert not first.failed, first.as_json()
    key_id, secret = current(world)
    hidden = world.gitlab.variable(HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY")
    visible = world.gitlab.variable(HIDDEN_TARGET, "AWS_ACCESS_KEY_ID")
    assert (hidden.hidden, hidden.masked, hidden.value) == (True, True, secret)  # the server's own record
    assert (visible.hidden, visible.value) == (False, key_id)

    quiet = world.run(run_id="run-2")
    assert [u.outcome for u in quiet.users] == ["unchanged"]
    again = world.run(run_id="run-3", event_id="ev-3", force=True)
    assert not again.failed, again.as_json()
    new_id, new_secret = current(world)
    assert new_id != key_id
    assert world.gitlab.variable(HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY").value == new_secret  # updated, still hidden
    assert world.gitlab.variable(HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY").hidden
    assert world.violations(settled=True) == []


def test_a_hidden_secret_the_rotation_did_not_write_is_an_error_and_nothing_changes(world):
    human = world.seed_key(age_days=40)
    world.gitlab.set_variable(HIDDEN_TARGET, "AWS_ACCESS_KEY_ID", human, masked=True, raw=True)
    world.gitlab.set_variable(
        HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY", world.seeded_keys[human], masked=True, raw=True, hidden=True
    )
    report = world.run(run_id="run-1")
    assert report.failed and "whose secret this rotation never wrote" in report.users[0].error
    assert world.keys() == {human: "Active"} and world.stage("AWSPENDING") is None


def test_a_hidden_secret_written_late_after_the_rollback_is_written_again_before_the_run_ends(world):
    """Found while adding late writes to the state machine: the hidden secret's write times out on all three attempts and
    GitLab applies them after the rollback, which left the hidden target alone (its key id still
    named the old key). The target then held the old key id with the deleted new key's secret, and
    no read could tell: GitLab never shows a hidden value. The run's settling writes the secret of
    the key the key id names again."""
    first = world.run(run_id="run-1")
    assert not first.failed, first.as_json()
    old = current(world)
    world.clock.advance(days=31)
    world.gitlab.today = world.clock.now().date()
    world.gitlab.inject(
        method="PUT", path=r"/groups/[^/]+/variables/AWS_SECRET_ACCESS_KEY", times=3, **late_write(after=0.3)
    )
    with world.late_writes_land(read_timeout=0.2):
        report = world.run(run_id="run-2", event_id="ev-2")
    user = report.users[0]
    assert user.outcome == "failed" and "was rolled back" in user.error, report.as_json()
    assert current(world) == old
    assert world.gitlab.variable(HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY").value == old[1]  # the server's own record
    assert world.violations(settled=True) == []


def test_a_rollback_writes_the_old_secret_back_to_a_hidden_target_whose_key_id_still_names_the_old_key(world):
    """Found while adding the hidden target to the state machine: a run died between the hidden
    target's two writes (the secret the new key's, the key id still the old key's), and the next
    run rolled the pending key back (a human had deleted it). The rollback judged the target by
    its key id and left it alone, and deleted the key: the target held the old key id with a
    dead secret, and every later run read it as the old key's pair. GitLab never shows a hidden
    value, so the rollback writes the old secret back to every hidden target."""
    world.settings = replace(world.settings, users=(replace(world.user, targets=(HIDDEN_TARGET, FILE_TARGET)),))
    assert not world.run(run_id="run-1").failed
    old = current(world)
    with pytest.raises(Crash):  # right after the hidden secret's write
        world.run(run_id="run-2", event_id="ev-2", force=True, wrap=CallLog(at="gitlab.write_variable", when="after").wrap)
    pending = world.stage("AWSPENDING")["access_key_id"]
    assert world.gitlab.variable(HIDDEN_TARGET, "AWS_ACCESS_KEY_ID").value == old[0] != pending
    world.iam.delete_access_key(UserName=USER, AccessKeyId=pending)
    world.clock.advance(seconds=LOCK_TTL.total_seconds())
    report = world.run(run_id="run-3", event_id="ev-3")
    assert not report.failed, report.as_json()
    assert "restore_target" in [a["action"] for a in report.users[0].actions]
    assert world.gitlab.variable(HIDDEN_TARGET, "AWS_SECRET_ACCESS_KEY").value == old[1]  # the server's own record
    assert world.violations(settled=True) == []


def test_a_run_that_reads_a_hidden_target_after_another_run_rotated_it_reads_again_and_does_not_fail(world):
    """Found by the state machine (one event delivered twice, the second run done while the first
    was between its reads): the first run read the state, then the hidden target, which by then
    held the second run's new key under a key id its state read did not know; it failed, telling a
    human to delete the variables. It reads everything again once, as for a blocked plan."""
    assert not world.run(run_id="run-1").failed
    seconds = []
    again = lambda: seconds.append(world.run(run_id="run-3", event_id="ev-2", force=True))  # noqa: E731
    # calls 0-4: the token, its details, the state, the keys, the first target (the file)
    first = world.run(run_id="run-2", event_id="ev-2", force=True, wrap=CallLog(fail_at=4, when="after", meanwhile=again).wrap)
    assert not seconds[0].failed and not first.failed, first.as_json()
    created = [a for r in (first, *seconds) for a in r.users[0].actions if a["action"] == "create_key"]
    assert len(created) == 1
    assert world.violations(settled=True) == []
