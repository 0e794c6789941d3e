"""Guard decorators that compose with Prefect's `@task` (put `@task` on top):

    @task(retries=2)
    @guard_output(checks=[mg.NullRate(column="plan")], default_suite=True, store="s3://lake/mlguard")
    def extract(day: str) -> pd.DataFrame: ...

    @task
    @guard_inputs("features", spec="guards/features.yaml")
    def train(features: pd.DataFrame, epochs: int = 3) -> str: ...

    @task
    @guard_training(config={"plateau_steps": 500})
    def fit(path: str, guard=None) -> str:
        with guard(model, opt, compute_loss=...) as g: ...

    @task
    @guard_gate(spec=GATE_SPEC, store="s3://lake/mlguard")
    def gate(scored: dict) -> dict:       # returns the gate inputs; the task returns the Report
        return scored

Sync and async functions share one code path (`_call`); an async task's guard runs in a worker thread so the
event loop stays free. `functools.wraps` keeps the name, docstring and signature Prefect introspects for
parameters and cache keys (`guard_training` hides its injected `guard` parameter from them).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from mlguard_orchestration.adapters import GuardSettings, TrainingGuardFactory, tables_of
from mlguard_orchestration.errors import GuardFailed, SpecError
from mlguard_orchestration.gate import GateSpec, register_champion, run_gate
from mlguard_orchestration.gate.spec import gate_spec
from mlguard_orchestration.prefect._report import (
    flow_file,
    install_retry_condition,
    logical_date,
    publish,
    run_context,
)
from mlguard_orchestration.report import Report
from mlguard_orchestration.store import default_store as _default_store

F = TypeVar("F", bound=Callable[..., Any])


def default_store() -> str:
    """`store.default_store` under Prefect's home: $MLGUARD_STORE, else $PREFECT_HOME/mlguard/profiles."""
    from prefect.settings import get_current_settings

    return _default_store(get_current_settings().home)


def current_task_name(fn: Callable[..., Any]) -> str:
    """The running Prefect task's name (what a guard is named after by default), else the function's."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    return ctx.task.name if ctx is not None else fn.__name__


def _run_guard(settings: GuardSettings, name: str, data: dict[str, Any]) -> None:
    guard = settings.build(name, default_store())
    guard.code_path = flow_file()
    publish(guard.run(data, logical_date=logical_date(), context=run_context()), guard.store)


def _wrap(fn: F, call: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]) -> F:
    """`fn` with `call(run, args, kwargs)` around it, sync or async alike: `run` is fn itself for a sync
    function, and for an async one a sync stand-in that awaits it — so `call` is one code path for both."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()

            def run(*a: Any, **k: Any) -> Any:  # called in the worker thread: await fn on the task's loop
                return asyncio.run_coroutine_threadsafe(fn(*a, **k), loop).result()

            return await asyncio.to_thread(call, run, args, kwargs)
        return cast(F, run_async)  # functools.wraps gave it fn's signature: the F that the caller gets

    @functools.wraps(fn)
    def run_sync(*args: Any, **kwargs: Any) -> Any:
        return call(fn, args, kwargs)
    return cast(F, run_sync)


def _settings(spec: str | None, checks: Sequence[Any], name: str | None, default_suite: bool | Sequence[str],
              label_column: str | None, reference: str | Mapping[str, str] | None, store: str | None,
              sample_values: bool, suite: Mapping[str, Any] | None = None,
              reference_policy: str | None = None) -> GuardSettings:
    try:  # validated when the decorator is applied: a typo fails at import, not in the middle of a run
        return GuardSettings(name=name, spec=None if spec is None else str(spec), checks=list(checks),
                             default_suite=default_suite if isinstance(default_suite, bool) else list(default_suite),
                             label_column=label_column,
                             reference=dict(reference) if isinstance(reference, Mapping) else reference,
                             store=store, sample_values=sample_values, suite=suite,
                             reference_policy=reference_policy)
    except ValueError as exc:
        raise SpecError(f"invalid mlguard guard settings: {exc}") from None


