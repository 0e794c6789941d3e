"""Training runs the guard is calibrated on: HEALTHY runs that must never fail, FAULTS that must stop with the right
cause at the right step. Shared by tests/training/test_corpus.py (a fast subset of HEALTHY, every FAULT) and
benchmarks/training_corpus.py (everything, with per-run figures).

Every healthy run trains long enough to pass every rule's warm-up (the window, frozen_after, constant_steps,
plateau_steps: 320+ steps) on a real task it learns, and each covers something a rule could mistake for a fault:
momentum, adaptive optimizers, warm-up and decay schedules, clipping, bf16 autocast, BatchNorm and dropout,
recurrent and attention layers, a legitimately hard batch, noisy labels, a slow start at the constant level, a
loss of another scale (L1, summed), a frozen backbone, a schedule that ends at 0 with the run.

Each FAULT names its first bad step (where the fault starts to exist), the finding code and the top cause the guard
must report, and the latest step at which stopping still counts as "as early as the evidence allows".

Size: over 400 lines on purpose — a table of 33 runs, each a short builder; one file, so that the test suite and
the benchmark run exactly the same runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlguard_orchestration.report import Report
from mlguard_orchestration.training import GuardConfig, TrainingGuard, TrainingStopped

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Setup:
    """One training run: everything the generic loop needs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Any  # an iterable of (x, y), possibly a DataLoader
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scheduler: Any = None
    clip: float | None = None
    bf16: bool = False
    mutate: Callable[[int, Batch], Batch] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    track: bool = False  # iterate through guard.track(batches) (a DataLoader)
    epochs: int = 1  # passes over `batches`


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Setup]
    covers: str
    fast: bool = False  # in the test suite's subset
    first_bad: int | None = None  # FAULTS: the first step the fault exists
    code: str | None = None
    cause: str | None = None
    stop_by: int | None = None  # FAULTS: the latest acceptable stop step


@dataclass
class Outcome:
    case: Case
    report: Report
    stopped_at: int | None
    steps: int
    guard: TrainingGuard
    setup: Setup
    failed_batch: Batch | None = None

    @property
    def fails(self) -> list[str]:
        return [f.code for f in self.report.findings if f.severity == "fail"]

    @property
    def warns(self) -> list[str]:
        return [f.code for f in self.report.findings if f.severity == "warn"]

    @property
    def top_cause(self) -> str | None:
        return self.report.top_cause.code if self.report.top_cause is not None else None


def run(case: Case, seed: int = 0) -> Outcome:
    """Train `case` under a default-configured guard (plus the case's own config). `seed` sets the initial weights,
    dropout and the batch order (the datasets themselves stay fixed)."""
    torch.manual_seed(seed)
    s = case.build()
    loss_fn = s.loss_fn

    def forward(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=s.bf16):
            out = model(batch[0])
            return out, loss_fn(out.float(), batch[1])

    guard = TrainingGuard(s.model, s.optimizer, config=GuardConfig(**s.config),
                          compute_loss=lambda m, b: forward(m, b)[1], name=case.name)
    batches = guard.track(s.batches) if s.track else s.batches
    epochs = (batch for _ in range(s.epochs) for batch in batches)
    step, last = 0, None
    try:
        with guard:
            for step, batch in enumerate(epochs, 1):
                x, y = s.mutate(step, batch) if s.mutate is not None else batch
                last = (x, y)
                s.optimizer.zero_grad(set_to_none=True)
                out, loss = forward(s.model, (x, y))
                loss.backward()
                if s.clip is not None:
                    nn.utils.clip_grad_norm_(s.model.parameters(), s.clip)
                guard.step(loss, batch=(x, y), predictions=out.float(), targets=y)
                if s.scheduler is not None:
                    s.scheduler.step()
    except TrainingStopped as stop:
        return Outcome(case, stop.report, guard.step_count, guard.step_count, guard, s, last)
    return Outcome(case, guard.report(), None, step, guard, s)


# -- data -----------------------------------------------------------------------------------------------------


def sampled(data: Batch, steps: int, batch_size: int = 32, seed: int | None = None) -> Iterator[Batch]:
    """`steps` minibatches drawn with replacement; the order follows `seed` (default: the run's seed)."""
    x, y = data
    g = torch.Generator().manual_seed(torch.initial_seed() if seed is None else seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=g)
        yield x[idx], y[idx]


