"""Check an AWS account and Region before a deploy (`make preflight STAGE=…`; `make deploy` runs it first).

    python -m infra.deploy.preflight --stage prod [--architecture x86_64] [--parameters "K=V …"] [--images]

A first deploy fails 25 to 40 minutes in, and rolls everything back, on what a few read-only
calls can see in seconds: credentials, a Region without a feature the stage uses, a service-
linked role ECS cannot assume yet, too little Lambda concurrency for the stage's reservations,
no room for another VPC. Every check runs; each problem prints one line saying what to do,
and the exit status is 1 when any was found. The only thing it creates is the service-linked
roles the stacks need (AWS creates them on first use, but ECS's is often not assumable at the
first CreateCluster: cloudformation-coverage-roadmap#818).

The stage's parameters are read as `make deploy` passes them: the template's defaults, the
stage's `parameter_overrides` in samconfig.toml, then `Architecture` and `PARAMETERS`.
"""

import argparse
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.deploy.template import _CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DATA_STACK = ROOT / "infra" / "deploy" / "stacks" / "data.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

# Lambda keeps this many concurrent executions unreserved: reservations may use the rest only.
LAMBDA_UNRESERVED_MINIMUM = 100
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"  # Service Quotas: Lambda, "Concurrent executions"
VPCS_PER_REGION_QUOTA = "L-F678F1CE"  # Service Quotas: Amazon VPC, "VPCs per Region"
# Service Quotas: Amazon EC2, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
# in vCPUs: dev's NAT instance, a t4g.nano, takes 2 of them.
STANDARD_VCPUS_QUOTA = "L-1216C47A"
NAT_INSTANCE_TYPE = "t4g.nano"
NAT_INSTANCE_VCPUS = 2
# Families with quotas of their own although their names start with a standard letter.
_NOT_STANDARD = ("inf", "trn", "mac", "hpc", "u-", "dl")

# No API says where these run: the Regions as AWS documents them (read 2026-12-07).
# Lambda Developer Guide, "Improving startup performance with Lambda SnapStart", Supported
# Regions: every commercial Region except these two.
SNAPSTART_UNSUPPORTED = {"ap-southeast-6": "Asia Pacific (New Zealand)", "ap-east-2": "Asia Pacific (Taipei)"}
# Amazon ECS Developer Guide, "Supported Regions for Amazon ECS on AWS Fargate", Linux
# containers. ARM64 (the ECS API Reference, RuntimePlatform) and Fargate Spot for X86_64 and
# ARM64 (the ECS API Reference, CapacityProviderStrategyItem: "FARGATE_SPOT supports Linux
# tasks with the ARM64 architecture on platform version 1.4.0 or later", which LATEST is) are
# documented without Regional exceptions. The Developer Guide's older sentence that Spot runs
# X86_64 only is outdated; `make cost` prices arm64 Spot with the Spot discount as well.
FARGATE_LINUX_REGIONS = frozenset(
    {
        *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1", "mx-central-1"),
        *("af-south-1", "ap-east-1", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2"),
        *("ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4"),
        *("ap-southeast-5", "ap-southeast-7", "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2"),
        *("eu-west-3", "eu-south-1", "eu-south-2", "eu-north-1", "il-central-1", "me-south-1", "me-central-1"),
        *("sa-east-1", "cn-north-1", "cn-northwest-1", "us-gov-east-1", "us-gov-west-1"),
    }
)
SOURCES = {
    "SnapStart": "https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html",
    "Fargate": "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AWS_Fargate-Regions.html",
}


@dataclass(frozen=True)
class ServiceLinkedRole:
    service: str
    used_by: str
    needed: Callable[["Stage"], bool]


# The service-linked roles the stacks' resources need (DocumentDB uses RDS's).
SERVICE_LINKED_ROLES = (
    ServiceLinkedRole("ecs.amazonaws.com", "the ECS cluster and services", lambda stage: True),
    ServiceLinkedRole("ecs.application-autoscaling.amazonaws.com", "the services' scaling", lambda stage: True),
    ServiceLinkedRole("elasticloadbalancing.amazonaws.com", "the Socket.IO load balancer", lambda stage: True),
    ServiceLinkedRole(
        "rds.amazonaws.com",
        "Aurora, RDS Proxy and DocumentDB",
        lambda stage: stage.parameter("DatabaseUrl") == "" or stage.parameter("MongoUrl") == "",
    ),
    ServiceLinkedRole(
        "elasticache.amazonaws.com", "ElastiCache Redis", lambda stage: stage.parameter("RedisUrl") == ""
    ),
)


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 (a SafeLoader)
    return loaded


def parse_parameters(text: str) -> dict[str, str]:
    """`K=V K2="a b"` (as `make deploy PARAMETERS=…` and SAM's --parameter-overrides take them)."""
    try:
        items = shlex.split(text)
    except ValueError:  # a quote inside a value (a password in a URL): SAM splits on spaces too
        items = text.split()
    pairs = (item.split("=", 1) for item in items)
    return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}


