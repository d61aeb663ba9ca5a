"""Organization mode: the member side (roles the hub's functions assume in every other account)
and the service-managed StackSet that puts it into every account of chosen OUs.

The hub stack (``KeyRotationStack``) keeps the functions, the secrets and the GitLab token. Each
member account holds up to two roles, under the IAM path ``/gitlab-key-rotation/``:

- ``<member_role_name>-rotation``: trusted only by the hub's rotation function role; may list,
  create, update and delete the access keys of the configured machine users and nothing else;
- ``<member_role_name>-revocation``: trusted only by the hub's revocation function role; may read
  the configured groups and revoke their members' keys, with an explicit Deny on every machine user
  (the configured ones, at any path, and every user under ``/gitlab-key-rotation/``).

A StackSet template is the same in every account, so nothing in it may depend on which account it
lands in: resources are ``${AWS::AccountId}``-relative, the rotation role names the configured
machine users exactly (name and path), and the hub decides which account it asks for which user.
The template is asset-free (roles and policies only, no bootstrap parameter), small enough to be
passed inline (``TemplateBody``, at most 51,200 bytes).
"""

from __future__ import annotations

import json
import tempfile
from typing import Any, Literal, Sequence

import aws_cdk as cdk
from aws_cdk import Acknowledgment, ArnFormat, Aws, CfnParameter, Stack, Validations
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_iam as iam
from constructs import Construct

from .lambda_src.contract import rules
from .lambda_src.contract import settings as declared
from .lambda_src.contract.rules import Invalid, Rule
from .lambda_src.contract.schema import refusal
from .lambda_src.contract.settings import DEACTIVATED_TAG_PREFIX
from .targets import RotatedUser

# The IAM path of the member roles, and the path recommended for machine users in member accounts
# (the revocation role is denied every user under it, whatever the configuration says).
MEMBER_PATH = "/gitlab-key-rotation/"
ROTATION_SUFFIX = "-rotation"
REVOCATION_SUFFIX = "-revocation"
# CloudFormation's limit for an inline TemplateBody.
TEMPLATE_BODY_LIMIT_BYTES = 51_200

