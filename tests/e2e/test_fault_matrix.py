"""The fault matrix of ``tests.e2e.fault_matrix``: every external call of a clean rotation broken
at the wire (AWS through botocore's events, GitLab through the server's fault rules), the
invariants right after, then clean re-runs that must converge.

Here reads are broken in mode ``error`` only (``fault_matrix.modes_for`` says why that loses
nothing): every call is covered, every write in every mode. ``make fault-matrix`` runs every mode
on every call and prints the table.
"""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError, ReadTimeoutError

from gitlab_key_rotation_dev.fault_matrix import MatrixResult, aws_test_env, probe, run_case, run_matrix, wired_world
from gitlab_key_rotation_dev.wire_faults import WireCall, WireFault, gitlab_calls, inject_gitlab
from gitlab_key_rotation_dev.rotation_world import GROUP_TARGET, USER, RotationWorld


def one_key(world: RotationWorld) -> None:
    world.seed_key()


@pytest.mark.parametrize("mode, raised, keys_after", [("error", ClientError, 1), ("lost", ReadTimeoutError, 2)])
def test_an_aws_call_breaks_before_or_after_its_effect(mode, raised, keys_after):
    create = WireCall("aws", 1, "iam", "CreateAccessKey", changing=True)
    with aws_test_env() as monkeypatch, wired_world(monkeypatch, one_key) as (world, wire):
        with wire.armed(WireFault(create, mode)) as calls:
            world.iam.list_access_keys(UserName=USER)
            with pytest.raises(raised):
                world.iam.create_access_key(UserName=USER)
        assert calls == [WireCall("aws", 0, "iam", "ListAccessKeys", changing=False), create] and wire.fired
        assert len(world.keys()) == keys_after
        assert len(wire.key_secrets) == keys_after - 1  # the secret of a key made while armed is kept


@pytest.mark.parametrize("mode, answer, lands", [("error", 503, False), ("lost", 502, True), ("drop", None, True)])
def test_a_gitlab_request_breaks_before_or_after_its_effect(mode, answer, lands):
    with aws_test_env() as monkeypatch, wired_world(monkeypatch, lambda world: None) as (world, _):
        server, url = world.gitlab, f"{world.gitlab.url}/api/v4/groups/platform/variables"
        server.clear_log()
        post = WireCall("gitlab", 1, "gitlab", "POST /groups/platform/variables", True, target="group platform")
        rule = inject_gitlab(server, WireFault(post, mode), client_retries=0)
        headers = {"PRIVATE-TOKEN": world.token}
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        try:
            status = requests.post(url, headers=headers, json={"key": "K", "value": "v"}, timeout=5).status_code
        except requests.ConnectionError:
            status = None
        assert (status, rule.fired) == (answer, 1)
        assert (server.variable(GROUP_TARGET, "K") is not None) == lands
        assert gitlab_calls(server.requests)[1] == post


@pytest.fixture(scope="module")
def aws_matrix() -> MatrixResult:
    return run_matrix(sides=("aws",), full=False)


@pytest.fixture(scope="module")
def gitlab_matrix() -> MatrixResult:
    return run_matrix(sides=("gitlab",), full=False)


@pytest.fixture(params=["aws", "gitlab"])
def matrix(request) -> MatrixResult:
    return request.getfixturevalue(f"{request.param}_matrix")


def test_every_call_of_the_clean_run_is_broken(matrix: MatrixResult, record_property):
    record_property("fault_matrix", matrix.counts())
    assert matrix.calls, "the clean run made no call on this side"
    assert {case.fault.call for case in matrix.cases} == set(matrix.calls), matrix.counts()
    writes = [c for c in matrix.calls if c.changing]
    assert writes and {(c.fault.call, c.fault.mode) for c in matrix.cases if c.fault.call.changing} >= {
        (call, mode) for call in writes for mode in ("error", "lost")
    }


def test_no_broken_call_violates_an_invariant_and_a_clean_rerun_converges(matrix: MatrixResult):
    assert matrix.violations == [], matrix.counts()


def test_gitlab_absorbs_a_lost_answer_to_a_write_by_repeating_or_reading_it_again(gitlab_matrix: MatrixResult):
    """A PUT is repeated; a POST whose answer was lost is read again (it landed) and not
    repeated: either way the run goes on and succeeds."""
    lost = [c for c in gitlab_matrix.cases if c.fault.call.changing and c.fault.mode in ("lost", "drop")]
    assert {c.fault.call.name.split()[0] for c in lost} == {"PUT", "POST"}
    assert [str(c.fault) for c in lost if c.faulted_run_failed] == []


def test_a_lost_answer_to_create_access_key_leaves_no_key_whose_secret_is_lost():
    """Found by the matrix: IAM made the key and its answer was lost; the run must not leave the
    key behind unknown (its secret exists nowhere)."""
    with aws_test_env() as monkeypatch:
        create = next(c for c in probe(monkeypatch) if c.name == "CreateAccessKey")
        case = run_case(monkeypatch, WireFault(create, "lost"))
    assert case.violations == ()
