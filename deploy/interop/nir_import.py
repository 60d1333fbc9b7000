"""A NIR graph as a netx network: for mapping onto Loihi cores, or written as a netx file.

Accepted: a chain ``Input -> [synapse -> neuron | Flatten]... -> Output`` where a synapse is
``Linear``, ``Affine`` or ``Conv2d`` and a neuron ``CubaLIF``, ``LIF`` or ``IF``, one neuron
node after each synapse (what snnTorch, Norse and :mod:`gradr_deploy.interop.nir_export` write for
feed-forward networks). Each pair becomes a netx ``dense`` or ``conv`` layer of CUBA neurons
whose integer state follows the NIR equations under forward Euler with step ``dt``; the
formulas are the inverse of :mod:`gradr_deploy.interop.nir_export`'s.

Scale: Lava computes on integers, NIR on floats. A graph written by gradr-lava records
``netx_unit`` (64) and its values come back exactly. For any other graph, each layer's floats
are scaled so that its largest weight becomes 127 (8-bit signed mantissas) and its threshold
and bias by the same factor, which leaves the spikes unchanged up to rounding; a nonzero weight
that would round to 0 is kept as +-1, so every synapse of the graph is a synapse on the chip.
The rounding is reported (:attr:`NirImport.notes`).

Only numpy, h5py and ``nir`` are imported.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import h5py
import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.netx import (
    DECAY_SCALE,
    ConvGeometry,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    NetxNetwork,
    Neuron,
)
from gradr_deploy.netx.checks import check_structure

WEIGHT_MAX = 127  # 8-bit signed mantissa
THRESHOLD_MAX = (1 << 17) - 1  # Lava LIF vThMant is 17 bits
SYNAPSE_TYPES = ("Linear", "Affine", "Conv2d")
NEURON_TYPES = ("CubaLIF", "LIF", "IF")


@dataclass(frozen=True)
class NirImport:
    """A NIR graph as netx layers.

    Attributes:
        network: the layers, as :func:`gradr_deploy.netx.read_netx` would return them.
        input_shape: netx's ``(x, y, f)`` input shape for a conv-first graph, else None.
        dt: seconds per time step used to turn time constants into decays.
        scales: per netx layer, the factor from NIR floats to netx integers.
        notes: what the conversion rounded or assumed.
    """

    network: NetxNetwork
    input_shape: tuple[int, int, int] | None
    dt: float
    scales: tuple[float, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def is_nir_file(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file laid out as NIR writes it (a top-level ``node``)."""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as handle:
            return "node" in handle and "layer" not in handle
    except OSError:
        return False


def read_nir(path: str | Path, dt: float | None = None) -> NirImport:
    """Read a NIR file into netx layers (see the module docstring).

    Args:
        path: a ``.nir`` file (HDF5, written by ``nir.write``).
        dt: seconds per time step; default the graph's ``dt`` metadata, else 1e-4 s.

    Raises:
        InputError: not a NIR file, or a graph outside the accepted chain; the message names
            the node.
    """
    import nir

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not is_nir_file(path):
        raise InputError(f"{path}: not a NIR file (an HDF5 file with a top-level 'node' group, "
                         "as nir.write produces)")
    with h5py.File(path, "r") as handle:
        check_structure(path, handle)
    try:
        graph = nir.read(path)
    except (KeyError, ValueError, TypeError, AttributeError, OSError) as exc:
        raise InputError(f"{path}: unreadable NIR graph ({type(exc).__name__}: {exc}); "
                         "write it again with nir.write") from None
    return graph_to_netx(graph, path, dt)


