"""Every AWS call the code makes is allowed on every path it travels, for every stage.

tests/aws_calls.py records each botocore operation the suite makes, with its caller (the
function package, the worker, ...). This module runs last in a session, drives a small
representative set itself (the files routes through the gateway and the sweep, against the
S3 server), so that it means something when run alone, and checks each recorded operation
against (a) the caller's IAM role in the translated templates and (b) every VPC endpoint
policy on its way there. Presigned URLs are checked against IAM only: the client sends them,
from outside the VPC. `-s` prints the table; it is also written next to the records.
"""

import copy
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import aws_calls
from tests.helpers import Api
from tests.integration.deployed import ACCOUNT, REGION, Deployment, Stage, stages

pytestmark = pytest.mark.first_pass_only("AWS calls, whatever the datastores")

# What IAM calls each operation (AWS's "Actions, resources, and condition keys" pages), and what it acts on.
# An operation missing here fails the check: add it, never guess.
ACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("s3", "GetObject"): ("s3:GetObject", "object"),
    ("s3", "HeadObject"): ("s3:GetObject", "object"),
    ("s3", "PutObject"): ("s3:PutObject", "object"),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject", "object"),
    ("s3", "UploadPart"): ("s3:PutObject", "object"),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject", "object"),
    ("s3", "DeleteObject"): ("s3:DeleteObject", "object"),
    ("s3", "AbortMultipartUpload"): ("s3:AbortMultipartUpload", "object"),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts", "object"),
    ("s3", "ListMultipartUploads"): ("s3:ListBucketMultipartUploads", "bucket"),
    ("s3", "ListObjectsV2"): ("s3:ListBucket", "bucket"),
    ("s3", "HeadBucket"): ("s3:ListBucket", "bucket"),
    ("s3", "CreateBucket"): ("s3:CreateBucket", "bucket"),
    ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration", "bucket"),
    ("secretsmanager", "GetSecretValue"): ("secretsmanager:GetSecretValue", "secret"),
    ("secretsmanager", "PutSecretValue"): ("secretsmanager:PutSecretValue", "secret"),
    ("secretsmanager", "DescribeSecret"): ("secretsmanager:DescribeSecret", "secret"),
    ("ssm", "GetParameter"): ("ssm:GetParameter", "parameter"),
    ("ssm", "GetParameters"): ("ssm:GetParameters", "parameter"),
    ("ssm", "PutParameter"): ("ssm:PutParameter", "parameter"),
    ("ssm", "DeleteParameter"): ("ssm:DeleteParameter", "parameter"),
}
# AWS managed policies the roles carry; none grants what ACTIONS lists (logs, ENIs, X-Ray only).
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
CONTAINERS = {"worker": "worker", "realtime": "realtime"}  # caller → container name in the services stack
UNCHECKED = {
    "tests": "a test's own call",
    "operator": "run by a person with their own credentials",
    "local": "make dev only",
    "unknown": "no entry point on the stack",
}


@dataclass(frozen=True)
class Principal:
    """Who makes a call when deployed: a function or a container, its role and its settings."""

    name: str
    stack: str
    role: str | None  # the role's logical id in `stack`; None: no role, so no AWS call can succeed
    environment: dict[str, Any]  # setting → its value in the template (unresolved)
    in_vpc: bool


def principals(deployment: Deployment) -> dict[str, Principal]:
    """Callers (function packages, containers) and who they are in this stage's stacks."""
    found = {}
    for stack, name, definition in deployment.resources():
        properties = definition.get("Properties") or {}
        if definition["Type"] == "AWS::Lambda::Function":
            role = properties["Role"]["Fn::GetAtt"][0]
            variables = (properties.get("Environment") or {}).get("Variables", {})
            package = properties["Handler"].split(".")[0]
            found[package] = found[f"function:{name}"] = Principal(
                name, stack, role, variables, "VpcConfig" in properties
            )
        if definition["Type"] == "AWS::ECS::TaskDefinition":
            role_arn = properties.get("TaskRoleArn")
            for container in properties["ContainerDefinitions"]:
                callers = [caller for caller, named in CONTAINERS.items() if container["Name"] == named]
                for caller in callers:
                    found[caller] = Principal(
                        f"{stack}.{name}",
                        stack,
                        role_arn["Fn::GetAtt"][0] if role_arn else None,
                        {item["Name"]: item["Value"] for item in container.get("Environment", [])},
                        properties.get("NetworkMode") == "awsvpc",
                    )
    return found