def regression(n: int = 1024, d: int = 8, noise: float = 0.1, scale: float = 1.0, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    return x, scale * (x @ w + noise * torch.randn(n, 1, generator=g))


def classes(n: int = 2048, d: int = 8, k: int = 4, noise: float = 0.0, seed: int = 0) -> Batch:
    """k Gaussian clusters; `noise`: the share of labels replaced by random ones."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.5 * torch.randn(k, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g)
    flip = torch.rand(n, generator=g) < noise
    y = torch.where(flip, torch.randint(0, k, (n,), generator=g), y)
    return x, y


def images(n: int = 1024, seed: int = 0) -> Batch:
    """8×8 single-channel images: class 0 a horizontal bar, 1 a vertical bar, 2 a diagonal, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.5 * torch.randn(n, 1, 8, 8, generator=g)
    pos = torch.randint(1, 7, (n,), generator=g)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] += 2.0
        elif y[i] == 1:
            x[i, 0, :, pos[i]] += 2.0
        else:
            x[i, 0].diagonal().add_(2.0)
    return x, y


def sequences(n: int = 1024, length: int = 12, seed: int = 0) -> Batch:
    """Random sequences; target: the mean of the first feature over time (regression)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, 4, generator=g)
    return x, x[:, :, 0].mean(1, keepdim=True) * 2.0


def tokens(n: int = 2048, length: int = 10, vocab: int = 16, seed: int = 0) -> Batch:
    """Token sequences; class: whether token 3 occurs more often than token 7 (needs attention over positions)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, length), generator=g)
    return x, ((x == 3).sum(1) > (x == 7).sum(1)).long()


# -- models ---------------------------------------------------------------------------------------------------


def mlp(d_in: int, d_out: int, hidden: int = 32, depth: int = 2, act: type[nn.Module] = nn.ReLU,
        norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), *([nn.LayerNorm(hidden)] if norm else []), act()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, d_out))


class SmallCNN(nn.Module):
    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(16, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module], d_in: int = 4, hidden: int = 16, d_out: int = 1) -> None:
        super().__init__()
        self.rnn = cell(d_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 16, d: int = 32, length: int = 10, k: int = 2) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Parameter(0.02 * torch.randn(length, d))
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 64, dropout=0.1, batch_first=True), 2,
                                         enable_nested_tensor=False)
        self.head = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.tok(x) + self.pos).mean(1))


def ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(out, y)


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(out, y)


def bce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(out, y)


def at(step: int, change: Callable[[Batch], Batch]) -> Callable[[int, Batch], Batch]:
    return lambda s, b: change(b) if s == step else b


# -- the healthy corpus -----------------------------------------------------------------------------------------

STEPS = 360


def _mlp_regression_adam() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled(regression(), STEPS), mse)


def _mlp_regression_sgd_momentum() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.SGD(m.parameters(), 1e-2, momentum=0.9), sampled(regression(), STEPS), mse)


def _mlp_classes_adamw_warmup_cosine() -> Setup:
    m = mlp(8, 4, hidden=64, norm=True, act=nn.GELU)
    opt = torch.optim.AdamW(m.parameters(), 3e-3, weight_decay=0.01)
    warm = torch.optim.lr_scheduler.LinearLR(opt, 0.01, 1.0, total_iters=30)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS - 30)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[30])
    return Setup(m, opt, sampled(classes(), STEPS, 64), ce, scheduler=sched)


def _cnn_batchnorm_dropout() -> Setup:
    m = SmallCNN()
    return Setup(m, torch.optim.Adam(m.parameters(), 3e-3), sampled(images(), STEPS, 32), ce)


def _transformer_adamw() -> Setup:
    m = TinyTransformer()
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 40))
    return Setup(m, opt, sampled(tokens(), STEPS, 32), ce, scheduler=sched, clip=1.0)


def _lstm_regression_clipped() -> Setup:
    m = Recurrent(nn.LSTM)
    return Setup(m, torch.optim.Adam(m.parameters(), 5e-3), sampled(sequences(), STEPS), mse, clip=1.0)