def graph_to_netx(graph: Any, path: Path, dt: float | None = None) -> NirImport:
    """Convert a ``nir.NIRGraph`` (see :func:`read_nir`)."""
    metadata = dict(getattr(graph, "metadata", {}) or {})
    if dt is None:
        dt = float(metadata.get("dt", 1e-4))
    if not 0 < dt < 1:
        raise InputError(f"{path}: dt = {dt}: the time step must be in seconds, 0 < dt < 1")
    unit = metadata.get("netx_unit")
    chain = _chain(graph, path)
    input_node = graph.nodes[chain[0]]
    in_shape = tuple(int(v) for v in np.asarray(input_node.input_type["input"]).reshape(-1))
    layers: list[Layer] = []
    scales: list[float] = []
    notes: list[str] = []
    shape = in_shape
    k = 1
    while k < len(chain) - 1:
        name = chain[k]
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind == "Flatten":
            shape = (int(np.prod(shape)),)
            layers.append(FlattenLayer(index=len(layers), shape=(*shape, 1, 1)))
            k += 1
            continue
        if kind not in SYNAPSE_TYPES:
            raise InputError(f"{path}: node {name!r} is {kind}; expected one of "
                             f"{SYNAPSE_TYPES} or Flatten here (a chain synapse -> neuron)")
        neuron_name = chain[k + 1] if k + 1 < len(chain) - 1 else None
        neuron = graph.nodes[neuron_name] if neuron_name is not None else None
        if neuron is None or type(neuron).__name__ not in NEURON_TYPES:
            raise InputError(f"{path}: node {name!r} ({kind}) must be followed by a neuron "
                             f"node {NEURON_TYPES}, found "
                             f"{type(neuron).__name__ if neuron is not None else 'the output'}")
        layer, scale, layer_notes = _layer(len(layers), node, neuron, shape, dt, unit,
                                           f"{path}: nodes {name!r} -> {neuron_name!r}")
        layers.append(layer)
        scales.append(scale)
        notes += layer_notes
        shape = layer.shape
        k += 2
    if not any(layer.synaptic for layer in layers):
        raise InputError(f"{path}: the graph has no synapse -> neuron pair")
    network = NetxNetwork(path, tuple(layers), MappingProxyType({}), MappingProxyType({}))
    input_shape = None
    if len(in_shape) == 3:
        input_shape = (in_shape[2], in_shape[1], in_shape[0])
    return NirImport(network, input_shape, float(dt), tuple(scales), tuple(notes))


def _chain(graph: Any, path: Path) -> list[str]:
    """Node names from the Input to the Output node, refusing branches and cycles."""
    import nir

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"{path}: the graph has {len(inputs)} Input and {len(outputs)} Output "
                         "nodes; a feed-forward chain has one of each")
    successors: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        successors.setdefault(src, []).append(dst)
    chain = [inputs[0]]
    while chain[-1] != outputs[0]:
        nxt = successors.get(chain[-1], [])
        if len(nxt) != 1:
            raise InputError(f"{path}: node {chain[-1]!r} has {len(nxt)} successors; only "
                             "feed-forward chains (no branches, recurrence or subgraphs) map")
        if nxt[0] in chain:
            raise InputError(f"{path}: node {nxt[0]!r} closes a cycle; recurrent graphs are "
                             "not supported")
        chain.append(nxt[0])
    if len(chain) != len(graph.nodes):
        unused = sorted(set(graph.nodes) - set(chain))
        raise InputError(f"{path}: nodes {unused} are not on the Input -> Output chain")
    return chain


def _uniform(name: str, value: Any, where: str) -> float:
    values = np.unique(np.asarray(value, dtype=np.float64))
    if values.size != 1:
        raise InputError(f"{where}: {name} differs between neurons ({values.size} values); "
                         "netx has one value per layer")
    return float(values[0])


def _decay(name: str, fraction: float, where: str) -> int:
    if not 0 <= fraction <= 1 + 1e-9:
        raise InputError(f"{where}: {name} gives a decay of {fraction:.4g} per step; it must "
                         "be in [0, 1] (time constant >= dt). Pass the graph's own dt")
    return round(fraction * DECAY_SCALE)


