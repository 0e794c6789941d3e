"""The real-data corpus in `make test` (the first partitions of each dataset; `benchmarks/realdata.py` runs
them all): quiet on itself, on halves and on a schedule of partitions except where the data really changed
(listed, with the reason, in the corpus); each planted bug caught with the right finding and top cause."""

from __future__ import annotations

import pytest

from tests.realdata.corpus import DATASETS, Dataset, evaluate

PARTITIONS = 8  # per dataset in make test


@pytest.mark.parametrize("ds", DATASETS, ids=[d.name for d in DATASETS])
def test_corpus(ds: Dataset) -> None:
    result = evaluate(ds, max_partitions=PARTITIONS)
    assert result.self_check == "pass", ds.name
    assert result.halves == "pass", ds.name
    for key, status, codes in result.partitions:
        if status == "fail":
            assert key in ds.real_changes, (key, codes)
            assert sorted(codes) == sorted(ds.real_changes[key][0]), (key, codes)
    assert result.false_fails(ds) == {"self": 0, "halves": 0, "partitions": 0}
    missed = {name: (top, codes) for name, (ok, top, codes) in result.bugs.items() if not ok}
    assert not missed, missed
    assert result.bugs, "every dataset plants at least one bug"
