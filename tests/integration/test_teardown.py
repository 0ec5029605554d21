"""`make destroy` empties the files bucket before the stack goes: S3 is moto's server over TCP.

CloudFormation's answers (the stack's outputs and parameters) come from botocore's Stubber.
"""

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from infra.deploy import teardown
from tests.conftest import S3_ENDPOINT_URL

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("make destroy against moto")]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STACK = "multidb-dev"


@pytest.fixture
def s3(files_backends: None) -> "S3Client":
    return boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, region_name="us-east-1")


@pytest.fixture
def bucket(s3: "S3Client") -> str:
    """A versioned bucket with two versions of one key, a delete marker and an upload left open."""
    name = f"multidb-teardown-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"first", b"second"):
        s3.put_object(Bucket=name, Key="files/a.txt", Body=body)
    s3.put_object(Bucket=name, Key="files/b.txt", Body=b"gone")
    s3.delete_object(Bucket=name, Key="files/b.txt")
    upload = s3.create_multipart_upload(Bucket=name, Key="files/c.bin")
    s3.upload_part(Bucket=name, Key="files/c.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    listing = s3.list_object_versions(Bucket=name)
    assert (len(listing["Versions"]), len(listing["DeleteMarkers"])) == (3, 1)
    return name


def cloudformation(*stacks: dict[str, Any] | None) -> Any:
    """A CloudFormation client answering DescribeStacks with each stack in turn (None: it does not exist)."""
    client = boto3.client("cloudformation", region_name="us-east-1")
    stubber = Stubber(client)
    for stack in stacks:
        if stack is None:
            stubber.add_client_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist")
        else:
            stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
    stubber.activate()
    return client


def stack(bucket: str, protected: bool = False) -> dict[str, Any]:
    return {
        "StackName": STACK,
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "StackStatus": "UPDATE_COMPLETE",
        "Parameters": [{"ParameterKey": "DeletionProtection", "ParameterValue": str(protected).lower()}],
        "Outputs": [{"OutputKey": "FilesBucketName", "OutputValue": bucket}],
    }


def test_destroy_empties_the_stacks_versioned_bucket_of_versions_markers_and_open_uploads(
    s3: "S3Client", bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        s3.delete_bucket(Bucket=bucket)  # what deleting the stack met before

    assert teardown.prepare(cloudformation(stack(bucket)), s3, STACK) == 0

    assert capsys.readouterr().out == (
        f"{bucket}: 4 object versions and delete markers deleted, 1 open uploads aborted\n"
    )
    listing = s3.list_object_versions(Bucket=bucket)
    assert "Versions" not in listing
    assert "DeleteMarkers" not in listing
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    s3.delete_bucket(Bucket=bucket)  # as the stack's deletion now can
    # A destroy run again after a partial one finds the bucket, or the stack, gone and goes on.
    assert teardown.prepare(cloudformation(stack(bucket), None), s3, STACK) == 0
    assert teardown.prepare(cloudformation(None), s3, STACK) == 0
    assert capsys.readouterr().out == f"{bucket} is gone already\n{STACK} does not exist: nothing to empty\n"


def test_a_protected_stack_is_refused_before_anything_is_deleted(
    s3: "S3Client", bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert teardown.prepare(cloudformation(stack(bucket, protected=True)), s3, STACK) == 1
    assert "DeletionProtection=true: deploy it once with PARAMETERS=DeletionProtection=false" in capsys.readouterr().err
    listing = s3.list_object_versions(Bucket=bucket)
    assert (len(listing["Versions"]), len(listing["DeleteMarkers"])) == (3, 1)
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 1


def test_an_empty_bucket_takes_one_pass(s3: "S3Client") -> None:
    name = f"multidb-teardown-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    assert teardown.empty_bucket(s3, name) == (0, 0)
