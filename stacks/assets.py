"""Where the package's runtime files live, found relative to this file (never the current directory).

``lambda_src/`` and ``layers/`` sit next to ``stacks/`` both in the repository and in an installed
copy of the package (``pip install`` ships all three as top-level directories).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = PACKAGE_ROOT / "lambda_src"
REQUESTS_REQUIREMENTS = PACKAGE_ROOT / "layers" / "requests" / "requirements.txt"

ROTATION_HANDLER = "rotation.handler.handler"
REVOCATION_HANDLER = "revocation.handler.handler"


def lambda_code() -> lambda_.Code:
    """The one code asset that both functions share (each uses its own handler in it)."""
    if not LAMBDA_SRC.is_dir():
        raise FileNotFoundError(f"the Lambda code directory {LAMBDA_SRC} is missing from this installation")
    return lambda_.Code.from_asset(str(LAMBDA_SRC), exclude=["**/__pycache__", "**/*.pyc"])
