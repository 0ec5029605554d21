"""Lists of functions that must live in a static file (pyproject.toml, CloudFormation YAML)
name exactly the functions of template.yaml, as infra/deploy/template.py reads them: adding
or removing a function without them is a red test."""

import re
import tomllib

from infra.deploy.template import ROOT, load

TEMPLATE = load()
FUNCTIONS = TEMPLATE.functions


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
