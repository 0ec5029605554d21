"""Every route and every dependency of the API functions is a coroutine.

FastAPI runs a plain `def` route or dependency in a worker thread, and anyio ends its worker
threads with the task that started them: under Mangum each invocation is such a task, so
each would start (and end) a thread of its own — a measurable part of a warm request.
"""

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from infra.deploy.template import ROOT, load

FUNCTIONS = [function.package for function in load().api_functions.values()]


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from calls(dependency)


def asynchronous(call: Callable[..., Any]) -> bool:
    target = call if inspect.isroutine(call) else type(call).__call__  # HTTPBearer and the like
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.parametrize("package", FUNCTIONS)
def test_no_route_or_dependency_runs_in_a_thread(package: str) -> None:
    router = importlib.import_module(f"{package}.routes").router
    routes = [route for route in router.routes if isinstance(route, APIRoute)]
    assert routes
    for route in routes:
        blocking = [call for call in [route.endpoint, *calls(route.dependant)] if not asynchronous(call)]
        assert not blocking, f"{route.path}: {blocking} run in a worker thread: make them `async def`"


def test_the_check_covers_every_package_with_routes() -> None:
    assert set(FUNCTIONS) == {routes.parent.name for routes in ROOT.glob("functions/*/*_fn/routes.py")}


def test_the_check_sees_a_plain_function() -> None:
    def plain() -> int:
        return 1

    async def coroutine() -> int:
        return 1

    assert not asynchronous(plain)
    assert asynchronous(coroutine)
