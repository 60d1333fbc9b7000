"""The netx network in memory: one frozen dataclass per layer type, as a file stores it.

Each class holds exactly what its layer type stores (NIR's style: a dense layer has a weight
matrix and features, a flatten layer has neither), and its netx type name as the class constant
``kind``. Arrays are as stored (see :mod:`gradr_deploy.netx`), integer mantissas as floats.

=============================  ==============  ============================================
class                          ``kind``        holds
=============================  ==============  ============================================
:class:`InputLayer`            ``input``       neurons; optional scalar ``weight``, ``bias``
:class:`FlattenLayer`          ``flatten``     a reshape only: no neurons are built
:class:`DenseLayer`            ``dense``       ``weight [out, in]``, ``features``
:class:`RecurrentDenseLayer`   ``dense_rec``   + ``weight_rec [out, out]``
:class:`ComplexDenseLayer`     ``dense_comp``  + ``weight_imag [out, in]``
:class:`ConvLayer`             ``conv``        ``weight [out, in/groups, ky, kx]``, ``conv``
:class:`ConvTransposeLayer`    ``convT``       as conv
:class:`PoolLayer`             ``pool``        ``conv`` geometry, optional ``weight``
:class:`UnpoolLayer`           ``unpool``      as pool
:class:`AverageLayer`          ``average``     shape and neurons only
:class:`ConcatLayer`           ``concat``      shape and neurons only
=============================  ==============  ============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# --- fixed-point scales used by netx / Lava --------------------------------------------------
DECAY_SCALE = 4096  # iDecay, vDecay are in units of 1/4096 per time step (12-bit decays)
BIAS_EXP = 6  # netx programs bias_exp = 6: effective bias = bias_mant << 6
MAX_WEIGHT_BITS = 8  # Loihi weight mantissa (sign included in mixed mode)
MAX_DELAY = 62  # netx clamps synaptic delays to 0..62 time steps


@dataclass(frozen=True)
class Neuron:
    """A layer's ``neuron/`` group.

    Attributes:
        kind: ``neuron/type`` as stored, e.g. ``"CUBA"``, ``"LOIHI"`` (both Lava LIF), ``"SDNN"``.
        params: every other dataset of the group, raw: ints (``iDecay``, ``vDecay`` in 1/4096,
            ``vThMant`` in units of 2**-6 of the effective threshold, ``refDelay`` in time
            steps), floats, bools (``gradedSpike``, ``sigma_output``), strings (``activation``);
            non-scalar datasets stay numpy arrays.
    """

    kind: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ConvGeometry:
    """Convolution / pooling geometry; pairs are ``(y, x)`` as stored."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def output_size(self, in_y: int, in_x: int) -> tuple[int, int]:
        """Output ``(y, x)`` for an input of ``in_y`` x ``in_x`` (PyTorch's formula)."""
        return tuple(  # type: ignore[return-value]
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(
                (in_y, in_x), self.padding, self.dilation, self.kernel, self.stride, strict=True
            )
        )


@dataclass(frozen=True, kw_only=True)
class Layer:
    """What every ``/layer/{index}`` group has: its position, its neurons' shape and type.

    ``synaptic`` (a class constant) says whether the layer has a synapse matrix from the
    previous layer (dense, conv and their variants): those are the layers that cost synapse
    memory, add one time step of latency in Lava, and count as connections.
    """

    kind: ClassVar[str] = ""
    synaptic: ClassVar[bool] = False
    index: int
    shape: tuple[int, ...]
    neuron: Neuron | None = None

    @property
    def neurons(self) -> int:
        """Number of neurons (compartments): the product of ``shape``."""
        return int(np.prod(self.shape)) if self.shape else 0

    @property
    def in_features(self) -> int | None:
        """Dense: ``inFeatures``; conv/pool: input channels; else None."""
        return None

    @property
    def out_features(self) -> int | None:
        """Dense: ``outFeatures``; conv/pool: output channels; else None."""
        return None


@dataclass(frozen=True, kw_only=True)
class InputLayer(Layer):
    """``input``: neurons the input drives; lava-dl stores the input block's scalar gain as
    ``weight`` and its ``bias``."""

    kind: ClassVar[str] = "input"
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class FlattenLayer(Layer):
    """``flatten``: the previous layer's neurons read in C order; netx builds nothing."""

    kind: ClassVar[str] = "flatten"


@dataclass(frozen=True, kw_only=True)
class DenseLayer(Layer):
    """``dense``: ``weight`` ``[out, in]`` (or a vector of ``out * in``), ``features`` =
    ``(inFeatures, outFeatures)``; optional per-neuron ``bias`` and synaptic ``delay``."""

    kind: ClassVar[str] = "dense"
    synaptic: ClassVar[bool] = True
    weight: np.ndarray
    features: tuple[int, int]
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None

    @property
    def in_features(self) -> int:
        return self.features[0]

    @property
    def out_features(self) -> int:
        return self.features[1]

    def weight_matrix(self) -> np.ndarray:
        """Dense weights as ``[out, in]`` (reshaping a stored 1-D vector the way netx does)."""
        n_in, n_out = self.features
        return np.asarray(self.weight).reshape(n_out, n_in)


