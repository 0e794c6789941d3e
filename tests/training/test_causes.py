"""rank_causes: one test per rule with the evidence it must recognise, and a quiet case each where it must not."""

from __future__ import annotations

from mlguard_orchestration.catalogue import CATALOGUE
from mlguard_orchestration.training.causes import RULES, rank_causes
from mlguard_orchestration.training.evidence import ModuleFault, SampleFault, TensorStats, TrainingEvidence

STEADY_LOSS = [2.3, 2.1, 1.95, 1.9, 1.85, 1.8, 1.78, 1.75, 1.72, 1.7]
STEADY_GRADS = [1.0, 1.1, 0.95, 1.05, 0.98, 1.02, 1.0, 0.97, 1.03, 1.01]


def ev(**kw) -> TrainingEvidence:
    base = {"step": 120, "loss_history": STEADY_LOSS, "grad_norm_history": STEADY_GRADS, "learning_rate": 1e-3}
    return TrainingEvidence(**{**base, **kw})


def codes(causes) -> list[str]:
    return [c.code for c in causes]


def by_code(causes, code):
    return next(c for c in causes if c.code == code)


def stats(**kw) -> TensorStats:
    return TensorStats(shape=[32, 8], dtype="float32", **kw)


# -- learning rate -------------------------------------------------------------------------------------------

def test_grad_norm_growth_and_loss_spike_blame_the_learning_rate():
    e = ev(grad_norm_history=[1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 8.0, 45.0, 310.0],
           loss_history=[0.9, 0.85, 0.86, 0.82, 0.8, 0.81, 1.9, 6.5, 40.0], learning_rate=0.5, loss_finite=False)
    causes = rank_causes("training.non_finite_loss", e)
    assert causes[0].code == "cause.learning_rate_too_high"
    top = causes[0]
    assert top.confidence >= 0.8
    assert "learning rate 0.5" in top.summary and "×310" in top.summary and "from 0.835 to 40" in top.summary
    assert top.evidence["grad_norm_growth"] == 310.0
    assert top.next_check == CATALOGUE["cause.learning_rate_too_high"].next_check


def test_moderate_growth_is_weaker_and_high_update_ratio_counts():
    weak = by_code(rank_causes("training.exploding_gradients",
                               ev(grad_norm_history=[1.0, 1.0, 1.1, 1.0, 4.0])), "cause.learning_rate_too_high")
    strong = by_code(rank_causes("training.exploding_gradients",
                                 ev(grad_norm_history=[1.0, 1.0, 1.1, 1.0, 40.0])), "cause.learning_rate_too_high")
    assert weak.confidence < strong.confidence
    ratio = rank_causes("training.update_ratio", ev(update_ratio_history=[1e-3, 2e-3, 0.15]))
    assert codes(ratio) == ["cause.learning_rate_too_high"] and "0.15 of the weights" in ratio[0].summary


def test_steady_training_does_not_blame_the_learning_rate():
    assert rank_causes("training.loss_spike", ev()) == []
    assert "cause.learning_rate_too_high" not in codes(rank_causes("training.non_finite_loss", ev()))


# -- unstable operation --------------------------------------------------------------------------------------

def test_loss_producer_is_an_unstable_loss():
    fault = ModuleFault(name="<loss>", type="nll_of_probs", phase="forward",
                        inputs=[stats(min=0.0, max=1.0, abs_max=1.0, mean=0.33)],
                        outputs=[TensorStats(shape=[], dtype="float32", finite=False, inf=1)])
    causes = rank_causes("training.non_finite_loss", ev(module_fault=fault, loss_finite=False))
    assert causes[0].code == "cause.unstable_loss" and causes[0].confidence >= 0.8
    assert "nll_of_probs" in causes[0].summary and "reaches 0" in causes[0].summary


def test_log_module_with_zero_inputs_and_exp_with_large_inputs():
    log_fault = ModuleFault(name="encoder.2", type="Log", phase="forward", inputs=[stats(min=0.0, max=3.1)],
                            outputs=[stats(finite=False, inf=8, min=-2.0, max=1.1)])
    top = rank_causes("training.non_finite_activations", ev(module_fault=log_fault))[0]
    assert top.code == "cause.unstable_loss" and "'encoder.2' (Log)" in top.summary and "8 Inf" in top.summary
    exp_fault = ModuleFault(name="head", type="ExpActivation", phase="forward",
                            inputs=[stats(min=-3.0, max=120.0, abs_max=120.0)], outputs=[stats(finite=False, inf=2)])
    top = rank_causes("training.non_finite_activations", ev(module_fault=exp_fault))[0]
    assert top.code == "cause.unstable_loss" and "exp overflows" in top.summary


