"""Mixed precision: autocast is seen, a GradScaler's routine overflow skips are not faults, real faults are.

CPU autocast supports float16 and bfloat16, and `torch.amp.GradScaler("cpu")` behaves as on CUDA, so the
whole contract runs here: a healthy fp16 run whose scaler starts too high (and so skips steps at first) stays
quiet; gradients that are non-finite at any scale stop training; a layer that overflows float16 under autocast
stops training with the weights untouched and `cause.low_precision_overflow` on top."""

from __future__ import annotations

import torch
from torch import nn

from mlguard_orchestration.training import GuardConfig, TrainingGuard, TrainingStopped
from tests.training._models import loader, mlp, regression_data


def _amp_train(guard: TrainingGuard, model: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               batches, dtype: torch.dtype = torch.float16, loss_fn=nn.functional.mse_loss) -> int:
    """The documented AMP loop: autocast forward, scaled backward, `guard.step` in place of scaler.step/update."""
    step = 0
    for step, (x, y) in enumerate(batches, 1):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype):
            loss = loss_fn(model(x).float(), y)
        scaler.scale(loss).backward()
        guard.step(loss, batch=(x, y))
    return step


def _compute_loss(dtype: torch.dtype):
    def compute(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        with torch.autocast("cpu", dtype=dtype):
            return nn.functional.mse_loss(model(batch[0]).float(), batch[1])
    return compute


def test_healthy_fp16_run_with_early_scaler_skips_stays_quiet() -> None:
    data = regression_data()
    model = mlp(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24)  # far too high: the first steps overflow
    with TrainingGuard(model, opt, scaler=scaler) as guard:
        _amp_train(guard, model, opt, scaler, loader(data, 300))
    report = guard.report()
    assert report.status == "pass", report.findings
    assert scaler.get_scale() < 2.0**24  # the scaler did skip and back off: the guard let it
    assert guard.last_good_step == 300
    losses = [nn.functional.mse_loss(model(x), y).item() for x, y in loader(data, 1)]
    assert losses[0] < 1.0  # it learnt (targets have variance ~8)


def test_bf16_autocast_without_scaler_stays_quiet() -> None:
    model = mlp(8, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with TrainingGuard(model, opt) as guard:
        for x, y in loader(regression_data(), 200):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.mse_loss(model(x).float(), y)
            loss.backward()
            guard.step(loss, batch=(x, y))
    assert guard.report().status == "pass", guard.report().findings


class _ZeroSqrt(nn.Module):
    """A regression net plus sqrt(0 · h): the loss stays finite, the gradient of h is Inf · 0 = NaN at any scale."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(8, 1)
        self.side = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + torch.sqrt(self.side(x) * 0.0)


def test_gradients_non_finite_at_any_scale_stop_after_the_skip_limit() -> None:
    model = _ZeroSqrt()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu")
    config = GuardConfig(scaler_max_skips=6)
    before = [p.detach().clone() for p in model.parameters()]
    steps = 0
    try:
        with TrainingGuard(model, opt, scaler=scaler, config=config,
                           compute_loss=_compute_loss(torch.float16)) as guard:
            steps = _amp_train(guard, model, opt, scaler, loader(regression_data(), 50))
    except TrainingStopped as stop:
        report = stop.report
    else:
        raise AssertionError(f"the guard let {steps} steps of non-finite gradients through")
    finding = report.findings[0]
    assert finding.code == "training.non_finite_gradients"
    assert finding.evidence["step"] == 6 and finding.evidence["scaler_skips_in_a_row"] == 6
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # all skipped
    assert finding.evidence["grad_norm"] == "nan" and finding.evidence["loss"] != "nan"


class _Amplifier(nn.Module):
    """`big` can be armed to output ~1e5: far beyond float16's 65504 under autocast, nothing to float32."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.big = nn.Linear(16, 16)
        self.out = nn.Linear(16, 1)

    def arm(self) -> None:
        with torch.no_grad():
            self.big.weight.fill_(0.0)
            self.big.bias.fill_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.big(self.inp(x)))


def test_fp16_overflow_under_autocast_stops_with_the_low_precision_cause() -> None:
    model = _Amplifier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu")
    data = list(loader(regression_data(), 40))
    snapshot: list[torch.Tensor] = []

    def batches():
        for i, batch in enumerate(data, 1):
            if i == 30:
                model.arm()
                snapshot.extend(p.detach().clone() for p in model.parameters())
            yield batch

    try:
        with TrainingGuard(model, opt, scaler=scaler, compute_loss=_compute_loss(torch.float16)) as guard:
            _amp_train(guard, model, opt, scaler, batches())
    except TrainingStopped as stop:
        report = stop.report
    else:
        raise AssertionError("an fp16 overflow went unnoticed")
    finding = report.findings[0]
    assert finding.code in ("training.non_finite_loss", "training.non_finite_activations"), finding
    assert finding.evidence["step"] == 30
    top = finding.causes[0]
    assert top.code == "cause.low_precision_overflow", [c.code for c in finding.causes]
    assert top.evidence["dtype"] == "float16" and top.evidence["grad_scaler"] is True
    # the armed weights overflow on that batch whatever the update: the guard restored earlier weights that work
    assert not all(torch.equal(a, b) for a, b in zip(snapshot, model.parameters(), strict=True))
    assert guard.restored is not None and guard.restored.step < 30 and guard.restored.verified == "forward"
    assert finding.evidence["weights_from_step"] == guard.restored.step
    assert torch.isfinite(_compute_loss(torch.float16)(model, data[29]))


def test_the_same_values_in_float32_are_not_a_fault() -> None:
    model = _Amplifier()
    model.arm()
    opt = torch.optim.SGD(model.parameters(), lr=1e-12)  # the magnitudes stay put: only precision is at stake
    with TrainingGuard(model, opt) as guard:
        for x, y in loader(regression_data(), 60):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            guard.step(loss, batch=(x, y))
    assert all(f.severity != "fail" for f in guard.report().findings), guard.report().findings
