"""Metrics in CloudWatch's embedded metric format (EMF), written by hand (no dependency).

One document is one JSON object on one line of standard output::

    {"_aws": {"Timestamp": 1700000000000,
              "CloudWatchMetrics": [{"Namespace": "GitLabKeyRotation",
                                     "Dimensions": [["Function"]],
                                     "Metrics": [{"Name": "RunSucceeded", "Unit": "Count"}]}]},
     "Function": "my-function", "RunSucceeded": 1}

CloudWatch Logs extracts the metrics only from a log event that is *exactly* such an object, with
nothing before or after it. With the functions' JSON log format, a record of the ``logging`` module
becomes ``{"timestamp", "level", "message": ..., ...}``, which nests the document under
``message``: so the document is printed to stdout, which Lambda forwards line by line as it is
(as the AWS client libraries and Powertools do), never logged.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

NAMESPACE = "GitLabKeyRotation"
FUNCTION_DIMENSION = "Function"
# Limits of the EMF specification.
MAX_METRICS_PER_DIRECTIVE = 100
MAX_DIMENSIONS_PER_SET = 30


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: str = "Count"  # a CloudWatch unit: Count, Seconds, None, ...


def document(
    metrics: Sequence[Metric],
    dimensions: Mapping[str, str],
    now: datetime,
    *,
    dimension_sets: Sequence[Sequence[str]] | None = None,
    namespace: str = NAMESPACE,
) -> dict:
    """The EMF document: ``dimension_sets`` (default: all of ``dimensions`` as one set) name only
    keys of ``dimensions``; every metric gets its value as a root member."""
    sets = [list(s) for s in (dimension_sets or [list(dimensions)])]
    for dimension_set in sets:
        unknown = [d for d in dimension_set if d not in dimensions]
        if unknown or len(dimension_set) > MAX_DIMENSIONS_PER_SET:
            raise ValueError(f"dimension set {dimension_set} is not within the dimensions given ({sorted(dimensions)})")
    names = [m.name for m in metrics]
    if not metrics or len(metrics) > MAX_METRICS_PER_DIRECTIVE or len(set(names)) != len(names):
        raise ValueError(f"an EMF document holds 1 to {MAX_METRICS_PER_DIRECTIVE} distinct metrics, got {names}")
    clash = set(names) & set(dimensions)
    if clash:
        raise ValueError(f"metric and dimension names clash: {sorted(clash)}")
    return {
        "_aws": {
            "Timestamp": int(now.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": sets,
                    "Metrics": [{"Name": m.name, "Unit": m.unit} for m in metrics],
                }
            ],
        },
        **{key: str(value) for key, value in dimensions.items()},
        **{m.name: m.value for m in metrics},
    }


def emit(
    metrics: Sequence[Metric],
    dimensions: Mapping[str, str],
    now: datetime,
    *,
    dimension_sets: Sequence[Sequence[str]] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print the document as one line to stdout (``stream``) and flush it."""
    line = json.dumps(document(metrics, dimensions, now, dimension_sets=dimension_sets), separators=(",", ":"))
    print(line, file=stream or sys.stdout, flush=True)


def function_name(env: Mapping[str, str]) -> str:
    """The value of the ``Function`` dimension: the Lambda function's name, which Lambda puts in
    ``AWS_LAMBDA_FUNCTION_NAME`` (the CDK's alarms use the same name)."""
    return env.get("AWS_LAMBDA_FUNCTION_NAME") or "local"
