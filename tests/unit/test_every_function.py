"""Lists of functions that must live in a static file (pyproject.toml, CloudFormation YAML)
name exactly the functions of template.yaml, as infra/deploy/template.py reads them: adding
or removing a function without them is a red test."""

import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from infra.deploy.template import ROOT, load

TEMPLATE = load()
FUNCTIONS = TEMPLATE.functions
MONITORING = TEMPLATE.stack("MonitoringStack")
ALARMS = {n: r["Properties"] for n, r in MONITORING["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
# PutMetricAlarm takes at most 10 queries that read a metric (and 10 expressions).
METRICS_PER_ALARM = 10


def name_parameter(function: str) -> str:
    """The monitoring stack's parameter for a function's name (`AuditFunctionName`)."""
    return f"{function}Name"


def short(function: str) -> str:
    """A function's folder under functions/ (`audit`): its log group's and the docs' name for it."""
    return FUNCTIONS[function].folder.removeprefix("functions/")


# ------------------------------------------------------------------ pyproject.toml


def test_pyproject_names_each_functions_package_and_folder_and_no_other() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    packages = [function.package for function in FUNCTIONS.values()]
    folders = [function.folder for function in FUNCTIONS.values()]
    layers = sorted({layer.relative_to(ROOT).as_posix() for f in FUNCTIONS.values() for layer in f.layers})
    assert layers == ["shared"]
    assert sorted(config["ruff"]["lint"]["isort"]["known-first-party"]) == sorted(["multidb", "infra", *packages])
    assert sorted(config["mypy"]["mypy_path"].split(":")) == sorted([*layers, ".", *folders])
    assert sorted(config["pytest"]["ini_options"]["pythonpath"]) == sorted([".", *layers, *folders])


# ------------------------------------------------------------------ template.yaml


def test_each_function_logs_to_a_group_of_its_own_kept_for_the_stacks_retention() -> None:
    groups = TEMPLATE.log_groups
    owned = [function.log_group for function in FUNCTIONS.values()]
    assert len(set(owned)) == len(owned), owned
    for name, function in FUNCTIONS.items():
        assert function.log_group in groups, name  # not one Lambda makes on first use: that one never expires
        properties = groups[function.log_group]
        assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert properties["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{short(name)}"}, name
    access_logs = {
        res["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
        for res in TEMPLATE.resources.values()
        if res["Type"] == "AWS::Serverless::HttpApi"
    }
    assert set(groups) == {*owned, *access_logs}  # no group left behind by a function removed


def test_the_root_outputs_each_functions_arn() -> None:
    arns = {
        name.removesuffix("Arn"): output["Value"]
        for name, output in TEMPLATE.outputs.items()
        if name.endswith("FunctionArn")
    }
    assert arns == {name: {"Fn::GetAtt": [name, "Arn"]} for name in FUNCTIONS}


def test_the_reserved_concurrency_output_names_each_function_that_reserves() -> None:
    text = TEMPLATE.outputs["ReservedConcurrency"]["Value"]["Fn::Sub"]
    terms = [term.strip() for term in text.split("+")]
    by_parameter: dict[str, list[str]] = {}
    for name, function in FUNCTIONS.items():
        if function.reserved_concurrency is not None:
            by_parameter.setdefault(function.reserved_concurrency, []).append(short(name))
    said: dict[str, list[str]] = {}
    for term in terms:  # `auth ${AuthReservedConcurrency}` or `6 x ${ApiReservedConcurrency} (users, …)`
        one = re.fullmatch(r"(\w+) \$\{(\w+)\}", term)
        many = re.fullmatch(r"(\d+) x \$\{(\w+)\} \(([\w, ]+)\)", term)
        if one:
            said[one[2]] = [one[1]]
        else:
            assert many, term
            said[many[2]] = many[3].split(", ")
            assert int(many[1]) == len(said[many[2]]), term
    assert {parameter: sorted(names) for parameter, names in said.items()} == {
        parameter: sorted(names) for parameter, names in by_parameter.items()
    }


# ------------------------------------------------------------------ the monitoring stack


def test_the_root_passes_the_monitoring_stack_every_functions_name() -> None:
    passed = TEMPLATE.passed_functions("MonitoringStack")
    assert passed == {name_parameter(name): name for name in FUNCTIONS}
    declared = {p for p in MONITORING["Parameters"] if p.endswith("FunctionName")}
    assert declared == set(passed)  # and it watches no function the template lost


def lambda_metrics(alarm: str) -> Iterator[tuple[str, str]]:
    """The Lambda figures an alarm reads: (metric name, the parameter naming the function)."""
    for query in ALARMS[alarm].get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric", {})
        if metric.get("Namespace") == "AWS/Lambda":
            [dimension] = metric["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            yield metric["MetricName"], dimension["Value"]["Ref"]


def test_an_alarm_watches_each_functions_errors_and_throttles_once() -> None:
    """The authorizer's errors in its own alarm (with its logged failures), every other function's
    in FunctionErrorsAlarm; every function's throttles in FunctionThrottlesAlarm."""
    watched = [(alarm, *figure) for alarm in ALARMS for figure in lambda_metrics(alarm)]
    authorizers = {authorizer.function for authorizer in TEMPLATE.authorizers.values()}

    def alarms_on(metric: str, function: str) -> list[str]:
        return [alarm for alarm, *figure in watched if figure == [metric, name_parameter(function)]]

    for name in FUNCTIONS:
        assert alarms_on("Errors", name) == [
            "AuthorizerErrorsAlarm" if name in authorizers else "FunctionErrorsAlarm"
        ], name
        assert alarms_on("Throttles", name) == ["FunctionThrottlesAlarm"], name


@pytest.mark.parametrize("alarm", sorted(name for name, alarm in ALARMS.items() if "Metrics" in alarm))
def test_an_alarm_on_an_expression_reads_what_it_adds_up_within_cloudwatchs_limit(alarm: str) -> None:
    queries = ALARMS[alarm]["Metrics"]
    read = {query["Id"] for query in queries if "MetricStat" in query}
    assert len(read) <= METRICS_PER_ALARM, "split the alarm: CloudWatch refuses it"
    [watched] = [query for query in queries if query["ReturnData"]]
    assert read <= set(re.findall(r"\b[a-z]\w*\b", watched["Expression"])), "a figure read and left out of the sum"


def charted() -> dict[str, set[str]]:
    """Each Lambda metric the dashboard charts, and the `${…FunctionName}` it charts it for."""
    text, _ = MONITORING["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(text.replace("${TaskCountAlarms}", ""))  # the one substitution outside a string
    found: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            cells = [cell for cell in row if not isinstance(cell, dict)]  # a row's rendering options
            if cells[0] == "...":  # the previous row with its last cells replaced
                cells = previous[: len(previous) - len(cells) + 1] + cells[1:]
            else:  # "." repeats the previous row's cell
                cells = [previous[i] if cell == "." else cell for i, cell in enumerate(cells)]
            previous = cells
            if cells[0] == "AWS/Lambda":
                found.setdefault(cells[1], set()).add(cells[cells.index("FunctionName") + 1])
    return found


def test_the_dashboard_charts_each_functions_errors_throttles_and_concurrency() -> None:
    shown = charted()
    for metric in ("Errors", "Throttles", "ConcurrentExecutions"):
        assert shown[metric] == {f"${{{name_parameter(name)}}}" for name in FUNCTIONS}, metric


def test_the_dashboard_reading_expands_repeated_cells() -> None:
    shown = charted()
    assert "${AuthorizerFunctionName}" in shown["Throttles"]  # [".", "Throttles", ".", "."] after Errors
    assert not {name for names in shown.values() for name in names} - {
        f"${{{name_parameter(name)}}}" for name in FUNCTIONS
    }


# ------------------------------------------------------------------ elsewhere


def test_the_readme_layout_lists_each_functions_folder_and_package() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^  (\w+/\w+_fn)/ ", readme, re.M)
    assert sorted(listed) == sorted(f"{short(name)}/{function.package}" for name, function in FUNCTIONS.items())


def test_the_bench_measures_each_function_api_gateway_invokes_as_the_template_wires_it() -> None:
    from tests.benchmarks.bench import CASES

    measured = {case.function: case for case in CASES if not case.cache_miss}
    assert set(measured) == set(TEMPLATE.gateway_functions)
    for name, case in measured.items():
        function = FUNCTIONS[name]
        assert case.handler == function.handler, name
        [route] = [route for route in TEMPLATE.routes if route.route_key == case.route]
        authorizing = {TEMPLATE.authorizers[route.authorizer].function} if route.authorizer else set()
        assert name in {route.function, *authorizing}, case.route  # it answers the route, or authorizes it
        given = {key for key, value in function.environment.items() if key.endswith(("_PRIVATE_KEY", "_KEY_ID"))}
        assert set(case.keys) == given, name  # the keys the bench makes up: those the template leaves empty


def test_the_readme_names_each_group_of_routes() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(r"Each group of routes \(([\w, ]+)\)", readme)
    assert found is not None
    assert sorted(found[1].split(", ")) == sorted(short(name) for name in TEMPLATE.api_functions)


def test_the_connection_budget_in_the_docs_counts_each_function_sharing_the_api_reservation() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    sharing = sorted(short(n) for n, f in FUNCTIONS.items() if f.reserved_concurrency == "ApiReservedConcurrency")
    formula = re.search(r"\+ (\d+) \u00d7 ApiReservedConcurrency +# ([\w, ]+)\n", deploy)
    assert formula is not None
    assert (int(formula[1]), sorted(formula[2].split(", "))) == (len(sharing), sharing)
    example = re.search(r"^prod: 4 \u00d7 \(\d+ \+ \d+ \+ (\d+) \u00d7 ", deploy, re.M)
    assert example is not None
    assert int(example[1]) == len(sharing)
