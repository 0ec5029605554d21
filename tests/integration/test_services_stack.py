"""The worker, beat and Socket.IO on ECS, and the stack's operability, wired as the contracts say.

Read like test_stacks (the translated root and its nested stacks, references followed, the
default scenario); the Dockerfile, the settings model, the metrics function and the
Socket.IO server are read from their sources, so the templates cannot drift from them.
"""

import json
import re
from typing import Any

import pytest

from infra.deploy.template import load
from metrics_fn import handler as metrics
from multidb.settings import CONNECTION_FIELDS, FIELDS, InvalidSettings, parse
from tests.integration.dockerfile import command as dockerfile_command
from tests.integration.dockerfile import stages
from tests.integration.test_stacks import (
    NESTED,
    Resource,
    condition,
    connections,
    deployed_as,
    functions,
    ingress,
    is_private,
    nested,
    one,
    origins,
    stage_overrides,
    template_of,
)

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the templates")]

SERVICES = "ServicesStack"
READ_ONLY = ("beat", "realtime")  # the worker's prefork pool writes /tmp
MONITORING = "MonitoringStack"
CONTAINERS = {  # container name: (task definition, service, repository)
    "worker": ("WorkerTaskDefinition", "WorkerService", "WorkerRepository"),
    "beat": ("BeatTaskDefinition", "BeatService", "BeatRepository"),
    "realtime": ("RealtimeTaskDefinition", "RealtimeService", "RealtimeRepository"),
}


def container(name: str) -> dict[str, Any]:
    [definition] = Resource(SERVICES, CONTAINERS[name][0]).properties["ContainerDefinitions"]
    assert definition["Name"] == name
    return definition  # type: ignore[no-any-return]


def sub_names(text: str) -> list[str]:
    return re.findall(r"\$\{([\w:.]+)\}", text)


def value_of(stack: str, value: Any) -> Any:
    """What a value comes from, through the parameters the root passes (default scenario)."""
    found = origins(stack, value)
    return found[0] if len(found) == 1 else found


PSEUDO = {"AWS::Region": "us-east-1", "AWS::StackName": "multidb-dev", "AWS::Partition": "aws"}


def rendered(stack: str, value: Any) -> str:
    """A plain value as CloudFormation would write it: Subs filled from the root's defaults."""
    found = value_of(stack, value)
    if isinstance(found, list):
        return ",".join(rendered(stack, item) for item in found)
    if isinstance(found, str) and found in PSEUDO:
        return PSEUDO[found]
    if isinstance(found, dict) and isinstance(found.get("Fn::Sub"), str):
        parameters = template_of("root")["Parameters"]
        return re.sub(
            r"\$\{([\w:]+)\}",
            lambda m: PSEUDO.get(m[1]) or str(parameters[m[1]].get("Default", "")),
            found["Fn::Sub"],
        )
    if isinstance(found, Resource):
        return f"<{found.name}>"  # a name CloudFormation generates
    assert not isinstance(found, dict), found
    return str(found)


# ------------------------------------------------------------------ what each container runs


def test_each_task_definition_runs_its_dockerfile_targets_command_from_its_targets_repository() -> None:
    from infra.deploy.images import TARGETS

    assert set(CONTAINERS) == set(TARGETS) <= set(stages())
    outputs = nested(SERVICES)["Outputs"]
    for name, (_, _, repository) in CONTAINERS.items():
        definition = container(name)
        assert definition["Command"] == dockerfile_command(name), name
        image, variables = definition["Image"]["Fn::Sub"]
        assert image == f"${{{repository}.RepositoryUri}}:${{Tag}}", name
        assert variables["Tag"] == {"Fn::If": ["HaveImages", {"Ref": "ImageTag"}, "none"]}, name
        assert outputs[TARGETS[name]]["Value"] == {
            "Fn::GetAtt": [repository, "RepositoryUri"]
        }  # what make images pushes to
        repo = Resource(SERVICES, repository).properties
        assert repo["ImageTagMutability"] == "IMMUTABLE"  # a tag names one image: a new tag, a new revision
        assert definition["ReadonlyRootFilesystem"] is (name in READ_ONLY), name  # test_containers traces writes
    assert Resource("root", "ServicesStack").properties["Parameters"]["ImageTag"] == {"Ref": "ImageTag"}
    assert container("realtime")["PortMappings"] == [{"ContainerPort": 3001, "Protocol": "tcp"}]
    assert "--port" in dockerfile_command("realtime")
    assert dockerfile_command("realtime")[dockerfile_command("realtime").index("--port") + 1] == "3001"
    assert "EXPOSE 3001" in stages()["realtime"]


def test_no_task_runs_before_its_image_exists_and_a_tag_runs_everything() -> None:
    assert not condition(SERVICES, "HaveImages")  # default: the first deploy, repositories only
    for _, service, _ in CONTAINERS.values():
        count = Resource(SERVICES, service).properties["DesiredCount"]
        assert count["Fn::If"][::2] == ["HaveImages", 0], service
    for target in ("WorkerScalingTarget", "RealtimeScalingTarget"):
        properties = Resource(SERVICES, target).properties
        assert properties["MinCapacity"]["Fn::If"][2] == 0
        assert properties["MaxCapacity"]["Fn::If"][2] == 0


