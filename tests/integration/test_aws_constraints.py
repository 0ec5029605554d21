"""Every string the stacks send to an AWS API meets that API's own constraints, for every stage.

cfn-lint checks CloudFormation's resource schemas, which leave many API rules out: an
apostrophe in a security-group rule's description passes lint and checkov, and fails
`CreateSecurityGroup` half an hour into a first deploy. Here each stage's stacks are resolved
(tests/integration/deployed.py) and every property in FIELDS is checked against the field of
the API CloudFormation calls with it, as botocore's service model describes that field
(tests/integration/aws_models.py). `-s` prints what was checked.
"""

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.aws_models import (
    UntranslatablePattern,
    compiled,
    constraints,
    documentation,
    java_to_python,
    service,
    shape_at,
    transcribed,
)
from tests.integration.deployed import Deployment, stages

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the templates against AWS API models")]

# The apostrophe of finding 1 (issue 20), as services.yaml had it.
FINDING_1 = "No outbound traffic (the containers' group has the datastores)"


@dataclass(frozen=True)
class Field:
    resource: str  # CloudFormation type; "AWS::EC2::*" for every EC2 type
    property: str  # path in its Properties: `A.B`, `A[].B` (each item), `A.{key}` (each key of a map)
    api: str  # service:Operation:path of the input field it becomes; {rule} = the rule's peer kind


