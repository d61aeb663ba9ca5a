"""Making a synthesized CloudFormation template concrete against emulated resources.

A Lambda's ``Environment.Variables`` and an IAM policy's statements are full of ``Ref``,
``Fn::GetAtt``, ``Fn::Join`` and ``Fn::Sub``. Given the template (a dict) and the physical value
of each resource the test created on the emulator, :class:`TemplateResolver` turns them into the
strings CloudFormation would have produced, so that a handler can be run with the environment the
template gives it and a role can be given exactly the statements the template grants.

Supported: ``Ref`` (resources, parameters, pseudo parameters), ``Fn::GetAtt`` (list or ``"Id.Attr"``),
``Fn::Join``, ``Fn::Sub`` (string and list forms, ``${!Literal}``), ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::Base64`` and ``AWS::NoValue``. Anything else (``Fn::If``,
``Fn::ImportValue``, ...) raises :class:`TemplateResolutionError` naming where it was found.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MOTO_ACCOUNT_ID = "123456789012"

PhysicalValue = str | Mapping[str, str]
"""A resource's ``Ref`` value, or ``{"Ref": ..., "<attribute>": ...}`` for ``Fn::GetAtt`` as well."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateResolutionError(ValueError):
    """The template holds something that cannot be resolved; the message says where and why."""


class _NoValue:
    """``Ref: AWS::NoValue``: the property or list item is removed."""


_NO_VALUE = _NoValue()


@dataclass(frozen=True)
class LambdaFunction:
    """An ``AWS::Lambda::Function`` of the template, its environment resolved."""

    logical_id: str
    handler: str
    role_logical_id: str | None  # None when the role is not a resource of this template
    environment: Mapping[str, str]


@dataclass(frozen=True)
class RolePolicies:
    """Everything that grants a role permissions, resolved.

    ``documents``: the role's inline ``Policies``, and each ``AWS::IAM::Policy`` or
    ``AWS::IAM::ManagedPolicy`` of the template that names the role (in ``Roles``, or in the role's
    ``ManagedPolicyArns``). ``managed_policy_arns``: the other managed policies the role lists
    (AWS managed ones such as ``AWSLambdaBasicExecutionRole``), whose statements are not in the
    template.
    """

    documents: tuple[Mapping[str, Any], ...]
    managed_policy_arns: tuple[str, ...]


