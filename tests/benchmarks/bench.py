"""`make bench`: what users wait for, from the `sam build` artifacts, as ratios to a same-run floor.

    python -m tests.benchmarks.bench                         # make build (x86_64) into .aws-sam/bench, then measure
    python -m tests.benchmarks.bench --build-dir .aws-sam/bench   # reuse that build
    python -m tests.benchmarks.bench --quick                 # a smoke run: 1 repetition, 2 functions

Each container is a fresh `python -I -S -B` process whose sys.path holds only the function's
folder, the layer and the runtime's boto3 (probe.py), talking to real PostgreSQL, Redis,
MongoDB and S3 servers (backends.py). Figures:

- cold start to first response: from the process's spawn to the handler's first answer to
  a representative event (import + first invocation), and the process's peak RSS by then;
- warm p50 and p99: the same event answered again in the same container, each call timed;
- after-restore first response: SnapStart emulated (`multidb.snapstart`'s hooks, a fork);
- artifact size: the function's folder plus its layer, unzipped.

Cold figures are medians over fresh processes; every figure is printed as a ratio to the
same figure of the floor (tests/benchmarks/floor: FastAPI + Mangum, one hello route) and
written as JSON (--json).
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python tests/benchmarks/bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks import backends, build

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().with_name("probe.py")
DEFAULT_BUILD = ROOT / ".aws-sam" / "bench"
DEFAULT_JSON = ROOT / ".local" / "bench.json"
LAYER = "SharedLayer"
SIGNING_KEYS = ("JWT_PRIVATE_KEY", "JWT_KEY_ID")
LOGIN_KEY = ("LOGIN_PRIVATE_KEY",)
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Case:
    """One measured function: its artifact, handler and the request it answers."""

    name: str
    function: str
    handler: str
    route: str  # the route key the event is for
    event: str | None = None  # events/<event>.json; None: the authorizer's event for `route`
    query: dict[str, str] | None = None
    keys: tuple[str, ...] = ()  # private keys the template gives it (every one gets the public keys)
    cache_miss: bool = False  # its user's permission cache emptied before each cold start
    page_of_rows: bool = False  # its warm work is the stack page's: that page bounds its warm target
    targets: dict[str, float] = field(default_factory=dict)


RESTORE_TARGET = {"after_restore": 0.15}
API_TARGETS = {"cold": 1.6, "rss": 1.5, **RESTORE_TARGET}
CASES = [
    Case(
        "authorizer",
        "AuthorizerFunction",
        "authorizer_fn.handler.handler",
        "GET /api/v1/roles",
        targets={"cold": 0.5, "warm_p50_ms": 0.3, **RESTORE_TARGET},
    ),
    Case(
        "auth",
        "AuthFunction",
        "auth_fn.app.handler",
        "GET /api/v1/auth/user/info",
        "auth/user_info",
        keys=SIGNING_KEYS + LOGIN_KEY,
        targets={**API_TARGETS, "warm_p50": 8},
    ),
    Case(
        "roles",
        "RolesFunction",
        "roles_fn.app.handler",
        "GET /api/v1/roles",
        "roles/list_roles",
        query={"page": "1", "pageSize": "10"},
        page_of_rows=True,
        targets={**API_TARGETS, "warm_p50": 12},
    ),
    Case(
        "users",
        "UsersFunction",
        "users_fn.app.handler",
        "GET /api/v1/users",
        "users/list_users",
        keys=LOGIN_KEY,
        targets=API_TARGETS,
    ),
    Case(
        "routers",
        "RoutersFunction",
        "routers_fn.app.handler",
        "GET /api/v1/router/backend",
        "routers/backend_routes",
        targets=API_TARGETS,
    ),
    Case(
        "files",
        "FilesFunction",
        "files_fn.app.handler",
        "GET /api/v1/files",
        "files/list_files",
        targets={**API_TARGETS, "cold": 2.0},
    ),
    Case(
        "tasks",
        "TasksFunction",
        "tasks_fn.app.handler",
        "GET /api/v1/tasks/runs/{task_id}",
        "tasks/get_task_run",
        targets=API_TARGETS,
    ),
    Case(
        "audit", "AuditFunction", "audit_fn.app.handler", "GET /api/v1/audit", "audit/list_audit", targets=API_TARGETS
    ),
    # Not a target: what a permission-cache miss adds to the authorizer's cold start (SQLAlchemy, a query).
    Case(
        "authorizer-miss",
        "AuthorizerFunction",
        "authorizer_fn.handler.handler",
        "GET /api/v1/roles",
        cache_miss=True,
    ),
]
QUICK_CASES = ("authorizer", "auth")
FLOOR = Case("floor", "FloorFunction", "floor_fn.app.handler", "GET /hello")
BARE = Case("bare", "", "", "")
# The libraries' own page and decision (tests/benchmarks/stack): the bounds of the warm targets.
STACK_PAGE = Case("stack-page", "StackPageFunction", "stack_fn.app.handler", "GET /page")
STACK_DECISION = Case("stack-decision", "StackPageFunction", "stack_fn.decision.handler", "GET /api/v1/roles")
BASELINES = (BARE, FLOOR, STACK_PAGE, STACK_DECISION)
AUTHORIZERS = ("authorizer_fn.handler.handler", STACK_DECISION.handler)  # they answer allow or deny


@dataclass
class Samples:
    """What the fresh processes of one case measured."""

    cold_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    warm_ns: list[int] = field(default_factory=list)
    restore_ms: list[float] = field(default_factory=list)
    modules: int | None = None
    # The stack alone: a fresh process importing only the libraries the first response loaded.
    third_party: list[str] = field(default_factory=list)
    alone_ms: list[float] = field(default_factory=list)
    alone_rss_mib: list[float] = field(default_factory=list)
    alone_failed: int = 0  # modules of the list that would not import alone (the bound is then lower)


@dataclass
class Layout:
    """Where the copied artifacts are: each case's sys.path and working folder."""

    folders: dict[str, Path]  # case name: function folder
    layers: dict[str, Path]  # case name: layer folder
    runtime: Path

    def paths(self, case: Case) -> list[str]:
        return [str(self.folders[case.name]), str(self.layers[case.name]), str(self.runtime)]


