"""What a stage costs: each billable resource's idle month and the cost of a million API requests.

    python -m infra.deploy.cost --stage dev [--parameters K=V ...]
    python -m infra.deploy.cost --markdown            # every stage: the table in docs/deploy.md
    python -m infra.deploy.cost --update-docs         # write that table between its markers there

The model reads what a deploy creates, not a description of it: `template.yaml` translated
by SAM offline (as `make checkov` and the template tests translate it), then each nested
stack's template, with every condition, `Fn::If`, parameter and nested output resolved for
the stage: its parameters from samconfig.toml, the ones `make deploy` adds, and any given.
Each resource that exists in the stage is priced by its type from infra/deploy/prices.toml
(dated us-east-1 list prices, each with its source), or named free with the reason; a type
that is neither stops the model, so nothing is priced at zero by omission. Idle means no API
traffic and no queued work, 730 hours a month, and the data at rest and the request profile
in ASSUMPTIONS (printed with the figures).
"""

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from infra.deploy.template import _CfnLoader, substitute

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "deploy.md"
DOCS_BLOCK = re.compile(r"(<!-- make cost: begin -->\n)(.*)(\n<!-- make cost: end -->)", re.S)
PRICES = Path(__file__).with_name("prices.toml")
SAMCONFIG = ROOT / "samconfig.toml"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
STAGES = ("dev", "staging", "prod")
HOURS = 730
# What `make deploy` passes beside the stage's parameter_overrides: the functions' CPU (ARCH's
# default) and an image tag (without one no task runs: that is a first deploy, not a stage).
DEPLOY_PARAMETERS = {"Architecture": "arm64", "ImageTag": "cost-model"}
REGION = "us-east-1"
AZS = [f"{REGION}{zone}" for zone in "abcdef"]


@dataclass(frozen=True)
class Assumptions:
    """What the templates cannot say: data at rest, and what one API request does."""

    aurora_gb: float = 1.0
    documentdb_gb: float = 1.0
    s3_gb: float = 1.0
    ecr_gb_per_repository: float = 1.0
    logs_gb_per_group: float = 0.1
    alb_idle_lcu: float = 0.0  # LCUs are billed for traffic only; an idle Socket.IO endpoint has none
    scheduled_ms: float = 200.0  # a scheduled function's run (the metrics function reads Redis once)
    scheduled_log_bytes: int = 1_000
    authorizer_ms: float = 10.0  # billed duration of a decision on cached grants (1 ms granularity)
    function_ms: float = 50.0  # billed duration of a route with a database round trip or two
    new_container_ratio: float = 0.001  # one request in 1,000 starts a container
    init_ms: float = 700.0  # billed init of a new container without SnapStart
    log_bytes_per_request: int = 1_500  # access log line, START/END/REPORT of two invocations, one app line
    xray_sampled: float = 0.05  # the default sampling rule beyond its 1 request/s reservoir
    secret_reads_per_container: int = 2  # the connections secret and one key, cached per container
    console_requests_per_load: int = 4  # index.html, the entry script, its stylesheet, the icon
    console_kb_per_load: float = 60.0  # gzipped: the initial JavaScript is 53 kB (a test caps it at 200)

    def describe(self) -> list[str]:
        return [
            f"Idle: 730 hours a month, no API traffic, no queued work; {self.aurora_gb:g} GB in Aurora, "
            f"{self.documentdb_gb:g} GB in DocumentDB, {self.s3_gb:g} GB in S3, {self.ecr_gb_per_repository:g} GB "
            f"per image repository, {self.logs_gb_per_group:g} GB kept per log group; a scheduled function "
            f"runs {self.scheduled_ms:g} ms and logs {self.scheduled_log_bytes} bytes each time.",
            f"A request: one HTTP API request, the authorizer ({self.authorizer_ms:g} ms billed) and one API "
            f"function ({self.function_ms:g} ms billed) at their memory sizes, {self.log_bytes_per_request} "
            f"bytes of logs ingested, {self.xray_sampled:.0%} of requests traced when tracing is Active (X-Ray's "
            "default rule above one request a second; below that it traces every request, $5 a million); one "
            f"request in {1 / self.new_container_ratio:,.0f} starts a container ({self.init_ms:g} ms of "
            f"billed init, or a SnapStart restore, and {self.secret_reads_per_container} secret reads).",
            f"A console load (when the stage hosts it): {self.console_requests_per_load} HTTPS requests to "
            f"CloudFront and {self.console_kb_per_load:g} kB sent, nothing cached in the browser.",
            "Not in the figures: database, cache and container capacity above their minimums (they follow "
            "load, not requests), data transfer, free tiers.",
        ]


ASSUMPTIONS = Assumptions()


class Unpriced(Exception):
    """A resource the model cannot price: a type or a size the price table does not know."""


# ---------------------------------------------------------------- prices


@dataclass(frozen=True)
class Price:
    name: str
    usd: float | dict[str, float]
    per: str
    source: str
    read: str
    extra: dict[str, Any]

    def rate(self, key: str | None = None) -> float:
        if isinstance(self.usd, dict):
            if key not in self.usd:
                raise Unpriced(f"{self.name}: no price for {key!r} in {PRICES.name} (known: {', '.join(self.usd)})")
            return float(self.usd[key])
        return float(self.usd)


@cache
def prices() -> dict[str, Price]:
    table = tomllib.loads(PRICES.read_text())
    return {
        name: Price(
            name=name,
            usd=entry["usd"],
            per=entry["per"],
            source=entry["source"],
            read=str(entry["read"]),
            extra={k: v for k, v in entry.items() if k not in ("usd", "per", "source", "read")},
        )
        for name, entry in table.items()
        if isinstance(entry, dict)
    }


def price(name: str, key: str | None = None) -> float:
    return prices()[name].rate(key)


# ---------------------------------------------------------------- templates


_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

path, parameters = sys.argv[1], json.loads(sys.argv[2])  # parameters as SAM resolves them itself
with open(path) as handle:
    template = yaml_parse(handle.read())
for resource in template["Resources"].values():
    properties = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if key in properties:
            properties[key] = "s3://bucket/artifact.zip"
    if resource["Type"] == "AWS::Serverless::Application" and isinstance(properties.get("Location"), str):
        properties["Location"] = "https://bucket.s3.amazonaws.com/" + properties["Location"]
