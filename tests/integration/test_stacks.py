"""The deployed shape, proven offline: linted, scanned, and wired as the contracts say.

The wiring tests follow references through the translated root template and its nested
stacks (a parameter to its value in the parent, a nested output to its value in the
child) in the default scenario, where the stack creates everything.
"""

import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.deploy.template import _CfnLoader, load
from multidb.settings import CONNECTION_FIELDS, FIELDS, parse
from tests.helpers import ROOT
from tests.integration.test_template import SAM_VENV, run, translated

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the templates")]

STACKS = ROOT / "infra" / "deploy" / "stacks"
NESTED = {
    "NetworkStack": STACKS / "network.yaml",
    "DataStack": STACKS / "data.yaml",
    "ServicesStack": STACKS / "services.yaml",
    "MonitoringStack": STACKS / "monitoring.yaml",
    "ConsoleStack": STACKS / "console.yaml",
}
TEMPLATES = ["template.yaml", *(str(path.relative_to(ROOT)) for path in NESTED.values())]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
PLACEHOLDER_ACCOUNT = "123456789012"


# ------------------------------------------------------------------ linters and scanners


def test_cfn_lint_with_every_rule_passes_on_the_root_and_each_nested_template() -> None:
    """`-c I` adds the informational rules to the errors and warnings; any finding fails."""
    result = run(
        str(SAM_VENV / "cfn-lint"), "--include-checks", "I", "--non-zero-exit-code", "informational", "--", *TEMPLATES
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_root_nests_each_local_template() -> None:
    resources = translated()["template"]["Resources"]
    for name, path in NESTED.items():
        assert resources[name]["Type"] == "AWS::CloudFormation::Stack"
        assert resources[name]["Properties"]["TemplateURL"].endswith(str(path.relative_to(ROOT)))


@pytest.fixture(scope="module")
def translated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("translated") / "template.translated.json"
    path.write_text(json.dumps(translated()["template"]))
    return path


def test_checkov_finds_nothing_in_the_source_and_translated_templates(translated_file: Path) -> None:
    files = [*TEMPLATES, str(translated_file)]
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "--output", "json", *(f"--file={f}" for f in files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, failed
    assert sum(report["summary"]["passed"] for report in reports) > 200
    assert sum(report["summary"]["resource_count"] for report in reports) > 140  # every file was read
    assert "Failed to run check" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0


def test_every_checkov_skip_gives_its_reason() -> None:
    lines = [line for line in CHECKOV_CONFIG.read_text().splitlines() if line.strip().startswith("- CKV")]
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    assert len(lines) == len(config["skip-check"]) > 0
    for line in lines:
        check, _, reason = line.strip().removeprefix("- ").partition("#")
        assert re.fullmatch(r"CKV2?_AWS_\d+", check.strip()), line
        assert len(reason.strip()) > 60, f"{check.strip()} needs its reason"


def test_a_check_skipped_on_one_resource_only_says_why_there() -> None:
    """Checks skipped in a resource's own metadata, so they still hold everywhere else: only the
    plain-HTTP listener and its port-80 rule, which exist only without a certificate (refused
    for prod), the NAT instance's public address (it is the private subnets' way out), and the
    console's distribution's web ACL, access log and default certificate's TLS floor."""
    skipped = {}
    for stack in ("root", *NESTED):
        for name, resource in template_of(stack)["Resources"].items():
            for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
                assert len(skip["comment"]) > 60, (stack, name, skip["id"])
                skipped.setdefault(f"{stack}.{name}", set()).add(skip["id"])
    assert skipped == {
        "ServicesStack.HttpListener": {"CKV_AWS_2", "CKV_AWS_103"},
        "ServicesStack.LoadBalancerHttpIngress": {"CKV_AWS_260"},
        "NetworkStack.NatInstanceResource": {"CKV_AWS_88"},
        "ConsoleStack.Distribution": {"CKV_AWS_68", "CKV_AWS_86", "CKV_AWS_174"},
    }
    for name in ("HttpListener", "LoadBalancerHttpIngress"):
        assert template_of("ServicesStack")["Resources"][name]["Condition"] == "PlainHttp"
    assert condition("ServicesStack", "PlainHttp")  # the default: no certificate given
    rule = template_of("root")["Rules"]["ProductionSocketsUseTls"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RealtimeCertificateArn"}, ""]}]}


# ------------------------------------------------------------------ reference resolution


@cache
def nested(name: str) -> dict[str, Any]:
    return yaml.load(NESTED[name].read_text(), Loader=_CfnLoader)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Resource:
    stack: str  # "root" or the nested stack's logical id
    name: str

    @property
    def definition(self) -> dict[str, Any]:
        return template_of(self.stack)["Resources"][self.name]  # type: ignore[no-any-return]

    @property
    def type(self) -> str:
        return str(self.definition["Type"])

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.definition.get("Properties") or {})


def template_of(stack: str) -> dict[str, Any]:
    return translated()["template"] if stack == "root" else nested(stack)  # type: ignore[no-any-return]


def condition(stack: str, name: str) -> bool:
    return bool(evaluate(stack, template_of(stack)["Conditions"][name]))


# The root's parameters a test deploys with (a stage's samconfig.toml list); empty = the defaults.
SCENARIO: dict[str, str] = {}


@contextmanager
def deployed_as(stage: str) -> Iterator[dict[str, str]]:
    """Evaluate conditions and parameters as `sam deploy --config-env <stage>` passes them."""
    SCENARIO.clear()
    SCENARIO.update(stage_overrides()[stage])
    try:
        yield SCENARIO
    finally:
        SCENARIO.clear()


def evaluate(stack: str, value: Any) -> Any:
    """A condition's or parameter's value in the scenario (by default: the stack creates everything)."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, args),) = value.items()
        if key == "Fn::Equals":  # CloudFormation compares the values as strings
            return str(evaluate(stack, args[0])) == str(evaluate(stack, args[1]))
        if key == "Fn::Not":
            return not evaluate(stack, args[0])
        if key == "Fn::And":
            return all(evaluate(stack, arg) for arg in args)
        if key == "Fn::Or":
            return any(evaluate(stack, arg) for arg in args)
        if key in ("Condition", "Fn::Condition"):  # the YAML loader names `!Condition` Fn::Condition
            return condition(stack, args)
        if key == "Fn::If":
            name, then, otherwise = args
            return evaluate(stack, then if condition(stack, name) else otherwise)
        if key == "Fn::Join":
            return args[0].join(str(evaluate(stack, part)) for part in evaluate(stack, args[1]))
        if key == "Ref" and args in template_of(stack).get("Parameters", {}):
            return parameter_value(stack, args)
    return value


def parameter_value(stack: str, name: str) -> Any:
    if stack == "root":
        spec = template_of("root")["Parameters"][name]
        default = SCENARIO.get(name, spec.get("Default", ""))
        return [p for p in str(default).split(",") if p] if "List" in spec["Type"] else default
    passed = Resource("root", stack).properties["Parameters"].get(name)
    return evaluate("root", passed) if passed is not None else template_of(stack)["Parameters"][name].get("Default", "")


def origins(stack: str, value: Any) -> list[Any]:
    """What a value comes from: the resources it names (a list for lists), or literal strings."""
    if isinstance(value, list):
        return [origin for item in value for origin in origins(stack, item)]
    if not isinstance(value, dict) or len(value) != 1:
        return [value]
    ((key, args),) = value.items()
    parameters = template_of(stack).get("Parameters", {})
    if key == "Ref":
        if args.startswith("AWS::"):
            return [args]
        if args in parameters:
            if stack == "root":
                return [parameter_value("root", args)]
            return origins("root", Resource("root", stack).properties["Parameters"][args])
        return [Resource(stack, args)]
    if key == "Fn::GetAtt":
        target, attribute = args.split(".", 1) if isinstance(args, str) else args
        if attribute.startswith("Outputs.") and target in NESTED:
            return origins(target, nested(target)["Outputs"][attribute.removeprefix("Outputs.")]["Value"])
        return [Resource(stack, target)]
    if key == "Fn::If":
        name, then, otherwise = args
        return origins(stack, then if condition(stack, name) else otherwise)
    if key in ("Fn::Split", "Fn::Join"):
        return origins(stack, args[1])
    if key == "Fn::Sub" and isinstance(args, list) and re.fullmatch(r"\$\{\w+\}", args[0]):
        return origins(stack, args[1][args[0][2:-1]])  # SAM's policy templates: Sub ["${secretArn}", {…}]
    return [value]


def one(stack: str, value: Any) -> Any:
    found = origins(stack, value)
    assert len(found) == 1, found
    return found[0]


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in translated()["template"]["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


# ------------------------------------------------------------------ network


def is_private(subnet: Resource) -> bool:
    network = template_of(subnet.stack)["Resources"]
    tables = [
        one(subnet.stack, r["Properties"]["RouteTableId"])
        for r in network.values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
        and one(subnet.stack, r["Properties"]["SubnetId"]) == subnet
    ]
    assert len(tables) == 1, subnet
    routes = [
        r["Properties"]
        for r in network.values()
        if r["Type"] == "AWS::EC2::Route" and one(subnet.stack, r["Properties"]["RouteTableId"]) == tables[0]
    ]
    return subnet.properties["MapPublicIpOnLaunch"] is False and not any("GatewayId" in r for r in routes)


def test_every_function_that_reaches_a_datastore_runs_in_the_private_subnets_with_the_functions_group() -> None:
    function_group = Resource("NetworkStack", "FunctionSecurityGroup")
    assert function_group.type == "AWS::EC2::SecurityGroup"
    for name, function in functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert "CONNECTIONS_SECRET_ID" in variables, name  # every function reads the datastores' URLs
        vpc = function["Properties"]["VpcConfig"]
        subnets = origins("root", vpc["SubnetIds"])
        assert len(subnets) == 2, name
        assert all(isinstance(s, Resource) and s.type == "AWS::EC2::Subnet" and is_private(s) for s in subnets), name
        zones = {json.dumps(s.properties["AvailabilityZone"]) for s in subnets}
        assert len(zones) == 2, name  # two Availability Zones
        assert origins("root", vpc["SecurityGroupIds"]) == [function_group], name


def test_the_public_subnets_route_to_the_internet_and_hold_no_function() -> None:
    for name in ("PublicSubnet1", "PublicSubnet2"):
        assert not is_private(Resource("NetworkStack", name))


def test_the_s3_endpoint_lets_custom_resources_answer_cloudformation() -> None:
    endpoint = Resource("NetworkStack", "S3Endpoint").properties
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert one("NetworkStack", endpoint["RouteTableIds"]) == Resource("NetworkStack", "PrivateRouteTable")
    statements = {s["Sid"]: s for s in endpoint["PolicyDocument"]["Statement"]}
    response = statements["CloudFormationResponses"]
    assert response["Action"] == "s3:PutObject"
    text, variables = response["Resource"]["Fn::Sub"]
    assert text.endswith(":s3:::cloudformation-custom-resource-response-${Region}/*")
    assert variables["Region"] == {
        "Fn::Join": ["", {"Fn::Split": ["-", {"Ref": "AWS::Region"}]}]
    }  # us-east-1 → useast1
    files = statements["FilesBucketObjects"]["Resource"]
    assert origins("NetworkStack", files) == [files]  # a Sub over the bucket's ARN parameter…
    assert Resource("root", "NetworkStack").properties["Parameters"]["FilesBucketArn"] == {
        "Fn::GetAtt": ["FilesBucket", "Arn"]
    }


def test_the_bucket_lets_a_browser_send_every_header_an_upload_url_signs() -> None:
    """A browser's preflight names each header of `upload_headers`; S3 answers 403 to any not listed."""
    from multidb.files.storage import upload_headers

    (rule,) = Resource("root", "FilesBucket").properties["CorsConfiguration"]["CorsRules"]
    assert {name.lower() for name in upload_headers("text/plain")} <= set(rule["AllowedHeaders"])
    assert set(rule["AllowedMethods"]) == {"GET", "PUT"}
    assert "etag" in rule["ExposedHeaders"]  # a multipart client completes with each part's ETag


def test_interface_endpoints_serve_every_aws_api_the_private_subnets_need() -> None:
    services = {
        r.properties["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1]
        for name in nested("NetworkStack")["Resources"]
        if (r := Resource("NetworkStack", name)).type == "AWS::EC2::VPCEndpoint"
    }
    # ecr.api, ecr.dkr: what runs privately calls, and nothing else ($0.01 per AZ-hour each).
    # Nothing calls STS: functions and tasks get their credentials from their runtimes.
    assert services == {"s3", "secretsmanager", "ssm", "api", "dkr", "logs"}
    nat = nested("NetworkStack")["Resources"]["NatGatewayResource"]
    assert nat["Condition"] == "CreateNat"
    assert not condition("NetworkStack", "CreateNat")  # only where a parameter asks


def test_the_nat_instance_forwards_for_the_vpc_only_and_is_the_private_subnets_default_route() -> None:
    """dev's NAT instance: the smallest arm64 instance on the current Amazon Linux 2023, a public
    address in a public subnet, no source/destination check, IMDSv2 only, an encrypted gp3 root
    volume of the AMI's 8 GB, EC2's automatic recovery, forwarding and masquerading that survive
    a reboot, admitting the VPC only; ready (signalled) before the private route points at it."""
    network = nested("NetworkStack")
    assert network["Parameters"]["NatInstanceImage"] == {
        "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
        "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
        "Description": network["Parameters"]["NatInstanceImage"]["Description"],
    }
    instance = Resource("NetworkStack", "NatInstanceResource")
    assert instance.definition["Condition"] == "CreateNatInstance"
    properties = instance.properties
    assert properties["ImageId"] == {"Ref": "NatInstanceImage"}
    assert properties["InstanceType"] == "t4g.nano"
    assert properties["SourceDestCheck"] is False
    [interface] = properties["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is True
    subnet = one("NetworkStack", interface["SubnetId"])
    assert subnet == Resource("NetworkStack", "PublicSubnet1")
    assert not is_private(subnet)
    [group] = [one("NetworkStack", g) for g in interface["GroupSet"]]
    rules = group.properties["SecurityGroupIngress"]
    assert rules
    assert all(rule["CidrIp"] == {"Fn::GetAtt": ["Vpc", "CidrBlock"]} for rule in rules)
    assert {(r["FromPort"], r["ToPort"]) for r in rules} == {(443, 443), (5432, 5432), (6379, 6379), (27017, 27017)}
    template = one("NetworkStack", properties["LaunchTemplate"]["LaunchTemplateId"])
    data = template.properties["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    [root_volume] = data["BlockDeviceMappings"]
    assert root_volume["DeviceName"] == "/dev/xvda"  # Amazon Linux 2023's root device
    assert root_volume["Ebs"] == {"VolumeType": "gp3", "VolumeSize": 8, "Encrypted": True, "DeleteOnTermination": True}
    assert data["MaintenanceOptions"] == {"AutoRecovery": "default"}
    assert data["CreditSpecification"] == {"CpuCredits": "standard"}  # the bill cannot grow with credits
    script = properties["UserData"]["Fn::Base64"]["Fn::Sub"]
    for line in (
        "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-nat-instance.conf",  # kept across reboots
        "systemctl enable --now iptables",
        "-j MASQUERADE",
        "iptables -F FORWARD",
        "service iptables save",  # the saved rules the iptables service loads at boot
        "--resource NatInstanceResource",
    ):
        assert line in script, line
    assert instance.definition["CreationPolicy"] == {"ResourceSignal": {"Count": 1, "Timeout": "PT10M"}}
    # the host's failures are recovered by EC2; the OS's by a reboot on its failed status check
    reboot = network["Resources"]["NatInstanceRebootAlarm"]
    assert reboot["Condition"] == "CreateNatInstance"
    assert reboot["Properties"]["MetricName"] == "StatusCheckFailed_Instance"
    assert reboot["Properties"]["Dimensions"] == [{"Name": "InstanceId", "Value": {"Ref": "NatInstanceResource"}}]
    assert reboot["Properties"]["AlarmActions"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:automate:${AWS::Region}:ec2:reboot"}
    ]
    routes = [
        r for r in network["Resources"].values() if r["Type"] == "AWS::EC2::Route" and "InstanceId" in r["Properties"]
    ]
    assert [r["Properties"] for r in routes] == [
        {
            "RouteTableId": {"Ref": "PrivateRouteTable"},
            "DestinationCidrBlock": "0.0.0.0/0",
            "InstanceId": {"Ref": "NatInstanceResource"},
        }
    ]
    assert routes[0]["Condition"] == "CreateNatInstance"
    private = {
        one("NetworkStack", r["Properties"]["SubnetId"])
        for r in network["Resources"].values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"
        and r["Properties"]["RouteTableId"] == {"Ref": "PrivateRouteTable"}
    }
    assert private == {Resource("NetworkStack", "PrivateSubnet1"), Resource("NetworkStack", "PrivateSubnet2")}


# ------------------------------------------------------------------ datastores

DATASTORE_PORTS = {
    "AWS::RDS::DBProxy": ("VpcSecurityGroupIds", 5432),
    "AWS::ElastiCache::ReplicationGroup": ("SecurityGroupIds", 6379),
    "AWS::DocDB::DBCluster": ("VpcSecurityGroupIds", 27017),
}


def ingress(group: Resource) -> set[tuple[int, int, Any]]:
    """Every rule letting traffic into the group: (from port, to port, source)."""
    data = template_of(group.stack)["Resources"]
    given = group.properties.get("SecurityGroupIngress", [])
    if isinstance(given, dict):  # chosen by a condition: {"Fn::If": [name, then, else]}
        name, then, otherwise = given["Fn::If"]
        given = then if condition(group.stack, name) else otherwise
    rules = list(given)
    rules += [
        r["Properties"]
        for r in data.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress" and one(group.stack, r["Properties"]["GroupId"]) == group
    ]
    found = set()
    for rule in rules:
        assert "CidrIp" not in rule, group  # groups only, never addresses
        assert "CidrIpv6" not in rule, group
        assert rule["IpProtocol"] == "tcp", group
        found.add((rule["FromPort"], rule["ToPort"], one(group.stack, rule["SourceSecurityGroupId"])))
    return found


def test_each_datastore_admits_only_the_functions_and_the_containers_on_its_one_port() -> None:
    clients = {Resource("NetworkStack", "FunctionSecurityGroup"), Resource("NetworkStack", "ContainerSecurityGroup")}
    seen = set()
    for name, definition in nested("DataStack")["Resources"].items():
        if definition["Type"] not in DATASTORE_PORTS:
            continue
        key, port = DATASTORE_PORTS[definition["Type"]]
        [group] = origins("DataStack", definition["Properties"][key])
        assert ingress(group) == {(port, port, client) for client in clients}, name
        seen.add(definition["Type"])
    assert seen == set(DATASTORE_PORTS)


def test_the_aurora_cluster_admits_only_its_proxy() -> None:
    cluster = Resource("DataStack", "DatabaseCluster")
    [group] = origins("DataStack", cluster.properties["VpcSecurityGroupIds"])
    [proxy_group] = origins("DataStack", Resource("DataStack", "DatabaseProxy").properties["VpcSecurityGroupIds"])
    assert ingress(group) == {(5432, 5432, proxy_group)}


def test_the_proxy_sends_only_to_the_clusters_port_and_has_no_default_egress() -> None:
    """A group stating no egress gets allow-all; the proxy's states a rule matching nothing, and
    its one real rule goes to the cluster's group on 5432."""
    proxy_group = Resource("DataStack", "DatabaseProxySecurityGroup")
    [placeholder] = proxy_group.properties["SecurityGroupEgress"]
    assert placeholder["CidrIp"] == "255.255.255.255/32"
    assert placeholder["IpProtocol"] == "icmp"
    rules = [
        r["Properties"]
        for r in nested("DataStack")["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress" and one("DataStack", r["Properties"]["GroupId"]) == proxy_group
    ]
    assert len(rules) == 1
    [rule] = rules
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 5432, 5432)
    assert one("DataStack", rule["DestinationSecurityGroupId"]) == Resource("DataStack", "DatabaseSecurityGroup")
    assert "CidrIp" not in rule
    for name, resource in nested("DataStack")["Resources"].items():  # no datastore group keeps allow-all either
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            assert resource["Properties"].get("SecurityGroupEgress"), name


def test_dev_reaches_aurora_directly_so_it_can_pause_and_staging_and_prod_keep_the_proxy() -> None:
    """The URL the functions read points at the cluster (TLS verified) in dev and at the proxy
    elsewhere; without the proxy the cluster admits the clients, with it only the proxy."""
    clients = {Resource("NetworkStack", "FunctionSecurityGroup"), Resource("NetworkStack", "ContainerSecurityGroup")}
    cluster_group = Resource("DataStack", "DatabaseSecurityGroup")
    scaling = Resource("DataStack", "DatabaseCluster").properties["ServerlessV2ScalingConfiguration"]
    assert scaling["SecondsUntilAutoPause"] == {
        "Fn::If": ["AutoPause", {"Ref": "DatabaseAutoPauseSeconds"}, {"Ref": "AWS::NoValue"}]
    }
    proxied = ("DatabaseProxy", "DatabaseProxyTargets", "DatabaseProxyRole", "DatabaseProxySecurityGroup")
    for name in proxied:
        assert nested("DataStack")["Resources"][name]["Condition"] == "CreateProxy", name
    with deployed_as("dev"):
        assert not condition("DataStack", "CreateProxy")
        assert condition("DataStack", "DirectDatabase")
        assert condition("DataStack", "AutoPause")
        assert condition("DataStack", "DocumentDbServerless")
        url = connections()["database_url"]
        assert url.endswith("@${DatabaseCluster.Endpoint.Address}:5432/multidb?ssl=verify-full"), url
        assert ingress(cluster_group) == {(5432, 5432, client) for client in clients}
        assert parameter_value("DataStack", "DatabaseMinCapacity") == "0"
        assert one("DataStack", nested("DataStack")["Outputs"]["DatabaseProxyName"]["Value"]) == ""
    for stage in ("staging", "prod"):
        with deployed_as(stage):
            assert condition("DataStack", "CreateProxy"), stage
            assert not condition("DataStack", "AutoPause"), stage
            assert "${DatabaseProxy.Endpoint}" in connections()["database_url"], stage
            [proxy_group] = origins(
                "DataStack", Resource("DataStack", "DatabaseProxy").properties["VpcSecurityGroupIds"]
            )
            assert ingress(cluster_group) == {(5432, 5432, proxy_group)}, stage
    for stack in ("root", "DataStack"):  # a paused instance behind the proxy would never pause: refused
        [rule] = [r for name, r in template_of(stack)["Rules"].items() if name == "PausingNeedsNoProxy"]
        assert rule["RuleCondition"]["Fn::Equals"][1] == 0


def test_the_aurora_instances_present_a_certificate_of_the_bundle_the_functions_trust() -> None:
    """Without the proxy the functions verify Aurora's own certificate: an RSA2048 G1 root of the
    layer's bundle, which multidb.db trusts (test_database_resume checks the context)."""
    for name in ("DatabaseWriter", "DatabaseReader"):
        assert Resource("DataStack", name).properties["CACertificateIdentifier"] == "rds-ca-rsa2048-g1", name


def test_the_datastores_require_tls_and_redis_keeps_cluster_mode_off() -> None:
    assert Resource("DataStack", "DatabaseProxy").properties["RequireTLS"] is True
    assert Resource("DataStack", "DatabaseParameterGroup").properties["Parameters"]["rds.force_ssl"] == "1"
    redis = Resource("DataStack", "Redis").properties
    assert redis["ClusterMode"] == "Disabled"
    assert "NumNodeGroups" not in redis
    assert redis["CacheParameterGroupName"] == "default.redis7"  # cluster-enabled groups end in .cluster.on
    assert redis["TransitEncryptionEnabled"] is True
    assert redis["TransitEncryptionMode"] == "required"
    assert "resolve:secretsmanager" in redis["AuthToken"]["Fn::Sub"]
    assert Resource("DataStack", "DocumentDbParameterGroup").properties["Parameters"]["tls"] == "enabled"


def test_generated_passwords_need_no_url_encoding() -> None:
    for name in ("DatabaseSecret", "RedisAuthSecret", "DocumentDbSecret"):
        generated = Resource("DataStack", name).properties["GenerateSecretString"]
        assert generated["ExcludePunctuation"] is True, name
        assert generated["PasswordLength"] >= 32, name
    admin = Resource("root", "AdminPasswordSecret").properties["GenerateSecretString"]
    assert admin["ExcludePunctuation"] is True
    assert admin["PasswordLength"] >= 20


# ------------------------------------------------------------------ what functions read


def connections() -> dict[str, str]:
    """The connections secret's JSON, with each value the URL template it resolves to (default scenario)."""
    text, variables = Resource("DataStack", "ConnectionsSecret").properties["SecretString"]["Fn::Sub"]
    skeleton = json.loads(re.sub(r"\$\{(\w+)\}", r"<\1>", text))
    resolved = {}
    for field, placeholder in skeleton.items():
        [url] = origins("DataStack", variables[placeholder.strip("<>")])
        resolved[field] = url["Fn::Sub"] if isinstance(url, dict) else url
    return resolved


def test_the_connections_secret_is_exactly_what_the_settings_read() -> None:
    urls = connections()
    assert set(urls) == set(CONNECTION_FIELDS)
    assert re.fullmatch(
        r"postgresql\+asyncpg://\{\{resolve:secretsmanager:\$\{DatabaseSecret\}:SecretString:username\}\}:"
        r"\{\{resolve:secretsmanager:\$\{DatabaseSecret\}:SecretString:password\}\}"
        r"@\$\{DatabaseProxy\.Endpoint\}:5432/multidb\?ssl=verify-full",
        urls["database_url"],
    ), urls["database_url"]
    assert re.fullmatch(
        r"rediss://:\{\{resolve:secretsmanager:\$\{RedisAuthSecret\}:SecretString:token\}\}"
        r"@\$\{Redis\.PrimaryEndPoint\.Address\}:\$\{Redis\.PrimaryEndPoint\.Port\}/0",
        urls["redis_url"],
    ), urls["redis_url"]
    assert urls["broker_url"] == urls["redis_url"]
    assert re.fullmatch(
        r"mongodb://\{\{resolve:secretsmanager:\$\{DocumentDbSecret\}:SecretString:username\}\}:"
        r"\{\{resolve:secretsmanager:\$\{DocumentDbSecret\}:SecretString:password\}\}"
        r"@\$\{DocumentDbCluster\.Endpoint\}:\$\{DocumentDbCluster\.Port\}/"
        r"\?tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false",
        urls["mongo_url"],
    ), urls["mongo_url"]


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_the_urls_the_stack_assembles_pass_the_production_settings(stage: str) -> None:
    """The Python side's own checks (TLS everywhere, verified certificates) accept what the stack
    writes, through the proxy or (dev) straight to the cluster."""
    urls = {}
    with deployed_as(stage):
        for field, template in connections().items():
            url = re.sub(r"\{\{resolve:.*?\}\}", "Generated0Secret9", template)
            url = re.sub(r"\$\{[\w.]+Port\}", "6379", url)
            urls[field] = re.sub(r"\$\{[\w.]+\}", "host.internal", url)
    assert urls["redis_url"] == "rediss://:Generated0Secret9@host.internal:6379/0"
    settings = parse({"app_env": "PRODUCTION", "public_keys_parameter": "/multidb-dev/jwt-public-keys", **urls})
    assert settings.database_url.endswith("?ssl=verify-full")
    assert settings.message_broker_url.startswith("rediss://")


def test_brought_datastores_go_into_the_secret_as_given() -> None:
    _, variables = Resource("DataStack", "ConnectionsSecret").properties["SecretString"]["Fn::Sub"]
    brought = variables["Database"]["Fn::If"][2]["Fn::If"]  # neither behind the proxy nor direct
    assert (brought[0], brought[2]) == ("DirectDatabase", {"Ref": "DatabaseUrl"})
    for name in ("CreateProxy", "DirectDatabase"):  # both only when the database is created
        assert nested("DataStack")["Conditions"][name]["Fn::And"][0] == {"Fn::Condition": "CreateDatabase"}
    for placeholder, parameter in (("Redis", "RedisUrl"), ("Mongo", "MongoUrl")):
        assert variables[placeholder]["Fn::If"][2] == {"Ref": parameter}
    for parameter in ("DatabaseUrl", "RedisUrl", "MongoUrl"):
        assert nested("DataStack")["Parameters"][parameter]["NoEcho"] is True
        assert Resource("root", "DataStack").properties["Parameters"][parameter] == {"Ref": parameter}


def settings_variables() -> set[str]:
    return {name.upper() for name in FIELDS}


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def granted(function: str, action: str) -> list[Any]:
    """What the function's role may do `action` on, resolved to the resources the ARNs come from."""
    role = translated()["template"]["Resources"][f"{function}Role"]
    found = []
    for statement in statements(role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and action in actions:
            found += origins("root", statement["Resource"])
    return found


def test_every_secret_and_parameter_a_function_reads_is_the_stacks_own_and_granted() -> None:
    known = settings_variables()
    keys = Resource("root", "KeysResource").properties
    for name, function in functions().items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(variables) <= known, (name, set(variables) - known)  # every variable is a setting
        readable = granted(name, "secretsmanager:GetSecretValue")
        for variable, value in variables.items():
            if variable.endswith("_SECRET_ID"):
                secret = one("root", value)
                assert isinstance(secret, Resource), (name, variable)
                assert secret.type == "AWS::SecretsManager::Secret", (name, variable)
                assert secret in readable, (name, variable)
            elif variable.endswith("_PARAMETER"):
                assert value == keys["PublicKeysParameter"], (name, variable)  # what the keys step publishes
                [arn] = granted(name, "ssm:GetParameter")
                assert parameter_arn(arn).endswith(":parameter" + value["Fn::Sub"]), name
            elif variable in ("DATABASE_URL", "REDIS_URL", "MONGO_URL", "BROKER_URL", "JWT_PUBLIC_KEYS"):
                assert value == "", (name, variable)  # the secret and the parameter supply them
    auth = functions()["AuthFunction"]["Properties"]["Environment"]["Variables"]
    assert one("root", auth["KEYS_SECRET_ID"]) == Resource("root", "JwtKeySecret")
    assert one("root", auth["LOGIN_KEY_SECRET_ID"]) == Resource("root", "LoginKeySecret")
    assert one("root", keys["SigningKeySecret"]) == Resource("root", "JwtKeySecret")
    assert one("root", keys["LoginKeySecret"]) == Resource("root", "LoginKeySecret")
    assert Resource("root", "JwtKeySecret") not in granted("AuthorizerFunction", "secretsmanager:GetSecretValue")


def parameter_arn(arn: dict[str, Any]) -> str:
    """An SSM parameter ARN's text: a plain Sub, or SAM's Sub with a parameterName variable."""
    sub = arn["Fn::Sub"]
    if isinstance(sub, str):
        return sub
    return str(sub[0].replace("${parameterName}", sub[1]["parameterName"]["Fn::Sub"]))


def test_each_functions_settings_from_the_template_pass_production_validation() -> None:
    """What the template gives each function is enough for Settings in PRODUCTION (keys, no defaults)."""
    for name, function in functions().items():
        given: dict[str, Any] = {}
        for variable, value in function["Properties"]["Environment"]["Variables"].items():
            found = one("root", value)
            if isinstance(found, Resource):
                assert found.name in template_of(found.stack)["Resources"], (name, variable)  # nothing dangling
                found = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{found.name}-AbCdEf"
            # A parameter's value (a Number is a string in the environment) or a stand-in
            given[variable.lower()] = (
                str(found) if isinstance(found, str | int | float) else "value-from-cloudformation"
            )
        settings = parse(given)
        assert settings.is_production, name
        assert settings.connections_secret_id, name
        assert settings.public_keys_parameter, name
    files = functions()["FilesFunction"]["Properties"]["Environment"]["Variables"]
    assert one("root", files["FILES_BUCKET"]) == Resource("root", "FilesBucket")


def all_iam_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for stack in ("root", *NESTED):
        for name, resource in template_of(stack)["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                for statement in statements(resource):
                    yield f"{stack}.{name}", statement


def test_no_iam_statement_names_a_placeholder_account_or_a_suffixless_secret() -> None:
    checked = 0
    for role, statement in all_iam_statements():
        text = json.dumps(statement)
        assert PLACEHOLDER_ACCOUNT not in text, role
        for resource in origins("root" if role.startswith("root.") else role.split(".")[0], statement["Resource"]):
            if isinstance(resource, Resource) and resource.type == "AWS::SecretsManager::Secret":
                checked += 1  # the real ARN, by reference
                continue
            literal = json.dumps(resource, default=str)
            if ":secret:" in literal:
                assert re.search(r":secret:[^\"*]+-\?{6}\"", literal), (role, literal)
    assert checked >= 10
    for path in (ROOT / "template.yaml", ROOT / "samconfig.toml", *NESTED.values()):
        text = path.read_text()
        assert PLACEHOLDER_ACCOUNT not in text, path
        assert "arn:aws:secretsmanager:" not in text, path


# ------------------------------------------------------------------ deploy steps


def api_functions() -> list[str]:
    """The functions API Gateway invokes (routes or the authorizer), from the source template."""
    return list(load().gateway_functions)


def test_the_api_functions_and_the_containers_wait_for_the_keys_and_the_migrations() -> None:
    assert {authorizer.function for authorizer in load().authorizers.values()} < set(api_functions())
    for name in api_functions():
        assert {"KeysResource", "MigrationsResource"} <= set(functions()[name].get("DependsOn", [])), name
    services = translated()["template"]["Resources"]["ServicesStack"]
    assert {"KeysResource", "MigrationsResource"} <= set(services["DependsOn"])


def test_the_migrations_run_from_the_private_subnets_with_alembic_and_the_deploy_modules() -> None:
    deploy = Resource("root", "DeployFunction")
    assert deploy.properties["Handler"] == "deploy_fn.handler.handler"
    migrations = Resource("root", "MigrationsResource").properties
    alias = one("root", migrations["ServiceToken"])
    assert alias.type == "AWS::Lambda::Alias"
    assert alias.properties["FunctionName"] == {"Ref": "DeployFunction"}
    version = one("root", migrations["CodeVersion"])
    assert version.type == "AWS::Lambda::Version"
    assert alias.properties["FunctionVersion"] == {"Fn::GetAtt": [version.name, "Version"]}
    assert one("root", migrations["SharedLayer"]).type == "AWS::Lambda::LayerVersion"
    assert one("root", migrations["AdminPasswordSecret"]) == Resource("root", "AdminPasswordSecret")


def translate_with(**artifacts: str) -> dict[str, Any]:
    uploaded = [f"{name}={uri}" for name, uri in artifacts.items()]
    result = run(str(SAM_VENV / "python"), "tests/integration/sam_translate.py", "template.yaml", *uploaded)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["template"]["Resources"]["MigrationsResource"]["Properties"]  # type: ignore[no-any-return]


def test_new_migrations_or_a_new_catalogue_change_the_migration_resource() -> None:
    """The artifact holds infra/deploy/migrations (a new upload is a new Lambda version), the layer holds the
    catalogue (a new upload is a new layer version): either changes a property, so CloudFormation
    sends an Update and the steps run again. Nothing new, nothing sent."""
    before = translate_with()
    deploy_changed = translate_with(DeployFunction="s3://bucket/new-migrations.zip")
    layer_changed = translate_with(SharedLayer="s3://bucket/new-catalogue.zip")
    assert deploy_changed["CodeVersion"] != before["CodeVersion"]
    assert layer_changed["SharedLayer"] != before["SharedLayer"]
    assert translate_with() == before  # nothing new: no Update


# ------------------------------------------------------------------ stages


def stage_overrides() -> dict[str, dict[str, str]]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {
        stage: dict(item.split("=", 1) for item in config[stage]["deploy"]["parameters"]["parameter_overrides"])
        for stage in ("dev", "staging", "prod")
    }


def test_each_stage_is_sized_for_what_it_is() -> None:
    parameters = template_of("root")["Parameters"]
    stages = stage_overrides()
    for stage, overrides in stages.items():
        assert set(overrides) <= set(parameters), (stage, set(overrides) - set(parameters))
        assert overrides["Stage"] == stage
    assert stages["prod"]["MultiAz"] == "true"
    assert stages["prod"]["DeletionProtection"] == "true"
    assert int(stages["prod"]["AuthReservedConcurrency"]) > 0
    assert stages["dev"]["MultiAz"] == "false"
    assert stages["dev"]["AuthReservedConcurrency"] == "0"  # a new account may have none to spare
    assert float(stages["dev"]["DatabaseMinCapacity"]) == 0  # pauses when idle
    assert stages["dev"]["DocumentDbInstanceClass"] == "db.serverless"
    assert stages["dev"]["CacheNodeType"] == "cache.t4g.micro"
    for stage in ("staging", "prod"):  # the always-on shape: the proxy, a floor of capacity
        assert stages[stage].get("DatabaseProxy", parameters["DatabaseProxy"]["Default"]) == "true", stage
        assert float(stages[stage]["DatabaseMinCapacity"]) >= 0.5, stage
        assert int(stages[stage]["WorkerMinCount"]) >= 1, stage
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for stage in stages:
        capabilities = config[stage]["deploy"]["parameters"]["capabilities"].split()
        assert "CAPABILITY_AUTO_EXPAND" in capabilities  # nested applications need it


def test_the_docs_give_each_stages_lambda_quota_as_its_reservations_plus_100() -> None:
    """Lambda keeps 100 executions unreserved: a stage reserving R needs a quota of R + 100."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    reading = [f.reserved_concurrency for f in load().functions.values() if f.reserved_concurrency is not None]
    sharing = reading.count("ApiReservedConcurrency")  # users, roles, routers, tasks, files, audit
    for stage, overrides in stage_overrides().items():
        auth, authorizer, api = (
            int(overrides.get(name, 0))
            for name in ("AuthReservedConcurrency", "AuthorizerReservedConcurrency", "ApiReservedConcurrency")
        )
        reserved = sum(int(overrides.get(name, 0)) for name in reading)
        quota = f"**{reserved + 100}**" if reserved else "any"
        times = "\u00d7"  # the multiplication sign
        row = f"| {stage} | {auth} + {authorizer} + {sharing} {times} {api} = {reserved} | {quota} |"
        assert row in docs, row
    output = template_of("root")["Outputs"]["ReservedConcurrency"]["Value"]["Fn::Sub"]
    for name in ("AuthReservedConcurrency", "AuthorizerReservedConcurrency", "ApiReservedConcurrency"):
        assert f"${{{name}}}" in output, name
    reserving = [n for n, f in functions().items() if "ReservedConcurrentExecutions" in f["Properties"]]
    assert sorted(reserving) == sorted(n for n, f in load().functions.items() if f.reserved_concurrency)  # the sum
    assert sorted(set(reading)) == sorted(
        ["AuthReservedConcurrency", "AuthorizerReservedConcurrency", "ApiReservedConcurrency"]
    )  # the row's three terms


def test_the_architecture_defaults_to_graviton_for_functions_and_layer() -> None:
    parameters = template_of("root")["Parameters"]
    assert parameters["Architecture"]["Default"] == "arm64"
    assert set(parameters["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}
    resources = translated()["template"]["Resources"]
    layer = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion")
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    for name, function in functions().items():
        assert function["Properties"]["Architectures"] == [{"Ref": "Architecture"}], name


# ------------------------------------------------------------------ make deploy


def make(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    """The Makefile as a user runs it, never rebuilding .venv (-o) whatever its timestamps say."""
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": path, "HOME": str(ROOT)},
    )


def failed_deploy(tmp_path: Path, stage: str, aws: str | None = None) -> str:
    """What `make deploy` printed with only /usr/bin, /bin and this `aws` script (none: no aws
    command) on PATH; it failed, and preflight stopped it before anything was built."""
    if aws is not None:
        fake = tmp_path / "aws"
        fake.write_text(aws)
        fake.chmod(0o755)
    result = make("deploy", f"STAGE={stage}", path=f"{tmp_path}:/usr/bin:/bin")
    assert result.returncode != 0
    assert "sam build" not in result.stdout
    return result.stdout


def test_make_deploy_stops_with_a_clear_message_without_the_aws_cli(tmp_path: Path) -> None:
    assert "FAIL  AWS CLI: no aws command on PATH" in failed_deploy(tmp_path, "dev")


def test_make_deploy_stops_with_a_clear_message_without_credentials(tmp_path: Path) -> None:
    aws = "#!/bin/sh\necho 'Unable to locate credentials' >&2\nexit 253\n"
    assert "FAIL  credentials: no AWS credentials found" in failed_deploy(tmp_path, "staging", aws)


def test_make_deploy_stops_with_a_clear_message_without_docker_before_building(tmp_path: Path) -> None:
    output = failed_deploy(tmp_path, "dev", '#!/bin/sh\necho "123"\n')
    assert "or deploy with DEPLOY_PREREQUISITES= (keeps the running images)" in output


def test_make_destroy_asks_for_confirmation_beyond_dev(tmp_path: Path) -> None:
    result = make("destroy", "STAGE=prod", path=f"{tmp_path}:/usr/bin:/bin")
    assert result.returncode != 0
    assert "CONFIRM=prod" in result.stdout + result.stderr


# ------------------------------------------------------------------ the RDS CA bundle


def test_the_rds_ca_bundle_holds_only_amazon_rds_roots_and_is_the_documented_one() -> None:
    import hashlib

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    data = (ROOT / "shared" / "multidb" / "certs" / "rds-global-bundle.pem").read_bytes()  # in the layer
    assert f"SHA-256 `{hashlib.sha256(data).hexdigest()}`" in (ROOT / "docs" / "deploy.md").read_text()
    certificates = x509.load_pem_x509_certificates(data)
    assert len(certificates) > 50
    for certificate in certificates:
        subject = certificate.subject
        assert subject == certificate.issuer, subject.rfc4514_string()
        certificate.verify_directly_issued_by(certificate)  # self-signed: a root, not an intermediate
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Amazon Web Services, Inc."
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Amazon RDS"
    names = {c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certificates}
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names  # what DocumentDB presents by default