# ------------------------------------------------------------------ policies


def _matches(pattern: str, text: str, case: bool) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def decide(statements: list[dict[str, Any]], action: str, resource: str | None) -> bool:
    """IAM's decision for one action on one resource (None: any resource the statement names).

    An explicit Deny wins; a Deny with a Condition is taken not to apply and an Allow with
    one to apply (the conditions are not evaluated). A Principal other than "*" allows nothing
    (only endpoint policies carry one, and ours admit every principal)."""

    def applies(statement: dict[str, Any]) -> bool:
        if "Principal" in statement and statement["Principal"] not in ("*", {"AWS": "*"}):
            return False
        actions = statement.get("Action", statement.get("NotAction"))
        hit = any(_matches(a, action, case=False) for a in _listed(actions))
        if ("NotAction" in statement) == hit:
            return False
        if resource is None:
            return True
        resources = statement.get("Resource", statement.get("NotResource", []))
        hit = any(_matches(r, resource, case=True) for r in _listed(resources))
        return ("NotResource" in statement) != hit

    denied = any(s["Effect"] == "Deny" and "Condition" not in s and applies(s) for s in statements)
    return not denied and any(s["Effect"] == "Allow" and applies(s) for s in statements)


def role_statements(deployment: Deployment, principal: Principal) -> list[dict[str, Any]]:
    if principal.role is None:
        return []
    template = deployment.templates[principal.stack]["Resources"]
    role = deployment.resolve(principal.stack, template[principal.role].get("Properties") or {})
    unknown = set(role.get("ManagedPolicyArns", [])) - MANAGED
    assert not unknown, f"{principal.role} carries managed policies this check cannot read: {unknown}"
    statements = [s for policy in role.get("Policies", []) for s in _listed(policy["PolicyDocument"]["Statement"])]
    kinds = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")  # policies attached from outside the role
    for stack, _, definition in deployment.resources():
        properties = definition.get("Properties") or {}
        if stack == principal.stack and definition["Type"] in kinds and {"Ref": principal.role} in properties["Roles"]:
            statements += _listed(deployment.resolve(stack, properties["PolicyDocument"])["Statement"])
    return statements


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str  # what the ServiceName ends in: s3, secretsmanager, ssm, ...
    statements: list[dict[str, Any]] | None  # None: no policy, every call passes


def endpoints(deployment: Deployment) -> list[Endpoint]:
    found = []
    for stack, name, definition in deployment.resources():
        if definition["Type"] == "AWS::EC2::VPCEndpoint":
            properties = deployment.resolve(stack, definition["Properties"])
            service = properties["ServiceName"].removeprefix(f"com.amazonaws.{REGION}.")
            policy = properties.get("PolicyDocument")
            found.append(Endpoint(f"{stack}.{name}", service, _listed(policy["Statement"]) if policy else None))
    return found


def nat(deployment: Deployment) -> str | None:
    """The NAT a private subnet's default route leads to, if any: a gateway or an instance."""
    for stack, _, definition in deployment.resources():
        properties = definition.get("Properties") or {}
        if definition["Type"] != "AWS::EC2::Route" or properties.get("DestinationCidrBlock") != "0.0.0.0/0":
            continue
        for key, kind in (("NatGatewayId", "a NAT gateway"), ("InstanceId", "a NAT instance")):
            target = properties.get(key)
            if isinstance(target, dict) and "Ref" in target:
                return f"{kind} ({stack}.{target['Ref']})"
    return None


# ------------------------------------------------------------------ the check


@dataclass(frozen=True)
class Row:
    caller: str
    principal: str
    kind: str
    operation: str
    action: str
    resource: str
    iam: str
    path: str

    @property
    def failed(self) -> bool:
        return self.iam.startswith("DENIED") or "DENIED" in self.path or "NO ROUTE" in self.path


def deployed_value(deployment: Deployment, principal: Principal, record: dict[str, Any]) -> str | None:
    """What the deployed caller has where the test had the recorded name: the same setting's value."""
    for setting in record["settings"]:
        if setting in principal.environment:
            value = deployment.resolve(principal.stack, principal.environment[setting])
            if isinstance(value, str) and value:
                return value
    return None