def test_backward_producer_at_zero_is_unstable():
    fault = ModuleFault(name="3", type="Sqrt", phase="backward", inputs=[stats(min=0.0, max=2.0)],
                        outputs=[stats(finite=False, inf=8)])
    top = rank_causes("training.non_finite_gradients", ev(module_fault=fault))[0]
    assert top.code == "cause.unstable_loss" and "backward of module '3' (Sqrt)" in top.summary


def test_no_module_fault_or_a_passed_on_value_is_not_an_unstable_operation():
    assert "cause.unstable_loss" not in codes(rank_causes("training.non_finite_loss", ev()))
    passed_on = ModuleFault(name="fc", type="Linear", phase="forward", inputs=[stats(finite=False, nan=3)],
                            outputs=[stats(finite=False, nan=9)])
    assert "cause.unstable_loss" not in codes(rank_causes("training.non_finite_loss", ev(module_fault=passed_on)))


# -- corrupt samples -----------------------------------------------------------------------------------------

def test_non_finite_input_samples_are_corrupt():
    sample = SampleFault(indices=[7], method="per-sample", input_non_finite=True, artifact="/tmp/a-nonfinite.pt")
    causes = rank_causes("training.non_finite_loss", ev(sample_fault=sample, loss_finite=False))
    assert causes[0].code == "cause.corrupt_input_sample" and causes[0].confidence >= 0.9
    assert "sample [7]" in causes[0].summary and "/tmp/a-nonfinite.pt" in causes[0].summary
    assert codes(causes).count("cause.corrupt_input_sample") == 1
    assert "cause.bad_initialisation" not in codes(rank_causes("training.non_finite_loss",
                                                               ev(step=1, sample_fault=sample)))


def test_a_few_bad_samples_are_suspect_but_many_are_not():
    few = rank_causes("training.loss_spike", ev(sample_fault=SampleFault(indices=[3, 9], method="bisection")))
    assert codes(few) == ["cause.corrupt_input_sample"] and "samples [3, 9]" in few[0].summary
    assert 0.4 < few[0].confidence < 0.7
    many = SampleFault(indices=list(range(20)), method="per-sample")
    assert rank_causes("training.loss_spike", ev(sample_fault=many)) == []


# -- low precision -------------------------------------------------------------------------------------------

def test_float16_near_max_without_scaler_is_an_overflow():
    fault = ModuleFault(name="mlp.fc2", type="Linear", phase="forward",
                        inputs=[TensorStats(shape=[8, 64], dtype="float16", min=-300.0, max=310.0, abs_max=310.0)],
                        outputs=[TensorStats(shape=[8, 64], dtype="float16", finite=False, inf=5, min=-61000.0,
                                             max=64000.0, abs_max=64000.0)])
    e = ev(module_fault=fault, autocast_dtype="float16", grad_scaler=False)
    top = rank_causes("training.non_finite_activations", e)[0]
    assert top.code == "cause.low_precision_overflow" and top.confidence >= 0.8
    assert "6.4e+04" in top.summary and "65504" in top.summary and "without a GradScaler" in top.summary
    scaled = by_code(rank_causes("training.non_finite_activations", ev(module_fault=fault, autocast_dtype="float16",
                                                                       grad_scaler=True)), "cause.low_precision_overflow")
    assert scaled.confidence < top.confidence


def test_float32_training_is_never_a_half_precision_overflow():
    fault = ModuleFault(name="fc", type="Linear", phase="forward", inputs=[stats(abs_max=7e4, min=-7e4, max=7e4)],
                        outputs=[stats(finite=False, inf=3)])
    assert "cause.low_precision_overflow" not in codes(rank_causes("training.non_finite_activations",
                                                                   ev(module_fault=fault)))
    small = ModuleFault(name="fc", type="Linear", phase="forward",
                        inputs=[TensorStats(dtype="bfloat16", min=-3.0, max=3.0, abs_max=3.0)],
                        outputs=[TensorStats(dtype="bfloat16", finite=False, nan=1)])
    assert "cause.low_precision_overflow" not in codes(rank_causes("training.non_finite_activations",
                                                                   ev(module_fault=small, param_dtype="bfloat16")))


# -- early failure -------------------------------------------------------------------------------------------

def test_failure_in_the_first_steps_is_a_bad_initialisation():
    causes = rank_causes("training.non_finite_loss", ev(step=1, loss_history=[], grad_norm_history=[]))
    assert codes(causes) == ["cause.bad_initialisation"] and "step 1" in causes[0].summary
    assert "cause.bad_initialisation" not in codes(rank_causes("training.non_finite_loss", ev(step=3)))


