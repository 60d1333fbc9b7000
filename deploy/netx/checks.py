"""The checks a netx file passes before anything maps or runs it.

:func:`check_structure` refuses, from the HDF5 metadata alone, what could read outside the file or
exhaust memory; the others check one layer's arrays against its declared shapes, and each layer
against the one before it. Each error names the file, the layer and what would fix it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.netx.keys import (
    BIAS_KEY,
    DELAY_KEY,
    WEIGHT_IMAG_KEY,
    WEIGHT_KEY,
    WEIGHT_REAL_KEY,
    WEIGHT_REC_KEY,
)
from gradr_deploy.netx.layers import (
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    PoolLayer,
    RecurrentDenseLayer,
)
from gradr_deploy.netx.metadata import recorded_input_shape

MAX_DATASET_ELEMENTS = 1 << 28  # 2^28 values (1 GiB of float32): far above any Loihi network
MAX_LAYER_NEURONS = 1 << 26  # 64 M neurons in one layer: hundreds of Loihi 2 chips
MAX_LAYER_SYNAPSES = 1 << 28  # synapses a conv layer expands to (neurons x kernel entries)
NUMERIC_KEYS = frozenset({WEIGHT_KEY, WEIGHT_REC_KEY, WEIGHT_REAL_KEY, WEIGHT_IMAG_KEY,
                          BIAS_KEY, DELAY_KEY})


def check_structure(path: Path, handle: h5py.File) -> None:
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


def check_first_conv(path: Path, layer: Layer, attrs: Mapping[str, Any]) -> None:
    """A conv-first network must fit the input shape gradr-lava recorded for it."""
    if not isinstance(layer, ConvLayer) or layer.kind != "conv":
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


def check_bias(where: str, layer: Layer) -> None:
    """A bias is one value, one per neuron, or (conv) one per channel, as netx broadcasts it."""
    bias = getattr(layer, "bias", None)
    if bias is None:
        return
    size = int(np.asarray(bias).size)
    channels = layer.shape[0] if len(layer.shape) == 3 and layer.kind == "conv" else None
    if size not in (1, layer.neurons) and size != channels:
        allowed = f"1 or {layer.neurons}" + (f" or {channels} (one per channel)"
                                            if channels else "")
        raise InputError(f"{where}: 'bias' has {size} values for {layer.neurons} neurons; "
                         f"netx needs {allowed}")
    if not np.isfinite(np.asarray(bias, dtype=np.float64)).all():
        raise InputError(f"{where}: 'bias' holds NaN or infinity")


def check_weights(where: str, layer: Layer) -> None:
    """Weight arrays agree with the layer's declared features, channels, kernel and shape."""
    if isinstance(layer, DenseLayer):
        n_in, n_out = layer.features
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
        if isinstance(layer, RecurrentDenseLayer) and layer.weight_rec.size != n_out * n_out:
            raise InputError(
                f"{where}: weight_rec shape {layer.weight_rec.shape} is not [{n_out}, {n_out}]"
            )
    if isinstance(layer, ConvLayer) and layer.kind == "conv":
        geometry = layer.conv
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


def check_consistency(path: Path, layer: Layer, previous: list[Layer]) -> None:
    """Check that ``layer`` accepts what the previous layer produces."""
    if not previous:
        return
    prev = previous[-1]
    where = f"{path}: layer {layer.index}"
    if isinstance(layer, DenseLayer):
        if layer.features[0] != prev.neurons:
            raise InputError(
                f"{where}: inFeatures = {layer.features[0]} but layer {prev.index} "
                f"({prev.kind}) has {prev.neurons} neurons; the weight must be "
                f"[{layer.features[1]}, {prev.neurons}]"
            )
    elif isinstance(layer, FlattenLayer) and layer.neurons != prev.neurons:
        raise InputError(
            f"{where}: flatten shape {layer.shape} holds {layer.neurons} values but layer "
            f"{prev.index} has {prev.neurons} neurons"
        )
    elif isinstance(layer, ConvLayer | PoolLayer) and layer.kind in ("conv", "pool"):
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
