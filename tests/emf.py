"""Reading embedded-metric-format documents back out of a function's stdout, and checking each
against the EMF specification the way CloudWatch Logs does before it extracts anything."""

from __future__ import annotations

import json

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def check(document: dict) -> None:
    """Raise AssertionError unless ``document`` is a valid EMF document."""
    assert isinstance(document, dict)
    aws = document["_aws"]
    assert set(aws) <= {"Timestamp", "CloudWatchMetrics", "LogGroupName", "LogStreamName"}
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_500_000_000_000  # epoch milliseconds
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 1024
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and 1 <= len(dimension_set) <= 30
            for name in dimension_set:  # every dimension named has a string value at the root
                assert isinstance(document.get(name), str) and document[name], name
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and 1 <= len(metrics) <= 100
        for metric in metrics:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(metric["Name"], str) and 1 <= len(metric["Name"]) <= 1024
            assert metric.get("Unit", "None") in UNITS
            value = document.get(metric["Name"])  # every metric named has a value at the root
            values = value if isinstance(value, list) else [value]
            assert values and len(values) <= 100
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values), metric["Name"]


def documents(stdout: str) -> list[dict]:
    """Every line of ``stdout`` that is an EMF document, each checked; a line that mentions
    ``_aws`` but is not exactly one JSON object is a failure (CloudWatch would ignore it)."""
    found = []
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)  # exactly one object: nothing before or after it
        check(document)
        found.append(document)
    return found


def values(document: dict) -> dict[str, float]:
    """Metric name -> value of one document."""
    return {m["Name"]: document[m["Name"]] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def dimension_sets(document: dict) -> list[list[str]]:
    return [s for d in document["_aws"]["CloudWatchMetrics"] for s in d["Dimensions"]]
