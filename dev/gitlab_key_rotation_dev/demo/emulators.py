"""Start the AWS emulator (``moto.server``) and the project's GitLab API server on loopback."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import boto3
import requests
from moto.server import ThreadedMotoServer

from gitlab_key_rotation_dev.gitlab_server import GitLabServer

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# Credentials of the emulator's root identity, used to seed it (moto accepts any before enforcement).
SEED_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Emulators:
    aws_endpoint: str
    gitlab: GitLabServer

    def client(self, service: str, **credentials: str) -> Any:
        """A boto3 client of the emulator (seed credentials unless others are given)."""
        return boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=self.aws_endpoint,
            aws_access_key_id=credentials.get("aws_access_key_id", SEED_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=credentials.get("aws_secret_access_key", SEED_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            aws_session_token=credentials.get("aws_session_token"),
        )


@contextmanager
def running_emulators() -> Iterator[Emulators]:
    """Both servers on ephemeral loopback ports; moto's state is reset first (it is per process)."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    gitlab = GitLabServer(tls=True).start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        yield Emulators(aws_endpoint=endpoint, gitlab=gitlab)
    finally:
        gitlab.stop()
        moto.stop()


def lambda_runtime_environment(emulators: Emulators) -> dict[str, str]:
    """What the Lambda runtime would add to a function's own environment, pointed at the emulator
    (credentials come separately, from the function's role)."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": emulators.aws_endpoint,
        "TZ": "UTC",
        "PATH": os.environ.get("PATH", ""),
    }
