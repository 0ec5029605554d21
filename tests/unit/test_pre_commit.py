"""The pre-commit hooks run the very commands `make lint typecheck` runs."""

import re

import yaml

from tests.helpers import ROOT


def make_commands(target: str) -> list[str]:
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, target
    return [line.strip() for line in recipe.group(1).splitlines()]


def test_the_hooks_are_make_lint_and_typecheck() -> None:
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    }
    lint, typecheck = make_commands("lint"), make_commands("typecheck")
    # pre-commit names the changed files where make names the folder, and fixes what it can
    assert hooks["ruff-check"]["entry"].removeprefix(".venv/bin/").removesuffix(" --fix") + " ." == lint[0]
    assert hooks["ruff-format"]["entry"].removeprefix(".venv/bin/") + " --check ." == lint[1]
    assert hooks["mypy"]["entry"].removeprefix(".venv/bin/") == typecheck[0]
