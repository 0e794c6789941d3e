"""Weights that work and the way back to the data: snapshots, the verified restore, the checkpoint helper, the
dataset indices of a batch and the repro artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlguard_orchestration.training import (
    Checkpoints,
    GuardConfig,
    IndexedLoader,
    NonFiniteCheckpoint,
    TrainingGuard,
    TrainingStopped,
)
from mlguard_orchestration.training.snapshots import Snapshot, Snapshots, restore_working
from tests.training._models import compute_loss_for, loader, mlp, mse, regression_data, train
from tests.training.corpus import FAULTS, run

# -- snapshots ------------------------------------------------------------------------------------------------


def _set(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_snapshots_rotate_keep_the_initial_weights_and_pin_the_last_quiet_one() -> None:
    model = mlp(2, 1, hidden=4)
    snaps = Snapshots(model, keep=2)
    for step in (50, 100, 150):
        _set(model, float(step))
        snaps.take(step)
    assert [s.step for s in snaps.candidates()] == [150, 100, 0]  # 50 rotated out, the initial weights kept
    snaps.pin()  # an early warning now: 150 stays, whatever comes next
    for step in (160, 170, 200):
        _set(model, float(step))
        snaps.take(step)
    assert [s.step for s in snaps.candidates()] == [200, 170, 150, 0]
    assert [s.step for s in snaps.candidates(after=165)] == [150, 0]
    snaps.load(snaps.candidates()[2])
    assert all(bool((p == 150.0).all()) for p in model.parameters())


def test_restore_skips_candidates_whose_forward_pass_is_not_finite() -> None:
    model = mlp(2, 1, hidden=4)
    snaps = Snapshots(model, keep=3)
    _set(model, 0.01)
    snaps.take(10)
    _set(model, 1e30)  # finite weights whose outputs overflow: finite weights are not weights that work
    snaps.take(20)
    _set(model, float("nan"))
    current = Snapshot(21, [t.detach() for t in snaps.tensors])
    batch = (torch.ones(4, 2), torch.zeros(4, 1))
    restored = restore_working(snaps, model, current, compute_loss_for(mse), [batch], forward=True)
    assert restored is not None and restored.step == 10 and restored.tried == 2 and restored.verified == "forward"
    assert all(bool((p == 0.01).all()) for p in model.parameters())
    weights_only = restore_working(snaps, model, Snapshot(21, [t.detach() for t in snaps.tensors]), None, [batch],
                                   forward=True)
    assert weights_only is not None and weights_only.verified == "weights"


def test_the_weights_before_the_failing_step_are_not_enough() -> None:
    """The issue's case: the damaging update was the step before the non-finite one."""
    outcome = run(next(c for c in FAULTS if c.name == "lr_jump"))
    assert outcome.stopped_at == 41 and outcome.guard.restored is not None
    assert outcome.guard.restored.step < 40  # after-step-40 weights overflow on batch 41: an earlier snapshot
    x, y = outcome.failed_batch
    with torch.no_grad():
        assert torch.isfinite(mse(outcome.setup.model(x), y))


def test_snapshot_cost_is_one_copy_of_the_weights_per_interval() -> None:
    model = mlp(8, 1)
    guard = TrainingGuard(model, torch.optim.SGD(model.parameters(), 1e-2), config=GuardConfig(snapshot_every=10))
    with guard:
        train(guard, model, guard.optimizer, loader(regression_data(), 45), mse)
    assert guard._snaps.taken == 1 + 4  # the initial weights, then steps 10, 20, 30, 40
    assert guard._snaps.nbytes() == sum(p.numel() * p.element_size() for p in model.parameters())


# -- the checkpoint helper ------------------------------------------------------------------------------------


def test_checkpoints_refuse_non_finite_state_and_keep_the_previous_one(tmp_path: Path) -> None:
    model = mlp(8, 1)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    ckpt = Checkpoints(tmp_path, keep=2)
    ckpt.save(model, opt, step=10)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteCheckpoint, match="NaN/Inf in 0.weight"):
        ckpt.save(model, opt, step=20)
    assert [s.step for s in ckpt.saved()] == [10] and sorted(p.name for p in tmp_path.glob("*.pt")) == \
        ["checkpoint-00000010.pt"]
    fresh = mlp(8, 1)
    assert ckpt.load(fresh) == 10 and torch.isfinite(fresh[0].weight).all()


