"""The committed, normalized template of the default stack, for review in pull requests.

Refresh after an intended change with ``make snapshot`` (``UPDATE_SNAPSHOT=1``), and commit the
file with the change: the diff of ``snapshots/KeyRotationStack.template.json`` is what reviewers
read.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.cdk.synth import Synthesis

SNAPSHOT = Path(__file__).parent / "snapshots" / "KeyRotationStack.template.json"
_ASSET_KEY = re.compile(r"^[0-9a-f]{64}\.zip$")


def normalize(template: dict) -> str:
    """The template with asset object keys (content hashes that change with any code edit) replaced."""

    def walk(value: object) -> object:
        if isinstance(value, dict):
            return {k: "<asset-hash>.zip" if k == "S3Key" and _ASSET_KEY.match(str(v)) else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(template), indent=1, sort_keys=True) + "\n"


def test_template_matches_the_committed_snapshot(default_synth: Synthesis) -> None:
    current = normalize(default_synth.template())
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"no snapshot yet: run `make snapshot` to write {SNAPSHOT}"
    assert current == SNAPSHOT.read_text(), (
        "the synthesized template differs from the committed snapshot: review the difference "
        "(UPDATE_SNAPSHOT=1 pytest tests/cdk/test_snapshot.py; git diff) and commit it if intended"
    )


def test_normalize_replaces_asset_keys_only() -> None:
    template = {"Code": {"S3Key": "a" * 64 + ".zip", "S3Bucket": "b"}, "Other": {"S3Key": "fixed.zip"}}
    assert json.loads(normalize(template)) == {"Code": {"S3Key": "<asset-hash>.zip", "S3Bucket": "b"}, "Other": {"S3Key": "fixed.zip"}}
