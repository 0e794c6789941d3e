"""The training guard under DistributedDataParallel: 2 processes on gloo (CPU), one FileStore rendezvous.

Rank 1 gets a batch holding +inf at step BAD_STEP. The guard must stop BOTH ranks at the same step (it
all-reduces a flag every step; under torch.distributed it judges a step at the next one, so the stop comes at
BAD_STEP or BAD_STEP + 1), name rank 1 as the first bad rank (`finding.evidence["rank"]`), keep the weights
finite and equal on both ranks (the bad update skipped everywhere), and never hang. Two flavours of bad batch:

- non-finite-loss (ReLU net): rank 1's loss is NaN/Inf, rank 0's is finite; after DDP's gradient all-reduce
  both ranks' gradients are NaN.
- non-finite-grads-only (Tanh net): tanh saturates, so rank 1's loss stays FINITE and only its gradients go
  NaN — which DDP averages into rank 0's gradients before `g.step` runs on either rank. Naming rank 1 needs
  a look at something local to the rank (its batch, or the gradients before the all-reduce).

A healthy 2-rank run must raise nothing. Each rank writes what happened (the step it stopped at, the report as
JSON, a weight checksum, or its traceback) to a JSON file and the parent asserts on those files. The processes
come from a forkserver that has imported torch, torch._dynamo (DDP's constructor imports it: 6-12 s a rank
otherwise) and the guard once; every process is joined against one deadline and killed past it.
"""

from __future__ import annotations

import faulthandler
import json
import math
import multiprocessing as mp
import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

assert dist.is_available() and dist.is_gloo_available(), "the pinned CPU torch build ships gloo"

WORLD = 2
BAD_RANK = 1
BAD_STEP = 3
STEPS = 8
DEADLINE_S = 60.0  # for all the processes of one run together
# ReLU: the +inf input makes rank 1's LOSS non-finite. Tanh saturates (tanh(inf) = 1): rank 1's loss stays
# finite, only its GRADIENTS go NaN (0 * inf in the first Linear's weight gradient).
ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


# -- the worker (runs in a forked-from-server process: module level, picklable arguments only) --- -------------


def _batch(rank: int, step: int) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(1000 * rank + step)
    x = torch.randn(16, 8, generator=g)
    y = x.sum(dim=1, keepdim=True) * 0.5
    return x, y


