"""Run by the SAM CLI's own Python: translate template.yaml offline and print what tests check.

    sam_translate.py template.yaml [Logical=s3://bucket/key.zip ...]

Code locations become S3 URLs as `sam package` would make them (one per artifact, or the
ones given, so a test can show what a new artifact changes), and a nested application's
local Location its uploaded template's URL. The output has the summary the template tests
check and the whole translated template (checkov and the wiring tests read it).

(samtranslator lives in .venv-sam, which pins its own boto3; it cannot be imported in tests.)
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


with open(sys.argv[1]) as handle:
    template = yaml_parse(handle.read())
uploaded = dict(arg.split("=", 1) for arg in sys.argv[2:])
for name, resource in template["Resources"].items():
    properties = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if key in properties:
            properties[key] = uploaded.get(name, "s3://bucket/artifact.zip")  # what `sam package` puts there
    if resource["Type"] == "AWS::Serverless::Application" and isinstance(properties.get("Location"), str):
        properties["Location"] = f"https://bucket.s3.amazonaws.com/{properties['Location']}"

translated = transform(template, {}, NoManagedPolicies())
resources = translated["Resources"]
api = next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api")["Properties"]["Body"]
schemes = api["components"]["securitySchemes"]
routes = {
    f"{method.upper()} {path}": [name for requirement in op.get("security", []) for name in requirement]
    for path, operations in api["paths"].items()
    for method, op in operations.items()
}
permissions = [
    {"function": r["Properties"]["FunctionName"], "source": json.dumps(r["Properties"].get("SourceArn"))}
    for r in resources.values()
    if r["Type"] == "AWS::Lambda::Permission"
]
policies = {
    name.removesuffix("Role"): json.dumps(r["Properties"].get("Policies", []))
    for name, r in resources.items()
    if r["Type"] == "AWS::IAM::Role"
}
print(
    json.dumps(
        {
            "authorizers": {k: v["x-amazon-apigateway-authorizer"] for k, v in schemes.items()},
            "routes": routes,
            "permissions": permissions,
            "policies": policies,
            "template": translated,
        },
        default=str,
    )
)