EC2_TAGGED = "AWS::EC2::*"
FIELDS = [
    # EC2: descriptions and tags (constraints stated in the documentation only)
    Field("AWS::EC2::SecurityGroup", "GroupDescription", "ec2:CreateSecurityGroup:Description"),
    Field(
        "AWS::EC2::SecurityGroup",
        "SecurityGroupIngress[].Description",
        "ec2:AuthorizeSecurityGroupIngress:IpPermissions[].{rule}[].Description",
    ),
    Field(
        "AWS::EC2::SecurityGroup",
        "SecurityGroupEgress[].Description",
        "ec2:AuthorizeSecurityGroupEgress:IpPermissions[].{rule}[].Description",
    ),
    Field(
        "AWS::EC2::SecurityGroupIngress",
        "Description",
        "ec2:AuthorizeSecurityGroupIngress:IpPermissions[].{rule}[].Description",
    ),
    Field(
        "AWS::EC2::SecurityGroupEgress",
        "Description",
        "ec2:AuthorizeSecurityGroupEgress:IpPermissions[].{rule}[].Description",
    ),
    Field(EC2_TAGGED, "Tags[].Key", "ec2:CreateTags:Tags[].Key"),
    Field(EC2_TAGGED, "Tags[].Value", "ec2:CreateTags:Tags[].Value"),
    # A launch template's tags for what it launches are the same EC2 tags, applied at launch.
    Field(
        "AWS::EC2::LaunchTemplate",
        "LaunchTemplateData.TagSpecifications[].Tags[].Key",
        "ec2:CreateTags:Tags[].Key",
    ),
    Field(
        "AWS::EC2::LaunchTemplate",
        "LaunchTemplateData.TagSpecifications[].Tags[].Value",
        "ec2:CreateTags:Tags[].Value",
    ),
    Field("AWS::EC2::FlowLog", "LogGroupName", "logs:CreateLogGroup:logGroupName"),
    # CloudWatch Logs
    Field("AWS::Logs::LogGroup", "LogGroupName", "logs:CreateLogGroup:logGroupName"),
    Field("AWS::Logs::MetricFilter", "LogGroupName", "logs:PutMetricFilter:logGroupName"),
    Field("AWS::Logs::MetricFilter", "FilterPattern", "logs:PutMetricFilter:filterPattern"),
    Field(
        "AWS::Logs::MetricFilter",
        "MetricTransformations[].MetricName",
        "logs:PutMetricFilter:metricTransformations[].metricName",
    ),
    Field(
        "AWS::Logs::MetricFilter",
        "MetricTransformations[].MetricNamespace",
        "logs:PutMetricFilter:metricTransformations[].metricNamespace",
    ),
    # Lambda
    Field("AWS::Lambda::Function", "Description", "lambda:CreateFunction:Description"),
    Field("AWS::Lambda::Function", "Handler", "lambda:CreateFunction:Handler"),
    Field("AWS::Lambda::Function", "LoggingConfig.LogGroup", "lambda:CreateFunction:LoggingConfig.LogGroup"),
    Field("AWS::Lambda::Function", "Environment.Variables.{key}", "lambda:CreateFunction:Environment.Variables.{key}"),
    Field("AWS::Lambda::Function", "Tags[].Key", "lambda:TagResource:Tags.{key}"),
    Field("AWS::Lambda::Function", "Tags[].Value", "lambda:TagResource:Tags.{value}"),
    Field("AWS::Lambda::LayerVersion", "LayerName", "lambda:PublishLayerVersion:LayerName"),
    Field("AWS::Lambda::LayerVersion", "Description", "lambda:PublishLayerVersion:Description"),
    Field("AWS::Lambda::Alias", "Name", "lambda:CreateAlias:Name"),
    # Secrets Manager and SSM (the parameter the deploy function writes and the functions read)
    Field("AWS::SecretsManager::Secret", "Name", "secretsmanager:CreateSecret:Name"),
    Field("AWS::SecretsManager::Secret", "Description", "secretsmanager:CreateSecret:Description"),
    Field("Custom::Keys", "PublicKeysParameter", "ssm:PutParameter:Name"),
    Field("AWS::Lambda::Function", "Environment.Variables.PUBLIC_KEYS_PARAMETER", "ssm:GetParameter:Name"),
    # CloudWatch alarms and dashboards, SNS
    Field("AWS::CloudWatch::Alarm", "AlarmName", "cloudwatch:PutMetricAlarm:AlarmName"),
    Field("AWS::CloudWatch::Alarm", "AlarmDescription", "cloudwatch:PutMetricAlarm:AlarmDescription"),
    Field("AWS::CloudWatch::Alarm", "Namespace", "cloudwatch:PutMetricAlarm:Namespace"),
    Field("AWS::CloudWatch::Alarm", "MetricName", "cloudwatch:PutMetricAlarm:MetricName"),
    Field("AWS::CloudWatch::Alarm", "Dimensions[].Name", "cloudwatch:PutMetricAlarm:Dimensions[].Name"),
    Field("AWS::CloudWatch::Alarm", "Dimensions[].Value", "cloudwatch:PutMetricAlarm:Dimensions[].Value"),
    Field("AWS::CloudWatch::Alarm", "Metrics[].Id", "cloudwatch:PutMetricAlarm:Metrics[].Id"),
    Field("AWS::CloudWatch::Alarm", "Metrics[].Expression", "cloudwatch:PutMetricAlarm:Metrics[].Expression"),
    Field(
        "AWS::CloudWatch::Alarm",
        "Metrics[].MetricStat.Metric.Namespace",
        "cloudwatch:PutMetricAlarm:Metrics[].MetricStat.Metric.Namespace",
    ),
    Field(
        "AWS::CloudWatch::Alarm",
        "Metrics[].MetricStat.Metric.MetricName",
        "cloudwatch:PutMetricAlarm:Metrics[].MetricStat.Metric.MetricName",
    ),
    Field(
        "AWS::CloudWatch::Alarm",
        "Metrics[].MetricStat.Metric.Dimensions[].Name",
        "cloudwatch:PutMetricAlarm:Metrics[].MetricStat.Metric.Dimensions[].Name",
    ),
    Field(
        "AWS::CloudWatch::Alarm",
        "Metrics[].MetricStat.Metric.Dimensions[].Value",
        "cloudwatch:PutMetricAlarm:Metrics[].MetricStat.Metric.Dimensions[].Value",
    ),
    Field("AWS::CloudWatch::Dashboard", "DashboardName", "cloudwatch:PutDashboard:DashboardName"),
    Field("AWS::SNS::Topic", "TopicName", "sns:CreateTopic:Name"),
    # ECS, ECR, Application Auto Scaling, load balancing
    Field("AWS::ECS::Cluster", "ClusterName", "ecs:CreateCluster:clusterName"),
    Field("AWS::ECS::Service", "ServiceName", "ecs:CreateService:serviceName"),
    Field("AWS::ECS::TaskDefinition", "Family", "ecs:RegisterTaskDefinition:family"),
    Field(
        "AWS::ECS::TaskDefinition",
        "ContainerDefinitions[].Name",
        "ecs:RegisterTaskDefinition:containerDefinitions[].name",
    ),
    Field(
        "AWS::ECS::TaskDefinition",
        "ContainerDefinitions[].LogConfiguration.Options.awslogs-group",
        "logs:CreateLogGroup:logGroupName",
    ),
    Field("AWS::ECR::Repository", "RepositoryName", "ecr:CreateRepository:repositoryName"),
    Field(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "ResourceId",
        "application-autoscaling:RegisterScalableTarget:ResourceId",
    ),
    Field(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "PolicyName",
        "application-autoscaling:PutScalingPolicy:PolicyName",
    ),
    *(
        Field(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            f"TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics[].{member}",
            "application-autoscaling:PutScalingPolicy:TargetTrackingScalingPolicyConfiguration."
            f"CustomizedMetricSpecification.Metrics[].{member}",
        )
        for member in ("Id", "Label", "Expression")
    ),
    Field(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "LoadBalancerAttributes[].Key",
        "elbv2:ModifyLoadBalancerAttributes:Attributes[].Key",
    ),
    Field(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "TargetGroupAttributes[].Key",
        "elbv2:ModifyTargetGroupAttributes:Attributes[].Key",
    ),
    Field("AWS::ElasticLoadBalancingV2::TargetGroup", "HealthCheckPath", "elbv2:CreateTargetGroup:HealthCheckPath"),
    # Databases
    Field("AWS::RDS::DBCluster", "DBClusterIdentifier", "rds:CreateDBCluster:DBClusterIdentifier"),
    Field("AWS::RDS::DBProxy", "DBProxyName", "rds:CreateDBProxy:DBProxyName"),
    Field("AWS::DocDB::DBCluster", "DBClusterIdentifier", "docdb:CreateDBCluster:DBClusterIdentifier"),
    # EventBridge, IAM, API Gateway
    Field("AWS::Events::Rule", "Description", "events:PutRule:Description"),
    Field("AWS::Events::Rule", "ScheduleExpression", "events:PutRule:ScheduleExpression"),
    Field("AWS::Events::Rule", "Targets[].Id", "events:PutTargets:Targets[].Id"),
    Field("AWS::IAM::Role", "Tags[].Key", "iam:CreateRole:Tags[].Key"),
    Field("AWS::IAM::Role", "Tags[].Value", "iam:CreateRole:Tags[].Value"),
    Field("AWS::ApiGatewayV2::Stage", "StageName", "apigatewayv2:CreateStage:StageName"),
]