def _gru_one_cycle() -> Setup:
    m = Recurrent(nn.GRU, d_out=1)
    opt = torch.optim.SGD(m.parameters(), 0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.2, total_steps=STEPS)
    return Setup(m, opt, sampled(sequences(seed=1), STEPS), mse, scheduler=sched, clip=5.0)


def _bf16_autocast() -> Setup:
    m = mlp(8, 4, hidden=64)
    return Setup(m, torch.optim.AdamW(m.parameters(), 3e-3), sampled(classes(seed=2), STEPS, 64), ce, bf16=True)


def _sgd_clipped() -> Setup:
    m = mlp(8, 4)
    return Setup(m, torch.optim.SGD(m.parameters(), 0.1, momentum=0.9), sampled(classes(seed=3), STEPS), ce,
                 clip=0.5)


def _one_hard_batch() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled(regression(), STEPS), mse,
                 mutate=at(200, lambda b: (b[0] * 10, b[1])))


def _noisy_labels() -> Setup:
    m = mlp(8, 4)
    return Setup(m, torch.optim.Adam(m.parameters(), 3e-3), sampled(classes(noise=0.4, seed=4), STEPS, 64), ce)


def _binary_bce() -> Setup:
    x, y = classes(k=2, seed=5)
    m = mlp(8, 1)
    return Setup(m, torch.optim.SGD(m.parameters(), 0.05, momentum=0.9), sampled((x, y.float()[:, None]), STEPS),
                 bce)


def _slow_start() -> Setup:
    """Small initial weights and plain SGD: the loss sits at log K (within 2%) for 200 steps before it falls."""
    m = mlp(8, 4, hidden=32, depth=3)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(0.3)
    return Setup(m, torch.optim.SGD(m.parameters(), 0.05), sampled(classes(seed=6), STEPS, 64), ce)


def _l1_small_targets() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 3e-3), sampled(regression(scale=0.1), STEPS), nn.L1Loss())


def _summed_loss_large_targets() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled(regression(scale=30.0), STEPS),
                 nn.MSELoss(reduction="sum"))


def _frozen_backbone() -> Setup:
    m = mlp(8, 4, hidden=32)
    for p in m[:2].parameters():
        p.requires_grad_(False)  # frozen on purpose, the usual way
    return Setup(m, torch.optim.Adam([p for p in m.parameters() if p.requires_grad], 1e-2),
                 sampled(classes(seed=7), STEPS), ce)


def _head_only_opt_out() -> Setup:
    m = mlp(8, 4, hidden=32)
    return Setup(m, torch.optim.Adam(m[4].parameters(), 1e-2), sampled(classes(seed=8), STEPS), ce,
                 config={"deliberately_frozen": ["0.*", "2.*"]})


def _step_decay_to_zero_at_the_end() -> Setup:
    m = mlp(8, 1)
    opt = torch.optim.SGD(m.parameters(), 0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=STEPS - 1)  # 0 on the last step
    return Setup(m, opt, sampled(regression(seed=9), STEPS), mse, scheduler=sched)


def _dataloader_tracked() -> Setup:
    x, y = classes(seed=10)
    m = mlp(8, 4)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    return Setup(m, torch.optim.Adam(m.parameters(), 3e-3), loader, ce, track=True,
                 epochs=math.ceil(STEPS / len(loader)))


