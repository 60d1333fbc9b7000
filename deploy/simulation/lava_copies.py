"""Build ``copies`` copies of a netx network side by side as one Lava graph.

One Lava time step then advances ``copies`` samples at once: copy ``c`` of every layer holds
neurons ``c * n .. (c + 1) * n - 1`` of one wider layer, and the synapses are block-diagonal
(dense layers: one ``Sparse`` (or ``Dense``) matrix with a block per copy; conv layers: a
``Conv`` with ``copies`` times the channels and groups, so no copy reads another). Every layer
is built with netx's own blocks from the file's own parameters, exactly as
:class:`lava.lib.dl.netx.hdf5.Network` builds the single network: netx's neuron parameters
(``get_neuron_params``, staggered ``reset_offset``), weights through netx's
``optimize_weight_bits``, biases, clamped delays, and the flatten-before-dense transpose. So each
copy computes what the file computes, in Lava's fixed-point models.

Imports Lava and netx (through :mod:`gradr_deploy.simulation.lava_compat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.sparse import block_diag, csr_matrix

from gradr_deploy.netx import dense_delays
from gradr_deploy.simulation import lava_compat

lava_compat.install()
from lava.lib.dl import netx  # noqa: E402
from lava.lib.dl.netx.utils import NetDict, optimize_weight_bits  # noqa: E402

SUPPORTED = ("dense", "conv", "flatten")
DELAY_BLOCK_VALUES = 1 << 24  # largest dense block-diagonal matrix built for delayed synapses


def max_delay_copies(weights: int) -> int:
    """Most copies a delayed dense layer of ``weights`` synapses can be built with."""
    return max(1, int((DELAY_BLOCK_VALUES / max(weights, 1)) ** 0.5))


class CopiesUnsupported(Exception):
    """The file has a layer the copies path does not build (the message says which)."""


@dataclass
class CopiedNetwork:
    """The built processes of ``copies`` side-by-side copies.

    Attributes:
        layers: netx blocks, one per non-flatten layer (each ``copies`` times as wide).
        indices: netx layer index of each block.
        input_shape: the shape of one copy's input (``(F,)`` or netx ``(x, y, f)``).
        copies: how many copies.
    """

    layers: list
    indices: list[int]
    input_shape: tuple[int, ...]
    copies: int

    @property
    def inp(self):
        return self.layers[0].inp


def _dense_weight(node: NetDict) -> np.ndarray:
    weight = node["weight"]
    shape = node["shape"]
    if weight.ndim == 1:
        weight = weight.reshape(shape[0], -1)
    return weight


def _delay(node: NetDict, weight: np.ndarray) -> np.ndarray | None:
    if "delay" not in node.keys():
        return None
    return dense_delays(np.asarray(node["delay"]), weight.shape)


def _blocks(matrix: np.ndarray, copies: int, sparse: bool):
    if sparse:
        return block_diag([csr_matrix(matrix)] * copies, format="csr")
    out = np.zeros((matrix.shape[0] * copies, matrix.shape[1] * copies), matrix.dtype)
    for c in range(copies):
        out[c * matrix.shape[0]:(c + 1) * matrix.shape[0],
            c * matrix.shape[1]:(c + 1) * matrix.shape[1]] = matrix
    return out


def build_copies(path: str | Path, copies: int, window: int,
                 input_shape: tuple[int, ...] | None = None,
                 sparse: bool = True, summed: bool = False,
                 input_message_bits: int = 0) -> CopiedNetwork:
    """Build ``copies`` copies of the netx network in ``path``, reset every ``window`` steps.

    Args:
        path: netx HDF5 file (validated already by :func:`gradr_deploy.netx.read_netx`).
        copies: copies side by side (>= 1).
        window: netx ``reset_interval`` (steps per sample).
        input_shape: netx ``(x, y, f)`` for conv-first networks, else None.
        sparse: block-diagonal ``Sparse`` synapses for dense layers (else ``Dense``, whose
            matrix grows with ``copies ** 2``).
        summed: binary spikes reach dense synapses on Lava's graded-input path (``weights @
            s``, one sparse matrix-vector product) instead of its binary path (``weights[:,
            s].sum(1)``, a column selection, 5x slower on a large CSR matrix); both give the
            same integers for 0/1 spikes.
        input_message_bits: payload bits of the network's input (0 for binary spikes; > 0 for
            graded input, which always takes the graded path).

    Raises:
        CopiesUnsupported: input, recurrent, complex or pooling layers, SDNN neurons.
    """
    handle = h5py.File(path, "r")
    try:
        return _build(NetDict(f=handle), copies, window, input_shape, sparse, summed,
                      input_message_bits)
    finally:
        handle.close()


def _build(config: NetDict, copies: int, window: int, input_shape, sparse: bool,
           summed: bool, input_message_bits: int):
    layer_config = config["layer"]
    layers, indices = [], []
    reset_offset = 1  # as netx: time starts from 1 in hardware
    flatten_next = False
    shape_in: tuple[int, ...] | None = None
    one_input: tuple[int, ...] | None = None
    for i in range(len(layer_config)):
        node = layer_config[i]
        kind = node["type"]
        if kind not in SUPPORTED:
            raise CopiesUnsupported(
                f"layer {i}: type {kind!r}; gradr-lava's Lava runner builds "
                f"{sorted(SUPPORTED)} layers (netx 'input', pooling and recurrent layers are "
                "not supported yet; `gradr-lava map` maps them)")
        if kind == "flatten":
            flatten_next = True
            continue
        neuron = node["neuron"]
        if neuron["type"] not in ("CUBA", "LOIHI"):
            raise CopiesUnsupported(f"layer {i}: neuron type {neuron['type']!r}")
        params = netx.hdf5.Network.get_neuron_params(
            neuron, reset_interval=window, reset_offset=reset_offset)
        bias = node["bias"] if "bias" in node.keys() else None
        if kind == "dense":
            weight = _dense_weight(node)
            if one_input is None:
                one_input = (weight.shape[1],)
            weight, bits, exponent, _ = optimize_weight_bits(weight)
            block_args = {
                "shape": (weight.shape[0] * copies,), "neuron_params": params,
                "weight": _blocks(weight, copies, sparse), "num_weight_bits": bits,
                "weight_exponent": exponent,
                "input_message_bits": max(input_message_bits, int(summed)),
                "sparse_synapse": sparse,
            }
            delay = _delay(node, weight)
            if delay is not None:
                # netx's delayed blocks take dense arrays (they mask delays with weight == 0)
                if weight.size * copies * copies > DELAY_BLOCK_VALUES:
                    raise CopiesUnsupported(
                        f"layer {i}: synaptic delays with {copies} copies need a "
                        f"{weight.shape[0] * copies} x {weight.shape[1] * copies} matrix; "
                        f"use fewer copies (at most {max_delay_copies(weight.size)})")
                block_args["weight"] = _blocks(weight, copies, sparse=False)
                block_args["delay"] = _blocks(delay, copies, sparse=False)
            if bias is not None:
                block_args["bias"] = np.tile(np.asarray(bias).reshape(-1), copies)
            block = netx.blocks.process.Dense(**block_args)
        else:
            if shape_in is None:
                if input_shape is None:
                    raise CopiesUnsupported(f"layer {i}: a conv-first network needs its input "
                                            "shape")
                one_input = tuple(input_shape)
                x, y, f = input_shape
                shape_in = (x, y, f * copies)
            weight = node["weight"][:, :, ::-1, ::-1]
            weight = weight.reshape(weight.shape[:4]).transpose((0, 3, 2, 1))
            out_shape = tuple(node["shape"][::-1])  # (x, y, f)
            groups = int(np.asarray(node["groups"]).reshape(-1)[0])
            block_args = {
                "input_shape": shape_in,
                "shape": (*out_shape[:2], out_shape[2] * copies),
                "neuron_params": params, "weight": np.concatenate([weight] * copies, axis=0),
                "stride": _pair(node["stride"]), "padding": _pair(node["padding"]),
                "dilation": _pair(node["dilation"]), "groups": groups * copies,
                "input_message_bits": input_message_bits,
            }
            if bias is not None:
                block_args["bias"] = np.tile(np.asarray(bias).reshape(-1), copies)
            block = netx.blocks.process.Conv(**block_args)
        if layers:
            previous = layers[-1].out
            if flatten_next:
                # netx's flatten; copy-major channels make the flat order copy-major too, so
                # the block-diagonal dense layer reads each copy's own neurons
                previous = previous.transpose([2, 1, 0]).flatten()
            previous.connect(block.inp)
        flatten_next = False
        layers.append(block)
        indices.append(i)
        shape_in = block.shape
        reset_offset += 1
        input_message_bits = block.output_message_bits
    if not layers:
        raise CopiesUnsupported("no layers")
    assert one_input is not None
    return CopiedNetwork(layers, indices, one_input, copies)


def _pair(value) -> tuple[int, int]:
    """netx's ``expand``: a stored ``(y, x)`` pair becomes Lava's ``(x, y)``."""
    arr = np.atleast_1d(np.asarray(value)).astype(int)
    return (int(arr[0]), int(arr[0])) if arr.size == 1 else (int(arr[1]), int(arr[0]))
