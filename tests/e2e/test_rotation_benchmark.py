"""The rotation benchmark (``make bench-rotation``) on a small scale: its numbers come from the
GitLab server's log and botocore, its runs hold the invariants, and under a budget equal to the
server's limit no 429 is sent. Counts only, never times."""

from __future__ import annotations

from gitlab_key_rotation_dev.benchmarks.rotation import limited_row, markdown, scale_row
from gitlab_key_rotation_dev.fault_matrix import aws_test_env


def test_the_scale_rows_count_at_the_server_and_the_runs_hold_the_invariants():
    with aws_test_env() as monkeypatch:
        (one, _), (three, by_route) = scale_row(monkeypatch, 1, 2000), scale_row(monkeypatch, 3, 2000)
    assert one["invariants"] == three["invariants"] == "held"
    rotation, noop = (int(n) for n in three["GitLab requests rotation, no-op"].split(", "))
    assert three["GitLab req/target rotation"] == f"{rotation / 3:.1f}" and noop < rotation
    assert markdown([one, three]).count("\n") == 3
    assert by_route.startswith("3 targets: rotation ") and "no-op GET " in by_route


def test_the_limited_row_meets_no_429_under_a_budget_equal_to_the_limit():
    with aws_test_env() as monkeypatch:
        row = limited_row(monkeypatch, 3, limit=10, max_runs=2)
    assert (row["invariants"], row["429s"]) == ("held", 0)
