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

from gradr_deploy.netx.layers import (
    BIAS_EXP,
    CONV_KINDS,
    DECAY_SCALE,
    DENSE_KINDS,
    LAYER_KINDS,
    LAYER_TYPES,
    MAX_DELAY,
    MAX_WEIGHT_BITS,
    AverageLayer,
    ComplexDenseLayer,
    ConcatLayer,
    ConvGeometry,
    ConvLayer,
    ConvTransposeLayer,
    DenseLayer,
    FlattenLayer,
    InputLayer,
    Layer,
    NetxNetwork,
    Neuron,
    PoolLayer,
    RecurrentDenseLayer,
    UnpoolLayer,
    dense_network,
)
from gradr_deploy.netx.reachability import (
    IdleSynapses,
    idle_synapses,
    strip_idle,
    useful_in_chain,
    useful_synapses,
)
from gradr_deploy.netx.read import read_netx
from gradr_deploy.netx.weights import (
    SignMode,
    WeightFormat,
    delay_bits,
    dense_delays,
    weight_format,
)

__all__ = [
    "BIAS_EXP", "CONV_KINDS", "DECAY_SCALE", "DENSE_KINDS", "LAYER_KINDS", "LAYER_TYPES",
    "MAX_DELAY", "MAX_WEIGHT_BITS", "AverageLayer", "ComplexDenseLayer", "ConcatLayer",
    "ConvGeometry", "ConvLayer", "ConvTransposeLayer", "DenseLayer", "FlattenLayer",
    "IdleSynapses", "InputLayer", "Layer", "NetxNetwork", "Neuron", "PoolLayer",
    "RecurrentDenseLayer",
    "SignMode", "UnpoolLayer", "WeightFormat", "delay_bits", "dense_delays", "dense_network",
    "idle_synapses", "read_netx", "strip_idle", "useful_in_chain", "useful_synapses",
    "weight_format",
]