HEALTHY: list[Case] = [
    Case("mlp_regression_adam", _mlp_regression_adam, "MLP, regression, Adam", fast=True),
    Case("mlp_regression_sgd_momentum", _mlp_regression_sgd_momentum, "SGD with momentum"),
    Case("mlp_classes_adamw_warmup_cosine", _mlp_classes_adamw_warmup_cosine, "AdamW, warm-up + cosine, LayerNorm",
         fast=True),
    Case("cnn_batchnorm_dropout", _cnn_batchnorm_dropout, "CNN with BatchNorm and dropout", fast=True),
    Case("transformer_adamw_warmup", _transformer_adamw, "small transformer, AdamW, warm-up, clipping"),
    Case("lstm_regression_clipped", _lstm_regression_clipped, "LSTM, gradient clipping"),
    Case("gru_one_cycle", _gru_one_cycle, "GRU, SGD momentum, one-cycle schedule"),
    Case("bf16_autocast", _bf16_autocast, "bf16 autocast (CPU)", fast=True),
    Case("sgd_clipped", _sgd_clipped, "SGD with momentum whose gradients clipping holds at 0.5"),
    Case("one_hard_batch", _one_hard_batch, "one legitimately hard batch (inputs ×10)", fast=True),
    Case("noisy_labels", _noisy_labels, "40% of labels random", fast=True),
    Case("binary_bce", _binary_bce, "binary classification, BCE with float targets"),
    Case("slow_start", _slow_start, "a slow start near the constant-prediction level", fast=True),
    Case("l1_small_targets", _l1_small_targets, "L1 loss, targets of scale 0.1"),
    Case("summed_loss_large_targets", _summed_loss_large_targets, "MSE summed, targets of scale 30"),
    Case("frozen_backbone", _frozen_backbone, "a frozen backbone (requires_grad=False)"),
    Case("head_only_opt_out", _head_only_opt_out, "only the head optimized, declared deliberately_frozen"),
    Case("linear_decay_to_zero_at_the_end", _step_decay_to_zero_at_the_end, "a schedule reaching 0 at the last step"),
    Case("dataloader_tracked_epochs", _dataloader_tracked, "a tracked, shuffled DataLoader over several epochs"),
]


# -- planted faults -------------------------------------------------------------------------------------------


def _params_not_in_optimizer() -> Setup:
    m = mlp(8, 4)
    return Setup(m, torch.optim.Adam(m[4].parameters(), 1e-2), sampled(classes(), 200), ce)  # the head only


def _dead_output_unit() -> Setup:
    m = nn.Sequential(*mlp(8, 1), nn.ReLU())  # a ReLU on the output (positive targets, say) ...
    nn.init.constant_(m[4].bias, -20.0)  # ... whose input is always negative
    x, y = regression()
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-3), sampled((x, y.abs()), 200), mse)


def _dead_relu_from_init() -> Setup:
    m = mlp(8, 1)
    nn.init.constant_(m[0].bias, -50.0)  # the first ReLU never fires
    return Setup(m, torch.optim.SGD(m.parameters(), 1e-2), sampled(regression(), 200), mse)


def _labels_shuffled() -> Setup:
    x, y = classes(k=2, seed=11)
    y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled((x, y.float()[:, None]), 400, 64), bce)


def _lr_decays_to_zero() -> Setup:
    m = mlp(8, 1)
    opt = torch.optim.SGD(m.parameters(), 0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=20)  # sized for 20 steps, run for 400
    return Setup(m, opt, sampled(regression(), 400), mse, scheduler=sched)


def _clipped_to_zero() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled(regression(), 200), mse, clip=0.0)


