"""Synapses that can never change an output spike, in chains of dense layers.

A pruned network can keep synapses that do nothing: synapses into a hidden neuron none of whose
outgoing synapses (directly or through later neurons) reach the output layer, and synapses out of
a neuron that can never spike (no incoming synapse and no bias, so its voltage stays at 0).
Removing either kind changes no output spike, yet each takes synapse memory on a core and, for
the first kind, synaptic operations. Measured on the issue 13 benchmark's MNIST 2FC networks:
magnitude pruning to 1.32% leaves 13% of layer 0's synapses feeding hidden neurons with no
outgoing synapse.

The analysis is exact for what it covers: consecutive :class:`DenseLayer` layers (a flatten
layer between them keeps the order). A layer of any other type (conv, recurrent, complex) ends a
chain and is taken as reading, and producing, every neuron (nothing is claimed through it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from gradr_deploy.atomic import atomic_path
from gradr_deploy.netx.keys import LAYER_GROUP, WEIGHT_KEY
from gradr_deploy.netx.layers import DenseLayer, FlattenLayer, Layer, NetxNetwork
from gradr_deploy.netx.read import read_netx


@dataclass(frozen=True)
class IdleSynapses:
    """One dense layer's synapses that cannot change an output spike.

    Attributes:
        layer: the layer's index in the file.
        synapses: its nonzero synapses.
        to_dead_ends: synapses into its neurons that reach no output neuron or never spike.
        from_silent: the other synapses out of presynaptic neurons that never spike.
        dead_end_neurons: its neurons that receive synapses but have no path to the output
            layer or never spike (the neurons ``to_dead_ends`` feeds).
        silent_neurons: its neurons that can never spike (no input synapse, no bias).
        live_neurons: its neurons that can spike and reach the output layer.
    """

    layer: int
    synapses: int
    to_dead_ends: int
    from_silent: int
    dead_end_neurons: int
    silent_neurons: int
    live_neurons: int

    @property
    def idle(self) -> int:
        """Synapses that can be removed without changing any output spike."""
        return self.to_dead_ends + self.from_silent


def _is_plain_dense(layer: Layer) -> bool:
    return type(layer) is DenseLayer


@dataclass(frozen=True)
class _Reach:
    nonzero: np.ndarray  # (out, in) nonzero synapses
    pre_spikes: np.ndarray  # (in,) presynaptic neurons that can spike
    spikes: np.ndarray  # (out,) own neurons that can spike
    reaches: np.ndarray  # (out,) own neurons with a path to the output layer

    @property
    def live(self) -> np.ndarray:
        return self.reaches & self.spikes

    @property
    def useful(self) -> np.ndarray:
        return self.nonzero & self.live[:, None] & self.pre_spikes[None, :]


def _reach(network: NetxNetwork) -> dict[int, _Reach]:
    chain = [layer for layer in network.layers if not isinstance(layer, FlattenLayer)]
    dense = {layer.index: layer.weight_matrix() != 0 for layer in chain if _is_plain_dense(layer)}
    # forward: which input and which own neurons of each dense layer can ever spike
    pre_spikes: dict[int, np.ndarray] = {}
    spikes: dict[int, np.ndarray] = {}
    previous: np.ndarray | None = None
    for layer in chain:
        if layer.index not in dense:
            previous = None
            continue
        nonzero = dense[layer.index]
        if previous is None or previous.shape[0] != nonzero.shape[1]:
            previous = np.ones(nonzero.shape[1], dtype=bool)  # the input, or not ours to judge
        pre_spikes[layer.index] = previous
        if layer.bias is None:
            driven = np.zeros(nonzero.shape[0], dtype=bool)
        elif np.size(layer.bias) == nonzero.shape[0]:
            driven = np.ravel(layer.bias) != 0
        else:  # a scalar or odd-shaped bias: it may drive every neuron
            driven = np.ones(nonzero.shape[0], dtype=bool)
        previous = spikes[layer.index] = nonzero[:, previous].any(axis=1) | driven
    # backward: which neurons of each dense layer reach the output
    result: dict[int, _Reach] = {}
    reaches: np.ndarray | None = None  # which outputs of this layer the next layer passes on
    for layer in reversed(chain):
        if layer.index not in dense:
            reaches = None
            continue
        nonzero = dense[layer.index]
        if reaches is None or reaches.shape[0] != nonzero.shape[0]:
            reaches = np.ones(nonzero.shape[0], dtype=bool)
        result[layer.index] = _Reach(nonzero, pre_spikes[layer.index], spikes[layer.index],
                                     reaches)
        reaches = result[layer.index].useful.any(axis=0)
    return dict(sorted(result.items()))


def useful_synapses(network: NetxNetwork) -> dict[int, np.ndarray]:
    """Per dense layer (by index), a ``(out, in)`` boolean mask of the synapses that can change
    an output spike; the other nonzero weights can be set to 0 with no output spike changed."""
    return {index: reach.useful for index, reach in _reach(network).items()}


def idle_synapses(network: NetxNetwork) -> dict[int, IdleSynapses]:
    """Per dense layer (by index), its synapses that can never change an output spike.

    Layers outside a dense chain are absent from the result. The last layer of the network
    is the output: all its neurons that can spike count as reaching it.
    """
    return {index: _counts(index, r) for index, r in _reach(network).items()}


def _counts(index: int, r: _Reach) -> IdleSynapses:
    live = r.live
    return IdleSynapses(
        layer=index, synapses=int(r.nonzero.sum()),
        to_dead_ends=int(r.nonzero[~live].sum()),
        from_silent=int(r.nonzero[live][:, ~r.pre_spikes].sum()),
        dead_end_neurons=int(r.nonzero[~live].any(axis=1).sum()),
        silent_neurons=int((~r.spikes).sum()), live_neurons=int(live.sum()))


def strip_idle(source: str | Path, destination: str | Path) -> dict[int, IdleSynapses]:
    """Copy the netx file ``source`` to ``destination`` with its idle synapses set to 0.

    Everything else in the file is copied unchanged (neuron parameters, delays, metadata,
    dataset types and compression); only the values of the weight datasets of dense layers
    that had idle synapses are rewritten. The copy is written under a temporary name and
    renamed. Returns what was removed, per dense layer (as :func:`idle_synapses` counted it in
    ``source``).

    Raises:
        InputError: ``source`` is not a readable netx file.
    """
    reach = _reach(read_netx(source))
    idle = {index: _counts(index, r) for index, r in reach.items()}
    with atomic_path(destination) as tmp:
        shutil.copyfile(source, tmp)
        with h5py.File(tmp, "r+") as handle:
            for index, count in idle.items():
                if not count.idle:
                    continue
                stored = handle[f"{LAYER_GROUP}/{index}/{WEIGHT_KEY}"]
                weight = stored[()]
                # in place: same shape, type, chunks and filters (a new dataset would leave
                # the old one's space unreclaimed in the file)
                stored[...] = np.where(reach[index].useful.reshape(weight.shape), weight, 0)
    return idle
