"""Every Redis key is built by a `Keys` family: a key spelled out elsewhere drifts from the
one its readers build (as the beat's heartbeat once did, copied into the metrics function)."""

import ast
import re

from tests.helpers import ROOT

NAMESPACES = re.compile(r"^(auth|tasks|files|realtime|multidb):[a-z]")  # docs/database.md's tops
CHANNELS = {"multidb:notices", "multidb:socketio"}  # pub/sub channels: names, not keys


def spelled_out(source: str) -> list[tuple[int, str]]:
    """The lines and texts of strings and f-strings that start like a key, outside `Keys(…)`."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            text = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if isinstance(parents.get(node), ast.JoinedStr):
                continue  # judged with its f-string
            text = node.value
        else:
            continue
        parent = parents.get(node)
        declared = isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "Keys"
        if NAMESPACES.match(text) and not declared and text not in CHANNELS:
            found.append((node.lineno, text))
    return found


def test_the_scan_finds_a_key_built_by_hand_and_passes_a_family() -> None:
    source = 'quota = Keys("files:quota")\nredis.lock(quota(owner))\nredis.lock(f"files:quota:{owner}")\n'
    assert spelled_out(source) == [(3, "files:quota:")]


def test_no_redis_key_is_spelled_out_beside_its_keys_family() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for folder in ("shared/multidb", "functions", "infra")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, text in spelled_out(path.read_text())
    ]
    assert found == []
