"""`make cost`: every billable resource priced, the docs table its output, line items as computed by hand.

The stage tests translate template.yaml with SAM (.venv-sam) once; the hand-computed line
items read staging and prod, whose always-on shape (RDS Proxy, Container Insights, workers
running) the lean dev stage drops; the shape tests price small templates written here.
"""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.deploy import cost
from infra.deploy.template import load

pytestmark = pytest.mark.infra

HOURS = 730


@pytest.fixture(scope="module")
def stages() -> dict[str, cost.Estimate]:
    return {result.stage: result for result in cost.estimates(list(cost.STAGES))}


def line(result: cost.Estimate, resource: str) -> cost.Line:
    (found,) = [line for line in result.lines if line.resource == resource]
    return found


# ------------------------------------------------------------------ nothing priced at zero by omission


def test_every_resource_type_in_the_translated_templates_has_a_price_or_a_reason_it_is_free() -> None:
    """Whatever the conditions: a type only another stage or a parameter creates counts too."""
    types = cost.template_types()
    assert "AWS::Lambda::Function" in types  # the translated root, not the SAM source
    assert "AWS::RDS::DBProxy" in types  # and the nested stacks
    unpriced = types - set(cost.PRICERS) - set(cost.FREE)
    assert not unpriced, (
        f"price these in infra/deploy/prices.toml and cost.PRICERS, or name them in cost.FREE: {unpriced}"
    )


def test_a_type_without_a_price_stops_the_model(tmp_path: Path) -> None:
    template = tmp_path / "stack.yaml"
    template.write_text(yaml.safe_dump({"Resources": {"Thing": {"Type": "AWS::Neptune::DBInstance"}}}))
    with pytest.raises(cost.Unpriced, match="no price for AWS::Neptune::DBInstance"):
        cost.idle_lines(cost.Stack("root", template, {}, "test"))


def test_a_size_without_a_price_stops_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cost.Unpriced, match=r"cache\.x9\.huge"):
        cost.estimate("dev", {"CacheNodeType": "cache.x9.huge"})
    assert cost.main(["--stage", "dev", "--parameters", "CacheNodeType=cache.x9.huge"]) == 1
    assert "DataStack.Redis" in capsys.readouterr().err


def test_every_price_names_its_source_and_the_date_it_was_read() -> None:
    for name, entry in cost.prices().items():
        assert entry.source.startswith("https://"), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.read), name
        assert entry.per, name


def test_the_embedded_metrics_are_the_ones_the_metrics_function_publishes() -> None:
    from metrics_fn.handler import UNITS

    assert set(cost.EMBEDDED_METRICS["MetricsFunction"]) == set(UNITS)


# ------------------------------------------------------------------ the docs


def test_the_cost_table_in_docs_deploy_md_is_the_models_output(stages: dict[str, cost.Estimate]) -> None:
    block = cost.DOCS_BLOCK.search(cost.DOCS.read_text())
    assert block is not None, "docs/deploy.md lost its make cost markers"
    generated = cost.markdown([stages[stage] for stage in cost.STAGES])
    assert block.group(2) == generated, "regenerate it: python -m infra.deploy.cost --update-docs"


def test_update_docs_rewrites_only_the_block_between_the_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stages: dict[str, cost.Estimate]
) -> None:
    page = tmp_path / "deploy.md"
    page.write_text("# Deploy\n\n<!-- make cost: begin -->\n| stale |\n<!-- make cost: end -->\n\nAfter.\n")
    monkeypatch.setattr(cost, "DOCS", page)
    assert cost.main(["--update-docs"]) == 0
    generated = cost.markdown([stages[stage] for stage in cost.STAGES])
    assert (
        page.read_text() == f"# Deploy\n\n<!-- make cost: begin -->\n{generated}\n<!-- make cost: end -->\n\nAfter.\n"
    )


