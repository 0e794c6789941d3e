"""Every diagnostic code this package can emit, with its explanation in words a data scientist understands.

Codes are stable: they are matched by alerting rules and dashboards, so a code is never renamed or reused.
`docs/diagnostics.md` is generated from this table (`mlguard explain --markdown`) and a test
checks they agree. The report model refuses a code that is not listed here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from mlguard_orchestration.errors import SpecError, did_you_mean, suggestion


class Entry(BaseModel):
    """One documented code."""

    model_config = ConfigDict(frozen=True)

    code: str
    kind: Literal["finding", "cause", "change"]
    title: str
    explanation: str
    next_check: str
    fix: str


def _f(code: str, title: str, explanation: str, next_check: str, fix: str) -> Entry:
    return Entry(code=code, kind="finding", title=title, explanation=explanation, next_check=next_check, fix=fix)


def _c(code: str, title: str, explanation: str, next_check: str, fix: str) -> Entry:
    return Entry(code=code, kind="cause", title=title, explanation=explanation, next_check=next_check, fix=fix)


def _ch(code: str, title: str, explanation: str, next_check: str, fix: str) -> Entry:
    return Entry(code=code, kind="change", title=title, explanation=explanation, next_check=next_check, fix=fix)


_ENTRIES: list[Entry] = [
    # -- guard itself -------------------------------------------------------------------------------------
    _f("guard.source_error", "The guard could not read the data",
       "The guard failed before it could judge the data: a file was missing or unreadable, a parquet file was "
       "corrupt, or the SQL failed. This says nothing about whether the data is good, and a retry may help "
       "(e.g. when an upstream file was not written yet).",
       "Read the error message: it names the source at fault.", "Fix the path or connection, or retry later."),
    _f("guard.spec_error", "The guard's spec asks for something impossible",
       "A check names a column or table that never existed, a threshold is invalid, or the spec file does not "
       "parse. Retrying will not help: the guard's configuration must change.",
       "Read the error message: it names the check, the field and the closest valid name.",
       "Fix the spec (or the reference it was built from)."),
    _f("guard.internal_error", "The guard failed unexpectedly",
       "Something went wrong inside mlguard itself: neither your data nor your spec is known to be at fault. "
       "The run is reported as an error (not as failed data) so the pipeline is not misled.",
       "Read the error message for the exception; re-run with the same data to see whether it repeats.",
       "Report it to the mlguard-orchestration maintainers with the message; pin the previous version meanwhile."),
    # -- schema -------------------------------------------------------------------------------------------
    _f("schema.missing_column", "A required column is missing",
       "A column the checks (or the reference profile) expect is not in the data. Models and joins downstream "
       "will fail or, worse, silently use defaults.",
       "Compare the upstream query or file against the expected schema; look at the 'did you mean' hint.",
       "Restore the column, or update the spec/reference if the rename was intended."),
    _f("schema.unexpected_column", "A new column appeared",
       "The data has a column the reference profile did not have. Often harmless, sometimes the other half of a "
       "rename.", "Check whether an expected column disappeared at the same time.",
       "Accept it by refreshing the reference, or drop it upstream."),
    _f("schema.type_mismatch", "A column has the wrong type",
       "The column's logical type differs from the one expected (e.g. numbers arriving as text). Comparisons and "
       "joins on it misbehave: '10' < '9' for strings, and string keys never match integer keys.",
       "Look at how the upstream step reads or casts this column.",
       "Cast explicitly upstream, or fix the file format that lost the type."),
    _f("schema.null_rate", "Too many missing values",
       "More values are missing (NULL) than allowed. Imputation downstream will quietly fill them with a "
       "constant, shrinking the feature's signal.",
       "Find which partition or source the nulls come from (group the null rate by date or source).",
       "Repair the upstream extract or join that produced the nulls."),
    _f("schema.out_of_range", "Values outside the allowed range",
       "Some values fall outside the declared minimum/maximum: negative ages, probabilities above 1, or a unit "
       "change that multiplied everything.", "Look at the smallest and largest values and when they started.",
       "Fix the upstream transformation or widen the range if the values are legitimate."),
    _f("schema.not_allowed", "Values outside the allowed set",
       "A column that should only take certain values has others.",
       "List the unexpected values and their counts.",
       "Map the new values upstream, or add them to the allowed set if legitimate."),
    _f("schema.pattern_mismatch", "Values do not match the expected pattern",
       "Some text values do not match the declared regular expression (e.g. an id format changed).",
       "Inspect a few non-matching values (enable sample values) and find where the format changed.",
       "Normalise the format upstream or update the pattern."),
    _f("schema.not_unique", "Values that should be unique are repeated",
       "A column (or set of columns) declared unique has repeated values. Joins on it will multiply rows.",
       "Count rows per key and look at the most repeated keys.",
       "Deduplicate upstream or fix the join that duplicated them."),
    _f("schema.non_finite", "NaN or infinite numbers",
       "A numeric column contains NaN or ±Inf. Most models turn these into NaN losses or silently skip rows.",
       "Find the arithmetic upstream that divides by zero or takes log of zero.",
       "Guard the division/log upstream, or map non-finite values to NULL and impute explicitly."),
    # -- volume -------------------------------------------------------------------------------------------
    _f("volume.row_count", "Row count outside bounds",
       "The table has fewer or more rows than allowed. An empty extract trains on nothing; a multiplied one "
       "over-weights duplicated data.", "Check the upstream extract's filters and the partition it read.",
       "Re-run the extract for the right partition, or adjust the bounds."),
    _f("volume.row_count_change", "Row count changed sharply against the reference",
       "This batch's row count is far from the reference batch's, which usually means a missing or doubled "
       "partition rather than a real change in the business.",
       "Compare the partitions or dates present in this batch with the reference.",
       "Re-run the extract; refresh the reference only if the change is real."),
    _f("volume.duplicate_rows", "Duplicate rows",
       "Identical rows appear more than once, typically a partition loaded twice or a retried append.",
       "Count duplicates per partition/date to find the one loaded twice.",
       "Make the load idempotent (overwrite the partition) and deduplicate."),
    # -- joins --------------------------------------------------------------------------------------------
    _f("join.left_not_unique", "Join keys repeat on the left side",
       "The left table has repeated join keys although the declared relationship says they are unique.",
       "Group the left table by the key.", "Deduplicate the left side or declare the right relationship."),
    _f("join.right_not_unique", "Join keys repeat on the right side",
       "The right table has repeated join keys, so each left row matches several right rows and the join "
       "multiplies rows (fan-out).", "Find which columns distinguish the repeated right rows.",
       "Join on the full key, or aggregate the right side to one row per key first."),
    _f("join.fan_out", "The join multiplies rows",
       "The join produces more rows than the left table had. Training on it over-weights some entities and can "
       "leak labels across rows.", "Look at the ranked causes: usually a missing key column.",
       "Join on the full key, or aggregate the right side before joining."),
    _f("join.match_rate", "Too few rows find a match",
       "Only a small share of left rows find a partner on the right. A left join then fills features with NULL; "
       "an inner join silently drops most of the data.",
       "Compare a few keys from each side: type, prefix, padding, case, date alignment.",
       "Normalise the keys on one side so both use the same representation."),
    _f("join.orphans", "Keys without a partner",
       "Keys on one side have no partner on the other (e.g. labels for users without features).",
       "List the orphan keys' date range or source.", "Check the extracts cover the same period and population."),
    _f("join.null_keys", "Missing join keys",
       "Join key values are NULL. NULL never matches NULL in SQL, so these rows silently lose their partner.",
       "Find the upstream step that leaves the key empty.", "Fill or drop rows with missing keys before joining."),
    _f("join.key_type_mismatch", "Join keys have different types on each side",
       "The key is, for example, an integer on one side and text on the other. Depending on the engine the join "
       "fails, or casts and matches nothing.", "Look at the key's type in both sources.",
       "Cast both sides to the same type (and format) before joining."),
    # -- freshness ----------------------------------------------------------------------------------------
    _f("freshness.stale", "Data is older than allowed",
       "The newest timestamp is older than the run's logical date minus the allowed age: the extract read an old "
       "partition, or the upstream feed stopped.", "Check the upstream feed's last update and the partition read.",
       "Re-run after the upstream feed catches up, or fix the partition parameter."),
    _f("freshness.future", "Timestamps in the future",
       "Timestamps lie after the run's logical date. Usually a timezone mix-up, sometimes data from a later "
       "partition leaking in.", "Compare the offset in hours: a whole number of hours points at timezones.",
       "Convert timestamps to UTC at ingestion."),
    # -- drift --------------------------------------------------------------------------------------------
    _f("drift.numeric", "A numeric column's distribution moved",
       "The column's distribution differs from the reference by more than the allowed effect size (PSI). "
       "The decision uses effect size, not a p-value, so large batches do not raise false alarms.",
       "Compare the quantiles in the evidence; look at the ranked causes for a unit change.",
       "Fix the upstream change, or refresh the reference if the shift is real and expected."),
    _f("drift.categorical", "A categorical column's mix changed",
       "The share of categories differs from the reference by more than the allowed Jensen–Shannon distance.",
       "Compare category shares in the evidence.", "Fix the upstream mapping, or refresh the reference."),
    _f("drift.null_rate", "The share of missing values jumped",
       "The column is missing far more often than in the reference (a 'null explosion'), typically a broken join "
       "or a renamed upstream field.", "Check the upstream join and field names for this column.",
       "Repair the upstream step; do not impute over a broken feed."),
    _f("drift.unseen_categories", "Categories never seen in the reference",
       "Values appear that the reference never had. Encoders map them to 'unknown', so the model ignores them.",
       "Compare the new values with the reference's: case, whitespace and spelling changes are common.",
       "Normalise values upstream, or refresh the reference if the categories are genuinely new."),
    _f("drift.label", "The label distribution shifted",
       "The share of each label value differs from the reference by more than allowed. A shifted base rate "
       "changes calibration and can mean labels were joined or filtered wrongly.",
       "Check the label join and the filters on the label table.",
       "Fix the label pipeline; retrain with recalibration if the shift is real."),
    # -- time -----------------------------------------------------------------------------------------------
    _f("time.out_of_window", "Timestamps fall outside where the schedule puts them",
       "A time column's values lie outside the reference's time range moved to this run's logical date (with "
       "twice the reference's span of slack on each side). Scheduled data moves forward with each run, so "
       "values far outside are a break: an epoch number read in the wrong unit (everything in January 1970), "
       "a wrong year, or an old extract served again.",
       "Look at the observed range in the evidence next to the window; check how the column is parsed upstream.",
       "Fix the parsing or the extract; if the data really is from another period, run it with that logical date."),
    _f("time.hour_shift", "Timestamps moved by whole hours",
       "The column's hour-of-day profile matches the reference's only after moving it by a whole number of "
       "hours (two or more: one hour is what a daylight-saving change looks like). Timestamps were written or "
       "read in another timezone.",
       "Compare the hour-of-day counts in the evidence; check the timezone of the source and of the parser.",
       "Store timestamps in UTC (or with their offset) and convert local times at ingestion."),
    # -- leakage ------------------------------------------------------------------------------------------
    _f("leakage.row_overlap", "Test rows also appear in training",
       "Identical rows are in both train and test, so test scores overstate how the model generalises.",
       "Check how the split was made (random split after duplication?).", "Deduplicate before splitting."),
    _f("leakage.group_overlap", "The same entity is in train and test",
       "Rows of one group (e.g. one user) are on both sides of the split. The model can memorise the entity and "
       "test scores are inflated.", "Count shared group values.", "Split by group (GroupKFold-style)."),
    _f("leakage.target", "A feature predicts the label almost perfectly",
       "A single feature separates the label almost perfectly. Real predictive problems rarely allow this; "
       "usually the feature is computed from the label or after the outcome.",
       "Look at how the named feature is computed and when.", "Remove the feature or compute it point-in-time."),
    _f("leakage.point_in_time", "Feature time is at or after label time",
       "Features were computed at or after the moment the label was observed, so the model sees the future "
       "during training and fails in production.",
       "Look at the ranked causes: a constant offset in hours points at a timezone mismatch.",
       "Join features 'as of' strictly before the label time, in one timezone."),
    # -- training -----------------------------------------------------------------------------------------
    _f("training.non_finite_loss", "The loss became NaN or infinite",
       "The loss of a training step is NaN or ±Inf. Once it is, every gradient and then every weight becomes NaN; "
       "the guard skipped that step's update so the weights are still the last good ones.",
       "Look at the first module that produced a non-finite value and the offending samples in the report.",
       "Apply the top cause's fix; resume from the last checkpoint (the weights in memory are also still good)."),
    _f("training.non_finite_gradients", "Gradients became NaN or infinite",
       "The loss was finite but the gradients were not: the backward pass overflowed or divided by zero (e.g. "
       "sqrt or log near 0, an unclamped exp). The update was skipped.",
       "Look at the first module whose backward produced the non-finite gradient.",
       "Clamp the unstable operation, add an epsilon, or lower the learning rate."),
    _f("training.non_finite_weights", "Weights became NaN or infinite",
       "A parameter holds NaN/Inf: an update was applied from a bad step, or the weights were loaded corrupt.",
       "Check the checkpoint the run started from and whether a custom optimizer step bypassed the guard.",
       "Restore the last good checkpoint."),
    _f("training.non_finite_activations", "Activations became NaN or infinite",
       "A layer's output is NaN/Inf for finite inputs: the forward pass overflowed in that layer.",
       "Look at the named module's input and output statistics in the evidence.",
       "Normalise inputs, use a numerically stable formulation, or train in higher precision."),
    _f("training.exploding_gradients", "Gradients are exploding",
       "The gradient norm is far above its recent level (or an absolute limit): the next steps are likely to "
       "diverge or go NaN.", "Compare the learning rate and the per-layer gradient norms in the evidence.",
       "Lower the learning rate, add gradient clipping, or add normalisation."),
    _f("training.vanishing_gradients", "Gradients are vanishing",
       "Some layers receive gradients near zero for many steps, so they stop learning (deep nets without "
       "residuals/normalisation, saturated activations, dead ReLUs).", "Look at which layers are named.",
       "Use residual connections, normalisation, a different activation or a better initialisation."),
    _f("training.update_ratio", "Updates are out of proportion to the weights",
       "The size of each update relative to the weights is far from the usual ~1e-3: too large means the "
       "learning rate will blow up training, too small means nothing is learnt.",
       "Compare the update/weight ratios per layer in the evidence.", "Adjust the learning rate."),
    _f("training.loss_spike", "The loss spiked",
       "The loss jumped far above its recent robust range (median and MAD over a window), more than once — a "
       "single hard batch is tolerated.", "Look at the batches of the spikes and the gradient norm before them.",
       "Lower the learning rate or add warm-up/clipping; check the spiking batches for corrupt data."),
    _f("training.divergence", "The loss is diverging",
       "The loss keeps rising well above its best value: training is moving away from a solution.",
       "Look at the learning rate schedule and the gradient norms.", "Lower the learning rate."),
    _f("training.loss_plateau", "The loss does not decrease",
       "Over many steps the loss has not improved beyond noise: the model is not learning.",
       "Check that parameters receive gradients and are in the optimizer, and that labels match inputs.",
       "Raise the learning rate, fix the data/label pipeline, or check the loss function."),
    _f("training.overfitting", "The train/validation gap keeps widening",
       "Training keeps improving while validation gets worse: the model memorises the training set.",
       "Compare the train and validation curves in the evidence.",
       "Stop earlier, add regularisation or data, or check for duplicated training rows."),
    _f("training.dead_units", "Units that never fire",
       "A large share of a ReLU-family layer's units output zero for every sampled input, so they no longer "
       "learn.", "Look at the named layer's share of dead units.",
       "Lower the learning rate, use LeakyReLU/GELU, or fix the initialisation."),
    _f("training.saturated_activations", "Saturated activations",
       "Most outputs of a sigmoid/tanh layer sit at the flat ends of the curve, where gradients vanish.",
       "Look at the named layer's input scale.", "Normalise inputs or use a non-saturating activation."),
    _f("training.frozen_parameters", "Parameters that never change",
       "Trainable parameters did not change during training: they get no gradient, or their updates are zero.",
       "Check whether the named parameters are used in the forward pass and are in the optimizer.",
       "Add them to the optimizer, or mark them requires_grad=False on purpose."),
    _f("training.parameters_not_in_optimizer", "Trainable parameters missing from the optimizer",
       "Some parameters require gradients but no optimizer group holds them, so they never train.",
       "Compare model.parameters() with the optimizer's param_groups.",
       "Build the optimizer from model.parameters() after the model is complete."),
    _f("training.zero_updates", "Updates reached zero",
       "Step after step the update is exactly zero: the learning rate is 0 in every parameter group (a schedule "
       "that ended too early), or every gradient is 0 while the loss is not (clipped or multiplied to 0, or "
       "blocked by a layer that passes nothing). Training goes on and learns nothing.",
       "Print the learning rate and the gradient norm of the last steps; check the schedule's length and the "
       "clipping threshold.", "Size the schedule for the run, fix the clipping, or revive the blocking layer."),
    _f("training.missing_zero_grad", "Gradients keep accumulating",
       "The gradient norm grows step after step in a way typical of gradients never being reset: "
       "optimizer.zero_grad() is missing, so every step adds to the last.",
       "Look for zero_grad() in the training loop.", "Call optimizer.zero_grad() once per step."),
    _f("training.prediction_collapse", "Predictions collapsed",
       "The model predicts nearly the same value for every input while the targets vary: it has learnt only the "
       "mean (or one class).", "Compare the spread of predictions and targets in the evidence.",
       "Check labels are aligned with inputs, lower the learning rate, or fix dead layers."),
    _f("training.prediction_explosion", "Predictions exploded",
       "Predictions are orders of magnitude larger than the targets.",
       "Look at the scale of inputs and targets and at the last layer.",
       "Normalise targets/inputs, lower the learning rate."),
    # -- preflight ------------------------------------------------------------------------------------------
    _f("preflight.failed", "A preflight check failed",
       "A fast check that runs before the expensive training job failed. The evidence names which one: model "
       "build, output shape, initial loss, gradient flow, overfitting one batch, checkpoint round trip, "
       "determinism, or the data loader's batches.",
       "Read the failing item's message: each explains what it measured and what it expected.",
       "Fix the named problem before launching the full run."),
    # -- evaluate -> register gate -------------------------------------------------------------------------
    _f("gate.metric_threshold", "A model metric misses its threshold",
       "An evaluation metric is below its declared minimum (or above its maximum, for errors such as log loss "
       "or RMSE). The model is not good enough to register.",
       "Compare the metric with the champion's and with the previous runs; look at the slices and the "
       "'what changed' list.", "Fix the training run (data, features, hyper-parameters) or revisit the threshold."),
    _f("gate.champion_regression", "The model is worse than the registered champion",
       "On the same evaluation data, a metric is worse than the currently registered model's by more than the "
       "tolerance. Registering it would replace a better model.",
       "Read the 'what changed' list: code, packages and input data since the champion's run.",
       "Keep the champion; fix the regression before registering."),
    _f("gate.champion_other_data", "The champion was measured on different evaluation data",
       "The champion's metrics come from another evaluation set (different row count or targets), so comparing "
       "them with this model's would be comparing apples with oranges. The comparison was skipped.",
       "Check whether the evaluation set was refreshed on purpose.",
       "Re-evaluate the champion on this evaluation data and pass its metrics as champion=…, or keep the "
       "evaluation set fixed."),
    _f("gate.slice", "A data slice is badly served",
       "The model is much worse on one slice (a country, a plan, a segment) than overall, or below the "
       "slice threshold, although the overall metric may look fine. Only slices large enough, and bad even at "
       "the optimistic end of their confidence interval, are reported.",
       "Look at the worst slices and their sizes; compare the slice's share in training.",
       "Collect or up-weight data for the slice, add features that matter for it, or train a dedicated model."),
    _f("gate.collapsed_predictions", "Predictions have collapsed to (almost) one value",
       "The predictions barely vary compared with the targets: the model predicts about the same value for "
       "everyone, whatever its inputs.", "Compare the prediction spread with the target spread in the evidence.",
       "Check that features reach the model at inference and that training did not diverge or over-regularise."),
    _f("gate.exploded_predictions", "Predictions are non-finite or far outside the target range",
       "Some predictions are NaN/Inf, or their spread is orders of magnitude wider than the targets': a missing "
       "inverse transform, a unit mix-up, or a numerically broken model.",
       "Look at the prediction range and the share of non-finite values in the evidence.",
       "Apply the missing inverse transform / unit conversion, or fix the numerical problem in the model."),
    _f("gate.single_class", "Only one class is predicted",
       "Every prediction is the same class although the targets hold several: the model has learned to answer "
       "the majority class.", "Compare the class shares of the targets with the predicted ones.",
       "Re-weight or re-sample the classes, tune the decision threshold, or check the labels used in training."),
    _f("gate.no_correlation", "Predictions are unrelated to the targets",
       "Predictions and targets are not correlated, even at the optimistic end of the confidence interval: "
       "the model's output carries no information about the outcome on this evaluation data.",
       "Check that predictions and targets are aligned row by row (same order, same join key).",
       "Fix the alignment, or the training data if the labels were shuffled."),
    _f("gate.overfit", "Training and validation scores are far apart",
       "The model is much better on its training data than on the validation data: it memorised the training "
       "set instead of learning what generalises.", "Compare train and validation metrics in the evidence.",
       "Regularise, simplify the model, add data, or stop training earlier."),
    _f("gate.too_good", "Results are too good to be true",
       "The metric jumped far beyond the champion or is near-perfect on a task known to be hard. Before "
       "celebrating, the gate ran the leakage checks on the train/evaluation data it was given; their findings "
       "follow.", "Read the leakage findings: a feature that predicts the label alone, rows or entities shared "
       "between train and evaluation.", "Remove the leak and re-evaluate; raise max_plausible only if the "
       "result holds without it."),
    # -- causes -------------------------------------------------------------------------------------------
    _c("cause.missing_join_key", "The join is missing key column(s)",
       "One side is unique only on a wider set of columns than the join uses, so each row matches several rows "
       "on the other side.", "Group that side by the current key plus the named column(s).",
       "Add the named column(s) to the join key, or filter the right side to one value of them."),
    _c("cause.key_type_mismatch", "Join keys differ in type",
       "The keys hold the same values but in different types (e.g. 123 vs '123').",
       "Cast both keys to text and compare the match rate.", "Cast one side to the other's type before joining."),
    _c("cause.key_format_mismatch", "Join keys differ in format",
       "The keys match once a formatting difference is removed: a prefix, zero padding, letter case or "
       "whitespace.", "Apply the named normalisation to both sides and re-check the match rate.",
       "Normalise the key upstream so both sides use one representation."),
    _c("cause.key_time_shift", "Join keys are shifted in time",
       "Date or timestamp keys match once one side is shifted by a whole day or hour: usually a timezone or "
       "an 'as of end of day' convention difference.", "Shift one side by the named amount and re-check.",
       "Align both sides to one timezone and one date convention."),
    _c("cause.unit_change", "A unit changed",
       "The values are a near-exact conversion factor away from the reference: a power of ten (dollars became "
       "cents, a fraction became a percent), a time factor (minutes became seconds), miles and kilometres, "
       "pounds and kilograms, feet and metres, inches and centimetres, or Fahrenheit and Celsius.", "Compare the column's median with the reference's median.",
       "Convert back to the reference unit upstream, and name the unit in the column (e.g. _usd)."),
    _c("cause.location_shift", "Values shifted by a constant",
       "The whole distribution moved by roughly the same amount: an offset, a changed baseline, or a different "
       "reference date.", "Compare the quantiles in the evidence.", "Find the upstream change that added the offset."),
    _c("cause.epoch_unit", "An epoch number was read in the wrong unit",
       "The timestamps' epoch values are a factor of 1,000 (or a million, or a billion) away from the "
       "reference's: seconds were read as milliseconds (everything lands in January 1970), or milliseconds as "
       "seconds (far in the future).", "Look at the raw numbers upstream and the unit the parser assumes.",
       "Pass the unit explicitly when converting (e.g. pandas.to_datetime(x, unit='s'))."),
    _c("cause.numbers_as_text", "Numbers arrive as text",
       "The column holds text although numbers were expected, and almost all of its values parse as numbers: "
       "a CSV or JSON hop, or a cast, lost the type. Sorting, ranges and joins on it now misbehave.",
       "Check how the upstream step writes and reads the column (quoted numbers, a string dtype).",
       "Cast the column to a number upstream, or give the reader an explicit schema."),
    _c("cause.times_as_text", "Timestamps arrive as text",
       "The column holds text although timestamps were expected, and almost all of its values parse as "
       "timestamps: a CSV or JSON hop lost the type.",
       "Check how the upstream step writes and reads the column.",
       "Parse the column to a timestamp upstream (with its timezone), or give the reader an explicit schema."),
    _c("cause.timezone_mismatch", "Timestamps are in different timezones",
       "Shifting one timestamp column by a whole number of hours removes the violation: the two sides were "
       "recorded in different timezones.", "Convert both columns to UTC and re-run the check.",
       "Store and join timestamps in UTC; convert local times at ingestion."),
    _c("cause.category_normalisation", "Category spelling changed",
       "The new categories equal reference categories once case or whitespace is ignored: an upstream "
       "normalisation changed.", "Lower-case and trim the column and re-check.",
       "Normalise the column upstream (or in the feature step) to the reference spelling."),
    _c("cause.category_dropped", "Categories disappeared",
       "Values that made up a real share of the reference are absent from the batch: a filter, a failed "
       "upstream source (one country, one shop) or a changed mapping dropped them.",
       "Count the rows per value upstream of this step; look for a new filter or a failed source.",
       "Restore the missing source or filter; if the values were retired on purpose, accept the change."),
    _c("cause.renamed_column", "A column was renamed",
       "A missing column has a new near-namesake with the same kind of values: the upstream field was renamed.",
       "Compare the two names in the upstream schema.", "Rename it back, or update the consumers and the reference."),
    _c("cause.duplicated_partition", "A partition was loaded twice",
       "Most duplicated rows are exact copies, which is what a re-run append or a double-read partition produces.",
       "Count rows per date/partition.", "Make the load idempotent (overwrite, not append) and deduplicate."),
    _c("cause.duplicates_before_split", "Duplicate rows were split at random",
       "The data already held copies of the same rows when it was split by row, so copies landed on both sides.",
       "Count duplicate rows in the table before the split.", "Deduplicate first, then split (by entity)."),
    _c("cause.rows_copied_across_split", "Rows were copied across the split",
       "Rows of one side also appear, unchanged, on the other although neither side repeats rows itself: a "
       "step appended or re-sampled rows after the split.", "Look at the steps between the split and this guard.",
       "Split once, at the end, and write both sides in the same step."),
    _c("cause.row_level_split", "The split assigned rows, not entities",
       "Rows of the same entity (user, account, patient) were assigned to train and test independently, so the "
       "model is tested on entities it has already seen.", "Count shared entity ids between the sides.",
       "Split by entity: hash the group id, or use a group-aware splitter."),
    _c("cause.feature_from_outcome", "The feature is computed from the outcome",
       "The feature carries the label itself: it is derived from it, recorded after the outcome, or joined "
       "from a table that already knew the result.", "Trace how and when the named feature is computed.",
       "Drop the feature, or recompute it only from data available before the prediction time."),
    _c("cause.learning_rate_too_high", "The learning rate is too high",
       "Gradient norms and updates grew sharply just before the failure: steps overshoot and training diverges.",
       "Re-run the last steps with a 10× lower learning rate.",
       "Lower the learning rate, add warm-up and gradient clipping."),
    _c("cause.zero_learning_rate", "The learning rate reached 0",
       "The learning-rate schedule reached 0 (or the optimizer was built with 0) while training goes on: every "
       "later step computes gradients and changes nothing.",
       "Print the schedule's learning rate over the planned steps (preflight's lr_schedule does).",
       "Size the schedule for the planned steps (T_max, total_iters, total_steps), or step it once per epoch if "
       "it counts epochs."),
    _c("cause.gradients_zeroed", "Gradients are zeroed before the optimizer step",
       "Every gradient that reaches the optimizer is exactly 0 while the loss is not: clipping with max_norm=0, "
       "a multiplication by 0, or a detached path between the loss and the parameters.",
       "Print the gradient norm right after backward() and again just before the optimizer step.",
       "Fix the clipping threshold or the code that scales or detaches the gradients."),
    _c("cause.dead_activations", "A layer passes no signal",
       "Every unit of an activation (ReLU) layer outputs 0 for every sample, because the layer that feeds it puts "
       "every pre-activation below 0 (typically a large negative bias, or weights a big update pushed there). "
       "Nothing passes forward and no gradient passes back, so the layers before it cannot learn.",
       "Look at the named layer's bias and weights in the evidence; print its pre-activations on a batch.",
       "Re-initialise the named layer (default or Kaiming init, bias at 0), lower the learning rate, or use "
       "LeakyReLU/GELU."),
    _c("cause.unstable_loss", "A numerically unstable operation",
       "The first non-finite value came from a function that is unstable for some inputs: log of 0, division by "
       "0, exp of a large number, sqrt near 0.", "Look at the named module's input range in the evidence.",
       "Use the stable form (log_softmax, BCEWithLogits, logsumexp), clamp inputs or add an epsilon."),
    _c("cause.corrupt_input_sample", "A corrupt input sample",
       "The batch contains samples with NaN/Inf (or absurd) values; the named sample indices reproduce the failure "
       "(the tensors are saved to the artifact file).", "Load the artifact and inspect the named samples.",
       "Filter or repair the samples upstream; add a data guard on the training set."),
    _c("cause.low_precision_overflow", "Half-precision overflow",
       "Values exceeded what float16/bfloat16 can hold in a layer running in reduced precision without loss "
       "scaling.", "Re-run the step in float32 and compare.",
       "Use torch.autocast with a GradScaler, or keep the named layer in float32."),
    _c("cause.bad_initialisation", "A bad initialisation",
       "The problem exists from the very first steps: activations or gradients are already far out of range.",
       "Look at the first step's statistics.", "Use the layer's default or a scaled (Xavier/Kaiming) initialisation."),
    _c("cause.missing_zero_grad", "zero_grad() is missing",
       "Gradients grow roughly linearly with the step count, which is what accumulating gradients look like.",
       "Search the training loop for optimizer.zero_grad().", "Call optimizer.zero_grad() once per step."),
    _c("cause.params_not_in_optimizer", "Parameters are not in the optimizer",
       "The parameters that never change are missing from every optimizer group.",
       "Compare model.named_parameters() with optimizer.param_groups.",
       "Create the optimizer after building the whole model, from model.parameters()."),
    _c("cause.label_misalignment", "Labels do not match the inputs",
       "The model cannot do better than predicting the average: the labels look unrelated to the inputs, as "
       "after shuffling one but not the other.", "Check that features and labels are joined/shuffled together.",
       "Fix the join or the shuffling so each label stays with its input."),
    _c("cause.nondeterminism", "A source of nondeterminism",
       "Two runs with the same seed differ: unseeded DataLoader workers or shuffling, or nondeterministic kernels.",
       "Seed the generator passed to the DataLoader and its worker_init_fn; check cudnn.benchmark/deterministic.",
       "Pass a seeded torch.Generator to the DataLoader and set torch.use_deterministic_algorithms(True)."),
    _c("cause.empty_extract", "The extract returned nothing",
       "The table is empty: the upstream query's filter, date parameter or source returned no rows.",
       "Run the upstream query by hand for this logical date.", "Fix the partition parameter or wait for the source."),
    _c("cause.upstream_nulls", "An upstream step left values empty",
       "Values of this column went missing together: a left join that stopped matching, or a field that "
       "disappeared from the source.", "Check whether the null rows share a source, date or join partner.",
       "Repair the join or field mapping upstream."),
    _c("cause.stale_source", "The source stopped updating",
       "The newest data is much older than the run: the source feed or the upstream task did not deliver.",
       "Check the upstream feed's status and last delivery.", "Re-run once the source has delivered."),
    _c("cause.prior_only", "The model predicts the base rate",
       "Predictions sit at about the targets' mean: the model fell back to the prior, as when its features are "
       "constant or missing at inference, or training diverged to the bias alone.",
       "Look at the features the model receives at inference: are they constant, NULL or imputed?",
       "Restore the features at inference; check the training run's loss curve."),
    _c("cause.majority_class", "The model answers the majority class",
       "The one class predicted is the targets' most frequent one: with imbalanced classes, predicting it "
       "always is a cheap way to a good-looking accuracy.", "Look at the class shares in the evidence.",
       "Use class weights or re-sampling, and judge the model by AUC or per-class recall."),
    _c("cause.output_scale", "The predictions are on another scale",
       "The predictions' spread is a large factor away from the targets': the model outputs a transformed "
       "target (log, standardised, another unit) that was not transformed back.",
       "Compare the predictions' range with the targets' in the evidence.",
       "Apply the inverse transform of the target before evaluating and serving."),
    _c("cause.memorisation", "The model memorised its training data",
       "Training scores are near-perfect while validation lags far behind: the model is too flexible for the "
       "amount of data, or trained too long.", "Plot train and validation metrics per epoch.",
       "Regularise, reduce capacity, add data or stop early."),
    _c("cause.slice_rare_in_training", "The slice is rare in the training data",
       "The badly served slice is a small share of the training rows, so the model saw too few examples of it.",
       "Compare the slice's share of training rows with its share of the evaluation rows.",
       "Collect more data for the slice, or up-weight it during training."),
    _c("cause.feature_not_used", "A predictive column does not reach the model",
       "The model's errors (target minus prediction) still correlate with a column of the evaluation table, "
       "overall or within the badly served slice: a model that used the column would have left no such trace. "
       "The column was dropped from the features, or arrives missing, constant or wrong at inference (for "
       "every row, or for one slice).",
       "Compare the model's feature list with the columns, and the feature values it receives at inference "
       "for the rows named with what the table holds.",
       "Restore the column in the features, or fix the inference-time lookup that loses it."),
    # -- what changed since the last good run ------------------------------------------------------------
    _ch("change.python", "The Python version changed",
        "The run used another Python version than the last passing run: library behaviour and wheels differ.",
        "Check which packages were rebuilt for the new Python.", "Pin the Python version of the runtime image."),
    _ch("change.package_version", "A package was upgraded, downgraded, installed or removed",
        "A key package (torch, numpy, pandas, pyarrow, duckdb, the orchestrator, or your own) has another "
        "version than in the last passing run. New versions change defaults, numerics and parsing.",
        "Read the package's changelog between the two versions; re-run with the old version pinned.",
        "Pin the version that worked, or adapt the code to the new one."),
    _ch("change.hardware", "The hardware changed",
        "The run landed on another CPU model, GPU, CUDA version, core count or memory size. Numerics (TF32, "
        "fused kernels), memory limits and timing differ between machines.",
        "Re-run on the previous machine type, or compare the numerics of both.",
        "Pin the machine type, or make the computation robust to it."),
    _ch("change.code", "The pipeline's code changed",
        "The file that defines the pipeline is at another git commit, or was edited, since the last passing run.",
        "Diff the two commits (the report names both).", "Revert or fix the change."),
    _ch("change.schema", "An input's schema changed",
        "An input gained, lost or retyped columns (or appeared/disappeared) since the last passing run: a "
        "typical upstream change behind join fan-outs, missing features and type errors.",
        "Ask the upstream owner about the change.", "Adapt the pipeline to the new schema, or restore the old one."),
    _ch("change.row_count", "An input's row count changed",
        "An input has markedly more or fewer rows than in the last passing run: a missing or doubled partition, "
        "a changed filter, or a join that multiplies rows.", "Compare the partitions present in both runs.",
        "Re-run the extract, or fix the filter or join."),
]

CATALOGUE: dict[str, Entry] = {e.code: e for e in _ENTRIES}


def require(code: str, kind: str) -> str:
    """`code` when the catalogue documents it as a `kind` ('finding', 'cause', 'change'); ValueError otherwise
    (the report models call it: an undocumented code cannot reach a report)."""
    entry = CATALOGUE.get(code)
    if entry is None or entry.kind != kind:
        raise ValueError(f"{kind} code {code!r} is not in the catalogue (mlguard_orchestration/catalogue.py)")
    return code


def explain(code: str) -> Entry:
    """The catalogue entry for `code`; a SpecError with the closest code when it does not exist."""
    try:
        return CATALOGUE[code]
    except KeyError:
        hint = did_you_mean(code, CATALOGUE)
        raise SpecError(
            f"unknown diagnostic code {code!r}." + suggestion(hint)
            + " `mlguard explain --list` shows every code."
        ) from None


def render_markdown() -> str:
    """The catalogue as the Markdown page docs/diagnostics.md."""
    lines = [
        "# Diagnostic codes",
        "",
        "Every finding and cause mlguard reports carries one of these stable codes. This page is generated from",
        "`mlguard_orchestration/catalogue.py` (`mlguard explain --markdown > docs/diagnostics.md`);",
        "`mlguard explain CODE` prints the same text.",
        "",
    ]
    for kind, heading in (("finding", "Findings"), ("cause", "Causes"), ("change", "Changes since the last good run")):
        lines += [f"## {heading}", ""]
        for e in _ENTRIES:
            if e.kind != kind:
                continue
            lines += [f"### `{e.code}` — {e.title}", "", e.explanation, "",
                      f"- **Next check:** {e.next_check}", f"- **Fix:** {e.fix}", ""]
    return "\n".join(lines)