print(json.dumps(transform(template, parameters, NoManagedPolicies()), default=str))
"""


@cache
def _translated(path: Path) -> dict[str, Any]:
    """A SAM template as CloudFormation runs it (samtranslator lives in .venv-sam, with its own boto3).

    Translated once, with the template's defaults: what SAM resolves from parameters itself
    (the hashes in a layer's logical id) prices nothing; conditions and `Fn::If` stay for the
    model to resolve per stage.
    """
    result = subprocess.run(  # noqa: S603
        [str(SAM_PYTHON), "-c", _TRANSLATE, str(path), "{}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"AWS_DEFAULT_REGION": REGION, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"translating {path.relative_to(ROOT)} failed ({SAM_PYTHON}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@cache
def load_template(path: Path) -> dict[str, Any]:
    """A template as CloudFormation runs it (read once: the model never changes it)."""
    template: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (a safe loader)
    return _translated(path) if "Transform" in template else template


def stage_parameters(stage: str) -> dict[str, str]:
    config = tomllib.loads(SAMCONFIG.read_text())
    if stage not in config:
        raise SystemExit(f"samconfig.toml has no stage {stage!r} (stages: {', '.join(STAGES)})")
    overrides = config[stage]["deploy"]["parameters"]["parameter_overrides"]
    items = overrides if isinstance(overrides, list) else overrides.split()
    return dict(item.split("=", 1) for item in items)


NO_VALUE = object()


@dataclass
class Stack:
    """One template with its parameter values: conditions and properties resolved as CloudFormation would."""

    name: str  # "root" or the nested stack's logical id
    path: Path
    given: dict[str, Any]
    stack_name: str
    _conditions: dict[str, bool] = field(default_factory=dict)
    _children: dict[str, "Stack"] = field(default_factory=dict)
    _resources: dict[str, "Resource"] = field(default_factory=dict)

    @cached_property
    def template(self) -> dict[str, Any]:
        return load_template(self.path)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.template.get("Parameters", {}).items():
            value = self.given.get(name, spec.get("Default"))
            if value is None:
                raise ValueError(f"{self.name}: parameter {name} has no value")
            if "List" in spec["Type"] and isinstance(value, str):
                value = value.split(",") if value else []
            values[name] = value
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, resource: dict[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])

    def child(self, logical_id: str) -> "Stack":
        if logical_id not in self._children:
            resource = self.template["Resources"][logical_id]
            url = resource["Properties"]["TemplateURL"]
            location = url.split(".amazonaws.com/", 1)[1] if isinstance(url, str) else None
            if location is None or not (ROOT / location).is_file():
                raise Unpriced(f"{self.name}.{logical_id}: nested template {url!r} is not a file of this repository")
            given = {k: self.value(v) for k, v in (resource["Properties"].get("Parameters") or {}).items()}
            self._children[logical_id] = Stack(logical_id, ROOT / location, given, f"{self.stack_name}-{logical_id}")
        return self._children[logical_id]

    def output(self, name: str) -> Any:
        return self.value(self.template["Outputs"][name]["Value"])

    def value(self, node: Any) -> Any:
        """A property's value; what exists only once deployed (ids, ARNs) becomes `<Stack.Resource...>`."""
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        args: Any
        key, args = next(iter(node.items())) if len(node) == 1 else ("", None)
        intrinsic = key.startswith("Fn::") or key == "Ref" or (key == "Condition" and isinstance(args, str))
        if not intrinsic:  # a mapping of properties (an IAM statement's Condition included)
            return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}
        match key:
            case "Ref":
                return self._ref(args)
            case "Fn::GetAtt":
                target, attribute = args.split(".", 1) if isinstance(args, str) else args
                resource = self.template["Resources"].get(target, {})
                if resource.get("Type") == "AWS::CloudFormation::Stack" and attribute.startswith("Outputs."):
                    return self.child(target).output(attribute.removeprefix("Outputs."))
                return f"<{self.name}.{target}.{attribute}>"
            case "Fn::If":
                condition, yes, no = args
                return self.value(yes if self.condition(condition) else no)
            case "Fn::Equals":
                return str(self.value(args[0])) == str(self.value(args[1]))
            case "Fn::Not":
                return not self.value(args[0])
            case "Fn::And":
                return all(self.value(arg) for arg in args)
            case "Fn::Or":
                return any(self.value(arg) for arg in args)
            case "Condition" | "Fn::Condition":
                return self.condition(args)
            case "Fn::Join":
                return str(args[0]).join(str(part) for part in self.value(args[1]))
            case "Fn::Split":
                text = self.value(args[1])
                return text.split(args[0]) if text else []
            case "Fn::Select":
                return self.value(args[1])[int(self.value(args[0]))]
            case "Fn::GetAZs":
                return AZS
            case "Fn::Cidr":
                return [f"<cidr {i}>" for i in range(int(self.value(args[1])))]
            case "Fn::Length":
                return len(self.value(args))
            case "Fn::FindInMap":
                mapping, top, second = (self.value(arg) for arg in args[:3])
                return self.template["Mappings"][mapping][top][second]
            case "Fn::Sub":
                return self._sub(args)
        return f"<{key}>"  # Base64, ImportValue, ...: opaque, and no price depends on them

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::NoValue": NO_VALUE,
            "AWS::Region": REGION,
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"<{self.name}.StackId>",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return f"<{self.name}.{name}>"

    def _sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], self.value(args[1]))
        return substitute(
            text, variables, self._ref, lambda target, attribute: self.value({"Fn::GetAtt": [target, attribute]})
        )

    def resources(self) -> Iterator["Resource"]:
        """Every resource this stage creates, nested stacks' included."""
        for name, definition in self.template["Resources"].items():
            if not self.exists(definition):
                continue
            if definition["Type"] == "AWS::CloudFormation::Stack":
                yield from self.child(name).resources()
            else:
                yield self.resource(name)

    def resource(self, name: str) -> "Resource":
        """One resource, its properties resolved once."""
        if name not in self._resources:
            self._resources[name] = Resource(self, name, self.template["Resources"][name])
        return self._resources[name]


@dataclass(frozen=True)
class Resource:
    stack: Stack
    name: str
    definition: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.definition["Type"])

    @cached_property
    def properties(self) -> dict[str, Any]:
        return self.stack.value(self.definition.get("Properties") or {})  # type: ignore[no-any-return]

    @property
    def ref(self) -> str:
        return f"<{self.stack.name}.{self.name}>"

    def siblings(self, type_: str) -> Iterator["Resource"]:
        """The resources of a type in the same stack (those that exist in the stage)."""
        for name, definition in self.stack.template["Resources"].items():
            if definition["Type"] == type_ and self.stack.exists(definition):
                yield self.stack.resource(name)


def root_stack(stage: str, overrides: dict[str, str] | None = None) -> Stack:
    parameters = {**stage_parameters(stage), **DEPLOY_PARAMETERS, **(overrides or {})}
    stack_name = tomllib.loads(SAMCONFIG.read_text())[stage]["deploy"]["parameters"]["stack_name"]
    return Stack("root", ROOT / "template.yaml", parameters, stack_name)


