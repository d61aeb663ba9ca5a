"""Turning on moto's IAM authentication so that policies scoped to exact ARNs are honoured.

moto 5.2.5 can check each request against the caller's IAM policies, but it checks most actions
against the resource ``"*"``: only roles, SQS queues and ``sts:AssumeRole`` get their real ARN. A
policy scoped to ``user/ci-deployer`` or to one secret is then denied everything. Its statement
matcher also turns IAM wildcards into unescaped regular expressions (``secret:name-??????``, the
suffix pattern CDK grants on a secret imported by name, is a regex error), compares actions case-
sensitively, and judges any ``NotResource`` statement "permitted", whatever its Effect.

While :func:`iam_enforcement` is active:

1. the response classes name the real resource of a request (:func:`_iam_resource`,
   :func:`_secretsmanager_resource`, :func:`_sns_resource`), as moto already does for roles;
2. identity-policy statements are judged the way IAM does it (:func:`statement_result`);
   statements that cannot be judged faithfully here (``Condition``, policy variables) are refused
   with :class:`UnevaluablePolicyError` rather than guessed at;
3. every request is authenticated (key, session token, signature) and authorized; a refusal names
   the action and the resource, as AWS's does, and Secrets Manager refuses with AWS's JSON error
   ``AccessDeniedException`` (moto's XML answer would reach botocore as the code ``"403"``).

4. ``sts:AssumeRole`` is judged across accounts as IAM does (:func:`trust_result`): the caller's own
   policies must allow the role's ARN, the role must exist in its account (moto would hand out
   credentials for any ARN) and its trust policy must name the caller (``*``, the caller's account
   or its ``:root``, or its exact ARN), with ``aws:PrincipalArn`` conditions evaluated; moto itself
   looks for the role in the caller's account only and so skips the trust policy of another one.

Left as moto has it: ``sts:GetCallerIdentity`` is always allowed (as on AWS); an Inactive access
key still authenticates (unlike AWS); SNS refuses with ``AccessDenied`` (AWS: ``AuthorizationError``).

Everything is undone on exit. The patches live in this process, so they cover ``mock_aws`` and a
``moto.server.ThreadedMotoServer`` started in this process (its requests are served by the same
classes), not a moto server running in another process.

moto cannot check a service principal's trust policy (``lambda.amazonaws.com``): get a role's
credentials with :func:`role_credentials` *before* entering :func:`iam_enforcement`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError, _RESTError
from moto.iam.access_control import AssumedRoleAccessKey, IAMPolicyStatement, IAMRequest, IAMRequestBase, PermissionResult
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.iam.responses import IamResponse
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sns.responses import SNSResponse

LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class UnevaluablePolicyError(ValueError):
    """A policy statement uses an element that this harness cannot evaluate the way IAM does."""


# --- which resource a request acts on --------------------------------------------------------


def _iam_resource(response: IamResponse, moto_role_resource: Callable[[IamResponse], str]) -> str:
    """The ARN of the role, group or user an IAM request names, else ``"*"``.

    A group wins over a user (``AddUserToGroup`` acts on the group). ``AccessKeyId`` alone
    (``GetAccessKeyLastUsed``) names the user that owns the key.
    """
    if response._get_param("RoleName"):
        return moto_role_resource(response)
    backend = response.backend
    prefix = f"arn:{response.partition}:iam::{response.current_account}"
    group_name = response._get_param("GroupName")
    if group_name:
        group = backend.groups.get(group_name)
        return group.arn if group else f"{prefix}:group/{group_name}"
    user_name = response._get_param("UserName")
    if user_name:
        user = backend.users.get(user_name)
        return user.arn if user else f"{prefix}:user/{user_name}"
    access_key_id = response._get_param("AccessKeyId")
    if access_key_id:
        for user in backend.users.values():
            if any(key.access_key_id == access_key_id for key in user.access_keys):
                return user.arn
    return "*"


def _secretsmanager_resource(response: SecretsManagerResponse) -> str:
    """The ARN of the secret a request names by ``SecretId`` (name, ARN or partial ARN), else ``"*"``."""
    secret_id = response._get_param("SecretId")
    if not secret_id:
        return "*"
    secret = response.backend.secrets.get(secret_id)
    if secret is not None:
        return secret.arn
    if secret_id.startswith("arn:"):
        return secret_id
    return f"arn:{response.partition}:secretsmanager:{response.region}:{response.current_account}:secret:{secret_id}"


def _sns_resource(response: SNSResponse) -> str:
    """The topic a request names (``TopicArn``, or ``TargetArn`` of ``Publish``), else ``"*"``."""
    return response._get_param("TopicArn") or response._get_param("TargetArn") or "*"


# moto answers a refused request of a JSON-protocol service (Secrets Manager) with an XML body that
# botocore cannot parse (the error code becomes "403"); AWS answers with these JSON errors.
_JSON_AUTH_ERRORS = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def _with_json_auth_errors(authorize: Callable[..., None]) -> Callable[..., None]:
    def authorize_json(self: Any, resource: str = "*") -> None:
        try:
            authorize(self, resource)
        except _RESTError as error:
            if error.error_type not in _JSON_AUTH_ERRORS:
                raise
            raise JsonRESTError(_JSON_AUTH_ERRORS[error.error_type], error.message) from None

    return authorize_json


def _naming_the_resource(check: Callable[[IAMRequest, str], None]) -> Callable[[IAMRequest, str], None]:
    """Make a refusal say which resource was refused, as AWS does (``... on resource: arn``)."""

    def check_action_permitted(self: IAMRequest, resource: str) -> None:
        try:
            check(self, resource)
        except AccessDeniedError:
            raise AccessDeniedError(
                user_arn=self._access_key.arn, action=f"{self._action} on resource: {resource}"
            ) from None

    return check_action_permitted


# --- how an identity-policy statement is evaluated -------------------------------------------


def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` exactly one."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rf"\A{body}\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches_any(patterns: str | Sequence[str], value: str, *, ignore_case: bool) -> bool:
    return any(_glob(p, ignore_case=ignore_case).match(value) for p in _as_list(patterns))


def unevaluable_elements(statement: Mapping[str, Any]) -> list[str]:
    """What in an identity-policy statement cannot be evaluated here; empty when all of it can."""
    problems = [f"{key} is not evaluated" for key in ("Condition", "Principal", "NotPrincipal") if key in statement]
    for key in ("Resource", "NotResource"):
        for pattern in _as_list(statement.get(key, [])):
            if "${" in pattern:
                problems.append(f"policy variable in {key} {pattern!r} is not evaluated")
    if ("Action" in statement) == ("NotAction" in statement):
        problems.append("needs exactly one of Action and NotAction")
    if ("Resource" in statement) == ("NotResource" in statement):
        problems.append("needs exactly one of Resource and NotResource")
    if statement.get("Effect") not in ("Allow", "Deny"):
        problems.append(f"Effect must be Allow or Deny, got {statement.get('Effect')!r}")
    return problems


def check_evaluable(document: Mapping[str, Any]) -> None:
    """Raise :class:`UnevaluablePolicyError` naming each statement this harness would misjudge."""
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise UnevaluablePolicyError(f"policy Statement must be an object or a list, got {statements!r}")
    problems = [
        f"statement {index} ({statement.get('Sid', 'no Sid')}): {problem}"
        for index, statement in enumerate(statements)
        for problem in unevaluable_elements(statement)
    ]
    if problems:
        raise UnevaluablePolicyError("; ".join(problems))


def statement_result(statement: Mapping[str, Any], action: str, resource: str) -> PermissionResult:
    """IAM's verdict of one identity-policy statement on ``action`` (``iam:ListAccessKeys``) on ``resource``.

    PERMITTED or DENIED when the statement applies (by its Effect), NEUTRAL when it does not.
    Actions match case-insensitively, resources case-sensitively, both with ``*`` and ``?``.
    """
    problems = unevaluable_elements(statement)
    if problems:
        raise UnevaluablePolicyError(f"cannot evaluate statement {dict(statement)!r}: {'; '.join(problems)}")
    if "Action" in statement:
        action_applies = _matches_any(statement["Action"], action, ignore_case=True)
    else:
        action_applies = not _matches_any(statement["NotAction"], action, ignore_case=True)
    if "Resource" in statement:
        resource_applies = _matches_any(statement["Resource"], resource, ignore_case=False)
    else:
        resource_applies = not _matches_any(statement["NotResource"], resource, ignore_case=False)
    if not (action_applies and resource_applies):
        return PermissionResult.NEUTRAL
    return PermissionResult.PERMITTED if statement["Effect"] == "Allow" else PermissionResult.DENIED


# --- who may assume a role: its trust policy -------------------------------------------------

# Condition operators judged on aws:PrincipalArn (the only condition key the member roles use).
_ARN_OPERATORS = {"ArnEquals": False, "StringEquals": False, "ArnLike": True, "StringLike": True}


def _principal_named(principal: Any, caller_account: str, caller_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnevaluablePolicyError(f"trust policy Principal {principal!r} is not evaluated")
    unknown = set(principal) - {"AWS", "Service", "Federated"}
    if unknown:
        raise UnevaluablePolicyError(f"trust policy Principal keys {sorted(unknown)} are not evaluated")
    for name in _as_list(principal.get("AWS", [])):
        if name in ("*", caller_account, caller_arn) or re.fullmatch(rf"arn:aws[\w-]*:iam::{caller_account}:root", name):
            return True
    return False  # a service or federated principal is never an AWS caller


def _conditions_hold(condition: Mapping[str, Any], caller_arn: str) -> bool:
    for operator, keys in condition.items():
        if operator not in _ARN_OPERATORS:
            raise UnevaluablePolicyError(f"trust policy condition operator {operator!r} is not evaluated")
        for key, expected in keys.items():
            if key.lower() != "aws:principalarn":
                raise UnevaluablePolicyError(f"trust policy condition key {key!r} is not evaluated")
            wildcards = _ARN_OPERATORS[operator]
            if not any(
                _glob(value, ignore_case=False).match(caller_arn) if wildcards else value == caller_arn
                for value in _as_list(expected)
            ):
                return False
    return True


def trust_result(document: Mapping[str, Any], caller_account: str, caller_arn: str) -> PermissionResult:
    """IAM's verdict of a role's trust policy on ``sts:AssumeRole`` by ``caller_arn`` (the role ARN
    of an assumed-role caller, with its path, as ``aws:PrincipalArn`` has it) of ``caller_account``."""
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else statements
    verdict = PermissionResult.NEUTRAL
    for statement in statements:
        if "NotPrincipal" in statement or "NotAction" in statement:
            raise UnevaluablePolicyError(f"trust policy statement {dict(statement)!r}: NotPrincipal/NotAction are not evaluated")
        if not _matches_any(statement.get("Action", []), "sts:AssumeRole", ignore_case=True):
            continue
        if not _principal_named(statement.get("Principal"), caller_account, caller_arn):
            continue
        if not _conditions_hold(statement.get("Condition", {}), caller_arn):
            continue
        if statement.get("Effect") == "Deny":
            return PermissionResult.DENIED
        verdict = PermissionResult.PERMITTED
    return verdict


def _caller_principal_arn(request: IAMRequest) -> str:
    """``aws:PrincipalArn`` of the request's caller: an assumed role's own ARN (with its path)."""
    key = request._access_key
    if isinstance(key, AssumedRoleAccessKey):
        for assumed in sts_backends[key.account_id][key.partition].assumed_roles:
            if assumed.access_key_id == key._access_key_id:
                return assumed.role_arn
    return key.arn


def _with_trust_policies(check: Callable[[IAMRequest, str], None]) -> Callable[[IAMRequest, str], None]:
    """After the caller's own policies allowed ``sts:AssumeRole`` on ``resource``: the role must
    exist (in the account its ARN names) and trust the caller."""

    def check_action_permitted(self: IAMRequest, resource: str) -> None:
        check(self, resource)
        if self._action.lower() != "sts:assumerole":
            return
        account, partition = resource.split(":")[4], resource.split(":")[1]
        try:
            role = iam_backends[account][partition].get_role_by_arn(resource)
        except NotFoundException:
            raise AccessDeniedError(
                user_arn=self._access_key.arn, action=f"{self._action} on resource: {resource} (no such role)"
            ) from None
        verdict = trust_result(json.loads(role.assume_role_policy_document), self.account_id, _caller_principal_arn(self))
        if verdict != PermissionResult.PERMITTED:
            raise AccessDeniedError(
                user_arn=self._access_key.arn, action=f"{self._action} on resource: {resource} (its trust policy)"
            )

    return check_action_permitted


# --- switching it on and off -----------------------------------------------------------------


def enforcing() -> bool:
    """Whether moto checks the next request's signature and permissions."""
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _set_attribute(stack: ExitStack, owner: object, name: str, value: object) -> None:
    """Set ``owner.name`` and register on ``stack`` whatever restores it (or deletes it if it was absent)."""
    if name in vars(owner):
        stack.callback(setattr, owner, name, vars(owner)[name])
    else:
        stack.callback(delattr, owner, name)
    setattr(owner, name, value)


