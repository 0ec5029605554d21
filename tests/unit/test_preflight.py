"""`make preflight`: every check against stubbed AWS answers, read from the real samconfig.toml and template.

moto answers what it implements (STS, IAM's service-linked roles, EC2, Service Quotas for VPC);
botocore's Stubber answers Lambda's GetAccountSettings and RDS's engine-version calls, which
moto does not implement, with responses validated against botocore's own models.
"""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.deploy import preflight
from infra.deploy.preflight import Preflight, Stage
from tests.processes import free_port

pytestmark = pytest.mark.infra  # the deploy tooling against moto

# Aurora PostgreSQL as DescribeDBEngineVersions describes a version that pauses at 0 ACU.
ENGINE_VERSION = {
    "Engine": "aurora-postgresql",
    "EngineVersion": "16.8",
    "SupportedEngineModes": ["provisioned"],
    "ServerlessV2FeaturesSupport": {"MinCapacity": 0.0, "MaxCapacity": 256.0},
}


STANDARD_VCPUS = preflight.STANDARD_VCPUS_QUOTA


class Account:
    """One AWS account in moto, with the Lambda and RDS answers the test chooses."""

    def __init__(
        self,
        region: str = "us-east-1",
        concurrency: int = 1000,
        engine_versions: list[dict[str, Any]] | None = None,
        serverless: bool = True,
        quotas: list[tuple[str, str, float]] | None = None,
    ) -> None:
        self.region = region
        self.concurrency = concurrency
        self.engine_versions = [ENGINE_VERSION] if engine_versions is None else engine_versions
        self.serverless = serverless
        # Service Quotas' answers in the order preflight asks (moto has no EC2 quotas): by default
        # moto's own 5 VPCs and 32 On-Demand Standard vCPUs
        self.quotas = list(quotas or [("vpc", preflight.VPCS_PER_REGION_QUOTA, 5.0), ("ec2", STANDARD_VCPUS, 32.0)])
        self.stubbers: list[Stubber] = []

    def client(self, service: str) -> Any:
        client = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        if service not in ("lambda", "rds", "service-quotas"):
            return client
        stubber = Stubber(client)
        if service == "service-quotas":
            code, quota, value = self.quotas.pop(0)
            answer = {"Quota": {"ServiceCode": code, "QuotaCode": quota, "Value": value}}
            stubber.add_response("get_service_quota", answer, {"ServiceCode": code, "QuotaCode": quota})
        elif service == "lambda":
            limit = {"ConcurrentExecutions": self.concurrency, "UnreservedConcurrentExecutions": self.concurrency}
            stubber.add_response("get_account_settings", {"AccountLimit": limit, "AccountUsage": {}})
        else:
            stubber.add_response("describe_db_engine_versions", {"DBEngineVersions": self.engine_versions})
            options = [{"Engine": "aurora-postgresql", "EngineVersion": "16.8", "DBInstanceClass": "db.serverless"}]
            stubber.add_response(
                "describe_orderable_db_instance_options",
                {"OrderableDBInstanceOptions": options if self.serverless else []},
            )
        stubber.activate()
        self.stubbers.append(stubber)
        return client


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def check(stage: Stage, account: Account, images: bool = False, docker: str | None = None) -> tuple[int, str]:
    """Run every check and print the report, as `make preflight` does; the exit status and the text."""
    results = Preflight(stage, account.client, images, lambda: docker, which=lambda name: f"/usr/bin/{name}").run()
    for stubber in account.stubbers:
        stubber.assert_no_pending_responses()
    return preflight.report(stage, results), "\n".join(
        f"{result.status} {result.check}: {result.detail} | fix: {result.fix}" for result in results
    )


def failures(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("FAIL ")]


def test_prod_reserves_550_across_its_functions_as_the_template_wires_them() -> None:
    reserved = Stage.load("prod").reserved_concurrency()
    assert reserved["AuthorizerFunction"] == 200
    assert reserved["AuthFunction"] == 50
    assert {reserved[name] for name in ("UsersFunction", "RolesFunction", "FilesFunction", "AuditFunction")} == {50}
    assert sum(reserved.values()) == 550
    assert sum(Stage.load("dev").reserved_concurrency().values()) == 0
    overridden = Stage.load("prod", extra="ApiReservedConcurrency=10 AuthReservedConcurrency=0")
    assert sum(overridden.reserved_concurrency().values()) == 200 + 6 * 10