def resource_arn(deployment: Deployment, principal: Principal, record: dict[str, Any], kind: str) -> str | None:
    named = deployed_value(deployment, principal, record)
    params = record["params"]
    if kind in ("object", "bucket"):
        if named is None:
            return None
        return f"arn:aws:s3:::{named}" + (f"/{params['Key']}" if kind == "object" else "")
    if kind == "secret":
        return named if named and named.startswith("arn:") else None
    if kind == "parameter" and named:
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{named if named.startswith('/') else '/' + named}"
    return None


def requirements(
    deployment: Deployment, principal: Principal, record: dict[str, Any], not_found: bool
) -> Iterator[tuple[str, str, str | None]]:
    """(operation shown, IAM action, resource ARN) a recorded call needs. With `not_found`, a read
    the test's S3 answered 404 needs s3:ListBucket too: without it S3 answers 403 for a missing key
    (HeadObject's documentation), and the code, which expects 404, fails."""
    action, kind = ACTIONS[(record["service"], record["operation"])]
    operation = f"{record['service']}:{record['operation']}"
    arn = resource_arn(deployment, principal, record, kind)
    yield operation, action, arn
    if not_found and record["service"] == "s3" and record["status"] == 404 and action == "s3:GetObject":
        yield f"{operation} (404)", "s3:ListBucket", arn.split("/", 1)[0] if arn else None