def percentile(values: list[int], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)])


class Runner:
    def __init__(self, work: Path, layout: Layout, env: dict[str, str], events: dict[str, dict[str, Any]]) -> None:
        self.work = work
        self.layout = layout
        self.env = env
        self.events = events
        self.count = 0
        self.before: dict[str, Callable[[], None]] = {}

    def environment(self, case: Case, initialization: str) -> dict[str, str]:
        """The container's environment: Lambda's own variables and the function's settings."""
        shared = {k: v for k, v in self.env.items() if k not in SIGNING_KEYS + LOGIN_KEY}
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{case.name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
            "LAMBDA_TASK_ROOT": str(self.layout.folders.get(case.name, self.work)),
            **(shared if case.name not in ("floor", "bare") else {}),
            **{name: self.env[name] for name in case.keys},
        }

    def probe(
        self,
        case: Case,
        *,
        warm: int = 0,
        restore: bool = False,
        flags: tuple[str, ...] = (),
        profile: str = "",
        alone: list[str] | None = None,
    ) -> dict[str, Any]:
        """Run one fresh container; returns what probe.py recorded (and where its output went).
        With `alone`, the container imports only those modules, and runs no handler."""
        self.count += 1
        stem = self.work / "runs" / f"{self.count:04d}-{case.name}{'-alone' if alone else ''}"
        stem.parent.mkdir(exist_ok=True)
        spec = {
            "paths": self.layout.paths(case) if case.handler else [],
            "handler": None if alone else case.handler or None,
            "alone": alone,
            "event": self.events.get(case.name),
            "warm": warm,
            "restore": restore,
            "profile": profile,
            "result": f"{stem}.result.json",
        }
        Path(f"{stem}.spec.json").write_text(json.dumps(spec))
        if case.name in self.before:
            self.before[case.name]()
        env = self.environment(case, "snap-start" if restore else "on-demand")
        cwd = self.layout.folders.get(case.name, self.work)
        with open(f"{stem}.log", "wb") as log:
            spawned = time.monotonic_ns()
            process = subprocess.run(
                [sys.executable, "-I", "-S", "-B", *flags, str(PROBE), f"{stem}.spec.json", str(spawned)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                timeout=600,
            )
        result_file = Path(f"{stem}.result.json")
        result: dict[str, Any] = json.loads(result_file.read_text()) if result_file.exists() else {}
        expected = "allow" if case.handler in AUTHORIZERS else "200"
        got = [result.get("outcome"), *result.get("warm_outcomes", []), result.get("restore_outcome")]
        wrong = [value for value in got if value is not None and value != expected]
        if process.returncode != 0 or "error" in result or wrong or (case.handler and not alone and not any(got)):
            tail = Path(f"{stem}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(
                f"{case.name}: the container failed (exit {process.returncode}, answers {got}, expected {expected})\n"
                f"{result.get('error', '')}{result.get('body', '')}\n--- its output:\n{tail}"
            )
        result["log"] = f"{stem}.log"
        return result


def measure(runner: Runner, cases: list[Case], repeat: int, warm: int, restore: list[Case]) -> dict[str, Samples]:
    """Every case's fresh processes, interleaved so that drift of the machine spreads over all."""
    samples = {case.name: Samples() for case in [*BASELINES, *cases]}
    for round_ in range(repeat):
        last = round_ == repeat - 1
        for case in [*BASELINES, *cases]:
            result = runner.probe(case, warm=warm if last and case.handler and not case.cache_miss else 0)
            found = samples[case.name]
            found.rss_mib.append(result["rss_mib"])
            if not case.handler:
                found.cold_ms.append(result["startup_ms"])
                continue
            found.cold_ms.append(result["cold_ms"])
            found.init_ms.append(result["init_ms"])
            found.first_ms.append(result["first_ms"])
            found.modules = result["modules"]
            found.warm_ns.extend(result.get("warm_ns", []))
            found.third_party = found.third_party or result["third_party"]
            print(f"  {case.name:<16} round {round_ + 1}/{repeat}: {result['cold_ms']:8.1f} ms", file=sys.stderr)
            if case not in BASELINES and found.third_party:
                alone = runner.probe(case, alone=found.third_party)
                found.alone_ms.append(alone["cold_ms"])
                found.alone_rss_mib.append(alone["rss_mib"])
                found.alone_failed = max(found.alone_failed, alone["alone_failed"])
        for case in restore:
            samples[case.name].restore_ms.append(runner.probe(case, restore=True)["restore_ms"])
    return samples


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")
FIRST_PARTY = re.compile(r"^(multidb|\w+_fn)$")


@dataclass
class Imported:
    package: str
    own_us: int
    total_us: int
    children: list["Imported"] = field(default_factory=list)


def import_tree(lines: list[str]) -> list[Imported]:
    """The imports a `-X importtime` log lists, as trees (it prints children first, indented)."""
    pending: dict[int, list[Imported]] = {}
    for line in lines:
        if match := IMPORT_LINE.match(line):
            depth = len(match.group(3)) // 2
            node = Imported(match.group(4).split(".")[0], int(match.group(1)), int(match.group(2)))
            node.children = pending.pop(depth + 1, [])
            pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


def attribute(nodes: list[Imported], costs: dict[str, float], parent: str = "") -> None:
    """Charge each package what importing it cost, with what it imported in turn; our own
    packages (multidb, the functions') only their own code, their imports to those packages."""
    for node in nodes:
        if FIRST_PARTY.match(node.package):
            costs[node.package] = costs.get(node.package, 0.0) + node.own_us / 1000
            attribute(node.children, costs, node.package)
        elif node.package != parent:
            costs[node.package] = costs.get(node.package, 0.0) + node.total_us / 1000


def import_costs(log: str) -> dict[str, dict[str, float]]:
    """A `-X importtime` log, by package: ms spent importing each during init (the handler's
    import) and during the first call (what it imports lazily)."""
    lines = log.split("bench: first response")[0].split("bench: handler imported")
    phases = {}
    for phase, text in zip(("init", "first_call"), [*lines, ""][:2], strict=True):
        costs: dict[str, float] = {}
        attribute(import_tree(text.splitlines()), costs)
        phases[phase] = {name: round(ms, 1) for name, ms in sorted(costs.items(), key=lambda item: -item[1])}
    return phases


def importtime(runner: Runner, cases: list[Case]) -> dict[str, dict[str, dict[str, float]]]:
    """One more fresh container per case under `python -X importtime`."""
    found = {}
    for case in [FLOOR, *cases]:
        result = runner.probe(case, flags=("-X", "importtime"))
        found[case.name] = import_costs(Path(result["log"]).read_text())
    return found


def profiles(runner: Runner, cases: list[Case], warm: int, folder: Path, restored: bool) -> None:
    """One more container per case whose warm calls run under cProfile (`<folder>/<name>.prof`)
    and, with SnapStart hooks, one whose restore does (`<name>-restore.prof`); what each spent
    most on printed."""
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    for case in [FLOOR, *cases]:
        if case.cache_miss:
            continue
        path = folder / f"{case.name}.prof"
        runner.probe(case, warm=warm, profile=str(path))
        print(f"--- {case.name}: {warm} warm calls under cProfile ({path})", file=sys.stderr)
        pstats.Stats(str(path), stream=sys.stderr).sort_stats("tottime").print_stats(15)
        if restored:
            path = folder / f"{case.name}-restore.prof"
            runner.probe(case, restore=True, profile=str(path))
            print(f"--- {case.name}: after-restore hooks and first call under cProfile ({path})", file=sys.stderr)
            pstats.Stats(str(path), stream=sys.stderr).sort_stats("cumulative").print_stats(25)


def ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else round(value / base, 3)


def summarize(case: Case, found: Samples, sizes: dict[str, int]) -> dict[str, Any]:
    median = statistics.median
    summary: dict[str, Any] = {
        "route": case.route or None,
        "cold_ms": round(median(found.cold_ms), 2),
        "init_ms": round(median(found.init_ms), 2) if found.init_ms else None,
        "first_call_ms": round(median(found.first_ms), 2) if found.first_ms else None,
        "rss_mib": round(median(found.rss_mib), 2),
        "warm_p50_ms": round(percentile(found.warm_ns, 0.5) / 1e6, 4) if found.warm_ns else None,
        "warm_p99_ms": round(percentile(found.warm_ns, 0.99) / 1e6, 4) if found.warm_ns else None,
        "warm_calls": len(found.warm_ns),
        "after_restore_ms": round(median(found.restore_ms), 2) if found.restore_ms else None,
        "modules_loaded": found.modules,
        "stack_alone": {
            "what": "a fresh process importing only the third-party modules the first response loaded",
            "modules": len(found.third_party),
            "failed_imports": found.alone_failed,
            "cold_ms": round(median(found.alone_ms), 2),
            "rss_mib": round(median(found.alone_rss_mib), 2),
        }
        if found.alone_ms
        else None,
        "samples": {"cold_ms": [round(v, 2) for v in found.cold_ms], "rss_mib": found.rss_mib},
    }
    summary.update({f"size_{part}_bytes": value for part, value in sizes.items()})
    return summary


def add_ratios(figures: dict[str, Any], floor: dict[str, Any]) -> None:
    figures["ratios"] = {
        "cold": ratio(figures["cold_ms"], floor["cold_ms"]),
        "rss": ratio(figures["rss_mib"], floor["rss_mib"]),
        "warm_p50": ratio(figures["warm_p50_ms"], floor["warm_p50_ms"]),
        "warm_p99": ratio(figures["warm_p99_ms"], floor["warm_p99_ms"]),
        "after_restore": ratio(figures["after_restore_ms"], floor["cold_ms"]),
        "size": ratio(figures.get("size_total_bytes"), floor["size_total_bytes"]),
    }
    alone = figures.get("stack_alone")
    if alone:
        alone["ratios"] = {
            "cold": ratio(alone["cold_ms"], floor["cold_ms"]),
            "rss": ratio(alone["rss_mib"], floor["rss_mib"]),
        }


FIGURES = {
    "cold": ("cold start to first response", f"{TIMES} floor's"),
    "rss": ("peak RSS", f"{TIMES} floor's"),
    "warm_p50": ("warm p50", f"{TIMES} floor's hello"),
    "warm_p50_ms": ("warm p50", "ms"),
    "after_restore": ("after-restore first response", f"{TIMES} floor's cold start"),
}


def targets(cases: list[Case], functions: dict[str, Any], stacks: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each met or missed in this run (informative: nothing fails on them).
    `met` is None where the figure was not measured (no SnapStart hooks yet)."""
    checks = []
    for case in cases:
        figures = functions[case.name]
        for figure, limit in case.targets.items():
            measured = figures["warm_p50_ms"] if figure == "warm_p50_ms" else figures["ratios"][figure]
            what, unit = FIGURES[figure]
            met = None if measured is None else measured <= limit
            # Where the function's libraries alone already exceed the limit, no design of ours
            # meets it: their imports for a cold start, their own page for a warm page.
            if figure == "warm_p50" and case.page_of_rows:
                bound = stacks["page"]["ratios"]["warm_p50"]
            elif figure == "warm_p50_ms":
                bound = stacks["decision"]["warm_p50_ms"]
            else:
                bound = (figures.get("stack_alone") or {}).get("ratios", {}).get(figure)
            checks.append(
                {
                    "function": case.name,
                    "figure": what,
                    "unit": unit,
                    "limit": limit,
                    "measured": measured,
                    "met": met,
                    "stack_alone": bound,
                    # missed, and the bound itself over the limit (a met target is met, noise or not)
                    "out_of_reach": met is False and bound is not None and bound > limit,
                }
            )
    return checks


def prepare(build_dir: Path, work: Path, cases: list[Case], bytecode: bool) -> tuple[Layout, dict[str, dict[str, int]]]:
    """Copy the artifacts the cases need as shipped, package the floor the same way, and size
    them. With `bytecode` False, every .pyc is taken out (what a bare `sam build` ships)."""
    layer = build.copy_as_shipped(build_dir / LAYER / "python", work / LAYER / "python")
    folders: dict[str, Path] = {}
    for case in cases:
        folder = work / case.function
        if not folder.exists():
            build.copy_as_shipped(build_dir / case.function, folder)
        folders[case.name] = folder
    folders["floor"], floor_layer = build.package_floor(layer, work / "floor", backends.hello_event())
    folders[STACK_PAGE.name] = build.copy_as_shipped(build.STACK_PAGE_SOURCE, work / STACK_PAGE.function)
    folders[STACK_DECISION.name] = folders[STACK_PAGE.name]
    layers = {case.name: layer for case in [*cases, STACK_PAGE, STACK_DECISION]} | {"floor": floor_layer}
    for folder in {*folders.values(), layer, floor_layer}:
        if not bytecode:
            for cache in list(folder.rglob("__pycache__")):
                shutil.rmtree(cache)
        elif folder in (folders["floor"], folders[STACK_PAGE.name]):
            build.compile_all(folder)  # its code as `make build` compiles the functions'
    sizes = {}
    for name, folder in folders.items():
        code, libraries = build.size(folder), build.size(layers[name])
        sizes[name] = {"code": code, "layer": libraries, "total": code + libraries}
    return Layout(folders, layers, build.runtime_folder(work / "runtime")), sizes


def resolve_build(given: Path | None, source: Path) -> tuple[Path, bool]:
    """The build to measure, and whether it was reused: a given folder holding one, else a fresh one."""
    if given is not None and build.is_build(given):
        build.check_build(given)
        return given, True
    target = given or DEFAULT_BUILD
    if given is None and target.exists():
        shutil.rmtree(target)
    build.sam_build(target, source=source)
    return target, False


def git(source: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=source, capture_output=True, text=True).stdout.strip()


def label(source: Path) -> str:
    """The commit measured, and whether the checkout differs from it where the artifacts come from."""
    commit = git(source, "rev-parse", "--short", "HEAD")
    if not commit or Path(git(source, "rev-parse", "--show-toplevel")) != source:
        return f"the checkout at {source}"
    dirty = git(source, "status", "--porcelain", "--", "shared", "functions", "template.yaml")
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "arch": platform.machine(),
    }


def cell(value: float | None, base_ratio: float | None, unit: str, digits: int) -> str:
    if value is None:
        return "n/a"
    absolute = f"{value:.{digits}f} {unit}"
    return f"{base_ratio:.2f}{TIMES} ({absolute})" if base_ratio is not None else absolute


COLUMNS = (
    "cold start to 1st response",
    "peak RSS",
    "warm p50",
    "warm p99",
    "after-restore 1st response",
    "artifact (code + layer)",
)


def row(label: str, figures: dict[str, Any]) -> str:
    ratios = figures.get("ratios", {})
    size = figures.get("size_total_bytes")
    cells = [
        cell(figures["cold_ms"], ratios.get("cold"), "ms", 0),
        cell(figures["rss_mib"], ratios.get("rss"), "MiB", 1),
        cell(figures.get("warm_p50_ms"), ratios.get("warm_p50"), "ms", 3),
        cell(figures.get("warm_p99_ms"), ratios.get("warm_p99"), "ms", 3),
        cell(figures.get("after_restore_ms"), ratios.get("after_restore"), "ms", 1),
        cell(size / 1e6 if size else None, ratios.get("size"), "MB", 1),
    ]
    return f"| {label} | {' | '.join(cells)} |"


def table(report: dict[str, Any]) -> str:
    """The run as Markdown: the figures, where each cold start goes, and the targets."""
    floor, bare = report["baselines"]["floor"], report["baselines"]["bare"]
    rows = [f"| | {' | '.join(COLUMNS)} |", "|---" * (len(COLUMNS) + 1) + "|"]
    rows.append(row("**floor**: FastAPI + Mangum, `GET /hello`", floor))
    rows.append(row("bare interpreter (no handler)", bare))
    rows.append(
        row(
            "stack page: FastAPI + SQLModel + redis-py alone, one `MGET`, a page of 10 roles",
            report["baselines"]["stack_page"],
        )
    )
    rows.append(
        row("stack decision: redis-py alone, one blocking `MGET` per call", report["baselines"]["stack_decision"])
    )
    for name, figures in report["functions"].items():
        rows.append(row(f"{name}: `{figures['route']}`", figures))
    breakdown = [
        "| | import (init) | first call | modules loaded | its libraries alone: cold | and peak RSS | code | layer |",
        "|---" * 8 + "|",
    ]
    for name, figures in {"floor": floor, **report["functions"]}.items():
        alone = figures.get("stack_alone")
        alone_cells = (
            f"{cell(alone['cold_ms'], alone['ratios']['cold'], 'ms', 0)} ({alone['modules']} modules) "
            f"| {cell(alone['rss_mib'], alone['ratios']['rss'], 'MiB', 1)}"
            if alone
            else "n/a | n/a"
        )
        breakdown.append(
            f"| {name} | {figures['init_ms']:.0f} ms | {figures['first_call_ms']:.1f} ms | {figures['modules_loaded']} "
            f"| {alone_cells} | {figures['size_code_bytes'] / 1e3:.0f} kB "
            f"| {figures['size_layer_bytes'] / 1e6:.1f} MB |"
        )
    goals = ["| function | target | limit | measured | | its libraries alone |", "|---|---|---|---|---|---|"]
    for check in report["targets"]:
        measured = "n/a" if check["measured"] is None else f"{check['measured']:.2f}"
        verdict = {True: "met", False: "**missed**", None: "n/a"}[check["met"]]
        bound = "" if check["stack_alone"] is None else f"{check['stack_alone']:.2f}"
        if check["out_of_reach"]:
            bound += " (over the limit: out of reach)"
        limit = f"\N{LESS-THAN OR EQUAL TO} {check['limit']} {check['unit']}"
        goals.append(f"| {check['function']} | {check['figure']} | {limit} | {measured} | {verdict} | {bound} |")
    lines = [*rows, "", *breakdown, "", *goals]
    profiled = {name: f["import_ms"] for name, f in {"floor": floor, **report["functions"]}.items() if "import_ms" in f}
    if profiled:
        lines += ["", "Imports by package (ms, one process under `python -X importtime`; largest first):", ""]
        for name, phases in profiled.items():
            for phase, costs in phases.items():
                top = ", ".join(f"{package} {ms:.0f}" for package, ms in list(costs.items())[:10] if ms >= 1)
                lines.append(f"- {name}, {phase.replace('_', ' ')}: {top or 'nothing'}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, help="a sam build (x86_64) to reuse, or where to build one")
    source = "the checkout to build and seed from (default: this one), e.g. `git archive <commit> | tar -x -C DIR`"
    parser.add_argument("--source", type=Path, default=ROOT, help=source)
    parser.add_argument("--label", help="what the run measured, for the table (default: the source's commit)")
    default_json = DEFAULT_JSON.relative_to(ROOT)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where the figures go ({default_json})")
    quick = f"smoke run: 1 repetition, 20 warm calls, {' and '.join(QUICK_CASES)}"
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--repeat", type=int, help="fresh processes per figure (default 7; --quick 1)")
    parser.add_argument("--warm", type=int, help="warm invocations per function (default 1000; --quick 20)")
    parser.add_argument("--functions", help=f"comma-separated, of: {', '.join(case.name for case in CASES)}")
    bytecode = "take the build's bytecode out first (what a bare `sam build` ships: each module compiled at import)"
    parser.add_argument("--no-bytecode", dest="bytecode", action="store_false", help=bytecode)
    profile = "then one container per function under -X importtime: what its init and first call import (not --quick)"
    parser.add_argument("--importtime", action=argparse.BooleanOptionalAction, help=profile)
    parser.add_argument("--pg-database", default="multidb_bench", help="created and dropped by the run")
    redis_db = "a database of the local Redis, flushed before and after (refused if it holds others' keys)"
    parser.add_argument("--redis-db", type=int, default=13, help=redis_db)
    parser.add_argument("--redis-port", type=int, default=backends.REDIS_PORT, help="the local Redis server's port")
    cprofile = "then per function one container whose warm calls and one whose restore run under cProfile, in FOLDER"
    parser.add_argument("--profile", type=Path, metavar="FOLDER", help=cprofile)
    keep = "keep the work folder: the copied artifacts, and each run's spec, result and output"
    parser.add_argument("--keep", action="store_true", help=keep)
    args = parser.parse_args(argv)
    args.source = args.source.resolve()
    args.repeat = args.repeat or (1 if args.quick else 7)
    args.warm = args.warm if args.warm is not None else (20 if args.quick else 1000)
    args.importtime = not args.quick if args.importtime is None else args.importtime
    return args


def select(args: argparse.Namespace) -> list[Case]:
    names = args.functions.split(",") if args.functions else (QUICK_CASES if args.quick else [c.name for c in CASES])
    known = {case.name: case for case in CASES}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown functions {unknown}; known: {', '.join(known)}")
    return [known[name] for name in names]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cases = select(args)
    started = time.monotonic()
    try:
        build_dir, reused = resolve_build(args.build_dir, args.source)
        build.check_build(build_dir)
    except build.NotABuild as exc:
        raise SystemExit(str(exc)) from exc
    work = Path(tempfile.mkdtemp(prefix="multidb-bench-"))
    try:
        layout, sizes = prepare(build_dir, work, cases, args.bytecode)
        shipped = build.has_bytecode(layout.layers[cases[0].name])
        bytecode = "shipped by make build" if shipped else "none (each module compiled at import)"
        hooks = (layout.layers[cases[0].name] / "multidb" / "snapstart.py").exists()
        with backends.servers(args.pg_database, args.redis_db, args.redis_port) as found:
            env = backends.environment(found, work)
            seeded = backends.seed(env, sorted({case.route for case in cases}), args.source)
            events = {
                case.name: backends.authorizer_event(seeded.token, case.route)
                if case.event is None
                else backends.function_event(case.event, seeded, case.query)
                for case in cases
            }
            events["floor"] = backends.hello_event()
            events[STACK_PAGE.name] = backends.stack_page_event()
            events[STACK_DECISION.name] = backends.authorizer_event(seeded.token, STACK_DECISION.route)
            runner = Runner(work, layout, env, events)
            for case in cases:
                runner.before[case.name] = (
                    backends.empty_permission_cache(seeded)
                    if case.cache_miss
                    else backends.authorized(seeded, case.route)
                )
            restore = [FLOOR, *([case for case in cases if not case.cache_miss] if hooks else [])]
            print(f"measuring {len(cases)} functions, {args.repeat} rounds, {args.warm} warm calls", file=sys.stderr)
            samples = measure(runner, cases, args.repeat, args.warm, restore)
            imports = importtime(runner, cases) if args.importtime else {}
            if args.profile:
                profiles(runner, cases, args.warm, args.profile.resolve(), hooks)
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    floor = summarize(FLOOR, samples["floor"], sizes["floor"])
    bare = summarize(BARE, samples["bare"], {})
    functions = {}
    for case in cases:
        figures = summarize(case, samples[case.name], sizes[case.name])
        add_ratios(figures, floor)
        functions[case.name] = figures
    add_ratios(floor, floor)
    stacks = {}
    for key, case in (("page", STACK_PAGE), ("decision", STACK_DECISION)):
        stacks[key] = summarize(case, samples[case.name], sizes[case.name])
        add_ratios(stacks[key], floor)
    for name, costs in imports.items():
        ({"floor": floor} | functions)[name]["import_ms"] = costs
    bare["ratios"] = {"cold": ratio(bare["cold_ms"], floor["cold_ms"]), "rss": ratio(bare["rss_mib"], floor["rss_mib"])}
    report = {
        "schema": 1,
        "measured": args.label or label(args.source),
        "source": str(args.source),
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "repetitions": args.repeat,
        "warm_calls": args.warm,
        "bytecode": bytecode,
        "snapstart_hooks": hooks,
        "build": {"dir": str(build_dir), "reused": reused},
        "seconds": round(time.monotonic() - started, 1),
        "baselines": {"bare": bare, "floor": floor, "stack_page": stacks["page"], "stack_decision": stacks["decision"]},
        "functions": functions,
        "targets": targets(cases, functions, stacks),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(
        f"\n{report['measured']}, "
        f"{report['machine']['cpus']}-core {report['machine']['cpu']}, Python {report['machine']['python']}; "
        f"medians of {args.repeat} fresh processes, {args.warm} warm calls; bytecode: {report['bytecode']}; "
        f"{report['seconds']:.0f} s. Figures: {args.json}"
    )
    print(
        "reproduce: make bench   (or: python -m tests.benchmarks.bench --build-dir .aws-sam/bench "
        "to measure that build again)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
