"""Place a whole netx network on the cores of a hardware profile, layers last to first.

Layers are mapped last to first because a neuron's output axons are the cores of the next
layer that read it. For a profile with a ``[compiler]`` model (``loihi2``) each layer is placed
as Intel's compiler is modelled to place it (:mod:`gradr_deploy.mapping.compiler_mapping`);
else by the greedy partitioner (:mod:`gradr_deploy.mapping.partition`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gradr_deploy.errors import BudgetError, InputError
from gradr_deploy.hardware.profile import HardwareProfile, load_profile
from gradr_deploy.mapping.bounds import LayerBounds, lower_bounds
from gradr_deploy.mapping.connectivity import dense_connections, layer_connectivity
from gradr_deploy.mapping.partition import ORDER_SEARCH_MAX_NEURONS, partition, try_orders
from gradr_deploy.mapping.result import (
    PLACED_KINDS,
    Connectivity,
    LayerMapping,
    NetworkMapping,
    empty_layer,
    limits,
)
from gradr_deploy.netx import Layer, NetxNetwork
from gradr_deploy.netx.metadata import recorded_input_shape
from gradr_deploy.netx.reachability import IdleSynapses, idle_synapses


def map_file(
    path: str | Path,
    hardware: str | Path | HardwareProfile = "loihi2",
    override: Mapping[str, str | float | int | bool] | None = None,
    *,
    refine_bounds: bool = False,
) -> NetworkMapping:
    """Read a netx file or a NIR graph and map it onto ``hardware`` (see :func:`map_network`).

    A conv-first network without an input layer is mapped with the input shape gradr-lava
    recorded in the file (:mod:`gradr_deploy.netx.metadata`) or the NIR graph's input type. A
    NIR graph is converted as :mod:`gradr_deploy.interop.nir_import` describes.
    """
    from gradr_deploy.interop import read_network

    network, input_shape, _notes = read_network(path)
    return map_network(network, hardware, override, input_shape=input_shape,
                       refine_bounds=refine_bounds)


def map_network(
    network: NetxNetwork,
    hardware: str | Path | HardwareProfile = "loihi2",
    override: Mapping[str, str | float | int | bool] | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    refine_bounds: bool = False,
) -> NetworkMapping:
    """Place every layer of ``network`` on the cores of a hardware profile, last to first.

    The one mapping path of the toolchain: ``map``, ``deploy``, ``train --fit-cores`` and the
    Python API all call it. For a profile with a ``[compiler]`` model (``loihi2``) each layer
    is placed as Intel's compiler is modelled to place it
    (:mod:`gradr_deploy.mapping.compiler_model`), and ``best_partition_cores`` says what the best
    partition under that cost model needs. Else the greedy partitioner runs, and a dense layer
    whose cores exceed its counting bounds is also packed in two other neuron orders, keeping
    the order needing fewest cores (:func:`~gradr_deploy.mapping.partition.try_orders`).

    Args:
        network: from :func:`gradr_deploy.netx.read_netx`.
        hardware: a profile name (``loihi2``, ``loihi2-brief``, ``loihi1``), a TOML profile
            file, or a loaded :class:`HardwareProfile`.
        override: profile constants to change, ``{"neurons_per_core": 512, ...}`` (not with a
            loaded profile).
        input_shape: netx's ``(x, y, f)`` input shape, needed when the first layer is conv and
            the file has no input layer; default: the shape gradr-lava recorded in the file.
        refine_bounds: also compute the refined lower bounds and the notes on any gap
            (:meth:`~gradr_deploy.mapping.bounds.LayerBounds.refine`; seconds for large layers).

    Raises:
        InputError: a layer type netx cannot run either (pool, average, ...), or a conv layer
            without a known input shape.
        BudgetError: a single neuron exceeds a per-core limit.
    """
    if isinstance(hardware, HardwareProfile):
        if override:
            raise InputError("override applies to a profile name or file, not to a loaded "
                             "HardwareProfile (load_profile(name, overrides) instead)")
        profile = hardware
    else:
        profile = load_profile(hardware, override)
    if input_shape is None:
        input_shape = recorded_input_shape(network.attrs, str(network.path))
    layers = network.layers
    warnings: list[str] = []
    pre_of: dict[int, int | None] = {}
    previous: int | None = None
    for layer in layers:
        if layer.kind == "flatten":
            continue
        if layer.kind not in PLACED_KINDS:
            raise InputError(
                f"{network.path}: layer {layer.index} has type '{layer.kind}', which lava-dl 0.6's "
                "netx cannot run (NotImplementedError) and this mapper does not place"
            )
        pre_of[layer.index] = previous
        previous = layer.index
    dests: dict[int, np.ndarray] = {i: np.zeros(layers[i].neurons, np.int64) for i in pre_of}
    fan_out = dict.fromkeys(pre_of, 0)
    mapped: dict[int, LayerMapping] = {}
    for i in reversed(list(pre_of)):
        layer, pre = layers[i], pre_of[i]
        label = f"{network.path.name}: layer {i} ({layer.kind})"
        conn, wbits, dbits = layer_connectivity(network, i, pre, profile, warnings, input_shape)
        bits = wbits + dbits
        if profile.compiler is not None:
            mapped[i] = _compiled_mapping(layer, conn, wbits, dbits, profile, label)
            if pre is not None:
                n_ext = conn.n_pre - (layer.neurons if layer.kind == "dense_rec" else 0)
                fan_out[pre] += int(np.count_nonzero(conn.indices < n_ext))
                fan_out[i] += conn.synapses - int(np.count_nonzero(conn.indices < n_ext))
            continue
        own = np.zeros(layer.neurons, np.int64)
        for _ in range(2 if layer.kind == "dense_rec" else 1):
            cores = partition(conn, (dests[i] + own)[conn.order], bits, profile, label)
            if layer.kind == "dense_rec":
                own = _input_use(cores.inputs, conn.n_pre)[conn.n_pre - layer.neurons :]
        fan_in = np.diff(conn.indptr)
        pre_used = int(np.count_nonzero(np.bincount(conn.indices, minlength=conn.n_pre)))
        counting = lower_bounds(fan_in, pre_used, dests[i] + own, bits, profile)
        if (
            layer.kind == "dense"
            and layer.neurons <= ORDER_SEARCH_MAX_NEURONS
            and max(counting.values()) < len(cores.neurons)
        ):
            conn, cores = try_orders(conn, cores, dests[i] + own, bits, profile, label)
        bounds = LayerBounds(counting, conn, cores, (dests[i] + own)[conn.order], bits, profile)
        n_ext = conn.n_pre - (layer.neurons if layer.kind == "dense_rec" else 0)
        external = int(np.count_nonzero(conn.indices < n_ext))
        if pre is not None:
            dests[pre] += _input_use(cores.inputs, conn.n_pre)[:n_ext]
            fan_out[pre] += external
        fan_out[i] += conn.synapses - external  # recurrent synapses leave this layer too
        core_of = np.empty(layer.neurons, np.int64)
        core_of[conn.order] = np.repeat(np.arange(len(cores.neurons)), cores.neurons)
        mapped[i] = LayerMapping(
            index=i,
            kind=layer.kind,
            neurons=layer.neurons,
            synapses=conn.synapses,
            weight_bits=wbits if conn.synapses else 0,
            delay_bits=dbits,
            core_neurons=np.asarray(cores.neurons, np.int64),
            core_input_axons=np.asarray(cores.axons, np.int64),
            core_output_axons=np.asarray(cores.out, np.int64),
            core_synapse_bits=np.asarray(cores.bits, np.int64),
            core_encoding=tuple(cores.encoding),
            lower_bounds=bounds,
            limits=limits(profile),
            core_of=core_of,
            core_inputs=tuple(cores.inputs),
            connectivity=conn,
            out_cost=(dests[i] + own)[conn.order],
            connections=dense_connections(layer),
        )
        _check_recurrent_out(mapped[i], profile, label)
    idle = idle_synapses(network)
    warnings.extend(_idle_warning(network, idle[i]) for i in sorted(idle) if idle[i].idle)
    result = []
    for layer in layers:
        if layer.index in mapped:
            result.append(dataclasses.replace(
                mapped[layer.index], fan_out_synapses=fan_out[layer.index],
                idle_synapses=idle[layer.index].idle if layer.index in idle else 0))
        else:
            result.append(empty_layer(layer.index, layer.kind, profile))
    if refine_bounds:
        for m in result:
            if isinstance(m.lower_bounds, LayerBounds):
                m.lower_bounds.refine()
    return NetworkMapping(str(network.path), profile, tuple(result), tuple(warnings),
                          _release_cores(network, profile, sum(m.cores for m in result)))


def _idle_warning(network: NetxNetwork, idle: IdleSynapses) -> str:
    parts = []
    if idle.to_dead_ends:
        parts.append(f"{idle.to_dead_ends} feed {idle.dead_end_neurons} of its neurons that "
                     "reach no output neuron or never spike")
    if idle.from_silent:
        parts.append(f"{idle.from_silent} come from neurons that never spike")
    return (f"{network.path.name}: layer {idle.layer}: {idle.idle} of its {idle.synapses} "
            f"synapses ({idle.idle / idle.synapses:.1%}) cannot change any output spike ("
            + "; ".join(parts) + "); removing them changes no output and frees synapse memory")


def _compiled_mapping(
    layer: Layer, conn: Connectivity, wbits: int, dbits: int, profile: HardwareProfile,
    label: str,
) -> LayerMapping:
    """A layer placed by the compiler model, as a :class:`LayerMapping`."""
    from gradr_deploy.mapping import compiler_mapping as cm

    compiled = cm.compile_layer(layer, profile, label)
    row_core = compiled.core_of[conn.order]
    inputs = cm.core_inputs(conn.indptr, conn.indices, row_core, compiled.cores)
    use = compiled.use
    return LayerMapping(
        index=layer.index,
        kind=layer.kind,
        neurons=layer.neurons,
        synapses=conn.synapses,
        weight_bits=wbits if conn.synapses else 0,
        delay_bits=dbits,
        core_neurons=use["neurons"].astype(np.int64),
        core_input_axons=np.asarray([len(x) for x in inputs], np.int64),
        core_output_axons=use["neurons"].astype(np.int64),
        core_synapse_bits=(use["synapses"] * cm.bits_per_unit(profile)).astype(np.int64),
        core_encoding=("dense" if conn.synapses else "none",) * compiled.cores,
        lower_bounds=cm.lower_bounds(compiled, profile),
        limits=cm.limits(profile),
        core_of=compiled.core_of,
        core_inputs=inputs,
        connections=dense_connections(layer),
        connectivity=conn,
        compiled=compiled,
    )


def _release_cores(net: NetxNetwork, profile: HardwareProfile, selected: int) -> dict[str, int]:
    """Total cores under every release of the profile's compiler model (empty without one);
    ``selected``: the total already mapped under the profile's own release."""
    from gradr_deploy.mapping import compiler_mapping as cm

    if profile.compiler is None:
        return {}
    totals = {}
    for name in profile.compiler.releases:
        if name == profile.compiler.release.name:
            totals[name] = selected
            continue
        other = dataclasses.replace(profile, compiler=profile.compiler.with_release(name))
        try:
            totals[name] = sum(cm.compile_layer(layer, other, "").cores
                               for layer in net.layers if layer.kind in PLACED_KINDS)
        except BudgetError:
            totals[name] = -1  # a neuron does not fit a core of that release
    return totals



def _input_use(inputs: list[np.ndarray], n_pre: int) -> np.ndarray:
    """How many cores use each presynaptic neuron as an input axon."""
    if not inputs:
        return np.zeros(n_pre, np.int64)
    return np.bincount(np.concatenate(inputs), minlength=n_pre).astype(np.int64)



def _check_recurrent_out(m: LayerMapping, profile: HardwareProfile, label: str) -> None:
    worst = int(m.core_output_axons.max()) if m.cores else 0
    if worst > profile.output_axons_per_core:
        raise BudgetError(
            f"{label}: recurrent connections need {worst} output axons on one core (limit "
            f"{profile.output_axons_per_core}); prune the recurrent weights"
        )
