"""Benchmark: the cost of the default training guard on a small GPT-style transformer.

    python benchmarks/training_guard.py                       # cuda if available, else cpu on 2 threads
    python benchmarks/training_guard.py --device cpu --threads 2 --rounds 10 --steps 5
    python benchmarks/training_guard.py --quick               # tiny model, a smoke run of a few seconds

Three variants of the same training step (forward + cross-entropy + backward + AdamW step), each on its own
copy of the same model (same initial weights, same synthetic batches), timed in ONE process:

- plain:   the loop as a user writes it, `torch.optim.AdamW(model.parameters(), lr=3e-4)`, `optimizer.step()`.
- guard:   the same loop under `TrainingGuard(model, optimizer, compute_loss=...)` in its DEFAULT config,
           `g.step(loss, batch=..., predictions=..., targets=...)` replacing `optimizer.step()`.
- anomaly: the plain loop with forward + backward under `torch.autograd.detect_anomaly()` (the usual
           "find the NaN" tool, for comparison).

After --warmup steps of each, the variants alternate in --rounds rounds of --steps steps each (the order
rotates every round, so none always runs first). On CPU every step is timed on its own and the figure per
variant is the median of its single steps (robust to bursts of load on a shared machine). On CUDA a round is
timed as a whole, synchronizing at its two boundaries only (so timing never serializes the guard's asynchronous
work), and the figure is the median over rounds of round time / --steps (--steps defaults to the guard's
`sample_every` there, so every round holds one sampled-probe step). On CPU the guard's probe steps (1 in
`sample_every`, which add activation/update/weight statistics) are timed apart and weighed in at their share:
guard = ((k - 1) * median(ordinary steps) + median(probe steps)) / k. overhead % = (variant / plain - 1) * 100.

On CUDA the guarded steps run under `torch.cuda.set_sync_debug_mode("error")`: any host-device
synchronization the guard adds raises, and is reported (the plain loop is checked the same way once, so a
sync that torch itself does is not blamed on the guard).

The model: token + position embedding, N pre-LN blocks of causal self-attention
(`F.scaled_dot_product_attention(is_causal=True)`) and a GELU MLP, final LayerNorm, head tied to the token
embedding. Defaults (d_model 256, 4 layers, 4 heads, seq 128, batch 10, vocab 2000, 3.7M parameters) take
~250 ms a step on 2 CPU threads.

The last line of output is one JSON object (`plain_ms`, `guard_ms`, `guard_overhead_pct`, `anomaly_ms`,
`detect_anomaly_overhead_pct`, `device`, plus extras) for scripts comparing runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
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

VARIANTS = ("plain", "guard", "anomaly")


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


# -- the three steps --------------------------------------------------------------------------------------


def step_plain(model: nn.Module, opt: torch.optim.Optimizer, batch: Any) -> None:
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(batch[0]), batch[1])
    loss.backward()
    opt.step()


def step_anomaly(model: nn.Module, opt: torch.optim.Optimizer, batch: Any) -> None:
    opt.zero_grad(set_to_none=True)
    with torch.autograd.detect_anomaly():
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batches(n: int, batch: int, seq: int, vocab: int, device: torch.device) -> list[Any]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        tokens = torch.randint(0, vocab, (batch, seq + 1), generator=g)
        out.append((tokens[:, :-1].contiguous().to(device), tokens[:, 1:].contiguous().to(device)))
    return out


def guard_facts(guard: Any, device: torch.device) -> dict[str, Any]:
    """What the guard says about itself: how it skips a bad update, whether it judges a step late, its config.
    (Read from its attributes where it has no public accessor; missing ones are left out.)"""
    facts: dict[str, Any] = {}
    fused = getattr(guard, "_fused", None)
    if fused is not None:
        facts["skip_mechanism"] = (
            "optimizer.found_inf (fused optimizer, decided on the device)" if fused else
            "host check of the flag before optimizer.step() (CPU: free)" if device.type == "cpu" else
            "gradients zeroed on the device (masked_fill_) before optimizer.step()")
    late = getattr(guard, "_late", None)
    if late is not None:
        facts["evaluate_late"] = bool(late)
    cfg = getattr(guard, "config", None)
    if cfg is not None and hasattr(cfg, "model_dump"):
        with contextlib.suppress(Exception):
            facts["config"] = cfg.model_dump(mode="json")
    return facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2 on cpu)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per variant per round (default 5 on cpu, the guard's sample_every on cuda)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps of each variant first")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--vocab", type=int, default=2000)
    p.add_argument("--skip-anomaly", action="store_true", help="time plain and guard only")
    p.add_argument("--quick", action="store_true", help="tiny model, 2 rounds x 3 steps (smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.d_model, args.layers, args.seq, args.batch, args.vocab = 64, 2, 32, 4, 500
        args.rounds, args.steps, args.warmup = 2, 3, 2
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

    variants = [v for v in VARIANTS if not (args.skip_anomaly and v == "anomaly")]
    torch.manual_seed(0)
    base = GPT(args.vocab, args.seq, args.d_model, args.layers, args.heads)
    n_params = sum(p.numel() for p in base.parameters())
    models: dict[str, nn.Module] = {}
    opts: dict[str, torch.optim.Optimizer] = {}
    for v in variants:
        m = GPT(args.vocab, args.seq, args.d_model, args.layers, args.heads)
        m.load_state_dict(base.state_dict())
        models[v] = m.to(device).train()
        opts[v] = torch.optim.AdamW(models[v].parameters(), lr=3e-4)  # as a user writes it
    del base
    batches = make_batches(8, args.batch, args.seq, args.vocab, device)

    print(f"torch {torch.__version__} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"))
    print(f"model: GPT d_model={args.d_model} layers={args.layers} heads={args.heads} seq={args.seq} "
          f"batch={args.batch} vocab={args.vocab} ({n_params / 1e6:.2f}M params, tied head), "
          f"AdamW(lr=3e-4) defaults")

    sync_check: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        guard = stack.enter_context(TrainingGuard(models["guard"], opts["guard"], compute_loss=compute_loss))
        counter = {v: 0 for v in variants}
        sample_every = int(getattr(getattr(guard, "config", None), "sample_every", 0) or 0)
        if args.steps is None:  # CUDA: one sampled probe in every round, so a round's mean carries its share
            args.steps = sample_every if device.type == "cuda" and sample_every else 5
        print(f"timing: {args.warmup} warm-up steps each, then {args.rounds} rounds x {args.steps} steps per "
              f"variant, interleaved (order rotating); median of "
              f"{'single steps' if device.type == 'cpu' else 'rounds (ms/step per round)'}", flush=True)

        def run(v: str, n: int) -> None:
            m, o = models[v], opts[v]
            for _ in range(n):
                b = batches[counter[v] % len(batches)]
                counter[v] += 1
                if v == "plain":
                    step_plain(m, o, b)
                elif v == "anomaly":
                    step_anomaly(m, o, b)
                else:
                    step_guard(m, o, b, guard)

        def run_checked(v: str, n: int) -> None:
            """On CUDA, run under sync debug mode "error"; a sync raises and is recorded, not fatal."""
            if device.type != "cuda" or v == "anomaly":
                run(v, n)
                return
            torch.cuda.set_sync_debug_mode("error")
            try:
                run(v, n)
            except RuntimeError as e:
                if "synchroniz" not in str(e).lower():
                    raise
                sync_check.setdefault(v, f"SYNC: {str(e).splitlines()[0][:200]}")
            finally:
                torch.cuda.set_sync_debug_mode("default")

        for v in variants:  # warm-up (also the sync check of the plain loop, once)
            run(v, args.warmup)
        if device.type == "cuda":
            for v in ("plain", "guard"):
                run_checked(v, 2)
                sync_check.setdefault(v, "no sync")
        sync(device)

        # CPU: every step is timed on its own (execution is synchronous; the median of single steps shrugs
        # off bursts of load from other processes). CUDA: a round is timed as a whole, synchronizing at its
        # two boundaries only, so the guard's asynchronous work is not serialized by the timing.
        per_step = device.type == "cpu"
        times: dict[str, list[float]] = {v: [] for v in variants}
        probe_times: list[float] = []
        cpu: dict[str, list[float]] = {v: [] for v in variants}  # process CPU time per step (CPU runs only)
        probe_cpu: list[float] = []
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[: r % len(variants)]
            for v in order:
                if per_step:
                    for _ in range(args.steps):
                        c0, t0 = time.process_time(), time.perf_counter()
                        run(v, 1)
                        dt, dc = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
                        if v == "guard" and sample_every and guard.step_count % sample_every == 0:
                            probe_times.append(dt)  # a sampled-probe step: amortized below
                            probe_cpu.append(dc)
                        else:
                            times[v].append(dt)
                            cpu[v].append(dc)
                    continue
                sync(device)
                t0 = time.perf_counter()
                run_checked(v, args.steps) if v == "guard" else run(v, args.steps)
                sync(device)
                times[v].append((time.perf_counter() - t0) * 1000 / args.steps)
        facts = guard_facts(guard, device)
    report = guard.report() if hasattr(guard, "report") else None
    n_findings = len(getattr(report, "findings", []) or []) if report is not None else None

    med = {v: statistics.median(ts) for v, ts in times.items()}
    guard_ordinary_ms = med["guard"]
    if probe_times:  # 1 step in sample_every carries the sampled probes: weigh it in at its share
        k = sample_every
        med["guard"] = ((k - 1) * guard_ordinary_ms + statistics.median(probe_times)) / k

    def pct(v: str) -> float | None:
        return round((med[v] / med["plain"] - 1) * 100, 2) if v in med else None

    # CPU time: what the process itself spent, so less sensitive to other processes on a shared machine.
    cmed = {v: statistics.median(ts) for v, ts in cpu.items() if ts}
    if probe_cpu and "guard" in cmed:
        cmed["guard"] = ((sample_every - 1) * cmed["guard"] + statistics.median(probe_cpu)) / sample_every
    cpct = {v: round((cmed[v] / cmed["plain"] - 1) * 100, 2) for v in cmed if v != "plain"}

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print()
    if load is not None:
        print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs "
              "(other processes' load inflates the spread, not the medians' ratio much)")
    print(f"{'variant':<10}{'ms/step (median)':>18}{'min':>10}{'max':>10}{'vs plain':>11}"
          + (f"{'CPU ms/step':>14}{'vs plain':>11}" if cmed else ""))
    for v in variants:
        over = "" if v == "plain" else f"{pct(v):+.1f} %"
        line = f"{v:<10}{med[v]:>18.1f}{min(times[v]):>10.1f}{max(times[v]):>10.1f}{over:>11}"
        if cmed:
            line += f"{cmed[v]:>14.1f}{'' if v == 'plain' else f'{cpct[v]:+.1f} %':>11}"
        print(line)
    if probe_times:
        pm = statistics.median(probe_times)
        print(f"  guard = {sample_every - 1}/{sample_every} x ordinary step {guard_ordinary_ms:.1f} "
              f"({(guard_ordinary_ms / med['plain'] - 1) * 100:+.1f} %) + 1/{sample_every} x probe step {pm:.1f} "
              f"({(pm / med['plain'] - 1) * 100:+.1f} %, {len(probe_times)} timed)")
    print()
    print(f"guard overhead: {pct('guard'):+.2f} % (target on CPU: <= 5 %)")
    if "anomaly" in med:
        extra = med["anomaly"] - med["plain"]
        print(f"detect_anomaly overhead: {pct('anomaly'):+.2f} %"
              + (f"; the guard costs {(med['guard'] - med['plain']) / extra:.1%} of what detect_anomaly adds"
                 if extra > 0 else ""))
    if "skip_mechanism" in facts:
        print(f"guard skip mechanism: {facts['skip_mechanism']}")
    if "evaluate_late" in facts:
        print(f"guard judges a step: {'at the next step (late)' if facts['evaluate_late'] else 'at once'}")
    if sync_check:
        print(f"CUDA sync check (set_sync_debug_mode('error')): {sync_check}")
    if n_findings:
        print(f"NOTE: the guard reported {n_findings} finding(s) on healthy training: "
              f"{[f.code for f in report.findings]}")

    result: dict[str, Any] = {
        "plain_ms": round(med["plain"], 2),
        "guard_ms": round(med["guard"], 2),
        "guard_overhead_pct": pct("guard"),
        "anomaly_ms": round(med["anomaly"], 2) if "anomaly" in med else None,
        "detect_anomaly_overhead_pct": pct("anomaly"),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "params": n_params,
        "rounds": args.rounds,
        "steps": args.steps,
        "samples_ms": {v: [round(t, 2) for t in ts] for v, ts in times.items()},
        "torch": torch.__version__,
        "findings_on_healthy_run": n_findings,
        "load_avg_1m": round(load, 2) if load is not None else None,
    }
    if cmed:
        result["guard_overhead_cpu_time_pct"] = cpct.get("guard")
        result["detect_anomaly_overhead_cpu_time_pct"] = cpct.get("anomaly")
    if probe_times:
        result["guard_ordinary_step_ms"] = round(guard_ordinary_ms, 2)
        result["guard_probe_step_ms"] = round(statistics.median(probe_times), 2)
        result["sample_every"] = sample_every
    for key in ("skip_mechanism", "evaluate_late"):
        if key in facts:
            result[key] = facts[key]
    if sync_check:
        result["cuda_sync_check"] = sync_check
    assert all(math.isfinite(t) for ts in times.values() for t in ts)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
