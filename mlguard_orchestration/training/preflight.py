"""Fail-fast preflight: seconds of checks on a tiny slice of the real job before the expensive training run.

`preflight(build_model, loss_fn, loader)` checks, in order (each failing item is one `preflight.failed` finding
whose `check` is `preflight.<item>` and whose message says what was measured, what was expected, what to do):

- data_batch     the first batch of the real loader: (inputs, targets) tensors, matching batch sizes, dtypes that
                 fit the task (integer class labels, floating regression targets), labels in range, no NaN/Inf
                 (the model items below then run on the finite rows only);
- model_build    build_model() returns an nn.Module instead of raising;
- output_shape   the output matches the target (the [N,1]-vs-[N] broadcast in MSE, a class-count mismatch) and
                 loss_fn returns a finite scalar;
- initial_loss   plausible at initialisation: ≈ log K for K classes, same order as predicting the target mean;
- gradient_flow  one backward reaches every trainable parameter, with a finite, non-zero gradient;
- overfit_batch  the model can memorise 16 samples of that batch;
- checkpoint     state_dict → torch.save → load into a fresh build gives bit-identical outputs;
- determinism    two short runs from the same seed give identical losses, and the data order does not follow
                 the global torch RNG (unseeded DataLoader shuffle/workers);
- data_loading   the share of step time spent waiting for the loader (always in `report.notes`).

Preflight leaves the caller's RNG states (torch, random, numpy) and the loader's generators as it found them.
"""

from __future__ import annotations

import io
import math
import random
import statistics
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from mlguard_orchestration.checks.base import cause
from mlguard_orchestration.report import Cause, Finding, Report, Severity

Task = Literal["classification", "regression"]

ITEMS = ("data_batch", "model_build", "output_shape", "initial_loss", "gradient_flow", "overfit_batch",
         "checkpoint", "determinism", "data_loading")

OVERFIT_SAMPLES = 16  # rows of the first batch the model must memorise
OVERFIT_LR = 1e-2  # Adam, when no make_optimizer is given
OVERFIT_TARGET = 0.1  # the loss must fall to this fraction of its start (regression: of the mean predictor's)
DETERMINISM_STEPS = 5
INIT_WARN_RATIO, INIT_FAIL_RATIO = 1.5, 3.0  # classification: initial loss / log K
INIT_WARN_EXCESS, INIT_FAIL_EXCESS = 0.3, 1.0  # ... and at least this much above log K (nats)
REGRESSION_WARN_RATIO, REGRESSION_FAIL_RATIO = 10.0, 100.0  # initial loss / loss of predicting the mean
LOADING_WARN_SHARE, LOADING_WARN_MIN_S = 0.5, 0.010  # warn above 50% of step time and 10 ms per batch

_INPUT_KEYS = ("x", "input", "inputs", "features")
_TARGET_KEYS = ("y", "target", "targets", "label", "labels")
_MAX_NAMES = 10


class _BatchError(ValueError):
    """A batch that is not (inputs, targets) tensors."""


class _Skip(Exception):
    """An item that cannot run (its reason goes to the notes)."""


@dataclass
class _Batch:
    x: Tensor
    y: Tensor


@dataclass
class _RunResult:
    losses: list[float]
    timing: dict[str, float]


