"""Helpers and thresholds the cause rules share: numbers from histories, tensor summaries, names."""

from __future__ import annotations

import math
import statistics

from mlguard_orchestration.training.evidence import TensorStats

RECENT = 3  # the "last few steps" compared with the window before them
GROWTH_STRONG, GROWTH_WEAK = 10.0, 3.0
SPIKE_Z, SPIKE_RATIO = 6.0, 1.5
UPDATE_RATIO_HIGH = 1e-2
FEW_SAMPLES = 10
EARLY_STEP = 2
DTYPE_MAX = {"float16": 65504.0, "bfloat16": 3.3895e38, "float32": 3.4028e38, "float64": 1.7977e308}
HALF = {"float16", "bfloat16"}
_ALIASES = {"half": "float16", "fp16": "float16", "bf16": "bfloat16", "float": "float32", "fp32": "float32",
            "double": "float64"}
UNSTABLE_NAMES = ("log", "exp", "sqrt", "div", "pow", "reciprocal", "rsqrt", "softmax", "entropy", "norm",
                   "acos", "asin", "atanh", "tan", "logit")

# torch.nn modules with no log/exp/sqrt/division that finite inputs can break: a NaN/Inf out of one of them is an
# overflow of magnitudes (a learning rate, an initialisation, a precision), never an unstable formula
STABLE_MODULES = frozenset({
    "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Embedding", "EmbeddingBag",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm1d",
    "InstanceNorm2d", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
    "TransformerEncoder", "TransformerDecoder", "Transformer", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "GELU", "SiLU",
    "Tanh", "Sigmoid", "ELU", "Mish", "Hardtanh", "Hardswish", "Softmax", "LogSoftmax", "Dropout", "Identity",
    "Flatten", "Unflatten", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "Sequential", "ModuleList", "ModuleDict",
})

NON_FINITE = ("training.non_finite_loss", "training.non_finite_gradients", "training.non_finite_weights",
              "training.non_finite_activations")

UPDATE_RATIO_EXTREME = 1.0  # an update as large as the weights (the guard's update_ratio_extreme default)
GRAD_WEIGHT_HIGH = 10.0  # a gradient this many times the weights' norm: the gradient, not the step size, exploded


def dtype_name(name: str | None) -> str | None:
    if not name:
        return None
    name = name.removeprefix("torch.").lower()
    return _ALIASES.get(name, name)


def finite(xs: list[float]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(x)]


def fmt_indices(indices: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return f"[{shown}{f', … +{len(indices) - limit} more' if len(indices) > limit else ''}]"


def fmt_names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def recent_growth(values: list[float]) -> tuple[float, float, float] | None:
    """(peak of the last RECENT steps / median before them, that median, that peak)."""
    if len(values) < 2:
        return None
    k = min(RECENT, len(values) - 1)
    base, peak = statistics.median(values[:-k]), max(values[-k:])
    if base <= 0:
        return None
    return peak / base, base, peak


def loss_spike(losses: list[float]) -> tuple[float, float] | None:
    """(earlier median, recent peak) when the last RECENT steps hold a robust spike."""
    if len(losses) < 4:
        return None
    k = min(RECENT, len(losses) - 3)
    early, peak = losses[:-k], max(losses[-k:])
    base = statistics.median(early)
    mad = statistics.median(abs(x - base) for x in early) * 1.4826
    z = (peak - base) / (mad + 0.01 * abs(base) + 1e-12)
    if z >= SPIKE_Z and (peak >= SPIKE_RATIO * base if base > 0 else peak - base > abs(base) * 0.5):
        return base, peak
    return None


def flat(losses: list[float], tolerance: float = 0.1) -> tuple[bool, float, float] | None:
    """(is flat, median of the first third, median of the last third) of a loss history of at least 4."""
    if len(losses) < 4:
        return None
    third = max(1, len(losses) // 3)
    first, last = statistics.median(losses[:third]), statistics.median(losses[-third:])
    return abs(last - first) <= tolerance * max(abs(first), 1e-12), first, last


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope, R²) of the least-squares line."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx == 0 or syy == 0:
        return 0.0, 0.0
    return sxy / sxx, sxy * sxy / (sxx * syy)


def value_range(stats: list[TensorStats]) -> tuple[float | None, float | None, float | None]:
    lows = [s.min for s in stats if s.min is not None]
    highs = [s.max for s in stats if s.max is not None]
    absmax = [s.abs_max for s in stats if s.abs_max is not None]
    return (min(lows) if lows else None, max(highs) if highs else None, max(absmax) if absmax else None)


def bad_counts(stats: list[TensorStats]) -> str:
    nan, inf = sum(s.nan for s in stats), sum(s.inf for s in stats)
    return " and ".join(p for p in (f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else "") if p) or "NaN/Inf"
