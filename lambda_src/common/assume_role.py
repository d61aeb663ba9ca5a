"""Acting in another account: boto3 sessions on the member role of that account, for both Lambdas.

Organization mode (README, "Across an organization"): the hub's functions keep their secrets and
the GitLab token at home, and reach IAM of a member account through the role
``arn:<partition>:iam::<account>:role/gitlab-key-rotation/<name>-<job>`` that the member template
creates there. ``MemberSessions`` gives one boto3 session per account:

- the first use assumes the role at once, so a missing role, a trust that does not name this hub
  or a hub policy that does not allow the account fails right there, as ``AccountAccessError``
  naming the account and the role, instead of as an anonymous ``AccessDenied`` on some IAM call;
- each session is short (``DurationSeconds`` 900, STS's minimum) and named after the run
  (``RoleSessionName`` ``<job>-<run id>``, so CloudTrail in the member account shows which run did
  what);
- botocore refreshes the credentials before they expire (from ``REFRESH_BEFORE_SECONDS`` before),
  so a run that takes longer than one session, such as a rotation waiting for GitLab and then
  rolling back, never loses its IAM access halfway.

Each call makes a new session (the caller keeps it as long as it needs the account, so a run over
hundreds of accounts holds only the ones in use); all of them share the base session's loaded
service models. A session is safe to share between threads (botocore's refreshable credentials
lock their refresh).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from .errors import OperatorError

SESSION_SECONDS = 900  # STS's shortest session
REFRESH_BEFORE_SECONDS = 300  # botocore refreshes from 5 minutes before expiry ...
MUST_REFRESH_BEFORE_SECONDS = 120  # ... and every caller waits for the refresh from 2 minutes before
SESSION_NAME_LIMIT = 64
_SESSION_NAME_CHARACTERS = re.compile(r"[^\w+=,.@-]", re.ASCII)
_ACCOUNT = re.compile(r"\A\d{12}\Z")
STS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)


class AccountAccessError(OperatorError):
    """The member role of an account could not be assumed; the message names account and role."""


def session_name(job: str, run_id: str) -> str:
    """``<job>-<run id>`` reduced to what ``RoleSessionName`` accepts: ``[\\w+=,.@-]``, 2 to 64 characters."""
    return _SESSION_NAME_CHARACTERS.sub("-", f"{job}-{run_id}")[:SESSION_NAME_LIMIT]


def role_arn(pattern: str, account: str) -> str:
    """The member role's ARN: ``pattern`` with ``{account}`` replaced (``MEMBER_ROLE_ARN_PATTERN``)."""
    if not _ACCOUNT.match(account):
        raise ValueError(f"{account!r} is not a 12-digit AWS account id")
    return pattern.replace("{account}", account)


class MemberSessions:
    """boto3 sessions of member accounts, each acting as that account's member role.

    ``base``: the session whose credentials assume the roles (the function's own role); its
    region and ``AWS_ENDPOINT_URL`` carry over to the member sessions. ``refresh_before_seconds``:
    how long before the end of a session botocore assumes the role again.
    """

    def __init__(
        self,
        role_arn_pattern: str,
        job: str,
        run_id: str,
        base: boto3.session.Session | None = None,
        duration_seconds: int = SESSION_SECONDS,
        refresh_before_seconds: int = REFRESH_BEFORE_SECONDS,
    ):
        if "{account}" not in role_arn_pattern:
            raise ValueError(f"the member role ARN pattern must hold {{account}}, got {role_arn_pattern!r}")
        self._pattern = role_arn_pattern
        self._session_name = session_name(job, run_id)
        self._base = base or boto3.session.Session()
        self._sts = self._base.client("sts", config=STS_CONFIG)
        self._duration = duration_seconds
        self._refresh_before = refresh_before_seconds

    @property
    def session_name(self) -> str:
        return self._session_name

    def session(self, account: str) -> boto3.session.Session:
        """A new session of ``account``'s member role; raises ``AccountAccessError`` when it cannot be assumed."""
        arn = role_arn(self._pattern, account)
        fetch = self._fetcher(arn)
        try:
            first = fetch()
        except (ClientError, BotoCoreError) as exc:
            raise AccountAccessError(
                f"account {account}: cannot assume {arn} ({_describe(exc)}); deploy the member roles there "
                "(StackSet or the member stack) with this hub's role ARNs, or remove the account from the settings"
            ) from None
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=first, refresh_using=fetch, method="assume-role"
        )
        credentials._advisory_refresh_timeout = self._refresh_before
        credentials._mandatory_refresh_timeout = min(MUST_REFRESH_BEFORE_SECONDS, self._refresh_before)
        core = botocore.session.Session()
        # The service models are parsed once (by the base session's loader), not once per account.
        core.register_component("data_loader", self._base._session.get_component("data_loader"))
        core._credentials = credentials
        return boto3.session.Session(botocore_session=core, region_name=self._base.region_name)

    def _fetcher(self, arn: str) -> Callable[[], dict[str, str]]:
        def fetch() -> dict[str, str]:
            answer = self._sts.assume_role(
                RoleArn=arn, RoleSessionName=self._session_name, DurationSeconds=self._duration
            )["Credentials"]
            expiration: datetime = answer["Expiration"]
            return {
                "access_key": answer["AccessKeyId"],
                "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"],
                "expiry_time": expiration.isoformat(),
            }

        return fetch


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