class TemplateResolver:
    """Resolves intrinsic functions of one template against the physical values of its resources.

    ``physical`` maps a logical id to its ``Ref`` value (a string), or to a mapping holding
    ``"Ref"`` and the attributes that ``Fn::GetAtt`` reads (``{"Ref": name, "Arn": arn}``).
    It may also give values for template ``Parameters`` (else their ``Default`` is used).
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        physical: Mapping[str, PhysicalValue],
        *,
        account_id: str = MOTO_ACCOUNT_ID,
        region: str = "us-east-1",
        partition: str = "aws",
        url_suffix: str = "amazonaws.com",
        stack_name: str = "KeyRotationStack",
    ) -> None:
        self._resources: Mapping[str, Any] = template.get("Resources", {})
        self._parameters: Mapping[str, Any] = template.get("Parameters", {})
        self._mappings: Mapping[str, Any] = template.get("Mappings", {})
        self._physical = physical
        self._pseudo = {
            "AWS::AccountId": account_id,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": url_suffix,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/e2e",
            "AWS::NoValue": _NO_VALUE,
        }

    # --- the resources ---------------------------------------------------------------------

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        """Logical id -> unresolved ``Properties`` of every resource of ``resource_type``."""
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self._resources.items()
            if resource.get("Type") == resource_type
        }

    def lambda_functions(self) -> list[LambdaFunction]:
        """Every ``AWS::Lambda::Function`` with its handler, resolved environment and role."""
        functions = []
        for logical_id, properties in self.resources_of_type("AWS::Lambda::Function").items():
            where = f"Resources.{logical_id}.Properties"
            variables = properties.get("Environment", {}).get("Variables", {})
            environment = self.resolve(variables, f"{where}.Environment.Variables")
            for name, value in environment.items():
                if not isinstance(value, str):
                    raise TemplateResolutionError(
                        f"{where}.Environment.Variables.{name} must resolve to a string, got {value!r}"
                    )
            functions.append(
                LambdaFunction(
                    logical_id=logical_id,
                    handler=properties.get("Handler", ""),
                    role_logical_id=self._logical_id_of(properties.get("Role"), "Arn"),
                    environment=environment,
                )
            )
        return functions

    def role_policies(self, role_logical_id: str) -> RolePolicies:
        """The resolved policy documents and managed policy ARNs that apply to a role of the template."""
        role = self._resources.get(role_logical_id)
        if role is None or role.get("Type") != "AWS::IAM::Role":
            roles = sorted(self.resources_of_type("AWS::IAM::Role"))
            raise TemplateResolutionError(
                f"{role_logical_id!r} is not an AWS::IAM::Role of the template; roles: {roles}"
            )
        where = f"Resources.{role_logical_id}.Properties"
        properties = role.get("Properties", {})
        documents = [
            self.resolve(policy["PolicyDocument"], f"{where}.Policies[{index}].PolicyDocument")
            for index, policy in enumerate(properties.get("Policies", []))
        ]
        managed_arns = []
        attached = set()
        for index, arn in enumerate(properties.get("ManagedPolicyArns", [])):
            policy_id = self._logical_id_of(arn, None)
            if policy_id in self.resources_of_type("AWS::IAM::ManagedPolicy"):
                attached.add(policy_id)
            else:
                managed_arns.append(self.resolve(arn, f"{where}.ManagedPolicyArns[{index}]"))
        for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy_id, policy in self.resources_of_type(policy_type).items():
                names_role = any(self._logical_id_of(r, None) == role_logical_id for r in policy.get("Roles", []))
                if names_role or policy_id in attached:
                    documents.append(
                        self.resolve(policy["PolicyDocument"], f"Resources.{policy_id}.Properties.PolicyDocument")
                    )
        return RolePolicies(documents=tuple(documents), managed_policy_arns=tuple(managed_arns))

    def _logical_id_of(self, reference: Any, attribute: str | None) -> str | None:
        """The logical id in ``{"Ref": id}`` (attribute None) or ``{"Fn::GetAtt": [id, attribute]}``."""
        if not isinstance(reference, Mapping) or len(reference) != 1:
            return None
        if attribute is None:
            return reference.get("Ref")
        get_att = reference.get("Fn::GetAtt")
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        if isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == attribute:
            return get_att[0]
        return None

    # --- the intrinsic functions -----------------------------------------------------------

    def resolve(self, value: Any, path: str = "value") -> Any:
        """``value`` with every intrinsic function replaced by its result; ``path`` names it in errors."""
        result = self._resolve(value, path)
        if result is _NO_VALUE:
            raise TemplateResolutionError(f"{path} is AWS::NoValue as a whole")
        return result

    def _resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item, f"{path}[{index}]") for index, item in enumerate(value))
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument, path)
            if key.startswith("Fn::"):
                function = _FUNCTIONS.get(key)
                if function is None:
                    supported = ", ".join(["Ref", *sorted(_FUNCTIONS)])
                    raise TemplateResolutionError(
                        f"{path}: {key} is not supported by this resolver (supported: {supported})"
                    )
                return function(self, argument, f"{path}.{key}")
        items = ((key, self._resolve(item, f"{path}.{key}")) for key, item in value.items())
        return {key: item for key, item in items if item is not _NO_VALUE}

    def _ref(self, name: Any, path: str) -> Any:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._physical:
            physical = self._physical[name]
            if isinstance(physical, str):
                return physical
            if "Ref" in physical:
                return physical["Ref"]
            raise TemplateResolutionError(
                f"{path}: Ref {name}: its physical value has no 'Ref' entry, only {sorted(physical)}"
            )
        if name in self._parameters:
            if "Default" in self._parameters[name]:
                return self._parameters[name]["Default"]
            raise TemplateResolutionError(f"{path}: Ref {name}: parameter without Default; give its value in physical")
        if name in self._resources:
            raise TemplateResolutionError(
                f"{path}: Ref {name} ({self._resources[name].get('Type')}): no physical value given for it"
            )
        raise TemplateResolutionError(f"{path}: Ref {name!r}: no such resource, parameter or pseudo parameter")

    def _get_att(self, argument: Any, path: str) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateResolutionError(f"{path}: expected [logical id, attribute], got {argument!r}")
        logical_id, attribute = argument
        attribute = self._resolve(attribute, f"{path}[1]")
        if logical_id not in self._resources:
            raise TemplateResolutionError(f"{path}: {logical_id!r} is not a resource of the template")
        physical = self._physical.get(logical_id)
        if not isinstance(physical, Mapping) or attribute not in physical:
            given = sorted(physical) if isinstance(physical, Mapping) else physical
            raise TemplateResolutionError(
                f"{path}: no value for {logical_id}.{attribute} ({self._resources[logical_id].get('Type')}); "
                f"physical[{logical_id!r}] is {given!r}, give a mapping with {attribute!r}"
            )
        return physical[attribute]

    def _join(self, argument: Any, path: str) -> str:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateResolutionError(f"{path}: expected [delimiter, [values]], got {argument!r}")
        delimiter = self._resolve(argument[0], f"{path}[0]")
        values = self._resolve(argument[1], f"{path}[1]")
        return delimiter.join(self._strings(values, f"{path}[1]"))

    def _sub(self, argument: Any, path: str) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
            text, variables = argument[0], self._resolve(argument[1], f"{path}[1]")
        else:
            raise TemplateResolutionError(f"{path}: expected a string or [string, {{variables}}], got {argument!r}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                value = self._get_att(name.split(".", 1), path)
            else:
                value = self._ref(name, path)
            return self._strings([value], f"{path} ${{{name}}}")[0]

        return _SUB_VARIABLE.sub(substitute, text)

    def _select(self, argument: Any, path: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateResolutionError(f"{path}: expected [index, [values]], got {argument!r}")
        index = self._resolve(argument[0], f"{path}[0]")
        values = self._resolve(argument[1], f"{path}[1]")
        try:
            return values[int(index)]
        except (ValueError, IndexError, TypeError):
            raise TemplateResolutionError(f"{path}: index {index!r} is not in {values!r}") from None

    def _split(self, argument: Any, path: str) -> list[str]:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateResolutionError(f"{path}: expected [delimiter, string], got {argument!r}")
        delimiter = self._resolve(argument[0], f"{path}[0]")
        text = self._strings([self._resolve(argument[1], f"{path}[1]")], f"{path}[1]")[0]
        return text.split(delimiter)

    def _find_in_map(self, argument: Any, path: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise TemplateResolutionError(f"{path}: expected [map, top key, second key], got {argument!r}")
        map_name, top, second = (self._resolve(part, f"{path}[{i}]") for i, part in enumerate(argument))
        try:
            return self._mappings[map_name][top][second]
        except (KeyError, TypeError):
            raise TemplateResolutionError(f"{path}: Mappings has no {map_name}.{top}.{second}") from None

    def _base64(self, argument: Any, path: str) -> str:
        text = self._strings([self._resolve(argument, path)], path)[0]
        return base64.b64encode(text.encode()).decode()

    @staticmethod
    def _strings(values: Any, path: str) -> list[str]:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise TemplateResolutionError(f"{path}: expected strings, got {values!r}")
        return values


_FUNCTIONS = {
    "Fn::GetAtt": TemplateResolver._get_att,
    "Fn::Join": TemplateResolver._join,
    "Fn::Sub": TemplateResolver._sub,
    "Fn::Select": TemplateResolver._select,
    "Fn::Split": TemplateResolver._split,
    "Fn::FindInMap": TemplateResolver._find_in_map,
    "Fn::Base64": TemplateResolver._base64,
}
