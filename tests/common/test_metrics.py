"""The EMF writer: documents CloudWatch Logs accepts, printed as one raw line each."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest

from gitlab_key_rotation.lambda_src.common.metrics import NAMESPACE, Metric, document, emit, function_name
from tests import emf

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)


def test_a_document_follows_the_specification():
    doc = document([Metric("RunSucceeded", 1), Metric("DurationSeconds", 2.5, "Seconds")], {"Function": "fn"}, NOW)
    emf.check(doc)
    assert doc["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000)
    assert doc["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["Function"]],
            "Metrics": [{"Name": "RunSucceeded", "Unit": "Count"}, {"Name": "DurationSeconds", "Unit": "Seconds"}],
        }
    ]
    assert doc["Function"] == "fn" and emf.values(doc) == {"RunSucceeded": 1, "DurationSeconds": 2.5}


def test_several_dimension_sets_publish_the_same_value_under_each():
    doc = document(
        [Metric("CurrentKeyAgeDays", 3.5, "None")],
        {"Function": "fn", "IamUser": "ci"},
        NOW,
        dimension_sets=[["Function", "IamUser"], ["Function"]],
    )
    emf.check(doc)
    assert emf.dimension_sets(doc) == [["Function", "IamUser"], ["Function"]]


@pytest.mark.parametrize(
    ("metrics", "dimensions", "sets", "message"),
    [
        ([], {"Function": "fn"}, None, "1 to 100 distinct metrics"),
        ([Metric("A", 1), Metric("A", 2)], {"Function": "fn"}, None, "distinct metrics"),
        ([Metric(f"M{i}", i) for i in range(101)], {"Function": "fn"}, None, "1 to 100"),
        ([Metric("A", 1)], {"Function": "fn"}, [["IamUser"]], "not within the dimensions"),
        ([Metric("Function", 1)], {"Function": "fn"}, None, "clash"),
    ],
)
def test_a_document_outside_the_specification_is_refused(metrics, dimensions, sets, message):
    with pytest.raises(ValueError, match=message):
        document(metrics, dimensions, NOW, dimension_sets=sets)


def test_emit_prints_one_raw_json_line_and_never_logs_it(caplog):
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        emit([Metric("Errors", 0)], {"Function": "fn"}, NOW, stream=out)
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == document([Metric("Errors", 0)], {"Function": "fn"}, NOW)
    assert emf.documents(out.getvalue())
    assert caplog.records == []  # a logging record would be wrapped by the JSON log format


def test_the_function_dimension_is_lambdas_function_name():
    assert function_name({"AWS_LAMBDA_FUNCTION_NAME": "KeyRotationStack-RotationJob"}) == "KeyRotationStack-RotationJob"
    assert function_name({}) == "local"