def test_the_worker_finishes_its_running_tasks_on_a_stop_and_may_run_on_spot() -> None:
    assert container("worker")["StopTimeout"] == 120  # Fargate's longest: a warm shutdown's time
    assert "worker" in dockerfile_command("worker")[2]
    assert "exec celery" in dockerfile_command("worker")[2]
    strategy = Resource(SERVICES, "WorkerService").properties["CapacityProviderStrategy"]
    assert strategy == [{"CapacityProvider": {"Fn::If": ["WorkersOnSpot", "FARGATE_SPOT", "FARGATE"]}, "Weight": 1}]
    assert Resource(SERVICES, "ClusterCapacityProviders").properties["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    stages_spot = {stage: overrides.get("WorkerSpot") for stage, overrides in stage_overrides().items()}
    assert stages_spot == {"dev": "true", "staging": "true", "prod": "false"}


def test_beat_is_one_task_whose_deploys_overlap() -> None:
    beat = Resource(SERVICES, "BeatService").properties
    assert beat["DesiredCount"] == {"Fn::If": ["HaveImages", 1, 0]}
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 200  # the new one stands by on the lock
    assert not any(
        r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget" and "BeatService" in json.dumps(r)
        for r in nested(SERVICES)["Resources"].values()
    )
    assert container("beat")["StopTimeout"] >= 10  # a stop waits for the tick in progress


# ------------------------------------------------------------------ what each container is told


def fake_secret_value(name: str) -> str:
    """What ECS would inject: the URLs the stack assembles (as in production), or the public keys."""
    urls = {}
    for field, template in connections().items():
        url = re.sub(r"\{\{resolve:.*?\}\}", "Generated0Secret9", template)
        url = re.sub(r"\$\{[\w.]+Port\}", "6379", url)
        urls[field.upper()] = re.sub(r"\$\{[\w.]+\}", "host.internal", url)
    if name == "JWT_PUBLIC_KEYS":
        return json.dumps([{"kid": "k1", "pem": "-----BEGIN PUBLIC KEY-----\n…"}])
    return urls[name]


def given(name: str) -> dict[str, str]:
    """Each variable a container receives, with the value the template gives it (secrets faked)."""
    definition = container(name)
    values = {variable["Name"]: rendered(SERVICES, variable["Value"]) for variable in definition["Environment"]}
    values |= {secret["Name"]: fake_secret_value(secret["Name"]) for secret in definition["Secrets"]}
    return values


def command_variables(name: str) -> set[str]:
    """The variables the container's command expands itself (the worker's concurrency)."""
    return set(re.findall(r"\$\{?(\w+)\}?", " ".join(dockerfile_command(name))))


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_every_variable_a_container_gets_is_a_setting_and_they_pass_production_validation(name: str) -> None:
    """Compared with the model: nothing but settings (or what the command expands itself); what
    is given passes Settings in PRODUCTION and the checks get_settings adds, with no secret or
    parameter left to read (ECS injected their values); and each injected value is one the model
    cannot do without (leave it out and PRODUCTION refuses the default)."""
    values = given(name)
    fields = {field.upper() for field in FIELDS}
    assert set(values) - fields <= command_variables(name), set(values) - fields
    settings = parse({k: v for k, v in values.items() if k in fields})
    assert settings.is_production
    assert settings.database_url
    assert settings.redis_url
    assert settings.mongo_url
    assert settings.connections_secret_id is None
    assert settings.public_keys_parameter is None
    assert settings.jwt_public_keys
    assert settings.message_broker_url.startswith("rediss://")
    assert settings.service_name == "multidb-dev"
    assert settings.jwt_issuer == "multidb-dev"
    for variable in ("DATABASE_URL", "REDIS_URL", "MONGO_URL", "JWT_PUBLIC_KEYS"):
        without = {k.lower(): v for k, v in values.items() if k in fields and k != variable}
        with pytest.raises(InvalidSettings):
            parse(without)


def test_the_containers_get_the_connections_the_functions_read_from_the_same_secret() -> None:
    """The functions read CONNECTIONS_SECRET_ID (its JSON keys are the settings' CONNECTION_FIELDS);
    ECS injects the same keys of the same secret, and the public keys from the same parameter."""
    keys = Resource("root", "KeysResource").properties["PublicKeysParameter"]
    for name in CONTAINERS:
        secrets = {s["Name"]: s["ValueFrom"]["Fn::Sub"] for s in container(name)["Secrets"]}
        assert set(secrets) == {field.upper() for field in CONNECTION_FIELDS} | {"JWT_PUBLIC_KEYS"}, name
        for field in CONNECTION_FIELDS:
            assert secrets[field.upper()] == f"${{ConnectionsSecretArn}}:{field}::", name  # ARN:json-key:stage:version
        assert one(SERVICES, {"Ref": "ConnectionsSecretArn"}) == Resource("DataStack", "ConnectionsSecret")
        arn = secrets["JWT_PUBLIC_KEYS"]
        assert arn == "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PublicKeysParameterName}"
        assert value_of(SERVICES, {"Ref": "PublicKeysParameterName"}) == keys
    function_env = functions()["TasksFunction"]["Properties"]["Environment"]["Variables"]
    assert function_env["CONNECTIONS_SECRET_ID"] == {"Fn::GetAtt": ["DataStack", "Outputs.ConnectionsSecretArn"]}
    assert (
        Resource("root", "ServicesStack").properties["Parameters"]["ConnectionsSecretArn"]
        == function_env["CONNECTIONS_SECRET_ID"]
    )


def test_the_containers_share_the_functions_identity_and_get_what_only_they_use() -> None:
    """Tokens verify and logs group alike: issuer, audience, service name, environment and log
    level are the functions' own; the worker's sweep gets the bucket; Socket.IO the API's origins."""
    function_env = functions()["AuthFunction"]["Properties"]["Environment"]["Variables"]
    root = Resource("root", "ServicesStack").properties["Parameters"]
    for name in CONTAINERS:
        environment = {v["Name"]: v["Value"] for v in container(name)["Environment"]}
        assert environment["APP_ENV"] == function_env["APP_ENV"] == "PRODUCTION"
        for variable, parameter in (
            ("SERVICE_NAME", "ServiceName"),
            ("LOG_LEVEL", "LogLevel"),
            ("JWT_ISSUER", "JwtIssuer"),
            ("JWT_AUDIENCE", "JwtAudience"),
        ):
            assert environment[variable] == {"Ref": parameter}, (name, variable)
            assert root[parameter] == function_env[variable], (name, variable)
    worker = {v["Name"]: v["Value"] for v in container("worker")["Environment"]}
    assert one(SERVICES, worker["FILES_BUCKET"]) == Resource("root", "FilesBucket")
    assert worker["S3_REGION"] == {"Ref": "AWS::Region"}
    realtime = {v["Name"]: v["Value"] for v in container("realtime")["Environment"]}
    assert realtime["REALTIME_CORS_ORIGINS"] == {"Ref": "CorsAllowOrigins"}
    assert root["CorsAllowOrigins"] == {"Fn::Join": [",", {"Ref": "CorsAllowOrigins"}]}


# ------------------------------------------------------------------ roles


def role_statements(role: str) -> list[dict[str, Any]]:
    return [
        s for policy in Resource(SERVICES, role).properties["Policies"] for s in policy["PolicyDocument"]["Statement"]
    ]


def test_task_roles_grant_only_what_each_container_uses() -> None:
    execution = {
        tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])): s["Resource"]
        for s in role_statements("ExecutionRole")
    }
    assert execution[("secretsmanager:GetSecretValue",)] == {"Ref": "ConnectionsSecretArn"}
    assert "parameter${PublicKeysParameterName}" in execution[("ssm:GetParameters",)]["Fn::Sub"]
    assert execution[("ecr:GetAuthorizationToken",)] == "*"  # no resource-level permission exists
    pulls = execution[("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")]
    assert {r["Fn::GetAtt"][0] for r in pulls} == {repository for _, _, repository in CONTAINERS.values()}
    assert len(execution) == 5
    [sweep] = role_statements("WorkerTaskRole")
    assert sorted(sweep["Action"]) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject"]
    assert sweep["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${FilesBucketName}/*"}
    for name, (definition, _, _) in CONTAINERS.items():
        properties = Resource(SERVICES, definition).properties
        assert properties["ExecutionRoleArn"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
        if name == "worker":
            assert properties["TaskRoleArn"] == {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}
        else:
            assert "TaskRoleArn" not in properties, name  # beat and Socket.IO call no AWS API


# ------------------------------------------------------------------ network


def test_the_containers_group_reaches_the_datastores_and_nothing_else() -> None:
    group = Resource("NetworkStack", "ContainerSecurityGroup")
    assert "SecurityGroupIngress" not in group.properties  # nothing reaches into a container through it
    egress = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group.properties["SecurityGroupEgress"]}
    assert egress == {("tcp", 443, 443), ("tcp", 5432, 5432), ("tcp", 6379, 6379), ("tcp", 27017, 27017)}
    datastores = {"DatabaseProxy": 5432, "Redis": 6379, "DocumentDbCluster": 27017}
    for datastore, port in datastores.items():
        properties = Resource("DataStack", datastore).properties
        [datastore_group] = origins(
            "DataStack", properties.get("VpcSecurityGroupIds") or properties["SecurityGroupIds"]
        )
        assert (port, port, group) in ingress(datastore_group), datastore
    for name, (_, service, _) in CONTAINERS.items():
        network = Resource(SERVICES, service).properties["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert value_of(SERVICES, network["AssignPublicIp"]) == "DISABLED"  # staging and prod alike
        subnets = origins(SERVICES, network["Subnets"])
        assert len(subnets) == 2, name
        assert all(is_private(s) for s in subnets), name
        groups = origins(SERVICES, network["SecurityGroups"])
        assert groups[0] == group, name
        assert groups[1:] == ([Resource(SERVICES, "RealtimeSecurityGroup")] if name == "realtime" else []), name


def test_the_load_balancer_is_public_and_forwards_only_to_the_realtime_service() -> None:
    resources = nested(SERVICES)["Resources"]
    balancer = Resource(SERVICES, "LoadBalancer").properties
    assert balancer["Scheme"] == "internet-facing"
    subnets = origins(SERVICES, balancer["Subnets"])
    assert len(subnets) == 2
    assert not any(is_private(s) for s in subnets)
    target_groups = [n for n, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"]
    assert target_groups == ["RealtimeTargetGroup"]
    assert not [n for n, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule"]
    listeners = {n: r for n, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"}
    assert {n: r["Condition"] for n, r in listeners.items()} == {"HttpsListener": "Https", "HttpListener": "PlainHttp"}
    for listener in listeners.values():
        assert listener["Properties"]["DefaultActions"] == [
            {"Type": "forward", "TargetGroupArn": {"Ref": "RealtimeTargetGroup"}}
        ]
    https = listeners["HttpsListener"]["Properties"]
    assert (https["Protocol"], https["Port"]) == ("HTTPS", 443)
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "RealtimeCertificateArn"}}]
    balanced = {
        n for n, r in resources.items() if r["Type"] == "AWS::ECS::Service" and "LoadBalancers" in r["Properties"]
    }
    assert balanced == {"RealtimeService"}
    [attachment] = Resource(SERVICES, "RealtimeService").properties["LoadBalancers"]
    assert attachment == {
        "ContainerName": "realtime",
        "ContainerPort": 3001,
        "TargetGroupArn": {"Ref": "RealtimeTargetGroup"},
    }
    # The balancer's group sends only to the Socket.IO tasks' group, which admits only it.
    balancer_group = Resource(SERVICES, "LoadBalancerSecurityGroup")
    [egress] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"]
    assert one(SERVICES, egress["GroupId"]) == balancer_group
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 3001, 3001)
    assert one(SERVICES, egress["DestinationSecurityGroupId"]) == Resource(SERVICES, "RealtimeSecurityGroup")
    assert ingress(Resource(SERVICES, "RealtimeSecurityGroup")) == {(3001, 3001, balancer_group)}


