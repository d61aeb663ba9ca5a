"""The revocation run (``revocation.run``) against an in-memory IAM: scope, exemptions, modes, failures, call counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gitlab_key_rotation.lambda_src.revocation.ports import NoSuchEntity
from gitlab_key_rotation.lambda_src.revocation.run import (
    Failure,
    KeyOutcome,
    UserOutcome,
    marker_tag,
    run_revocation,
)
from gitlab_key_rotation.lambda_src.revocation.settings import RevocationSettings
from tests.revocation.fake_iam import NOW, FakeIam


def settings(*groups: str, **overrides) -> RevocationSettings:
    return RevocationSettings(groups=groups or ("developers",), **overrides)


def by_user(report) -> dict[str, UserOutcome]:
    return {outcome.user: outcome for outcome in report.users}


class AccessDenied(Exception):
    """Stands for any IAM error other than NoSuchEntity."""


def test_a_user_in_several_groups_is_handled_once():
    iam = FakeIam()
    iam.add_group("developers", "alice", "bob")
    iam.add_group("contractors", "bob", "carol")
    for user in ("alice", "bob", "carol"):
        iam.add_key(user)

    report = run_revocation(settings("developers", "contractors"), iam, NOW)

    assert [u.user for u in report.users] == ["alice", "bob", "carol"]
    assert sorted(iam.operations("access_keys")) == ["alice", "bob", "carol"]
    assert sorted(iam.operations("delete_access_key")) == ["alice", "bob", "carol"]
    assert all(not keys for keys in iam.keys.values())
    assert report.failures == ()


def test_a_group_named_twice_in_the_settings_is_listed_once():
    iam = FakeIam()
    iam.add_group("developers", "alice")

    report = run_revocation(settings("developers", "developers"), iam, NOW)

    assert report.groups == ("developers",)
    assert iam.operations("group_members") == ["developers"]


def test_calls_stay_at_the_floor_and_tags_are_read_only_for_users_with_a_key_due():
    iam = FakeIam()
    iam.add_group("developers", "one-key", "two-keys", "no-keys", "young-key-only")
    iam.add_key("one-key")
    iam.add_key("two-keys")
    iam.add_key("two-keys", status="Inactive")
    iam.add_key("young-key-only", created=NOW - timedelta(days=1))

    run_revocation(settings(min_key_age_days=7), iam, NOW)

    assert iam.operations("group_members") == ["developers"]
    assert sorted(iam.operations("access_keys")) == ["no-keys", "one-key", "two-keys", "young-key-only"]
    assert sorted(iam.operations("user_tags")) == ["one-key", "two-keys"]
    assert sorted(iam.operations("delete_access_key")) == ["one-key", "two-keys", "two-keys"]
    assert len(iam.calls) == 1 + 4 + 2 + 3


def test_with_the_tag_check_off_no_tags_are_read():
    iam = FakeIam()
    iam.add_group("developers", "alice")
    iam.add_key("alice")
    iam.tags["alice"]["key-revocation:exempt"] = ""

    report = run_revocation(settings(exempt_tag_key=None), iam, NOW)

    assert iam.operations("user_tags") == []
    assert iam.keys["alice"] == {}
    assert by_user(report)["alice"].skipped is None


def test_protected_and_listed_users_are_skipped_without_any_call_whatever_the_case():
    iam = FakeIam()
    iam.add_group("developers", "CI-Deployer", "Dave", "erin")
    kept = {user: iam.add_key(user) for user in ("CI-Deployer", "Dave")}
    iam.add_key("erin")

    report = run_revocation(
        settings(protected_users=frozenset({"ci-deployer"}), exempt_users=frozenset({"dave"})), iam, NOW
    )

    outcomes = by_user(report)
    assert outcomes["CI-Deployer"].skipped == "protected"
    assert outcomes["Dave"].skipped == "exempt_list"
    assert {user for _, user in iam.calls if user != "developers"} == {"erin"}
    assert list(iam.keys["CI-Deployer"]) == [kept["CI-Deployer"]]
    assert list(iam.keys["Dave"]) == [kept["Dave"]]
    assert iam.keys["erin"] == {}


def test_a_user_carrying_the_exemption_tag_keeps_every_key():
    iam = FakeIam()
    iam.add_group("developers", "frank", "grace")
    frank_keys = [iam.add_key("frank"), iam.add_key("frank")]
    iam.add_key("grace")
    iam.tags["frank"]["Key-Revocation:Exempt"] = ""  # IAM tag keys are case-insensitive
    iam.tags["grace"]["team"] = "web"

    report = run_revocation(settings(), iam, NOW)

    assert by_user(report)["frank"].skipped == "exempt_tag"
    assert sorted(iam.keys["frank"]) == sorted(frank_keys)
    assert iam.keys["grace"] == {}
    assert iam.operations("delete_access_key") == ["grace"]


def test_keys_younger_than_the_minimum_age_are_spared():
    iam = FakeIam()
    iam.add_group("developers", "heidi")
    old = iam.add_key("heidi", created=NOW - timedelta(days=8))
    young = iam.add_key("heidi", created=NOW - timedelta(days=6, hours=23))

    report = run_revocation(settings(min_key_age_days=7), iam, NOW)

    assert list(iam.keys["heidi"]) == [young]
    assert set(by_user(report)["heidi"].keys) == {
        KeyOutcome("heidi", old, "deleted"),
        KeyOutcome("heidi", young, "spared_young"),
    }


def test_deactivate_mode_marks_and_deactivates_and_deletes_only_a_grace_period_later():
    iam = FakeIam()
    iam.add_group("developers", "ivan", "judy")
    ivan_key = iam.add_key("ivan")
    judy_active = iam.add_key("judy")
    judy_inactive = iam.add_key("judy", status="Inactive")  # deactivated by a human: no mark
    weekly = settings(action="deactivate", exempt_tag_key=None)

    first = run_revocation(weekly, iam, NOW)

    assert iam.statuses("ivan") == {ivan_key: "Inactive"}
    assert iam.statuses("judy") == {judy_active: "Inactive", judy_inactive: "Inactive"}
    stamp = "2025-06-06T23:55:00Z"
    assert iam.tags["ivan"] == {marker_tag(ivan_key): stamp}
    assert iam.tags["judy"] == {marker_tag(judy_active): stamp, marker_tag(judy_inactive): stamp}
    assert set(by_user(first)["judy"].keys) == {
        KeyOutcome("judy", judy_active, "deactivated"),
        KeyOutcome("judy", judy_inactive, "inactive_marked"),  # its clock starts now
    }

    for rerun in (NOW, NOW + timedelta(hours=1), NOW + timedelta(days=5, hours=23)):  # duplicate, manual re-run
        iam.calls.clear()
        again = run_revocation(weekly, iam, rerun)
        assert {op for op, _ in iam.calls} == {"group_members", "access_keys", "user_tags"}  # nothing written
        assert {k.result for u in again.users for k in u.keys} == {"inactive_waiting"}

    next_week = run_revocation(weekly, iam, NOW + timedelta(days=7))

    assert iam.keys["ivan"] == {} and iam.keys["judy"] == {}
    assert iam.tags["ivan"] == {} and iam.tags["judy"] == {}
    assert by_user(next_week)["ivan"].keys == (KeyOutcome("ivan", ivan_key, "deleted"),)
    assert next_week.failures == ()


@pytest.mark.parametrize("mark", ["soon", "2099-01-01T00:00:00Z"], ids=["not-a-time", "in-the-future"])
def test_a_mark_edited_by_hand_restarts_the_grace_period(mark):
    iam = FakeIam()
    iam.add_group("developers", "kim")
    key = iam.add_key("kim", status="Inactive")
    iam.tags["kim"][marker_tag(key)] = mark

    report = run_revocation(settings(action="deactivate"), iam, NOW)

    assert by_user(report)["kim"].keys == (KeyOutcome("kim", key, "inactive_marked"),)
    assert iam.tags["kim"] == {marker_tag(key): "2025-06-06T23:55:00Z"} and key in iam.keys["kim"]


def test_a_key_whose_deactivation_failed_after_its_mark_is_marked_anew_by_the_next_run():
    iam = FakeIam()
    iam.add_group("developers", "leo")
    key = iam.add_key("leo")
    iam.errors[("deactivate_access_key", "leo")] = AccessDenied("UpdateAccessKey refused")
    weekly = settings(action="deactivate")

    failed = run_revocation(weekly, iam, NOW)

    assert failed.failures == (Failure(f"key {key} of user leo", "AccessDenied: UpdateAccessKey refused"),)
    assert iam.statuses("leo") == {key: "Active"}
    del iam.errors[("deactivate_access_key", "leo")]
    later = NOW + timedelta(days=7)

    run_revocation(weekly, iam, later)  # Active despite its old mark: deactivated now, deleted in a week

    assert iam.statuses("leo") == {key: "Inactive"}
    assert iam.tags["leo"] == {marker_tag(key): "2025-06-13T23:55:00Z"}


@pytest.mark.parametrize("action", ["delete", "deactivate"])
def test_a_dry_run_reports_what_it_would_do_and_changes_nothing(action):
    iam = FakeIam()
    iam.add_group("developers", "mallory")
    active = iam.add_key("mallory")
    inactive = iam.add_key("mallory", status="Inactive")

    report = run_revocation(settings(action=action, dry_run=True), iam, NOW)

    assert iam.statuses("mallory") == {active: "Active", inactive: "Inactive"}
    assert {op for op, _ in iam.calls} == {"group_members", "access_keys", "user_tags"}
    expected_for_active = "deactivated" if action == "deactivate" else "deleted"
    assert set(by_user(report)["mallory"].keys) == {
        KeyOutcome("mallory", active, expected_for_active),
        KeyOutcome("mallory", inactive, "inactive_marked" if action == "deactivate" else "deleted"),
    }
    assert iam.tags["mallory"] == {}
    assert report.dry_run is True


def test_one_failing_user_or_key_does_not_stop_the_others():
    iam = FakeIam()
    iam.add_group("developers", "niaj", "olivia", "peggy")
    niaj_first, niaj_second = iam.add_key("niaj"), iam.add_key("niaj")
    iam.add_key("olivia")
    iam.add_key("peggy")
    iam.errors[("access_keys", "olivia")] = AccessDenied("not authorized to perform iam:ListAccessKeys")
    failing_delete = _FailOnce(iam, niaj_first)

    report = run_revocation(settings(), failing_delete, NOW)

    assert iam.keys["peggy"] == {}
    assert list(iam.keys["niaj"]) == [niaj_first]  # the user's other key still went
    assert list(iam.keys["olivia"]) != []
    assert set(report.failures) == {
        Failure(f"key {niaj_first} of user niaj", "AccessDenied: DeleteAccessKey refused"),
        Failure("user olivia", "AccessDenied: not authorized to perform iam:ListAccessKeys"),
    }
    assert by_user(report)["niaj"].keys == (KeyOutcome("niaj", niaj_second, "deleted"),)


class _FailOnce:
    """The fake IAM, except that deleting one given key fails with a non-NoSuchEntity error."""

    def __init__(self, iam: FakeIam, key_id: str):
        self._iam, self._key_id = iam, key_id

    def __getattr__(self, name):
        return getattr(self._iam, name)

    def delete_access_key(self, user: str, key_id: str) -> None:
        if key_id == self._key_id:
            raise AccessDenied("DeleteAccessKey refused")
        self._iam.delete_access_key(user, key_id)


def test_a_user_or_key_removed_meanwhile_counts_as_done():
    iam = FakeIam()
    iam.add_group("developers", "quentin", "rupert")
    rupert_key = iam.add_key("rupert")
    iam.errors[("access_keys", "quentin")] = NoSuchEntity("The user with name quentin cannot be found.")
    iam.errors[("delete_access_key", "rupert")] = NoSuchEntity(f"The Access Key with id {rupert_key} cannot be found")

    report = run_revocation(settings(), iam, NOW)

    assert report.failures == ()
    assert by_user(report)["quentin"].skipped == "user_gone"
    assert by_user(report)["rupert"].keys == (KeyOutcome("rupert", rupert_key, "already_gone"),)


def test_an_unknown_group_is_an_error_naming_it_and_the_other_groups_still_run():
    iam = FakeIam()
    iam.add_group("developers", "sybil")
    iam.add_key("sybil")

    report = run_revocation(settings("developrs", "developers"), iam, NOW)

    assert report.failures == (
        Failure(
            "group developrs",
            "IAM group 'developrs' does not exist; revocation.groups must name existing groups",
        ),
    )
    assert iam.keys["sybil"] == {}


def test_a_group_that_cannot_be_read_completely_is_an_error_and_none_of_it_is_used():
    iam = FakeIam()
    iam.add_group("developers", "alice", "bob")
    iam.add_group("contractors", "bob", "carol")  # its listing fails: throttled past the retries, or ended early
    for user in ("alice", "bob", "carol"):
        iam.add_key(user)
    iam.errors[("group_members", "contractors")] = AccessDenied("Throttling: Rate exceeded")

    report = run_revocation(settings("developers", "contractors"), iam, NOW)

    assert report.failures == (
        Failure("group contractors", "listing its members failed: AccessDenied: Throttling: Rate exceeded"),
    )
    assert [u.user for u in report.users] == ["alice", "bob"]  # bob: a complete group says he is due
    assert iam.keys["alice"] == {} and iam.keys["bob"] == {}
    assert len(iam.keys["carol"]) == 1 and "carol" not in iam.operations("access_keys")


def test_members_of_an_exempt_group_are_skipped_without_a_call_and_the_floor_is_two_calls():
    iam = FakeIam()
    iam.add_group("developers", "alice", "bob", "Carol")
    iam.add_group("on-leave", "carol")  # IAM user names are case-insensitive
    for user in ("alice", "bob", "Carol"):
        iam.add_key(user)

    report = run_revocation(settings(exempt_groups=("on-leave",), exempt_tag_key=None), iam, NOW)

    assert by_user(report)["Carol"].skipped == "exempt_group" and len(iam.keys["Carol"]) == 1
    assert iam.operations("group_members") == ["on-leave", "developers"]
    assert sorted(iam.operations("access_keys")) == sorted(iam.operations("delete_access_key")) == ["alice", "bob"]
    assert len(iam.calls) == 2 + 2 * 2


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (AccessDenied("Throttling: Rate exceeded"), "listing its members failed: AccessDenied: Throttling: Rate exceeded"),
        (NoSuchEntity("no on-leave"), "IAM group 'on-leave' does not exist; revocation.exempt_groups must name existing groups"),
    ],
    ids=["failed", "unknown"],
)
def test_an_exempt_group_that_cannot_be_read_completely_stops_the_run_before_any_key(error, message):
    iam = FakeIam()
    iam.add_group("developers", "alice")
    iam.add_group("on-leave", "bob")
    iam.add_key("alice")
    iam.errors[("group_members", "on-leave")] = error

    report = run_revocation(settings(exempt_groups=("on-leave",)), iam, NOW)

    assert report.failures == (
        Failure("group on-leave", message),
        Failure("run", "stopped before touching any key: an exempt group could not be read completely"),
    )
    assert report.users == () and iam.calls == [("group_members", "on-leave")]
    assert len(iam.keys["alice"]) == 1


def test_an_empty_group_is_a_quiet_success():
    iam = FakeIam()
    iam.add_group("developers")

    report = run_revocation(settings(), iam, NOW)

    assert report.users == () and report.failures == ()
    assert iam.calls == [("group_members", "developers")]


def test_users_are_handled_concurrently_but_never_more_than_max_workers_at_once():
    iam = FakeIam(delay=0.01)
    users = [f"user-{n:02d}" for n in range(40)]
    iam.add_group("developers", *users)
    for user in users:
        iam.add_key(user)

    report = run_revocation(settings(max_workers=4, exempt_tag_key=None), iam, NOW)

    assert iam.max_in_flight == 4
    assert len(report.users) == 40 and all(not iam.keys[user] for user in users)