def test_the_cli_prints_each_billable_resource_and_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--stage", "dev"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^DataStack\.Redis +AWS::ElastiCache::ReplicationGroup +1 x cache\.t4g\.micro +11\.68", out, re.M)
    assert re.search(r"^Total idle +\d+\.\d\d$", out, re.M)
    assert "Per million API requests:" in out
    assert "AWS::IAM::Role" not in out.split("Free (")[0]  # free resources are summed up, not listed


def test_make_cost_passes_the_stage_the_cpu_and_the_parameters() -> None:
    prerequisites = ["-o", ".venv/.installed", "-o", ".venv-sam/.installed"]  # never (re)build the virtualenvs
    result = subprocess.run(
        ["make", "-s", *prerequisites, "cost", "STAGE=staging", "ARCH=x86_64", "PARAMETERS=NatGateway=true"],
        cwd=cost.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Stage staging:")
    assert re.search(r"^ServicesStack\.WorkerService .* X86_64 .*Fargate Spot", result.stdout, re.M)
    assert re.search(r"^NetworkStack\.NatGatewayResource ", result.stdout, re.M)


# ------------------------------------------------------------------ line items computed by hand


def test_a_cache_t4g_micro_node_is_730_hours_at_its_hourly_price(stages: dict[str, cost.Estimate]) -> None:
    assert line(stages["staging"], "DataStack.Redis").monthly == pytest.approx(HOURS * 0.016)
    assert line(stages["prod"], "DataStack.Redis").monthly == pytest.approx(2 * HOURS * 0.032)  # Multi-AZ t4g.small


def test_rds_proxy_on_serverless_v2_bills_its_8_acu_minimum(stages: dict[str, cost.Estimate]) -> None:
    proxy = line(stages["staging"], "DataStack.DatabaseProxy")
    assert proxy.monthly == pytest.approx(8 * 0.015 * HOURS)
    assert line(stages["staging"], "DataStack.DatabaseWriter").monthly == pytest.approx(0.5 * 0.12 * HOURS)
    assert line(stages["prod"], "DataStack.DatabaseReader").monthly == pytest.approx(1 * 0.12 * HOURS)


def test_interface_endpoints_are_billed_per_az_and_the_gateway_endpoint_is_free(
    stages: dict[str, cost.Estimate],
) -> None:
    assert line(stages["staging"], "NetworkStack.SsmEndpoint").monthly == pytest.approx(0.01 * HOURS)
    assert line(stages["prod"], "NetworkStack.SsmEndpoint").monthly == pytest.approx(2 * 0.01 * HOURS)
    assert line(stages["prod"], "NetworkStack.S3Endpoint").monthly == 0


def test_the_load_balancer_pays_its_hours_and_a_public_ipv4_per_az(stages: dict[str, cost.Estimate]) -> None:
    assert line(stages["staging"], "ServicesStack.LoadBalancer").monthly == pytest.approx(HOURS * (0.0225 + 2 * 0.005))


def test_fargate_tasks_are_priced_by_architecture_and_spot_discounts_arm64_and_x86(
    stages: dict[str, cost.Estimate],
) -> None:
    beat = line(stages["staging"], "ServicesStack.BeatService")
    assert beat.monthly == pytest.approx(HOURS * (0.25 * 0.03238 + 0.5 * 0.00356))
    # WorkerSpot=true on ARM64: FARGATE_SPOT runs ARM64 tasks (the ECS API Reference)
    worker = line(stages["staging"], "ServicesStack.WorkerService")
    assert worker.monthly == pytest.approx(HOURS * (0.5 * 0.03238 + 1 * 0.00356) * 0.3)
    assert not worker.warning
    x86 = cost.estimate("staging", {"Architecture": "x86_64"})
    spot = line(x86, "ServicesStack.WorkerService")
    assert spot.monthly == pytest.approx(HOURS * (0.5 * 0.04048 + 1 * 0.004445) * 0.3)
    prod_workers = line(stages["prod"], "ServicesStack.WorkerService")  # two on demand: WorkerMinCount=2
    assert prod_workers.monthly == pytest.approx(2 * HOURS * (0.5 * 0.03238 + 1 * 0.00356))


def test_a_task_with_a_public_ip_pays_for_its_address(stages: dict[str, cost.Estimate]) -> None:
    private = line(stages["dev"], "ServicesStack.BeatService")  # on Spot, in the private subnets
    assert private.monthly == pytest.approx(HOURS * (0.25 * 0.03238 + 0.5 * 0.00356) * 0.3)
    public = cost.estimate("dev", {"PublicTasks": "true"})
    assert line(public, "ServicesStack.BeatService").monthly == pytest.approx(private.monthly + 0.005 * HOURS)
    assert line(public, "ServicesStack.WorkerService").monthly == 0  # no task idle, no address


def test_devs_nat_instance_pays_its_hours_its_root_volume_and_its_public_ipv4(
    stages: dict[str, cost.Estimate],
) -> None:
    nat = line(stages["dev"], "NetworkStack.NatInstanceResource")
    assert nat.quantity == "1 x t4g.nano"
    assert nat.monthly == pytest.approx(HOURS * 0.0042 + 8 * 0.08 + HOURS * 0.005)
    resources = {line.resource for line in stages["dev"].lines}
    assert not {"NetworkStack.SecretsManagerEndpoint", "NetworkStack.SsmEndpoint"} & resources
    assert "NetworkStack.NatInstanceResource" not in {line.resource for line in stages["staging"].lines}


def test_container_insights_and_alarms_are_counted_per_metric(stages: dict[str, cost.Estimate]) -> None:
    cluster = line(stages["staging"], "ServicesStack.Cluster")
    assert cluster.monthly == pytest.approx((10 + 3 * 13 + 3 * 8) * 0.30)  # a cluster, 3 services, 3 families
    template = load()
    crashing = set(template.functions) - {authorizer.function for authorizer in template.authorizers.values()}
    assert line(stages["staging"], "MonitoringStack.FunctionErrorsAlarm").monthly == pytest.approx(
        len(crashing) * 0.10  # every function's errors but the authorizer's (its own alarm)
    )
    assert line(stages["staging"], "MonitoringStack.QueueDepthAlarm").monthly == pytest.approx(0.10)
    # target tracking on a two-metric expression: two alarms reading two metrics each
    assert line(stages["staging"], "ServicesStack.WorkerScalingPolicy").monthly == pytest.approx(2 * 2 * 0.10)


def test_the_scheduled_metrics_function_is_priced_idle(stages: dict[str, cost.Estimate]) -> None:
    runs = HOURS * 60
    expected = runs * 0.20 / 1e6 + runs * 0.2 * 0.25 * 0.0000133334 + runs * 1000 / 1e9 * 0.50 + 3 * 0.30
    assert line(stages["staging"], "root.MetricsFunction").monthly == pytest.approx(expected)
    assert line(stages["staging"], "root.AuthFunction").monthly == 0


def test_a_million_requests_cost_the_gateway_two_invocations_and_their_durations(
    stages: dict[str, cost.Estimate],
) -> None:
    items = dict(stages["staging"].per_million)
    assert items["HTTP API requests"] == pytest.approx(1.00)
    assert items["Lambda duration: authorizer 256 MB x 10 ms"] == pytest.approx(1e6 * 0.010 * 0.25 * 0.0000133334)
    assert items["Lambda duration: function 512 MB x 50 ms"] == pytest.approx(1e6 * 0.050 * 0.5 * 0.0000133334)
    assert items["X-Ray traces (tracing Active)"] == pytest.approx(0.05 * 5.00)
    assert stages["staging"].million_requests == pytest.approx(sum(items.values()))


def test_ten_thousand_console_loads_cost_their_cloudfront_requests_and_bytes(stages: dict[str, cost.Estimate]) -> None:
    items = dict(stages["dev"].per_10k_loads)
    assert items["CloudFront HTTPS requests"] == pytest.approx(10_000 * 4 / 10_000 * 0.0100)
    assert items["CloudFront data sent"] == pytest.approx(10_000 * 60 / 1e6 * 0.085)
    assert stages["dev"].console_loads == pytest.approx(0.04 + 0.051)
    without = cost.estimate("dev", {"Console": "false"})  # no distribution: nothing to load
    assert without.per_10k_loads == []
    assert not any(line.type.startswith("AWS::CloudFront::") for line in without.lines)


def test_parameters_change_what_is_priced(stages: dict[str, cost.Estimate]) -> None:
    brought = cost.estimate("staging", {"MongoUrl": "mongodb+srv://cluster.example.net/", "NatGateway": "true"})
    resources = {line.resource for line in brought.lines}
    assert not any(resource.startswith("DataStack.DocumentDb") for resource in resources)
    assert line(brought, "NetworkStack.NatGatewayResource").monthly == pytest.approx(0.045 * HOURS)
    assert line(brought, "NetworkStack.NatAddress").monthly == pytest.approx(0.005 * HOURS)
    snap = cost.estimate("staging", {"SnapStart": "true"})
    assert line(snap, "root.AuthFunction").monthly == pytest.approx(0.5 * HOURS * 3600 * 0.0000015046)
    assert line(snap, "root.MetricsFunction").monthly == line(stages["staging"], "root.MetricsFunction").monthly
    assert "SnapStart restores" in dict(snap.per_million)


# ------------------------------------------------------------------ shapes the stacks may take


def _stack(tmp_path: Path, resources: dict[str, Any]) -> cost.Stack:
    template = tmp_path / "stack.yaml"
    template.write_text(yaml.safe_dump({"Resources": resources}))
    return cost.Stack("Data", template, {}, "test")


def _aurora(min_capacity: float, *, proxy: bool) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "Cluster": {
            "Type": "AWS::RDS::DBCluster",
            "Properties": {"ServerlessV2ScalingConfiguration": {"MinCapacity": min_capacity, "MaxCapacity": 2}},
        },
        "Writer": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"DBClusterIdentifier": {"Ref": "Cluster"}, "DBInstanceClass": "db.serverless"},
        },
    }
    if proxy:
        resources["Proxy"] = {"Type": "AWS::RDS::DBProxy", "Properties": {}}
        resources["Targets"] = {
            "Type": "AWS::RDS::DBProxyTargetGroup",
            "Properties": {"DBProxyName": {"Ref": "Proxy"}, "DBClusterIdentifiers": [{"Ref": "Cluster"}]},
        }
    return resources


