"""Run by the SAM CLI's own Python: translate template.yaml offline and print what tests check.

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
for resource in template["Resources"].values():
    properties = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if key in properties:
            properties[key] = "s3://bucket/artifact.zip"  # what `sam package` puts there

resources = transform(template, {}, NoManagedPolicies())["Resources"]
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
        },
        default=str,
    )
)