@pytest.mark.usefixtures("aws")
def test_a_clean_account_passes_and_gets_its_service_linked_roles(capsys: pytest.CaptureFixture[str]) -> None:
    stage = Stage.load("prod")
    status, text = check(stage, Account(), images=True, docker=None)
    assert status == 0, text
    assert failures(text) == []
    assert capsys.readouterr().out.splitlines()[-1] == "preflight: ready to deploy"
    roles = boto3.client("iam").list_roles(PathPrefix="/aws-service-role/")["Roles"]
    services = {role["Path"].split("/")[2] for role in roles}
    assert services == {
        "ecs.amazonaws.com",
        "ecs.application-autoscaling.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "rds.amazonaws.com",
        "elasticache.amazonaws.com",
    }
    assert "ok role for ecs.amazonaws.com: created" in text


def test_no_credentials_is_refused_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe
    monkeypatch.setenv("PATH", str(tmp_path))  # no aws command either
    status = preflight.main(["--stage", "dev"])
    out = capsys.readouterr().out
    assert status == 1
    assert "  FAIL  credentials: no AWS credentials found" in out
    assert "        fix: run 'aws configure' or 'aws sso login', or set AWS_PROFILE" in out
    assert "  FAIL  AWS CLI: no aws command on PATH" in out
    assert "        fix: install the AWS CLI v2: https://docs.aws.amazon.com/cli/" in out
    assert out.splitlines()[-1] == "preflight: 2 problems found"


