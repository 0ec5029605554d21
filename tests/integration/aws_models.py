"""What an AWS API accepts in a field, read from botocore's service models.

A shape carries `pattern` (a Java regular expression), `min` and `max` (lengths) and `enum`.
Some services state their constraints only in the field's documentation: EC2's descriptions
spell out their characters in one systematic sentence, parsed here; a few others are
transcribed below with the exact sentence they come from, and a test checks that the
sentence is still in the model, so a changed rule cannot go unnoticed.
"""

import html
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape

# ------------------------------------------------------------------ Java regex → Python


class UntranslatablePattern(Exception):
    """A Java construct this translation does not handle: extend it rather than guess."""


# Java's POSIX classes (US-ASCII unless UNICODE_CHARACTER_CLASS, which AWS does not set).
_POSIX = {
    "Print": r"\x20-\x7e",
    "Graph": r"\x21-\x7e",
    "Alnum": "A-Za-z0-9",
    "Alpha": "A-Za-z",
    "Digit": "0-9",
    "Upper": "A-Z",
    "Lower": "a-z",
    "Punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "Space": r" \t\n\x0b\f\r",
    "ASCII": r"\x00-\x7f",
    "Cntrl": r"\x00-\x1f\x7f",
}


@cache
def _categories() -> dict[str, str]:
    """Each Unicode general category (Lu, Zs, ...) as the ranges of a Python character class."""
    ranges: dict[str, list[list[int]]] = {}
    for code in range(sys.maxunicode + 1):
        spans = ranges.setdefault(unicodedata.category(chr(code)), [])
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return {
        category: "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in spans)
        for category, spans in ranges.items()
    }


def unicode_class(name: str) -> str:
    """`\\p{name}`'s members for a Python class: a POSIX class, or a category or its group (L = Lu Ll Lt Lm Lo)."""
    if name in _POSIX:
        return _POSIX[name]
    name = name.removeprefix("Is")
    members = [ranges for category, ranges in _categories().items() if category.startswith(name)]
    if not members or len(name) not in (1, 2):
        raise UntranslatablePattern(f"\\p{{{name}}}")
    return "".join(members)


_CLASS_ESCAPE = re.compile(r"\\[pP]\{(\w+)\}|\\[wdsWDS]")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def java_to_python(pattern: str) -> str:
    """The same language as a Python `re` pattern (compile it with re.ASCII: Java's \\w, \\d, \\s are ASCII).

    Handled: `\\p{..}` categories and POSIX classes (`\\P{..}` outside a class), UTF-16
    surrogate pairs written as two `\\uXXXX` escapes, and a `-` right after a class escape
    inside `[...]`, which Java reads as a literal. Refused: class intersections (`&&`),
    possessive quantifiers, `\\Q..\\E`, and anything else Python would read differently.
    """

    def pair(match: re.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    text = re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", pair, pattern, flags=re.IGNORECASE)
    if re.search(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}", text):
        raise UntranslatablePattern(f"a lone surrogate in {pattern!r}")
    if "&&" in text or "\\Q" in text:
        raise UntranslatablePattern(pattern)
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            escape = _CLASS_ESCAPE.match(text, i)
            if escape and escape.group(1):
                negated = text[i + 1] == "P"
                members = unicode_class(escape.group(1))
                if in_class and negated:
                    raise UntranslatablePattern(f"\\P inside a class in {pattern!r}")
                out.append(members if in_class else f"[{'^' if negated else ''}{members}]")
                i = escape.end()
            else:
                token = text[i : i + 2] if not _UNICODE_ESCAPE.match(text, i) else text[i : i + 6]
                if token[1:2].isalpha() and token[1] not in "wdsWDSbBnrtfuUxAZ":
                    raise UntranslatablePattern(f"{token} in {pattern!r}")
                out.append(token)
                i += len(token)
            if in_class and escape and text[i : i + 1] == "-" and text[i + 1 : i + 2] != "]":
                out.append("\\-")  # Java: a range cannot start at a class, so the '-' is literal
                i += 1
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            if text[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if text[i + 1 : i + 2] == "]":  # a leading ']' is literal in both
                out.append("\\]")
                i += 1
        elif char == "[" and in_class:
            raise UntranslatablePattern(f"a nested class in {pattern!r}")
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        elif not in_class and char in "*+?}" and text[i + 1 : i + 2] == "+":
            raise UntranslatablePattern(f"a possessive quantifier in {pattern!r}")
        else:
            out.append(char)
        i += 1
    return "".join(out)


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(java_to_python(pattern), re.ASCII)


# ------------------------------------------------------------------ shapes


@cache
def service(name: str) -> ServiceModel:
    return ServiceModel(Loader().load_service_model(name, "service-2"))


def shape_at(api: str) -> Shape:
    """`service:Operation:Member[].Member.{key}`: the shape of one input field."""
    name, operation, path = api.split(":", 2)
    shape = service(name).operation_model(operation).input_shape
    assert shape is not None, api
    for token in path.split("."):
        member, _, rest = token.partition("[]")
        if member == "{key}":
            shape = shape.key  # type: ignore[attr-defined]
        elif member == "{value}":
            shape = shape.value  # type: ignore[attr-defined]
        else:
            shape = shape.members[member]  # type: ignore[attr-defined]
        if token.endswith("[]"):
            shape = shape.member  # type: ignore[attr-defined]
        assert not rest, api
    return shape


def documentation(shape: Shape) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(shape.documentation or "")).split())


