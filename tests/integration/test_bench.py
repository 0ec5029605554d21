"""`make bench --quick` runs in the test command, so the bench cannot rot: it measures the
built artifacts against real servers and writes every figure. No figure is asserted on: the
timings of a shared 2-core machine are no test (docs/benchmarks.md holds a full run)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.benchmarks.bench import import_costs
from tests.conftest import EMBEDDED, PG_DATABASE, REDIS_SERVER_PORT, REDIS_URL, USE_POSTGRES, USE_REDIS
from tests.helpers import ROOT

BENCH_REDIS_DB = 14  # beside REDIS_DB (9), BROKER_DB (10) and SPARE_DB (13): nobody else's

pytestmark = [pytest.mark.infra, pytest.mark.first_pass_only("the benchmark on the build")]

REAL_SERVERS = pytest.mark.skipif(
    EMBEDDED or not (USE_POSTGRES and USE_REDIS), reason="the bench measures against real PostgreSQL and Redis"
)
FIGURES = ("cold_ms", "init_ms", "first_call_ms", "rss_mib", "warm_p50_ms", "warm_p99_ms")
RATIOS = ("cold", "rss", "warm_p50", "warm_p99", "size")


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.fixture(scope="module")
def quick(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str, Path]:
    """One quick run on the session's build, in a database and Redis number of this suite's,
    with its profiles. The Redis number is one no process of the suite writes to: a worker, beat
    or Socket.IO server an earlier test left running writes to REDIS_DB meanwhile."""
    bench_redis = REDIS_URL.rsplit("/", 1)[0] + f"/{BENCH_REDIS_DB}"
    with redis.Redis.from_url(bench_redis) as client:
        client.flushdb()  # what an earlier run left: the bench empties only a database of its own
    folder = tmp_path_factory.mktemp("bench")
    output, profiles = folder / "bench.json", folder / "profiles"
    command = [sys.executable, "-m", "tests.benchmarks.bench", "--quick", "--build-dir", str(built)]
    command += ["--json", str(output), "--pg-database", f"{PG_DATABASE}_bench"]
    command += ["--redis-db", str(BENCH_REDIS_DB), "--redis-port", str(REDIS_SERVER_PORT)]  # a worker's own server
    command += ["--profile", str(profiles)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(output.read_text()), result.stdout, profiles


@pytest.mark.sam
@REAL_SERVERS
def test_the_quick_bench_writes_every_figure_of_each_function(quick: tuple[dict[str, object], str, Path]) -> None:
    report, _, _ = quick
    functions = report["functions"]
    assert isinstance(functions, dict)
    assert set(functions) == {"authorizer", "auth"}
    for figures in functions.values():
        assert all(positive(figures[name]) for name in FIGURES), figures
        assert figures["warm_p50_ms"] <= figures["warm_p99_ms"]
        assert figures["warm_calls"] == 20
        assert all(positive(figures["ratios"][name]) for name in RATIOS), figures["ratios"]
        assert figures["size_total_bytes"] == figures["size_code_bytes"] + figures["size_layer_bytes"]
        assert len(figures["samples"]["cold_ms"]) == report["repetitions"] == 1
        alone = figures["stack_alone"]  # the libraries the first response loaded, imported alone
        assert all(positive(alone[name]) for name in ("cold_ms", "rss_mib")), alone
        assert all(positive(alone["ratios"][name]) for name in ("cold", "rss")), alone
        assert alone["modules"] > 10, alone
        assert alone["failed_imports"] == 0, alone  # every module the function loaded imports alone
        if report["snapstart_hooks"]:
            assert positive(figures["after_restore_ms"])
            assert positive(figures["ratios"]["after_restore"])
        else:
            assert figures["after_restore_ms"] is None
            assert figures["ratios"]["after_restore"] is None


@pytest.mark.sam
@REAL_SERVERS
def test_the_quick_bench_measures_its_baselines_and_names_the_run(quick: tuple[dict[str, object], str, Path]) -> None:
    report, printed, _ = quick
    floor, bare = report["baselines"]["floor"], report["baselines"]["bare"]
    assert all(positive(floor[name]) for name in FIGURES), floor
    assert positive(floor["after_restore_ms"])  # a bare fork: the floor has no hooks
    assert floor["ratios"]["cold"] == floor["ratios"]["rss"] == 1
    assert positive(bare["cold_ms"])
    assert positive(bare["rss_mib"])
    stack_page = report["baselines"]["stack_page"]  # the libraries' own page: the warm bound
    assert all(positive(stack_page[name]) for name in FIGURES), stack_page
    assert stack_page["warm_calls"] == 20
    assert "| stack page: FastAPI + SQLModel + redis-py alone" in printed
    decision = report["baselines"]["stack_decision"]  # redis-py's own round trip: the authorizer's warm bound
    assert all(positive(decision[name]) for name in FIGURES), decision
    warm_bound = next(t for t in report["targets"] if t["function"] == "authorizer" and t["unit"] == "ms")
    assert warm_bound["stack_alone"] == decision["warm_p50_ms"]
    assert report["measured"].startswith("commit ")
    assert report["build"]["reused"] is True
    assert report["mode"] == "quick"
    for target in report["targets"]:
        assert target["met"] in (True, False, None)
        over = target["stack_alone"] is not None and target["stack_alone"] > target["limit"]
        assert target["out_of_reach"] == (target["met"] is False and over)
        assert (target["measured"] is None) == (target["met"] is None)
    assert "| **floor**: FastAPI + Mangum, `GET /hello` |" in printed
    rows = [line.split(" | ") for line in printed.splitlines() if line.startswith(("| authorizer:", "| auth:"))]
    assert len(rows) == 2
    after_restore = {row[5] for row in rows}  # the after-restore column: the SnapStart work fills it
    assert (after_restore == {"n/a"}) != report["snapstart_hooks"]


def test_import_costs_charge_each_package_what_importing_it_took() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     pydantic_core",
            "import time:       400 |        500 |   pydantic",
            "import time:        50 |        550 | multidb.settings",
            "import time:        20 |        570 | auth_fn.app",
            "bench: handler imported",
            "import time:      3000 |       3000 | asyncpg",
            "bench: first response",
            "import time:       999 |        999 | late",
        ]
    )
    assert import_costs(log) == {
        "init": {"pydantic": 0.5, "multidb": 0.1, "auth_fn": 0.0},
        "first_call": {"asyncpg": 3.0},
    }


@pytest.mark.sam
@REAL_SERVERS
def test_the_profiles_show_each_functions_handler_warm_and_restored(quick: tuple[dict[str, object], str, Path]) -> None:
    """`--profile`: each function's warm calls and its restore under cProfile, readable by pstats."""
    import pstats

    report, _, profiles = quick
    restores = ["-restore"] if report["snapstart_hooks"] else []
    # what each answers with: the floor's route, our handlers (Mangum's own for the floor)
    for name, answering in (("floor", "hello"), ("authorizer", "handler"), ("auth", "handler")):
        for suffix in ["", *restores]:
            stats = pstats.Stats(str(profiles / f"{name}{suffix}.prof")).stats  # type: ignore[attr-defined]
            functions = {function for _, _, function in stats}
            assert answering in functions, (name, suffix)


def test_the_libraries_alone_are_what_was_loaded_from_the_paths_less_our_own_code() -> None:
    import pydantic

    import multidb.settings  # noqa: F401  (ours: loaded, and left out)
    from tests.benchmarks.probe import third_party

    libraries = str(Path(pydantic.__file__).parents[1])
    found = third_party([str(ROOT / "shared"), libraries], "roles_fn.app.handler")
    assert "pydantic" in found
    assert not [name for name in found if name.split(".")[0] in ("multidb", "roles_fn")]
    assert "json" not in found  # the standard library is not on the paths: imported by what needs it
