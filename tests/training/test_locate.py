"""locate_non_finite on real tiny models: which module produced the NaN/Inf, which samples, and that the replay
leaves the model exactly as it found it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mlguard_orchestration.training.causes import rank_causes
from mlguard_orchestration.training.evidence import TrainingEvidence
from mlguard_orchestration.training.locate import locate_non_finite, take, tensor_stats


class Square(nn.Module):
    def forward(self, x):
        return x * x


class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)


class Sqrt(nn.Module):
    def forward(self, x):
        return torch.sqrt(x)


def mse(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def _batch(n=32, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, 1, generator=g)


def _net(*middle):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8, bias=False), *middle, nn.Linear(8, 1))


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               and not m._backward_pre_hooks for m in model.modules())


def test_forward_producer_is_the_log_layer_and_the_zero_sample():
    model = _net(Square(), Log())  # layer '2' computes log(x); a zero sample makes it -inf
    x, y = _batch()
    x[11] = 0.0
    fault, sample = locate_non_finite(model, mse, (x, y))
    assert fault is not None and (fault.name, fault.type, fault.phase) == ("2", "Log", "forward")
    assert fault.inputs[0].finite and fault.inputs[0].min == 0.0
    assert not fault.outputs[0].finite and fault.outputs[0].inf > 0
    assert sample is not None and sample.indices == [11] and sample.method == "per-sample"
    assert not sample.input_non_finite and sample.artifact is None


def test_backward_producer_is_sqrt_at_zero():
    model = _net(Square(), Sqrt())  # sqrt(0) is finite, its gradient is not
    x, y = _batch()
    x[3] = 0.0
    assert torch.isfinite(mse(model, (x, y)))
    fault, sample = locate_non_finite(model, mse, (x, y))
    assert fault is not None and (fault.name, fault.type, fault.phase) == ("2", "Sqrt", "backward")
    assert fault.inputs[0].min == 0.0  # the forward input reached the singular point
    assert not fault.outputs[0].finite
    assert sample is not None and sample.indices == [3] and sample.method == "per-sample"


def test_inf_input_sample_is_named_and_saved(tmp_path: Path):
    model = _net(nn.ReLU())
    x, y = _batch()
    x[7, 2] = float("inf")
    fault, sample = locate_non_finite(model, mse, (x, y), artifact_dir=tmp_path / "faults")
    assert fault is None  # no module produced it: the batch brought it
    assert sample is not None and sample.indices == [7] and sample.method == "per-sample"
    assert sample.input_non_finite
    assert sample.artifact is not None and sample.artifact.endswith("-nonfinite.pt")
    saved = torch.load(sample.artifact)
    assert saved["indices"] == [7]
    sx, sy = saved["batch"]
    assert sx.shape == (1, 4) and torch.isinf(sx[0, 2]) and torch.equal(sy, y[[7]])


def test_batchnorm_model_is_bisected_and_running_stats_survive():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    bn = model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    x, y = _batch(n=16)
    x[5, 0] = float("inf")
    fault, sample = locate_non_finite(model, mse, (x, y))
    assert fault is None
    assert sample is not None and sample.indices == [5] and sample.method == "bisection"
    assert sample.input_non_finite
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2]


def test_batchnorm_model_with_a_coupled_producer_bisects_to_the_sample():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8, bias=False), Square(), Log(), nn.BatchNorm1d(8), nn.Linear(8, 1))
    x, y = _batch(n=32)
    x[20] = 0.0
    fault, sample = locate_non_finite(model, mse, (x, y))
    assert fault is not None and fault.name == "2"
    assert sample is not None and sample.indices == [20] and sample.method == "bisection"


def test_loss_itself_is_the_producer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1))
    x, _ = _batch(n=8)
    x[2] = 1e4  # saturates the softmax: some probabilities are exactly 0
    with torch.no_grad():
        probs = model(x)
    target = probs.argmin(dim=-1)
    assert probs[2, target[2]] == 0.0

    def nll_of_probs(model, batch):
        inputs, labels = batch
        p = model(inputs)
        return -torch.log(p.gather(1, labels[:, None])).mean()

    fault, sample = locate_non_finite(model, nll_of_probs, (x, target))
    assert fault is not None and fault.name == "<loss>" and fault.type == "nll_of_probs"
    assert fault.inputs[0].finite and fault.inputs[0].min == 0.0 and not fault.outputs[0].finite
    assert sample is not None and sample.indices == [2] and not sample.input_non_finite


def test_functional_op_in_the_parent_or_the_loss_backward():
    class Net(nn.Module):  # the sqrt is the container's own code, between two children
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(4, 8, bias=False), Square())
            self.out = nn.Linear(8, 1)

        def forward(self, x):
            return self.out(torch.sqrt(self.enc(x)))

    torch.manual_seed(0)
    x, y = _batch()
    x[9] = 0.0
    fault, sample = locate_non_finite(Net(), mse, (x, y))
    assert fault is not None and (fault.name, fault.type, fault.phase) == ("<model>", "Net", "backward")
    assert fault.inputs[0].min == 0.0  # the enc output that the sqrt consumed
    assert sample is not None and sample.indices == [9]

    def rmse_per_row(model, batch):  # sqrt of an exact 0 in the loss: its gradient is NaN
        return torch.sqrt(model(batch[0]) ** 2).mean()

    fault, sample = locate_non_finite(nn.Linear(4, 1, bias=False), rmse_per_row, (x, y))
    assert fault is not None and (fault.name, fault.type, fault.phase) == ("<loss>", "rmse_per_row", "backward")
    assert sample is not None and sample.indices == [9]


def test_dict_batches_and_several_bad_samples():
    model = _net(Square(), Log())
    x, y = _batch()
    x[[4, 9, 30]] = 0.0

    def loss(model, batch):
        return ((model(batch["x"]) - batch["y"]) ** 2).mean() * batch["scale"]

    fault, sample = locate_non_finite(model, loss, {"x": x, "y": y, "scale": 1.0}, max_samples=2)
    assert fault is not None and fault.name == "2"
    assert sample is not None and sample.indices == [4, 9]  # capped at max_samples


def test_model_state_hooks_grads_and_rng_are_restored():
    model = _net(Square(), Sqrt())
    model.train()
    model[0].eval()  # a mixed mode must survive too
    x, y = _batch()
    x[0] = 0.0
    grads = {}
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
        grads[p] = p.grad
    rng = torch.get_rng_state()
    fault, _ = locate_non_finite(model, mse, (x, y))
    assert fault is not None and fault.phase == "backward"
    assert _no_hooks(model)
    assert model.training and not model[0].training and model[1].training
    for p, g in grads.items():
        assert p.grad is g and torch.equal(g, torch.full_like(p, 0.5))
    assert torch.equal(torch.get_rng_state(), rng)


def test_hooks_and_mode_restored_when_the_loss_raises():
    model = _net(nn.ReLU())
    model.eval()

    def broken(model, batch):
        model(batch[0])
        raise RuntimeError("boom")

    fault, sample = locate_non_finite(model, broken, _batch())
    assert fault is None and sample is None
    assert _no_hooks(model) and not model.training


def test_finite_replay_reports_nothing():
    model = _net(nn.ReLU())
    x, y = _batch()
    for p in model.parameters():
        p.grad = None
    assert locate_non_finite(model, mse, (x, y)) == (None, None)
    assert all(p.grad is None for p in model.parameters())


def test_inplace_relu_after_a_hooked_module_still_locates():
    torch.manual_seed(0)
    # full backward hooks refuse an in-place op on a hooked module's output: the locator falls back to tensor hooks
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(inplace=True), Square(), Sqrt(), nn.Linear(8, 1))
    x, y = _batch()
    x[6] = 0.0
    fault, sample = locate_non_finite(model, mse, (x, y))
    assert fault is not None and fault.phase == "backward" and (fault.name, fault.type) == ("3", "Sqrt")
    assert sample is not None and 6 in sample.indices
    assert _no_hooks(model)


def test_take_and_tensor_stats():
    x = torch.arange(12.0).reshape(6, 2)
    sub = take({"x": x, "meta": "m", "w": torch.ones(3)}, [1, 4], 6)
    assert torch.equal(sub["x"], x[[1, 4]]) and sub["meta"] == "m" and sub["w"].shape == (3,)
    s = tensor_stats(torch.tensor([1.0, -3.0, float("nan"), float("inf")], dtype=torch.float16))
    assert (s.dtype, s.nan, s.inf, s.finite, s.min, s.max, s.abs_max) == ("float16", 1, 1, False, -3.0, 1.0, 3.0)
    assert s.mean == -1.0 and s.shape == [4]


def test_located_faults_rank_the_right_cause(tmp_path: Path):
    model = _net(Square(), Log())
    x, y = _batch()
    x[11] = 0.0
    fault, sample = locate_non_finite(model, mse, (x, y))
    top = rank_causes("training.non_finite_loss",
                      TrainingEvidence(step=50, loss_finite=False, module_fault=fault, sample_fault=sample))[0]
    assert top.code == "cause.unstable_loss" and "'2' (Log)" in top.summary and "reaches 0" in top.summary

    x, y = _batch()
    x[7] = float("nan")
    fault, sample = locate_non_finite(_net(nn.ReLU()), mse, (x, y), artifact_dir=tmp_path)
    top = rank_causes("training.non_finite_loss",
                      TrainingEvidence(step=50, loss_finite=False, module_fault=fault, sample_fault=sample))[0]
    assert top.code == "cause.corrupt_input_sample" and "[7]" in top.summary and str(tmp_path) in top.summary