class _ReluRNN(nn.Module):
    """An RNN with a ReLU nonlinearity whose recurrent weight has spectral radius 3: gradients explode from step 0."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(4, 16, nonlinearity="relu", batch_first=True)
        with torch.no_grad():
            q, _ = torch.linalg.qr(torch.randn(16, 16))
            self.rnn.weight_hh_l0.copy_(3.0 * q)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _exploding_rnn() -> Setup:
    m = _ReluRNN()
    return Setup(m, torch.optim.SGD(m.parameters(), 1e-2), sampled(sequences(length=12), 100), mse)


def _lr_too_high() -> Setup:
    x, y = classes(k=2, seed=12)
    m = mlp(8, 1, hidden=32)
    return Setup(m, torch.optim.SGD(m.parameters(), 50.0, momentum=0.9), sampled((x, y.float()[:, None]), 100,
                                                                                 256), bce)


def _lr_jump() -> Setup:
    """A schedule bug multiplies the learning rate by 1e12 from step 40: the update of step 40 is the damaging one,
    finite itself; the forward of step 41 overflows. Weights from before step 41 still give Inf on its batch."""
    m = mlp(8, 1)
    opt = torch.optim.SGD(m.parameters(), 1e-2, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1e12 if s >= 39 else 1.0)
    return Setup(m, opt, sampled(regression(), 100), mse, scheduler=sched)


def _corrupt_sample() -> Setup:
    x, y = classes(seed=13)
    x[1234, 3] = float("inf")  # one row of the dataset; the loader shuffles it somewhere into epoch 1
    m = mlp(8, 4)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    return Setup(m, torch.optim.Adam(m.parameters(), 3e-3), loader, ce, track=True)


def _missing_zero_grad() -> Setup:
    m = mlp(8, 1)
    opt = torch.optim.SGD(m.parameters(), 1e-4)
    opt.zero_grad = lambda set_to_none=True: None  # type: ignore[method-assign]  # the call is "forgotten"
    return Setup(m, opt, sampled(regression(), 300), mse)


def _repeated_spikes() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-3), sampled(regression(), 300), mse,
                 mutate=lambda s, b: (b[0], b[1] * 10) if s > 150 and s % 12 == 0 else b)


def _divergence() -> Setup:
    m = mlp(8, 1)
    return Setup(m, torch.optim.Adam(m.parameters(), 1e-2), sampled(regression(), 500), mse,
                 mutate=lambda s, b: (b[0], b[1] + 0.1 * 1.04 ** max(0, s - 150) * torch.randn_like(b[1])))


def _nan_input() -> Setup:
    m = mlp(8, 1)

    def poison(b: Batch) -> Batch:
        x = b[0].clone()
        x[3, 2] = float("nan")
        return x, b[1]

    return Setup(m, torch.optim.SGD(m.parameters(), 1e-2, momentum=0.9), sampled(regression(), 60), mse,
                 mutate=at(30, poison))


FAULTS: list[Case] = [
    Case("params_not_in_optimizer", _params_not_in_optimizer, "all but the head left out of the optimizer",
         first_bad=1, code="training.parameters_not_in_optimizer", cause="cause.params_not_in_optimizer", stop_by=1),
    Case("dead_output_unit", _dead_output_unit, "an output ReLU whose input is always negative",
         first_bad=1, code="training.dead_units", cause="cause.dead_activations", stop_by=3),
    Case("dead_relu_from_init", _dead_relu_from_init, "a hidden ReLU layer dead from initialisation (bias -50)",
         first_bad=1, code="training.dead_units", cause="cause.dead_activations", stop_by=3),
    Case("labels_shuffled", _labels_shuffled, "binary labels shuffled against their inputs",
         first_bad=1, code="training.loss_plateau", cause="cause.label_misalignment", stop_by=150),
    Case("lr_decays_to_zero", _lr_decays_to_zero, "a schedule sized for 20 steps in a 400-step run",
         first_bad=21, code="training.zero_updates", cause="cause.zero_learning_rate", stop_by=30),
    Case("clipped_to_zero", _clipped_to_zero, "clip_grad_norm_(max_norm=0)",
         first_bad=1, code="training.zero_updates", cause="cause.gradients_zeroed", stop_by=10),
    Case("exploding_rnn", _exploding_rnn, "a ReLU RNN with recurrent spectral radius 3",
         first_bad=1, code="training.exploding_gradients", cause="cause.bad_initialisation", stop_by=2),
    Case("lr_too_high", _lr_too_high, "SGD at learning rate 50 with momentum",
         first_bad=1, code="training.update_ratio", cause="cause.learning_rate_too_high", stop_by=1),
    Case("lr_jump", _lr_jump, "the learning rate ×1e12 from step 40 (a schedule bug)",
         first_bad=40, code="training.non_finite_loss", cause="cause.learning_rate_too_high", stop_by=41),
    Case("corrupt_sample", _corrupt_sample, "one dataset row holds +inf (shuffled DataLoader: batch 28)",
         first_bad=28, code="training.non_finite_loss", cause="cause.corrupt_input_sample", stop_by=28),
    Case("missing_zero_grad", _missing_zero_grad, "optimizer.zero_grad() never resets the gradients",
         first_bad=2, code="training.missing_zero_grad", cause="cause.missing_zero_grad", stop_by=120),
    Case("repeated_spikes", _repeated_spikes, "targets ×10 every 12th batch from step 151",
         first_bad=156, code="training.loss_spike", cause=None, stop_by=180),
    Case("divergence", _divergence, "label noise growing 4% a step from step 150",
         first_bad=151, code="training.divergence", cause=None, stop_by=400),
    Case("nan_input", _nan_input, "a NaN in one input at step 30",
         first_bad=30, code="training.non_finite_loss", cause="cause.corrupt_input_sample", stop_by=30),
]
