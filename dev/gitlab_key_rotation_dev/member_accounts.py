"""Emulated member accounts: moto is multi-account (credentials of a role assumed in account B act on
B's resources), so the member template can be "deployed" into several accounts of one emulator.

:func:`account_clients` gives clients that act in an account (an administrator of it, for seeding,
before IAM enforcement is on); :func:`deploy_member_template` creates the member template's roles
there with their trust policies and policies resolved (``HubAccountId`` and the hub role ARNs as
parameters), the way the StackSet would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from gitlab_key_rotation_dev.moto_iam_enforcement import check_evaluable, enforcing
from gitlab_key_rotation_dev.template_resolver import TemplateResolver

ClientFactory = Callable[..., Any]  # (service, **credentials) -> boto3 client of the emulator


def account_clients(client: ClientFactory, account: str) -> ClientFactory:
    """A factory of clients acting in ``account`` as its administrator (seeding only: call it
    before IAM enforcement is on, when moto hands out any role's credentials)."""
    if enforcing():
        raise RuntimeError("account_clients() seeds an account: call it before iam_enforcement()")
    credentials = client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/emulator-administrator", RoleSessionName="seed"
    )["Credentials"]
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    return lambda service: client(service, **keys)


def deploy_member_template(
    template: Mapping[str, Any], iam: Any, *, account: str, parameters: Mapping[str, str]
) -> dict[str, str]:
    """Create the template's roles and attach its policies in ``account`` (``iam`` acts there);
    returns role name -> ARN. Each policy must be one the enforcement can judge exactly."""
    resolver = TemplateResolver(template, dict(parameters), account_id=account, stack_name="Member")
    roles: dict[str, str] = {}
    physical: dict[str, Any] = dict(parameters)
    for logical_id, properties in resolver.resources_of_type("AWS::IAM::Role").items():
        resolved = resolver.resolve(properties, f"Resources.{logical_id}.Properties")
        role = iam.create_role(
            RoleName=resolved["RoleName"],
            Path=resolved.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(resolved["AssumeRolePolicyDocument"]),
            MaxSessionDuration=resolved.get("MaxSessionDuration", 3600),
        )["Role"]
        roles[role["RoleName"]] = role["Arn"]
        physical[logical_id] = {"Ref": role["RoleName"], "Arn": role["Arn"]}
    resolver = TemplateResolver(template, physical, account_id=account, stack_name="Member")
    for logical_id, properties in resolver.resources_of_type("AWS::IAM::Policy").items():
        resolved = resolver.resolve(properties, f"Resources.{logical_id}.Properties")
        check_evaluable(resolved["PolicyDocument"])
        for role_name in resolved["Roles"]:
            iam.put_role_policy(
                RoleName=role_name, PolicyName=resolved["PolicyName"], PolicyDocument=json.dumps(resolved["PolicyDocument"])
            )
    return roles
