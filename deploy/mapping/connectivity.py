"""A layer's nonzero synapses as CSR (:class:`~gradr_deploy.mapping.result.Connectivity`).

Dense layers keep their stored neuron order; conv layers are expanded synapse by synapse (no
weight sharing) with output neurons position-major, ``(y, x, channel)``, so that a contiguous run
of neurons, one core, holds whole receptive-field neighbourhoods.
"""

from __future__ import annotations

import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.result import Connectivity
from gradr_deploy.netx import (
    ConvLayer,
    DenseLayer,
    Layer,
    NetxNetwork,
    RecurrentDenseLayer,
    delay_bits,
    weight_format,
)

_CONV_CHUNK = 1 << 22  # (position, kernel entry) pairs built at once when expanding a conv


def _nonzero(weight: np.ndarray) -> np.ndarray:
    """Synapses netx programs: weights that stay nonzero after netx's ``astype(int)``."""
    return np.trunc(np.asarray(weight)) != 0


def dense_connectivity(mask: np.ndarray) -> Connectivity:
    """CSR of a ``[out, in]`` nonzero mask (rows in stored order)."""
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=mask.shape[0]), out=indptr[1:])
    return Connectivity(indptr, cols.astype(np.int32), mask.shape[1], np.arange(mask.shape[0]))


def conv_connectivity(
    mask: np.ndarray,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> Connectivity:
    """CSR of a convolution from its ``[out, in/groups, ky, kx]`` nonzero kernel mask.

    Rows are output neurons in ``(y, x, channel)`` order; columns are input neurons in the
    stored ``(channel, y, x)`` C order. Padding positions have no synapse.
    """
    c_in, h_in, w_in = in_shape
    c_out, h_out, w_out = out_shape
    eo, ec, eky, ekx = (a.astype(np.int64) for a in np.nonzero(mask))  # sorted by eo
    ec = ec + (eo // (c_out // groups)) * (c_in // groups)
    positions = h_out * w_out
    py, px = np.divmod(np.arange(positions), w_out)
    counts = np.zeros(positions * c_out, dtype=np.int64)
    chunks: list[np.ndarray] = []
    step = max(1, _CONV_CHUNK // max(len(eo), 1))
    for start in range(0, positions, step):
        sl = slice(start, min(start + step, positions))
        iy = py[sl, None] * stride[0] - padding[0] + eky[None, :] * dilation[0]
        ix = px[sl, None] * stride[1] - padding[1] + ekx[None, :] * dilation[1]
        valid = (iy >= 0) & (iy < h_in) & (ix >= 0) & (ix < w_in)
        rows = np.arange(sl.start, sl.stop)[:, None] * c_out + eo[None, :]
        counts += np.bincount(rows[valid], minlength=positions * c_out)
        chunks.append(((ec[None, :] * h_in + iy) * w_in + ix)[valid].astype(np.int32))
    indptr = np.zeros(positions * c_out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    q = np.arange(positions * c_out)
    order = (q % c_out) * positions + q // c_out
    indices = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    return Connectivity(indptr, indices, c_in * h_in * w_in, order)


def neuron_order(shape: tuple[int, ...]) -> np.ndarray:
    """Partition order of a layer without synapses: position-major for (c, y, x) shapes."""
    n = int(np.prod(shape))
    if len(shape) != 3 or shape[0] == n:
        return np.arange(n)
    channels, positions = shape[0], n // shape[0]
    q = np.arange(n)
    return (q % channels) * positions + q // channels



def layer_connectivity(
    net: NetxNetwork, i: int, pre: int | None, profile: HardwareProfile, warnings: list[str],
    input_shape: tuple[int, ...] | None = None,
) -> tuple[Connectivity, int, int]:
    layer = net.layers[i]
    if layer.kind == "input":
        order = neuron_order(layer.shape)
        empty = np.zeros(layer.neurons + 1, np.int64)
        return Connectivity(empty, np.zeros(0, np.int32), 0, order), 0, 0
    if isinstance(layer, ConvLayer):
        if pre is None and input_shape is None:
            raise InputError(
                f"{net.path}: conv layer {i} is the first layer; its input size is unknown. "
                "Export the network with an input layer (slayer.block.*.Input)"
            )
        # netx's input_shape is (x, y, f); stored shapes are (f, y, x)
        pre_shape = tuple(reversed(input_shape)) if pre is None else net.layers[pre].shape
        geometry, kernel = layer.conv, layer.kernel()
        weights = kernel
        conn = conv_connectivity(
            _nonzero(kernel),
            pre_shape,  # type: ignore[arg-type]
            layer.shape,  # type: ignore[arg-type]
            geometry.stride,
            geometry.padding,
            geometry.dilation,
            geometry.groups,
        )
    elif isinstance(layer, DenseLayer):
        weights = layer.weight_matrix()
        if isinstance(layer, RecurrentDenseLayer):
            rec = np.asarray(layer.weight_rec).reshape(layer.neurons, layer.neurons)
            weights = np.hstack([weights, rec])
        conn = dense_connectivity(_nonzero(weights))
    else:
        raise InputError(f"{net.path}: layer {i} ({layer.kind}) has no synapses to map")
    fmt = weight_format(weights)
    wbits = min(max(fmt.bits, 1), profile.max_weight_bits)
    if fmt.bits > profile.max_weight_bits:
        warnings.append(
            f"layer {i}: netx derives {fmt.bits}-bit weights; {profile.name} stores at most "
            f"{profile.max_weight_bits} (precision is lost on hardware)"
        )
    dbits = min(delay_bits(layer.delay), profile.max_delay_bits)
    return conn, wbits, dbits


def dense_connections(layer: Layer) -> int:
    """Connections a dense (non-spiking) implementation computes: weights incl. zeros."""
    if isinstance(layer, ConvLayer):
        ky, kx = layer.conv.kernel
        return layer.neurons * (layer.conv.in_channels // layer.conv.groups) * ky * kx
    if isinstance(layer, DenseLayer):
        n_in, n_out = layer.features
        return n_out * (n_in + (n_out if isinstance(layer, RecurrentDenseLayer) else 0))
    return 0