def test_aurora_at_0_acu_without_a_proxy_costs_its_storage_only(tmp_path: Path) -> None:
    lines = {line.resource: line for line in cost.idle_lines(_stack(tmp_path, _aurora(0, proxy=False)))}
    assert lines["Data.Writer"].monthly == 0
    assert "paused" in lines["Data.Writer"].note
    assert lines["Data.Cluster"].monthly == pytest.approx(1 * 0.10)


def test_aurora_at_0_acu_behind_a_proxy_never_pauses(tmp_path: Path) -> None:
    lines = {line.resource: line for line in cost.idle_lines(_stack(tmp_path, _aurora(0, proxy=True)))}
    assert lines["Data.Writer"].monthly == pytest.approx(0.5 * 0.12 * HOURS)
    assert lines["Data.Writer"].warning
    assert lines["Data.Proxy"].monthly == pytest.approx(8 * 0.015 * HOURS)


def test_a_proxy_in_front_of_provisioned_instances_bills_their_vcpus_at_least_two(tmp_path: Path) -> None:
    resources = _aurora(0.5, proxy=True)
    resources["Writer"]["Properties"]["DBInstanceClass"] = "db.t4g.medium"
    lines = {line.resource: line for line in cost.idle_lines(_stack(tmp_path, resources))}
    assert lines["Data.Writer"].monthly == pytest.approx(0.073 * HOURS)
    assert lines["Data.Proxy"].monthly == pytest.approx(2 * 0.015 * HOURS)


