"""The access key as both Lambdas see it: what ``ListAccessKeys`` shows, never the secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

KeyStatus = Literal["Active", "Inactive"]


@dataclass(frozen=True)
class AccessKey:
    """An IAM access key's metadata (``ListAccessKeys``); the secret is never part of it."""

    id: str
    status: KeyStatus
    created: datetime  # timezone-aware