def utf16_length(value: str) -> int:
    """A length as the APIs count it (Java strings: UTF-16 code units)."""
    return len(value.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Constraint:
    source: str  # where it comes from: "pattern", "max", "documented: <sentence>"
    rule: str  # what it says, for the report
    holds: Callable[[str], bool]


def _charset(listing: str) -> str:
    """EC2's "a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*" as the characters it allows."""
    allowed = ""
    for item in listing.split(", "):
        item = item.removeprefix("and ")
        if item == "spaces":
            allowed += " "
        elif re.fullmatch(r"[a-zA-Z0-9]-[a-zA-Z0-9]", item):
            allowed += "".join(chr(c) for c in range(ord(item[0]), ord(item[2]) + 1))
        else:
            allowed += item
    return allowed


# Constraints stated only in prose, transcribed: (field's shape path, sentence, rule, check).
_TRANSCRIBED: list[tuple[str, str, str, Callable[[str], bool]]] = [
    (
        "ec2:CreateTags:Tags[].Key",
        "May not begin with aws:",
        "not aws:…",
        lambda v: not v.lower().startswith("aws:"),
    ),
    (
        "secretsmanager:CreateSecret:Name",
        "The secret name can contain ASCII letters, numbers, and the following characters: /_+=.@-",
        "[A-Za-z0-9/_+=.@-]+",
        lambda v: re.fullmatch(r"[A-Za-z0-9/_+=.@-]+", v) is not None,
    ),
    (
        "secretsmanager:CreateSecret:Name",
        "Do not end your secret name with a hyphen followed by six characters.",
        "not …-XXXXXX",
        lambda v: re.search(r"-[^-/]{6}$", v) is None,
    ),
    (
        "cloudwatch:PutMetricAlarm:AlarmName",
        "can't contain ASCII control characters",
        "no control characters",
        lambda v: re.search(r"[\x00-\x1f\x7f]", v) is None,
    ),
    (
        "cloudwatch:PutDashboard:DashboardName",
        'The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_".',
        "[A-Za-z0-9_-]{1,255}",
        lambda v: re.fullmatch(r"[A-Za-z0-9_-]{1,255}", v) is not None,
    ),
    (
        "sns:CreateTopic:Name",
        "Topic names must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and "
        "hyphens, and must be between 1 and 256 characters long.",
        "[A-Za-z0-9_-]{1,256}",
        lambda v: re.fullmatch(r"[A-Za-z0-9_-]{1,256}", v) is not None,
    ),
    (
        "ecr:CreateRepository:repositoryName",
        "The repository name must start with a letter and can only contain lowercase letters, numbers, hyphens, "
        "underscores, and forward slashes.",
        "[a-z][a-z0-9_/-]*",
        lambda v: re.fullmatch(r"[a-z][a-z0-9_/-]*", v) is not None,
    ),
    *(
        (
            f"ecs:{api}",
            "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.",
            "[A-Za-z0-9_-]{1,255}",
            lambda v: re.fullmatch(r"[A-Za-z0-9_-]{1,255}", v) is not None,
        )
        for api in (
            "CreateCluster:clusterName",
            "RegisterTaskDefinition:family",
            "RegisterTaskDefinition:containerDefinitions[].name",
            "CreateService:serviceName",
        )
    ),
    *(
        (
            api,
            sentence,
            "[A-Za-z](-?[A-Za-z0-9])*, at most 63",
            lambda v: re.fullmatch(r"[A-Za-z](-?[A-Za-z0-9])*", v) is not None and len(v) <= 63,
        )
        for api, sentence in (
            ("rds:CreateDBCluster:DBClusterIdentifier", "Can't end with a hyphen or contain two consecutive hyphens."),
            (
                "docdb:CreateDBCluster:DBClusterIdentifier",
                "Cannot end with a hyphen or contain two consecutive hyphens.",
            ),
        )
    ),
]


def transcribed() -> list[tuple[str, str]]:
    """(field, sentence) of every transcribed constraint, for the test that they still read so."""
    return [(api, sentence) for api, sentence, _, _ in _TRANSCRIBED]


def constraints(api: str) -> list[Constraint]:
    """Everything the model says `api`'s field accepts."""
    shape = shape_at(api)
    meta: dict[str, Any] = shape.metadata
    found = []
    if "pattern" in meta:
        regex = compiled(meta["pattern"])
        found.append(Constraint("pattern", meta["pattern"], lambda v: regex.fullmatch(v) is not None))
    if "min" in meta:
        found.append(Constraint("min", f"length >= {meta['min']}", lambda v: utf16_length(v) >= meta["min"]))
    if "max" in meta:
        found.append(Constraint("max", f"length <= {meta['max']}", lambda v: utf16_length(v) <= meta["max"]))
    if "enum" in meta:
        found.append(Constraint("enum", "|".join(meta["enum"]), lambda v: v in meta["enum"]))
    bounds = re.fullmatch(r"StringWithLengthBetween(\d+)And(\d+)", shape.name)  # API Gateway v2 names its bounds
    if bounds:
        low, high = int(bounds[1]), int(bounds[2])
        found.append(Constraint("shape name", f"{low} <= length <= {high}", lambda v: low <= utf16_length(v) <= high))
    text = documentation(shape)
    length = re.search(r"Up to (\d+) characters in length|accept a maximum of (\d+) Unicode characters", text)
    if length:
        limit = int(length[1] or length[2])
        found.append(Constraint(f"documented: {length[0]}", f"length <= {limit}", lambda v: len(v) <= limit))
    characters = re.search(r"(?:Valid characters:|Allowed characters are) (a-z, A-Z, 0-9, spaces, and \S+)", text)
    if characters:
        allowed = _charset(characters[1])
        found.append(
            Constraint(
                f"documented: {characters[0]}",
                f"only {allowed!r}",
                lambda v: all(c in allowed for c in v),
            )
        )
    for field, sentence, rule, check in _TRANSCRIBED:
        if field == api:
            found.append(Constraint(f"documented: {sentence}", rule, check))
    return found