def guard_output(*, checks: Sequence[Any] = (), spec: str | None = None, name: str | None = None,
                 default_suite: bool | Sequence[str] = False, label_column: str | None = None,
                 reference: str | Mapping[str, str] | None = None, store: str | None = None,
                 table: str = "data", sample_values: bool = False, suite: Mapping[str, Any] | None = None,
                 reference_policy: str | None = None) -> Callable[[F], F]:
    """Guard what the task returns — a DataFrame, Arrow table, path/URI, `mg.Sql`, or `{table: source}` — before
    any downstream task sees it. A single value is the table named `table`. The guard is named after the task
    unless `name` says otherwise; its references live in `store` (default `default_store()`)."""
    settings = _settings(spec, checks, name, default_suite, label_column, reference, store, sample_values, suite,
                         reference_policy)

    def decorate(fn: F) -> F:
        def call(run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            install_retry_condition()
            result = run(*args, **kwargs)
            _run_guard(settings, current_task_name(fn), tables_of(result, table))
            return result
        return _wrap(fn, call)
    return decorate


def guard_inputs(*params: str, checks: Sequence[Any] = (), spec: str | None = None, name: str | None = None,
                 default_suite: bool | Sequence[str] = False, label_column: str | None = None,
                 reference: str | Mapping[str, str] | None = None, store: str | None = None,
                 sample_values: bool = False, suite: Mapping[str, Any] | None = None,
                 reference_policy: str | None = None) -> Callable[[F], F]:
    """Guard the named parameters before the task body runs (each parameter is the table of that name); a bad
    input fails the task before it spends anything."""
    if not params:
        raise SpecError("guard_inputs needs the names of the parameters to guard, e.g. guard_inputs('features').")
    settings = _settings(spec, checks, name, default_suite, label_column, reference, store, sample_values, suite,
                         reference_policy)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        unknown = [p for p in params if p not in signature.parameters]
        if unknown:
            raise SpecError(f"guard_inputs on {fn.__name__!r} names parameter(s) {unknown} that the function "
                            f"does not take; its parameters are {list(signature.parameters)}.")

        def call(run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            install_retry_condition()
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _run_guard(settings, current_task_name(fn), {p: bound.arguments[p] for p in params})
            return run(*args, **kwargs)
        return _wrap(fn, call)
    return decorate


def guard_training(*, config: Mapping[str, Any] | None = None, name: str | None = None) -> Callable[[F], F]:
    """Give the task a `guard` factory — `guard(model, optimizer, compute_loss=…)` → TrainingGuard — and publish
    the guard's report like the data guards'. A stopped run fails the task without retry (a diverged run with
    the same settings diverges again). The function declares `guard=None`; Prefect never sees that parameter.

    `config` holds GuardConfig fields (validated now)."""
    from mlguard_orchestration.training.config import GuardConfig

    settings = dict(config or {})
    try:
        GuardConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"guard_training: invalid config {settings}: {exc}") from None

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        if "guard" not in signature.parameters:
            raise SpecError(f"guard_training on {fn.__name__!r}: the function must take a `guard` parameter "
                            f"(`guard=None`) to receive the guard factory; it takes {list(signature.parameters)}.")
        visible = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "guard"])

        def call(run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            install_retry_condition()
            factory = TrainingGuardFactory(name or current_task_name(fn), settings, run_context())
            bound = visible.bind(*args, **kwargs)
            try:
                result = run(*bound.args, **bound.kwargs, guard=factory)
            except GuardFailed as stopped:  # TrainingStopped: the guard's verdict, with its report
                publish(stopped.report, default_store())
                raise  # unreachable: publish raised for a failed report
            if factory.guards:
                publish(factory.guards[-1].report(), default_store())
            return result
        wrapped = _wrap(fn, call)
        # inspect.signature reads __signature__ off any callable; typeshed does not declare it on functions
        wrapped.__signature__ = visible  # type: ignore[attr-defined]
        return wrapped
    return decorate


def guard_gate(*, spec: GateSpec | Mapping[str, Any], store: str | None = None, register: bool = False,
               packages: Sequence[str] = ()) -> Callable[[F], F]:
    """The evaluate → register gate on what the task returns — the gate inputs (`GateInputs` or its dict:
    predictions, targets, slices, … as values or paths) — and the task returns the Report. A blocked model fails
    the task without retry; `register=True` registers a passing model as the champion (by default the register
    step does, with `register_champion(report, store)`). `spec` is validated now."""
    checked = gate_spec(spec)

    def decorate(fn: F) -> F:
        def call(run: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Report:
            install_retry_condition()
            value = run(*args, **kwargs)
            where = store or default_store()
            report = publish(run_gate(checked, value, store=where, packages=packages, code_path=flow_file(),
                                      context=run_context()), where)
            if register:
                register_champion(report, where)
            return report
        return _wrap(fn, call)
    return decorate
