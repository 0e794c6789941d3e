"""Preflight item: state_dict → torch.save → load into a fresh build gives bit-identical outputs."""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import Tensor, nn

from mlguard_orchestration.training.checklist._common import Batch, Record, Setup, max_diff, names, same

_ROWS = 64  # rows of the first batch compared


def checkpoint(s: Setup, r: Record, *, on_device: Batch, trained: nn.Module | None = None) -> dict[str, Any]:
    """The model after overfit_batch (or a fresh one) survives a save/load round trip, outputs bit-identical."""
    x = on_device.x[:_ROWS]
    src = trained if trained is not None else s.fresh_model()
    src.eval()
    with torch.no_grad():
        out1, out2 = src(x), src(x)
    if not same(out1, out2):
        r.add("checkpoint", "The model gives different outputs for the same input twice in eval mode (max difference "
              f"{max_diff(out1, out2):.3g}), so no checkpoint can reproduce it. Expected a deterministic eval forward: "
              "forward draws random numbers outside dropout (noise, sampling); gate it on self.training.",
              evidence={"max_abs_diff": max_diff(out1, out2)})
        return {}
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    size = buf.tell()
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    dst = s.fresh_model(s.seed + 1)  # another seed: anything not in the state dict will differ
    result = dst.load_state_dict(state, strict=False)
    dst.eval()
    with torch.no_grad():
        out3 = dst(x.to(next(dst.parameters(), x).device)).to(out1.device)
    unsaved = _unsaved_tensors(src)
    ev: dict[str, Any] = {"state_dict_bytes": size, "missing_keys": list(result.missing_keys)[:50],
                          "unexpected_keys": list(result.unexpected_keys)[:50], "unsaved_tensors": unsaved[:50]}
    if result.missing_keys or result.unexpected_keys:
        r.add("checkpoint", f"Loading the saved state_dict into a fresh build_model() does not match: missing keys "
              f"{names(list(result.missing_keys))}, unexpected keys {names(list(result.unexpected_keys))}. Expected "
              "the same keys: build_model() must build the same architecture every time (no randomness or config "
              "drift in its structure).", evidence=ev)
        return {}
    if not same(out1, out3):
        hint = (f" These tensors are used by the model but are plain attributes (or non-persistent buffers), so "
                f"state_dict does not save them: {names(unsaved)}. Register them with self.register_buffer(name, "
                "tensor) — or nn.Parameter if they should train." if unsaved else " Something the outputs depend on "
                "is not in the state_dict (a tensor kept in a list/dict or a global); register it as a buffer or "
                "parameter.")
        r.add("checkpoint", "After state_dict → torch.save → load into a fresh build_model(), the outputs differ from "
              f"the original model's in eval mode (max difference {max_diff(out1, out3):.3g}). Expected identical "
              "outputs." + hint, value=max_diff(out1, out3), threshold=0.0, evidence=ev)
    return {}


def _unsaved_tensors(model: nn.Module) -> list[str]:
    """Tensors a module holds that its state_dict does not: plain attributes and non-persistent buffers."""
    found = []
    for prefix, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if isinstance(value, Tensor) and not isinstance(value, nn.Parameter):
                found.append(f"{prefix}.{attr}" if prefix else attr)
        for attr in getattr(mod, "_non_persistent_buffers_set", ()):
            found.append(f"{prefix}.{attr}" if prefix else attr)
    return found