def test_documentdb_serverless_bills_its_minimum_dcus(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        {
            "Cluster": {
                "Type": "AWS::DocDB::DBCluster",
                "Properties": {"ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 4}},
            },
            "Instance": {
                "Type": "AWS::DocDB::DBInstance",
                "Properties": {"DBClusterIdentifier": {"Ref": "Cluster"}, "DBInstanceClass": "db.serverless"},
            },
        },
    )
    lines = {line.resource: line for line in cost.idle_lines(stack)}
    assert lines["Data.Instance"].monthly == pytest.approx(0.5 * 0.0822 * HOURS)


def test_a_service_scaled_to_zero_costs_nothing_idle_and_publishes_no_task_metrics(tmp_path: Path) -> None:
    task = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {"RequiresCompatibilities": ["FARGATE"], "Cpu": "512", "Memory": "1024"},
    }
    service = {
        "Type": "AWS::ECS::Service",
        "Properties": {"Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"}, "DesiredCount": 1},
    }
    stack = _stack(
        tmp_path,
        {
            "Cluster": {
                "Type": "AWS::ECS::Cluster",
                "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
            },
            "Task": task,
            "Worker": service,
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "ResourceId": {"Fn::Sub": "service/${Cluster}/${Worker.Name}"},
                    "MinCapacity": 0,
                    "MaxCapacity": 2,
                },
            },
        },
    )
    lines = {line.resource: line for line in cost.idle_lines(stack)}
    assert lines["Data.Worker"].monthly == 0
    assert lines["Data.Cluster"].monthly == pytest.approx((10 + 13) * 0.30)  # no task family running