@dataclass(frozen=True)
class Stage:
    name: str
    stack: str
    region: str
    parameters: dict[str, str]
    template: dict[str, Any] = field(repr=False)

    @classmethod
    def load(cls, name: str, architecture: str | None = None, extra: str = "") -> "Stage":
        config = tomllib.loads(SAMCONFIG.read_text())[name]["deploy"]["parameters"]
        template = _load(TEMPLATE)
        values = {key: str(spec.get("Default", "")) for key, spec in template["Parameters"].items()}
        # Parameters the root leaves to a nested stack's default (the Aurora engine version).
        for key, spec in _load(DATA_STACK)["Parameters"].items():
            values.setdefault(key, str(spec.get("Default", "")))
        overrides = config.get("parameter_overrides", [])
        values |= parse_parameters(" ".join(overrides) if isinstance(overrides, list) else overrides)
        if architecture:
            values["Architecture"] = architecture
        values |= parse_parameters(extra)
        return cls(name, config["stack_name"], config["region"], values, template)

    def parameter(self, name: str) -> str:
        return self.parameters.get(name, "")

    def _value(self, node: Any) -> Any:
        """Resolve the intrinsic functions a property's value uses, with this stage's parameters."""
        if not isinstance(node, dict) or len(node) != 1:
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            return None if argument == "AWS::NoValue" else self.parameters.get(argument)
        if function == "Condition":
            return self._value(self.template["Conditions"][argument])
        if function == "Fn::If":
            condition, yes, no = argument
            return self._value(yes if self._value({"Condition": condition}) else no)
        if function == "Fn::Equals":
            left, right = (str(self._value(item)) for item in argument)
            return left == right
        if function == "Fn::Not":
            return not self._value(argument[0])
        if function == "Fn::And":
            return all(self._value(item) for item in argument)
        if function == "Fn::Or":
            return any(self._value(item) for item in argument)
        raise ValueError(f"cannot resolve {function} here")

    def reserved_concurrency(self) -> dict[str, int]:
        """Each function's reserved concurrent executions, as the template sets them for this stage."""
        defaults = self.template.get("Globals", {}).get("Function", {})
        reserved: dict[str, int] = {}
        for name, resource in self.template["Resources"].items():
            if resource["Type"] not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                continue
            properties = resource.get("Properties", {})
            value = self._value(
                properties.get("ReservedConcurrentExecutions", defaults.get("ReservedConcurrentExecutions"))
            )
            if value is not None:
                reserved[name] = int(value)
        return reserved


@dataclass(frozen=True)
class Result:
    status: str  # ok, warn or FAIL
    check: str
    detail: str
    fix: str = ""


Clients = Callable[[str], Any]


def _increase(region: str, service: str, quota_code: str, value: int) -> str:
    """The command that asks for a higher quota."""
    return (
        f"aws service-quotas request-service-quota-increase --region {region} --service-code {service} "
        f"--quota-code {quota_code} --desired-value {value}"
    )


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


