"""Read lava-dl's netx HDF5 network files (``export_hdf5``) into frozen dataclasses.

One read path, no Lava import. The file layout (lava-dl 0.6) is ``/layer/0 .. /layer/{n-1}``,
one group per layer in order; every HDF5 key name and fixed-point scale the toolchain relies on
is a constant in this module.

Axis conventions, as found in files written by lava-dl and as netx reads them:

- ``shape`` is stored channel-first, ``(f, y, x)`` = (channels, height, width) for conv nets;
  netx reverses it to Lava's ``(x, y, f)``. Dense layers store ``(n,)`` or ``(n, 1, 1)``.
- dense ``weight`` is ``[out, in]`` (a 1-D vector of ``out * in`` values also occurs:
  netx reshapes it to ``[out, -1]``; see :meth:`Layer.weight_matrix`).
- conv ``weight`` is PyTorch's ``[out, in / groups, ky, kx]`` (kernel rows = y, columns = x),
  sometimes with a trailing time axis of length 1; ``kernelSize``, ``stride``, ``padding`` and
  ``dilation`` are stored ``(y, x)``. netx flips and transposes the kernel for Lava; counts of
  synapses and receptive fields are the same either way.
- A dense layer after ``flatten`` reads its input in the C order of the previous stored shape
  (netx: ``out.transpose([2, 1, 0]).flatten()`` on Lava's ``(x, y, f)``).
- Weights are integer mantissas stored as floats; netx truncates them with ``astype(int)``.

Example:
    >>> from gradr_deploy.netx import read_netx
    >>> net = read_netx("network.net")  # doctest: +SKIP
    >>> [(layer.kind, layer.neurons) for layer in net.layers]  # doctest: +SKIP
    [('dense', 256), ('dense', 200)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import h5py
import numpy as np

from gradr_deploy.errors import InputError

# --- HDF5 key names (lava-dl 0.6 export_hdf5 / netx hdf5.py) ---------------------------------
LAYER_GROUP = "layer"
SIMULATION_GROUP = "simulation"
TYPE_KEY = "type"
SHAPE_KEY = "shape"
WEIGHT_KEY = "weight"
WEIGHT_REC_KEY = "weight_rec"
WEIGHT_REAL_KEY = "real"  # complex synapses: weight/real, weight/imag
WEIGHT_IMAG_KEY = "imag"
BIAS_KEY = "bias"
DELAY_KEY = "delay"
NEURON_GROUP = "neuron"
IN_FEATURES_KEY = "inFeatures"
OUT_FEATURES_KEY = "outFeatures"
IN_CHANNELS_KEY = "inChannels"
OUT_CHANNELS_KEY = "outChannels"
KERNEL_SIZE_KEY = "kernelSize"
STRIDE_KEY = "stride"
PADDING_KEY = "padding"
DILATION_KEY = "dilation"
GROUPS_KEY = "groups"

# --- fixed-point scales used by netx / Lava --------------------------------------------------
DECAY_SCALE = 4096  # iDecay, vDecay are in units of 1/4096 per time step (12-bit decays)
THRESHOLD_EXP = 6  # Lava LIF: effective threshold = vThMant << 6
BIAS_EXP = 6  # netx programs bias_exp = 6: effective bias = bias_mant << 6
WEIGHT_EXP_BASE = 6  # Loihi synapse: effective weight = mantissa << (6 + weight_exponent)
SPIKE_EXP = 6  # netx default: graded-spike payloads are fixed point with 6 fractional bits
MAX_WEIGHT_BITS = 8  # Loihi weight mantissa (sign included in mixed mode)
MAX_DELAY = 62  # netx clamps synaptic delays to 0..62 time steps

LAYER_KINDS = frozenset(
    {
        "input",
        "flatten",
        "dense",
        "dense_rec",
        "dense_comp",
        "conv",
        "pool",
        "convT",
        "unpool",
        "average",
        "concat",
    }
)
DENSE_KINDS = frozenset({"dense", "dense_rec", "dense_comp"})
CONV_KINDS = frozenset({"conv", "pool", "convT", "unpool"})


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


@dataclass(frozen=True)
class Layer:
    """One ``/layer/{index}`` group. Arrays are exactly as stored (see the module docstring)."""

    index: int
    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None
    neuron: Neuron | None = None
    conv: ConvGeometry | None = None
    weight_rec: np.ndarray | None = None  # dense_rec: [out, out]
    weight_imag: np.ndarray | None = None  # dense_comp: imaginary part ([out, in])
    features: tuple[int, int] | None = None  # dense: (inFeatures, outFeatures)

    @property
    def neurons(self) -> int:
        """Number of neurons (compartments): the product of ``shape``."""
        return int(np.prod(self.shape)) if self.shape else 0

    @property
    def in_features(self) -> int | None:
        """Dense: ``inFeatures``; conv/pool: input channels; else None."""
        if self.features is not None:
            return self.features[0]
        return self.conv.in_channels if self.conv is not None else None

    @property
    def out_features(self) -> int | None:
        """Dense: ``outFeatures``; conv/pool: output channels; else None."""
        if self.features is not None:
            return self.features[1]
        return self.conv.out_channels if self.conv is not None else None

    def weight_matrix(self) -> np.ndarray:
        """Dense weights as ``[out, in]`` (reshaping a stored 1-D vector the way netx does)."""
        if self.weight is None or self.features is None:
            raise InputError(f"layer {self.index} ({self.kind}) has no dense weight matrix")
        n_in, n_out = self.features
        return np.asarray(self.weight).reshape(n_out, n_in)

    def kernel(self) -> np.ndarray:
        """Conv weights as ``[out, in / groups, ky, kx]`` (a trailing time axis dropped)."""
        if self.weight is None or self.conv is None:
            raise InputError(f"layer {self.index} ({self.kind}) has no convolution kernel")
        w = np.asarray(self.weight)
        return w.reshape(w.shape[:4]) if w.ndim == 5 else w


@dataclass(frozen=True)
class NetxNetwork:
    """A whole netx file: its layers in order and its root attributes."""

    path: Path
    layers: tuple[Layer, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    simulation: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"Ts": 1, "tSample": 16}


class SignMode(IntEnum):
    """Loihi synapse sign modes, numbered as in netx's ``SYNAPSE_SIGN_MODE``."""

    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


