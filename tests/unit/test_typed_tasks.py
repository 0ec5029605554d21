"""Typed tasks: mypy --strict over tests/typing/task_calls.py fails on exactly the lines marked
`# wrong` and nowhere else, so a wrong call is caught before it reaches the broker."""

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.process

CALLS = ROOT / "tests" / "typing" / "task_calls.py"


def test_mypy_refuses_exactly_the_wrong_calls() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(CALLS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    failing = {
        int(n) for n in re.findall(rf"^{re.escape(str(CALLS.relative_to(ROOT)))}:(\d+): error", result.stdout, re.M)
    }
    wrong = {n for n, line in enumerate(CALLS.read_text().splitlines(), start=1) if "  # wrong: " in line}
    assert len(wrong) >= 9
    assert failing == wrong, result.stdout


def test_the_api_checks_arguments_against_the_same_signature() -> None:
    import pytest

    from multidb.errors import InvalidInput
    from multidb.queue.tasks import add, notify
    from tasks_fn.service import check_arguments

    check_arguments(add, [1, 2.5], {})  # type: ignore[arg-type]
    for args, kwargs in [(["x", 3], {}), ([1], {}), ([1, 2, 3], {}), ([], {"x": 1, "z": 2})]:
        with pytest.raises(InvalidInput):
            check_arguments(add, args, kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        check_arguments(notify, ["0a0b", "task:finished"], {})  # type: ignore[arg-type]
    assert set(refused.value.fields) == {"event"}