def preflight(build_model: Callable[[], nn.Module], loss_fn: Callable[[Tensor, Tensor], Tensor],
              loader: Iterable[Any], *, make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] | None = None,
              num_classes: int | None = None, task: Task | None = None, seed: int = 0,
              overfit_steps: int = 100, time_budget_s: float = 30.0, name: str = "preflight",
              make_loader: Callable[[], Iterable[Any]] | None = None) -> Report:
    """Run the preflight items and return a Report (pass, warn or fail); never raises for a broken model or loader.

    `loader` yields (inputs, targets) pairs (tuples/lists, or dicts with keys such as 'x'/'y', 'input'/'target').
    `make_loader` builds a fresh loader; give it when `loader` is a one-shot iterator, so the determinism runs
    can re-read the data. `task` is inferred when not given: classification when `num_classes` is given, the
    loss is a cross-entropy/NLL/BCE, or the targets are integers; regression otherwise. Items left when
    `time_budget_s` runs out are skipped and named in the notes."""
    started = time.perf_counter()
    run = _Preflight(build_model, loss_fn, loader, make_optimizer, num_classes, task, seed, overfit_steps,
                     started + time_budget_s, make_loader)
    with _preserved_rng(), run.generators_preserved():
        run.run_all()
    findings = run.findings
    return Report(guard=name, status=Report.status_of(findings), duration_s=round(time.perf_counter() - started, 3),
                  checks_run=len(run.ran), findings=findings, notes=run.notes)


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class _Preflight:
    build_model: Callable[[], nn.Module]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    loader: Iterable[Any]
    make_optimizer: Callable[[Iterable[nn.Parameter]], Optimizer] | None
    num_classes: int | None
    task: Task | None
    seed: int
    overfit_steps: int
    deadline: float
    make_loader: Callable[[], Iterable[Any]] | None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    batch: _Batch | None = None  # finite rows of the first batch, on the model's device once it is built
    model: nn.Module | None = None
    trained: nn.Module | None = None  # the model after overfit_batch, for the checkpoint round trip
    mode: Literal["index", "elementwise", "regression"] = "regression"
    init_loss: float | None = None
    loss0: Tensor | None = None
    output0: Tensor | None = None
    differentiable: bool = True  # the loss has a grad_fn (else nothing can train)
    timings: dict[str, float] = field(default_factory=dict)
    generators: list[torch.Generator] = field(default_factory=list)
    generator_states: list[Tensor] = field(default_factory=list)

    # -- plumbing ------------------------------------------------------------------------------------------

    def run_all(self) -> None:
        needs: dict[str, tuple[str, ...]] = {
            "data_batch": (), "model_build": (), "output_shape": ("model_build",),
            "initial_loss": ("output_shape",), "gradient_flow": ("output_shape",),
            "overfit_batch": ("output_shape",), "checkpoint": ("output_shape",),
            "determinism": ("output_shape",), "data_loading": (),
        }
        uses = {"data_loading": "determinism"}  # times determinism's runs: skipped with it, not failed with it
        skipped: dict[str, str] = {}
        for item in ITEMS:
            blocked = [n for n in needs[item] if n in self.failed or n in skipped]
            if blocked:  # name the root reason, not the item in between
                skipped[item] = skipped.get(blocked[0], f"{blocked[0]} did not pass")
                continue
            if uses.get(item) in skipped:
                skipped[item] = skipped[uses[item]]
                continue
            if time.perf_counter() > self.deadline:
                skipped[item] = "the time budget ran out"
                continue
            try:
                getattr(self, f"_{item}")()
                self.ran.append(item)
            except _Skip as why:
                skipped[item] = str(why)
            except Exception as exc:  # noqa: BLE001 - user code raising is a finding, not a traceback
                self.ran.append(item)
                self._add(item, f"The {item.replace('_', ' ')} check raised {_exc(exc)}. Expected it to run "
                          "through; fix the code at the place the evidence names.", evidence=_where(exc))
        by_reason: dict[str, list[str]] = {}
        for item, why in skipped.items():
            by_reason.setdefault(why, []).append(item)
        for why, items in by_reason.items():
            self.notes.append(f"skipped {', '.join(items)}: {why}")
        if not self.ran:
            self.notes.append("no preflight item could run")

    def _add(self, item: str, message: str, *, severity: Severity = "fail", value: Any = None,
             threshold: Any = None, evidence: dict[str, Any] | None = None,
             causes: list[Cause] | None = None) -> None:
        if severity == "fail":
            self.failed.add(item)
        self.findings.append(Finding(code="preflight.failed", check=f"preflight.{item}", severity=severity,
                                     message=message, value=value, threshold=threshold,
                                     evidence={"item": item, **(evidence or {})}, causes=causes or []))

    def _fresh_model(self, seed: int | None = None) -> nn.Module:
        torch.manual_seed(self.seed if seed is None else seed)
        model = self.build_model()
        if not isinstance(model, nn.Module):
            raise TypeError(f"build_model() returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def _optimizer(self, model: nn.Module) -> Optimizer:
        if self.make_optimizer is not None:
            return self.make_optimizer(model.parameters())
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=OVERFIT_LR)

    def _iter_loader(self) -> Iterator[Any]:
        if self.make_loader is not None:
            return iter(self.make_loader())
        if isinstance(self.loader, Iterator):
            raise _Skip("the loader is a one-shot iterator; pass make_loader= to re-read the data")
        return iter(self.loader)

    @contextmanager
    def generators_preserved(self) -> Iterator[None]:
        """Remember the loader's own generators and put them back as found (each run restarts from them)."""
        self.generators = _loader_generators(self.loader)
        self.generator_states = [g.get_state() for g in self.generators]
        try:
            yield
        finally:
            self._restore_generators()

    def _restore_generators(self) -> None:
        for g, s in zip(self.generators, self.generator_states, strict=True):
            g.set_state(s)

    def _on_device(self, batch: _Batch) -> _Batch:
        assert self.model is not None
        p = next(self.model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        return _Batch(batch.x.to(device), batch.y.to(device))

    def _infer_task(self, y: Tensor) -> Task:
        if self.task is not None:
            return self.task
        if self.num_classes is not None or _loss_kind(self.loss_fn) in ("ce", "bce"):
            return "classification"
        return "regression" if y.is_floating_point() else "classification"

    # -- items ---------------------------------------------------------------------------------------------

    def _data_batch(self) -> None:
        self._restore_generators()
        it = iter(self.loader)
        try:
            raw = next(it)
        except StopIteration:
            self._add("data_batch", "The data loader yielded no batch at all. Expected at least one "
                      "(inputs, targets) batch; check the dataset's length, the sampler and drop_last.")
            return
        finally:
            del it  # a DataLoader's workers stop with their iterator
        try:
            x, y = _split(raw)
        except _BatchError as exc:
            self._add("data_batch", f"The first batch is not usable: {exc}. Expected (inputs, targets) tensors, "
                      "as a tuple/list or a dict with keys like 'x'/'y'; adapt the dataset's __getitem__ or "
                      "collate_fn.", evidence={"batch_type": type(raw).__name__})
            return
        task = self._infer_task(y)
        problems: list[str] = []  # any of these makes the batch unusable for the model items
        non_finite: list[str] = []  # these only drop rows
        causes: list[Cause] = []
        evidence: dict[str, Any] = {"inputs": _describe(x), "targets": _describe(y), "task": task}
        if x.ndim == 0 or y.ndim == 0:
            problems.append(f"inputs {list(x.shape)} / targets {list(y.shape)} have no batch dimension")
        elif x.shape[0] != y.shape[0]:
            problems.append(f"{x.shape[0]} input rows but {y.shape[0]} target rows (expected the same batch size)")
        elif x.shape[0] == 0:
            problems.append("the batch is empty")
        if x.is_complex() or x.dtype == torch.bool:
            problems.append(f"inputs are {_dtype(x)}; expected floating point (or integer ids for embeddings)")
        if task == "classification" and not y.is_floating_point():
            labels = y[y != -100]  # CrossEntropyLoss's default ignore_index
            if labels.numel() and int(labels.min()) < 0:
                problems.append(f"a class label is {int(labels.min())}; labels must be 0..K-1")
            if labels.numel() and self.num_classes is not None and int(labels.max()) >= self.num_classes:
                problems.append(f"a class label is {int(labels.max())} but num_classes={self.num_classes}; labels "
                                "must be 0..K-1 (are they 1-based?)")
        elif task == "classification" and y.ndim == 1 and _loss_kind(self.loss_fn) != "bce":
            problems.append(f"class labels are {_dtype(y)}; expected integer class indices (torch.long): call "
                            ".long() on the targets")
        elif task == "regression" and not y.is_floating_point():
            problems.append(f"regression targets are {_dtype(y)}; expected floating point: call .float() on them")
        bad_rows = torch.zeros(x.shape[0] if x.ndim else 0, dtype=torch.bool, device=x.device)
        for label, t in (("inputs", x), ("targets", y)):
            if not (t.is_floating_point() or t.is_complex()) or t.ndim == 0:
                continue
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            if nan or inf:
                rows = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(dim=1)
                if rows.shape == bad_rows.shape:
                    bad_rows |= rows.to(bad_rows.device)
                idx = rows.nonzero().flatten()[:20].tolist()
                non_finite.append(f"{label} hold {nan} NaN and {inf} Inf values (in {int(rows.sum())} of "
                                f"{t.shape[0]} rows, e.g. rows {idx})")
                evidence[f"{label}_non_finite_rows"] = idx
        if bad_rows.any():
            causes.append(cause("cause.corrupt_input_sample", f"{int(bad_rows.sum())} rows of the first batch hold "
                                "NaN/Inf", 0.8, {"rows": bad_rows.nonzero().flatten()[:20].tolist()}))
        if problems or non_finite:
            after = ("the model checks below ran on its finite rows only" if not problems
                     else "the model checks that need a batch were skipped")
            self._add("data_batch", "The first batch from the data loader has problems: "
                      + "; ".join(problems + non_finite) + ". Expected finite (inputs, targets) tensors of one batch "
                      "size and the task's dtypes; fix the dataset/transform that produces them before training ("
                      + after + ").", evidence=evidence, causes=causes)
        if problems:
            return
        keep = ~bad_rows
        if int(keep.sum()) == 0:
            return
        self.batch = _Batch(x[keep], y[keep])

    def _model_build(self) -> None:
        t0 = time.perf_counter()
        try:
            self.model = self._fresh_model()
        except Exception as exc:  # noqa: BLE001 - a model that cannot be built is the finding
            where = _where(exc)
            at = f" at {where['raised_at']}" if "raised_at" in where else ""
            self._add("model_build", f"build_model() raised {_exc(exc)}{at}. Expected it to return an nn.Module; "
                      "fix the model definition or its configuration there.", evidence=where)
            return
        self.timings["build_s"] = time.perf_counter() - t0
        n = sum(p.numel() for p in self.model.parameters())
        self.notes.append(f"model: {type(self.model).__name__}, {n} parameters, built in "
                          f"{self.timings['build_s'] * 1000:.0f} ms")

    def _output_shape(self) -> None:
        assert self.model is not None
        if self.batch is None:
            raise _Skip("no usable batch (see preflight.data_batch)")
        self.batch = b = self._on_device(self.batch)
        task = self._infer_task(b.y)
        self.model.train()
        try:
            out = self.model(b.x)
        except Exception as exc:  # noqa: BLE001 - a forward that raises is the finding
            self._add("output_shape", f"The model's forward pass on a real batch raised {_exc(exc)}. Inputs were "
                      f"{_shape(b.x)} {_dtype(b.x)}. Expected an output tensor; check the input size/dtype the first "
                      "layer expects.", evidence={"inputs": _describe(b.x), **_where(exc)})
            return
        if not isinstance(out, Tensor):
            self._add("output_shape", f"The model returned {type(out).__name__}, not a tensor. Expected one output "
                      "tensor to pass to loss_fn; wrap the model so forward returns the prediction tensor.")
            return
        ev = {"output": _describe(out), "target": _describe(b.y), "task": task}
        problem = self._shape_problem(out, b.y, task)
        if problem is not None:
            self._add("output_shape", problem, evidence=ev, value=_shape(out), threshold=_shape(b.y))
            return
        try:
            loss = self.loss_fn(out, b.y)
        except Exception as exc:  # noqa: BLE001 - a loss that raises is the finding
            self._add("output_shape", f"loss_fn(output {_shape(out)} {_dtype(out)}, target {_shape(b.y)} "
                      f"{_dtype(b.y)}) raised {_exc(exc)}. Expected a scalar loss; make the output and target "
                      "shapes/dtypes match what the loss expects.", evidence={**ev, **_where(exc)})
            return
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            shape = _shape(loss) if isinstance(loss, Tensor) else type(loss).__name__
            self._add("output_shape", f"loss_fn returned {shape}, not a scalar. Expected one number to call "
                      ".backward() on; use reduction='mean' or reduce the loss yourself.", evidence=ev)
            return
        self.output0, self.loss0 = out, loss.reshape(())
        self.differentiable = loss.requires_grad

    def _shape_problem(self, out: Tensor, y: Tensor, task: Task) -> str | None:
        o, t = tuple(out.shape), tuple(y.shape)
        if task == "classification" and not y.is_floating_point():
            self.mode = "index"
            if len(o) != len(t) + 1 or o[:1] != t[:1] or o[2:] != t[1:]:
                hint = (" The model outputs one value per sample: class indices need one logit per class."
                        if o == t else "")
                return (f"The model's output is {list(o)} but the targets are class indices {list(t)}: expected "
                        f"an output [N, K{', …' if len(t) > 1 else ''}] of K logits per sample.{hint} Make the "
                        "last layer output K values (and do not squeeze the class dimension away).")
            k = o[1]
            if self.num_classes is not None and k != self.num_classes:
                effect = ("an extra logit is never a correct label and skews the probabilities"
                          if k > self.num_classes else "some classes can never be predicted")
                return (f"The model has {k} outputs per sample but there are {self.num_classes} classes: expected "
                        f"{self.num_classes} logits ({effect}). Set the last layer's out_features to "
                        f"{self.num_classes}.")
            if k == 1:
                return ("The model has 1 output per sample but the targets are class indices: cross-entropy over a "
                        "single class is always 0. Expected K ≥ 2 logits, or use BCEWithLogitsLoss with float "
                        "targets of the output's shape for a binary task.")
            labels = y[y != -100]
            if labels.numel() and int(labels.max()) >= k:
                return (f"A class label is {int(labels.max())} but the model has only {k} outputs: expected labels "
                        f"0..{k - 1}. Make the last layer output one logit per class, or fix the label encoding.")
            return None
        self.mode = "elementwise" if task == "classification" else "regression"
        if o == t:
            return None
        if o == t + (1,) or t == o + (1,):
            try:
                broadcast = list(torch.broadcast_shapes(o, t))
            except RuntimeError:
                broadcast = None
            loss_name = type(self.loss_fn).__name__ if isinstance(self.loss_fn, nn.Module) else "The loss"
            silent = (f" {loss_name} would broadcast them to {broadcast} and compare every prediction with every "
                      "target, silently giving a wrong loss." if broadcast is not None
                      and broadcast not in (list(o), list(t)) and _loss_kind(self.loss_fn) != "bce" else "")
            fix = "squeeze the output (out.squeeze(-1))" if len(o) > len(t) else "unsqueeze the target (y[:, None])"
            return (f"The model's output is {list(o)} but the target is {list(t)}: the shapes differ by a trailing "
                    f"dimension of 1.{silent} Expected identical shapes; {fix}.")
        return (f"The model's output is {list(o)} but the target is {list(t)}: expected the same shape for an "
                "element-wise loss. Make the last layer's out_features match the target's width.")

    def _initial_loss(self) -> None:
        assert self.loss0 is not None and self.output0 is not None and self.batch is not None
        loss = float(self.loss0.detach())
        self.init_loss = loss
        if not math.isfinite(loss):
            self._add("initial_loss", f"The loss at initialisation is {loss} on finite inputs. Expected a finite "
                      "number; the initial weights or the loss itself overflow — check the initialisation and use a "
                      "numerically stable loss (e.g. CrossEntropyLoss on logits, not log of softmax).",
                      value=str(loss), causes=[cause("cause.bad_initialisation", "the loss is already non-finite at "
                                                     "step 0", 0.6), cause("cause.unstable_loss", "a log/exp in the "
                                                                           "loss overflowed", 0.4)])
            return
        out, y = self.output0.detach(), self.batch.y
        if self.mode == "regression":
            baseline = float(self.loss_fn(torch.full_like(out, float(y.float().mean())).to(out.dtype), y))
            self.notes.append(f"initial loss {loss:.4g}; predicting the target mean gives {baseline:.4g}")
            if not (baseline > 0 and math.isfinite(baseline)):
                return
            ratio = loss / baseline
            if ratio > REGRESSION_WARN_RATIO:
                fail = ratio > REGRESSION_FAIL_RATIO
                self._add("initial_loss", f"The loss at initialisation is {loss:.4g}, {ratio:.0f}× the loss of "
                          f"predicting the target mean ({baseline:.4g}). Expected the same order of magnitude "
                          f"(below {REGRESSION_WARN_RATIO:g}×): the outputs start far from the targets' scale. "
                          "Standardise the targets, or initialise the last layer's bias to the target mean and keep its weights "
                          "small.", severity="fail" if fail else "warn", value=round(ratio, 3),
                          threshold=REGRESSION_FAIL_RATIO if fail else REGRESSION_WARN_RATIO,
                          evidence={"initial_loss": loss, "mean_predictor_loss": baseline,
                                    "output": _describe(out), "target": _describe(y)},
                          causes=[cause("cause.bad_initialisation", f"initial loss is {ratio:.0f}× the "
                                        "mean predictor's", 0.7 if fail else 0.5)])
            return
        if self.mode == "index" or _loss_kind(self.loss_fn) != "bce":
            k = out.shape[1] if out.ndim > 1 else 2
        else:
            k = 2
        expected = math.log(k)
        self.notes.append(f"initial loss {loss:.4g}; log K = {expected:.4g} for K={k}")
        ev = {"initial_loss": loss, "expected": expected, "classes": k, "logits": _describe(out)}
        ratio = loss / expected if expected else math.inf
        if ratio > INIT_WARN_RATIO and loss - expected > INIT_WARN_EXCESS:
            fail = ratio > INIT_FAIL_RATIO and loss - expected > INIT_FAIL_EXCESS
            self._add("initial_loss", f"The loss at initialisation is {loss:.4g}, {ratio:.1f}× log K = "
                      f"{expected:.4g} (K={k}), the loss of a uniform guess. Expected within "
                      f"{INIT_WARN_RATIO:g}× of log K: the initial logits are too large (largest |logit| "
                      f"{ev['logits']['abs_max']:.3g}), so the model starts confidently wrong. Use the layers' "
                      "default (or Xavier/Kaiming) initialisation, scale the last layer down, and standardise the inputs.",
                      severity="fail" if fail else "warn", value=round(loss, 4),
                      threshold=round(expected * (INIT_FAIL_RATIO if fail else INIT_WARN_RATIO), 4), evidence=ev,
                      causes=[cause("cause.bad_initialisation", f"initial loss {loss:.3g} vs log K {expected:.3g}",
                                    0.8 if fail else 0.5, {"abs_max_logit": ev["logits"]["abs_max"]})])
        elif loss < expected / INIT_WARN_RATIO and expected - loss > INIT_WARN_EXCESS:
            self._add("initial_loss", f"The loss at initialisation is {loss:.4g}, well below log K = "
                      f"{expected:.4g} (K={k}). An untrained model should not beat a uniform guess: expected about "
                      "log K. Check that the weights are not pre-trained by accident and that no input feature "
                      "contains the label.", severity="warn", value=round(loss, 4), evidence=ev)

    def _gradient_flow(self) -> None:
        assert self.model is not None and self.loss0 is not None
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not trainable:
            self._add("gradient_flow", "The model has no trainable parameter (none has requires_grad=True). "
                      "Expected at least one; do not freeze the whole model.")
            return
        if not self.loss0.requires_grad:
            self._add("gradient_flow", f"The loss does not depend on any of the {len(trainable)} trainable "
                      "parameters (it has no grad_fn). Expected a differentiable loss: the output is detached "
                      "somewhere in forward (.detach(), .item(), .numpy(), torch.no_grad(), or a new tensor built "
                      "from values). Keep the computation in torch from the parameters to the output.",
                      evidence={"trainable": len(trainable)})
            return
        self.model.zero_grad(set_to_none=True)
        self.loss0.backward()
        none = [n for n, p in trainable if p.grad is None]
        bad = [n for n, p in trainable if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if not math.isfinite(float(self.loss0.detach())):
            bad = []  # a non-finite loss makes every gradient non-finite: preflight.initial_loss reports it
        zero = [n for n, p in trainable if p.grad is not None and n not in bad and not bool(p.grad.any())]
        if zero:
            zero = self._zero_on_halves(zero)
        ev = {"trainable": len(trainable), "no_grad": none[:50], "non_finite": bad[:50], "zero": zero[:50]}
        parts, causes = [], []
        if none:
            parts.append(f"{len(none)} of {_n(len(trainable), 'trainable parameter')} got no gradient "
                         f"({_names(none)}): they are not used in forward, or used only through a detached path. Use them, delete "
                         "them, or set requires_grad=False if they are frozen on purpose")
        if bad:
            parts.append(f"{_n(len(bad), 'parameter')} got NaN/Inf gradients ({_names(bad)}) from a finite "
                         "loss: clamp the unstable operation or fix the initialisation")
            causes += [cause("cause.unstable_loss", "non-finite gradients at step 0", 0.5),
                       cause("cause.bad_initialisation", "non-finite gradients at step 0", 0.4)]
        if zero:
            parts.append(f"{_n(len(zero), 'parameter')} got an all-zero gradient ({_names(zero)}): dead units, a "
                         "multiplication by zero, or a path cut off by a constant; check they can learn")
        if parts:
            self._add("gradient_flow", "One backward pass on a real batch: " + "; ".join(parts) + ". Expected a "
                      "finite, non-zero gradient on every trainable parameter.",
                      severity="fail" if none or bad else "warn", value=len(none) + len(bad) + len(zero),
                      threshold=0, evidence=ev, causes=causes)

    def _zero_on_halves(self, names: list[str]) -> list[str]:
        """Of `names`, those whose gradient is also zero on two odd-sized halves of the batch: a gradient that
        cancels out exactly over one batch (an L1 loss' bias on balanced signs, a symmetric batch) is not a dead
        parameter."""
        assert self.model is not None and self.batch is not None
        x, y = self.batch.x, self.batch.y
        n = x.shape[0]
        if n < 4:
            return names
        m = n // 2 | 1
        params = dict(self.model.named_parameters())
        for half in (slice(0, m), slice(n - m, n)):
            self.model.zero_grad(set_to_none=True)
            try:
                self.loss_fn(self.model(x[half]), y[half]).backward()
            except Exception:  # noqa: BLE001 - best effort: keep what the full batch showed
                return names
            names = [n for n in names if params[n].grad is None or not bool(params[n].grad.any())]
        return names

    def _overfit_batch(self) -> None:
        assert self.batch is not None
        if not self.differentiable:
            raise _Skip("the loss is not differentiable (see preflight.gradient_flow)")
        if self.init_loss is not None and not math.isfinite(self.init_loss):
            raise _Skip("the initial loss is not finite (see preflight.initial_loss)")
        rows = _overfit_rows(self.batch.y, self.mode)
        x, y = self.batch.x[rows], self.batch.y[rows]
        model = self._fresh_model()
        opt = self._optimizer(model)
        model.train()
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        before = [p.detach().clone() for _, p in trainable]
        baseline = None
        if self.mode == "regression":
            with torch.no_grad():
                out0 = model(x)
            baseline = float(self.loss_fn(torch.full_like(out0, float(y.float().mean())), y))
        first = last = math.nan
        accuracy: float | None = None
        steps, reached, out_of_time = 0, False, False
        for step in range(self.overfit_steps):
            if time.perf_counter() > self.deadline:
                out_of_time = True
                break
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = self.loss_fn(out, y)
            last = float(loss.detach())
            first = last if step == 0 else first
            accuracy = _accuracy(out.detach(), y, self.mode)
            steps = step + 1
            if self._fitted(first, last, accuracy, baseline):
                reached = True
                break
            loss.backward()
            opt.step()
        self.trained = model
        self.notes.append(f"overfit {len(rows)} samples: loss {first:.4g} → {last:.4g} in {steps} steps"
                          + (f", accuracy {accuracy:.0%}" if accuracy is not None else ""))
        if reached:
            return
        target = (f"below {OVERFIT_TARGET:g}× the loss of predicting the mean ({baseline:.4g})"
                  if baseline else f"below {OVERFIT_TARGET:g}× its start"
                  + (" with 100% accuracy" if self.mode == "index" else ""))
        ev: dict[str, Any] = {"samples": len(rows), "steps": steps, "first_loss": first, "last_loss": last,
                              "accuracy": accuracy, "mean_predictor_loss": baseline,
                              "optimizer": type(opt).__name__, "lr": opt.param_groups[0].get("lr")}
        if out_of_time:
            self._add("overfit_batch", f"The time budget ran out after {steps} of {self.overfit_steps} steps of "
                      f"fitting {len(rows)} samples; the loss went from {first:.4g} to {last:.4g}, not yet {target}. "
                      "Inconclusive: raise time_budget_s to finish this check.", severity="warn", evidence=ev)
            return
        reasons, causes = [], []
        with torch.no_grad():
            out = model(x).detach()
        spread = float((out - out.mean(dim=0, keepdim=True)).abs().max()) if out.shape[0] > 1 else math.nan
        ev["output_spread_across_samples"] = spread
        if spread <= 1e-6 * (1.0 + float(out.abs().max())):
            reasons.append("the output is the same for every sample: forward ignores its input (a constant, a "
                           "detached path, or an input overwritten before use)")
        moved = [n for (n, p), b in zip(trainable, before, strict=True) if not torch.equal(p.detach(), b)]
        if not moved:
            reasons.append("no parameter changed: the learning rate is 0 or the optimizer holds none of them")
        in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
        missing = [n for n, p in trainable if id(p) not in in_opt]
        if missing:
            ev["not_in_optimizer"] = missing[:50]
            reasons.append(f"{len(missing)} trainable parameters are not in the optimizer ({_names(missing)})")
            causes.append(cause("cause.params_not_in_optimizer", f"{len(missing)} parameters missing from the "
                                "optimizer", 0.7, {"parameters": missing[:20]}))
        conflicts = _conflicting_targets(x, y)
        if conflicts:
            ev["conflicting_rows"] = conflicts[:20]
            reasons.append(f"{len(conflicts)} pairs of identical inputs carry different targets, so no model can "
                           "fit them")
            causes.append(cause("cause.label_misalignment", "identical inputs have different targets in one batch",
                                0.7, {"row_pairs": conflicts[:10]}))
        if "initial_loss" in self.failed:
            reasons.append("the implausible initial loss (preflight.initial_loss): the model starts too far from "
                           "the targets to get there in this many steps")
        why = (" Likely: " + "; ".join(reasons) + ".") if reasons else (
            " Check that the loss fits the output (logits vs probabilities), that targets belong to their inputs, "
            "and that the model has enough capacity and a working learning rate.")
        self._add("overfit_batch", f"The model could not memorise {len(rows)} samples of one batch: in {steps} "
                  f"steps of {type(opt).__name__} (lr {ev['lr']}) the loss went from {first:.4g} to {last:.4g}"
                  + (f" ({last / first:.0%} of its start)" if first else "")
                  + (f", accuracy {accuracy:.0%}" if accuracy is not None else "")
                  + f". Expected {target}: any working model and pipeline can overfit a handful of samples.{why}",
                  value=round(last / first, 4) if first else None, threshold=OVERFIT_TARGET, evidence=ev,
                  causes=causes)

    def _fitted(self, first: float, last: float, accuracy: float | None, baseline: float | None) -> bool:
        if not math.isfinite(last):
            return False
        if last <= 1e-4:
            return True
        if self.mode == "regression" and baseline is not None and baseline > 0:
            return last <= OVERFIT_TARGET * baseline
        return last <= OVERFIT_TARGET * first and (accuracy is None or accuracy == 1.0)

    def _checkpoint(self) -> None:
        assert self.batch is not None
        x = self.batch.x[:OVERFIT_SAMPLES * 4]
        src = self.trained if self.trained is not None else self._fresh_model()
        src.eval()
        with torch.no_grad():
            out1, out2 = src(x), src(x)
        if not _same(out1, out2):
            self._add("checkpoint", "The model gives different outputs for the same input twice in eval mode "
                      f"(max difference {_max_diff(out1, out2):.3g}), so no checkpoint can reproduce it. Expected a "
                      "deterministic eval forward: forward draws random numbers outside dropout (noise, sampling); "
                      "gate it on self.training.", evidence={"max_abs_diff": _max_diff(out1, out2)})
            return
        buf = io.BytesIO()
        torch.save(src.state_dict(), buf)
        size = buf.tell()
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        dst = self._fresh_model(self.seed + 1)  # another seed: anything not in the state dict will differ
        result = dst.load_state_dict(state, strict=False)
        dst.eval()
        with torch.no_grad():
            out3 = dst(x.to(next(dst.parameters(), x).device))
        unsaved = _unsaved_tensors(src)
        ev: dict[str, Any] = {"state_dict_bytes": size, "missing_keys": list(result.missing_keys)[:50],
                              "unexpected_keys": list(result.unexpected_keys)[:50], "unsaved_tensors": unsaved[:50]}
        if result.missing_keys or result.unexpected_keys:
            self._add("checkpoint", f"Loading the saved state_dict into a fresh build_model() does not match: "
                      f"missing keys {_names(list(result.missing_keys))}, unexpected keys "
                      f"{_names(list(result.unexpected_keys))}. Expected the same keys: build_model() must build "
                      "the same architecture every time (no randomness or config drift in its structure).",
                      evidence=ev)
            return
        if not _same(out1, out3.to(out1.device)):
            where = (f" These tensors are used by the model but are plain attributes (or non-persistent buffers), "
                     f"so state_dict does not save them: {_names(unsaved)}. Register them with "
                     "self.register_buffer(name, tensor) — or nn.Parameter if they should train."
                     if unsaved else " Something the outputs depend on is not in the state_dict (a tensor kept "
                     "in a list/dict or a global); register it as a buffer or parameter.")
            self._add("checkpoint", "After state_dict → torch.save → load into a fresh build_model(), the outputs "
                      f"differ from the original model's in eval mode (max difference "
                      f"{_max_diff(out1, out3.to(out1.device)):.3g}). Expected identical outputs." + where,
                      value=_max_diff(out1, out3.to(out1.device)), threshold=0.0, evidence=ev)

    def _determinism(self) -> None:
        if not self.differentiable:
            raise _Skip("the loss is not differentiable (see preflight.gradient_flow)")
        steps = DETERMINISM_STEPS
        first = self._short_run(steps, timed=True)
        second = self._short_run(steps)
        if len(first.losses) < 2:
            self.notes.append(f"determinism: the loader gave only {len(first.losses)} batch(es); compared those")
        if not _same_losses(first.losses, second.losses):
            step = _first_difference(first.losses, second.losses)
            sources = self._nondeterminism_sources(steps)
            self._add("determinism", f"Two {steps}-step runs with the same torch seed gave different losses, first "
                      f"at step {step} ({_fmt(first.losses[step:step + 1])} vs {_fmt(second.losses[step:step + 1])}"
                      "). Expected identical losses. Likely source: " + "; ".join(sources) + ".",
                      evidence={"run_1": first.losses, "run_2": second.losses, "sources": sources},
                      causes=[cause("cause.nondeterminism", sources[0], 0.8)])
        else:
            self._data_order_probe()
        self.timings.update(first.timing)

    def _data_order_probe(self) -> None:
        """Same seed twice, then another seed: a data order that follows only the global torch RNG is unseeded."""
        a, b, c = self._first_batch(self.seed), self._first_batch(self.seed), self._first_batch(self.seed + 1)
        if a is None or b is None or c is None or not _same_batch(a, b) or _same_batch(a, c):
            return
        sources = _static_sources(self.make_loader() if self.make_loader is not None else self.loader)
        if not sources:
            sources.append("the dataset, its transforms or the sampler draw from the global torch RNG (e.g. "
                           "random augmentation in the main process with num_workers=0)")
        self._add("determinism", "The first batch changes when only the global torch seed changes "
                  f"(manual_seed({self.seed}) vs manual_seed({self.seed + 1})): the batches' order or content is drawn "
                  "from the global RNG — " + "; ".join(sources) + ". Two identical runs still matched here, but the batches "
                  "change whenever anything else consumes random numbers first (a changed model, a resumed run). "
                  "Expected the order to follow a seed you own: pass generator=torch.Generator().manual_seed(seed) "
                  "to the DataLoader (and a worker_init_fn when workers use random/numpy).", severity="warn",
                  evidence={"sources": sources}, causes=[cause("cause.nondeterminism", sources[0], 0.7)])

    def _nondeterminism_sources(self, steps: int) -> list[str]:
        sources: list[str] = []
        seeded = self._short_run(steps, seed_all=True), self._short_run(steps, seed_all=True)
        if _same_losses(seeded[0].losses, seeded[1].losses):
            sources.append("Python's `random` or NumPy's RNG is used (in the dataset, a transform or the model) "
                           "without being seeded — torch.manual_seed does not seed them; seed them too, or use "
                           "torch's RNG")
        assert self.model is not None
        p = next(self.model.parameters(), None)
        if p is not None and p.device.type == "cuda":
            if torch.backends.cudnn.benchmark:
                sources.append("torch.backends.cudnn.benchmark=True picks convolution kernels by timing; set it "
                               "False")
            if not torch.backends.cudnn.deterministic:
                sources.append("torch.backends.cudnn.deterministic=False allows nondeterministic cuDNN kernels")
            if not torch.are_deterministic_algorithms_enabled():
                sources.append("nondeterministic CUDA kernels (atomic adds in scatter/index_add/embedding "
                               "backward); call torch.use_deterministic_algorithms(True)")
        loader = self.make_loader() if self.make_loader is not None else self.loader
        sources += [s for s in _static_sources(loader) if "workers" in s]
        unknown = ("unknown: the loader or model keeps state between runs (a cache, a counter, a generator that "
                   "is not restarted); pass make_loader= for a fresh loader per run")
        return sources or [unknown]

    def _short_run(self, steps: int, *, timed: bool = False, seed_all: bool = False) -> _RunResult:
        torch.manual_seed(self.seed)
        if seed_all:
            random.seed(self.seed)
            np.random.seed(self.seed)
        self._restore_generators()
        model = self._fresh_model()
        opt = self._optimizer(model)
        model.train()
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        losses: list[float] = []
        load: list[float] = []
        compute: list[float] = []
        it = self._iter_loader()
        for _ in range(steps):
            if time.perf_counter() > self.deadline and len(losses) >= 2:
                break
            t0 = time.perf_counter()
            try:
                raw = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            x, y = _split(raw)
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            load.append(t1 - t0)
            compute.append(time.perf_counter() - t1)
        del it
        timing = {}
        if timed and losses:
            warm = slice(1, None) if len(losses) > 1 else slice(None)  # the first batch also starts workers
            # medians per step: one step descheduled by a busy machine does not decide the share
            timing = {"load_s": statistics.median(load[warm]), "compute_s": statistics.median(compute[warm]),
                      "steps": len(load[warm]), "first_load_s": load[0]}
        return _RunResult(losses, timing)

    def _first_batch(self, seed: int) -> _Batch | None:
        torch.manual_seed(seed)
        self._restore_generators()
        try:
            it = self._iter_loader()
            x, y = _split(next(it))
        except (StopIteration, _BatchError):
            return None
        del it
        return _Batch(x, y)

    def _data_loading(self) -> None:
        t = self.timings
        if not t.get("steps"):
            raise _Skip("no timed training steps (preflight.determinism did not run)")
        per, compute, n = t["load_s"], t["compute_s"], int(t["steps"])
        share = per / (per + compute) if per + compute > 0 else 0.0
        self.notes.append(f"data loading: {share:.0%} of step time ({per * 1000:.2f} ms loading vs "
                          f"{compute * 1000:.2f} ms compute per step, median of {_n(n, 'step')}; first batch "
                          f"{t['first_load_s'] * 1000:.1f} ms)")
        if share > LOADING_WARN_SHARE and per > LOADING_WARN_MIN_S:
            self._add("data_loading", f"Waiting for the data loader took {share:.0%} of each training step "
                      f"({per * 1000:.1f} ms per batch vs {compute * 1000:.1f} ms of forward/backward/step). "
                      f"Expected below {LOADING_WARN_SHARE:.0%}: the accelerator would sit idle. Use more "
                      "num_workers, pin_memory, persistent_workers, or move decoding/augmentation off the "
                      "training path. (Measured on the preflight's model and device; the real job's compute may "
                      "differ.)", severity="warn", value=round(share, 3), threshold=LOADING_WARN_SHARE,
                      evidence={"load_s_per_batch": per, "compute_s_per_step": compute, "steps": n,
                                "first_batch_s": t["first_load_s"]})


# -- helpers --------------------------------------------------------------------------------------------------


@contextmanager
def _preserved_rng() -> Iterator[None]:
    """Put torch's, Python's and NumPy's global RNG states back as they were."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch.Generators a DataLoader (or its samplers) owns, each once."""
    found: dict[int, torch.Generator] = {}
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator):
            found.setdefault(id(g), g)
    return list(found.values())


def _static_sources(loader: Any) -> list[str]:
    """What, in a DataLoader's settings, draws from the global torch RNG."""
    if not isinstance(loader, torch.utils.data.DataLoader):
        return []
    sources = []
    owned = bool(_loader_generators(loader))
    samplers = [loader.sampler, getattr(loader.batch_sampler, "sampler", None)]
    if any(isinstance(s, torch.utils.data.RandomSampler) for s in samplers) and not owned:
        sources.append("unseeded shuffle: DataLoader(shuffle=True) without generator=")
    if loader.num_workers > 0 and loader.generator is None:
        sources.append(f"unseeded workers: num_workers={loader.num_workers} without generator=, so the workers' "
                       "seeds come from the global RNG" + ("" if loader.worker_init_fn else " and no worker_init_fn"))
    return sources


def _split(batch: Any) -> tuple[Tensor, Tensor]:
    if isinstance(batch, dict):
        x = next((batch[k] for k in _INPUT_KEYS if k in batch), None)
        y = next((batch[k] for k in _TARGET_KEYS if k in batch), None)
        if x is None or y is None:
            kind, keys = ("input", _INPUT_KEYS) if x is None else ("target", _TARGET_KEYS)
            raise _BatchError(f"a dict batch with keys {sorted(map(str, batch))[:10]} has no {kind} key "
                              f"({', '.join(keys)})")
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise _BatchError(f"a {type(batch).__name__} batch is not an (inputs, targets) pair")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise _BatchError(f"inputs are {type(x).__name__} and targets {type(y).__name__}, not tensors")
    return x, y


def _loss_kind(loss_fn: Any) -> Literal["ce", "bce", "other"]:
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return "ce"
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return "bce"
    fn = getattr(loss_fn, "__name__", "")
    if fn in ("cross_entropy", "nll_loss"):
        return "ce"
    if fn.startswith("binary_cross_entropy"):
        return "bce"
    return "other"


def _overfit_rows(y: Tensor, mode: str) -> list[int]:
    """Up to OVERFIT_SAMPLES rows; for class labels, taken round-robin over the classes present."""
    n = y.shape[0]
    if mode != "index" or y.ndim != 1:
        return list(range(min(n, OVERFIT_SAMPLES)))
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(y.tolist()):
        by_class.setdefault(int(label), []).append(i)
    rows: list[int] = []
    queues = list(by_class.values())
    while len(rows) < min(n, OVERFIT_SAMPLES):
        for q in queues:
            if q and len(rows) < OVERFIT_SAMPLES:
                rows.append(q.pop(0))
    return sorted(rows)


def _accuracy(out: Tensor, y: Tensor, mode: str) -> float | None:
    if mode == "index":
        mask = y != -100
        return float((out.argmax(dim=1) == y)[mask].float().mean()) if bool(mask.any()) else None
    return None


def _conflicting_targets(x: Tensor, y: Tensor) -> list[list[int]]:
    flat_x, flat_y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    pairs = []
    for i in range(x.shape[0]):
        for j in range(i + 1, x.shape[0]):
            if torch.equal(flat_x[i], flat_x[j]) and not torch.equal(flat_y[i], flat_y[j]):
                pairs.append([i, j])
    return pairs


def _unsaved_tensors(model: nn.Module) -> list[str]:
    """Tensors a module holds that its state_dict does not: plain attributes and non-persistent buffers."""
    names = []
    for prefix, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if isinstance(value, Tensor) and not isinstance(value, nn.Parameter):
                names.append(f"{prefix}.{attr}" if prefix else attr)
        for attr in getattr(mod, "_non_persistent_buffers_set", ()):
            names.append(f"{prefix}.{attr}" if prefix else attr)
    return names


def _same(a: Tensor, b: Tensor) -> bool:
    """Bit-for-bit equal values (NaN equals NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def _same_batch(a: _Batch, b: _Batch) -> bool:
    return a.x.shape == b.x.shape and a.y.shape == b.y.shape and _same(a.x, b.x) and _same(a.y, b.y)


def _first_difference(a: list[float], b: list[float]) -> int:
    return next((i for i, (u, v) in enumerate(zip(a, b, strict=False)) if not _same_losses([u], [v])),
                min(len(a), len(b)))


def _same_losses(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(u == v or (math.isnan(u) and math.isnan(v)) for u, v in zip(a, b, strict=True))


def _max_diff(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().nan_to_num(nan=math.inf).max()) if a.numel() else 0.0


def _describe(t: Tensor) -> dict[str, Any]:
    d: dict[str, Any] = {"shape": list(t.shape), "dtype": _dtype(t)}
    if t.numel() and not t.is_complex() and t.dtype != torch.bool:
        f = t.detach().double()
        finite = f[torch.isfinite(f)]
        d.update(nan=int(torch.isnan(f).sum()), inf=int(torch.isinf(f).sum()))
        if finite.numel():
            d.update(min=float(finite.min()), max=float(finite.max()), abs_max=float(finite.abs().max()),
                     mean=float(finite.mean()))
    return d


def _dtype(t: Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _shape(t: Tensor) -> str:
    return str(list(t.shape))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.8g}" for v in values) or "none"


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _where(exc: BaseException) -> dict[str, Any]:
    """The exception and the innermost frame outside torch that raised it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/torch/" not in f.filename]
    ev: dict[str, Any] = {"exception": type(exc).__name__, "error": str(exc)[:1000]}
    if frames:
        f = frames[-1]
        ev["raised_at"] = f"{f.filename}:{f.lineno} in {f.name}"
    return ev
