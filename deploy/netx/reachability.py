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


def _chain_reach(nonzero: list[np.ndarray], driven: list[np.ndarray]) -> list[_Reach]:
    """Forward (which neurons can spike) then backward (which reach the last layer) through
    one chain: layer k's ``(out, in)`` nonzero mask feeds layer k+1 (shapes already checked);
    ``driven[k]``: layer k's neurons a bias can drive. Only numpy's boolean operators and
    ``any(axis=)`` are used, and no indexing by a mask, so torch tensors work too, on their own
    device and with no synchronisation (the training-time ``idle_first`` calls it every step)."""
    pre_spikes, spikes = [], []
    previous = nonzero[0].any(axis=0) | True  # the chain's input can spike
    for mask, bias in zip(nonzero, driven, strict=True):
        pre_spikes.append(previous)
        previous = (mask & previous[None, :]).any(axis=1) | bias
        spikes.append(previous)
    result: list[_Reach] = []
    reaches = nonzero[-1].any(axis=1) | True  # the chain's last layer is its output
    for k in reversed(range(len(nonzero))):
        result.append(_Reach(nonzero[k], pre_spikes[k], spikes[k], reaches))
        reaches = result[-1].useful.any(axis=0)
    return result[::-1]


def useful_in_chain(nonzero: list[np.ndarray],
                    driven: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """The synapses that can change an output spike, in one chain of dense layers.

    Args:
        nonzero: per layer, in order, its ``(out, in)`` mask of nonzero synapses (boolean, or
            any dtype: nonzero counts); layer k's ``out`` neurons are layer k+1's ``in``
            neurons, the last layer is the output and the first layer's inputs are taken to
            spike. Numpy arrays, or torch tensors (all on one device; the result stays there).
        driven: per layer, an ``(out,)`` mask of the neurons a bias can drive (None: none),
            of the same array type.

    Returns:
        Per layer, an ``(out, in)`` boolean mask of the inputs' array type: True where the
        synapse can change an output spike (it is nonzero, leaves a neuron that can spike and
        feeds one that reaches the output).

    Raises:
        ValueError: the shapes do not chain.
    """
    if not nonzero:
        return []
    masks = [_as_mask(m) for m in nonzero]
    for k in range(1, len(masks)):
        if masks[k].shape[1] != masks[k - 1].shape[0]:
            raise ValueError(f"layer {k} has {masks[k].shape[1]} inputs but layer {k - 1} "
                             f"has {masks[k - 1].shape[0]} neurons: not a chain")
    biases = [m.any(axis=1) & False if b is None else _as_mask(b)
              for m, b in zip(masks, driven or [None] * len(masks), strict=True)]
    return [r.useful for r in _chain_reach(masks, biases)]


def _as_mask(values: np.ndarray) -> np.ndarray:
    # `!= 0` keeps a torch tensor a tensor on its device; lists become numpy arrays
    return (values if hasattr(values, "shape") else np.asarray(values)) != 0


def _driven(layer: DenseLayer, neurons: int) -> np.ndarray:
    if layer.bias is None:
        return np.zeros(neurons, dtype=bool)
    if np.size(layer.bias) == neurons:
        return np.ravel(layer.bias) != 0
    return np.ones(neurons, dtype=bool)  # a scalar or odd-shaped bias may drive every neuron


def _reach(network: NetxNetwork) -> dict[int, _Reach]:
    # split the layers into chains: runs of plain dense layers whose shapes follow on
    chains: list[list[tuple[int, np.ndarray, np.ndarray]]] = []
    current: list[tuple[int, np.ndarray, np.ndarray]] = []
    for layer in network.layers:
        if isinstance(layer, FlattenLayer):
            continue
        if not _is_plain_dense(layer):
            chains.append(current)
            current = []
            continue
        mask = layer.weight_matrix() != 0
        if current and current[-1][1].shape[0] != mask.shape[1]:  # not ours to judge
            chains.append(current)
            current = []
        current.append((layer.index, mask, _driven(layer, mask.shape[0])))
    chains.append(current)
    result: dict[int, _Reach] = {}
    for chain in chains:
        if chain:
            reach = _chain_reach([m for _, m, _ in chain], [d for _, _, d in chain])
            result.update(zip([index for index, _, _ in chain], reach, strict=True))
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