@dataclass(frozen=True)
class WeightFormat:
    """How netx programs a layer's weights: bits per weight, exponent, sign mode.

    ``bits`` is what netx computes: 1-8, or 9 for mixed-sign weights beyond -128..127 (netx
    passes 9 on; Loihi stores at most :data:`MAX_WEIGHT_BITS`, the mapper caps and warns).
    """

    bits: int
    exponent: int
    sign_mode: SignMode


def weight_format(weight: np.ndarray) -> WeightFormat:
    """Bits, exponent and sign mode netx's ``optimize_weight_bits`` derives from ``weight``.

    A numpy re-implementation (no Lava import) of lava-dl 0.6 ``netx.utils.optimize_weight_bits``
    applied to the weights as netx loads them (``astype(int)``). Differences, on purpose: values
    beyond -256..254 are an error here where netx prints a warning and clips; an all-zero matrix
    gives 1 bit where netx divides by zero.

    Args:
        weight: integer-valued weight mantissas, any shape.

    Returns:
        the weight format; ``bits`` is the synapse-memory width of one weight in bits.
    """
    w = np.asarray(weight)
    if w.size == 0:
        return WeightFormat(1, 0, SignMode.EXCITATORY)
    if not np.isfinite(w).all():
        raise InputError("weights contain NaN or infinity; re-export the network")
    w_max, w_min = int(np.trunc(w.max())), int(np.trunc(w.min()))  # netx: astype(int)
    if max(abs(w_max), abs(w_min)) >= 2**62:
        raise InputError(f"weights up to {max(abs(w_max), abs(w_min))} are not integer mantissas")
    if w_max == 0 and w_min == 0:
        return WeightFormat(1, 0, SignMode.EXCITATORY)
    if (w_max > 254 and w_min < 0) or (w_min < -256 and w_max > 0):
        raise InputError(
            f"weights span {w_min}..{w_max}: beyond Loihi's -256..254 for mixed-sign synapses "
            "(netx would clip them); re-export with 8-bit weight quantization"
        )
    if w_max < 0:
        mode, signed, scale = SignMode.INHIBITORY, 0, -256 / w_min
    elif w_min >= 0:
        mode, signed, scale = SignMode.EXCITATORY, 0, 255 / w_max
    else:
        pos_scale = 127 / w_max if w_max > 0 else math.inf
        mode, signed, scale = SignMode.MIXED, 1, min(pos_scale, -128 / w_min)
    scale_bits = math.floor(math.log2(scale)) + signed
    # n: the largest power of two (<= 8) dividing every weight = the trailing zero bits of the
    # bitwise OR of all magnitudes
    magnitudes = np.abs(w.astype(np.int64 if max(abs(w_min), abs(w_max)) >= 2**31 else np.int32))
    combined = int(np.bitwise_or.reduce(magnitudes, axis=None))
    trailing = (combined & -combined).bit_length() - 1
    n = min(trailing, MAX_WEIGHT_BITS) - signed
    bits = MAX_WEIGHT_BITS - scale_bits - n
    return WeightFormat(int(bits), -scale_bits, mode)


