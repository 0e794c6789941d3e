"""Where a non-finite value came from: the first module that produced it, and the samples that reproduce it.

`locate_non_finite` replays the failed batch on the model as it is (the guard skipped the bad update, so the
weights are still the pre-fault ones) with hooks on every module:

1. Forward: the first module, in execution order, whose inputs are all finite and whose output is not. Forward
   hooks fire children-first, so this is the deepest module that *produced* the value, not the containers
   that passed it on. If the model's outputs are finite but the loss is not, the producer is the loss
   computation, named '<loss>'. If the batch itself holds NaN/Inf and no module produced anything new, there is
   no producing module (None) and the sample fault says `input_non_finite`.
2. Backward (forward and loss finite): the first module, in backward order, whose incoming gradient
   (grad_output) is finite and whose outgoing gradient (grad_input) or own parameter gradients are not. For
   phase 'backward' the ModuleFault's `inputs` are the module's *forward* input activations (their range is
   what explains sqrt/log/div at 0) and its `outputs` the non-finite gradients it produced.
3. Samples. Batches are split on their first dimension: a tensor, or tuples/lists/dicts (nested) of tensors
   whose first dimension is the batch size; other leaves (scalars, strings, tensors of another length) are
   passed through unchanged. Where samples are independent (no BatchNorm-like module in training mode) the
   bad samples are read off in one pass — rows of the batch holding NaN/Inf, or non-finite rows of the
   producer's output/gradient (confirmed by one replay) — else found by splitting the batch (method
   'per-sample'). Where samples are coupled (BatchNorm in training mode) the batch is bisected: halves are
   replayed, each half that still fails is split again, and halves that pass become a clean background that
   keeps later, smaller sub-batches at a usable size (method 'bisection').

Nothing the replay touches survives it: hooks are removed, every module's train/eval flag, every parameter's
`.grad` and every buffer (BatchNorm running statistics) are restored, gradients are taken with
`torch.autograd.grad` (never accumulated into `.grad`), and the replays run on a forked RNG (each replay starts
from the RNG state at the call, so a guard that rewinds the RNG before calling reproduces the step's dropout).
`compute_loss(model, batch)` must redo the step's forward and loss (inside any autocast the step used).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.batches import (
    bad_rows,
    batch_size,
    coupled,
    finite,
    forked_rng,
    preserved,
    scalar,
    take,
    tensor_stats,
    tensors,
    to_cpu,
)
from mlguard_orchestration.training.evidence import ModuleFault, SampleFault, TensorStats

log = logging.getLogger(__name__)

LOSS = "<loss>"
ROOT = "<model>"  # the name reported when the top-level module's own code produced the value
MAX_REPLAYS = 64  # sub-batch replays the sample search may spend
MAX_STATS = 4  # tensors summarised per side of a ModuleFault
_BACKGROUND = 8  # known-clean samples added to coupled sub-batches


# -- the replay ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Replay:
    """What one hooked replay of the full batch saw."""

    order: list[str] = dataclasses.field(default_factory=list)  # modules by first forward call
    inputs: dict[str, list[torch.Tensor]] = dataclasses.field(default_factory=dict)  # first call's inputs
    fwd: tuple[str, nn.Module, list[torch.Tensor], list[torch.Tensor]] | None = None
    root_called: bool = False
    root_finite: bool = True
    root_outputs: list[torch.Tensor] = dataclasses.field(default_factory=list)
    bwd_seen: dict[str, bool] = dataclasses.field(default_factory=dict)  # backward order; grad_output finite
    bwd_grads: dict[str, list[torch.Tensor]] = dataclasses.field(default_factory=dict)  # non-finite grad_input
    go: dict[str, bool] = dataclasses.field(default_factory=dict)  # grad_output finite, per module
    bad_go: list[tuple[str, list[torch.Tensor]]] = dataclasses.field(default_factory=list)  # in backward order
    outputs: dict[str, list[torch.Tensor]] = dataclasses.field(default_factory=dict)  # first call's outputs
    loss: torch.Tensor | None = None
    loss_finite: bool = True
    grads_finite: bool = True
    bad_param_modules: list[str] = dataclasses.field(default_factory=list)
    param_grads: dict[str, list[torch.Tensor]] = dataclasses.field(default_factory=dict)


def _replay(model: nn.Module, compute_loss: Callable[[nn.Module, Any], Any], batch: Any,
            handles: list[Any], backward_hooks: bool) -> _Replay:
    r = _Replay()
    names = {m: (name or ROOT) for name, m in model.named_modules()}

    def forward_hook(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        name = names[module]
        ins, outs = tensors(args) + tensors(kwargs), tensors(output)
        if name not in r.inputs:
            r.order.append(name)
            r.inputs[name] = [t.detach() for t in ins[:MAX_STATS]]
            r.outputs[name] = [t.detach() for t in outs[:MAX_STATS]]
            if not backward_hooks and torch.is_grad_enabled():
                _tensor_hooks(name, ins, outs)
        if module is model:
            r.root_called = True
            r.root_outputs = [t.detach() for t in outs[:MAX_STATS]]
            r.root_finite = r.root_finite and finite(outs)
        if r.fwd is None and not finite(outs) and finite(ins):
            r.fwd = (name, module, [t.detach() for t in ins[:MAX_STATS]], [t.detach() for t in outs[:MAX_STATS]])

    def _tensor_hooks(name: str, ins: list[torch.Tensor], outs: list[torch.Tensor]) -> None:
        """Without module backward hooks: the gradient reaching the module's outputs and leaving through its
        inputs, from tensor hooks (an input shared with another module sees both modules' gradients)."""
        out_finite = [True]

        def on_output(g: torch.Tensor) -> None:
            out_finite[0] = out_finite[0] and finite([g])
            _grad_output(name, out_finite[0], [g])

        def on_input(g: torch.Tensor) -> None:
            if name not in r.bwd_seen:
                r.bwd_seen[name] = out_finite[0]
                if out_finite[0] and not finite([g]):
                    r.bwd_grads[name] = [g.detach()]

        for t in outs:
            if t.requires_grad:
                handles.append(t.register_hook(on_output))
        for t in ins:
            if t.requires_grad and (t.is_floating_point() or t.is_complex()):
                handles.append(t.register_hook(on_input))

    def backward_hook(module: nn.Module, grad_input: Any, grad_output: Any) -> None:
        name = names[module]
        if name in r.bwd_seen:
            return
        gin = [g for g in grad_input if isinstance(g, torch.Tensor)]
        go_finite = finite([g for g in grad_output if isinstance(g, torch.Tensor)])
        gi_finite = finite(gin)
        r.bwd_seen[name] = go_finite
        _grad_output(name, go_finite, [g for g in grad_output if isinstance(g, torch.Tensor)])
        if go_finite and not gi_finite:
            r.bwd_grads[name] = [g.detach() for g in gin[:MAX_STATS]]

    def _grad_output(name: str, finite: bool, grads: list[torch.Tensor]) -> None:
        if name not in r.go or (r.go[name] and not finite):
            r.go[name] = finite
            if not finite:
                r.bad_go.append((name, [g.detach() for g in grads[:MAX_STATS]]))

    for m in names:
        handles.append(m.register_forward_hook(forward_hook, with_kwargs=True))
        if backward_hooks:
            handles.append(m.register_full_backward_hook(backward_hook))
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss = scalar(compute_loss(model, batch))
            r.loss = loss.detach()
            r.loss_finite = finite([loss])
            forward_ok = r.fwd is None or (r.root_called and r.root_finite)
            if r.loss_finite and forward_ok and loss.requires_grad:
                _backward(model, loss, r)
    finally:
        while handles:
            handles.pop().remove()
    return r


def _backward(model: nn.Module, loss: torch.Tensor, r: _Replay) -> None:
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        return
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    owner = {id(p): (name or ROOT) for name, m in model.named_modules() for p in m.parameters(recurse=False)}
    for (_, p), g in zip(params, grads, strict=True):
        if g is not None and not finite([g]):
            r.grads_finite = False
            mod = owner.get(id(p), ROOT)
            r.param_grads.setdefault(mod, []).append(g.detach())
            if mod not in r.bad_param_modules:
                r.bad_param_modules.append(mod)


def _module_fault(model: nn.Module, compute_loss: Any, r: _Replay,
                  input_bad: bool) -> tuple[ModuleFault | None, str | None]:
    """The producing module and the phase of the failure: 'forward', 'loss', 'backward' or None."""
    def stats(ts: list[torch.Tensor]) -> list[TensorStats]:
        return [tensor_stats(t) for t in ts[:MAX_STATS]]

    modules = {(name or ROOT): m for name, m in model.named_modules()}
    if r.fwd is not None and (not r.root_called or not r.root_finite):
        name, module, ins, outs = r.fwd
        return ModuleFault(name=name, type=type(module).__name__, phase="forward", inputs=stats(ins),
                           outputs=stats(outs)), "forward"
    if not r.loss_finite:
        if (r.root_called and not r.root_finite) or input_bad:
            return None, "forward"  # the batch's own NaN/Inf flowed through: no module produced it
        assert r.loss is not None
        kind = getattr(compute_loss, "__name__", None) or type(compute_loss).__name__
        return ModuleFault(name=LOSS, type=kind, phase="forward", inputs=stats(r.root_outputs),
                           outputs=[tensor_stats(r.loss)]), "loss"
    if not r.grads_finite or r.bwd_grads:
        # backward order: the first module whose incoming gradient is finite and whose input gradient or own
        # parameter gradients are not; without backward hooks, reverse forward order over parameter gradients
        order = list(r.bwd_seen) or list(reversed(r.order))
        for name in order:
            if r.bwd_seen.get(name, True) and (name in r.bwd_grads or name in r.bad_param_modules):
                grads = r.bwd_grads.get(name) or r.param_grads[name]
                return ModuleFault(name=name, type=type(modules[name]).__name__, phase="backward",
                                   inputs=stats(r.inputs.get(name, [])), outputs=stats(grads)), "backward"
        if r.bad_go:
            # no module turned a finite gradient into a non-finite one: the first gradient to break arrived at
            # a module's output, so the code that consumed that output produced it — the lowest enclosing
            # module whose own output gradient is finite (a functional op in its forward), else the loss.
            child, grads = r.bad_go[0]
            owner = next((a for a in _ancestors(child) if r.go.get(a) is True), LOSS)
            kind = (type(modules[owner]).__name__ if owner != LOSS
                    else getattr(compute_loss, "__name__", None) or type(compute_loss).__name__)
            return ModuleFault(name=owner, type=kind, phase="backward", inputs=stats(r.outputs.get(child, [])),
                               outputs=stats(grads)), "backward"
        return None, "backward"
    return None, None


def _ancestors(name: str) -> list[str]:
    """'a.b.c' -> ['a.b', 'a', ROOT]; the root has none."""
    if name == ROOT:
        return []
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)] + [ROOT]