def distinct(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per kind of call: the same caller, operation, names but the object key, and answer."""
    kept: dict[str, dict[str, Any]] = {}
    for record in records:
        params = {k: v for k, v in record["params"].items() if k != "Key"}
        signature = [record[k] for k in ("caller", "service", "operation", "kind", "settings", "app_env", "status")]
        kept.setdefault(json.dumps([signature, params], sort_keys=True), record)
    return list(kept.values())


def check(deployment: Deployment, records: list[dict[str, Any]], not_found: bool = False) -> list[Row]:
    callers = principals(deployment)
    routes = endpoints(deployment)
    policies: dict[str, list[dict[str, Any]]] = {}
    rows = set()
    for record in distinct(records):
        caller, operation = record["caller"], f"{record['service']}:{record['operation']}"
        principal = callers.get(caller)
        if principal is None or record["app_env"] == "LOCAL":
            why = "make dev only" if record["app_env"] == "LOCAL" else UNCHECKED.get(caller, "not on the stack")
            rows.add(Row(caller, "-", record["kind"], operation, "-", "-", f"not checked: {why}", "-"))
            continue
        if (record["service"], record["operation"]) not in ACTIONS:
            rows.add(Row(caller, principal.name, record["kind"], operation, "?", "-", "DENIED: not in ACTIONS", "-"))
            continue
        for shown_operation, action, arn in requirements(deployment, principal, record, not_found):
            shown = (
                "(not mapped: any it names)" if arn is None else re.sub(r"^(arn:aws:s3:::[^/]+)/.+$", r"\1/<key>", arn)
            )
            if principal.name not in policies:
                policies[principal.name] = role_statements(deployment, principal)
            allowed = decide(policies[principal.name], action, arn)
            iam = f"{'allowed' if allowed else 'DENIED'} by {principal.role or 'no role'}"
            path = route(deployment, routes, principal, record, action, arn)
            rows.add(Row(caller, principal.name, record["kind"], shown_operation, action, shown, iam, path))
    return sorted(rows, key=lambda row: (row.caller, row.operation, row.kind, row.resource))


def path_without(deployment: Deployment, record: dict[str, Any], resource: str) -> str:
    """The call's path once the network stack has lost this resource."""
    templates = copy.deepcopy(deployment.templates)
    del templates["NetworkStack"]["Resources"][resource]
    deployment.templates = templates
    (row,) = check(deployment, [record])
    return row.path


def route(
    deployment: Deployment,
    routes: list[Endpoint],
    principal: Principal,
    record: dict[str, Any],
    action: str,
    arn: str | None,
) -> str:
    """How the call reaches AWS, and what each VPC endpoint on the way decides."""
    if record["kind"] == "presign":
        return "the client's own (presigned URL)"
    if not principal.in_vpc:
        return "the internet"
    on_path = [e for e in routes if e.service == record["endpoint"]]
    if not on_path:
        return nat(deployment) or f"NO ROUTE: no {record['endpoint']} endpoint, no NAT"
    decisions = []
    for endpoint in on_path:
        if endpoint.statements is None:
            decisions.append(f"{endpoint.name} (no policy)")
        else:
            decisions.append(f"{endpoint.name} {'allowed' if decide(endpoint.statements, action, arn) else 'DENIED'}")
    return "; ".join(decisions)


def table(stage: Stage, rows: list[Row]) -> str:
    head = ("caller", "principal", "kind", "operation", "IAM action", "resource", "IAM", "path (VPC endpoints)")
    cells = [head, *((r.caller, r.principal, r.kind, r.operation, r.action, r.resource, r.iam, r.path) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = [f"AWS calls of the test run, checked against stage {stage.name} ({stage.stack_name})"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


# ------------------------------------------------------------------ what is recorded

_driven: list[bool] = []


@pytest.fixture
def records(api: Api, empty_files: None) -> list[dict[str, Any]]:
    """Every call of this session, after the representative set has run once."""
    if not _driven:
        drive_files_and_sweep(api)
        _driven.append(True)
    return aws_calls.read()


def drive_files_and_sweep(api: Api) -> None:
    """The files routes through the gateway (one PUT, in parts, deleted while pending) and the sweep."""
    from bson import ObjectId

    from multidb import runtime
    from multidb.files import lifecycle
    from multidb.files.documents import StoredFile
    from tests.files.test_files import chunk, put_part, start_parts, start_upload, uploaded, user

    alice = user(api, "aws-calls")
    early = start_upload(api, alice, "early.txt")  # completed before its bytes: HeadObject answers 404
    assert api.post(f"/api/v1/files/{early['file']['id']}/complete", token=alice).status_code == 409
    single = uploaded(api, alice)  # a presigned PutObject, then HeadObject
    assert api.get(f"/api/v1/files/{single}/download", token=alice).status_code == 200  # a presigned GET
    assert api.delete(f"/api/v1/files/{single}", token=alice).status_code == 200  # DeleteObject

    parts = start_parts(api, alice)  # CreateMultipartUpload, presigned UploadPart URLs
    file_id = parts["file"]["id"]
    etags = [put_part(part["url"], chunk(part["partNumber"])) for part in parts["parts"]]
    assert api.get(f"/api/v1/files/{file_id}/parts", token=alice).status_code == 200  # ListParts
    body = {"parts": [{"partNumber": n, "etag": etag} for n, etag in enumerate(etags, start=1)]}
    assert api.post(f"/api/v1/files/{file_id}/complete", token=alice, json_body=body).status_code == 200

    dropped = start_parts(api, alice, "dropped.bin")
    assert api.delete(f"/api/v1/files/{dropped['file']['id']}", token=alice).status_code == 200  # Abort

    stale = start_parts(api, alice, "stale.bin")

    async def age() -> None:
        doc = await StoredFile.get(ObjectId(stale["file"]["id"]))
        assert doc is not None
        doc.created_at = datetime.now(UTC) - timedelta(days=2)
        await doc.save()

    runtime.run(age())
    assert runtime.run(lifecycle.sweep()) == 1  # the worker's sweep: AbortMultipartUpload, DeleteObject


# ------------------------------------------------------------------ the tests


def test_every_recorded_call_is_allowed_by_its_role_and_every_endpoint_on_its_way(
    records: list[dict[str, Any]],
) -> None:
    checked = {(r["caller"], r["service"], r["operation"], r["kind"]) for r in records}
    # The representative set reached what finding 3 is about, from both callers.
    assert {("files_fn", "s3", "ListParts", "call"), ("worker", "s3", "AbortMultipartUpload", "call")} <= checked
    assert ("files_fn", "s3", "UploadPart", "presign") in checked
    out = Path(os.environ[aws_calls.DIR_VARIABLE]) / "aws-calls.txt"
    reports, failures = [], []
    for stage in stages():
        rows = check(Deployment(stage), records)
        reports.append(table(stage, rows))
        failures += [f"{stage.name}: {row}" for row in rows if row.failed]
    out.write_text("\n\n".join(reports) + "\n")
    print("\n\n".join(reports), f"\n(written to {out})")
    assert not failures, "\n".join(failures)


def test_the_check_names_what_the_s3_endpoint_refused_as_it_stood(records: list[dict[str, Any]]) -> None:
    """Finding 3 (issue 20): the endpoint allowed Get, Put and DeleteObject only."""
    deployment = next(d for d in map(Deployment, stages()) if d.exists("NetworkStack", "S3Endpoint"))
    deployment.templates = copy.deepcopy(deployment.templates)
    endpoint = deployment.templates["NetworkStack"]["Resources"]["S3Endpoint"]["Properties"]
    (files_statement,) = [s for s in endpoint["PolicyDocument"]["Statement"] if s["Sid"] == "FilesBucketObjects"]
    files_statement["Action"] = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    failed = [row for row in check(deployment, records) if row.failed]
    assert {(row.caller, row.action) for row in failed} >= {
        ("files_fn", "s3:ListMultipartUploadParts"),
        ("files_fn", "s3:AbortMultipartUpload"),
        ("worker", "s3:AbortMultipartUpload"),
    }
    assert {row.action for row in failed} == {"s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"}
    assert all(row.iam.startswith("allowed") and "S3Endpoint DENIED" in row.path for row in failed)


def test_a_read_the_code_expects_to_miss_is_allowed_to_say_so(records: list[dict[str, Any]]) -> None:
    """A HeadObject the code treats as "not there" (404) needs s3:ListBucket on the bucket, on the role
    and on the endpoint: without it S3 answers 403 (HeadObject's documentation)."""
    assert any(r["operation"] == "HeadObject" and r["status"] == 404 and r["caller"] == "files_fn" for r in records)
    failures = []
    for stage in stages():
        failures += [f"{stage.name}: {row}" for row in check(Deployment(stage), records, not_found=True) if row.failed]
    assert not failures, "\n".join(failures)


def test_a_call_no_role_allows_or_no_route_reaches_is_named() -> None:
    deployment = Deployment(stages()[0])
    call = {
        "service": "secretsmanager",
        "endpoint": "secretsmanager",
        "operation": "GetSecretValue",
        "kind": "call",
        "params": {"SecretId": "x"},
        "settings": [],
        "app_env": "PRODUCTION",
        "status": 200,
    }
    rows = check(deployment, [{**call, "caller": "realtime"}, {**call, "caller": "files_fn", "service": "kms"}])
    assert [(row.caller, row.iam) for row in rows] == [
        ("files_fn", "DENIED: not in ACTIONS"),
        ("realtime", "DENIED by no role"),
    ]
    read = {**call, "caller": "files_fn", "settings": ["CONNECTIONS_SECRET_ID"]}
    # dev: no secretsmanager endpoint; its NAT instance carries the call, and without its route nothing does
    assert deployment.stage.name == "dev"
    (row,) = check(deployment, [read])
    assert row.iam.startswith("allowed")
    assert row.path == "a NAT instance (NetworkStack.NatInstanceResource)"
    assert path_without(deployment, read, "PrivateNatInstanceRoute") == "NO ROUTE: no secretsmanager endpoint, no NAT"
    # staging: the endpoint carries it; without the endpoint, nothing does
    staging = Deployment(next(stage for stage in stages() if stage.name == "staging"))
    (row,) = check(staging, [read])
    assert row.path == "NetworkStack.SecretsManagerEndpoint (no policy)"
    assert path_without(staging, read, "SecretsManagerEndpoint") == "NO ROUTE: no secretsmanager endpoint, no NAT"


OBJECT = "arn:aws:s3:::b/k"


@pytest.mark.parametrize(
    ("statement", "action", "resource", "allowed"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}, "s3:GetObject", OBJECT, True),
        ({"Effect": "Allow", "Action": "S3:getobject", "Resource": "*"}, "s3:GetObject", OBJECT, True),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"}, "s3:GetObject", OBJECT, False),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::B/*"}, "s3:GetObject", OBJECT, False),
        ({"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"}, "s3:DeleteObject", OBJECT, False),
        ({"Effect": "Allow", "Action": "ssm:Get*", "Resource": "arn:aws:ssm:*:*:parameter/a/?"}, "ssm:GetParameter",
         "arn:aws:ssm:r:1:parameter/a/b", True),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "*", "Resource": "*"},
         "s3:GetObject", OBJECT, False),
    ],
)  # fmt: skip
def test_policy_decisions(statement: dict[str, Any], action: str, resource: str, allowed: bool) -> None:
    assert decide([statement], action, resource) is allowed
    assert decide([statement, {"Effect": "Deny", "Action": "*", "Resource": "*"}], action, resource) is False


def test_every_operation_in_actions_is_one_the_api_has() -> None:
    """A misspelt operation would never match a recorded call, and its call would fail as unknown."""
    from tests.integration.aws_models import service

    for name, operation in ACTIONS:
        assert operation in service(name).operation_names, (name, operation)