def delay_bits(delay: np.ndarray | None) -> int:
    """Bits per synapse for the delays (0 when there are none or all are 0; 6 for up to 62)."""
    if delay is None:
        return 0
    d = np.asarray(delay)
    if d.size == 0 or d.max() <= 0:
        return 0
    return math.ceil(math.log2(min(float(d.max()), MAX_DELAY) + 1))


def dense_delays(delay: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A dense layer's stored ``delay`` as one delay per synapse ``[out, in]``, as netx expands
    it: a scalar for all, one per output neuron or one per input, or the full matrix; truncated
    to integers and clamped to 0 .. :data:`MAX_DELAY`.

    Raises:
        ValueError: the delay's shape fits none of these.
    """
    delay = np.clip(np.trunc(np.asarray(delay, dtype=np.float64)), 0, MAX_DELAY).astype(np.int64)
    if delay.ndim == 0:
        return np.full(shape, int(delay))
    if delay.ndim == 1 and delay.size == shape[0]:
        return np.repeat(delay.reshape(-1, 1), shape[1], axis=1)
    if delay.ndim == 1 and delay.size == shape[1]:
        return np.repeat(delay.reshape(1, -1), shape[0], axis=0)
    if delay.size == shape[0] * shape[1]:
        return delay.reshape(shape)
    raise ValueError(f"delay of shape {delay.shape} does not fit weight {shape}")


# --- reading ---------------------------------------------------------------------------------


def read_netx(path: str | Path) -> NetxNetwork:
    """Read a netx HDF5 file into a :class:`NetxNetwork`.

    Raises:
        InputError: the file is missing, not HDF5, or not a consistent netx network; the message
            names the file, the layer index and what would fix it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; pass the netx .net/.h5 file written by export")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a netx HDF5 file")
    if not h5py.is_hdf5(path):
        raise InputError(
            f"{path}: not an HDF5 file: corrupt or truncated? Re-export it with lava-dl's "
            "export_hdf5 (netx format)"
        )
    try:
        with h5py.File(path, "r") as handle:
            return _read_open(path, handle)
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise InputError(
            f"{path}: unreadable HDF5 content ({error}): corrupt or truncated? Re-export it"
        ) from error


MAX_DATASET_ELEMENTS = 1 << 28  # 2^28 values (1 GiB of float32): far above any Loihi network
MAX_LAYER_NEURONS = 1 << 26  # 64 M neurons in one layer: hundreds of Loihi 2 chips
MAX_LAYER_SYNAPSES = 1 << 28  # synapses a conv layer expands to (neurons x kernel entries)
NUMERIC_KEYS = frozenset({WEIGHT_KEY, WEIGHT_REC_KEY, WEIGHT_REAL_KEY, WEIGHT_IMAG_KEY,
                          BIAS_KEY, DELAY_KEY})