def test_socket_io_sessions_stick_to_a_task_and_outlive_the_ping_interval() -> None:
    from infra.services.realtime.server import create_realtime

    groups = {
        a["Key"]: a["Value"] for a in Resource(SERVICES, "RealtimeTargetGroup").properties["TargetGroupAttributes"]
    }
    assert groups["stickiness.enabled"] == "true"  # Engine.IO polling sends a session's requests to one task
    assert groups["stickiness.type"] == "lb_cookie"
    attributes = {a["Key"]: a["Value"] for a in Resource(SERVICES, "LoadBalancer").properties["LoadBalancerAttributes"]}
    ping = create_realtime().sio.eio.ping_interval  # what the server really runs with
    assert int(attributes["idle_timeout.timeout_seconds"]) > ping + 20  # a ping and its answer fit in a window
    target = Resource(SERVICES, "RealtimeTargetGroup").properties
    assert (target["Port"], target["TargetType"], target["Matcher"]) == (3001, "ip", {"HttpCode": "200"})
    assert target["HealthCheckPath"] == "/socket.io/?EIO=4&transport=polling"  # test_containers asks the real server


def test_the_socket_io_endpoint_is_an_output_and_prod_must_give_it_tls() -> None:
    output = nested(SERVICES)["Outputs"]["RealtimeUrl"]["Value"]["Fn::Sub"]
    assert output[0] == "${Scheme}://${Host}"
    assert output[1]["Scheme"] == {"Fn::If": ["Https", "https", "http"]}
    root_output = template_of("root")["Outputs"]["RealtimeUrl"]["Value"]
    assert root_output == {"Fn::GetAtt": ["ServicesStack", "Outputs.RealtimeUrl"]}
    rules = template_of("root")["Rules"]
    assert rules["CertificateNamesItsDomain"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RealtimeDomainName"}, ""]}]
    }


