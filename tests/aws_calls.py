"""Record every AWS operation the code calls, and who called it (a pytest plugin, and a hook).

In the test process a botocore initializer hooks every session as it is made. The processes
the tests start (tests/processes.py: the Celery worker, beat, the Socket.IO server) get the
same hook from a `sitecustomize` module on their PYTHONPATH, which loads this file by its
path only once botocore itself is imported: a process that never uses AWS loads nothing, and
no import path changes. Each process appends JSON lines to a file of its own in
MULTIDB_AWS_CALLS_DIR (pytest-xdist workers and subprocesses never share one); `read()`
merges them. tests/integration/test_aws_calls.py checks them, and runs last.

A call is attributed by its innermost frame that is an entry point: a function package's
module (`files_fn`), a Lambda handler's frame (its `context.function_name`: how the local
gateway and the tests invoke a function), or one of CALLERS (the worker's tasks, the sweep,
the Socket.IO server, the keys CLI, the tests' own calls).
"""

import functools
import itertools
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

DIR_VARIABLE = "MULTIDB_AWS_CALLS_DIR"
SITE_VARIABLE = "MULTIDB_AWS_CALLS_SITE"  # tests/processes.py puts it first on a child's PYTHONPATH
CHECK_MODULE = "tests/integration/test_aws_calls.py"

# (module, or module.function, prefix) → who runs it when deployed. Innermost frame first.
CALLERS = [
    ("multidb.files.lifecycle.sweep", "worker"),  # beat sends it to the worker (multidb.queue.tasks)
    ("multidb.queue.", "worker"),
    ("infra.services.realtime", "realtime"),
    ("infra.deploy.keys", "operator"),  # `python -m infra.deploy.keys`, with the operator's credentials
    ("infra.local.", "local"),  # make dev only
    ("tests.", "tests"),  # a test's own call (fixtures, setup, direct calls into the layer)
]
# Parameters that name what a call touches (for the resource ARN), and nothing secret.
NAMING = ("Bucket", "Key", "SecretId", "Name", "Names")


_thread = threading.local()  # the caller of the coroutine that handed this thread its work


def caller_of(frame: Any) -> tuple[str, str]:
    """(caller, innermost module outside botocore and boto3) for the frame making a call.

    A call run in a worker thread (anyio's `to_thread.run_sync`, as multidb.files.storage does) has
    none of its coroutine's frames on its stack: it inherits the caller found where it was handed over."""
    module = ""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name == __name__:  # this recorder, handing work to a thread
            frame = frame.f_back
            continue
        if not module and not name.startswith(("botocore", "boto3", __name__, "_multidb_aws_calls")):
            module = name
        qualified = f"{name}.{frame.f_code.co_name}"
        package = name.split(".", 1)[0]
        if package.endswith("_fn"):
            return package, module
        invoked = getattr(frame.f_locals.get("context"), "function_name", None)
        if isinstance(invoked, str):  # a handler's (event, context): the function being invoked
            return f"function:{invoked}", module
        for prefix, caller in CALLERS:
            if qualified == prefix or name.startswith(prefix) or name == prefix.rstrip("."):
                return caller, module
        frame = frame.f_back
    return getattr(_thread, "handed_over", ("unknown", module))


_lock = threading.Lock()
_count = itertools.count()
_ID = "multidb_aws_call"  # where a call's record id waits in botocore's request context for its answer


