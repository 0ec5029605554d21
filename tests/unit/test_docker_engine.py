"""The private Docker engine and the base images' files, without starting either (make docker, make images-local)."""

import io
import tarfile
from pathlib import Path

import pytest

from infra.local.base_images import BuildError, Root
from infra.local.engine import STATE, dockerd_argv


def test_the_engine_keeps_to_its_own_folder_and_leaves_the_firewall_alone() -> None:
    argv = dockerd_argv("overlay2")
    assert f"--host=unix://{STATE}/docker.sock" in argv
    assert f"--data-root={STATE}/data" in argv
    assert f"--exec-root={STATE}/exec" in argv
    # Docker's defaults set the host's FORWARD policy to DROP and turn on forwarding machine-wide.
    assert {"--iptables=false", "--ip-forward=false", "--ip-masq=false"} <= set(argv)
    assert "--userland-proxy=true" in argv  # how sam local reaches the port it published


def base(tmp_path: Path) -> Path:
    """A stand-in for the debootstrap tarball: paths as tar writes them, "./" first."""
    path = tmp_path / "base.tar"
    with tarfile.open(path, "w") as archive:
        for name in ("./", "./opt/", "./usr/", "./usr/local/"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        info = tarfile.TarInfo("./etc/hostname")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"box"))
    return path


def test_a_folder_the_debian_root_has_is_not_added_twice(tmp_path: Path) -> None:
    """docker import refuses an archive that holds a path twice, a folder included."""
    path = base(tmp_path)
    with tarfile.open(path, "a") as archive:
        root = Root(archive)
        root.folder("opt")
        root.folder("usr/local")
        root.file("usr/local/bin/pip", "#!/bin/sh\n")
        root.folder("var/task")
    with tarfile.open(path) as archive:
        names = [name.removeprefix("./").strip("/") for name in archive.getnames()]
    assert len(names) == len(set(names))
    assert {"opt", "usr/local/bin/pip", "var/task"} <= set(names)


def test_a_file_the_debian_root_has_is_an_error_not_a_silent_second_copy(tmp_path: Path) -> None:
    with tarfile.open(base(tmp_path), "a") as archive, pytest.raises(BuildError):
        Root(archive).file("etc/hostname", "other\n")
