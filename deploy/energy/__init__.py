"""Energy and latency per inference from activity counts, on Loihi and on a CPU/GPU.

Inputs: a :class:`~gradr_deploy.mapping.NetworkMapping` and, per layer index, the spikes that layer
emitted during one inference: an array of shape ``(time_steps,)`` (spikes per step), a scalar
total, or ``(time_steps, neurons)`` per neuron. Key ``"input"`` holds spikes entering a network
whose first layer is not an ``input`` layer.

Model (per inference of ``time_steps`` steps):

- synaptic operations = spikes x nonzero fan-out of the spiking neuron (the layer's mean
  fan-out, or each neuron's own when per-neuron spikes are given) x ``synop_pj``;
- neuron updates = neurons x time steps, a fraction ``active_fraction`` costed as active
  (``neuron_update_active_pj``), the rest as inactive;
- spike routing = spikes x destination cores per spike x (within-tile energy + tile hops x
  hop energy), cores placed in layer order on the profile's tile mesh (chip crossings are not
  modelled);
- static = ``static_power_w`` x latency, where latency = time steps x ``time_per_step_s`` (or,
  when per-operation latencies are known, the busiest core's work per step + barrier sync);
  None when unknown.

CPU/GPU comparison (keras-spiking's ModelEnergy): the same network as a non-spiking ANN, one
pass per inference: every dense-equivalent connection is one synop, every neuron one update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradr_deploy.errors import InputError, option
from gradr_deploy.hardware.profile import HardwareProfile, load_conventional_devices
from gradr_deploy.mapping import LayerMapping, NetworkMapping

PJ = 1e-12
NS = 1e-9
INPUT_KEY = "input"


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy (J) and latency (s) of one inference, with the constants used and their sources."""

    hardware: str
    time_steps: int
    synops: float
    neuron_updates: int
    spike_messages: float
    synop_j: float
    neuron_j: float
    routing_j: float
    static_j: float | None
    latency_s: float | None
    per_layer: tuple[dict[str, Any], ...]
    constants: Mapping[str, Mapping[str, Any]]
    conventional: Mapping[str, Mapping[str, Any]]
    notes: tuple[str, ...] = field(default=())

    @property
    def dynamic_j(self) -> float:
        return self.synop_j + self.neuron_j + self.routing_j

    @property
    def total_j(self) -> float:
        """Dynamic energy plus static energy when known."""
        return self.dynamic_j + (self.static_j or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (floats, ints, None, lists, dicts)."""
        return {
            "hardware": self.hardware,
            "time_steps": self.time_steps,
            # every count and energy here is per inference (one sample)
            "synops_per_sample": self.synops,
            "neuron_updates_per_sample": self.neuron_updates,
            "spike_messages_per_sample": self.spike_messages,
            "energy_j": {
                "synops": self.synop_j,
                "neuron_updates": self.neuron_j,
                "spike_routing": self.routing_j,
                "static": self.static_j,
                "dynamic": self.dynamic_j,
                "total": self.total_j,
            },
            "latency_s": self.latency_s,
            "per_layer": [dict(layer) for layer in self.per_layer],
            "constants": {k: dict(v) for k, v in self.constants.items()},
            "conventional": {k: dict(v) for k, v in self.conventional.items()},
            "notes": list(self.notes),
        }


def estimate_energy(
    mapping: NetworkMapping,
    spikes: Mapping[int | str, Any],
    time_steps: int,
    active_fraction: float = 1.0,
) -> EnergyEstimate:
    """Estimate the energy and latency of one inference (see the module docstring).

    Args:
        mapping: the network placed on a profile (:func:`gradr_deploy.mapping.map_file`).
        spikes: per layer index, the spikes it emitted in one inference: shape
            ``(time_steps,)``, a scalar total, or ``(time_steps, neurons)``. Layers left out
            emitted nothing.
        time_steps: time steps per inference.
        active_fraction: share of neuron updates costed as active (1.0 = upper bound).

    Raises:
        InputError: unknown layer keys, negative counts, shapes that do not match.
    """
    if time_steps < 1:
        raise InputError(f"time_steps must be >= 1, got {time_steps}")
    if not 0.0 <= active_fraction <= 1.0:
        raise InputError(f"active_fraction must be in [0, 1], got {active_fraction}")
    hw = mapping.hardware
    placed = [m for m in mapping.layers if m.cores]
    by_index = {m.index: m for m in placed}
    for key in spikes:
        if key != INPUT_KEY and key not in by_index:
            raise InputError(
                f"spikes given for layer {key!r}, which has no neurons on cores; layers: "
                f"{sorted(by_index)} (or '{INPUT_KEY}' for external input)"
            )
    hop_pj = _routing_pj_per_spike(placed, hw)
    rows, synops, messages, routing_pj, busiest_ns = [], 0.0, 0.0, 0.0, 0.0
    for k, layer in enumerate(placed):
        nxt = placed[k + 1] if k + 1 < len(placed) else None
        emitted, layer_synops = _spikes_and_synops(layer, nxt, spikes.get(layer.index), time_steps)
        if k == 0 and INPUT_KEY in spikes and layer.kind != "input":
            ext_total, ext_synops = _external(layer, spikes[INPUT_KEY], time_steps)
            synops += ext_synops
            rows.append({"layer": INPUT_KEY, "spikes_per_sample": ext_total,
                         "synops_per_sample": ext_synops})
        messages_per_spike = float(layer.core_output_axons.sum()) / max(layer.neurons, 1)
        synops += layer_synops
        messages += emitted * messages_per_spike
        routing_pj += emitted * hop_pj.get(layer.index, 0.0)
        rows.append(
            {
                "layer": layer.index,
                "type": layer.kind,
                "spikes_per_sample": emitted,
                "synops_per_sample": layer_synops,
                "neuron_updates_per_sample": layer.neurons * time_steps,
                "cores": layer.cores,
            }
        )
        if nxt is not None:  # the next layer's cores share its incoming synops
            per_core = layer_synops / time_steps / nxt.cores
            busiest_ns = max(busiest_ns, per_core * hw.synop_ns)
        busiest_ns = max(busiest_ns, layer.core_neurons.max() * hw.neuron_update_ns)
    updates = sum(m.neurons for m in placed) * time_steps
    neuron_pj = updates * (
        active_fraction * hw.neuron_update_active_pj
        + (1 - active_fraction) * hw.neuron_update_inactive_pj
    )
    latency = _latency(hw, time_steps, busiest_ns)
    static = None
    if latency is not None and not math.isnan(hw.static_power_w):
        static = hw.static_power_w * latency
    return EnergyEstimate(
        hardware=hw.name,
        time_steps=time_steps,
        synops=synops,
        neuron_updates=updates,
        spike_messages=messages,
        synop_j=synops * hw.synop_pj * PJ,
        neuron_j=neuron_pj * PJ,
        routing_j=routing_pj * PJ,
        static_j=static,
        latency_s=latency,
        per_layer=tuple(rows),
        constants=_constants(hw, active_fraction),
        conventional=conventional_energy(mapping),
        notes=tuple(_notes(hw, mapping, latency)),
    )


def conventional_energy(mapping: NetworkMapping) -> dict[str, dict[str, Any]]:
    """keras-spiking's CPU/GPU/ARM estimate: one ANN pass over all dense-equivalent weights."""
    connections = sum(m.connections for m in mapping.layers)
    neurons = sum(m.neurons for m in mapping.layers if m.kind != "input")
    out = {}
    for name, device in load_conventional_devices().items():
        synop_j = connections * device.synop_pj * PJ
        neuron_j = neurons * device.neuron_update_pj * PJ
        out[name] = {
            "synops": connections,
            "neuron_updates": neurons,
            "synop_j": synop_j,
            "neuron_j": neuron_j,
            "total_j": synop_j + neuron_j,
            "synop_pj": device.synop_pj,
            "neuron_update_pj": device.neuron_update_pj,
            "source": device.source,
        }
    return out


def _as_counts(value: Any, time_steps: int, neurons: int, where: str) -> np.ndarray:
    """Spikes as a float array: scalar total, (time_steps,) or (time_steps, neurons)."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == time_steps):
        pass
    elif arr.ndim == 2 and arr.shape == (time_steps, neurons):
        pass
    else:
        raise InputError(
            f"{where}: spikes of shape {arr.shape}; expected a total, ({time_steps},) or "
            f"({time_steps}, {neurons})"
        )
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError(f"{where}: spike counts must be finite and >= 0")
    return arr


def _spikes_and_synops(
    layer: LayerMapping, nxt: LayerMapping | None, value: Any, time_steps: int
) -> tuple[float, float]:
    if value is None:
        return 0.0, 0.0
    arr = _as_counts(value, time_steps, layer.neurons, f"layer {layer.index}")
    total = float(arr.sum())
    if nxt is None or layer.neurons == 0:
        return total, 0.0
    if arr.ndim == 2:  # per neuron: each neuron's own fan-out
        return total, float(arr.sum(axis=0) @ _fan_out(layer, nxt))
    return total, total * layer.fan_out_synapses / layer.neurons


def _external(first: LayerMapping, value: Any, time_steps: int) -> tuple[float, float]:
    conn = first.connectivity
    n_in = conn.n_pre if conn is not None else 0
    arr = _as_counts(value, time_steps, n_in, "input")
    total = float(arr.sum())
    if conn is None or n_in == 0:
        return total, 0.0
    fan = np.bincount(conn.indices, minlength=n_in).astype(float)
    if arr.ndim == 2:
        return total, float(arr.sum(axis=0) @ fan)
    return total, total * fan.sum() / n_in


def _fan_out(layer: LayerMapping, nxt: LayerMapping) -> np.ndarray:
    """Nonzero synapses from each neuron of ``layer`` (stored order) into ``nxt`` and, for a
    recurrent layer, back into itself."""
    fan = np.zeros(layer.neurons)
    conn = nxt.connectivity
    if conn is not None:
        fan += np.bincount(conn.indices, minlength=conn.n_pre)[: layer.neurons]
    own = layer.connectivity
    if layer.kind == "dense_rec" and own is not None:
        n_ext = own.n_pre - layer.neurons
        fan += np.bincount(own.indices, minlength=own.n_pre)[n_ext:]
    return fan


def _routing_pj_per_spike(placed: list[LayerMapping], hw: HardwareProfile) -> dict[int, float]:
    """Mean routing energy of one spike of each layer (pJ), cores placed in layer order."""
    first_core, total = {}, 0
    for m in placed:
        first_core[m.index] = total
        total += m.cores
    out = {}
    for k, layer in enumerate(placed[:-1]):
        nxt = placed[k + 1]
        src_cost = np.zeros(layer.cores)
        for d, inputs in enumerate(nxt.core_inputs):
            inputs = inputs[inputs < layer.neurons]  # recurrent inputs are not from `layer`
            senders = np.bincount(layer.core_of[inputs], minlength=layer.cores)
            src = first_core[layer.index] + np.arange(layer.cores)
            src_cost += senders * _message_pj(src, first_core[nxt.index] + d, hw)
        out[layer.index] = float(src_cost.sum()) / max(layer.neurons, 1)
    return out


def _message_pj(src: np.ndarray, dst: int, hw: HardwareProfile) -> np.ndarray:
    """Energy of one spike message from global cores ``src`` to core ``dst`` (pJ)."""

    def tile_xy(core: np.ndarray | int) -> tuple[Any, Any]:
        tile = (np.asarray(core) % hw.cores_per_chip) // hw.cores_per_tile
        return tile % hw.mesh_tiles_x, tile // hw.mesh_tiles_x

    sx, sy = tile_xy(src)
    dx, dy = tile_xy(dst)
    return (
        hw.spike_within_tile_pj
        + np.abs(sx - dx) * hw.hop_east_west_pj
        + np.abs(sy - dy) * hw.hop_north_south_pj
    )


def _latency(hw: HardwareProfile, time_steps: int, busiest_ns: float) -> float | None:
    """Seconds per inference: a given time per step, else the busiest core + barrier sync."""
    if not math.isnan(hw.time_per_step_s):
        return time_steps * hw.time_per_step_s
    needed = (hw.synop_ns, hw.neuron_update_ns, hw.barrier_sync_ns)
    if any(math.isnan(v) for v in needed):
        return None
    return time_steps * (busiest_ns + hw.barrier_sync_ns) * NS


def _constants(hw: HardwareProfile, active_fraction: float) -> dict[str, dict[str, Any]]:
    keys = {
        "synop_pj": "pJ",
        "neuron_update_active_pj": "pJ",
        "neuron_update_inactive_pj": "pJ",
        "spike_within_tile_pj": "pJ",
        "hop_east_west_pj": "pJ",
        "hop_north_south_pj": "pJ",
        "static_power_w": "W",
        "time_per_step_s": "s",
        "synop_ns": "ns",
        "neuron_update_ns": "ns",
        "barrier_sync_ns": "ns",
    }
    out = {}
    for key, unit in keys.items():
        value = getattr(hw, key)
        out[key] = {
            "value": None if math.isnan(value) else value,
            "unit": unit,
            "source": hw.sources.get(key, ""),
        }
    out["active_fraction"] = {"value": active_fraction, "unit": "", "source": "argument"}
    return out


def _notes(hw: HardwareProfile, mapping: NetworkMapping, latency: float | None) -> list[str]:
    notes = []
    if hw.energy_pre_silicon:
        notes.append(
            "per-operation energies are pre-silicon estimates (Davies 2018 Table 2)"
            + (", used as a proxy: none are published for this chip" if hw.name != "loihi1" else "")
        )
    if latency is None:
        notes.append(
            "latency and static energy unknown: set time_per_step_s (or synop_ns, "
            f"neuron_update_ns and barrier_sync_ns) with {option('override')}"
        )
    if mapping.chips > 1:
        notes.append(f"{mapping.chips} chips: chip-to-chip spike traffic is not modelled")
    return notes