def test_an_unreachable_aws_names_the_region_and_what_to_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert preflight.main(["--stage", "staging"]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  region: cannot reach AWS STS in 'us-east-1': Could not connect to the endpoint URL" in out
    assert "        fix: check this machine's connection to AWS, and that `region` of [staging.deploy" in out


@pytest.mark.usefixtures("aws")
def test_a_concurrency_quota_of_10_refuses_prod_with_the_quota_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    status, text = check(Stage.load("prod"), Account(concurrency=10))
    assert status == 1
    (failure,) = failures(text)
    assert failure.startswith("FAIL Lambda concurrency: quota 10 < 650: prod reserves 550 (AuthorizerFunction 200")
    assert "--service-code lambda --quota-code L-B99A9384 --desired-value 650" in failure
    out = capsys.readouterr().out
    assert "  FAIL  Lambda concurrency: quota 10 < 650" in out
    assert "        fix: aws service-quotas request-service-quota-increase --region us-east-1" in out


@pytest.mark.usefixtures("aws")
def test_dev_reserves_nothing_and_passes_on_a_quota_of_10() -> None:
    status, text = check(Stage.load("dev"), Account(concurrency=10))
    assert status == 0, text
    assert "ok Lambda concurrency: quota 10; dev reserves 0, +100 unreserved" in text


@pytest.mark.usefixtures("aws")
def test_a_service_linked_role_that_exists_passes_whether_it_was_taken_or_created_before() -> None:
    boto3.client("iam").create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    status, text = check(Stage.load("dev"), Account())
    assert status == 0, text
    assert "ok role for ecs.amazonaws.com: exists" in text
    # IAM's own answer for a role that exists (moto answers EntityAlreadyExists instead).
    iam = boto3.client("iam")
    stubber = Stubber(iam)
    message = "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix."
    stubber.add_client_error("create_service_linked_role", "InvalidInput", message, 400)
    stubber.add_client_error("create_service_linked_role", "AccessDenied", "not allowed", 403)
    stubber.add_response("create_service_linked_role", {"Role": _role("elasticloadbalancing.amazonaws.com")})
    stubber.activate()
    stage = Stage.load("dev", extra=" ".join(f"{key}={value}" for key, value in _brought_datastores().items()))
    results = list(Preflight(stage, lambda service: iam, False, lambda: None).service_linked_roles())
    stubber.assert_no_pending_responses()
    assert [(result.status, result.check, result.detail.split(" (")[0]) for result in results] == [
        ("ok", "role for ecs.amazonaws.com", "exists"),
        ("FAIL", "role for ecs.application-autoscaling.amazonaws.com", "cannot create it"),
        ("ok", "role for elasticloadbalancing.amazonaws.com", "created"),
    ]
    assert results[1].fix == (
        "have an administrator run: aws iam create-service-linked-role "
        "--aws-service-name ecs.application-autoscaling.amazonaws.com"
    )


def _role(service: str) -> dict[str, Any]:
    return {
        "Path": f"/aws-service-role/{service}/",
        "RoleName": "AWSServiceRoleForElasticLoadBalancing",
        "RoleId": "AROAEXAMPLEEXAMPLE000",
        "Arn": "arn:aws:iam::123456789012:role/aws-service-role/x/AWSServiceRoleForElasticLoadBalancing",
        "CreateDate": datetime(2026, 1, 1, tzinfo=UTC),
    }


def _brought_datastores() -> dict[str, str]:
    return {"DatabaseUrl": "postgresql+asyncpg://db", "MongoUrl": "mongodb://m", "RedisUrl": "rediss://r"}


@pytest.mark.usefixtures("aws")
def test_a_region_without_the_stages_features_is_refused_for_each_one(capsys: pytest.CaptureFixture[str]) -> None:
    # Taipei: no SnapStart (the Lambda guide) nor Fargate (the ECS guide), and here no Aurora 16.8.
    stage = dataclasses.replace(Stage.load("dev", extra="SnapStart=true"), region="ap-east-2")
    status, text = check(stage, Account(region="ap-east-2", engine_versions=[]))
    assert status == 1
    assert [line.split(":")[0] for line in failures(text)] == ["FAIL SnapStart", "FAIL Fargate", "FAIL Aurora"]
    assert "Lambda SnapStart is not offered in ap-east-2, Asia Pacific (Taipei)" in text
    assert "fix: deploy with PARAMETERS=SnapStart=false, or deploy dev to another Region" in text
    assert "Aurora PostgreSQL 16.8 is not offered in ap-east-2 | fix: set DatabaseEngineVersion" in text
    out = capsys.readouterr().out
    assert out.count("        fix: ") == 3
    assert out.splitlines()[-1] == "preflight: 3 problems found"


@pytest.mark.usefixtures("aws")
def test_serverless_v2_missing_for_the_engine_version_is_refused() -> None:
    status, text = check(Stage.load("staging"), Account(serverless=False))
    assert status == 1
    assert failures(text)[0].startswith("FAIL Aurora: Aurora PostgreSQL 16.8 has no Serverless v2 (db.serverless)")


@pytest.mark.usefixtures("aws")
def test_auto_pause_at_0_acu_needs_an_engine_version_that_pauses() -> None:
    stage = Stage.load("dev", extra="DatabaseMinCapacity=0")
    no_pause = {**ENGINE_VERSION, "ServerlessV2FeaturesSupport": {"MinCapacity": 0.5, "MaxCapacity": 256.0}}
    status, text = check(stage, Account(engine_versions=[no_pause]))
    assert status == 1
    assert failures(text)[0].startswith("FAIL Aurora: Aurora PostgreSQL 16.8 cannot pause at 0 ACU in us-east-1")
    status, text = check(stage, Account())
    assert status == 0, text
    assert "ok Aurora: Aurora PostgreSQL 16.8 (Serverless v2 with auto-pause) is offered in us-east-1" in text


@pytest.mark.usefixtures("aws")
def test_a_full_vpc_and_elastic_ip_quota_is_refused_when_the_stage_creates_a_network() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    for number in range(4):  # moto's account has its default VPC and a quota of 5
        ec2.create_vpc(CidrBlock=f"10.{number}.0.0/16")
    for _ in range(5):
        ec2.allocate_address(Domain="vpc")
    status, text = check(Stage.load("dev", extra="NatGateway=true"), Account())
    assert status == 1
    vpcs, addresses = failures(text)
    assert vpcs.startswith("FAIL VPCs: 5 of 5 VPCs in us-east-1 are in use and the stage creates one")
    assert "--service-code vpc --quota-code L-F678F1CE --desired-value 6" in vpcs
    assert addresses.startswith("FAIL Elastic IPs: 5 of 5 Elastic IPs in us-east-1 are allocated")
    # A brought VPC creates none: the quotas are not the stage's concern then.
    brought = Stage.load("dev", extra="VpcId=vpc-0abc PrivateSubnetIds=subnet-1,subnet-2 PublicSubnetIds=subnet-3")
    status, text = check(brought, Account())
    assert status == 0, text
    assert "VPCs" not in text


@pytest.mark.usefixtures("aws")
def test_no_docker_is_refused_only_when_the_deploy_builds_images() -> None:
    status, text = check(Stage.load("dev"), Account(), images=True, docker="no docker command on PATH")
    assert status == 1
    (failure,) = failures(text)
    assert failure.startswith("FAIL Docker: no docker command on PATH | fix: install and start Docker with buildx")
    status, text = check(Stage.load("dev"), Account(), images=False, docker="no docker command on PATH")
    assert status == 0, text


def test_parameters_are_read_as_sam_reads_them() -> None:
    assert preflight.parse_parameters('NatGateway=true AlarmEmail="ops@example.com" Empty=') == {
        "NatGateway": "true",
        "AlarmEmail": "ops@example.com",
        "Empty": "",
    }
    assert preflight.parse_parameters('MongoUrl=mongodb://u:pa"ss@h') == {"MongoUrl": 'mongodb://u:pa"ss@h'}


def test_docker_problem_names_a_missing_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert preflight.docker_problem() == "no docker command on PATH"


# The resources of the stacks whose service acts through a service-linked role, and its service.
ROLE_OF_TYPE = {
    "AWS::ECS::Cluster": "ecs.amazonaws.com",
    "AWS::ECS::Service": "ecs.amazonaws.com",
    "AWS::ApplicationAutoScaling::ScalableTarget": "ecs.application-autoscaling.amazonaws.com",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "elasticloadbalancing.amazonaws.com",
    "AWS::RDS::DBCluster": "rds.amazonaws.com",
    "AWS::RDS::DBInstance": "rds.amazonaws.com",
    "AWS::RDS::DBProxy": "rds.amazonaws.com",
    "AWS::DocDB::DBCluster": "rds.amazonaws.com",
    "AWS::DocDB::DBInstance": "rds.amazonaws.com",
    "AWS::ElastiCache::ReplicationGroup": "elasticache.amazonaws.com",
}
SERVICES_WITH_ROLES = (
    *("AWS::ECS::", "AWS::ApplicationAutoScaling::", "AWS::ElasticLoadBalancingV2::"),
    *("AWS::RDS::", "AWS::DocDB::", "AWS::ElastiCache::"),
)


def test_every_resource_that_acts_through_a_service_linked_role_has_it_created() -> None:
    """A resource type added to the stacks from these services fails here until its role is known."""
    types = set()
    for path in [preflight.TEMPLATE, *sorted((preflight.ROOT / "infra" / "deploy" / "stacks").glob("*.yaml"))]:
        types |= {resource["Type"] for resource in preflight._load(path).get("Resources", {}).values()}
    acting = {kind for kind in types if kind.startswith(SERVICES_WITH_ROLES)}
    without_role = {"AWS::RDS::DBSubnetGroup", "AWS::RDS::DBClusterParameterGroup", "AWS::RDS::DBProxyTargetGroup"}
    without_role |= {"AWS::DocDB::DBSubnetGroup", "AWS::DocDB::DBClusterParameterGroup"}
    without_role |= {"AWS::ElastiCache::SubnetGroup", "AWS::ECS::TaskDefinition"}
    without_role |= {"AWS::ECS::ClusterCapacityProviderAssociations", "AWS::ApplicationAutoScaling::ScalingPolicy"}
    without_role |= {"AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::ElasticLoadBalancingV2::Listener"}
    without_role |= {"AWS::ElasticLoadBalancingV2::ListenerRule"}
    unknown = acting - set(ROLE_OF_TYPE) - without_role
    assert unknown == set(), "map these resource types to the service-linked role they need (or none)"
    created = {role.service for role in preflight.SERVICE_LINKED_ROLES}
    assert {ROLE_OF_TYPE[kind] for kind in acting & set(ROLE_OF_TYPE)} <= created


@pytest.mark.usefixtures("aws")
def test_devs_nat_instance_needs_no_elastic_ip_when_the_quota_is_full() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    for _ in range(5):  # moto's quota of 5, all allocated
        ec2.allocate_address(Domain="vpc")
    status, text = check(Stage.load("dev"), Account())
    assert status == 0, text
    assert "ok Elastic IPs: none needed: the NAT instance gets an auto-assigned public IPv4" in text
    status, text = check(Stage.load("dev", extra="NatInstance=false NatGateway=true"), Account())
    assert status == 1
    assert "FAIL Elastic IPs: 5 of 5 Elastic IPs in us-east-1 are allocated" in text


@pytest.mark.usefixtures("aws")
def test_devs_nat_instance_needs_room_under_the_on_demand_vcpu_quota() -> None:
    """A t4g.nano takes 2 of the Region's On-Demand Standard vCPUs; a new account may have few."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large")  # 2 standard vCPUs
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="inf1.xlarge")  # a quota of its own
    quotas = [("vpc", preflight.VPCS_PER_REGION_QUOTA, 5.0), ("ec2", preflight.STANDARD_VCPUS_QUOTA, 4.0)]
    status, text = check(Stage.load("dev"), Account(quotas=quotas))
    assert status == 0, text
    assert "ok EC2 vCPUs: 2 of 4 in use; the NAT instance takes 2" in text
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")  # 2 more
    status, text = check(Stage.load("dev"), Account(quotas=list(quotas)))
    assert status == 1
    (vcpus,) = failures(text)
    assert vcpus.startswith("FAIL EC2 vCPUs: 4 of 4 On-Demand Standard vCPUs in us-east-1 are in use")
    assert "--service-code ec2 --quota-code L-1216C47A --desired-value 6" in vcpus
    # staging and prod have no NAT instance: not asked
    status, text = check(Stage.load("staging"), Account())
    assert "EC2 vCPUs" not in text