def template_types() -> set[str]:
    """Every resource type in the translated root and the nested templates, whatever the conditions."""
    root = root_stack("dev")
    types = set()
    for name, definition in root.template["Resources"].items():
        types.add(definition["Type"])
        if definition["Type"] == "AWS::CloudFormation::Stack":
            types |= {r["Type"] for r in root.child(name).template["Resources"].values()}
    return types


# ---------------------------------------------------------------- pricing


@dataclass(frozen=True)
class Line:
    resource: str  # Stack.LogicalId
    type: str
    quantity: str
    monthly: float
    note: str = ""
    free: bool = False  # a type that costs nothing (FREE)
    warning: bool = False  # the stage asks for something AWS will not do as written


FREE: dict[str, str] = {
    "AWS::IAM::Role": "IAM is free",
    "AWS::IAM::Policy": "IAM is free",
    "AWS::IAM::ManagedPolicy": "IAM is free",
    "AWS::EC2::VPC": "no charge for a VPC",
    "AWS::EC2::Subnet": "no charge for subnets",
    "AWS::EC2::InternetGateway": "no charge for an internet gateway (data transfer aside)",
    "AWS::EC2::VPCGatewayAttachment": "no charge",
    "AWS::EC2::RouteTable": "no charge",
    "AWS::EC2::Route": "no charge",
    "AWS::EC2::SubnetRouteTableAssociation": "no charge",
    "AWS::EC2::SecurityGroup": "no charge for security groups",
    "AWS::EC2::SecurityGroupIngress": "no charge for security group rules",
    "AWS::EC2::SecurityGroupEgress": "no charge for security group rules",
    "AWS::EC2::LaunchTemplate": "priced on the instance launched from it",
    "AWS::EC2::FlowLog": "billed as the log data it delivers (rejected traffic only: next to none when idle)",
    "AWS::CloudFormation::Stack": "a nested stack costs nothing itself; its resources are priced",
    "AWS::CloudFormation::WaitConditionHandle": "no charge for AWS:: resources",
    "AWS::Lambda::Permission": "no charge",
    "AWS::Lambda::Version": "no charge (SnapStart is priced on the function; provisioned concurrency here)",
    "AWS::Lambda::Alias": "no charge without provisioned concurrency (priced when configured)",
    "AWS::Lambda::LayerVersion": "layers count against the code storage quota; no charge",
    "AWS::Lambda::EventInvokeConfig": "no charge",
    "AWS::Events::Rule": "no charge for scheduled rules (the invocations are priced on the function)",
    "AWS::ApiGatewayV2::Stage": "the API's requests are priced per request",
    "AWS::ApiGatewayV2::Api": "HTTP APIs are billed per request: zero idle (see the per-request figures)",
    "AWS::S3::BucketPolicy": "no charge",
    "AWS::CloudFront::Distribution": "billed per request and GB sent: zero idle (the console: ~60 kB gzipped)",
    "AWS::CloudFront::OriginAccessControl": "no charge",
    "AWS::CloudFront::ResponseHeadersPolicy": "no charge",
    "AWS::SecretsManager::SecretTargetAttachment": "no charge",
    "AWS::RDS::DBSubnetGroup": "no charge",
    "AWS::RDS::DBClusterParameterGroup": "no charge",
    "AWS::RDS::DBParameterGroup": "no charge",
    "AWS::RDS::DBProxyTargetGroup": "the proxy is priced on AWS::RDS::DBProxy",
    "AWS::ElastiCache::SubnetGroup": "no charge",
    "AWS::ElastiCache::ParameterGroup": "no charge",
    "AWS::DocDB::DBSubnetGroup": "no charge",
    "AWS::DocDB::DBClusterParameterGroup": "no charge",
    "AWS::ECS::TaskDefinition": "priced on the service that runs it",
    "AWS::ECS::ClusterCapacityProviderAssociations": "no charge",
    "AWS::ApplicationAutoScaling::ScalableTarget": "no charge (its minimum sets the service's idle count)",
    "AWS::ElasticLoadBalancingV2::Listener": "priced on the load balancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "priced on the load balancer",
    "AWS::SNS::TopicPolicy": "no charge",
    "AWS::SNS::Subscription": "e-mail notifications: the first 1,000 a month are free",
    "Custom::Keys": "a few invocations of the deploy function per deploy",
    "Custom::Migrations": "a few invocations of the deploy function per deploy",
}

Pricer = Callable[[Resource], list[Line]]
PRICERS: dict[str, Pricer] = {}


def prices_type(*types: str) -> Callable[[Pricer], Pricer]:
    def register(pricer: Pricer) -> Pricer:
        for type_ in types:
            PRICERS[type_] = pricer
        return pricer

    return register


def _line(
    resource: Resource, quantity: str, monthly: float, note: str = "", *, free: bool = False, warning: bool = False
) -> Line:
    return Line(f"{resource.stack.name}.{resource.name}", resource.type, quantity, monthly, note, free, warning)


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Unpriced(f"{what}: {value!r} is not a number once resolved") from None


def _standard_storage(resource: Resource) -> None:
    """The prices are those of the standard storage configuration; I/O-Optimized has others."""
    storage_type = str(resource.properties.get("StorageType", "standard"))
    if storage_type not in ("standard", "aurora"):
        raise Unpriced(f"{resource.stack.name}.{resource.name}: storage type {storage_type!r} is not priced")


@prices_type("AWS::RDS::DBCluster")
def _rds_cluster(resource: Resource) -> list[Line]:
    _standard_storage(resource)
    storage = ASSUMPTIONS.aurora_gb * price("aurora_storage_gb_month")
    return [_line(resource, f"{ASSUMPTIONS.aurora_gb:g} GB stored", storage, "I/O billed per million requests")]


def _cluster_instances(resource: Resource, cluster: str) -> list[Resource]:
    return [i for i in resource.siblings("AWS::RDS::DBInstance") if i.properties.get("DBClusterIdentifier") == cluster]


def _referenced(resource: Resource, property_: str, type_: str, what: str) -> Resource:
    """The resource of the same stack that the property refers to."""
    reference = resource.properties.get(property_)
    for sibling in resource.siblings(type_):
        if sibling.ref == reference:
            return sibling
    raise Unpriced(f"{resource.stack.name}.{resource.name}: its {what} {reference!r} is not in the stack")


def _cluster_of(resource: Resource) -> Resource:
    return _referenced(resource, "DBClusterIdentifier", "AWS::RDS::DBCluster", "cluster")


def _has_proxy(cluster: Resource) -> bool:
    return any(
        cluster.ref in (target.properties.get("DBClusterIdentifiers") or [])
        for target in cluster.siblings("AWS::RDS::DBProxyTargetGroup")
    )