def _record(params: dict[str, Any], model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
    directory = os.environ.get(DIR_VARIABLE)
    if not directory:
        return
    caller, module = caller_of(sys._getframe(1))
    metadata = model.service_model.metadata
    named = {k: v for k, v in params.items() if k in NAMING and isinstance(v, str | list)}
    entry = {
        "service": metadata.get("signingName") or metadata["endpointPrefix"],
        "endpoint": metadata["endpointPrefix"],
        "operation": model.name,
        "kind": "presign" if (context or {}).get("is_presign_request") else "call",
        "params": named,
        # The settings that held these names (CONNECTIONS_SECRET_ID, ...): how the check finds
        # what the template gives the same setting.
        "settings": sorted(k for k, v in os.environ.items() if v and v in {str(x) for x in named.values()}),
        "caller": caller,
        "module": module,
        "app_env": os.environ.get("APP_ENV", ""),
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
        "pid": os.getpid(),
        "id": f"{os.getpid()}-{next(_count)}",
    }
    if context is not None:
        context[_ID] = entry["id"]
    _write(directory, entry)


def _answered(http_response: Any, context: dict[str, Any], **_: Any) -> None:
    """The HTTP status of a call recorded above (a 404 means something: see test_aws_calls)."""
    directory = os.environ.get(DIR_VARIABLE)
    if directory and _ID in context:
        _write(directory, {"answer": context[_ID], "status": http_response.status_code})


def _write(directory: str, line: dict[str, Any]) -> None:
    with _lock, open(Path(directory) / f"{os.getpid()}.jsonl", "a") as sink:
        sink.write(json.dumps(line) + "\n")


def _attach(session: Any) -> None:
    session.register("provide-client-params", _record, unique_id="multidb-aws-calls")
    session.register("after-call", _answered, unique_id="multidb-aws-calls-answered")


def _handing_over(caller: tuple[str, str], function: Any, *args: Any) -> Any:
    _thread.handed_over = caller
    try:
        return function(*args)
    finally:
        del _thread.handed_over


def _follow_threads() -> None:
    """Wrap anyio's `to_thread.run_sync` so the thread knows whose work it runs."""
    try:
        from anyio import to_thread
    except ImportError:
        return
    original = to_thread.run_sync
    if getattr(original, "hands_over_caller", False):
        return

    async def run_sync(function: Any, *args: Any, **options: Any) -> Any:
        caller = caller_of(sys._getframe(1))
        return await original(functools.partial(_handing_over, caller, function), *args, **options)

    run_sync.hands_over_caller = True  # type: ignore[attr-defined]
    to_thread.run_sync = run_sync


def install() -> None:
    """Record every call of every botocore session of this process, made now or later."""
    import botocore

    botocore.register_initializer(_attach)
    boto3 = sys.modules.get("boto3")  # possibly still importing (it imports botocore first)
    session = getattr(boto3, "DEFAULT_SESSION", None)
    if session is not None:
        _attach(session._session)
    _follow_threads()


def read(directory: str | None = None) -> list[dict[str, Any]]:
    """Every call recorded so far by every process of this run, with its HTTP status when it was answered."""
    folder = Path(directory or os.environ[DIR_VARIABLE])
    lines = [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]
    statuses = {line["answer"]: line["status"] for line in lines if "answer" in line}
    return [{**line, "status": statuses.get(line["id"])} for line in lines if "answer" not in line]


# ------------------------------------------------------------------ the hook of child processes

_SITECUSTOMIZE = '''\
"""Written by tests/aws_calls.py: record AWS calls once botocore is imported (test runs only)."""
import importlib.abc
import importlib.util
import sys


class _AwsCallsHook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "botocore":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            try:
                recorder = importlib.util.spec_from_file_location("_multidb_aws_calls", {path!r})
                loaded = importlib.util.module_from_spec(recorder)
                recorder.loader.exec_module(loaded)
                loaded.install()
            except Exception as exc:  # never break the process under test
                print(f"AWS call recording is off: {{exc!r}}", file=sys.stderr)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AwsCallsHook())
'''


# ------------------------------------------------------------------ pytest


def pytest_configure(config: "pytest.Config") -> None:
    if DIR_VARIABLE not in os.environ:  # the controller (or a lone run) makes the folder; xdist workers inherit it
        folder = Path(tempfile.mkdtemp(prefix="multidb-aws-calls-"))
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(path=str(Path(__file__).resolve())))
        os.environ[DIR_VARIABLE] = str(folder)
        os.environ[SITE_VARIABLE] = str(folder / "site")
    install()


def pytest_collection_modifyitems(items: list["pytest.Item"]) -> None:
    """The check of the recorded calls runs after every other test of the session."""
    items.sort(key=lambda item: str(item.path).endswith(CHECK_MODULE))