# -- the samples ---------------------------------------------------------------------------------------------

def _reproduces(model: nn.Module, compute_loss: Any, sub: Any, phase: str, producer: nn.Module | None,
                rewind: Callable[[], None]) -> bool:
    """Does this sub-batch alone fail the way the full batch did? A replay that raises counts as 'no'."""
    rewind()
    seen: list[bool] = []
    handle = None
    if producer is not None and phase == "forward":
        handle = producer.register_forward_hook(lambda m, a, o: seen.append(not finite(tensors(o))))
    try:
        if phase == "backward":
            with torch.enable_grad():
                loss = scalar(compute_loss(model, sub))
                if not finite([loss]):
                    return True
                params = [p for p in model.parameters() if p.requires_grad]
                if not loss.requires_grad or not params:
                    return False
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                return not finite([g for g in grads if g is not None])
        with torch.no_grad():
            loss = scalar(compute_loss(model, sub))
        return any(seen) or not finite([loss])
    except Exception:  # noqa: BLE001 - e.g. BatchNorm refusing a 1-sample batch: not a reproduction
        return False
    finally:
        if handle is not None:
            handle.remove()


def _search(test: Callable[[list[int]], bool], n: int, coupled: bool, max_samples: int) -> list[int]:
    """Indices of samples that reproduce the failure, by splitting a failing set in halves (group testing).

    A half that fails on its own is split again; a half that passes is clean and (for coupled models) becomes
    the background added to later tests. If neither half fails alone, the failure needs both: the whole set is
    reported. At most MAX_REPLAYS tests; sets still open when the budget runs out are reported whole."""
    found: list[int] = []
    clean: list[int] = []
    stack = [list(range(n))]
    replays = 0

    def fails(s: list[int]) -> bool:
        nonlocal replays
        replays += 1
        bg = [i for i in clean if i not in s][:_BACKGROUND] if coupled else []
        return test(sorted(s + bg))

    while stack and len(found) < max_samples:
        s = stack.pop()
        if len(s) == 1 or replays + 2 > MAX_REPLAYS:
            found.extend(s)
            continue
        a, b = s[: len(s) // 2], s[len(s) // 2:]
        fa = fails(a)
        fb = fails(b)
        if not fa and not fb:
            found.extend(s)
            continue
        for half, bad in ((b, fb), (a, fa)):  # a is pushed last, so popped first: indices come out in order
            if bad:
                stack.append(half)
            else:
                clean.extend(half)
    return sorted(found)[:max_samples]


def _samples(model: nn.Module, compute_loss: Any, batch: Any, r: _Replay | None, fault: ModuleFault | None,
             phase: str | None, rewind: Callable[[], None],
             max_samples: int) -> tuple[SampleFault | None, int | None]:
    n = batch_size(batch)
    ts = tensors(batch)
    if n is None:
        bad_input = not finite(ts)
        return (SampleFault(indices=[], method="per-sample", input_non_finite=True) if bad_input else None), n
    input_rows = bad_rows(ts, n)
    is_coupled = coupled(model)
    modules = {(name or ROOT): m for name, m in model.named_modules()}
    producer = modules.get(fault.name) if fault is not None else None

    def test(idx: list[int]) -> bool:
        assert phase is not None
        return _reproduces(model, compute_loss, take(batch, idx, n), phase, producer, rewind)

    indices: list[int] = []
    if phase is not None and (is_coupled or not input_rows):
        if n == 1:
            indices = [0]
        elif not is_coupled and r is not None and (rows := _producer_rows(r, fault, n)) and test(rows):
            indices = rows  # read off the producer's output/gradient, confirmed by one replay
        else:
            indices = _search(test, n, is_coupled, max_samples)
    if not indices:
        indices = input_rows
    if not indices:
        return None, n
    indices = indices[:max_samples]
    return SampleFault(indices=indices, method="bisection" if is_coupled and phase is not None else "per-sample",
                       input_non_finite=any(i in set(input_rows) for i in indices)), n


def _producer_rows(r: _Replay, fault: ModuleFault | None, n: int) -> list[int]:
    if fault is None or (fault.name == LOSS and fault.phase == "forward"):
        return []
    if fault.phase == "forward" and r.fwd is not None:
        return bad_rows(r.fwd[3], n)
    if fault.phase == "backward" and fault.name in r.bwd_grads:
        return bad_rows(r.bwd_grads[fault.name], n)
    if fault.phase == "backward" and r.bad_go:  # the gradient that broke at a module's output
        return bad_rows(r.bad_go[0][1], n)
    return []


def _save(artifact_dir: Path, batch: Any, n: int, sample: SampleFault, fault: ModuleFault | None) -> str | None:
    try:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S-%fZ")
        path = artifact_dir / f"{stamp}-nonfinite.pt"
        torch.save({"indices": sample.indices, "batch": to_cpu(take(batch, sample.indices, n)),
                    "method": sample.method, "input_non_finite": sample.input_non_finite,
                    "module": fault.name if fault else None, "phase": fault.phase if fault else None}, path)
        return str(path)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not fail the guard
        log.warning("could not save the non-finite samples to %s: %s", artifact_dir, exc)
        return None


# -- the entry point -----------------------------------------------------------------------------------------

def locate_non_finite(model: nn.Module, compute_loss: Callable[[nn.Module, Any], torch.Tensor], batch: Any, *,
                      artifact_dir: Path | None = None,
                      max_samples: int = 50) -> tuple[ModuleFault | None, SampleFault | None]:
    """The module that first produced a NaN/Inf on this batch and the samples that reproduce it.

    Replays `compute_loss(model, batch)` (forward, loss, then gradients with torch.autograd.grad) with hooks;
    see the module docstring for the rules. Returns (None, None) when the replay is finite throughout and the
    batch holds no NaN/Inf. Leaves the model exactly as it found it (modes, .grad, buffers, hooks, RNG). Never
    raises for a replay that fails: a diagnosis must not mask the failure it diagnoses."""
    fault: ModuleFault | None = None
    sample: SampleFault | None = None
    n: int | None = None
    input_bad = not finite(tensors(batch))
    with preserved(model) as handles, forked_rng(model) as rewind:
        r: _Replay | None = None
        for backward_hooks in (True, False):  # full backward hooks refuse some in-place ops: retry without
            try:
                rewind()
                r = _replay(model, compute_loss, batch, handles, backward_hooks)
                break
            except Exception as exc:  # noqa: BLE001 - best effort: the guard reports what it has
                if backward_hooks:
                    log.info("replay with module backward hooks failed (%s); retrying with tensor hooks", exc)
                else:
                    log.warning("replay of the non-finite batch failed: %s", exc)
        phase: str | None = None
        if r is not None:
            try:
                fault, phase = _module_fault(model, compute_loss, r, input_bad)
            except Exception as exc:  # noqa: BLE001 - best effort
                log.warning("could not name the module that produced the non-finite value: %s", exc)
        try:
            sample, n = _samples(model, compute_loss, batch, r, fault, phase, rewind, max(1, max_samples))
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("could not find the samples that produce the non-finite value: %s", exc)
    if sample is not None and artifact_dir is not None and n is not None and sample.indices:
        sample.artifact = _save(Path(artifact_dir), batch, n, sample, fault)
    return fault, sample


__all__ = ["LOSS", "ROOT", "batch_size", "locate_non_finite", "take", "tensor_stats"]