def _aurora_minimum_acus(instance: Resource) -> tuple[float, str]:
    """An Aurora Serverless v2 instance's idle ACUs, and why."""
    cluster = _cluster_of(instance)
    scaling = cluster.properties.get("ServerlessV2ScalingConfiguration") or {}
    minimum = _number(scaling.get("MinCapacity", 0.5), f"{cluster.name} MinCapacity")
    if minimum > 0:
        return minimum, ""
    if _has_proxy(cluster):
        return 0.5, "min 0 ACU, but RDS Proxy keeps it from pausing: priced at 0.5 ACU"
    return 0.0, "paused at 0 ACU when idle (storage only)"


@prices_type("AWS::RDS::DBInstance")
def _rds_instance(resource: Resource) -> list[Line]:
    instance_class = str(resource.properties.get("DBInstanceClass"))
    if instance_class == "db.serverless":
        acus, note = _aurora_minimum_acus(resource)
        warning = "RDS Proxy" in note
        return [
            _line(resource, f"{acus:g} ACU (minimum)", acus * HOURS * price("aurora_acu_hour"), note, warning=warning)
        ]
    hourly = price("aurora_instance_hour", instance_class)
    return [_line(resource, f"1 x {instance_class}", hourly * HOURS)]


@prices_type("AWS::RDS::DBProxy")
def _rds_proxy(resource: Resource) -> list[Line]:
    proxy_ref = resource.ref
    clusters = [
        cluster_ref
        for target in resource.siblings("AWS::RDS::DBProxyTargetGroup")
        if target.properties.get("DBProxyName") == proxy_ref
        for cluster_ref in target.properties.get("DBClusterIdentifiers") or []
    ]
    instances = [i for cluster in clusters for i in _cluster_instances(resource, cluster)]
    if not instances:
        raise Unpriced(f"{resource.stack.name}.{resource.name}: no Aurora instance behind the proxy")
    serverless = [i for i in instances if i.properties.get("DBInstanceClass") == "db.serverless"]
    if serverless:
        acus = sum(_aurora_minimum_acus(i)[0] for i in serverless)
        entry = prices()["rds_proxy_acu_hour"]
        billed = max(acus, float(entry.extra["minimum"]))
        quantity = f"{billed:g} ACU" + (" (its minimum)" if billed > acus else "")
        return [_line(resource, quantity, billed * HOURS * entry.rate())]
    vcpus = sum(price("rds_instance_vcpus", str(i.properties.get("DBInstanceClass"))) for i in instances)
    entry = prices()["rds_proxy_vcpu_hour"]
    billed = max(vcpus, float(entry.extra["minimum"]))
    quantity = f"{billed:g} vCPU" + (" (its minimum)" if billed > vcpus else "")
    return [_line(resource, quantity, billed * HOURS * entry.rate())]


@prices_type("AWS::DocDB::DBCluster")
def _docdb_cluster(resource: Resource) -> list[Line]:
    _standard_storage(resource)
    storage = ASSUMPTIONS.documentdb_gb * price("docdb_storage_gb_month")
    return [_line(resource, f"{ASSUMPTIONS.documentdb_gb:g} GB stored", storage, "I/O billed per million requests")]


@prices_type("AWS::DocDB::DBInstance")
def _docdb_instance(resource: Resource) -> list[Line]:
    instance_class = str(resource.properties.get("DBInstanceClass"))
    if instance_class == "db.serverless":
        cluster_ref = resource.properties.get("DBClusterIdentifier")
        clusters = [c for c in resource.siblings("AWS::DocDB::DBCluster") if c.ref == cluster_ref]
        scaling = (clusters[0].properties.get("ServerlessV2ScalingConfiguration") or {}) if clusters else {}
        entry = prices()["docdb_dcu_hour"]
        dcus = max(_number(scaling.get("MinCapacity", entry.extra["minimum"]), "MinCapacity"), entry.extra["minimum"])
        return [_line(resource, f"{dcus:g} DCU (minimum)", dcus * HOURS * entry.rate())]
    return [_line(resource, f"1 x {instance_class}", price("docdb_instance_hour", instance_class) * HOURS)]


@prices_type("AWS::ElastiCache::ReplicationGroup")
def _replication_group(resource: Resource) -> list[Line]:
    properties = resource.properties
    node_type = str(properties.get("CacheNodeType"))
    if "NumCacheClusters" in properties:
        nodes = int(_number(properties["NumCacheClusters"], "NumCacheClusters"))
    else:
        groups = int(_number(properties.get("NumNodeGroups", 1), "NumNodeGroups"))
        nodes = groups * (1 + int(_number(properties.get("ReplicasPerNodeGroup", 0), "ReplicasPerNodeGroup")))
    hourly = price("elasticache_node_hour", node_type)
    return [
        _line(
            resource,
            f"{nodes} x {node_type}",
            nodes * hourly * HOURS,
            "snapshots of a near-empty cache: next to nothing",
        )
    ]


@prices_type("AWS::EC2::NatGateway")
def _nat(resource: Resource) -> list[Line]:
    return [_line(resource, "gateway", price("nat_gateway_hour") * HOURS, "plus $0.045 per GB processed")]


@prices_type("AWS::EC2::EIP")
def _eip(resource: Resource) -> list[Line]:
    return [_line(resource, "public IPv4", price("public_ipv4_hour") * HOURS)]


def _launch_template(instance: Resource) -> dict[str, Any]:
    """The launch template data an instance names (empty without one)."""
    reference = (instance.properties.get("LaunchTemplate") or {}).get("LaunchTemplateId")
    if reference is None:
        return {}
    for template in instance.siblings("AWS::EC2::LaunchTemplate"):
        if template.ref == reference:
            return template.properties.get("LaunchTemplateData") or {}  # type: ignore[no-any-return]
    raise Unpriced(f"{instance.stack.name}.{instance.name}: its launch template {reference!r} is not in the stack")


