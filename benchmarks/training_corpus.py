"""Benchmark-like run of the training guard's calibration corpus: every healthy run and every planted fault.

    python benchmarks/training_corpus.py                 # every healthy run (3 seeds) and every fault (seed 0)
    python benchmarks/training_corpus.py --seeds 5       # more seeds: the false-alarm gate gets wider
    python benchmarks/training_corpus.py --only labels_shuffled,lr_jump

The runs are defined in tests/training/corpus.py (the test suite runs a fast subset of the healthy runs and every
fault). For each run it prints: healthy runs — the steps trained, fails (false alarms) and warns; planted faults —
the first bad step, the step the guard stopped at, the finding and top cause against the expected ones, and the
step the restored weights are from. Everything runs on CPU, one thread, default GuardConfig (plus a run's own
config where it declares one, e.g. deliberately_frozen).

The last line is one JSON object: `healthy_runs`, `false_alarms` (fails on healthy runs), `healthy_warns`,
`faults`, `faults_stopped_right` (right code, right top cause, by its stop_by step), and per-run rows."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per healthy run (initial weights, batch order)")
    p.add_argument("--only", default="", help="comma-separated run names")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from tests.training.corpus import FAULTS, HEALTHY, run

    only = set(filter(None, args.only.split(",")))
    rows: list[dict[str, Any]] = []
    print(f"{'healthy run':34} {'seed':>4} {'steps':>5}  fails / warns")
    for case in HEALTHY:
        if only and case.name not in only:
            continue
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            o = run(case, seed)
            row = {"run": case.name, "kind": "healthy", "seed": seed, "steps": o.steps, "fails": o.fails,
                   "warns": o.warns, "seconds": round(time.perf_counter() - t0, 2)}
            rows.append(row)
            print(f"{case.name:34} {seed:>4} {o.steps:>5}  {o.fails or '-'} / {o.warns or '-'}", flush=True)
    print()
    print(f"{'planted fault':26} {'bad at':>6} {'stop':>5} {'by':>4}  finding / top cause (weights from step)")
    for case in FAULTS:
        if only and case.name not in only:
            continue
        t0 = time.perf_counter()
        o = run(case, 0)
        top = o.report.findings[0] if o.report.findings else None
        right = (top is not None and top.severity == "fail" and top.code == case.code
                 and (case.cause is None or o.top_cause == case.cause)
                 and (case.stop_by is None or (o.stopped_at or 10**9) <= case.stop_by))
        weights = o.guard.restored.step if o.guard.restored is not None else None
        row = {"run": case.name, "kind": "fault", "first_bad_step": case.first_bad, "stopped_at": o.stopped_at,
               "stop_by": case.stop_by, "code": top.code if top else None, "expected_code": case.code,
               "top_cause": o.top_cause, "expected_cause": case.cause, "weights_from_step": weights, "right": right,
               "seconds": round(time.perf_counter() - t0, 2)}
        rows.append(row)
        mark = "ok " if right else "MISS"
        print(f"{case.name:26} {case.first_bad if case.first_bad is not None else '?':>6} {o.stopped_at or '-':>5} "
              f"{case.stop_by or '-':>4}  {mark} {row['code']} / {o.top_cause} ({weights})", flush=True)
    healthy = [r for r in rows if r["kind"] == "healthy"]
    faults = [r for r in rows if r["kind"] == "fault"]
    result = {
        "healthy_runs": len(healthy), "false_alarms": sum(bool(r["fails"]) for r in healthy),
        "healthy_warns": sorted({f"{r['run']}: {w}" for r in healthy for w in r["warns"]}),
        "faults": len(faults), "faults_stopped_right": sum(r["right"] for r in faults), "rows": rows,
    }
    print()
    print(f"healthy: {result['healthy_runs']} runs, {result['false_alarms']} with a fail, warns: "
          f"{result['healthy_warns'] or 'none'}")
    print(f"faults: {result['faults_stopped_right']} of {result['faults']} stopped with the right finding and cause "
          "by their stop_by step")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
