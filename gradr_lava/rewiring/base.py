"""The interface every pruning method offers the training loop, and what they share.

The loop's contract (see docs/rewiring.md)::

    pruner = make_pruner("gradr", target_connectivity=0.05, alpha=3e-2)
    pruner.attach(model)                      # after model.to(device), before training
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)   # no weight decay
    for epoch in range(epochs):
        for batch in loader:
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            pruner.after_step(optimizer)
        stats = pruner.end_epoch(epoch, epochs)               # JSON-ready
    export_model = copy.deepcopy(model); pruner.fold(export_model)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from gradr_lava.rewiring import parametrization
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.layers import (
    PrunableLayer,
    Targets,
    check_rewirable,
    find_prunable_layers,
    resolve_targets,
)
from gradr_lava.rewiring.stats import layer_report, present_mask, total_report


@runtime_checkable
class Pruner(Protocol):
    """What the training loop calls. All methods share it; see :func:`make_pruner`."""

    method: str

    def attach(self, model: torch.nn.Module) -> None:
        """Parametrize the weight of every prunable block of ``model`` (once)."""

    def after_step(self, optimizer: torch.optim.Optimizer, lr: float | None = None) -> None:
        """Run the method's own update right after ``optimizer.step()``.

        ``lr`` is the learning rate of that step; None reads it from the optimizer's group.
        """

    def end_epoch(self, epoch: int, epochs: int) -> dict[str, Any]:
        """Return JSON-ready per-layer statistics and reset the event counters."""

    def fold(self, model: torch.nn.Module) -> None:
        """Remove the parametrizations of ``model``, leaving plain weights with exact zeros."""

    def state_dict(self) -> dict[str, Any]:
        """Everything beyond model and optimizer state needed to resume exactly."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; call after :meth:`attach`."""


@dataclass
class LayerState:
    """Bookkeeping of one prunable layer.

    Attributes:
        layer: the block and its synapse.
        target: requested final connectivity in (0, 1]; 1.0 means left dense (not rewired).
        present: float-nonzero mask at the end of the last rewiring step (weight's shape).
        pruned: connections that went from present to absent, summed over steps since the last
            :meth:`RewiringPruner.end_epoch` (one connection can count several times).
        regrown: the same, absent to present.
    """

    layer: PrunableLayer
    target: float
    present: torch.Tensor
    pruned: int = 0
    regrown: int = 0

    @property
    def rewired(self) -> bool:
        return self.target < 1.0

    @property
    def hidden(self) -> torch.nn.Parameter:
        """theta (or v for masking): the parameter the optimizer updates."""
        return parametrization.hidden_parameter(self.layer.synapse)

    @property
    def param(self) -> torch.nn.Module:
        """The parametrization module (holds the sign / active / mask buffers)."""
        found = parametrization.rewiring_of(self.layer.synapse)
        if found is None:
            raise RewiringError(f"layer {self.layer.index} is not parametrized (folded?)")
        return found


