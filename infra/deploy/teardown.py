"""Prepare a stage's stack for deletion (`make destroy` runs it before `sam delete`).

    python -m infra.deploy.teardown --stack multidb-dev --region us-east-1

CloudFormation deletes only an empty bucket: once anything was uploaded, deleting the stack
failed on the files bucket. This empties it (the bucket is the stack's FilesBucketName
output) and the console's (ConsoleBucketName): every object version and delete marker (a
bucket that ever had versioning keeps them) and every multipart upload still open (their
parts are stored, and billed, until aborted). The functions keep running until the stack
goes, so an upload can land while this runs: it repeats until one pass finds nothing left.
A stack deployed with DeletionProtection=true is refused before anything is deleted: its
databases and load balancer would stop the deletion after the files were gone.
"""

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

PASSES = 5  # a pass that finds nothing ends it; more than a few means something keeps writing


def _abort_uploads(s3: "S3Client", bucket: str) -> int:
    aborted = 0
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted


def _delete_versions(s3: "S3Client", bucket: str) -> int:
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        # DeleteObjects takes at most 1,000 keys a call.
        keys: list[ObjectIdentifierTypeDef] = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(keys), 1000):
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RuntimeError(f"could not delete {first.get('Key')}: {first.get('Code')} {first.get('Message')}")
            deleted += len(keys[start : start + 1000])
    return deleted


def empty_bucket(s3: "S3Client", bucket: str) -> tuple[int, int]:
    """Delete every version and delete marker and abort every open upload; (versions, uploads) removed."""
    versions = uploads = 0
    for _ in range(PASSES):
        # Uploads first: one completed meanwhile is an object the next listing finds.
        aborted = _abort_uploads(s3, bucket)
        deleted = _delete_versions(s3, bucket)
        uploads, versions = uploads + aborted, versions + deleted
        if not aborted and not deleted:
            return versions, uploads
    raise RuntimeError(f"{bucket} is still being written to after {PASSES} passes: stop what uploads, then retry")


def prepare(cloudformation: Any, s3: "S3Client", stack: str) -> int:
    """Refuse a protected stack, else empty its files bucket; the exit status."""
    from botocore.exceptions import ClientError

    try:
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
            print(f"{stack} does not exist: nothing to empty")
            return 0
        raise
    parameters = {item["ParameterKey"]: item.get("ParameterValue") for item in description.get("Parameters", [])}
    if parameters.get("DeletionProtection") == "true":
        print(
            f"{stack} has DeletionProtection=true: deploy it once with PARAMETERS=DeletionProtection=false, "
            "then destroy it (nothing was deleted)",
            file=sys.stderr,
        )
        return 1
    outputs = {item["OutputKey"]: item.get("OutputValue") for item in description.get("Outputs", [])}
    # the files bucket, and the console's (versioned: its old versions would stop the deletion too)
    buckets = [name for name in (outputs.get("FilesBucketName"), outputs.get("ConsoleBucketName")) if name]
    if not buckets:
        print(f"{stack} has no files bucket: nothing to empty")
        return 0
    for bucket in buckets:
        try:
            versions, uploads = empty_bucket(s3, bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                print(f"{bucket} is gone already")
                continue
            raise
        print(f"{bucket}: {versions} object versions and delete markers deleted, {uploads} open uploads aborted")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args(argv)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3: S3Client = boto3.client("s3", region_name=args.region)
    cloudformation = boto3.client("cloudformation", region_name=args.region)  # type: ignore[call-overload]
    try:
        return prepare(cloudformation, s3, args.stack)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"could not empty the files bucket of {args.stack}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
