"""Celery tasks typed for the IDE and mypy (the seed's "TypedCelery").

    @task("multidb.add")
    def add(x: float, y: float) -> float: ...

    add.delay(2, 3).get()           # float
    add.delay("x")                  # mypy: incompatible type "str"; expected "float"
    add.apply_async(args=(1,))      # mypy: expected "tuple[float, float]"

`delay` takes the function's own parameters (defaults and keywords included);
`apply_async(args=...)` takes every positional argument as a tuple. An `async def` task's
result is what it returns once awaited. At run time the decorated object is the Celery
task itself: only the types are added.
"""

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, overload


class TaskResult[R](Protocol):
    """A run's handle (Celery's AsyncResult), as callers read it."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str: ...

    def ready(self) -> bool: ...

    def get(self, timeout: float | None = None, propagate: bool = True) -> R: ...


class TaskMeta(TypedDict, total=False):
    """What the result backend keeps of a run (`app.backend.get_task_meta`)."""

    task_id: str
    status: str
    result: Any
    traceback: str | None
    date_done: Any


class _Positional[*Ts, R](Protocol):
    """A task whose positional parameters are `Ts`: what `apply_async(args=...)` checks against."""

    @property
    def signature(self) -> Callable[[*Ts], R]: ...


class TypedTask[**P, R](Protocol):
    name: str

    @property
    def signature(self) -> Callable[P, R]:
        """The function's parameters and result (types only; the task body is `run`)."""
        ...

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R]: ...

    def apply_async[*Ts](
        self: "_Positional[*Ts, R]",
        args: tuple[*Ts],
        kwargs: None = None,
        *,
        countdown: float | None = None,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        **options: Any,
    ) -> TaskResult[R]: ...


class _Decorator(Protocol):
    @overload
    def __call__[**P, R](self, fn: Callable[P, Coroutine[Any, Any, R]]) -> TypedTask[P, R]: ...

    @overload
    def __call__[**P, R](self, fn: Callable[P, R]) -> TypedTask[P, R]: ...


def task(name: str, **options: Any) -> _Decorator:
    """Register `fn` as the Celery task `name`, typed by its own signature."""
    from .app import app

    def register(fn: Callable[..., Any]) -> Any:
        return app.task(name=name, **options)(fn)

    if TYPE_CHECKING:
        from typing import cast

        return cast(_Decorator, register)
    return register  # type: ignore[return-value]
