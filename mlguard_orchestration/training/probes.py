"""Forward hooks for the guard's sampled probes: what the activations look like, and which layer produced them.

On a probe step (armed before the forward that precedes it) each ReLU-family module reports the share of its units
that never fire on the batch (units: channels of conv maps, else the last dimension) and each sigmoid/tanh the
share of its outputs within 1% of the bounds — as device scalars, no sync. Modules that own parameters (Linear,
Conv, norms, embeddings) note the address of their output, so an activation can name the module whose output it
received: the Linear whose bias put every pre-activation below 0 is the layer to fix, not the ReLU. The root
module's hook notes the autocast dtype of training forwards (always) and the address of the model's output (its
last layer may saturate by design, so saturation is not judged there; a dead output is).

Off probe steps every hook returns after one flag test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlguard_orchestration.training.evidence import DeadLayer

DEAD = (nn.ReLU, nn.ReLU6)  # units that output exactly 0 below their threshold pass no gradient there
SATURATING = (nn.Sigmoid, nn.Tanh)


@dataclass
class Activation:
    """One activation module's sample: its kind, its share (device scalar) and, for dead units, the unit mask."""

    key: str
    kind: str  # 'dead' | 'saturated'
    share: torch.Tensor
    ptr: int
    producer: str | None
    mask: torch.Tensor | None  # dead units (device bool), for naming the parameter on a stop


class ActivationProbe:
    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self.armed = False
        self.autocast: str | None = None
        self.root_ptr: int | None = None
        self.acts: dict[str, Activation] = {}
        self._made_by: dict[int, str] = {}  # output data_ptr -> module that produced it (probe steps only)
        self.hooks = [model.register_forward_hook(self._root_hook)]
        for name, module in model.named_modules():
            kind = "dead" if isinstance(module, DEAD) else "saturated" if isinstance(module, SATURATING) else None
            if kind is not None:
                self.hooks.append(module.register_forward_hook(self._activation_hook(name or "<root>", kind)))
            elif name and any(True for _ in module.parameters(recurse=False)):
                self.hooks.append(module.register_forward_hook(self._producer_hook(name)))

    def remove(self) -> None:
        for handle in self.hooks:
            handle.remove()
        self.hooks = []

    def take(self) -> tuple[list[Activation], int | None]:
        """This probe's samples and the model output's address; forgets them."""
        acts, root = list(self.acts.values()), self.root_ptr
        self.acts, self.root_ptr, self._made_by = {}, None, {}
        return acts, root

    def _sampling(self, module: nn.Module, output: Any) -> bool:
        return self.armed and module.training and torch.is_grad_enabled() and isinstance(output, torch.Tensor) \
            and output.dim() >= 1

    def _root_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled():
            dev = self.device.type
            self.autocast = (str(torch.get_autocast_dtype(dev)).removeprefix("torch.")
                             if torch.is_autocast_enabled(dev) else None)
        if self._sampling(module, output):
            self.root_ptr = output.data_ptr()

    def _producer_hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self._sampling(module, output):
                self._made_by[output.data_ptr()] = name
        return hook

    def _activation_hook(self, name: str, kind: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._sampling(module, output):
                return
            calls = sum(1 for k in self.acts if k == name or k.startswith(f"{name}[call "))
            key = name if not calls else f"{name}[call {calls + 1}]"  # a module used twice is two layers
            o = output.detach()
            mask = None
            if kind == "dead":
                dim = 1 if o.dim() in (4, 5) else -1
                mask = o.movedim(dim, -1).reshape(-1, o.shape[dim]).gt(0).any(0).logical_not()
                share = mask.float().mean()
            elif isinstance(module, nn.Sigmoid):
                share = ((o < 0.01) | (o > 0.99)).float().mean()
            else:
                share = (o.abs() > 0.98).float().mean()
            first = inputs[0] if isinstance(inputs, tuple) and inputs and isinstance(inputs[0], torch.Tensor) else None
            producer = self._made_by.get(first.data_ptr()) if first is not None else None
            self.acts[key] = Activation(key, kind, share, o.data_ptr(), producer, mask)
        return hook


def blamed_parameter(model: nn.Module, producer: str, mask: torch.Tensor | None) -> tuple[str, dict[str, float]]:
    """The producer's parameter that keeps the dead units below 0: its bias when the dead units' biases are
    negative, else its weight; with a few numbers saying why (host work, on a stop only)."""
    module = dict(model.named_modules()).get(producer)
    bias = getattr(module, "bias", None) if module is not None else None
    weight = getattr(module, "weight", None) if module is not None else None
    facts: dict[str, float] = {}
    if isinstance(bias, torch.Tensor) and mask is not None and bias.shape[0] == mask.numel():
        dead = bias.detach()[mask.to(bias.device)].double()
        if dead.numel():
            facts = {"dead_units": int(dead.numel()), "bias_mean": float(dead.mean()), "bias_max": float(dead.max())}
            if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and weight.shape[0] == mask.numel():
                rows = weight.detach()[mask.to(weight.device)].double()
                facts["weight_row_norm_mean"] = float(rows.reshape(rows.shape[0], -1).norm(dim=1).mean())
            if facts["bias_mean"] < 0:
                return f"{producer}.bias", facts
    return f"{producer}.weight", facts




def dead_layers(model: nn.Module, acts: list[Activation], layers: dict[str, float]) -> list[DeadLayer]:
    """The layers none of whose units fire, each with the module that fed it and the parameter to blame."""
    out = []
    for act in acts:
        if act.key in layers and layers[act.key] >= 1.0:
            param, facts = blamed_parameter(model, act.producer, act.mask) if act.producer else (None, {})
            out.append(DeadLayer(layer=act.key, share=layers[act.key], producer=act.producer, parameter=param,
                                 facts=facts))
    return out


__all__ = ["DEAD", "SATURATING", "Activation", "ActivationProbe", "blamed_parameter", "dead_layers"]