@dataclass(frozen=True, kw_only=True)
class RecurrentDenseLayer(DenseLayer):
    """``dense_rec``: a dense layer plus recurrent weights ``weight_rec`` ``[out, out]``."""

    kind: ClassVar[str] = "dense_rec"
    weight_rec: np.ndarray


@dataclass(frozen=True, kw_only=True)
class ComplexDenseLayer(DenseLayer):
    """``dense_comp``: complex synapses, ``weight`` the real and ``weight_imag`` the imaginary
    part (stored as ``weight/real``, ``weight/imag``)."""

    kind: ClassVar[str] = "dense_comp"
    weight_imag: np.ndarray


class _ChannelFeatures:
    """Conv and pool layers: their features are the geometry's channels."""

    conv: ConvGeometry

    @property
    def in_features(self) -> int:
        return self.conv.in_channels

    @property
    def out_features(self) -> int:
        return self.conv.out_channels


@dataclass(frozen=True, kw_only=True)
class ConvLayer(_ChannelFeatures, Layer):
    """``conv``: ``weight`` ``[out, in / groups, ky, kx]`` (a trailing time axis of 1 occurs),
    ``conv`` its geometry; ``shape`` is ``(outChannels, y, x)``."""

    kind: ClassVar[str] = "conv"
    synaptic: ClassVar[bool] = True
    weight: np.ndarray
    conv: ConvGeometry
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None

    def kernel(self) -> np.ndarray:
        """Conv weights as ``[out, in / groups, ky, kx]`` (a trailing time axis dropped)."""
        w = np.asarray(self.weight)
        return w.reshape(w.shape[:4]) if w.ndim == 5 else w


@dataclass(frozen=True, kw_only=True)
class ConvTransposeLayer(ConvLayer):
    """``convT``: a transposed convolution (lava-dl 0.6's netx cannot run it)."""

    kind: ClassVar[str] = "convT"


@dataclass(frozen=True, kw_only=True)
class PoolLayer(_ChannelFeatures, Layer):
    """``pool``: channel-wise pooling, ``conv`` its geometry (in = out channels)."""

    kind: ClassVar[str] = "pool"
    conv: ConvGeometry
    weight: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True)
class UnpoolLayer(PoolLayer):
    """``unpool`` (lava-dl 0.6's netx cannot run it)."""

    kind: ClassVar[str] = "unpool"


@dataclass(frozen=True, kw_only=True)
class AverageLayer(Layer):
    """``average`` (lava-dl 0.6's netx cannot run it)."""

    kind: ClassVar[str] = "average"


@dataclass(frozen=True, kw_only=True)
class ConcatLayer(Layer):
    """``concat`` (lava-dl 0.6's netx cannot run it)."""

    kind: ClassVar[str] = "concat"


LAYER_TYPES: Mapping[str, type[Layer]] = {cls.kind: cls for cls in (
    InputLayer, FlattenLayer, DenseLayer, RecurrentDenseLayer, ComplexDenseLayer, ConvLayer,
    ConvTransposeLayer, PoolLayer, UnpoolLayer, AverageLayer, ConcatLayer)}
LAYER_KINDS = frozenset(LAYER_TYPES)
DENSE_KINDS = frozenset(k for k, cls in LAYER_TYPES.items() if issubclass(cls, DenseLayer))
CONV_KINDS = frozenset(k for k, cls in LAYER_TYPES.items()
                       if issubclass(cls, (ConvLayer, PoolLayer)))


@dataclass(frozen=True)
class NetxNetwork:
    """A whole netx file: its layers in order and its root attributes."""

    path: Path
    layers: tuple[Layer, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    simulation: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"Ts": 1, "tSample": 16}

    @property
    def synaptic_layers(self) -> tuple[Layer, ...]:
        """The layers with a synapse matrix (:attr:`Layer.synaptic`), in order."""
        return tuple(layer for layer in self.layers if layer.synaptic)


def dense_network(
    weights: list[np.ndarray], input_layer: bool = True, path: str | Path = "memory.net"
) -> NetxNetwork:
    """An in-memory network of CUBA dense layers with the given ``[out, in]`` weights.

    For planning and tests: the mapper and energy model accept it like a file's contents.
    With ``input_layer`` an ``input`` layer of ``weights[0].shape[1]`` neurons comes first.
    """
    layers: list[Layer] = []
    if input_layer:
        layers.append(InputLayer(index=0, shape=(weights[0].shape[1],)))
    for w in weights:
        layers.append(DenseLayer(
            index=len(layers), shape=(w.shape[0],), weight=np.asarray(w, dtype=np.float32),
            features=(w.shape[1], w.shape[0]), neuron=Neuron("CUBA", {})))
    return NetxNetwork(Path(path), tuple(layers))