@prices_type("AWS::EC2::Instance")
def _instance(resource: Resource) -> list[Line]:
    """An instance all month: its hours, its EBS volumes and a public IPv4 when it has one."""
    template = _launch_template(resource)
    properties = {**template, **resource.properties}  # the instance's own properties win, as in EC2
    instance_type = str(properties.get("InstanceType"))
    monthly = price("ec2_instance_hour", instance_type) * HOURS
    credits = (properties.get("CreditSpecification") or {}).get("CpuCredits")
    if instance_type.startswith("t") and credits != "standard":
        raise Unpriced(f"{resource.stack.name}.{resource.name}: unlimited CPU credits can bill beyond the hours")
    gb = 0.0
    for mapping in properties.get("BlockDeviceMappings") or []:
        ebs = mapping.get("Ebs") or {}
        if ebs.get("VolumeType") != "gp3" or "VolumeSize" not in ebs:
            raise Unpriced(f"{resource.stack.name}.{resource.name}: only gp3 volumes of a given size are priced")
        gb += _number(ebs["VolumeSize"], "VolumeSize")
    if not gb:
        raise Unpriced(f"{resource.stack.name}.{resource.name}: give its root volume's type and size")
    monthly += gb * price("ebs_gp3_gb_month")
    interfaces = properties.get("NetworkInterfaces") or []
    public = any(str(i.get("AssociatePublicIpAddress")).lower() == "true" for i in interfaces)
    monthly += public * price("public_ipv4_hour") * HOURS
    note = f"{gb:g} GB gp3" + (" + 1 public IPv4" if public else "")
    return [_line(resource, f"1 x {instance_type}", monthly, note)]


@prices_type("AWS::EC2::VPCEndpoint")
def _endpoint(resource: Resource) -> list[Line]:
    if resource.properties.get("VpcEndpointType", "Gateway") == "Gateway":
        return [_line(resource, "gateway", 0.0, "gateway endpoints are free")]
    azs = len(resource.properties.get("SubnetIds") or [])
    return [_line(resource, f"{azs} AZ", azs * price("interface_endpoint_az_hour") * HOURS)]


@prices_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
def _load_balancer(resource: Resource) -> list[Line]:
    properties = resource.properties
    if properties.get("Type", "application") != "application":
        raise Unpriced(f"{resource.stack.name}.{resource.name}: only Application Load Balancers are priced")
    azs = len(properties.get("Subnets") or properties.get("SubnetMappings") or [])
    public = properties.get("Scheme", "internet-facing") == "internet-facing"
    addresses = azs if public else 0
    monthly = HOURS * (
        price("alb_hour") + ASSUMPTIONS.alb_idle_lcu * price("alb_lcu_hour") + addresses * price("public_ipv4_hour")
    )
    note = f"{addresses} public IPv4 (one per AZ); LCUs for traffic at ${price('alb_lcu_hour')}/h each"
    return [_line(resource, f"{azs} AZ", monthly, note)]


def _scalable_minimum(service: Resource) -> float | None:
    for target in service.siblings("AWS::ApplicationAutoScaling::ScalableTarget"):
        resource_id = str(target.properties.get("ResourceId", ""))
        if resource_id.endswith(f"/<{service.stack.name}.{service.name}.Name>"):
            return _number(target.properties.get("MinCapacity"), f"{target.name} MinCapacity")
    return None


def _idle_tasks(service: Resource) -> int:
    """Tasks a service runs idle: its scaling target's minimum if it scales, else its desired count."""
    minimum = _scalable_minimum(service)
    desired = service.properties.get("DesiredCount", 1)
    return int(minimum if minimum is not None else _number(desired, f"{service.name} DesiredCount"))


def _task_definition(service: Resource) -> Resource:
    return _referenced(service, "TaskDefinition", "AWS::ECS::TaskDefinition", "task definition")


