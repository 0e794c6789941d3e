"""The default suite's self-consistency property, over generated tables of every column shape users have:

- a table checked against its own profile passes, with no finding at all;
- two random halves of a table (50k rows each) pass against each other.

Hypothesis draws the tables' descriptions (column shapes, null shares, levels, duplicate rows); the data is
built from a seed, so a failure prints a small, exact reproduction. The examples are derandomised: CI runs
the same tables every time, and `benchmarks/realdata.py --property N` explores more of them.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlguard_orchestration as mg
from tests._data import assert_quiet
from tests._tables import SHAPES, ColumnSpec, TableSpec, build, halves

ROWS = 100_000
KEYS = ("int_key", "str_key")
EXAMPLES = 40


@st.composite
def table_specs(draw: st.DrawFn) -> TableSpec:
    duplicates = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
    shapes = [s for s in SHAPES if not (duplicates and s in KEYS)]
    columns = draw(st.lists(st.builds(
        ColumnSpec, shape=st.sampled_from(shapes), null_share=st.sampled_from([0.0, 0.0, 0.05, 0.5]),
        levels=st.sampled_from([2, 3, 21, 150, 1000])), min_size=1, max_size=6))
    return TableSpec(columns=columns, duplicate_share=duplicates)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=table_specs(), seed=st.integers(0, 2**16))
def test_a_table_passes_against_its_own_profile_and_its_halves_against_each_other(spec: TableSpec,
                                                                                  seed: int) -> None:
    table = build(spec, ROWS, seed)
    assert_quiet(mg.Guard("self", default_suite=True, reference=mg.build_profile(table)).run(table))
    first, second = halves(table, seed + 1)
    assert_quiet(mg.Guard("halves", default_suite=True, reference=mg.build_profile(first)).run(second))


def test_every_shape_at_once() -> None:
    """One wide table with each shape once (nulls in half of them): the same two properties."""
    spec = TableSpec(columns=[ColumnSpec(s, null_share=0.05 * (i % 2), levels=150) for i, s in enumerate(SHAPES)])
    table = build(spec, ROWS, seed=7)
    assert_quiet(mg.Guard("self", default_suite=True, reference=mg.build_profile(table)).run(table))
    first, second = halves(table, 8)
    assert_quiet(mg.Guard("halves", default_suite=True, reference=mg.build_profile(first)).run(second))