def _check_structure(path: Path, handle: h5py.File) -> None:
    """Refuse what could read outside the file or exhaust memory, before any data is read.

    netx files written by lava-dl hold plain groups and datasets only. External and soft links,
    datasets whose raw data lives in other files (external storage) and virtual datasets could
    make a reader pull in any file on the machine (``/etc/passwd`` as weights), so all are
    refused. Every dataset's declared size is checked against :data:`MAX_DATASET_ELEMENTS`
    and numeric datasets' dtypes against real numbers, from the metadata alone.
    """
    pending: list[tuple[str, h5py.Group]] = [("", handle)]
    while pending:
        prefix, group = pending.pop()
        for name in group:
            where = f"{path}: /{prefix}{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
                raise InputError(
                    f"{where} is {kind}; netx files hold plain groups and datasets only, and "
                    "links are not followed (they could read other files). Re-export the network"
                )
            node = group[name]
            if isinstance(node, h5py.Group):
                pending.append((f"{prefix}{name}/", node))
                continue
            if not isinstance(node, h5py.Dataset):
                raise InputError(f"{where}: neither a group nor a dataset")
            if node.external or node.is_virtual:
                raise InputError(
                    f"{where} keeps its data in other files (HDF5 external or virtual storage); "
                    "refused, since it could read any file. Re-export the network"
                )
            size = int(np.prod(node.shape, dtype=np.float64)) if node.shape else 1
            if size > MAX_DATASET_ELEMENTS:
                raise InputError(
                    f"{where} declares {node.shape} = {size:.3g} values, more than "
                    f"{MAX_DATASET_ELEMENTS} (no Loihi network is that large); corrupt file?"
                )
            if name in NUMERIC_KEYS and node.dtype.kind not in "biuf":
                raise InputError(
                    f"{where} has dtype {node.dtype}; weights, biases and delays must be real "
                    "numbers (integers or floats)"
                )


def _read_open(path: Path, handle: h5py.File) -> NetxNetwork:
    _check_structure(path, handle)
    if LAYER_GROUP not in handle or not isinstance(handle[LAYER_GROUP], h5py.Group):
        raise InputError(
            f"{path}: no '/{LAYER_GROUP}' group: not a netx network file (lava-dl export_hdf5 "
            f"writes /{LAYER_GROUP}/0, /{LAYER_GROUP}/1, ...)"
        )
    group = handle[LAYER_GROUP]
    names = list(group.keys())
    if not names:
        raise InputError(f"{path}: '/{LAYER_GROUP}' is empty; the network has no layers")
    if sorted(names, key=_int_or_inf) != [str(i) for i in range(len(names))]:
        raise InputError(
            f"{path}: layer groups must be /{LAYER_GROUP}/0 .. /{LAYER_GROUP}/{len(names) - 1} "
            f"with no gaps; found {sorted(names, key=_int_or_inf)}"
        )
    layers: list[Layer] = []
    for index in range(len(names)):
        node = group[str(index)]
        if not isinstance(node, h5py.Group):
            raise InputError(f"{path}: layer {index}: expected a group, found a dataset")
        try:
            layer = _read_layer(path, index, node)
        except InputError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError,
                UnicodeDecodeError) as exc:  # malformed content in a way no check names
            raise InputError(f"{path}: layer {index}: malformed ({type(exc).__name__}: "
                             f"{exc}); re-export the network with lava-dl") from None
        _check_consistency(path, layer, layers)
        layers.append(layer)
    simulation = {}
    if SIMULATION_GROUP in handle and isinstance(handle[SIMULATION_GROUP], h5py.Group):
        simulation = {
            key: _decode(node[()])
            for key, node in handle[SIMULATION_GROUP].items()
            if isinstance(node, h5py.Dataset)
        }
    attrs = {key: _decode(value) for key, value in handle.attrs.items()}
    _check_first_conv(path, layers[0], attrs)
    return NetxNetwork(path, tuple(layers), MappingProxyType(attrs), MappingProxyType(simulation))


def _check_first_conv(path: Path, layer: Layer, attrs: Mapping[str, Any]) -> None:
    """A conv-first network must fit the input shape gradr-lava recorded for it."""
    from gradr_deploy.netx.metadata import recorded_input_shape

    if layer.kind != "conv" or layer.conv is None:
        return
    shape = recorded_input_shape(attrs, str(path))
    if shape is None:
        return
    x, y, f = shape
    expected = (layer.conv.in_channels, *layer.conv.output_size(y, x))
    got = (f, *layer.shape[1:])
    if expected != got or min(expected) < 1:
        raise InputError(
            f"{path}: layer 0: the recorded input (x, y, f) = {tuple(shape)} with kernel "
            f"{layer.conv.kernel}, stride {layer.conv.stride}, padding {layer.conv.padding} "
            f"gives (inChannels, y, x) = {expected}, but the file says {got}; re-export the "
            "network or fix its input shape")


def _int_or_inf(name: str) -> float:
    return int(name) if name.isdigit() else math.inf


def _decode(value: Any) -> Any:
    """HDF5 value -> str / int / float / bool / list (attributes) ."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.shape == ():
            return _decode(value[()])
        return [_decode(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_layer(path: Path, index: int, node: h5py.Group) -> Layer:
    where = f"{path}: layer {index}"
    for key in (TYPE_KEY, SHAPE_KEY):
        if key not in node:
            raise InputError(f"{where}: missing '{key}' dataset; every netx layer needs one")
    kind = _read_str(where, node[TYPE_KEY][()])
    if kind not in LAYER_KINDS:
        raise InputError(
            f"{where}: unknown layer type '{kind}'; netx layer types are {sorted(LAYER_KINDS)}"
        )
    shape_arr = np.atleast_1d(node[SHAPE_KEY][()])
    if shape_arr.ndim != 1 or not np.issubdtype(shape_arr.dtype, np.integer):
        raise InputError(f"{where}: 'shape' must be a vector of integers, got {shape_arr!r}")
    if (shape_arr <= 0).any():
        raise InputError(f"{where}: 'shape' has non-positive sizes {shape_arr.tolist()}")
    shape = tuple(int(s) for s in shape_arr)
    neurons = math.prod(shape)
    if neurons > MAX_LAYER_NEURONS:
        raise InputError(f"{where}: 'shape' {list(shape)} declares {neurons:.3g} neurons, more "
                         f"than {MAX_LAYER_NEURONS} (no Loihi deployment is that large)")

    weight = weight_imag = None
    if WEIGHT_KEY in node:
        wnode = node[WEIGHT_KEY]
        if isinstance(wnode, h5py.Group):  # complex synapse
            weight = _array(wnode, WEIGHT_REAL_KEY)
            weight_imag = _array(wnode, WEIGHT_IMAG_KEY)
        else:
            weight = np.asarray(wnode[()])
    layer = Layer(
        index=index,
        kind=kind,
        shape=shape,
        weight=weight,
        bias=_array(node, BIAS_KEY),
        delay=_array(node, DELAY_KEY),
        neuron=_read_neuron(where, node),
        conv=_read_conv(where, kind, shape, node),
        weight_rec=_array(node, WEIGHT_REC_KEY),
        weight_imag=weight_imag,
        features=_read_features(where, kind, node),
    )
    _check_weights(where, layer)
    _check_bias(where, layer)
    return layer


def _read_str(where: str, value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise InputError(f"{where}: 'type' must be one string, got {value.size} values")
        value = value.reshape(-1)[0]
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else str(value)


def _array(node: h5py.Group, key: str) -> np.ndarray | None:
    return np.asarray(node[key][()]) if key in node else None


def _scalar(where: str, node: h5py.Group, key: str) -> int:
    if key not in node:
        raise InputError(f"{where}: missing '{key}'; re-export the layer with lava-dl")
    value = np.asarray(node[key][()])
    if value.size != 1 or value.dtype.kind not in "biuf" or \
            not np.isfinite(value.astype(np.float64)).all():
        raise InputError(f"{where}: '{key}' must be a single integer, got {value.tolist()!r:.80}")
    return int(value.reshape(()))


def _pair(where: str, node: h5py.Group, key: str, default: int | None = None) -> tuple[int, int]:
    if key not in node:
        if default is not None:
            return (default, default)
        raise InputError(f"{where}: missing '{key}'; conv layers store it as (y, x)")
    raw = np.atleast_1d(np.asarray(node[key][()]))
    if raw.dtype.kind not in "biuf" or not np.isfinite(raw.astype(np.float64)).all():
        raise InputError(f"{where}: '{key}' must hold integers, got {raw.tolist()!r:.80}")
    value = raw.astype(np.int64)
    if value.size == 1:
        return (int(value[0]), int(value[0]))
    if value.size != 2:
        raise InputError(f"{where}: '{key}' must hold 1 or 2 integers, got {value.tolist()}")
    return (int(value[0]), int(value[1]))


def _read_neuron(where: str, node: h5py.Group) -> Neuron | None:
    if NEURON_GROUP not in node:
        return None
    group = node[NEURON_GROUP]
    if TYPE_KEY not in group:
        raise InputError(f"{where}: 'neuron' group has no 'type' (e.g. CUBA, SDNN)")
    params: dict[str, Any] = {}
    for key, item in group.items():
        if key == TYPE_KEY or not isinstance(item, h5py.Dataset):
            continue
        value = item[()]
        params[key] = _decode(value) if np.ndim(value) == 0 else np.asarray(value)
    return Neuron(_read_str(f"{where}: neuron", group[TYPE_KEY][()]), MappingProxyType(params))


def _read_features(where: str, kind: str, node: h5py.Group) -> tuple[int, int] | None:
    if kind not in DENSE_KINDS:
        return None
    return (_scalar(where, node, IN_FEATURES_KEY), _scalar(where, node, OUT_FEATURES_KEY))


def _read_conv(where: str, kind: str, shape: tuple[int, ...], node: h5py.Group):
    if kind not in CONV_KINDS:
        return None
    if kind in ("conv", "convT"):
        in_ch = _scalar(where, node, IN_CHANNELS_KEY)
        out_ch = _scalar(where, node, OUT_CHANNELS_KEY)
        groups = _scalar(where, node, GROUPS_KEY)
    else:  # pool / unpool act channel-wise and store no channel counts
        in_ch = out_ch = groups = shape[0]
    geometry = ConvGeometry(
        in_channels=in_ch,
        out_channels=out_ch,
        kernel=_pair(where, node, KERNEL_SIZE_KEY),
        stride=_pair(where, node, STRIDE_KEY),
        padding=_pair(where, node, PADDING_KEY),
        dilation=_pair(where, node, DILATION_KEY, default=1),
        groups=groups,
    )
    if min(geometry.kernel + geometry.stride + geometry.dilation) < 1 or min(geometry.padding) < 0:
        raise InputError(f"{where}: invalid conv geometry {geometry}")
    if groups < 1 or in_ch % groups or out_ch % groups:
        raise InputError(
            f"{where}: groups={groups} must divide inChannels={in_ch} and outChannels={out_ch}"
        )
    return geometry


def _check_bias(where: str, layer: Layer) -> None:
    """A bias is one value, one per neuron, or (conv) one per channel, as netx broadcasts it."""
    if layer.bias is None:
        return
    size = int(np.asarray(layer.bias).size)
    channels = layer.shape[0] if len(layer.shape) == 3 and layer.kind == "conv" else None
    if size not in (1, layer.neurons) and size != channels:
        allowed = f"1 or {layer.neurons}" + (f" or {channels} (one per channel)"
                                            if channels else "")
        raise InputError(f"{where}: 'bias' has {size} values for {layer.neurons} neurons; "
                         f"netx needs {allowed}")
    if not np.isfinite(np.asarray(layer.bias, dtype=np.float64)).all():
        raise InputError(f"{where}: 'bias' holds NaN or infinity")


def _check_weights(where: str, layer: Layer) -> None:
    if layer.kind in DENSE_KINDS:
        if layer.weight is None:
            raise InputError(f"{where}: dense layer without 'weight'; re-export the layer")
        n_in, n_out = layer.features  # type: ignore[misc]
        if (
            layer.weight.size != n_in * n_out
            or layer.weight.ndim > 2
            or (layer.weight.ndim == 2 and layer.weight.shape != (n_out, n_in))
        ):
            raise InputError(
                f"{where}: weight shape {layer.weight.shape} does not match "
                f"[outFeatures, inFeatures] = [{n_out}, {n_in}]; fix the weight or the features"
            )
        if layer.neurons != n_out:
            raise InputError(
                f"{where}: shape {layer.shape} holds {layer.neurons} neurons but "
                f"outFeatures = {n_out}"
            )
        if layer.weight_rec is not None and layer.weight_rec.size != n_out * n_out:
            raise InputError(
                f"{where}: weight_rec shape {layer.weight_rec.shape} is not [{n_out}, {n_out}]"
            )
    if layer.kind == "dense_rec" and layer.weight_rec is None:
        raise InputError(f"{where}: dense_rec layer without 'weight_rec'")
    if layer.kind == "conv":
        geometry = layer.conv
        if geometry is None or layer.weight is None:
            raise InputError(f"{where}: conv layer without 'weight'; re-export the layer")
        w = layer.weight
        expected = (
            geometry.out_channels,
            geometry.in_channels // geometry.groups,
            *geometry.kernel,
        )
        if w.ndim not in (4, 5) or w.shape[:4] != expected or (w.ndim == 5 and w.shape[4] != 1):
            raise InputError(
                f"{where}: conv weight shape {w.shape} does not match [out, in/groups, ky, kx] "
                f"= {list(expected)}"
            )
        if len(layer.shape) != 3 or layer.shape[0] != geometry.out_channels:
            raise InputError(
                f"{where}: conv shape {layer.shape} must be (outChannels={geometry.out_channels},"
                " y, x)"
            )
        synapses = layer.neurons * math.prod(w.shape[1:4])
        if synapses > MAX_LAYER_SYNAPSES:
            raise InputError(f"{where}: {layer.neurons} neurons x {math.prod(w.shape[1:4])} "
                             f"kernel entries = {synapses:.3g} synapses, more than "
                             f"{MAX_LAYER_SYNAPSES}")


def _check_consistency(path: Path, layer: Layer, previous: list[Layer]) -> None:
    """Check that ``layer`` accepts what the previous layer produces."""
    if not previous:
        return
    prev = previous[-1]
    where = f"{path}: layer {layer.index}"
    if layer.kind in DENSE_KINDS and layer.features is not None:
        if layer.features[0] != prev.neurons:
            raise InputError(
                f"{where}: inFeatures = {layer.features[0]} but layer {prev.index} "
                f"({prev.kind}) has {prev.neurons} neurons; the weight must be "
                f"[{layer.features[1]}, {prev.neurons}]"
            )
    elif layer.kind == "flatten" and layer.neurons != prev.neurons:
        raise InputError(
            f"{where}: flatten shape {layer.shape} holds {layer.neurons} values but layer "
            f"{prev.index} has {prev.neurons} neurons"
        )
    elif layer.kind in ("conv", "pool") and layer.conv is not None:
        if len(prev.shape) != 3:
            raise InputError(
                f"{where}: {layer.kind} needs a (channels, y, x) input but layer {prev.index} "
                f"has shape {prev.shape}"
            )
        expected = (layer.conv.in_channels, *layer.conv.output_size(*prev.shape[1:]))
        got = (prev.shape[0], *layer.shape[1:])
        if expected != got:
            raise InputError(
                f"{where}: input shape {prev.shape} with kernel {layer.conv.kernel}, stride "
                f"{layer.conv.stride}, padding {layer.conv.padding}, dilation "
                f"{layer.conv.dilation} gives (inChannels, y, x) = {expected}, but the file "
                f"says {got}; fix inChannels, the geometry or the shapes"
            )


def dense_network(
    weights: list[np.ndarray], input_layer: bool = True, path: str | Path = "memory.net"
) -> NetxNetwork:
    """An in-memory network of CUBA dense layers with the given ``[out, in]`` weights.

    For planning and tests: the mapper and energy model accept it like a file's contents.
    With ``input_layer`` an ``input`` layer of ``weights[0].shape[1]`` neurons comes first.
    """
    layers: list[Layer] = []
    if input_layer:
        layers.append(Layer(0, "input", (weights[0].shape[1],)))
    for w in weights:
        layers.append(
            Layer(
                len(layers),
                "dense",
                (w.shape[0],),
                weight=np.asarray(w, dtype=np.float32),
                features=(w.shape[1], w.shape[0]),
                neuron=Neuron("CUBA", {}),
            )
        )
    return NetxNetwork(Path(path), tuple(layers))