def test_rotation_never_deletes_the_last_healthy_checkpoint(tmp_path: Path) -> None:
    model = mlp(8, 1)
    opt = torch.optim.SGD(model.parameters(), 1e-2)
    guard = TrainingGuard(model, opt)
    ckpt = Checkpoints(tmp_path, keep=2, guard=guard)
    val = {25: 0.9, 50: 0.7, 75: 0.55, 100: 0.5, 125: 0.6, 150: 0.7}  # then worse: overfitting warns at step 175
    with guard:
        for step, (x, y) in enumerate(loader(regression_data(), 250), 1):
            opt.zero_grad()
            loss = mse(model(x), y)
            loss.backward()
            guard.step(loss, batch=(x, y))
            if step % 25 == 0:
                guard.validation(1.0 / step, val.get(step, 0.8))
                ckpt.save(model, opt, step=step)
    rows = ckpt.saved()
    assert [f.code for f in guard.report().findings] == ["training.overfitting"]
    assert [s.step for s in rows] == [150, 225, 250] and [s.healthy for s in rows] == [True, False, False]
    assert ckpt.latest(healthy=True) == tmp_path / "checkpoint-00000150.pt"
    assert json.loads((tmp_path / "checkpoint-index.json").read_text())[0]["step"] == 150
    assert {p.name for p in tmp_path.glob("*.pt")} == {f"checkpoint-{s:08d}.pt" for s in (150, 225, 250)}


# -- dataset indices and the repro artifact -------------------------------------------------------------------


def test_tracked_loader_with_workers_knows_each_batch_s_dataset_indices() -> None:
    x = torch.arange(60, dtype=torch.float32)[:, None]
    # spawned workers: a forked one inherits whatever threads the test process runs (DuckDB, Airflow, a server
    # of another test) and dies at random on a busy machine
    dl = DataLoader(TensorDataset(x, torch.arange(60)), batch_size=8, shuffle=True, num_workers=2,
                    generator=torch.Generator().manual_seed(3), multiprocessing_context="spawn")
    tracked = IndexedLoader(dl)
    seen = []
    for xb, yb in tracked:
        assert tracked.last == yb.tolist()
        seen += tracked.last
    assert sorted(seen) == list(range(60)) and len(tracked) == 8 and tracked.batch_size == 8


def test_a_plain_iterable_is_passed_through_without_indices() -> None:
    tracked = IndexedLoader(iter([(torch.zeros(2, 1), torch.zeros(2))]))
    assert [b[0].shape for b in tracked] == [torch.Size([2, 1])] and tracked.last is None and not tracked.tracks


def test_a_corrupt_row_is_named_by_its_dataset_index_and_saved_to_the_repro_artifact(tmp_path: Path) -> None:
    x, y = regression_data(n=512)
    x[300, 1] = float("nan")
    model = mlp(8, 1)
    opt = torch.optim.SGD(model.parameters(), 1e-2)
    dl = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    guard = TrainingGuard(model, opt, config=GuardConfig(artifact_dir=tmp_path), compute_loss=compute_loss_for(mse))
    with pytest.raises(TrainingStopped) as stopped, guard:
        for xb, yb in guard.track(dl):
            opt.zero_grad()
            loss = mse(model(xb), yb)
            loss.backward()
            guard.step(loss, batch=(xb, yb))
    top = stopped.value.report.findings[0]
    assert top.evidence["dataset_indices"] == [300] and "dataset indices [300]" in top.message
    assert top.causes[0].code == "cause.corrupt_input_sample" and "dataset index [300]" in top.causes[0].summary
    artifact = torch.load(top.evidence["artifact"], weights_only=False)
    assert Path(top.evidence["artifact"]).parent == tmp_path
    assert artifact["dataset_indices"] == [300] and artifact["step"] == top.evidence["step"]
    assert artifact["weights_step"] == top.evidence["step"] - 1
    assert torch.isnan(artifact["samples"][0]).any() and artifact["samples"][0].shape == (1, 8)
    assert any(str(tmp_path) in n for n in stopped.value.report.notes)


def test_the_artifact_goes_to_a_temporary_directory_by_default() -> None:
    outcome = run(next(c for c in FAULTS if c.name == "nan_input"))
    path = Path(outcome.report.findings[0].evidence["artifact"])
    assert path.exists() and path.parent.name == "mlguard-training"
    assert torch.load(path, weights_only=False)["batch_positions"] == [3]