_KEY_ACTIONS = ["iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]
_MUTATE_KEY_ACTIONS = ["iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:DeleteAccessKey"]
_HUB_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"  # what the hub role parameters accept
CallAs = Literal["SELF", "DELEGATED_ADMIN"]


def _checked(rule: Rule, value: object, where: str) -> Any:
    """``value`` as the settings contract's ``rule`` accepts it, or a ValueError naming ``where``."""
    try:
        return rule.check(value)
    except Invalid as error:
        raise ValueError(f"{where} {refusal(rule, value, error)}") from None


def member_role_arn(account: str, member_role_name: str, suffix: str, partition: str = Aws.PARTITION) -> str:
    """``arn:<partition>:iam::<account>:role/gitlab-key-rotation/<name><suffix>``; ``account`` may be ``*``."""
    return f"arn:{partition}:iam::{account}:role{MEMBER_PATH}{member_role_name}{suffix}"


def member_role_arn_pattern(member_role_name: str, suffix: str) -> str:
    """The member role's ARN with ``{account}`` in place of the account id: what the Lambdas get."""
    return member_role_arn("{account}", member_role_name, suffix)


def mark_deactivated_keys(any_user_arn: str) -> iam.PolicyStatement:
    """iam:TagUser/UntagUser for the revocation's own tags only (deactivate mode's marks, under the
    contract's ``DEACTIVATED_TAG_PREFIX``): the only user tags the revocation roles may set or remove."""
    return iam.PolicyStatement(
        sid="MarkDeactivatedKeys",
        actions=["iam:TagUser", "iam:UntagUser"],
        resources=[any_user_arn],
        conditions={
            # every tag key of the request under the revocation's own prefix, and at least one
            "ForAllValues:StringLike": {"aws:TagKeys": f"{DEACTIVATED_TAG_PREFIX}*"},
            "Null": {"aws:TagKeys": "false"},
        },
    )


class MemberRoles(Construct):
    """The roles the hub's functions assume in a member account (see the module docstring).

    :param member_role_name: the roles are ``<member_role_name>-rotation`` and ``-revocation``,
        under the path ``/gitlab-key-rotation/``.
    :param hub_account: the hub's account id. :param hub_rotation_role_arn: the hub's rotation
        function role; None: no rotation role. :param hub_revocation_role_arn: likewise.
    :param rotated_users: the machine users the rotation role may manage the keys of (in the account
        where the role is).
    :param groups: the IAM groups whose members' keys the revocation role may revoke.
    :param protected_users: users the revocation role is denied (at any path), besides every user
        under ``/gitlab-key-rotation/``.
    :param exempt_groups: IAM groups whose members are exempt (the role may list them too).
    :param action: ``delete`` or ``deactivate`` (adds ``iam:UpdateAccessKey``, reading user tags, and
        setting or removing the revocation's own ``key-revocation:deactivated:*`` tags).
    :param exempt_tag_key: non-empty: the revocation role may read user tags.

    Created resources: ``rotation_role``, ``revocation_role`` (None when not asked for).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        member_role_name: str = declared.DEFAULT_MEMBER_ROLE_NAME,
        hub_account: str,
        hub_rotation_role_arn: str | None,
        hub_revocation_role_arn: str | None,
        rotated_users: Sequence[RotatedUser] = (),
        groups: Sequence[str] = (),
        exempt_groups: Sequence[str] = (),
        protected_users: Sequence[str] = (),
        action: Literal["delete", "deactivate"] = "delete",
        exempt_tag_key: str = "",
    ):
        super().__init__(scope, id_)
        _checked(rules.MEMBER_ROLE_NAME, member_role_name, "member_role_name")
        if hub_rotation_role_arn is None and hub_revocation_role_arn is None:
            raise ValueError("MemberRoles needs hub_rotation_role_arn or hub_revocation_role_arn (or both)")
        if hub_rotation_role_arn is not None and not rotated_users:
            raise ValueError("the member rotation role needs rotated_users: the machine users whose keys it manages")
        if hub_revocation_role_arn is not None and not groups:
            raise ValueError("the member revocation role needs groups: the IAM groups whose members' keys it revokes")
        stack = Stack.of(self)
        self.rotation_role: iam.Role | None = None
        self.revocation_role: iam.Role | None = None

        if hub_rotation_role_arn is not None:
            self.rotation_role = self._role(
                "RotationRole", member_role_name + ROTATION_SUFFIX, hub_account, hub_rotation_role_arn,
                "Assumed by the hub's key rotation function: manages the access keys of the configured machine users",
                iam.PolicyStatement(
                    sid="RotateMachineUserKeys",
                    actions=_KEY_ACTIONS,
                    resources=sorted({_iam_arn(stack, "user", u.iam_path.lstrip("/") + u.iam_user) for u in rotated_users}),
                ),
            )  # fmt: skip

        if hub_revocation_role_arn is not None:
            self.revocation_role = self._role(
                "RevocationRole", member_role_name + REVOCATION_SUFFIX, hub_account, hub_revocation_role_arn,
                "Assumed by the hub's developer key revocation function: revokes the keys of the configured groups' members",
                iam.PolicyStatement(
                    sid="ListGroupMembers",
                    actions=["iam:GetGroup"],
                    resources=[_iam_arn(stack, "group", group) for group in dict.fromkeys([*groups, *exempt_groups])],
                ),
            )  # fmt: skip
            user_actions = ["iam:ListAccessKeys", "iam:DeleteAccessKey"]
            if action == "deactivate":
                user_actions.append("iam:UpdateAccessKey")
            if exempt_tag_key or action == "deactivate":
                user_actions.append("iam:ListUserTags")
            self.revocation_role.add_to_principal_policy(
                iam.PolicyStatement(sid="RevokeMemberKeys", actions=user_actions, resources=[_iam_arn(stack, "user", "*")])
            )
            if action == "deactivate":
                self.revocation_role.add_to_principal_policy(mark_deactivated_keys(_iam_arn(stack, "user", "*")))
            Validations.of(self.revocation_role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:user/*]",
                    reason=(
                        "Group members are only known at run time (iam:GetGroup); the code touches only members of "
                        "the configured groups, and every machine user is denied explicitly."
                    ),
                )
            )
            denied = [_iam_arn(stack, "user", MEMBER_PATH.strip("/") + "/*")] + [
                arn
                for user in sorted(set(protected_users))
                for arn in (_iam_arn(stack, "user", user), _iam_arn(stack, "user", f"*/{user}"))
            ]
            self.revocation_role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="NeverTouchMachineUsers",
                    effect=iam.Effect.DENY,
                    actions=[*_MUTATE_KEY_ACTIONS, "iam:TagUser", "iam:UntagUser"],
                    resources=denied,
                )
            )

    def _role(
        self, id_: str, name: str, hub_account: str, hub_role_arn: str, description: str, first: iam.PolicyStatement
    ) -> iam.Role:
        """The member role ``name`` that only ``hub_role_arn`` may assume, allowed ``first``."""
        # The account principal plus aws:PrincipalArn, not the role ARN as principal: IAM pins a role
        # principal to the role's unique id, so a re-created hub role would lose access.
        role = iam.Role(
            self,
            id_,
            role_name=name,
            path=MEMBER_PATH,
            description=description,
            assumed_by=iam.AccountPrincipal(hub_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": hub_role_arn}}
            ),
            max_session_duration=cdk.Duration.hours(1),
        )
        role.add_to_principal_policy(first)
        return role


class MemberRolesStack(Stack):
    """The member template: ``MemberRoles`` with the hub's identity as parameters, asset-free and
    bootstrap-free, so that it can be deployed by a StackSet into any account or with
    ``cdk deploy <name> --parameters ...`` into one.

    Parameters: ``HubAccountId``, ``HubRotationRoleArn`` (when ``rotated_users``),
    ``HubRevocationRoleArn`` (when ``groups``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        member_role_name: str = declared.DEFAULT_MEMBER_ROLE_NAME,
        rotated_users: Sequence[RotatedUser] = (),
        groups: Sequence[str] = (),
        exempt_groups: Sequence[str] = (),
        protected_users: Sequence[str] = (),
        action: Literal["delete", "deactivate"] = "delete",
        exempt_tag_key: str = "",
        **kwargs,
    ):
        super().__init__(
            scope, id_, synthesizer=cdk.BootstraplessSynthesizer(), analytics_reporting=False, **kwargs
        )
        hub_account = CfnParameter(
            self, "HubAccountId", type="String", allowed_pattern=r"\d{12}",
            description="The account of the hub stack (KeyRotationStack) whose functions assume these roles",
        )  # fmt: skip
        rotation_arn = self._hub_role_arn("Rotation") if rotated_users else None
        revocation_arn = self._hub_role_arn("Revocation") if groups else None
        self.roles = MemberRoles(
            self,
            "MemberRoles",
            member_role_name=member_role_name,
            hub_account=hub_account.value_as_string,
            hub_rotation_role_arn=rotation_arn,
            hub_revocation_role_arn=revocation_arn,
            rotated_users=rotated_users,
            groups=groups,
            exempt_groups=exempt_groups,
            protected_users=protected_users,
            action=action,
            exempt_tag_key=exempt_tag_key,
        )

    def _hub_role_arn(self, job: str) -> str:
        """The parameter ``Hub<job>RoleArn``: the role of the hub's ``job`` function."""
        return CfnParameter(
            self, f"Hub{job}RoleArn", type="String", allowed_pattern=_HUB_ROLE_ARN,
            description=f"The role of the hub's {job.lower()} function (output {job}RoleArn of the hub stack)",
        ).value_as_string  # fmt: skip


def member_template(**member_props) -> dict:
    """The template of a ``MemberRolesStack`` with these props, synthesized in its own App.

    Raises ``ValueError`` when it is too large to be a StackSet's inline ``TemplateBody``.
    """
    with tempfile.TemporaryDirectory(prefix="member-template-") as outdir:
        app = cdk.App(outdir=outdir, analytics_reporting=False)
        MemberRolesStack(app, "Member", **member_props)
        template = app.synth().get_stack_by_name("Member").template
    size = len(json.dumps(template, separators=(",", ":")).encode())
    if size > TEMPLATE_BODY_LIMIT_BYTES:
        raise ValueError(
            f"the member template takes {size} bytes, over CloudFormation's inline TemplateBody limit of "
            f"{TEMPLATE_BODY_LIMIT_BYTES}: configure fewer machine users or groups"
        )
    return template


class MemberRolesStackSet(Construct):
    """A service-managed StackSet that deploys ``template`` into every account of ``ou_ids`` (and
    every account added to them later; an account removed loses the stack), in this stack's region
    only (IAM is global).

    The stack holding it must be deployed in the organization's management account (``call_as``
    ``SELF``) or in a delegated administrator account for CloudFormation StackSets
    (``DELEGATED_ADMIN``), with trusted access for StackSets enabled in AWS Organizations.

    Created resources: ``stack_set``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        template: dict,
        parameters: dict[str, str],
        ou_ids: Sequence[str],
        call_as: CallAs = "SELF",
        max_concurrent_percentage: int = 25,
        failure_tolerance_percentage: int = 10,
    ):
        super().__init__(scope, id_)
        ou_ids = tuple(_checked(rules.ListOf(rules.OU_OR_ROOT_ID), list(ou_ids), "ou_ids"))
        if not ou_ids:
            raise ValueError("ou_ids must name at least one organizational unit (or root) to deploy the member roles to")
        if call_as not in ("SELF", "DELEGATED_ADMIN"):
            raise ValueError(f"call_as must be 'SELF' or 'DELEGATED_ADMIN', got {call_as!r}")
        stack = Stack.of(self)
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "StackSet",
            stack_set_name=f"{stack.stack_name}-member-roles",
            description="Roles that the hub's key rotation and revocation functions assume in this account",
            permission_model="SERVICE_MANAGED",
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=call_as,
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                max_concurrent_percentage=max_concurrent_percentage,
                failure_tolerance_percentage=failure_tolerance_percentage,
                region_concurrency_type="PARALLEL",
            ),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(parameter_key=key, parameter_value=value)
                for key, value in sorted(parameters.items())
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(ou_ids)
                    ),
                    regions=[stack.region],
                )
            ],
            template_body=json.dumps(template, separators=(",", ":"), sort_keys=True),
        )


def _iam_arn(stack: Stack, resource: str, name: str) -> str:
    return stack.format_arn(
        service="iam", region="", resource=resource, resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )

