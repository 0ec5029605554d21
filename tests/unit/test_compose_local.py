"""python -m infra.local.compose without an engine: the file docker-compose 1.29 reads, the
wheelhouse pip is pointed at, the keys check (make compose-local)."""

import urllib.request
from importlib.metadata import version
from pathlib import Path

import yaml

from infra.local import compose
from tests.processes import free_port


def test_docker_compose_1_29_gets_compose_yaml_without_name_and_the_name_as_the_project(tmp_path: Path) -> None:
    copy, name = compose.without_name(tmp_path)
    original = yaml.safe_load(compose.FILES[0].read_text())
    assert name == original["name"] == "multidb"
    content = yaml.safe_load(copy.read_text())
    assert "name" not in content
    assert content["services"] == original["services"]
    assert copy.parent == tmp_path  # compose.yaml itself stays as Compose v2 reads it


def test_the_stand_ins_are_the_versions_the_tests_run() -> None:
    environment = compose.environment("unix:///nowhere", "172.17.0.1", "http://172.17.0.1:3141/")
    assert environment["MOTO_VERSION"] == version("moto")  # what the test suite's S3 runs
    assert environment["SECANTUSDB_VERSION"] == version("secantusdb")
    assert environment["WHEELHOUSE_URL"] == "http://172.17.0.1:3141/"


def test_the_wheelhouse_is_served_as_a_page_of_links_pip_can_read(tmp_path: Path) -> None:
    (tmp_path / "example-1.0-py3-none-any.whl").write_bytes(b"wheel")
    with compose.serving(tmp_path, "127.0.0.1", port=free_port()) as url:
        page = urllib.request.urlopen(url, timeout=5).read().decode()
        assert 'href="example-1.0-py3-none-any.whl"' in page
        assert urllib.request.urlopen(f"{url}example-1.0-py3-none-any.whl", timeout=5).read() == b"wheel"


def test_keys_the_containers_cannot_read_are_named_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    problem = compose.keys_problem({"LOCAL_KEYS_DIR": str(folder)})
    assert problem is not None
    assert "no keys" in problem
    folder.mkdir()
    key = folder / "jwt-signing.pem"
    key.write_text("pem")
    key.chmod(0o600)  # make dev's umask; the owner is this test's user, not the containers'
    problem = compose.keys_problem({"LOCAL_KEYS_DIR": str(folder)})
    assert problem is not None
    assert f"chown -R {compose.APP_UID} {folder}" in problem
    key.chmod(0o644)
    assert compose.keys_problem({"LOCAL_KEYS_DIR": str(folder)}) is None
