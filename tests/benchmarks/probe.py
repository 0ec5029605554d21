"""One measured Lambda container: run as `python -I -S -B probe.py SPEC SPAWNED_NS` by bench.py.

Standard library only, and nothing imported that Lambda's own bootstrap does not import
before the handler: the interpreter's sys.path is cut down to the artifact folders the spec
names (the function's code, the layer, the runtime's boto3), as in Lambda.

The spec (JSON) names the handler, the event and what to do:
- "cold": import the handler, answer the event once; record the time from the parent's spawn
  to that first response, the import and the first call alone, and the peak RSS;
- then, with "warm" > 0, answer the same event that many times more and record each call;
- then, with "profile" (a path), answer it as many times again under cProfile and write the
  statistics there (after the timed calls, so the profiler's cost is in no figure);
- "restore": emulate a SnapStart restore: import the handler, run `multidb.snapstart`'s
  before-snapshot hooks, fork, and in the child run the after-restore hooks and answer the
  event; record the child's time from the fork to its first response (with "profile", the
  child runs under cProfile and its figure is not comparable).
With no handler it records only the interpreter's start (the bare baseline), or, given
"alone" (module names), the time and peak RSS of importing just those: the libraries a
function's first response loaded, without any of its own code or work (the stack's bound).
A cold run lists them as "third_party": what it loaded from its paths, first-party aside.

The figures go to the spec's result file; any failure goes there too, with its traceback.
"""

import json
import os
import sys
import time
from collections.abc import Callable

type Figures = dict[str, object]

IMPORTED = "bench: handler imported"
ANSWERED = "bench: first response"


class Context:
    """The attributes of Lambda's context object that handlers and Mangum read."""

    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def peak_rss_mib() -> float:
    """This process's peak resident set since its exec (VmHWM). Not getrusage's ru_maxrss:
    Linux carries that over from the parent the process was forked from."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def outcome(response: object) -> str:
    """What the response was, in one word the parent checks: the HTTP status, or allow/deny."""
    if isinstance(response, dict) and "statusCode" in response:
        return str(response["statusCode"])
    if isinstance(response, dict) and "isAuthorized" in response:
        return "allow" if response["isAuthorized"] else "deny"
    return f"unexpected {type(response).__name__}"


def failure() -> str:
    import traceback  # only when something went wrong: not part of any figure

    return traceback.format_exc()


def load_handler(name: str) -> Callable[[object, object], object]:
    module, _, attribute = name.rpartition(".")
    return getattr(__import__(module, fromlist=[attribute]), attribute)


def third_party(paths: list[str], handler: str) -> list[str]:
    """The modules loaded from the function's paths that are not its own, in import order."""
    roots = tuple(path.rstrip("/") + "/" for path in paths)
    own = {"multidb", handler.partition(".")[0]}
    return [
        name
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(roots) and name.partition(".")[0] not in own
    ]


def import_alone(names: list[str], result: Figures) -> None:
    import importlib

    failed = 0
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a module only its parent may import (a platform-specific one, say)
            failed += 1
    result["alone_failed"] = failed


def cold(spec: Figures, spawned: int, result: Figures) -> None:
    started = time.monotonic_ns()
    result["startup_ms"] = (started - spawned) / 1e6
    if not spec.get("handler"):
        if spec.get("alone"):
            import_alone(spec["alone"], result)  # type: ignore[arg-type]
            result["cold_ms"] = (time.monotonic_ns() - spawned) / 1e6
        result["rss_mib"] = peak_rss_mib()
        return
    event, context = spec["event"], Context()
    handler = load_handler(spec["handler"])
    imported = time.monotonic_ns()
    print(IMPORTED, file=sys.stderr, flush=True)  # splits a `-X importtime` log in two
    response = handler(event, context)
    answered = time.monotonic_ns()
    print(ANSWERED, file=sys.stderr, flush=True)
    result.update(
        cold_ms=(answered - spawned) / 1e6,
        init_ms=(imported - started) / 1e6,
        first_ms=(answered - imported) / 1e6,
        rss_mib=peak_rss_mib(),
        outcome=outcome(response),
        body=str(response)[:500],
        modules=len(sys.modules),
        third_party=third_party(spec["paths"], spec["handler"]),  # type: ignore[arg-type]
    )
    times, outcomes = [], set()
    for _ in range(spec.get("warm", 0)):
        before = time.perf_counter_ns()
        response = handler(event, context)
        times.append(time.perf_counter_ns() - before)
        outcomes.add(outcome(response))
    if times:
        result["warm_ns"] = times
        result["warm_outcomes"] = sorted(outcomes)
    if spec.get("profile"):
        import cProfile

        with cProfile.Profile() as profile:
            for _ in range(max(spec.get("warm", 0), 1)):
                handler(event, context)
        profile.dump_stats(spec["profile"])


def restore(spec: Figures, result: Figures) -> None:
    event, context = spec["event"], Context()
    handler = load_handler(spec["handler"])
    try:
        from multidb import snapstart  # type: ignore[attr-defined]
    except ImportError:
        snapstart = None  # the floor, or a layer without hooks: a bare fork
    result["hooks"] = snapstart is not None
    if snapstart is not None:
        snapstart.before_snapshot()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the restored container
        os.close(read_end)
        figures: Figures = {}
        try:
            if spec.get("profile"):  # what a restore does, not timed
                import cProfile

                profile = cProfile.Profile()
                profile.enable()
            restored = time.monotonic_ns()
            if snapstart is not None:
                snapstart.after_restore()
            response = handler(event, context)
            figures.update(restore_ms=(time.monotonic_ns() - restored) / 1e6, restore_outcome=outcome(response))
            if spec.get("profile"):
                profile.disable()
                profile.dump_stats(spec["profile"])
        except BaseException:
            figures["error"] = failure()
        os.write(write_end, json.dumps(figures).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    result.update(json.loads(b"".join(chunks) or b'{"error": "the restored child wrote nothing"}'))


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    spawned = int(sys.argv[2])
    sys.path[:] = [p for p in sys.path if "site-packages" not in p and p not in ("", ".")]
    sys.path[:0] = spec["paths"]
    result: Figures = {}
    try:
        if spec.get("restore"):
            restore(spec, result)
        else:
            cold(spec, spawned, result)
    except BaseException:
        result["error"] = failure()
    with open(spec["result"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