def _layer(index: int, synapse: Any, neuron: Any, in_shape: tuple[int, ...], dt: float,
           unit: Any, where: str) -> tuple[DenseLayer | ConvLayer, float, list[str]]:
    kind = type(neuron).__name__
    # gain: the factor from the synapse's output (W s) to the voltage increment per step
    if kind == "CubaLIF":
        du = dt / _uniform("tau_syn", neuron.tau_syn, where)
        dv = dt / _uniform("tau_mem", neuron.tau_mem, where)
        i_decay, v_decay = _decay("tau_syn", du, where), _decay("tau_mem", dv, where)
        current_gain = du * _uniform("w_in", neuron.w_in, where)
        voltage_gain = dv * _uniform("r", neuron.r, where)
        leak = np.asarray(neuron.v_leak, dtype=np.float64) * dv
    elif kind == "LIF":
        dv = dt / _uniform("tau", neuron.tau, where)
        i_decay, v_decay = DECAY_SCALE, _decay("tau", dv, where)
        current_gain, voltage_gain = 1.0, dv * _uniform("r", neuron.r, where)
        leak = np.asarray(neuron.v_leak, dtype=np.float64) * dv
    else:  # IF
        i_decay, v_decay = DECAY_SCALE, 0
        current_gain, voltage_gain = 1.0, dt * _uniform("r", neuron.r, where)
        leak = np.zeros(1)
    if not np.allclose(np.asarray(neuron.v_reset if neuron.v_reset is not None else 0), 0):
        raise InputError(f"{where}: v_reset must be 0 (Lava's LIF resets to 0)")
    # Lava: u = kappa * I_nir, v = lam * v_nir with W_int = kappa * current_gain * W
    weight = np.asarray(synapse.weight, dtype=np.float64)
    gain = current_gain * voltage_gain
    if not np.isfinite(weight).all() or not math.isfinite(gain) or gain <= 0:
        raise InputError(f"{where}: weights or gains are not finite and positive")
    largest = float(np.abs(weight).max()) * current_gain
    notes: list[str] = []
    if unit is not None:
        kappa = float(unit) / current_gain
    else:
        kappa = WEIGHT_MAX / largest if largest > 0 else 1.0
    lam = kappa / voltage_gain
    scaled = weight * kappa * current_gain
    stored = np.round(scaled)
    if unit is not None and np.abs(stored - scaled).max(initial=0) > 1e-6:
        notes.append(f"{where}: weights are off the netx grid of 1/{unit}; rounded")
    lost = (stored == 0) & (weight != 0)
    if lost.any():
        stored[lost] = np.sign(weight[lost])
        notes.append(f"{where}: {int(lost.sum())} nonzero weights below the 8-bit step kept "
                     "as +-1")
    threshold = _uniform("v_threshold", neuron.v_threshold, where) * lam
    v_th = round(threshold)
    if not 0 < v_th <= THRESHOLD_MAX:
        raise InputError(f"{where}: threshold {threshold:.4g} in Lava units is outside "
                         f"1 .. {THRESHOLD_MAX} (vThMant, 17 bits)")
    bias = leak * lam
    synapse_bias = getattr(synapse, "bias", None)
    if synapse_bias is not None:  # an Affine/Conv bias adds to the input current each step
        bias_current = np.asarray(synapse_bias, dtype=np.float64) * kappa * current_gain
        if i_decay != DECAY_SCALE and np.any(bias_current != 0):
            # NIR filters a synapse bias through the synaptic current; Lava adds its bias to
            # the voltage. Their steady states agree when the Lava bias is the current's
            # fixed point b / du; the first steps after a reset differ.
            bias_current = bias_current * DECAY_SCALE / i_decay
            notes.append(f"{where}: the synapse bias passes a synaptic current (tau_syn > dt); "
                         "converted to Lava's voltage bias at its steady state (b / du)")
        if type(synapse).__name__ == "Conv2d":
            bias_current = bias_current.reshape(-1, 1, 1)
        bias = bias + bias_current
    params = {"gradedSpike": False, "iDecay": i_decay, "refDelay": 1, "vDecay": v_decay,
              "vThMant": v_th}
    cuba = Neuron("CUBA", MappingProxyType(params))
    if type(synapse).__name__ == "Conv2d":
        layer = _conv_layer(index, synapse, stored, in_shape, where)
    else:
        n_out, n_in = stored.shape
        if int(np.prod(in_shape)) != n_in:
            raise InputError(f"{where}: weight [{n_out}, {n_in}] after an input of shape "
                             f"{in_shape}")
        layer = DenseLayer(index=index, shape=(n_out,), weight=stored.astype(np.float32),
                           features=(n_in, n_out))
    full_bias = np.broadcast_to(bias, layer.shape) if np.ndim(bias) else None
    bias_values = None
    if full_bias is not None and np.any(full_bias != 0):
        bias_values = np.round(full_bias).reshape(-1).astype(np.float32)
    layer = dataclasses.replace(layer, bias=bias_values, neuron=cuba)
    return layer, kappa * current_gain, notes


def _conv_layer(index: int, synapse: Any, stored: np.ndarray, in_shape: tuple[int, ...],
                where: str) -> ConvLayer:
    if len(in_shape) != 3:
        raise InputError(f"{where}: Conv2d after an input of shape {in_shape}; expected "
                         "(C, H, W)")
    if isinstance(synapse.padding, str):
        raise InputError(f"{where}: padding {synapse.padding!r}; netx needs explicit padding")
    out_c, in_per_group = stored.shape[:2]
    groups = int(synapse.groups)

    def pair(value: Any) -> tuple[int, int]:
        values = np.asarray(value).reshape(-1)
        return (int(values[0]), int(values[-1]))

    geometry = ConvGeometry(in_channels=in_per_group * groups, out_channels=out_c,
                            kernel=(stored.shape[2], stored.shape[3]),
                            stride=pair(synapse.stride), padding=pair(synapse.padding),
                            dilation=pair(synapse.dilation), groups=groups)
    if geometry.in_channels != in_shape[0]:
        raise InputError(f"{where}: Conv2d reads {geometry.in_channels} channels, the input "
                         f"has {in_shape[0]}")
    out_y, out_x = geometry.output_size(in_shape[1], in_shape[2])
    return ConvLayer(index=index, shape=(out_c, out_y, out_x), weight=stored.astype(np.float32),
                     conv=geometry)
