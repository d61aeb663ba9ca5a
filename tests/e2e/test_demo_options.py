"""The local run's options, as `make demo ARGS=...` prints them: each test is one whole run
(emulators, synthesis, deployment, both handlers), its output asserted."""

from __future__ import annotations

import logging

import pytest

from gitlab_key_rotation_dev.demo.__main__ import _show, main
from gitlab_key_rotation_dev.demo.deployment import REVOCATION_HANDLER, ROTATION_HANDLER
from gitlab_key_rotation_dev.demo.local_run import LocalRun
from tests import emf


@pytest.fixture(autouse=True)
def quiet_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _demo(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_a_young_managed_key_is_not_rotated_and_the_output_says_so(capsys):
    code, out = _demo(capsys, "--key-age-days", "5")
    assert code == 0, out
    assert "5-day-old key held by GitLab and recorded in the state secret" in out
    assert "ci-deployer: nothing rotated: its key is 5 days old, under the 30-day period" in out
    assert "create_key" not in out and "Rotations=0" in out and "CurrentKeyAgeDays=5.0" in out
    assert "(new)" not in out.split("IAM access keys")[1].split("alice")[0]


def test_force_rotates_the_young_key_and_shows_the_old_keys_timeline(capsys):
    code, out = _demo(capsys, "--key-age-days", "5", "--force")
    assert code == 0, out
    assert 'event {"force": true}' in out and "ci-deployer: promote_key" in out and "Rotations=1" in out
    machine = out.split("IAM access keys")[1].split("alice")[0]
    assert "(new)" in machine
    assert "replaced key: Active until " in machine and "(grace period of 24 h)" in machine
    assert "made Inactive at the first run after that, deleted from " in machine and "(7-day deletion window)" in machine


def test_an_outage_shows_each_retry_as_it_happens_and_names_the_old_key(capsys):
    code, out = _demo(capsys, "--gitlab-outage")
    assert code == 0, out  # a clean rollback
    retries = [line for line in out.splitlines() if "GitLab answered 503; retrying" in line]
    assert len(retries) >= 4  # the client's retries, printed while they happen
    assert "(none recorded)" not in out and "the old key AKIA" in out
    assert "Rollbacks=1" in out and "RunFailed=1" in out


def test_a_dry_run_says_what_it_would_do_and_the_handlers_print_valid_metrics():
    lines: list[str] = []
    with LocalRun(key_age_days=100) as local:
        rotation = local.invoke(ROTATION_HANDLER, {"dry_run": True})
        revocation = local.invoke(REVOCATION_HANDLER, {"dry_run": True})
        function = local.deployment.rotation.logical_id
    _show(rotation, lines.append, 30)
    _show(revocation, lines.append, 30)
    assert any(line.startswith("    ci-deployer: would rotate ") for line in lines), lines
    assert any("users scanned, would delete 4 keys, would deactivate 0" in line for line in lines), lines
    assert not any("keys deleted" in line for line in lines)
    documents = emf.documents(rotation.stdout)  # each checked against the EMF specification
    assert documents == rotation.metric_documents() and len(documents) == 2
    assert {d["Function"] for d in documents} == {function}  # AWS_LAMBDA_FUNCTION_NAME, as Lambda sets it
    [revocation_metrics] = emf.documents(revocation.stdout)
    assert emf.values(revocation_metrics)["KeysRevoked"] == 0