@contextmanager
def iam_enforcement() -> Iterator[None]:
    """Authenticate and authorize every moto request against the caller's policies, on exact ARNs.

    Works with ``mock_aws`` and with a ``ThreadedMotoServer`` of this process. Undone on exit,
    also when the body raises. Not re-entrant: entering it twice is a mistake and is refused.
    """
    if enforcing():
        raise RuntimeError("moto IAM enforcement is already on; iam_enforcement() cannot be nested")
    moto_role_resource = IamResponse._determine_resource
    moto_statement_result = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        # Trust policies (sts:AssumeRole) and resource policies name a principal: moto judges those.
        if principal is not None or "Principal" in self._statement or "NotPrincipal" in self._statement:
            return moto_statement_result(self, action, resource, principal, incoming_condition_values)
        return statement_result(self._statement, action, resource)

    with ExitStack() as stack:
        _set_attribute(stack, IamResponse, "_determine_resource", lambda self: _iam_resource(self, moto_role_resource))
        _set_attribute(stack, SecretsManagerResponse, "_determine_resource", _secretsmanager_resource)
        _set_attribute(stack, SNSResponse, "_determine_resource", _sns_resource)
        _set_attribute(
            stack,
            SecretsManagerResponse,
            "_authenticate_and_authorize_normal_action",
            _with_json_auth_errors(SecretsManagerResponse._authenticate_and_authorize_normal_action),
        )
        _set_attribute(stack, IAMPolicyStatement, "is_action_permitted", is_action_permitted)
        _set_attribute(
            stack,
            IAMRequest,
            "check_action_permitted",
            _with_trust_policies(_naming_the_resource(IAMRequest.check_action_permitted)),
        )
        # moto looks for the role in the caller's account only; _with_trust_policies judges every account.
        _set_attribute(stack, IAMRequestBase, "_is_assuming_role_operation", lambda self, resource_arn: False)
        _set_attribute(stack, settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        yield


# --- credentials that carry exactly some policies --------------------------------------------


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of an assumed role. The secret parts never appear in ``repr``."""

    role_arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` that sign with these credentials."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }

    def runtime_environment(self) -> dict[str, str]:
        """The credential variables the Lambda runtime sets for a function running as this role."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def role_credentials(
    iam: Any,
    sts: Any,
    *,
    role_name: str,
    documents: Sequence[Mapping[str, Any]],
    session_name: str = "least-privilege-proof",
) -> RoleCredentials:
    """Create a Lambda-trusted role holding exactly ``documents`` (inline policies) and assume it.

    ``iam`` and ``sts`` are boto3 clients of the emulator. Each document is checked with
    :func:`check_evaluable` first. Call this before :func:`iam_enforcement`: moto cannot check
    the role's trust policy (a service principal), so the role is assumed while nothing is checked.
    """
    if enforcing():
        raise RuntimeError(
            "call role_credentials() before iam_enforcement(): moto cannot check the trust policy of "
            f"role {role_name!r} (service principal lambda.amazonaws.com)"
        )
    for index, document in enumerate(documents):
        try:
            check_evaluable(document)
        except UnevaluablePolicyError as error:
            raise UnevaluablePolicyError(f"role {role_name!r} document {index}: {error}") from None
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))["Role"][
        "Arn"
    ]
    for index, document in enumerate(documents):
        iam.put_role_policy(RoleName=role_name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return RoleCredentials(
        role_arn=role_arn,
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )
