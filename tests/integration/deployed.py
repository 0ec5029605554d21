"""The stacks as one stage deploys them: every intrinsic function resolved to a concrete value.

The root is the offline SAM translation of template.yaml; each nested stack is its source file
(the `Location` of its `AWS::Serverless::Application`), with the parameters the root passes.
Parameters come from the template's defaults and the stage's `parameter_overrides` in
samconfig.toml. What only AWS knows (generated physical names, IDs, attributes) becomes a
representative value of the right shape, named in `Deployment.assumed` while it is in use,
so a report can say which parts of a string were stood in for.
"""

import base64
import ipaddress
import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import yaml

from infra.deploy.template import _CfnLoader, substitute
from tests.helpers import ROOT
from tests.integration.test_template import translated

REGION = "us-east-1"
ACCOUNT = "111122223333"  # AWS's documentation account
SUFFIX = "1A2B3C4D5E6F"  # what CloudFormation appends to a generated name
# What only an operator has, given on the command line (samconfig.toml's comment): prod refuses to deploy without it.
PROD_EXTRAS = {
    "RealtimeCertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    "RealtimeDomainName": "ws.example.com",
    "AlarmEmail": "ops@example.com",
}
NO_VALUE = object()  # AWS::NoValue: the property is left out


class Unresolvable(Exception):
    """An intrinsic function this resolver does not know: extend it rather than guess."""


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    overrides: dict[str, str]


def stages() -> list[Stage]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    found = []
    for name, section in config.items():
        deploy = section.get("deploy", {}).get("parameters") if isinstance(section, dict) else None
        if not deploy or "stack_name" not in deploy:
            continue
        overrides = dict(item.split("=", 1) for item in deploy.get("parameter_overrides", []))
        if name == "prod":
            overrides = {**PROD_EXTRAS, **overrides}
        found.append(Stage(name, deploy["stack_name"], overrides))
    return found


@cache
def nested_locations() -> dict[str, str]:
    """Each nested stack's logical id and its template's path, from the source template."""
    source = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    return {
        name: resource["Properties"]["Location"]
        for name, resource in source["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Application"
    }


@cache
def _nested_source(location: str) -> dict[str, Any]:
    return yaml.load((ROOT / location).read_text(), Loader=_CfnLoader)  # type: ignore[no-any-return]


def source_templates() -> dict[str, dict[str, Any]]:
    """The translated root and each nested stack's source, by stack ("root" or the logical id)."""
    return {"root": translated()["template"], **{n: _nested_source(p) for n, p in nested_locations().items()}}


# A Ref's value by resource type: (name property whose value it is, or None; how AWS makes one up).
_REF_FORMS: dict[str, tuple[str | None, str]] = {
    "AWS::EC2::VPC": (None, "vpc-0a1b2c3d4e5f60718"),
    "AWS::EC2::Subnet": (None, "subnet-0a1b2c3d4e5f60718"),
    "AWS::EC2::SecurityGroup": (None, "sg-0a1b2c3d4e5f60718"),
    "AWS::EC2::RouteTable": (None, "rtb-0a1b2c3d4e5f60718"),
    "AWS::EC2::InternetGateway": (None, "igw-0a1b2c3d4e5f60718"),
    "AWS::EC2::NatGateway": (None, "nat-0a1b2c3d4e5f60718"),
    "AWS::EC2::Instance": (None, "i-0a1b2c3d4e5f60718"),
    "AWS::EC2::VPCEndpoint": (None, "vpce-0a1b2c3d4e5f60718"),
    "AWS::EC2::EIP": (None, "203.0.113.10"),
    "AWS::S3::Bucket": ("BucketName", "{generated_lower}"),
    "AWS::Logs::LogGroup": ("LogGroupName", "{generated}"),
    "AWS::SecretsManager::Secret": (
        "Name",
        "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    ),
    "AWS::IAM::Role": ("RoleName", "{generated}"),
    "AWS::Lambda::Function": ("FunctionName", "{generated}"),
    "AWS::Lambda::LayerVersion": ("LayerName", "arn:aws:lambda:{region}:{account}:layer:{name}:1"),
    "AWS::ECS::Cluster": ("ClusterName", "{generated}"),
    "AWS::ECR::Repository": ("RepositoryName", "{generated_lower}"),
    "AWS::SNS::Topic": ("TopicName", "arn:aws:sns:{region}:{account}:{name}"),
    "AWS::RDS::DBCluster": ("DBClusterIdentifier", "{generated_lower}"),
    "AWS::RDS::DBProxy": ("DBProxyName", "{generated_lower}"),
    "AWS::ElastiCache::ReplicationGroup": ("ReplicationGroupId", "{generated_lower}"),
    "AWS::DocDB::DBCluster": ("DBClusterIdentifier", "{generated_lower}"),
    "AWS::ApiGatewayV2::Api": (None, "a1b2c3d4e5"),
}
_ARN_SERVICES = {
    "AWS::S3::Bucket": "arn:aws:s3:::{ref}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{ref}:*",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{ref}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{ref}",
    "AWS::ECR::Repository": "arn:aws:ecr:{region}:{account}:repository/{ref}",
    "AWS::ECS::Cluster": "arn:aws:ecs:{region}:{account}:cluster/{ref}",
}


@dataclass
class Deployment:
    """One stage's stacks, resolved on demand."""

    stage: Stage
    templates: dict[str, dict[str, Any]] = field(default_factory=source_templates)
    assumed: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- what exists

    def resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, definition) of every resource the stage creates."""
        for stack, template in self.templates.items():
            if stack != "root" and not self.exists("root", stack):
                continue
            for name, definition in template["Resources"].items():
                if self.exists(stack, name):
                    yield stack, name, definition

    def exists(self, stack: str, name: str) -> bool:
        condition = self.templates[stack]["Resources"][name].get("Condition")
        return condition is None or self.condition(stack, condition)

    def condition(self, stack: str, name: str) -> bool:
        return bool(self.resolve(stack, self.templates[stack]["Conditions"][name]))

    @contextmanager
    def tracking(self) -> Iterator[list[str]]:
        """The stand-ins used while resolving inside the block."""
        mark = len(self.assumed)
        found: list[str] = []
        try:
            yield found
        finally:
            found.extend(dict.fromkeys(self.assumed[mark:]))
            del self.assumed[mark:]

    # ---------------------------------------------------------------- values

    def stack_name(self, stack: str) -> str:
        if stack == "root":
            return self.stage.stack_name
        self.assumed.append(f"the nested stack's name suffix ({SUFFIX})")
        return f"{self.stage.stack_name}-{stack}-{SUFFIX}"

    def parameter(self, stack: str, name: str) -> Any:
        spec = self.templates[stack]["Parameters"][name]
        if stack == "root":
            value: Any = self.stage.overrides.get(name, spec.get("Default", ""))
        else:
            passed = self.templates["root"]["Resources"][stack]["Properties"].get("Parameters", {})
            value = self.resolve("root", passed[name]) if name in passed else spec.get("Default", "")
        if "CommaDelimitedList" in spec["Type"] or spec["Type"].startswith("List<"):
            return value if isinstance(value, list) else [item for item in str(value).split(",") if item]
        return value if isinstance(value, str) else str(value)

    def pseudo(self, stack: str, name: str) -> Any:
        values = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name == "AWS::StackName":
            return self.stack_name(stack)
        if name == "AWS::StackId":
            return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name(stack)}/0a1b2c3d"
        if name not in values:
            raise Unresolvable(name)
        return values[name]

    def ref(self, stack: str, name: str) -> Any:
        template = self.templates[stack]
        if name.startswith("AWS::"):
            return self.pseudo(stack, name)
        if name in template.get("Parameters", {}):
            return self.parameter(stack, name)
        resource = template["Resources"][name]
        kind = resource["Type"]
        properties = resource.get("Properties") or {}
        if kind == "AWS::Lambda::Alias":
            function = self.resolve(stack, properties["FunctionName"])
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:{self.resolve(stack, properties['Name'])}"
        if kind == "AWS::Lambda::Version":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.resolve(stack, properties['FunctionName'])}:1"
        name_property, form = _REF_FORMS.get(kind, (None, "{generated}"))
        given = self.resolve(stack, properties[name_property]) if name_property in properties else None
        if given is None or "{name}" not in form:
            if given is not None:
                return given
            self.assumed.append(f"{stack}.{name}'s physical id")
        generated = f"{self.stack_name(stack)}-{name}-{SUFFIX}"
        return form.format(
            generated=generated,
            generated_lower=generated.lower(),
            region=REGION,
            account=ACCOUNT,
            name=given if given is not None else generated,
        )

    def get_att(self, stack: str, target: str, attribute: str) -> Any:
        if attribute.startswith("Outputs.") and target in self.templates and stack == "root":
            return self.resolve(target, self.templates[target]["Outputs"][attribute.removeprefix("Outputs.")]["Value"])
        kind = self.templates[stack]["Resources"][target]["Type"]
        if attribute == "Arn" and kind in _ARN_SERVICES:
            return _ARN_SERVICES[kind].format(region=REGION, account=ACCOUNT, ref=self.ref(stack, target))
        if attribute == "CidrBlock" and kind == "AWS::EC2::VPC":
            return self.resolve(stack, self.templates[stack]["Resources"][target]["Properties"]["CidrBlock"])
        self.assumed.append(f"{stack}.{target}.{attribute}")
        if attribute.endswith("Arn"):
            return f"arn:aws:{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{target.lower()}/{SUFFIX.lower()}"
        return f"{target.lower()}-{attribute.replace('.', '-').lower()}"

    def resolve(self, stack: str, value: Any) -> Any:
        """The concrete value CloudFormation would pass for `value` in `stack`."""
        if isinstance(value, list):
            items = [self.resolve(stack, item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
            resolved = {key: self.resolve(stack, item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        ((key, args),) = value.items()
        match key:
            case "Ref":
                return self.ref(stack, args)
            case "Fn::GetAtt":
                target, attribute = args.split(".", 1) if isinstance(args, str) else args
                return self.get_att(stack, target, attribute)
            case "Fn::Sub":
                text, variables = (args, {}) if isinstance(args, str) else args
                return self.sub(stack, text, {k: self.resolve(stack, v) for k, v in variables.items()})
            case "Fn::Join":
                parts = self.resolve(stack, args[1])
                return str(args[0]).join(str(part) for part in parts)
            case "Fn::Split":
                return str(self.resolve(stack, args[1])).split(args[0])
            case "Fn::Select":
                return self.resolve(stack, args[1])[int(self.resolve(stack, args[0]))]
            case "Fn::If":
                name, then, otherwise = args
                return self.resolve(stack, then if self.condition(stack, name) else otherwise)
            case "Fn::Equals":
                return str(self.resolve(stack, args[0])) == str(self.resolve(stack, args[1]))
            case "Fn::Not":
                return not self.resolve(stack, args[0])
            case "Fn::And":
                return all(self.resolve(stack, arg) for arg in args)
            case "Fn::Or":
                return any(self.resolve(stack, arg) for arg in args)
            case "Condition" | "Fn::Condition":
                return self.condition(stack, args)
            case "Fn::GetAZs":
                return [f"{REGION}{zone}" for zone in "abcdef"]
            case "Fn::Cidr":
                block, count, bits = (self.resolve(stack, arg) for arg in args)
                network = ipaddress.ip_network(block)
                subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
                return [str(next(subnets)) for _ in range(int(count))]
            case "Fn::Base64":
                return base64.b64encode(str(self.resolve(stack, args)).encode()).decode()
            case "Fn::ToJsonString":
                return json.dumps(self.resolve(stack, args), separators=(",", ":"))
            case "Fn::Length":
                return len(self.resolve(stack, args))
            case "Fn::FindInMap":
                mapping, top, second = (self.resolve(stack, arg) for arg in args)
                return self.templates[stack]["Mappings"][mapping][top][second]
        raise Unresolvable(f"{key} in {stack}")

    def sub(self, stack: str, text: str, variables: dict[str, Any]) -> str:
        return substitute(text, variables, lambda name: self.ref(stack, name), partial(self.get_att, stack))
