"""Benchmark: the cost of the default training guard on a small GPT-style transformer, paired step by step.

    python benchmarks/training_guard.py                       # cpu on 2 threads (cuda if available)
    python benchmarks/training_guard.py --rounds 6            # 6 rounds of 50 paired steps
    python benchmarks/training_guard.py --quick               # tiny model, a smoke run of a few seconds
    python benchmarks/training_guard.py --anomaly             # also time torch.autograd.detect_anomaly()

Two copies of the same model (same initial weights) train on the same batches in ONE process:

- plain:  the loop as a user writes it, `torch.optim.AdamW(model.parameters(), lr=3e-4)`, `optimizer.step()`.
- guard:  the same loop under `TrainingGuard(model, optimizer, compute_loss=...)` in its DEFAULT config (probes
          every 25 steps, weight snapshots every 50), `g.step(loss, batch=..., predictions=..., targets=...)`
          replacing `optimizer.step()`.

Pairing: every batch is stepped by both, back to back, the order alternating from one batch to the next, so a
burst of load from other processes hits both sides of a pair alike (on a shared 2-core machine plain steps of one
run ranged 214–375 ms; unpaired medians moved by 10 points between runs). A round is `sample_every ×
snapshot_every / gcd` = 50 pairs, so each round holds the same share of probe and snapshot steps as training
does; its figure is Σ guard time / Σ plain time over its pairs. The overhead is the median over rounds of that
ratio, minus 1, with its spread (min–max and interquartile range). The steps before `--warmup` (the guard's
first `watch_first` steps are all probes: a one-off cost at the start of a run) are not timed.

How many rounds are enough: from the rounds measured, bootstrap resamples of n rounds (2000 each) give the share
of medians within ±1 point of the all-rounds median; the smallest n where that share reaches 90% is printed (run
the benchmark again with that many rounds to see a figure that repeats within ±1 point).

On CUDA every step is synchronised before and after (so the guard's asynchronous work is counted in its own step)
and the guarded steps run under `torch.cuda.set_sync_debug_mode("error")`: a host-device sync the guard adds is
reported. (No GPU was available when this version was written: the CUDA path is kept simple and untested.)

The model: token + position embedding, N pre-LN blocks of causal self-attention
(`F.scaled_dot_product_attention(is_causal=True)`) and a GELU MLP, final LayerNorm, head tied to the token
embedding. Defaults (d_model 256, 4 layers, 4 heads, seq 128, batch 10, vocab 2000, 3.7M parameters) take
~250 ms a step on 2 CPU threads.

The last line of output is one JSON object (`plain_ms`, `guard_ms`, `guard_overhead_pct` (the median over
rounds), `overhead_spread_pct`, `rounds_for_1pt`, `snapshot_ms`, `step_overhead_by_kind_pct`, `device`, plus
extras; `detect_anomaly_overhead_pct` with --anomaly) for scripts comparing runs. `snapshot_ms` is one snapshot
timed on its own after the rounds (its cost is inside the rounds' figures already).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


# -- the model -------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, seq: int, d_model: int, n_layers: int, n_heads: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def compute_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return loss_fn(model(batch[0]), batch[1])


# -- steps ----------------------------------------------------------------------------------------------


def step_plain(model: nn.Module, opt: torch.optim.Optimizer, batch: Any, anomaly: bool = False) -> None:
    opt.zero_grad(set_to_none=True)
    if anomaly:
        with torch.autograd.detect_anomaly():
            loss = loss_fn(model(batch[0]), batch[1])
            loss.backward()
    else:
        loss = loss_fn(model(batch[0]), batch[1])
        loss.backward()
    opt.step()


def step_guard(model: nn.Module, opt: torch.optim.Optimizer, batch: Any, guard: Any) -> None:
    opt.zero_grad(set_to_none=True)
    out = model(batch[0])
    loss = loss_fn(out, batch[1])
    loss.backward()
    guard.step(loss, batch=batch, predictions=out, targets=batch[1])


# -- harness ----------------------------------------------------------------------------------------------


def make_batches(n: int, batch: int, seq: int, vocab: int, device: torch.device) -> list[Any]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        tokens = torch.randint(0, vocab, (batch, seq + 1), generator=g)
        out.append((tokens[:, :-1].contiguous().to(device), tokens[:, 1:].contiguous().to(device)))
    return out


def timed(fn: Any, device: torch.device) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call; synchronised around it on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000


def rounds_for(ratios: list[float], points: float = 1.0, share: float = 0.9, draws: int = 2000) -> int | None:
    """Smallest n such that `share` of bootstrap medians of n rounds fall within ±`points` of the median."""
    if len(ratios) < 2:
        return None
    centre, rng = statistics.median(ratios), random.Random(0)
    for n in range(1, 4 * len(ratios) + 1):
        inside = sum(abs(statistics.median(rng.choices(ratios, k=n)) - centre) * 100 <= points for _ in range(draws))
        if inside >= share * draws:
            return n
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2 on cpu)")
    p.add_argument("--rounds", type=int, default=6, help="rounds of paired steps (each one guard cycle long)")
    p.add_argument("--warmup", type=int, default=12, help="untimed steps first (at least the guard's watch_first)")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--vocab", type=int, default=2000)
    p.add_argument("--anomaly", action="store_true", help="also pair plain steps with detect_anomaly steps")
    p.add_argument("--quick", action="store_true", help="tiny model, 2 rounds (smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.d_model, args.layers, args.seq, args.batch, args.vocab, args.rounds = 64, 2, 32, 4, 500, 2
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or 2)
    elif args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*[Aa]nomaly.*")  # detect_anomaly warns on every entry

    from mlguard_orchestration.training import TrainingGuard

    sides = ["plain", "guard"] + (["anomaly"] if args.anomaly else [])
    torch.manual_seed(0)
    base = GPT(args.vocab, args.seq, args.d_model, args.layers, args.heads)
    n_params = sum(p.numel() for p in base.parameters())
    models: dict[str, nn.Module] = {}
    opts: dict[str, torch.optim.Optimizer] = {}
    for side in sides:
        m = GPT(args.vocab, args.seq, args.d_model, args.layers, args.heads)
        m.load_state_dict(base.state_dict())
        models[side] = m.to(device).train()
        opts[side] = torch.optim.AdamW(models[side].parameters(), lr=3e-4)  # as a user writes it
    del base
    batches = make_batches(16, args.batch, args.seq, args.vocab, device)
    guard = TrainingGuard(models["guard"], opts["guard"], compute_loss=compute_loss)
    cfg = guard.config
    cycle = cfg.sample_every * cfg.snapshot_every // math.gcd(cfg.sample_every, cfg.snapshot_every)

    print(f"torch {torch.__version__} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"))
    print(f"model: GPT d_model={args.d_model} layers={args.layers} heads={args.heads} seq={args.seq} "
          f"batch={args.batch} vocab={args.vocab} ({n_params / 1e6:.2f}M params, tied head), AdamW(lr=3e-4)")
    print(f"timing: {args.warmup} warm-up steps, then {args.rounds} rounds of {cycle} paired steps (probe every "
          f"{cfg.sample_every}, snapshot every {cfg.snapshot_every}), order alternating within each pair", flush=True)

    def run(side: str, batch: Any) -> None:
        if side == "guard":
            step_guard(models[side], opts[side], batch, guard)
        else:
            step_plain(models[side], opts[side], batch, anomaly=side == "anomaly")

    sync_check = "not checked (cpu)"
    with guard:
        for i in range(args.warmup):
            for side in sides:
                run(side, batches[i % len(batches)])
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("error")
            try:
                run("guard", batches[0])
                sync_check = "no sync"
            except RuntimeError as exc:
                sync_check = f"SYNC: {str(exc).splitlines()[0][:200]}"
            finally:
                torch.cuda.set_sync_debug_mode("default")
        wall: dict[str, list[list[float]]] = {s: [] for s in sides}
        cpu: dict[str, list[list[float]]] = {s: [] for s in sides}
        kinds: list[str] = []  # per guarded step: ordinary / probe / snapshot
        step = args.warmup + (device.type == "cuda")
        for r in range(args.rounds):
            for s in sides:
                wall[s].append([])
                cpu[s].append([])
            for j in range(cycle):
                step += 1
                batch = batches[step % len(batches)]
                order = sides if (r * cycle + j) % 2 == 0 else sides[::-1]
                for side in order:
                    w, c = timed(lambda side=side, batch=batch: run(side, batch), device)
                    wall[side][-1].append(w)
                    cpu[side][-1].append(c)
                kinds.append("snapshot" if step % cfg.snapshot_every == 0 else
                             "probe" if step % cfg.sample_every == 0 else "ordinary")
        report = guard.report()

    def round_ratios(side: str, table: dict[str, list[list[float]]]) -> list[float]:
        return [sum(g) / sum(p) for g, p in zip(table[side], table["plain"], strict=True)]

    ratios, cpu_ratios = round_ratios("guard", wall), round_ratios("guard", cpu)
    med = statistics.median(ratios)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [med, med, med]
    flat = {s: [t for rnd in wall[s] for t in rnd] for s in sides}
    pair = [g / p for g, p in zip(flat["guard"], flat["plain"], strict=True)]
    by_kind = {k: statistics.median([x for x, kk in zip(pair, kinds, strict=True) if kk == k])
               for k in ("ordinary", "probe", "snapshot") if k in kinds}
    plain_ms = statistics.median(flat["plain"])
    guard_ms = plain_ms * med  # the plain step's median, scaled by the overhead figure
    snap_ms = statistics.median(timed(lambda i=i: guard._snaps.take(-1 - i), device)[0] for i in range(20))
    needed = rounds_for(ratios)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    print()
    if load is not None:
        print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")
    print(f"plain step: median {plain_ms:.1f} ms (min {min(flat['plain']):.1f}, max {max(flat['plain']):.1f})")
    print("per round (Σ guard / Σ plain over its pairs): "
          + ", ".join(f"{(x - 1) * 100:+.1f} %" for x in ratios))
    print("paired step ratios by kind (median): " + ", ".join(f"{k} {(v - 1) * 100:+.1f} %"
                                                            for k, v in by_kind.items()))
    print(f"one snapshot: {snap_ms:.2f} ms ({guard._snaps.nbytes() / 2**20:.1f} MiB copied; median of 20), "
          f"{snap_ms / cfg.snapshot_every / plain_ms * 100:.3f} % of a plain step once amortised over "
          f"{cfg.snapshot_every} steps")
    print()
    print(f"guard overhead: {(med - 1) * 100:+.2f} % (median of {len(ratios)} rounds; spread "
          f"{(min(ratios) - 1) * 100:+.1f} … {(max(ratios) - 1) * 100:+.1f} %, interquartile "
          f"{(q[0] - 1) * 100:+.1f} … {(q[2] - 1) * 100:+.1f} %; target on CPU ≤ 5 %)")
    print(f"process CPU time: {(statistics.median(cpu_ratios) - 1) * 100:+.2f} % (median of rounds)")
    print(f"rounds for a figure within ±1 point (90% of bootstrap medians): "
          f"{needed if needed is not None else 'more than ' + str(4 * len(ratios))}")
    anomaly_pct = None
    if "anomaly" in sides:
        anomaly_pct = round((statistics.median(round_ratios("anomaly", wall)) - 1) * 100, 2)
        print(f"detect_anomaly overhead: {anomaly_pct:+.2f} %")
    if device.type == "cuda":
        print(f"CUDA sync check (set_sync_debug_mode('error')): {sync_check}")
    if report.findings:
        print(f"NOTE: the guard reported {len(report.findings)} finding(s) on this run: "
              f"{[f.code for f in report.findings]}")

    result: dict[str, Any] = {
        "plain_ms": round(plain_ms, 2), "guard_ms": round(guard_ms, 2),
        "guard_overhead_pct": round((med - 1) * 100, 2),
        "overhead_spread_pct": [round((min(ratios) - 1) * 100, 2), round((max(ratios) - 1) * 100, 2)],
        "overhead_iqr_pct": [round((q[0] - 1) * 100, 2), round((q[2] - 1) * 100, 2)],
        "overhead_cpu_time_pct": round((statistics.median(cpu_ratios) - 1) * 100, 2),
        "rounds": len(ratios), "steps_per_round": cycle, "rounds_for_1pt": needed,
        "round_overheads_pct": [round((x - 1) * 100, 2) for x in ratios],
        "step_overhead_by_kind_pct": {k: round((v - 1) * 100, 2) for k, v in by_kind.items()},
        "snapshot_ms": round(snap_ms, 3),
        "snapshot_amortised_pct": round(snap_ms / cfg.snapshot_every / plain_ms * 100, 4),
        "detect_anomaly_overhead_pct": anomaly_pct,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(), "params": n_params, "torch": torch.__version__,
        "findings_on_benchmark_run": [f.code for f in report.findings],
        "load_avg_1m": round(load, 2) if load is not None else None,
    }
    if device.type == "cuda":
        result["cuda_sync_check"] = sync_check
    assert all(math.isfinite(t) for ts in flat.values() for t in ts)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
