"""The false-alarm gate and the planted faults (tests/training/corpus.py).

Healthy runs must end with no fail — the fast subset here, every run in benchmarks/training_corpus.py — and with no
warn either, as calibrated. Each planted fault must stop at or before its `stop_by` step with its finding code and
top cause, and leave weights whose forward pass on the failing batch is finite."""

from __future__ import annotations

import pytest
import torch

from tests.training.corpus import FAULTS, HEALTHY, run

FAST = [c for c in HEALTHY if c.fast]


def test_the_corpus_covers_what_the_issue_lists() -> None:
    assert len(HEALTHY) >= 15 and len(FAST) >= 6
    covers = " ".join(c.covers for c in HEALTHY).lower()
    for thing in ("mlp", "cnn", "batchnorm", "dropout", "transformer", "lstm", "gru", "regression", "classification",
                  "momentum", "adam", "adamw", "warm-up", "cosine", "one-cycle", "clipping", "bf16", "hard batch",
                  "labels"):
        assert thing in covers, thing


@pytest.mark.parametrize("case", FAST, ids=[c.name for c in FAST])
def test_healthy_run_raises_no_alarm(case) -> None:  # type: ignore[no-untyped-def]
    outcome = run(case)
    assert outcome.stopped_at is None and outcome.steps >= 320, outcome.report.headline()
    assert outcome.fails == [] and outcome.warns == [], [f.message for f in outcome.report.findings]


@pytest.mark.parametrize("case", FAULTS, ids=[c.name for c in FAULTS])
def test_planted_fault_stops_early_with_its_cause(case) -> None:  # type: ignore[no-untyped-def]
    outcome = run(case)
    assert outcome.stopped_at is not None, f"{case.name}: not stopped ({outcome.warns})"
    top = outcome.report.findings[0]
    assert top.severity == "fail" and top.code == case.code, (top.code, top.message)
    if case.cause is not None:
        assert outcome.top_cause == case.cause, [(c.code, c.summary) for c in top.causes]
    if case.stop_by is not None:
        assert outcome.stopped_at <= case.stop_by
    if case.first_bad is not None:
        assert outcome.stopped_at >= case.first_bad
    # the weights left in the model work: finite, and a finite loss on the batch that failed (unless the batch's
    # own samples are the fault), from the step the report names
    guard, model = outcome.guard, outcome.setup.model
    assert guard.restored is not None and top.evidence["weights_from_step"] == guard.restored.step
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert any(f"weights restored to those after step {guard.restored.step}" in n for n in outcome.report.notes)
    if case.cause != "cause.corrupt_input_sample":
        x, y = outcome.failed_batch
        with torch.no_grad():
            assert torch.isfinite(outcome.setup.loss_fn(model(x).float(), y))
