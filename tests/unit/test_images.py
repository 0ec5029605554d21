"""The images' tag names their platform: an x86_64 deploy never reuses an arm64 image (issue 20, finding 6)."""

import re
import subprocess

import pytest

from infra.deploy import images

pytestmark = pytest.mark.process


def test_the_tag_differs_by_platform_and_is_stable_for_the_same_inputs() -> None:
    arm, x86 = images.tag("linux/arm64"), images.tag("linux/amd64")
    assert arm != x86
    # Not only the suffix: the hash itself covers the platform.
    assert arm.split("-")[0] != x86.split("-")[0]
    assert re.fullmatch(r"[0-9a-f]{16}-arm64", arm)
    assert re.fullmatch(r"[0-9a-f]{16}-amd64", x86)
    assert images.tag("linux/arm64") == arm
    assert images.tag("linux/amd64") == x86


def test_an_unknown_platform_has_no_tag() -> None:
    with pytest.raises(ValueError, match="unknown platform 'linux/riscv64'"):
        images.tag("linux/riscv64")


def test_the_command_prints_the_platforms_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert images.main(["tag", "--platform", "linux/amd64"]) == 0
    assert capsys.readouterr().out.strip() == images.tag("linux/amd64")
    with pytest.raises(SystemExit):
        images.main(["tag"])  # no default platform to fall back on


@pytest.mark.parametrize(("arch", "platform"), [("arm64", "linux/arm64"), ("x86_64", "linux/amd64")])
def test_make_deploy_passes_the_tag_of_its_arch(arch: str, platform: str) -> None:
    """sam deploy's ImageTag is the tag `images push --platform` gives the images it builds for ARCH."""
    dry_run = subprocess.run(
        ["make", "-n", "--no-print-directory", "sam-deploy", f"ARCH={arch}", "STAGE=dev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"ImageTag=$(python -m infra.deploy.images tag --platform {platform})" in dry_run