# -- accumulating gradients ----------------------------------------------------------------------------------

def test_linear_grad_growth_with_flat_loss_is_missing_zero_grad():
    grads = [0.5 * (i + 1) + (0.02 if i % 2 else -0.02) for i in range(12)]
    losses = [1.0 + (0.01 if i % 2 else -0.01) for i in range(12)]
    causes = rank_causes("training.missing_zero_grad", ev(grad_norm_history=grads, loss_history=losses))
    assert codes(causes) == ["cause.missing_zero_grad"] and causes[0].confidence >= 0.8
    assert "0.48 → 6.02 over 12 steps" in causes[0].summary and "flat" in causes[0].summary
    exploding = rank_causes("training.exploding_gradients", ev(grad_norm_history=grads, loss_history=losses))
    assert "cause.missing_zero_grad" in codes(exploding)


def test_noisy_or_exponential_grads_are_not_missing_zero_grad():
    assert rank_causes("training.missing_zero_grad", ev()) == []
    exponential = [2.0 ** i for i in range(10)]
    assert rank_causes("training.missing_zero_grad", ev(grad_norm_history=exponential)) == []
    rising_loss = [1.0 + 0.5 * i for i in range(12)]  # linear grads alone do not explain another finding
    grads = [0.5 * (i + 1) for i in range(12)]
    assert "cause.missing_zero_grad" not in codes(rank_causes("training.exploding_gradients",
                                                              ev(grad_norm_history=grads, loss_history=rising_loss)))


# -- optimizer -----------------------------------------------------------------------------------------------

def test_parameters_missing_from_the_optimizer():
    missing = ["head.weight", "head.bias"]
    top = rank_causes("training.parameters_not_in_optimizer", ev(not_in_optimizer=missing))
    assert codes(top) == ["cause.params_not_in_optimizer"] and "'head.weight'" in top[0].summary
    frozen = rank_causes("training.frozen_parameters",
                         ev(not_in_optimizer=missing, frozen_parameters=["head.weight", "head.bias", "emb.weight"]))
    assert codes(frozen) == ["cause.params_not_in_optimizer"] and "2 of the 3 frozen" in frozen[0].summary


def test_frozen_parameters_all_in_the_optimizer_are_not_blamed_on_it():
    assert rank_causes("training.frozen_parameters", ev(frozen_parameters=["emb.weight"])) == []
    assert rank_causes("training.frozen_parameters",
                       ev(frozen_parameters=["emb.weight"], not_in_optimizer=["other.bias"])) == []


# -- labels --------------------------------------------------------------------------------------------------

def test_collapsed_predictions_at_the_baseline_loss_mean_misaligned_labels():
    flat = [4.02, 3.98, 4.01, 4.0, 3.99, 4.01, 4.0, 4.0]
    e = ev(loss_history=flat, prediction_std=0.03, target_std=2.0)
    for code in ("training.prediction_collapse", "training.loss_plateau"):
        top = rank_causes(code, e)[0]
        assert top.code == "cause.label_misalignment" and top.confidence >= 0.8
        assert "1.5% as much" in top.summary and "baseline 4" in top.summary


def test_spread_predictions_are_not_label_misalignment():
    assert rank_causes("training.prediction_collapse", ev(prediction_std=1.5, target_std=2.0)) == []
    assert rank_causes("training.loss_plateau", ev()) == []


# -- the table -----------------------------------------------------------------------------------------------

def test_unknown_codes_and_every_rule_code_exists():
    assert rank_causes("schema.missing_column", ev(step=0)) == []
    assert rank_causes("training.overfitting", ev(step=0)) == []
    for code in RULES:
        assert CATALOGUE[code].kind == "finding"


def test_ranking_is_ordered_and_combines_rules():
    sample = SampleFault(indices=[5], method="per-sample", input_non_finite=False)
    fault = ModuleFault(name="2", type="Log", phase="forward", inputs=[stats(min=0.0, max=1.0)],
                        outputs=[stats(finite=False, inf=8)])
    causes = rank_causes("training.non_finite_loss",
                         ev(step=1, module_fault=fault, sample_fault=sample, loss_history=[], grad_norm_history=[]))
    assert codes(causes)[0] == "cause.unstable_loss"
    assert set(codes(causes)) == {"cause.unstable_loss", "cause.corrupt_input_sample", "cause.bad_initialisation"}
    assert [c.confidence for c in causes] == sorted((c.confidence for c in causes), reverse=True)
