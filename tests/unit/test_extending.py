"""docs/extending.md stays true: every path it names exists, every recipe says which tests keep
it, and every setting has its row in docs/configuration.md."""

import re

import msgspec

from multidb.settings import Settings
from tests.helpers import ROOT

PAGE = (ROOT / "docs" / "extending.md").read_text()
# A path in backticks: a folder and a file with an extension, or a folder ending in a slash;
# `<name>` placeholders are patterns, not paths.
PATH = re.compile(r"`((?:[\w.-]+/)+(?:[\w.-]+\.(?:py|md|yaml|json|toml|txt)|))`")


def named_paths(text: str) -> set[str]:
    return {path for path in PATH.findall(text) if "<" not in path and not path.startswith("/")}


def test_every_path_the_page_names_exists() -> None:
    paths = named_paths(PAGE)
    assert len(paths) > 20
    missing = sorted(path for path in paths if not (ROOT / path).exists())
    assert missing == []


def test_the_path_reader_sees_files_and_folders_but_not_patterns() -> None:
    text = "`a/b.py` and `infra/deploy/` but not `functions/<name>/` nor `make catalogue`"
    assert named_paths(text) == {"a/b.py", "infra/deploy/"}


def test_every_recipe_names_the_tests_that_keep_it() -> None:
    recipes = re.split(r"^## ", PAGE, flags=re.M)[1:]
    for recipe in recipes:
        title = recipe.splitlines()[0]
        if title == "The complexity budget":
            continue
        kept = recipe.partition("**Kept by**")[2]
        assert re.search(r"`tests/[\w/]+\.py`", kept), f"{title}: no test keeps it"


def test_every_setting_has_its_row_in_the_configuration_page() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    names = [field.name.upper() for field in msgspec.structs.fields(Settings)]
    assert [name for name in names if f"`{name}`" not in documented] == []
