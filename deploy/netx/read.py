"""Read a netx HDF5 file into :class:`~gradr_deploy.netx.layers.NetxNetwork`, checking it.

One read path, no Lava import. Before any data is read the file's structure is checked (no
links, no external or virtual storage, bounded sizes); every layer is then read into the
dataclass of its type and checked against the layer before it. Every error names the file, the
layer and what would fix it.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType
from typing import Any

import h5py
import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.netx.checks import (
    MAX_LAYER_NEURONS,
    check_bias,
    check_consistency,
    check_first_conv,
    check_structure,
    check_weights,
)
from gradr_deploy.netx.keys import (
    BIAS_KEY,
    DELAY_KEY,
    DILATION_KEY,
    GROUPS_KEY,
    IN_CHANNELS_KEY,
    IN_FEATURES_KEY,
    KERNEL_SIZE_KEY,
    LAYER_GROUP,
    NEURON_GROUP,
    OUT_CHANNELS_KEY,
    OUT_FEATURES_KEY,
    PADDING_KEY,
    SHAPE_KEY,
    SIMULATION_GROUP,
    STRIDE_KEY,
    TYPE_KEY,
    WEIGHT_IMAG_KEY,
    WEIGHT_KEY,
    WEIGHT_REAL_KEY,
    WEIGHT_REC_KEY,
)
from gradr_deploy.netx.layers import (
    CONV_KINDS,
    DENSE_KINDS,
    LAYER_KINDS,
    LAYER_TYPES,
    ConvGeometry,
    ConvLayer,
    DenseLayer,
    Layer,
    NetxNetwork,
    Neuron,
)


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


def _read_open(path: Path, handle: h5py.File) -> NetxNetwork:
    check_structure(path, handle)
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
        check_consistency(path, layer, layers)
        layers.append(layer)
    simulation = {}
    if SIMULATION_GROUP in handle and isinstance(handle[SIMULATION_GROUP], h5py.Group):
        simulation = {
            key: _decode(node[()])
            for key, node in handle[SIMULATION_GROUP].items()
            if isinstance(node, h5py.Dataset)
        }
    attrs = {key: _decode(value) for key, value in handle.attrs.items()}
    check_first_conv(path, layers[0], attrs)
    return NetxNetwork(path, tuple(layers), MappingProxyType(attrs), MappingProxyType(simulation))


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
    cls = LAYER_TYPES[kind]
    fields: dict[str, Any] = {"index": index, "shape": shape, "neuron": _read_neuron(where, node)}
    if issubclass(cls, DenseLayer | ConvLayer) and weight is None:
        raise InputError(f"{where}: {kind} layer without 'weight'; re-export the layer")
    if kind in DENSE_KINDS:
        fields.update(weight=weight, features=_read_features(where, node),
                      bias=_array(node, BIAS_KEY), delay=_array(node, DELAY_KEY))
        if kind == "dense_rec":
            fields["weight_rec"] = _required(where, node, WEIGHT_REC_KEY, kind)
        if kind == "dense_comp":
            if weight_imag is None:
                raise InputError(f"{where}: dense_comp layer without 'weight/imag'")
            fields["weight_imag"] = weight_imag
    elif kind in CONV_KINDS:
        fields.update(weight=weight, conv=_read_conv(where, kind, shape, node))
        if issubclass(cls, ConvLayer):
            fields.update(bias=_array(node, BIAS_KEY), delay=_array(node, DELAY_KEY))
    elif kind == "input":
        fields.update(weight=weight, bias=_array(node, BIAS_KEY))
    layer = cls(**fields)
    check_weights(where, layer)
    check_bias(where, layer)
    return layer


def _required(where: str, node: h5py.Group, key: str, kind: str) -> np.ndarray:
    if key not in node:
        raise InputError(f"{where}: {kind} layer without '{key}'; re-export the layer")
    return np.asarray(node[key][()])


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


def _read_features(where: str, node: h5py.Group) -> tuple[int, int]:
    return (_scalar(where, node, IN_FEATURES_KEY), _scalar(where, node, OUT_FEATURES_KEY))


def _read_conv(where: str, kind: str, shape: tuple[int, ...], node: h5py.Group) -> ConvGeometry:
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


