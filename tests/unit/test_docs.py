"""The documentation stays true to the tree: every relative link in README.md and docs/*.md
resolves (a file that exists; for `#anchor`, a heading of that page, slugged as GitHub slugs
it), every `make <target>` it names is a target of the Makefile, every page of docs/ is
reachable from the README, and the README fits in 200 lines.

Links are read from the prose (a link inside code is an example); `make` calls from the code,
inline spans and fenced blocks, where a command starts (`make deploy STAGE=dev`,
`ISOLATE=1 make dev`, `… && make build`), so prose may say "make sure" and a tree may say
"make dev's gateway" without naming a target.
"""

import re
import shlex
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # http:, https:, mailto:, …
# `make` where a command starts: the line or span, after `&&`, `;`, `||`, `$ `, or after VAR=value.
MAKE = re.compile(r"(?:^|&&|;|\|\||\$)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*make\s+([^;&|)]*)")
SHELL_COMMENT = re.compile(r"(^|\s)#.*")
MAKE_RULE = re.compile(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?![:=])")


def outside_fences(text: str) -> list[str]:
    """The lines of a page that are not inside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def code_lines(text: str) -> list[str]:
    """The page's code, a line at a time: every line of a fenced block, every inline span."""
    code, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code.extend(match.group(2) for match in INLINE_CODE.finditer(line))
    return code


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """Every `#anchor` a page answers to: its headings' slugs (repeats get -1, -2, …) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_fences(page.read_text(encoding="utf-8")):
        if match := HEADING.match(line):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return frozenset(found)


def links(page: Path) -> list[str]:
    """Relative link targets of the page's prose (code is not prose: a link in code is an example)."""
    prose = "\n".join(INLINE_CODE.sub(" ", line) for line in outside_fences(page.read_text(encoding="utf-8")))
    found = INLINE_LINK.findall(prose) + HTML_LINK.findall(prose)
    found += [m.group(1) for line in prose.splitlines() if (m := REFERENCE_LINK.match(line))]
    return [target for target in found if target and not SCHEME.match(target) and not target.startswith("//")]


def broken(page: Path, target: str) -> str | None:
    """Why a relative link does not resolve, or None when it does."""
    path, _, anchor = target.partition("#")
    destination = page if not path else (page.parent / unquote(path)).resolve()
    if path.startswith("/"):
        return "absolute path: write it relative to the page"
    if not destination.exists():
        return "no such file"
    if anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
        return f"no heading #{anchor} in {_id(destination)}"
    return None


@cache
def make_targets() -> frozenset[str]:
    """The Makefile's explicit targets (rules whose names are plain words, not variables or files)."""
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") or line.lstrip().startswith("#"):
            continue
        if match := MAKE_RULE.match(line):
            targets.update(match.group(1).split())
    return frozenset(targets - {".PHONY", ".DEFAULT_GOAL"})


def make_calls(page: Path) -> list[str]:
    """Targets named by a `make` command in the page's code: `make deploy STAGE=dev`,
    `ISOLATE=1 make dev`, `make lint typecheck`, `make build && …`."""
    named = []
    for line in code_lines(page.read_text(encoding="utf-8")):
        for match in MAKE.finditer(SHELL_COMMENT.sub("", line)):
            try:
                words = shlex.split(match.group(1))
            except ValueError:  # an unbalanced quote: plain words will do
                words = match.group(1).split()
            named += [word for word in words if "=" not in word and not word.startswith("-")]
    return named


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def test_the_readme_fits_in_200_lines() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_every_relative_link_resolves(page: Path) -> None:
    problems = [f"{target}: {why}" for target in links(page) if (why := broken(page, target))]
    assert problems == [], f"{_id(page)}: broken links"


@pytest.mark.parametrize("page", DOCS, ids=_id)
def test_every_make_target_named_exists(page: Path) -> None:
    unknown = sorted(set(make_calls(page)) - make_targets())
    assert unknown == [], f"{_id(page)} names make targets the Makefile lacks"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in links(README)}
    assert [_id(page) for page in DOCS[1:] if page.resolve() not in linked] == []


def test_the_checker_reads_markdown_as_github_does(tmp_path: Path) -> None:
    """The rules above, on a page made to trip them: a checker that cannot fail proves nothing."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Tokens, sessions and `RBAC`\n## Notes\n## Notes\n## `.env` files\n"
        "[ok](#tokens-sessions-and-rbac) [again](#notes-1) [dotenv](#env-files) [gone](#missing)\n"
        "![img](nowhere.png) [web](https://example.com) `[code](not-a-link.md)` and make sure of it.\n"
        "```bash\nPARAMETER_OVERRIDES=X=1 make dev\nmake deploy STAGE=dev ARCH=x86_64   # make nothing\n"
        'make build && make pytest PYTEST_ARGS="-k files"\n[fenced](not-a-link.md)\n```\n'
        "```\ninfra/    make dev's supervisor\n```\nRun `make lint typecheck`, not `make`.\n",
        encoding="utf-8",
    )
    assert {target: broken(page, target) is None for target in links(page)} == {
        "#tokens-sessions-and-rbac": True,
        "#notes-1": True,
        "#env-files": True,
        "#missing": False,
        "nowhere.png": False,
    }
    assert make_calls(page) == ["dev", "deploy", "build", "pytest", "lint", "typecheck"]
    assert {"dev", "test", "deploy", "help"} <= make_targets()
    assert not any("/" in target or "$" in target for target in make_targets())