def test_provisioned_concurrency_is_billed_all_month(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512, "Architectures": ["arm64"]}},
            "Live": {
                "Type": "AWS::Lambda::Alias",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2},
                },
            },
        },
    )
    lines = {line.resource: line for line in cost.idle_lines(stack)}
    assert lines["Data.Live"].monthly == pytest.approx(2 * 0.5 * HOURS * 3600 * 0.0000033334)


@pytest.mark.parametrize(
    ("resource", "match"),
    [
        ({"Type": "AWS::RDS::DBCluster", "Properties": {"StorageType": "aurora-iopt1"}}, "aurora-iopt1"),
        (
            {
                "Type": "AWS::ECS::Cluster",
                "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enhanced"}]},
            },
            "enhanced",
        ),
        (  # a T instance in unlimited mode (t4g's default) can bill surplus credits beyond its hours
            {
                "Type": "AWS::EC2::Instance",
                "Properties": {
                    "InstanceType": "t4g.nano",
                    "BlockDeviceMappings": [{"Ebs": {"VolumeType": "gp3", "VolumeSize": 8}}],
                },
            },
            "unlimited CPU credits",
        ),
        (
            {
                "Type": "AWS::EC2::Instance",
                "Properties": {
                    "InstanceType": "t4g.nano",
                    "CreditSpecification": {"CpuCredits": "standard"},
                    "BlockDeviceMappings": [{"Ebs": {"VolumeType": "io2", "VolumeSize": 8}}],
                },
            },
            "only gp3 volumes",
        ),
    ],
)
def test_a_configuration_priced_otherwise_stops_the_model(tmp_path: Path, resource: dict[str, Any], match: str) -> None:
    with pytest.raises(cost.Unpriced, match=match):
        cost.idle_lines(_stack(tmp_path, {"Thing": resource}))


# ------------------------------------------------------------------ the target


def test_the_dev_stage_costs_at_most_90_dollars_a_month_idle(stages: dict[str, cost.Estimate]) -> None:
    """Issue 20's lean dev stage (the stacks' change, not this model's, makes it pass)."""
    assert stages["dev"].idle <= 90, cost.text_report(stages["dev"])