@prices_type("AWS::ECS::Service")
def _service(resource: Resource) -> list[Line]:
    task = _task_definition(resource).properties
    if "FARGATE" not in (task.get("RequiresCompatibilities") or []):
        raise Unpriced(f"{resource.stack.name}.{resource.name}: only Fargate tasks are priced")
    vcpu = _number(task.get("Cpu"), "Cpu") / 1024
    memory = _number(task.get("Memory"), "Memory") / 1024
    arch = str((task.get("RuntimePlatform") or {}).get("CpuArchitecture", "X86_64"))
    hourly = vcpu * price("fargate_vcpu_hour", arch) + memory * price("fargate_gb_hour", arch)
    providers = [s.get("CapacityProvider") for s in resource.properties.get("CapacityProviderStrategy") or []]
    notes = []
    if providers == ["FARGATE_SPOT"]:  # X86_64 and ARM64 alike (prices.toml, fargate_spot)
        hourly *= 1 - float(prices()["fargate_spot"].extra["discount"])
        notes.append("Fargate Spot (up to 70% off; its price moves)")
    elif "FARGATE_SPOT" in providers:
        raise Unpriced(f"{resource.stack.name}.{resource.name}: a mixed capacity provider strategy is not modelled")
    network = (resource.properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
    if network.get("AssignPublicIp") == "ENABLED":  # each running task's own address
        hourly += price("public_ipv4_hour")
        notes.append("a public IPv4 per task")
    tasks = _idle_tasks(resource)
    quantity = f"{tasks} x {vcpu:g} vCPU {memory:g} GB {arch}"
    return [_line(resource, quantity, tasks * hourly * HOURS, "; ".join(notes))]


@prices_type("AWS::ECS::Cluster")
def _cluster(resource: Resource) -> list[Line]:
    settings = {s.get("Name"): s.get("Value") for s in resource.properties.get("ClusterSettings") or []}
    insights = settings.get("containerInsights", "disabled")
    if insights == "disabled":
        return [_line(resource, "cluster", 0.0, "no Container Insights")]
    if insights != "enabled":  # "enhanced" observability bills per container and task as well
        raise Unpriced(f"{resource.stack.name}.{resource.name}: Container Insights {insights!r} is not priced")
    counts = prices()["container_insights_metrics"].extra
    services = [s for s in resource.siblings("AWS::ECS::Service") if s.properties.get("Cluster") == resource.ref]
    running = [s for s in services if _idle_tasks(s) > 0]
    families = {_task_definition(s).name for s in running}
    metrics = counts["per_cluster"] + counts["per_service"] * len(services) + counts["per_task_family"] * len(families)
    quantity = f"{metrics} Container Insights metrics"
    note = f"{len(services)} services, {len(families)} task families running"
    return [_line(resource, quantity, metrics * price("cloudwatch_metric_month"), note)]


@prices_type("AWS::ECR::Repository")
def _repository(resource: Resource) -> list[Line]:
    gb = ASSUMPTIONS.ecr_gb_per_repository
    return [_line(resource, f"{gb:g} GB of images", gb * price("ecr_storage_gb_month"))]


def _alarm_metrics(properties: dict[str, Any]) -> int:
    if "Metrics" in properties:
        return sum(1 for metric in properties["Metrics"] if "MetricStat" in metric)
    return 1


@prices_type("AWS::CloudWatch::Alarm")
def _alarm(resource: Resource) -> list[Line]:
    properties = resource.properties
    periods = [m["MetricStat"].get("Period", 60) for m in properties.get("Metrics", []) if "MetricStat" in m]
    periods.append(properties.get("Period", 60))
    entry = prices()["cloudwatch_alarm_metric_month"]
    high_resolution = min(_number(p, "Period") for p in periods) < 60
    rate = float(entry.extra["high_resolution"]) if high_resolution else entry.rate()
    metrics = _alarm_metrics(properties)
    return [_line(resource, f"{metrics} alarm metric{'s' * (metrics != 1)}", metrics * rate)]


@prices_type("AWS::ApplicationAutoScaling::ScalingPolicy")
def _scaling_policy(resource: Resource) -> list[Line]:
    """Target tracking creates two alarms (scale out, scale in), billed like any alarm."""
    configuration = resource.properties.get("TargetTrackingScalingPolicyConfiguration")
    if resource.properties.get("PolicyType") != "TargetTrackingScaling" or configuration is None:
        return [_line(resource, "step scaling", 0.0, "its alarms are resources of their own")]
    custom = configuration.get("CustomizedMetricSpecification")
    metrics = _alarm_metrics(custom) if custom else 1
    monthly = 2 * metrics * price("cloudwatch_alarm_metric_month")
    return [_line(resource, f"2 alarms x {metrics} metric{'s' * (metrics != 1)}", monthly)]


def _flat(type_: str, quantity: str, price_key: str) -> None:
    """A resource of this type costs the same each month, whatever it holds."""
    PRICERS[type_] = lambda resource: [_line(resource, quantity, price(price_key))]


_flat("AWS::CloudWatch::Dashboard", "dashboard", "cloudwatch_dashboard_month")


@prices_type("AWS::Logs::LogGroup")
def _log_group(resource: Resource) -> list[Line]:
    gb = ASSUMPTIONS.logs_gb_per_group
    return [
        _line(resource, f"{gb:g} GB kept", gb * price("logs_storage_gb_month"), "ingestion is priced on its writer")
    ]


@prices_type("AWS::Logs::MetricFilter")
def _metric_filter(resource: Resource) -> list[Line]:
    metrics = len(resource.properties.get("MetricTransformations") or [])
    note = (
        "published while idle (DefaultValue)"
        if any("DefaultValue" in t for t in resource.properties.get("MetricTransformations") or [])
        else ""
    )
    return [_line(resource, f"{metrics} custom metric", metrics * price("cloudwatch_metric_month"), note)]


_flat("AWS::SecretsManager::Secret", "secret", "secret_month")
_flat("AWS::KMS::Key", "key", "kms_key_month")


@prices_type("AWS::S3::Bucket")
def _bucket(resource: Resource) -> list[Line]:
    gb = ASSUMPTIONS.s3_gb
    return [_line(resource, f"{gb:g} GB stored", gb * price("s3_storage_gb_month"), "requests billed per use")]


@prices_type("AWS::SNS::Topic")
def _topic(resource: Resource) -> list[Line]:
    return [_line(resource, "topic", 0.0, "billed per publish and delivery; alarms rarely fire")]


# Custom metrics a function publishes in CloudWatch's embedded metric format, by logical id
# (a test holds this to the metrics function's code).
EMBEDDED_METRICS = {"MetricsFunction": ("QueuedTasks", "ReservedTasks", "BeatHeartbeatAge")}


def _schedule_per_month(rule: Resource) -> float:
    expression = str(rule.properties.get("ScheduleExpression", ""))
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if match is None:
        raise Unpriced(f"{rule.stack.name}.{rule.name}: schedule {expression!r} is not modelled")
    minutes = {"minute": 1, "hour": 60, "day": 1440}[match.group(2).rstrip("s")] * int(match.group(1))
    return HOURS * 60 / minutes


def _gb_second(function: dict[str, Any]) -> float:
    architecture = str((function.get("Architectures") or ["x86_64"])[0])
    return price("lambda_gb_second", architecture)


def lambda_functions(stack: Stack, text: Any) -> list[str]:
    """The functions a resolved value invokes: `<Stack.Name...>` of a function, or of its alias or version."""
    found = []
    for name in re.findall(rf"<{re.escape(stack.name)}\.(\w+)[.>]", json.dumps(text)):
        definition = stack.template["Resources"].get(name, {})
        if definition.get("Type") == "AWS::Lambda::Function":
            found.append(name)
        elif definition.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            found += lambda_functions(stack, stack.value(definition["Properties"]["FunctionName"]))
    return found


@prices_type("AWS::Lambda::Function")
def _function(resource: Resource) -> list[Line]:
    properties = resource.properties
    memory_gb = _number(properties.get("MemorySize", 128), "MemorySize") / 1024
    monthly, parts = 0.0, []
    if (properties.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions":
        monthly += memory_gb * HOURS * 3600 * price("snapstart_cache_gb_second")
        parts.append("SnapStart cache of the live version")
    invocations = sum(
        _schedule_per_month(rule)
        for rule in resource.siblings("AWS::Events::Rule")
        if "ScheduleExpression" in rule.properties
        and resource.name in lambda_functions(resource.stack, rule.properties.get("Targets"))
    )
    if invocations:
        seconds = invocations * ASSUMPTIONS.scheduled_ms / 1000
        monthly += invocations * price("lambda_request_million") / 1e6 + seconds * memory_gb * _gb_second(properties)
        monthly += invocations * ASSUMPTIONS.scheduled_log_bytes / 1e9 * price("logs_ingestion_gb")
        parts.append(f"{invocations:,.0f} scheduled runs")
    metrics = EMBEDDED_METRICS.get(resource.name, ())
    if metrics:
        monthly += len(metrics) * price("cloudwatch_metric_month")
        parts.append(f"{len(metrics)} custom metrics")
    quantity = f"{properties.get('MemorySize', 128)} MB"
    return [_line(resource, quantity, monthly, "; ".join(parts) or "billed per request")]


@prices_type("AWS::Lambda::Alias", "AWS::Lambda::Version")
def _provisioned(resource: Resource) -> list[Line]:
    """Provisioned concurrency: its configured GB-seconds, all month, whether or not it is used."""
    config = resource.properties.get("ProvisionedConcurrencyConfig")
    if not config:
        return [_line(resource, "", 0.0, FREE[resource.type], free=True)]
    executions = _number(config.get("ProvisionedConcurrentExecutions"), "ProvisionedConcurrentExecutions")
    (name,) = lambda_functions(resource.stack, resource.properties.get("FunctionName"))
    function = resource.stack.value(resource.stack.template["Resources"][name].get("Properties") or {})
    gb = _number(function.get("MemorySize", 128), "MemorySize") / 1024
    architecture = str((function.get("Architectures") or ["x86_64"])[0])
    monthly = executions * gb * HOURS * 3600 * price("lambda_provisioned_gb_second", architecture)
    return [_line(resource, f"{executions:g} x {gb * 1024:g} MB provisioned", monthly)]


def idle_lines(root: Stack) -> list[Line]:
    lines = []
    for resource in root.resources():
        name = f"{resource.stack.name}.{resource.name}"
        if resource.type in PRICERS:
            try:
                lines += PRICERS[resource.type](resource)
            except Unpriced as exc:
                raise exc if str(exc).startswith(name) else Unpriced(f"{name}: {exc}") from None
        elif resource.type in FREE:
            lines.append(_line(resource, "", 0.0, FREE[resource.type], free=True))
        else:
            raise Unpriced(f"{name}: no price for {resource.type} (prices.toml, FREE)")
    return lines


# ---------------------------------------------------------------- per request


def per_million_requests(root: Stack) -> list[tuple[str, float]]:
    """What a million API requests add, by item (USD): the gateway, the authorizer and the function behind a route."""
    functions = {
        r.name: r.properties for r in root.resources() if r.type == "AWS::Lambda::Function" and r.stack is root
    }
    apis = [r for r in root.resources() if r.type == "AWS::ApiGatewayV2::Api"]
    if len(apis) != 1:
        raise Unpriced(f"the per-request model expects one HTTP API, the template has {len(apis)}")
    body = apis[0].properties.get("Body") or {}
    routes = [op for operations in body.get("paths", {}).values() for op in operations.values()]
    route_functions = sorted({name for op in routes for name in lambda_functions(root, op)})
    schemes = (body.get("components") or {}).get("securitySchemes") or {}
    authorizers = sorted({name for scheme in schemes.values() for name in lambda_functions(root, scheme)})
    if not route_functions or len(authorizers) != 1:
        raise Unpriced(f"routes invoke {route_functions}, the authorizer is {authorizers}: the model expects one")
    authorizer = functions[authorizers[0]]
    cache_ttl = int(
        next(iter(schemes.values())).get("x-amazon-apigateway-authorizer", {}).get("authorizerResultTtlInSeconds", 0)
    )
    function = max((functions[name] for name in route_functions), key=lambda f: _number(f.get("MemorySize", 128), "MB"))

    def duration(properties: dict[str, Any], ms: float) -> float:
        gb = _number(properties.get("MemorySize", 128), "MemorySize") / 1024
        return 1e6 * ms / 1000 * gb * _gb_second(properties)

    new_containers = 1e6 * ASSUMPTIONS.new_container_ratio
    snapstart = (function.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"
    container_gb = sum(_number(f.get("MemorySize", 128), "MemorySize") / 1024 for f in (authorizer, function)) / 2
    if snapstart:
        starts = new_containers * container_gb * price("snapstart_restore_gb")
        start_label = "SnapStart restores"
    else:
        starts = new_containers * ASSUMPTIONS.init_ms / 1000 * container_gb * _gb_second(function)
        start_label = "Init of new containers"
    items = [
        ("HTTP API requests", price("http_api_request_million")),
        (
            "Lambda invocations: authorizer "
            + ("(every request: no decision cache) " if cache_ttl == 0 else "(at most; decisions cached) ")
            + "+ function",
            2 * price("lambda_request_million"),
        ),
        (
            f"Lambda duration: authorizer {authorizer.get('MemorySize')} MB x {ASSUMPTIONS.authorizer_ms:g} ms",
            duration(authorizer, ASSUMPTIONS.authorizer_ms),
        ),
        (
            f"Lambda duration: function {function.get('MemorySize')} MB x {ASSUMPTIONS.function_ms:g} ms",
            duration(function, ASSUMPTIONS.function_ms),
        ),
        (start_label, starts),
        (
            "Secrets Manager reads of new containers",
            new_containers * ASSUMPTIONS.secret_reads_per_container / 1e4 * price("secrets_api_call_10k"),
        ),
        ("CloudWatch Logs ingestion", ASSUMPTIONS.log_bytes_per_request * 1e6 / 1e9 * price("logs_ingestion_gb")),
    ]
    if (function.get("TracingConfig") or {}).get("Mode") == "Active":
        items.append(("X-Ray traces (tracing Active)", ASSUMPTIONS.xray_sampled * price("xray_trace_million")))
    return items


def per_10k_console_loads(root: Stack) -> list[tuple[str, float]]:
    """What 10,000 loads of the admin console add (USD), when the stage hosts it behind
    CloudFront: its requests and the bytes it sends. Nothing while nobody opens it."""
    if not any(r.type == "AWS::CloudFront::Distribution" for r in root.resources()):
        return []
    loads = 10_000
    return [
        (
            "CloudFront HTTPS requests",
            loads * ASSUMPTIONS.console_requests_per_load / 1e4 * price("cloudfront_https_request_10k"),
        ),
        ("CloudFront data sent", loads * ASSUMPTIONS.console_kb_per_load / 1e6 * price("cloudfront_transfer_out_gb")),
    ]


# ---------------------------------------------------------------- output


@dataclass(frozen=True)
class Estimate:
    stage: str
    lines: list[Line]
    per_million: list[tuple[str, float]]
    per_10k_loads: list[tuple[str, float]]  # the admin console's, when the stage hosts it

    @property
    def idle(self) -> float:
        return sum(line.monthly for line in self.lines)

    @property
    def million_requests(self) -> float:
        return sum(usd for _, usd in self.per_million)

    @property
    def console_loads(self) -> float:
        return sum(usd for _, usd in self.per_10k_loads)


def estimate(stage: str, overrides: dict[str, str] | None = None) -> Estimate:
    root = root_stack(stage, overrides)
    return Estimate(stage, idle_lines(root), per_million_requests(root), per_10k_console_loads(root))


def estimates(stages: list[str], overrides: dict[str, str] | None = None) -> list[Estimate]:
    return [estimate(stage, overrides) for stage in stages]


def text_report(result: Estimate) -> str:
    billable = sorted((line for line in result.lines if not line.free), key=lambda line: (-line.monthly, line.resource))
    free = Counter(line.type for line in result.lines if line.free)
    width = max(len(line.resource) for line in billable)
    type_width = max(len(line.type) for line in billable)
    out = [f"Stage {result.stage}: an idle month (730 h) at us-east-1 list prices ({PRICES.relative_to(ROOT)})", ""]
    out.append(f"{'resource':<{width}}  {'type':<{type_width}}  {'quantity':<34}  {'$/month':>8}  note")
    out += [
        f"{line.resource:<{width}}  {line.type:<{type_width}}  {line.quantity:<34}  {line.monthly:>8.2f}  {line.note}"
        for line in billable
    ]
    out += [f"Warning: {line.resource}: {line.note}" for line in billable if line.warning]
    out += [f"{'Total idle':<{width}}  {'':<{type_width}}  {'':<34}  {result.idle:>8.2f}", ""]
    out.append(
        f"Free ({sum(free.values())}): " + ", ".join(f"{count} {type_}" for type_, count in sorted(free.items()))
    )
    out += ["", "Per million API requests:"]
    out += [f"  {label:<72} {usd:>6.2f}" for label, usd in result.per_million]
    out += [f"  {'Total':<72} {result.million_requests:>6.2f}"]
    if result.per_10k_loads:
        out += ["", "Per 10,000 loads of the admin console:"]
        out += [f"  {label:<72} {usd:>6.2f}" for label, usd in result.per_10k_loads]
    out += ["", *ASSUMPTIONS.describe()]
    return "\n".join(out)


# The rows of the docs table: resources grouped by what they are (the CLI lists each one).
GROUPS: list[tuple[str, Callable[[Line], bool]]] = [
    ("Aurora PostgreSQL instances", lambda line: line.type == "AWS::RDS::DBInstance"),
    ("RDS Proxy", lambda line: line.type == "AWS::RDS::DBProxy"),
    ("DocumentDB instances", lambda line: line.type == "AWS::DocDB::DBInstance"),
    ("ElastiCache Redis", lambda line: line.type == "AWS::ElastiCache::ReplicationGroup"),
    ("Interface VPC endpoints", lambda line: line.type == "AWS::EC2::VPCEndpoint"),
    ("NAT gateway and its address", lambda line: line.type in ("AWS::EC2::NatGateway", "AWS::EC2::EIP")),
    ("NAT instance (+ its volume and public IPv4)", lambda line: line.type == "AWS::EC2::Instance"),
    ("Fargate tasks", lambda line: line.type == "AWS::ECS::Service"),
    ("Application Load Balancer (+ its public IPv4)", lambda line: line.type.startswith("AWS::ElasticLoadBalancing")),
    ("Container Insights metrics", lambda line: line.type == "AWS::ECS::Cluster"),
    (
        "Alarms (scaling alarms included) and the dashboard",
        lambda line: (
            line.type
            in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::ApplicationAutoScaling::ScalingPolicy")
        ),
    ),
    ("Secrets Manager secrets", lambda line: line.type == "AWS::SecretsManager::Secret"),
    (
        "Lambda at rest (scheduled runs, SnapStart, embedded metrics)",
        lambda line: line.type.startswith("AWS::Lambda::"),
    ),
    (
        "Storage: databases, S3, ECR, logs; metric filters",
        lambda line: (
            line.type
            in (
                "AWS::RDS::DBCluster",
                "AWS::DocDB::DBCluster",
                "AWS::S3::Bucket",
                "AWS::ECR::Repository",
                "AWS::Logs::LogGroup",
                "AWS::Logs::MetricFilter",
            )
        ),
    ),
]


def _group(line: Line) -> str:
    for label, matches in GROUPS:
        if matches(line):
            return label
    return "Other"


def _cell(lines: list[Line]) -> str:
    """A group's cost in one stage, with what it is when that is short to say."""
    priced = [line for line in lines if line.monthly > 0]
    if not priced:
        return "-" if not lines else "0"
    counts = Counter(line.quantity for line in priced)
    parts = [quantity if n == 1 else f"{n} x {quantity.removeprefix('1 x ')}" for quantity, n in sorted(counts.items())]
    detail = " + ".join(parts) if len(parts) <= 2 else f"{len(priced)} resources"
    return f"{detail}: {sum(line.monthly for line in priced):,.2f}"


def markdown(results: list[Estimate]) -> str:
    stages = [r.stage for r in results]
    out = [
        "| Monthly, USD (us-east-1) | " + " | ".join(stages) + " |",
        "|---|" + "---|" * len(stages),
    ]
    labels = [label for label, _ in GROUPS] + ["Other"]
    for label in labels:
        cells = [_cell([line for line in r.lines if _group(line) == label]) for r in results]
        if all(cell in ("-", "0") for cell in cells):
            continue
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("| **Idle total** | " + " | ".join(f"**{r.idle:,.2f}**" for r in results) + " |")
    out.append("| Per million API requests | " + " | ".join(f"{r.million_requests:,.2f}" for r in results) + " |")
    if any(r.per_10k_loads for r in results):
        cells = [f"{r.console_loads:,.2f}" if r.per_10k_loads else "-" for r in results]
        out.append("| Per 10,000 loads of the admin console | " + " | ".join(cells) + " |")
    warnings = [f"{r.stage}: `{line.resource}`: {line.note}" for r in results for line in r.lines if line.warning]
    if warnings:
        out += ["", "Priced other than asked: " + "; ".join(warnings) + "."]
    out.append("")
    first = results[0]
    out.append(
        "Per million requests ("
        + ", ".join(f"{r.stage} {r.million_requests:.2f}" for r in results)
        + "): "
        + "; ".join(f"{label} {usd:.2f}" for label, usd in first.per_million)
        + f" ({first.stage})."
    )
    out += ["", *ASSUMPTIONS.describe()]
    dated = sorted({p.read for p in prices().values()})
    out += [
        "",
        f"Prices: `infra/deploy/prices.toml` (read {', '.join(dated)}; each with its source). "
        "Every resource line, with its logical id: `make cost STAGE=<stage>`.",
    ]
    return "\n".join(out)


def _overrides(items: list[str]) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in items]
    bad = [item for item, pair in zip(items, pairs, strict=True) if len(pair) != 2]
    if bad:
        raise SystemExit(f"parameters are KEY=VALUE: {', '.join(bad)}")
    return dict(pairs)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, action="append", help="a stage (repeatable; all with --markdown)")
    parser.add_argument("--parameters", nargs="*", default=[], metavar="KEY=VALUE", help="as make deploy PARAMETERS")
    parser.add_argument("--markdown", action="store_true", help="the table for docs/deploy.md")
    parser.add_argument("--update-docs", action="store_true", help="write that table into docs/deploy.md")
    args = parser.parse_args(argv)
    stages = args.stage or (list(STAGES) if args.markdown or args.update_docs else ["dev"])
    try:
        results = estimates(stages, _overrides(args.parameters))
    except Unpriced as exc:
        print(f"make cost: {exc}", file=sys.stderr)
        return 1
    if args.update_docs:
        text = DOCS.read_text()
        if not DOCS_BLOCK.search(text):
            print(f"make cost: {DOCS.relative_to(ROOT)} has no make cost markers", file=sys.stderr)
            return 1
        DOCS.write_text(DOCS_BLOCK.sub(lambda m: m.group(1) + markdown(results) + m.group(3), text))
    elif args.markdown:
        print(markdown(results))
    else:
        print("\n\n".join(text_report(result) for result in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
