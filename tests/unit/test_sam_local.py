"""What `sam local` and compose users get: an env-vars file the template accepts, datastores that match."""

import json
from pathlib import Path

import yaml

from infra.deploy.template import load
from infra.local.sam_local_env import env_vars_file, sam_local_template
from multidb.security.keys import load_private, load_public, login_key, signing_key
from tests.helpers import ROOT


def test_every_variable_is_declared_by_the_template() -> None:
    """sam local passes only variables the template declares; the rest would vanish silently."""
    declared: set[str] = set()
    for function in load().functions.values():
        declared |= set(function.environment)
    assert set(env_vars_file()["Parameters"]) <= declared


def test_the_file_makes_containers_share_the_local_keys() -> None:
    variables = env_vars_file()["Parameters"]
    assert variables["JWT_KEY_ID"] == signing_key().kid
    published = json.loads(variables["JWT_PUBLIC_KEYS"])
    assert [entry["kid"] for entry in published] == [signing_key().kid]
    signing = load_private(variables["JWT_PRIVATE_KEY"]).public_key().public_numbers()
    assert load_public(published[0]["pem"]).public_numbers() == signing
    assert signing == signing_key().private_key.public_key().public_numbers()
    assert load_private(variables["LOGIN_PRIVATE_KEY"]).private_numbers() == login_key().private_numbers()


DATASTORES = {"postgres", "redis", "mongo", "minio"}
APP_SERVICES = {"worker", "beat", "realtime"}


def test_compose_provides_every_datastore_with_a_healthcheck() -> None:
    compose = yaml.safe_load((ROOT / "infra/local/compose.yaml").read_text())
    assert set(compose["services"]) == DATASTORES | APP_SERVICES
    for name, service in compose["services"].items():
        if name in APP_SERVICES:
            continue
        assert ":" in service["image"], name  # pinned
        assert "latest" not in service["image"], name
        assert "healthcheck" in service, name
        assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name  # not exposed beyond the host
    variables = env_vars_file()["Parameters"]
    assert "postgres:postgres@" in variables["DATABASE_URL"]
    assert variables["DATABASE_URL"].endswith("/multidb")


def test_compose_builds_each_app_service_from_its_dockerfile_target() -> None:
    compose = yaml.safe_load((ROOT / "infra/local/compose.yaml").read_text())
    dockerfile = (ROOT / "infra/services/Dockerfile").read_text()
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == {"context": "../..", "dockerfile": "infra/services/Dockerfile", "target": name}
        assert f" AS {name}\n" in dockerfile, name
        assert service["profiles"] == ["app"]  # `up` alone starts only the datastores
        assert set(service["depends_on"]) == {"postgres", "redis"}
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", [])), name


def test_from_the_environment_loopback_urls_become_the_host_containers_reach() -> None:
    environ = {
        "DATABASE_URL": "postgresql+asyncpg://postgres:secret@127.0.0.1:5432/multidb",
        "REDIS_URL": "redis://localhost:6390/0",
        "MONGO_URL": "mongodb://mongo.internal:27017",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    variables = env_vars_file(environ, host="172.17.0.1")["Parameters"]
    assert variables["DATABASE_URL"] == "postgresql+asyncpg://postgres:secret@172.17.0.1:5432/multidb"
    assert variables["REDIS_URL"] == "redis://172.17.0.1:6390/0"
    assert variables["MONGO_URL"] == "mongodb://mongo.internal:27017"  # not loopback: as it is
    assert variables["S3_ENDPOINT_URL"] == "http://172.17.0.1:9000"
    assert "BROKER_URL" not in variables  # unset: the functions fall back as make dev's do


def test_the_functions_get_make_devs_issuer_and_audience_not_the_stages() -> None:
    """A token `make dev` issued is then one sam local's authorizer accepts, and the reverse."""
    variables = env_vars_file()["Parameters"]
    assert (variables["JWT_ISSUER"], variables["JWT_AUDIENCE"]) == ("multidb", "multidb-api")


def test_the_sam_local_template_names_the_authorizer_by_its_function_arn(tmp_path: Path) -> None:
    """The SAM CLI cannot read `!Ref Function.Alias` as an authorizer and would skip it on every route."""
    template = {
        "Resources": {
            "HttpApi": {
                "Type": "AWS::Serverless::HttpApi",
                "Properties": {"Auth": {"Authorizers": {"LambdaAuthorizer": {"FunctionArn": {"Ref": "Fn.Alias"}}}}},
            },
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "Fn", "Timeout": 5}},
        }
    }
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template))
    written = yaml.safe_load(sam_local_template(tmp_path).read_text())
    authorizer = written["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["LambdaAuthorizer"]
    assert authorizer["FunctionArn"] == {"Fn::Sub": "${Fn.Arn}"}
    # Lambda's init phase (imports of a cold start) is outside the timeout; the SAM CLI's is not.
    assert written["Resources"]["Fn"]["Properties"] == {"CodeUri": "Fn", "Timeout": 15}


def test_compose_paths_are_the_compose_files_folders_and_name_the_repository() -> None:
    """Relative paths in a compose file are its folder's (infra/local): the build context is the
    repository root, where .dockerignore is, and the keys are make dev's .local/keys."""
    compose = yaml.safe_load((ROOT / "infra/local/compose.yaml").read_text())
    folder = ROOT / "infra/local"
    context = (folder / compose["services"]["worker"]["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / ".dockerignore").exists()
    (volume,) = compose["services"]["realtime"]["volumes"]
    default = volume.split(":-", 1)[1].split("}", 1)[0]
    assert (folder / default).resolve() == ROOT / ".local" / "keys"


def test_compose_local_builds_every_image_here_and_names_the_stand_ins_as_such() -> None:
    compose = yaml.safe_load((ROOT / "infra/local/compose.yaml").read_text())
    local = yaml.safe_load((ROOT / "infra/local/compose.local.yaml").read_text())
    assert set(local["services"]) == set(compose["services"])
    for name, service in local["services"].items():
        assert service["image"].startswith("multidb-local/"), name
        assert "build" in service, name
    assert "standin-secantusdb" in local["services"]["mongo"]["image"]
    assert "standin-moto" in local["services"]["minio"]["image"]
    for name in APP_SERVICES:  # the Dockerfile as it is, pip pointed at the wheelhouse
        assert set(local["services"][name]["build"]) == {"args"}, name
        assert local["services"][name]["build"]["args"]["PIP_NO_INDEX"] == "1"
    dockerfile = (ROOT / "infra/services/Dockerfile").read_text()
    assert dockerfile.count("ARG PIP_FIND_LINKS") == 2  # the base stage and the worker's own pip install