class Preflight:
    """The checks, each a generator of results; `client(service)` gives a boto3 client for the Region."""

    def __init__(
        self,
        stage: Stage,
        client: Clients,
        images: bool,
        docker: Callable[[], str | None],
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.stage = stage
        self.client = client
        self.images = images
        self.docker = docker
        self.which = which

    def run(self) -> list[Result]:
        results = list(self.aws_cli())
        results += self.credentials()
        if results[-1].status != "FAIL":
            for check in (self.features, self.service_linked_roles, self.lambda_concurrency, self.network_quotas):
                results += list(check())
        if self.images:
            results += list(self.docker_engine())
        return results

    def aws_cli(self) -> Iterator[Result]:
        """The deploy's other steps (the images, the smoke tests, sam itself) call the AWS CLI."""
        if self.which("aws") is None:
            fix = (
                "install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
            )
            yield Result("FAIL", "AWS CLI", "no aws command on PATH", fix)

    def credentials(self) -> Iterator[Result]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        region = self.stage.region
        try:
            identity = self.client("sts").get_caller_identity()
        except NoCredentialsError:
            fix = "run 'aws configure' or 'aws sso login', or set AWS_PROFILE to a profile that has them"
            yield Result("FAIL", "credentials", "no AWS credentials found", fix)
            return
        except ClientError as exc:
            fix = "refresh them ('aws sso login', or new keys in 'aws configure'), or enable the Region for the account"
            yield Result("FAIL", "credentials", f"AWS refused the credentials in {region} ({_error_code(exc)})", fix)
            return
        except BotoCoreError as exc:
            fix = (
                f"check this machine's connection to AWS, and that `region` of [{self.stage.name}.deploy.parameters] "
                "in samconfig.toml is an AWS Region"
            )
            yield Result("FAIL", "region", f"cannot reach AWS STS in {region!r}: {exc}", fix)
            return
        yield Result("ok", "credentials", f"account {identity['Account']} as {identity['Arn']}, Region {region}")

    def features(self) -> Iterator[Result]:
        stage, region = self.stage, self.stage.region
        edit = f"deploy {stage.name} to another Region (samconfig.toml, `region`)"
        if stage.parameter("SnapStart") == "true":
            if region in SNAPSTART_UNSUPPORTED:
                where = f"{region}, {SNAPSTART_UNSUPPORTED[region]}"
                detail = f"Lambda SnapStart is not offered in {where} ({SOURCES['SnapStart']})"
                yield Result("FAIL", "SnapStart", detail, f"deploy with PARAMETERS=SnapStart=false, or {edit}")
            else:
                yield Result("ok", "SnapStart", f"Lambda SnapStart for Python is offered in {region}")
        if region not in FARGATE_LINUX_REGIONS:
            detail = f"ECS on Fargate (Linux) is not documented in {region} ({SOURCES['Fargate']})"
            fix = f"{edit}; if AWS now lists {region}, add it to FARGATE_LINUX_REGIONS in infra/deploy/preflight.py"
            yield Result("FAIL", "Fargate", detail, fix)
        else:
            arm = stage.parameter("Architecture") == "arm64"
            spot = [
                what
                for what, parameter in (("the worker", "WorkerSpot"), ("beat and Socket.IO", "ServicesSpot"))
                if stage.parameter(parameter) == "true"
            ]
            shape = ", ".join(["arm64" if arm else "x86_64", *([f"Spot for {' and '.join(spot)}"] if spot else [])])
            yield Result("ok", "Fargate", f"Fargate Linux ({shape}) is offered in {region}")
        if stage.parameter("DatabaseUrl") == "":
            yield from self.aurora()

    def aurora(self) -> Iterator[Result]:
        from botocore.exceptions import ClientError

        stage, region = self.stage, self.stage.region
        version = stage.parameter("DatabaseEngineVersion")
        serverless = stage.parameter("DatabaseInstanceClass") == "db.serverless"
        auto_pause = serverless and float(stage.parameter("DatabaseMinCapacity") or "0.5") == 0
        listing = (
            f"aws rds describe-orderable-db-instance-options --engine aurora-postgresql --db-instance-class "
            f"{stage.parameter('DatabaseInstanceClass')} --region {region} "
            "--query 'OrderableDBInstanceOptions[].EngineVersion'"
        )
        fix = f"set DatabaseEngineVersion in infra/deploy/stacks/data.yaml to one that `{listing}` lists"
        rds = self.client("rds")
        try:
            versions = rds.describe_db_engine_versions(Engine="aurora-postgresql", EngineVersion=version)[
                "DBEngineVersions"
            ]
            orderable = (
                rds.describe_orderable_db_instance_options(
                    Engine="aurora-postgresql", EngineVersion=version, DBInstanceClass="db.serverless", MaxRecords=20
                )["OrderableDBInstanceOptions"]
                if serverless
                else []
            )
        except ClientError as exc:
            detail = f"could not read Aurora's engine versions in {region} ({_error_code(exc)})"
            yield Result(
                "warn",
                "Aurora",
                detail,
                "allow rds:DescribeDBEngineVersions and rds:DescribeOrderableDBInstanceOptions",
            )
            return
        if not versions:
            yield Result("FAIL", "Aurora", f"Aurora PostgreSQL {version} is not offered in {region}", fix)
            return
        if serverless and not orderable:
            detail = f"Aurora PostgreSQL {version} has no Serverless v2 (db.serverless) in {region}"
            yield Result("FAIL", "Aurora", detail, fix)
            return
        if auto_pause:
            support = versions[0].get("ServerlessV2FeaturesSupport", {})
            if support.get("MinCapacity") != 0:
                minimum = support.get("MinCapacity", 0.5)
                detail = f"Aurora PostgreSQL {version} cannot pause at 0 ACU in {region} (its minimum is {minimum} ACU)"
                fix = (
                    "set DatabaseEngineVersion in infra/deploy/stacks/data.yaml to a version whose "
                    "ServerlessV2FeaturesSupport.MinCapacity is 0, or deploy with DatabaseMinCapacity=0.5"
                )
                yield Result("FAIL", "Aurora", detail, fix)
                return
        shape = "Serverless v2 with auto-pause" if auto_pause else "Serverless v2" if serverless else "provisioned"
        yield Result("ok", "Aurora", f"Aurora PostgreSQL {version} ({shape}) is offered in {region}")

    def service_linked_roles(self) -> Iterator[Result]:
        from botocore.exceptions import ClientError

        iam = self.client("iam")
        for role in SERVICE_LINKED_ROLES:
            if not role.needed(self.stage):
                continue
            check = f"role for {role.service}"
            try:
                iam.create_service_linked_role(AWSServiceName=role.service)
            except ClientError as exc:
                message = str(exc.response.get("Error", {}).get("Message", ""))
                # IAM answers InvalidInput "… has been taken in this account …" when it exists.
                if "has been taken in this account" in message or _error_code(exc) == "EntityAlreadyExists":
                    yield Result("ok", check, f"exists ({role.used_by})")
                    continue
                fix = f"have an administrator run: aws iam create-service-linked-role --aws-service-name {role.service}"
                yield Result("FAIL", check, f"cannot create it ({_error_code(exc)}); {role.used_by} need it", fix)
                continue
            yield Result("ok", check, f"created ({role.used_by})")

    def lambda_concurrency(self) -> Iterator[Result]:
        from botocore.exceptions import ClientError

        stage, region = self.stage, self.stage.region
        reserved = {name: count for name, count in stage.reserved_concurrency().items() if count}
        total = sum(reserved.values())
        needed = total + LAMBDA_UNRESERVED_MINIMUM
        try:
            quota = int(self.client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
        except ClientError as exc:
            yield Result(
                "warn",
                "Lambda concurrency",
                f"could not read it ({_error_code(exc)})",
                "allow lambda:GetAccountSettings",
            )
            return
        # Without reservations the quota only caps how many requests run at once (10 in some new accounts).
        if total == 0 or quota >= needed:
            yield Result(
                "ok",
                "Lambda concurrency",
                f"quota {quota}; {stage.name} reserves {total}, +{LAMBDA_UNRESERVED_MINIMUM} unreserved",
            )
            return
        largest = ", ".join(
            f"{name} {count}" for name, count in sorted(reserved.items(), key=lambda item: -item[1])[:3]
        )
        detail = (
            f"quota {quota} < {needed}: {stage.name} reserves {total} ({largest}{', …' if len(reserved) > 3 else ''}) "
            f"and Lambda keeps {LAMBDA_UNRESERVED_MINIMUM} unreserved"
        )
        fix = (
            f"{_increase(region, 'lambda', LAMBDA_CONCURRENCY_QUOTA, needed)} (or lower the *ReservedConcurrency "
            f"parameters of {stage.name} in samconfig.toml)"
        )
        yield Result("FAIL", "Lambda concurrency", detail, fix)

    def quota(self, service: str, quota_code: str) -> int:
        """A Service Quotas value in the stage's Region."""
        value = self.client("service-quotas").get_service_quota(ServiceCode=service, QuotaCode=quota_code)
        return int(value["Quota"]["Value"])

    def network_quotas(self) -> Iterator[Result]:
        from botocore.exceptions import ClientError

        stage, region = self.stage, self.stage.region
        if stage.parameter("VpcId"):
            return
        ec2 = self.client("ec2")
        try:
            vpcs = len(ec2.describe_vpcs()["Vpcs"])
            vpc_quota = self.quota("vpc", VPCS_PER_REGION_QUOTA)
        except ClientError as exc:
            detail = f"could not read the VPC quota ({_error_code(exc)})"
            yield Result("warn", "VPCs", detail, "allow ec2:DescribeVpcs and servicequotas:GetServiceQuota")
        else:
            if vpcs + 1 > vpc_quota:
                detail = f"{vpcs} of {vpc_quota} VPCs in {region} are in use and the stage creates one"
                fix = (
                    'delete an unused VPC, bring one (PARAMETERS="VpcId=… PrivateSubnetIds=… PublicSubnetIds=…"), or '
                    + _increase(region, "vpc", VPCS_PER_REGION_QUOTA, vpcs + 1)
                )
                yield Result("FAIL", "VPCs", detail, fix)
            else:
                yield Result("ok", "VPCs", f"{vpcs} of {vpc_quota} in use; the stage creates one")
        if stage.parameter("NatInstance") == "true":
            yield from self.instance_quota(ec2)
        if stage.parameter("NatGateway") != "true":
            if stage.parameter("NatInstance") == "true":  # EC2 assigns its address: no Elastic IP, no quota
                yield Result("ok", "Elastic IPs", "none needed: the NAT instance gets an auto-assigned public IPv4")
            return
        try:
            attributes = ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"])["AccountAttributes"]
            address_quota = int(attributes[0]["AttributeValues"][0]["AttributeValue"])
            addresses = len(ec2.describe_addresses()["Addresses"])
        except ClientError as exc:
            detail = f"could not read the Elastic IP quota ({_error_code(exc)})"
            yield Result("warn", "Elastic IPs", detail, "allow ec2:DescribeAccountAttributes and ec2:DescribeAddresses")
            return
        if addresses + 1 > address_quota:
            detail = (
                f"{addresses} of {address_quota} Elastic IPs in {region} are allocated and the NAT gateway needs one"
            )
            fix = (
                f"release an unused one (aws ec2 describe-addresses --region {region}), or request more: "
                + _increase(region, "ec2", "L-0263D0A3", addresses + 1)
            )
            yield Result("FAIL", "Elastic IPs", detail, fix)
        else:
            yield Result("ok", "Elastic IPs", f"{addresses} of {address_quota} allocated; the NAT gateway takes one")

    def instance_quota(self, ec2: Any) -> Iterator[Result]:
        """Room for the NAT instance's vCPUs under the On-Demand Standard quota (new accounts may have few)."""
        from botocore.exceptions import ClientError

        region = self.stage.region
        try:
            quota = self.quota("ec2", STANDARD_VCPUS_QUOTA)
            running = Counter(
                instance["InstanceType"]
                for page in ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
                )
                for reservation in page["Reservations"]
                for instance in reservation["Instances"]
                if instance["InstanceType"][0] in "acdhimrtz" and not instance["InstanceType"].startswith(_NOT_STANDARD)
            )
            vcpus = {
                kind["InstanceType"]: kind["VCpuInfo"]["DefaultVCpus"]
                for kind in (
                    ec2.describe_instance_types(InstanceTypes=list(running))["InstanceTypes"] if running else []
                )
            }
        except ClientError as exc:
            detail = f"could not read the EC2 vCPU quota ({_error_code(exc)})"
            fix = "allow servicequotas:GetServiceQuota, ec2:DescribeInstances and ec2:DescribeInstanceTypes"
            yield Result("warn", "EC2 vCPUs", detail, fix)
            return
        used = sum(count * vcpus.get(kind, 0) for kind, count in running.items())
        if used + NAT_INSTANCE_VCPUS > quota:
            detail = (
                f"{used} of {quota} On-Demand Standard vCPUs in {region} are in use and the NAT instance "
                f"({NAT_INSTANCE_TYPE}) needs {NAT_INSTANCE_VCPUS}"
            )
            fix = (
                "stop an unused instance, deploy with PARAMETERS=NatInstance=false (interface endpoints instead), or "
                + _increase(region, "ec2", STANDARD_VCPUS_QUOTA, used + NAT_INSTANCE_VCPUS)
            )
            yield Result("FAIL", "EC2 vCPUs", detail, fix)
        else:
            yield Result("ok", "EC2 vCPUs", f"{used} of {quota} in use; the NAT instance takes {NAT_INSTANCE_VCPUS}")

    def docker_engine(self) -> Iterator[Result]:
        problem = self.docker()
        if problem is None:
            yield Result("ok", "Docker", "the engine and buildx answer (the images are built here)")
            return
        fix = "install and start Docker with buildx, or deploy with DEPLOY_PREREQUISITES= (keeps the running images)"
        yield Result("FAIL", "Docker", problem, fix)


def docker_problem() -> str | None:
    """Why the images cannot be built here, or None when `docker info` and `docker buildx` answer."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    for argv in (["docker", "info"], ["docker", "buildx", "version"]):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` did not answer within 20 s"
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return f"`{' '.join(argv)}` failed: {last}"
    return None


def report(stage: Stage, results: list[Result]) -> int:
    """Print one line per check (and a `fix:` line under each problem); 1 when any check failed."""
    print(f"preflight: {stage.stack} (stage {stage.name}) in {stage.region}")
    for result in results:
        print(f"  {result.status:<5} {result.check}: {result.detail}")
        if result.fix and result.status != "ok":
            print(f"        fix: {result.fix}")
    failed = sum(result.status == "FAIL" for result in results)
    print(f"preflight: {failed} problem{'s' if failed != 1 else ''} found" if failed else "preflight: ready to deploy")
    return 1 if failed else 0


def main(argv: list[str] | None = None, client: Clients | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stages = [
        name
        for name, section in tomllib.loads(SAMCONFIG.read_text()).items()
        if isinstance(section, dict) and "deploy" in section
    ]
    parser.add_argument("--stage", required=True, choices=stages, help="a stage of samconfig.toml")
    parser.add_argument("--architecture", choices=["arm64", "x86_64"], help="the functions' and tasks' CPU (ARCH)")
    parser.add_argument("--parameters", default="", help='more parameters, as PARAMETERS="K=V …"')
    parser.add_argument("--images", action="store_true", help="the deploy builds the images here: check Docker")
    args = parser.parse_args(argv)
    stage = Stage.load(args.stage, args.architecture, args.parameters)
    if client is None:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=stage.region)
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})

        def client(service: str) -> Any:
            return session.client(service, region_name=stage.region, config=config)  # type: ignore[call-overload]

    return report(stage, Preflight(stage, client, args.images, docker_problem).run())


if __name__ == "__main__":
    sys.exit(main())