class RewiringPruner:
    """Shared machinery: discovery, per-layer targets, event counting, stats, fold, state.

    Subclasses set ``method`` and implement :meth:`_attach_layer` and :meth:`_rewire`; with
    neither overridden this is the ``"none"`` method (dense training, statistics only).
    """

    method: ClassVar[str] = "none"

    def __init__(self, target_connectivity: Targets | None = None, seed: int = 0) -> None:
        self._target_spec = target_connectivity
        self._seed = seed
        self._generator = torch.Generator().manual_seed(seed)  # CPU: device-independent draws
        self._layers: list[LayerState] = []
        self._model: torch.nn.Module | None = None
        self._folded = False
        self._step = 0

    # -- attaching -------------------------------------------------------------------------

    def attach(self, model: torch.nn.Module) -> None:
        """Find the prunable blocks and parametrize those with a target below 1.

        Raises:
            RewiringError: already attached, no prunable block, a target out of range, or a
                block that cannot be rewired (weight norm on, slayer ``mask=``; see
                :func:`~gradr_lava.rewiring.layers.check_rewirable`).
        """
        if self._model is not None or self._folded:
            raise RewiringError(f"{self.method} pruner is already attached to a model")
        layers = find_prunable_layers(model)
        if not layers:
            raise RewiringError("the model has no block with a trainable synapse.weight")
        if self._target_spec is None:
            targets = [1.0] * len(layers)
        else:
            targets = resolve_targets(self._target_spec, layers)
        self._check_targets(targets, layers)
        for layer, target in zip(layers, targets, strict=True):
            if target < 1.0:
                check_rewirable(layer)
        self._layers = []
        for layer, target in zip(layers, targets, strict=True):
            if target < 1.0:
                with torch.no_grad():
                    self._attach_layer(layer, target)
            self._layers.append(LayerState(layer, target, present_mask(layer)))
        self._model = model

    def _check_targets(self, targets: list[float], layers: list[PrunableLayer]) -> None:
        """Method-specific validation of the resolved targets (raise RewiringError)."""

    def _attach_layer(self, layer: PrunableLayer, target: float) -> None:
        """Register this method's parametrization on ``layer.synapse.weight`` (no_grad)."""

    # -- training --------------------------------------------------------------------------

    @property
    def rewired(self) -> list[LayerState]:
        """The layers this pruner rewires (target < 1)."""
        return [state for state in self._layers if state.rewired]

    def after_step(self, optimizer: torch.optim.Optimizer, lr: float | None = None) -> None:
        """The method's update after ``optimizer.step()``, then count pruned/regrown events."""
        self._require_attached()
        self._step += 1
        with torch.no_grad():
            self._rewire(optimizer, lr)
            for state in self.rewired:
                now = present_mask(state.layer)
                state.pruned += int(torch.count_nonzero(state.present & ~now))
                state.regrown += int(torch.count_nonzero(~state.present & now))
                state.present = now

    def _rewire(self, optimizer: torch.optim.Optimizer, lr: float | None) -> None:
        """This method's update of the hidden parameters (no_grad, step already counted)."""

    def _group_of(self, optimizer: torch.optim.Optimizer, state: LayerState,
                  *, forbid_weight_decay: bool) -> dict[str, Any]:
        """The optimizer param group that holds ``state``'s hidden parameter.

        Raises:
            RewiringError: the optimizer does not update it (built from the parameters of
                another model, or before a model was re-created), or applies weight decay to a
                theta (a decay pulls absent thetas up towards 0 and is not the method's prior).
        """
        hidden = state.hidden
        for group in optimizer.param_groups:
            if any(p is hidden for p in group["params"]):
                if forbid_weight_decay and group.get("weight_decay", 0.0):
                    raise RewiringError(
                        f"the optimizer applies weight_decay={group['weight_decay']} to theta of "
                        f"layer {state.layer.index}; {self.method} needs weight_decay=0 there "
                        "(its prior / L1 term replaces it)"
                    )
                return group
        raise RewiringError(
            f"the optimizer does not update theta of layer {state.layer.index} "
            f"({state.layer.name!r}): build it from model.parameters() of the attached model"
        )

    def _lr(self, optimizer: torch.optim.Optimizer, state: LayerState, lr: float | None,
            *, forbid_weight_decay: bool = True) -> float:
        group = self._group_of(optimizer, state, forbid_weight_decay=forbid_weight_decay)
        return float(group["lr"]) if lr is None else float(lr)

    # -- reporting -------------------------------------------------------------------------

    def end_epoch(self, epoch: int, epochs: int) -> dict[str, Any]:
        """Per-layer statistics since the last call, JSON-ready; resets the event counters.

        Returns:
            ``{"method", "epoch", "epochs", "step", "layers": [...], "total": {...}}``; each layer
            has index, name, numel, target, rewired, nonzero, connectivity, nonzero_quantized,
            connectivity_quantized (after slayer's 8-bit rounding: what export writes),
            pruned, regrown, plus method-specific entries.
        """
        self._require_attached()
        layers = []
        for state in self._layers:
            entry = layer_report(state.layer)
            entry.update(target=state.target, rewired=state.rewired,
                         pruned=state.pruned, regrown=state.regrown)
            if state.rewired:
                entry.update(self._layer_extra(state))
            layers.append(entry)
            state.pruned = state.regrown = 0
        return {
            "method": self.method,
            "epoch": int(epoch),
            "epochs": int(epochs),
            "step": self._step,
            "layers": layers,
            "total": total_report(layers),
        }

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        """Method-specific JSON-ready entries for one rewired layer."""
        return {}

    # -- leaving ---------------------------------------------------------------------------

    def fold(self, model: torch.nn.Module) -> None:
        """Fold every rewiring parametrization of ``model`` into a plain weight.

        Folding the attached model ends this pruner (its theta tensors now hold weights; any
        later call raises). To export mid-training, fold a ``copy.deepcopy(model)``.
        """
        parametrization.fold(model)
        if model is self._model:
            self._model = None
            self._layers = []
            self._folded = True

    def state_dict(self) -> dict[str, Any]:
        """Pruner state to checkpoint beside ``model.state_dict()`` and the optimizer's."""
        self._require_attached()
        return {
            "method": self.method,
            "step": self._step,
            "generator": self._generator.get_state(),
            "layers": [
                {"pruned": s.pruned, "regrown": s.regrown, "present": s.present.clone()}
                for s in self._layers
            ],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a pruner attached to an identical model.

        Raises:
            RewiringError: the state is from another method or a model with other layers.
        """
        self._require_attached()
        if state.get("method") != self.method:
            raise RewiringError(f"pruner state is for {state.get('method')!r}, not {self.method!r}")
        if len(state["layers"]) != len(self._layers):
            raise RewiringError(
                f"pruner state has {len(state['layers'])} layers, the model {len(self._layers)}"
            )
        self._step = int(state["step"])
        self._generator.set_state(state["generator"])
        for layer_state, saved in zip(self._layers, state["layers"], strict=True):
            layer_state.pruned = int(saved["pruned"])
            layer_state.regrown = int(saved["regrown"])
            layer_state.present = saved["present"].to(layer_state.present.device).clone()
        self._load_extra_state(state["extra"])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        return None

    def _require_attached(self) -> None:
        if self._folded:
            raise RewiringError(f"{self.method} pruner was folded into its model; it is finished")
        if self._model is None:
            raise RewiringError(f"{self.method} pruner is not attached: call attach(model) first")
