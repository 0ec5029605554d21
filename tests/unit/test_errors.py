"""Errors are classes: each states its status, its `error` name and its default message, and its
docstring says when it is answered. The registry (`multidb.errors.ERRORS`) holds every one,
each name once; docs/api.md's table is generated from it, and each route's OpenAPI document
lists, per status, only names the registry holds with that status."""

import gc
import re

import pytest

from infra.deploy import errors_table
from infra.deploy.template import load
from infra.local.gateway.docs import merged_openapi
from multidb.api.errors import DEFAULTS, error_names
from multidb.errors import ERRORS, GENERIC, AppError, NotFound, TooManyRequests

NAME = re.compile(r"^[a-z]+(_[a-z]+)*$")
ROW = re.compile(r"^\| (\d{3}) \| `([a-z_]+)` \| (.+) \|$", re.MULTILINE)


@pytest.fixture(scope="module")
def registry() -> dict[str, type[AppError]]:
    return errors_table.discover()


def subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *subclasses(sub)}
    return found


def test_every_error_class_is_recorded_under_its_own_name(registry: dict[str, type[AppError]]) -> None:
    gc.collect()  # a class refused (see below) lingers among the subclasses until collected
    named = {cls for cls in subclasses(AppError) if "error" in vars(cls)}
    assert len(named) > 60  # discovery imported the modules that define them
    assert set(registry.values()) == named
    assert all(registry[cls.error] is cls for cls in named)
    # A class that names no error of its own (an error with extra behaviour) answers as its parent.
    for cls in subclasses(AppError) - named:
        assert registry[cls.error] in cls.__mro__, cls


def test_every_name_is_snake_case_with_a_status_a_message_and_a_docstring(registry: dict[str, type[AppError]]) -> None:
    for name, cls in registry.items():
        assert NAME.match(name), name
        assert 400 <= cls.status_code < 600, name
        assert cls.message.strip(), name
        assert (vars(cls).get("__doc__") or "").strip(), f"{cls.__qualname__} says nowhere when it is answered"


def test_a_name_taken_by_another_class_is_refused(registry: dict[str, type[AppError]]) -> None:
    with pytest.raises(TypeError, match="'file_not_found'"):

        class Again(NotFound, error="file_not_found"):
            """Not a second class for one name."""

    assert registry["file_not_found"].__qualname__ == "FileNotFound"
    assert ERRORS["file_not_found"] is registry["file_not_found"]


def test_a_raise_site_may_say_more_but_keeps_the_name_and_status(registry: dict[str, type[AppError]]) -> None:
    runs = registry["too_many_task_runs"]
    assert issubclass(runs, TooManyRequests)
    default, specific = runs(), runs("at most 3 runs a minute", retry_after=30)
    assert (default.status_code, default.error, default.message, default.retry_after) == (
        429,
        "too_many_task_runs",
        "too many task runs; try again later",
        1,
    )
    assert (specific.error, specific.message, specific.retry_after) == (
        "too_many_task_runs",
        "at most 3 runs a minute",
        30,
    )


def test_each_status_has_one_generic_error_the_envelope_falls_back_on() -> None:
    assert len({cls.status_code for cls in GENERIC}) == len(GENERIC)
    assert DEFAULTS[404] is NotFound
    assert {cls.status_code for cls in GENERIC} >= {400, 401, 403, 404, 405, 409, 422, 429, 500, 503}


def test_the_docs_table_is_generated_from_the_classes(registry: dict[str, type[AppError]]) -> None:
    page = errors_table.PAGE.read_text()
    assert errors_table.current(page) == errors_table.render(), "docs/api.md's error table is stale: run `make errors`"
    rows = ROW.findall(errors_table.current(page))
    assert sorted(name for _, name, _ in rows) == sorted(registry)
    assert all(int(status) == registry[name].status_code for status, name, _ in rows)


def test_every_name_a_route_documents_is_registered_with_that_status(registry: dict[str, type[AppError]]) -> None:
    listed = 0
    for path, methods in merged_openapi(load())["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                schema = response["content"]["application/json"]["schema"] if "content" in response else {}
                for option in schema.get("oneOf", [schema]):
                    for name in error_names({"content": {"application/json": {"schema": _own(option)}}}):
                        listed += 1
                        assert name in registry, (method, path, status, name)
                        assert registry[name].status_code == int(status), (method, path, status, name)
    assert listed > 300


def _own(schema: dict) -> dict:
    """The part of an `allOf` that lists the names."""
    return next((part for part in schema.get("allOf", []) if "properties" in part), schema)