# ------------------------------------------------------------------ scaling


def test_the_worker_scales_on_the_queue_depth_the_metrics_function_publishes() -> None:
    policy = Resource(SERVICES, "WorkerScalingPolicy").properties["TargetTrackingScalingPolicyConfiguration"]
    queries = {q["Id"]: q for q in policy["CustomizedMetricSpecification"]["Metrics"]}
    queued = queries["queued"]["MetricStat"]["Metric"]
    assert (queued["Namespace"], queued["MetricName"]) == (metrics.NAMESPACE, "QueuedTasks")
    assert queued["Dimensions"] == [{"Name": metrics.DIMENSION, "Value": {"Ref": "ServiceName"}}]
    # The function's dimension value is its SERVICE_NAME: the same text the stack passes here.
    assert value_of(SERVICES, {"Ref": "ServiceName"}) == value_of(
        "root", functions()["MetricsFunction"]["Properties"]["Environment"]["Variables"]["SERVICE_NAME"]
    )
    running = queries["running"]["MetricStat"]["Metric"]
    assert (running["Namespace"], running["MetricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert {"Name": "ServiceName", "Value": {"Fn::GetAtt": ["WorkerService", "Name"]}} in running["Dimensions"]
    assert queries["backlog_per_task"]["ReturnData"] is True
    assert "queued / running" in queries["backlog_per_task"]["Expression"]
    assert policy["TargetValue"] == {"Ref": "WorkerBacklogPerTask"}
    cluster = Resource(SERVICES, "Cluster").properties
    assert {"Name": "containerInsights", "Value": {"Ref": "ContainerInsights"}} in cluster["ClusterSettings"]
    assert Resource(SERVICES, "WorkerScalingPolicy").definition["Condition"] == "TrackBacklog"
    for stage in ("staging", "prod"):  # target tracking, on Container Insights' running count
        with deployed_as(stage):
            assert condition(SERVICES, "TrackBacklog"), stage
            assert value_of(SERVICES, {"Ref": "ContainerInsights"}) == "enabled", stage
    events = template_of("root")["Resources"]["MetricsFunctionEveryMinute"]["Properties"]
    assert events["ScheduleExpression"] == "rate(1 minute)"
    realtime = Resource(SERVICES, "RealtimeScalingPolicy").properties["TargetTrackingScalingPolicyConfiguration"]
    assert realtime["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"


def test_dev_runs_no_worker_on_an_empty_queue_and_starts_one_when_a_task_waits() -> None:
    """Target tracking multiplies the running count, so it cannot leave zero: with WorkerMinCount
    0 a step policy adds a task each minute tasks wait, and another sets none once nothing waited
    or ran for WorkerIdleMinutes (ReservedTasks: the tasks being run, acknowledged late)."""
    target = Resource(SERVICES, "WorkerScalingTarget").properties
    out_alarm = Resource(SERVICES, "WorkerQueuedAlarm").properties
    idle_alarm = Resource(SERVICES, "WorkerIdleAlarm").properties
    with deployed_as("dev"):
        assert condition(SERVICES, "ScaleToZero")
        assert not condition(SERVICES, "TrackBacklog")
        assert value_of(SERVICES, target["MinCapacity"]["Fn::If"][1]) == "0"  # with images: WorkerMinCount
        assert value_of(SERVICES, {"Ref": "ContainerInsights"}) == "disabled"
    for name in ("WorkerScaleOutPolicy", "WorkerQueuedAlarm", "WorkerScaleInPolicy", "WorkerIdleAlarm"):
        assert Resource(SERVICES, name).definition["Condition"] == "ScaleToZero", name
    scale_out = Resource(SERVICES, "WorkerScaleOutPolicy").properties
    assert scale_out["PolicyType"] == "StepScaling"
    assert scale_out["ScalingTargetId"] == {"Ref": "WorkerScalingTarget"}
    steps = scale_out["StepScalingPolicyConfiguration"]
    assert (steps["AdjustmentType"], steps["StepAdjustments"]) == (
        "ChangeInCapacity",
        [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    )
    assert out_alarm["AlarmActions"] == [{"Ref": "WorkerScaleOutPolicy"}]
    assert (out_alarm["Namespace"], out_alarm["MetricName"]) == (metrics.NAMESPACE, "QueuedTasks")
    assert out_alarm["Dimensions"] == [{"Name": metrics.DIMENSION, "Value": {"Ref": "ServiceName"}}]
    assert (out_alarm["ComparisonOperator"], out_alarm["Threshold"], out_alarm["Period"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        60,
    )
    scale_in = Resource(SERVICES, "WorkerScaleInPolicy").properties["StepScalingPolicyConfiguration"]
    assert (scale_in["AdjustmentType"], scale_in["StepAdjustments"][0]["ScalingAdjustment"]) == ("ExactCapacity", 0)
    assert idle_alarm["AlarmActions"] == [{"Ref": "WorkerScaleInPolicy"}]
    read = {q["MetricStat"]["Metric"]["MetricName"] for q in idle_alarm["Metrics"] if "MetricStat" in q}
    assert read == {"QueuedTasks", "ReservedTasks"} <= set(metrics.UNITS)
    assert (idle_alarm["ComparisonOperator"], idle_alarm["Threshold"]) == ("LessThanOrEqualToThreshold", 0)
    assert idle_alarm["EvaluationPeriods"] == {"Ref": "WorkerIdleMinutes"}
    rule = template_of("root")["Rules"]["TargetTrackingNeedsContainerInsights"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "WorkerMinCount"}, 0]}


def test_dev_keeps_beat_and_socket_io_small_on_spot_and_holding_no_idle_connection() -> None:
    for service in ("BeatService", "RealtimeService"):
        [strategy] = Resource(SERVICES, service).properties["CapacityProviderStrategy"]
        assert strategy["CapacityProvider"] == {"Fn::If": ["ServicesOnSpot", "FARGATE_SPOT", "FARGATE"]}, service
    assert Resource(SERVICES, "BeatTaskDefinition").properties["Cpu"] == "256"  # Fargate's smallest
    assert value_of("root", {"Ref": "WorkerMinCount"}) == 1  # the default shape stays always-on
    with deployed_as("dev"):
        assert condition(SERVICES, "ServicesOnSpot")
        for name in CONTAINERS:
            assert given(name)["DATABASE_POOL_SIZE"] == "0", name  # an idle Aurora can pause
            assert float(given(name)["DATABASE_CONNECT_TIMEOUT"]) * 2 > 15, name  # two attempts outlast a resume
        assert int(given("beat")["BEAT_REFRESH_INTERVAL"]) > 300  # beat's reads let it pause between them
    with deployed_as("prod"):
        assert not condition(SERVICES, "ServicesOnSpot")
        assert given("beat")["DATABASE_POOL_SIZE"] == "2"


def test_every_stages_tasks_are_private_and_dev_reaches_aws_apis_through_its_nat_instance() -> None:
    """dev trades its interface endpoints (Secrets Manager and SSM: $14.60 a month; ECR and Logs
    would add $21.90) and the tasks' public addresses ($3.65 each) for one t4g.nano NAT instance
    (about $7.36 with its volume and address); staging and prod keep every endpoint and no NAT.
    In every stage the tasks run in the private subnets without a public address, and nothing
    reaches in (no ingress but the load balancer's)."""
    resources = nested("NetworkStack")["Resources"]
    endpoints = {name for name, r in resources.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    assert endpoints == {"S3Endpoint", "SecretsManagerEndpoint", "SsmEndpoint", "EcrApiEndpoint"} | {
        "EcrDockerEndpoint",
        "LogsEndpoint",
    }
    for stage in ("dev", "staging", "prod"):
        with deployed_as(stage):
            made = {name for name in endpoints if condition("NetworkStack", resources[name]["Condition"])}
            nat_instance = condition("NetworkStack", "CreateNatInstance")
            assert nat_instance is (stage == "dev"), stage
            assert not condition("NetworkStack", "CreateNat"), stage  # no NAT gateway anywhere
            assert made == ({"S3Endpoint"} if nat_instance else endpoints), stage  # S3's is free: always kept
            for name, (_, service, _) in CONTAINERS.items():
                network = Resource(SERVICES, service).properties["NetworkConfiguration"]["AwsvpcConfiguration"]
                assert value_of(SERVICES, network["AssignPublicIp"]) == "DISABLED", (stage, name)
                subnets = origins(SERVICES, network["Subnets"])
                assert len(subnets) == 2, (stage, name)
                assert all(is_private(s) for s in subnets), (stage, name)
    group = Resource("NetworkStack", "ContainerSecurityGroup")
    assert "SecurityGroupIngress" not in group.properties
    assert ingress(Resource(SERVICES, "RealtimeSecurityGroup")) == {
        (3001, 3001, Resource(SERVICES, "LoadBalancerSecurityGroup"))
    }


def test_dev_keeps_its_alarms_without_the_dashboard() -> None:
    """The dashboard costs $3 a month (beyond an account's first three); dev does without it."""
    resources = nested(MONITORING)["Resources"]
    alarms = {name: r for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert all(r.get("Condition") != "CreateDashboard" for r in alarms.values())
    for stage, dashboard in (("dev", False), ("staging", True), ("prod", True)):
        with deployed_as(stage):
            assert condition(MONITORING, "CreateDashboard") is dashboard, stage
            made = {name for name, r in alarms.items() if "Condition" not in r or condition(MONITORING, r["Condition"])}
            assert {"ApiServerErrorRateAlarm", "FunctionErrorsAlarm", "BeatNotTickingAlarm"} <= made, stage
            assert len(made) >= 9, stage


def test_the_cluster_goes_before_its_container_insights_log_group_on_delete() -> None:
    """CloudFormation deletes dependents first: the cluster, then its group, which Container
    Insights can no longer recreate (without a retention) to block the next deploy."""
    assert Resource(SERVICES, "Cluster").definition["DependsOn"] == "ContainerInsightsLogGroup"
    group = Resource(SERVICES, "ContainerInsightsLogGroup").properties
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/ecs/containerinsights/${NamePrefix}/performance"}


def test_dev_functions_wait_out_a_resume_within_api_gateways_30_seconds() -> None:
    """Two connection attempts must outlast a resume (about 15 s) and fit in the function's time."""
    authorizer = functions()["AuthorizerFunction"]["Properties"]
    assert int(authorizer["Environment"]["Variables"]["DATABASE_CONNECT_TIMEOUT"]) * 2 < authorizer["Timeout"]
    deploy = functions()["DeployFunction"]["Properties"]
    assert int(deploy["Environment"]["Variables"]["DATABASE_CONNECT_TIMEOUT"]) * 2 < deploy["Timeout"]
    with deployed_as("dev"):
        timeout = int(value_of("root", {"Ref": "FunctionTimeout"}))
        connect = int(value_of("root", {"Ref": "DatabaseConnectTimeout"}))
        assert 15 < 2 * connect < timeout < 30
    users = functions()["UsersFunction"]["Properties"]
    assert users["Timeout"] == {"Ref": "FunctionTimeout"}
    assert users["Environment"]["Variables"]["DATABASE_CONNECT_TIMEOUT"] == {"Ref": "DatabaseConnectTimeout"}


# ------------------------------------------------------------------ logs


def log_groups() -> dict[Resource, dict[str, Any]]:
    return {
        Resource(stack, name): resource["Properties"]
        for stack in ("root", *NESTED)
        for name, resource in template_of(stack)["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup"
    }


def test_every_log_group_keeps_its_logs_for_the_stacks_retention() -> None:
    groups = log_groups()
    default = template_of("root")["Parameters"]["LogRetentionDays"]["Default"]
    for group, properties in groups.items():
        assert origins(group.stack, properties["RetentionInDays"]) == [default], group  # the root's parameter
    for name, function in functions().items():  # no function logs to a group Lambda would make (no retention)
        assert one("root", function["Properties"]["LoggingConfig"]["LogGroup"]) in groups, name
    for name in CONTAINERS:
        options = container(name)["LogConfiguration"]["Options"]
        assert one(SERVICES, options["awslogs-group"]) in groups, name
    named = {json.dumps(p.get("LogGroupName")): group for group, p in groups.items()}

    def made_first(stack: str, name: str, expected: str) -> None:
        """The group the service writes to exists, with a retention, before the service does."""
        group = named[json.dumps({"Fn::Sub": expected})]
        assert group.name in Resource(stack, name).definition["DependsOn"], name

    aurora = Resource("DataStack", "DatabaseCluster").properties
    for export in aurora["EnableCloudwatchLogsExports"]:
        made_first(
            "DataStack", "DatabaseCluster", f"/aws/rds/cluster/{aurora['DBClusterIdentifier']['Fn::Sub']}/{export}"
        )
    documentdb = Resource("DataStack", "DocumentDbCluster").properties
    for export in documentdb["EnableCloudwatchLogsExports"]:
        made_first(
            "DataStack", "DocumentDbCluster", f"/aws/docdb/{documentdb['DBClusterIdentifier']['Fn::Sub']}/{export}"
        )
    proxy = Resource("DataStack", "DatabaseProxy").properties
    made_first("DataStack", "DatabaseProxy", f"/aws/rds/proxy/${{{proxy['DBProxyName']['Ref']}}}")
    assert json.dumps({"Fn::Sub": "/aws/ecs/containerinsights/${NamePrefix}/performance"}) in named
    assert Resource(SERVICES, "Cluster").properties["ClusterName"] == {"Ref": "NamePrefix"}
    # RDS names its log groups in lowercase: the prefix is lowercase, or the groups would not match.
    assert nested("DataStack")["Parameters"]["NamePrefix"]["AllowedPattern"] == "^[a-z][a-z0-9-]{0,39}$"


# ------------------------------------------------------------------ alarms and dashboard


def alarms() -> dict[str, dict[str, Any]]:
    return {n: r for n, r in nested(MONITORING)["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def watched(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    """(namespace, metric) of everything an alarm reads; a namespace given as a Sub, as its text."""
    properties = alarm["Properties"]
    metrics_read = [properties] if "MetricName" in properties else [
        q["MetricStat"]["Metric"] for q in properties["Metrics"] if "MetricStat" in q
    ]  # fmt: skip
    return {
        (m["Namespace"]["Fn::Sub"] if isinstance(m["Namespace"], dict) else m["Namespace"], m["MetricName"])
        for m in metrics_read
    }


def test_an_alarm_watches_each_figure_the_issue_names_and_mails_the_topic() -> None:
    every = set().union(*(watched(a) for a in alarms().values()))
    assert every >= {
        ("AWS/ApiGateway", "5xx"),  # the API's 5xx rate
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("multidb/${ServiceName}", "AuthorizerErrors"),
        ("ECS/ContainerInsights", "RunningTaskCount"),  # running below desired
        ("ECS/ContainerInsights", "DesiredTaskCount"),
        (metrics.NAMESPACE, "QueuedTasks"),  # queue depth
        (metrics.NAMESPACE, "BeatHeartbeatAge"),  # beat not ticking
        ("AWS/RDS", "MaxDatabaseConnectionsAllowed"),  # proxy saturation
        ("AWS/ElastiCache", "CurrConnections"),  # Redis saturation
    }
    for name, alarm in alarms().items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    assert alarms()["BeatNotTickingAlarm"]["Properties"]["TreatMissingData"] == "breaching"  # no beat, no figure
    assert set(metrics.UNITS) >= {"QueuedTasks", "BeatHeartbeatAge"}
    for service in ("Worker", "Beat", "Realtime"):
        assert f"{service}BelowDesiredAlarm" in alarms()
    subscription = nested(MONITORING)["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "Notify"
    assert not condition(MONITORING, "Notify")


def test_the_authorizer_error_filter_matches_the_lines_the_authorizer_logs() -> None:
    import logging

    from multidb.logs import JsonFormatter

    pattern = nested(MONITORING)["Resources"]["AuthorizerErrorLines"]["Properties"]["FilterPattern"]
    field, value = re.fullmatch(r'\{ \$\.(\w+) = "(\w+)" \}', pattern).groups()  # type: ignore[union-attr]
    record = logging.LogRecord("multidb.authorizer", logging.ERROR, __file__, 1, "authorizer failure: %s", ("X",), None)
    assert json.loads(JsonFormatter().format(record))[field] == value
    group = Resource("root", "MonitoringStack").properties["Parameters"]["AuthorizerLogGroupName"]
    assert one("root", group) == Resource("root", "AuthorizerLogGroup")
    assert one("root", functions()["AuthorizerFunction"]["Properties"]["LoggingConfig"]["LogGroup"]) == one(
        "root", group
    )


def test_the_dashboard_is_valid_json_showing_every_alarm() -> None:
    """Valid JSON listing every alarm the stack creates: with Container Insights (staging, prod)
    and without it (dev), where the three below-desired alarms do not exist."""
    text, variables = nested(MONITORING)["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    parameters = set(nested(MONITORING)["Parameters"])
    for name in sub_names(text):
        base = name.split(".")[0]
        assert base in parameters or base in alarms() or base in variables or base.startswith("AWS::"), name
    watch, with_counts, without = variables["TaskCountAlarms"]["Fn::If"]
    assert watch == "WatchTaskCounts"
    conditional = {name for name, alarm in alarms().items() if alarm.get("Condition") == "WatchTaskCounts"}
    assert conditional == {f"{service}BelowDesiredAlarm" for service in ("Worker", "Beat", "Realtime")}
    assert set(sub_names(with_counts["Fn::Sub"])) == {f"{name}.Arn" for name in conditional}
    for inserted, expected in (
        (with_counts["Fn::Sub"], alarms()),
        (without, {a for a in alarms() if a not in conditional}),
    ):
        body = text.replace("${TaskCountAlarms}", inserted)
        dashboard = json.loads(re.sub(r"\$\{[\w:.]+\}", "x", body))
        widgets = dashboard["widgets"]
        [alarm_widget] = [w for w in widgets if w["type"] == "alarm"]
        unlisted = {a for a in alarms() if alarms()[a].get("Condition") not in (None, "WatchTaskCounts")}
        assert len(alarm_widget["properties"]["alarms"]) == len(set(expected) - unlisted)
    shown = json.dumps(widgets)
    shown_metrics = ("QueuedTasks", "BeatHeartbeatAge", "RunningTaskCount", "5xx", "Throttles", "DatabaseConnections")
    for metric in (*shown_metrics, "CurrConnections", "AuthorizerErrors"):
        assert f'"{metric}"' in shown, metric
    assert Resource("root", "MonitoringStack").properties["Parameters"]["ContainerInsights"] == {
        "Ref": "ContainerInsights"
    }
    with deployed_as("dev"):
        assert not condition(MONITORING, "WatchTaskCounts")
    with deployed_as("prod"):
        assert condition(MONITORING, "WatchTaskCounts")


# ------------------------------------------------------------------ connections and concurrency


def aurora_max_connections(max_acu: float) -> int:
    """Aurora PostgreSQL's default: LEAST(DBInstanceClassMemory / 9531392, 5000), about 2 GiB per
    ACU at the maximum capacity; 10% less for the memory Aurora keeps (AWS measured 3,360 at 16 ACU)."""
    return int(min(max_acu * 2 * 1024**3 / 9531392, 5000) * 0.9)


def test_prods_reserved_concurrency_and_container_maxima_fit_the_proxys_connections(
    configure: Any,
) -> None:
    """Each execution environment or process holds at most one pool of pool_size + max_overflow;
    reserved concurrency caps the functions, the scaling maxima the containers."""
    from multidb import db

    configure(DATABASE_URL="postgresql+asyncpg://u:p@db.internal:5432/multidb")
    engine = db.get_engine()
    per_process = engine.pool.size() + engine.pool._max_overflow  # type: ignore[attr-defined]
    prod = stage_overrides()["prod"]
    root = template_of("root")["Parameters"]
    reserved = {  # each function reserving reads one parameter: its own (auth) or its kind's (API)
        name: int(prod[function.reserved_concurrency])
        for name, function in load().functions.items()
        if function.reserved_concurrency is not None
    }
    for name, function in functions().items():  # and every translated function that reserves is there
        assert ("ReservedConcurrentExecutions" in function["Properties"]) == (name in reserved), name
    assert all(count > 0 for count in reserved.values())
    processes = (
        sum(reserved.values())
        + 1  # the deploy function (migrations)
        + int(prod["WorkerMaxCount"]) * int(prod.get("WorkerConcurrency", root["WorkerConcurrency"]["Default"]))
        + int(prod["RealtimeMaxCount"])
        + 2  # beat, and its successor during a deploy
    )
    proxy = Resource("DataStack", "DatabaseProxyTargets").properties["ConnectionPoolConfigurationInfo"]
    allowed = aurora_max_connections(float(prod["DatabaseMaxCapacity"])) * proxy["MaxConnectionsPercent"] // 100
    assert processes * per_process <= allowed, (processes, per_process, allowed)
    assert sum(reserved.values()) <= 1000 - 100  # the default account limit keeps 100 unreserved