def _worker(rank: int, store: str, out_file: str, bad_step: int | None, act: str) -> None:
    result: dict[str, Any] = {"rank": rank, "stopped_at": None, "steps_done": 0, "report": None, "error": None}
    try:
        if sys.platform.startswith("linux"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only: no network needed
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD,
                                timeout=timedelta(seconds=30))
        from torch import nn
        from torch.nn.parallel import DistributedDataParallel as DDP

        from mlguard_orchestration.training import TrainingGuard, TrainingStopped

        torch.manual_seed(0)  # same initial weights on both ranks (DDP also broadcasts rank 0's)
        model = DDP(nn.Sequential(nn.Linear(8, 16), ACTIVATIONS[act](), nn.Linear(16, 1)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.MSELoss()
        step = -1
        try:
            with TrainingGuard(model, optimizer, compute_loss=lambda m, b: loss_fn(m(b[0]), b[1])) as g:
                for step in range(STEPS):
                    x, y = _batch(rank, step)
                    if bad_step is not None and rank == BAD_RANK and step == bad_step:
                        x[0, 0] = math.inf
                    optimizer.zero_grad()
                    out = model(x)
                    loss = loss_fn(out, y)
                    loss.backward()
                    g.step(loss, batch=(x, y), predictions=out, targets=y)
                    result["steps_done"] = step + 1
        except TrainingStopped as e:
            result["stopped_at"] = step
            result["report"] = e.report.model_dump(mode="json") if e.report is not None else None
        if result["report"] is None:
            result["report"] = g.report().model_dump(mode="json")
        params = [p.detach() for p in model.parameters()]
        result["weights_finite"] = all(bool(torch.isfinite(p).all()) for p in params)
        result["weights_checksum"] = [float(p.double().sum()) for p in params]
    except BaseException:  # noqa: BLE001 - everything goes to the parent
        result["error"] = traceback.format_exc()
    finally:
        Path(out_file).write_text(json.dumps(result, default=str))
        # Should teardown hang, print where (to stderr) and exit, rather than wait for the parent's kill.
        faulthandler.dump_traceback_later(DEADLINE_S / 3, exit=True)
        if dist.is_initialized():
            dist.destroy_process_group()
        # Then leave without running the destructors of DDP and its gloo process group: on a loaded machine they
        # sometimes block for the gloo timeout after the peer has gone (about 1 run in 8 here; pytorch#75097). What
        # the guard did is already in `out_file`.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# -- the parent --------------------------------------------------------------------------------------------


def _run(tmp_path: Path, bad_step: int | None, act: str = "relu") -> list[dict[str, Any]]:
    # forkserver: torch and the guard are imported once, in the server, and each rank is a fork of it (a fork of
    # a fresh single-threaded process, unlike "fork" of the test process; much faster than "spawn").
    ctx = mp.get_context("forkserver")
    # torch._dynamo: DDP's constructor imports it (~800 modules, 6-12 s per rank if each did it).
    ctx.set_forkserver_preload(["torch", "torch.distributed", "torch._dynamo", "torch.nn.parallel",
                                "mlguard_orchestration.training.guard", "mlguard_orchestration.training.locate",
                                "mlguard_orchestration.training.causes", __name__])
    store = tmp_path / "store"
    outs = [tmp_path / f"rank{r}.json" for r in range(WORLD)]
    procs = [ctx.Process(target=_worker, args=(r, str(store), str(outs[r]), bad_step, act), daemon=True)
             for r in range(WORLD)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + DEADLINE_S
    hung = []
    for r, p in enumerate(procs):
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            hung.append(r)
    for r in hung:
        procs[r].kill()
        procs[r].join(5)
    partial = {r: outs[r].read_text() if outs[r].exists() else None for r in range(WORLD)}
    assert not hung, f"rank(s) {hung} still running after {DEADLINE_S:.0f}s (hang); what was written: {partial}"
    results = []
    for r, p in enumerate(procs):
        assert outs[r].exists(), f"rank {r} wrote nothing (exit code {p.exitcode})"
        res = json.loads(outs[r].read_text())
        assert res["error"] is None, f"rank {r} failed:\n{res['error']}"
        assert p.exitcode == 0, f"rank {r} exit code {p.exitcode}"
        results.append(res)
    return results


def _fail_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report.get("findings", []) if str(f.get("severity", "")).lower() in ("fail", "error")]


def _first_bad_rank(finding: dict[str, Any]) -> Any:
    ev = finding.get("evidence") or {}
    for key in ("first_bad_rank", "bad_rank", "rank"):
        if ev.get(key) is not None:
            return ev[key]
    return None


@pytest.mark.parametrize("act", ["relu", "tanh"], ids=["non-finite-loss", "non-finite-grads-only"])
def test_bad_batch_on_one_rank_stops_both_ranks_at_the_same_step(tmp_path: Path, act: str) -> None:
    r0, r1 = _run(tmp_path, bad_step=BAD_STEP, act=act)

    # Both ranks stop, at the same step: the bad one or (at most one step late) the next.
    assert r0["stopped_at"] is not None and r1["stopped_at"] is not None, (r0, r1)
    assert r0["stopped_at"] == r1["stopped_at"], (r0["stopped_at"], r1["stopped_at"])
    assert BAD_STEP <= r0["stopped_at"] <= BAD_STEP + 1, r0["stopped_at"]

    # Both reports name rank 1 as the first bad rank.
    for res in (r0, r1):
        fails = _fail_findings(res["report"])
        assert fails, f"rank {res['rank']}: no fail finding in {res['report']}"
        ranks = [_first_bad_rank(f) for f in fails]
        assert BAD_RANK in ranks and 0 not in ranks, (res["rank"], [(f["code"], f["evidence"]) for f in fails])

    # The bad update was kept out of the weights on both ranks, and the ranks did not diverge.
    assert r0["weights_finite"] and r1["weights_finite"]
    assert r0["weights_checksum"] == pytest.approx(r1["weights_checksum"], rel=1e-6, abs=1e-9)


def test_healthy_two_rank_run_raises_nothing(tmp_path: Path) -> None:
    r0, r1 = _run(tmp_path, bad_step=None)
    for res in (r0, r1):
        assert res["stopped_at"] is None, res
        assert res["steps_done"] == STEPS
        assert not _fail_findings(res["report"]), res["report"]
        assert res["weights_finite"]
    assert r0["weights_checksum"] == pytest.approx(r1["weights_checksum"], rel=1e-6, abs=1e-9)