# A rule's peer decides which list of IpPermissions its description goes into.
_RULE_KINDS = {
    "CidrIp": "IpRanges",
    "CidrIpv6": "Ipv6Ranges",
    "SourceSecurityGroupId": "UserIdGroupPairs",
    "DestinationSecurityGroupId": "UserIdGroupPairs",
    "SourceSecurityGroupName": "UserIdGroupPairs",
    "SourcePrefixListId": "PrefixListIds",
    "DestinationPrefixListId": "PrefixListIds",
}


def values_at(properties: Any, path: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(concrete path, value, the mapping holding it) for each value at `path`."""

    def walk(node: Any, tokens: list[str], where: str, parent: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
        if not tokens:
            yield where, node, parent
            return
        token, rest = tokens[0], tokens[1:]
        if token == "{key}":
            for key in node if isinstance(node, dict) else []:
                yield f"{where}.{key}", key, node
            return
        name, listed = token.removesuffix("[]"), token.endswith("[]")
        if not isinstance(node, dict) or name not in node:
            return
        child, at = node[name], f"{where}.{name}" if where else name
        if not listed:
            yield from walk(child, rest, at, node)
            return
        for index, item in enumerate(child if isinstance(child, list) else []):
            yield from walk(item, rest, f"{at}[{index}]", item if isinstance(item, dict) else node)

    yield from walk(properties, path.split("."), "", properties)


def rule_kind(rule: dict[str, Any]) -> str:
    kinds = {kind for key, kind in _RULE_KINDS.items() if key in rule}
    assert len(kinds) == 1, rule
    return kinds.pop()


@dataclass(frozen=True)
class Checked:
    where: str  # stage stack.Resource Property[0].Path
    value: str
    api: str
    failed: tuple[str, ...]  # the constraints it breaks
    assumed: tuple[str, ...]  # the stand-ins in the value


def check(deployment: Deployment) -> list[Checked]:
    results = []
    for stack, name, definition in deployment.resources():
        kind = definition["Type"]
        for mapped in FIELDS:
            if mapped.resource not in (kind, "AWS::EC2::*" if kind.startswith("AWS::EC2::") else None):
                continue
            top = mapped.property.split(".")[0].removesuffix("[]")
            raw = definition.get("Properties") or {}
            if top not in raw:
                continue
            with deployment.tracking() as assumed:  # resolved alone, so its stand-ins are its own
                properties = deployment.resolve(stack, {top: raw[top]})
            for where, value, holder in values_at(properties, mapped.property):
                rule = raw if holder is properties else holder  # a rule resource's peer is beside the property
                api = mapped.api.replace("{rule}", rule_kind(rule)) if "{rule}" in mapped.api else mapped.api
                text = value if isinstance(value, str) else str(value)
                failed = tuple(f"{c.source}: {c.rule}" for c in constraints(api) if not c.holds(text))
                results.append(
                    Checked(f"{deployment.stage.name} {stack}.{name} {where}", text, api, failed, tuple(assumed))
                )
    return results


def report(results: list[Checked]) -> str:
    lines = []
    for result in results:
        mark = "FAIL" if result.failed else "ok"
        lines.append(f"{mark:4} {result.where} = {result.value!r} -> {result.api}")
        lines += [f"       breaks {failure}" for failure in result.failed]
        if result.assumed:
            lines.append(f"       stand-ins: {', '.join(result.assumed)}")
    return "\n".join(lines)


# ------------------------------------------------------------------ the stacks, per stage


@pytest.mark.parametrize("stage", stages(), ids=lambda stage: stage.name)
def test_every_string_the_stacks_send_meets_its_api_constraints(stage: Any) -> None:
    results = check(Deployment(stage))
    print(report(results))
    failures = [r for r in results if r.failed]
    assert not failures, report(failures)
    checked = {r.api.split(":")[1] for r in results}
    # Not vacuous: the kinds of field the issue names were all reached.
    assert {"CreateSecurityGroup", "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"} <= checked
    assert {"CreateTags", "CreateLogGroup", "CreateSecret", "PutParameter", "PutMetricAlarm"} <= checked
    assert len(results) > 150


def test_each_stage_resolves_to_its_own_names_and_conditions() -> None:
    """The resolution the check relies on: samconfig's parameters, the root's values passed to nested stacks."""
    by_stage = {stage.name: Deployment(stage) for stage in stages()}
    for name, deployment in by_stage.items():
        keys = deployment.templates["root"]["Resources"]["KeysResource"]["Properties"]["PublicKeysParameter"]
        assert deployment.resolve("root", keys) == f"/multidb-{name}/jwt-public-keys"
        group = deployment.templates["ServicesStack"]["Resources"]["RealtimeSecurityGroup"]["Properties"]
        assert deployment.resolve("ServicesStack", group["GroupDescription"]).startswith(f"multidb-{name} ")
        cidr = deployment.templates["NetworkStack"]["Resources"]["PrivateSubnet2"]["Properties"]["CidrBlock"]
        assert deployment.resolve("NetworkStack", cidr) == "10.40.16.0/20"
    assert by_stage["prod"].condition("DataStack", "MultiAzEnabled")
    assert not by_stage["dev"].condition("DataStack", "MultiAzEnabled")


def test_the_check_names_the_apostrophe_of_finding_1() -> None:
    """The description as services.yaml had it: EC2 refuses the apostrophe, so the check must."""
    deployment = Deployment(stages()[0])
    deployment.templates = copy.deepcopy(deployment.templates)
    group = deployment.templates["ServicesStack"]["Resources"]["RealtimeSecurityGroup"]["Properties"]
    group["SecurityGroupEgress"] = [
        {"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32", "Description": FINDING_1}
    ]
    failures = [r for r in check(deployment) if r.failed]
    assert [r.where for r in failures] == ["dev ServicesStack.RealtimeSecurityGroup SecurityGroupEgress[0].Description"]
    (failure,) = failures
    assert failure.api == "ec2:AuthorizeSecurityGroupEgress:IpPermissions[].IpRanges[].Description"
    assert failure.failed == (
        "documented: Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*: only "
        "'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*'",
    )


def test_a_name_too_long_or_a_tag_reserved_for_aws_is_named_too() -> None:
    deployment = Deployment(stages()[0])
    deployment.templates = copy.deepcopy(deployment.templates)
    network = deployment.templates["NetworkStack"]["Resources"]
    network["Vpc"]["Properties"]["Tags"] = [{"Key": "aws:owner", "Value": "x" * 257}]
    network["FlowLogGroup"]["Properties"]["LogGroupName"] = "/aws/vpc/flow log"
    failures = {r.where.split(" ", 1)[1]: r.failed for r in check(deployment) if r.failed}
    assert failures == {
        "NetworkStack.Vpc Tags[0].Key": ("documented: May not begin with aws:: not aws:…",),
        "NetworkStack.Vpc Tags[0].Value": ("documented: accept a maximum of 256 Unicode characters: length <= 256",),
        "NetworkStack.FlowLogGroup LogGroupName": ("pattern: [\\.\\-_/#A-Za-z0-9]+",),
        "NetworkStack.FlowLog LogGroupName": ("pattern: [\\.\\-_/#A-Za-z0-9]+",),  # the same group, by its Ref
    }


def test_every_mapped_field_is_a_real_api_field_with_a_constraint() -> None:
    for mapped in FIELDS:
        for kind in ("IpRanges", "UserIdGroupPairs") if "{rule}" in mapped.api else ("",):
            api = mapped.api.replace("{rule}", kind)
            shape_at(api)  # raises on a wrong path
            assert constraints(api), f"{api} has no constraint in the model: drop it from FIELDS"


def test_ec2_descriptions_allow_what_the_documentation_lists() -> None:
    """Parsed from the model's own sentence, so a rule-by-rule difference shows (`&` is not allowed beside a group)."""
    by_range = constraints("ec2:AuthorizeSecurityGroupIngress:IpPermissions[].IpRanges[].Description")
    by_group = constraints("ec2:AuthorizeSecurityGroupIngress:IpPermissions[].UserIdGroupPairs[].Description")
    for text, ranged, grouped in (
        ("HTTPS to AWS APIs (endpoints or NAT)", True, True),
        ("Cats & dogs", True, False),
        ("it's", False, False),
        ('say "hi"', False, False),
        ("x" * 256, False, False),
        ("café", False, False),
    ):
        assert all(c.holds(text) for c in by_range) is ranged, text
        assert all(c.holds(text) for c in by_group) is grouped, text


# ------------------------------------------------------------------ the translation of Java patterns


@pytest.mark.parametrize(
    ("pattern", "accepted", "refused"),
    [
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", ["Größe 1", "a:b/c=d+e-f@g", "日本", ""], ["it's", "a\tb", "a*b"]),
        (r"\p{Print}+", ["a b~", "!"], ["", "a\tb", "é"]),
        (r"[\w-_]*", ["a-b_c"], ["a.b", "é"]),  # Java: the '-' after \w is literal
        (r"^[!#$%&'*+-.^_`|~0-9a-zA-Z]+$", ["x-y.z"], ["a b"]),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*", ["ok 😀\t"], ["\x01", "\ufffe"]),
        (r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)", ["live", "v1"], ["123", "a b"]),
        (r"[^:].*", ["multidb/x"], [":x"]),
        (r"[\.\-_/#A-Za-z0-9]+", ["/aws/lambda/multidb-dev/auth"], ["/aws/lambda/a b", "a'b"]),
    ],
)
def test_java_patterns_keep_their_meaning(pattern: str, accepted: list[str], refused: list[str]) -> None:
    regex = compiled(pattern)
    for text in accepted:
        assert regex.fullmatch(text), (pattern, text)
    for text in refused:
        assert not regex.fullmatch(text), (pattern, text)


@pytest.mark.parametrize("pattern", [r"[a-z&&[^e]]", r"a++", r"\Qa.b\E", r"[\P{L}]", r"\uD800x", r"\p{Foo}"])
def test_java_constructs_without_a_translation_are_refused(pattern: str) -> None:
    with pytest.raises(UntranslatablePattern):
        java_to_python(pattern)


def test_every_pattern_of_the_mapped_services_translates() -> None:
    """No pattern of a service in FIELDS is left to chance: each compiles (or the translation says why not)."""
    count = 0
    for name in sorted({mapped.api.split(":")[0] for mapped in FIELDS}):
        for shape_name in service(name).shape_names:
            pattern = service(name).shape_for(shape_name).metadata.get("pattern")
            if pattern is not None:
                compiled(pattern)
                count += 1
    assert count > 100


def test_every_transcribed_constraint_still_reads_so_in_the_model() -> None:
    for api, sentence in transcribed():
        assert " ".join(sentence.split()) in documentation(shape_at(api)), (api, sentence)
        assert re.sub(r"\s+", " ", sentence).strip() == sentence
