"""A netx network as a NIR graph (Neuromorphic Intermediate Representation, nir >= 1.0).

Each netx layer becomes a synapse node and a neuron node; ``flatten`` becomes ``Flatten``:

=====================  ================================================================
netx layer             NIR nodes
=====================  ================================================================
``dense``              ``Linear`` (``Affine`` where the neurons are integrate-and-fire
                       with a bias), weight ``[out, in]``
``conv``               ``Conv2d``: weight ``[out, in/groups, ky, kx]``, stride, padding,
                       dilation, groups as stored (NIR's ``(C, H, W)`` is netx's stored
                       ``(f, y, x)``)
``flatten``            ``Flatten`` over all axes of the ``(C, H, W)`` input
CUBA / LOIHI neurons   ``CubaLIF``; ``IF`` where ``vDecay`` is 0 and ``iDecay`` 4096
=====================  ================================================================

Values are the deployed ones, in slayer's float units: a netx integer (weight as netx truncates
it, ``vThMant``, bias mantissa) divided by :data:`NETX_UNIT` = 2**6, which is exact in binary
floats (multiply by 64 to get Lava's integers back). Lava's discrete CUBA neuron,
``u[t] = (1 - du) u[t-1] + W s[t]``, ``v[t] = (1 - dv) v[t-1] + u[t] + b``, spike where
``v > vth``, then ``v = 0``, is NIR's ``CubaLIF`` under forward Euler with step ``dt`` when

    du = iDecay / 4096 = dt / tau_syn,  w_in = tau_syn / dt,
    dv = vDecay / 4096 = dt / tau_mem,  r = tau_mem / dt,  v_leak = b / dv,  v_reset = 0,

so ``tau_syn``, ``tau_mem`` are in seconds for the chosen ``dt`` (default :data:`DEFAULT_DT`,
0.1 ms: the step snnTorch's NIR import assumes). Where the two still differ (Lava truncates
decayed states to integers, wraps ``u`` at 24 bits, and delivers each layer's spikes one step
later) is written up in ``docs/interop.md``. The time step, the netx unit, the input encoding
and the presentation window go into the graph's metadata.

Only numpy, h5py and ``nir`` (numpy + h5py) are imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.atomic import atomic_path
from gradr_deploy.errors import InputError
from gradr_deploy.netx import DECAY_SCALE, ConvLayer, DenseLayer, NetxNetwork, read_netx

NETX_UNIT = 64  # netx integers = slayer float values * 2**6 (weights, vThMant, biases)
DEFAULT_DT = 1e-4  # seconds per Loihi time step in the NIR graph (snnTorch's NIR convention)
NEURON_KINDS = ("CUBA", "LOIHI")


def _nir():
    try:
        import nir
    except ImportError:  # pragma: no cover - nir is a declared dependency
        raise InputError("the 'nir' package is missing: pip install 'nir>=1.0.8'") from None
    return nir


def netx_to_nir(network: NetxNetwork, dt: float = DEFAULT_DT,
                metadata: dict[str, Any] | None = None) -> Any:
    """The NIR graph (``nir.NIRGraph``) of ``network``, values as deployed.

    Args:
        network: a netx network (:func:`gradr_deploy.netx.read_netx`).
        dt: seconds per time step, for NIR's continuous time constants.
        metadata: extra graph metadata (strings and numbers), e.g. the input encoding.

    Raises:
        InputError: a layer NIR cannot express exactly (recurrent or complex synapses,
            synaptic delays, graded output spikes, sigma-delta neurons, an infinite time
            constant); the message names the layer.
    """
    nir = _nir()
    if not (isinstance(dt, float | int) and 0 < dt < 1):
        raise InputError(f"dt = {dt!r}: the time step must be in seconds, 0 < dt < 1")
    layers = list(network.layers)
    if not layers:
        raise InputError(f"{network.path}: no layers")
    input_shape = _input_shape(network)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    previous, shape = "input", input_shape
    for layer in layers:
        where = f"{network.path}: layer {layer.index} ({layer.kind})"
        if layer.kind == "flatten":
            name = f"flatten{layer.index}"
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0,
                                      end_dim=-1)
            edges.append((previous, name))
            previous, shape = name, (int(np.prod(shape)),)
            continue
        if not isinstance(layer, DenseLayer | ConvLayer) or layer.kind not in ("dense", "conv"):
            raise InputError(f"{where}: NIR export covers dense, conv and flatten layers")
        if layer.delay is not None and np.any(np.trunc(np.asarray(layer.delay)) > 0):
            raise InputError(f"{where}: synaptic delays have no NIR equivalent (NIR's Delay "
                             "node delays a neuron's output, not single synapses)")
        neuron = _neuron_node(nir, layer, where, dt)
        synapse = _synapse_node(nir, layer, shape, bias_in_synapse=isinstance(neuron, nir.IF))
        s_name, n_name = f"synapse{layer.index}", f"neuron{layer.index}"
        nodes[s_name], nodes[n_name] = synapse, neuron
        edges += [(previous, s_name), (s_name, n_name)]
        previous, shape = n_name, tuple(layer.shape) if layer.kind == "conv" else \
            (layer.neurons,)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    graph_metadata = {"source": "gradr-lava (netx -> NIR)", "netx_file": network.path.name,
                      "dt": float(dt), "netx_unit": NETX_UNIT,
                      "lava_layer_delay_steps": 1}
    graph_metadata.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_metadata)


def export_nir(model: str | Path, out: str | Path, dt: float = DEFAULT_DT) -> Path:
    """Read the netx file ``model`` and write its NIR graph to ``out`` (atomically).

    The graph metadata carries what the file recorded about its input (gradr-lava's
    ``encoding``, ``time_steps``, ``drain_steps``, ``dataset``), as JSON where nested.
    """
    from gradr_deploy.netx.metadata import METADATA_ATTR

    network = read_netx(model)
    extra: dict[str, Any] = {}
    if METADATA_ATTR in network.attrs:
        recorded = json.loads(str(network.attrs[METADATA_ATTR]))
        for key in ("dataset", "time_steps", "drain_steps", "model"):
            if recorded.get(key) is not None:
                extra[key] = recorded[key]
        extra["encoding"] = json.dumps(recorded.get("encoding"), sort_keys=True)
    graph = netx_to_nir(network, dt, extra)
    out = Path(out)
    nir = _nir()
    with atomic_path(out) as tmp:
        nir.write(tmp, graph)
    return out


def _input_shape(network: NetxNetwork) -> tuple[int, ...]:
    """NIR input type: ``(features,)`` before a dense layer, ``(C, H, W)`` before a conv."""
    from gradr_deploy.netx.metadata import recorded_input_shape

    first = network.layers[0]
    if first.kind == "input":
        raise InputError(f"{network.path}: layer 0 is a netx 'input' layer (neurons fed by "
                         "a bias); NIR export starts at a dense or conv layer")
    if isinstance(first, DenseLayer):
        return (int(first.features[0]),)
    if not isinstance(first, ConvLayer):
        raise InputError(f"{network.path}: layer 0 ({first.kind}) has no input size")
    recorded = recorded_input_shape(network.attrs, str(network.path))
    if recorded is None:
        raise InputError(f"{network.path}: a conv-first network without a recorded input "
                         "shape; NIR needs (C, H, W)")
    x, y, f = recorded
    return (int(f), int(y), int(x))


def _synapse_node(nir: Any, layer: DenseLayer | ConvLayer, in_shape: tuple[int, ...],
                  bias_in_synapse: bool) -> Any:
    bias = None
    if bias_in_synapse and layer.bias is not None:
        bias = _bias(layer).astype(np.float32) / NETX_UNIT
    if isinstance(layer, DenseLayer):
        weight = np.trunc(layer.weight_matrix()).astype(np.float32) / NETX_UNIT
        if bias is not None:
            return nir.Affine(weight=weight, bias=bias.reshape(-1))
        return nir.Linear(weight=weight)
    geometry = layer.conv
    kernel = np.trunc(layer.kernel()).astype(np.float32) / NETX_UNIT
    conv_bias = np.zeros(geometry.out_channels, np.float32)
    if bias is not None:  # a conv bias in NIR is per channel
        per_channel = bias.reshape(geometry.out_channels, -1)
        if not np.all(per_channel == per_channel[:, :1]):
            raise InputError(f"layer {layer.index}: a per-neuron bias on integrate-and-fire "
                             "conv neurons has no NIR equivalent")
        conv_bias = per_channel[:, 0].copy()
    return nir.Conv2d(
        input_shape=tuple(int(v) for v in in_shape[1:]), weight=kernel,
        stride=tuple(geometry.stride), padding=tuple(geometry.padding),
        dilation=tuple(geometry.dilation), groups=int(geometry.groups), bias=conv_bias)


def _bias(layer: DenseLayer | ConvLayer) -> np.ndarray:
    """The bias mantissas broadcast to ``layer.shape`` (one value, per channel or per neuron)."""
    values = np.trunc(np.asarray(layer.bias, dtype=np.float64)).reshape(-1)
    if values.size not in (1, layer.neurons):  # one per channel
        values = np.repeat(values, layer.neurons // layer.shape[0])
    return np.broadcast_to(values, (layer.neurons,)).reshape(layer.shape)


def _neuron_node(nir: Any, layer: DenseLayer | ConvLayer, where: str, dt: float) -> Any:
    neuron = layer.neuron
    if neuron is None or neuron.kind not in NEURON_KINDS:
        kind = None if neuron is None else neuron.kind
        raise InputError(f"{where}: neuron type {kind!r}; NIR export covers Lava's CUBA "
                         "LIF neurons (netx CUBA / LOIHI)")
    params = neuron.params
    if bool(params.get("gradedSpike", False)):
        raise InputError(f"{where}: graded output spikes have no NIR neuron equivalent")
    try:
        i_decay, v_decay = int(params["iDecay"]), int(params["vDecay"])
        threshold = int(params["vThMant"])
    except KeyError as exc:
        raise InputError(f"{where}: neuron lacks {exc.args[0]}") from None
    ones = np.ones(layer.shape)
    v_threshold = ones * threshold / NETX_UNIT
    bias = _bias(layer) / NETX_UNIT if layer.bias is not None else np.zeros(layer.shape)
    du, dv = i_decay / DECAY_SCALE, v_decay / DECAY_SCALE
    if v_decay == 0:
        if i_decay != DECAY_SCALE:
            raise InputError(f"{where}: vDecay 0 with iDecay {i_decay}: a current-based "
                             "perfect integrator has no NIR neuron (IF has no synaptic "
                             "current); only iDecay 4096 exports, as IF")
        return nir.IF(r=ones / dt, v_threshold=v_threshold, v_reset=np.zeros(layer.shape))
    if i_decay == 0:
        raise InputError(f"{where}: iDecay 0 (a current that never decays) is an infinite "
                         "tau_syn; NIR's CubaLIF cannot express it")
    tau_syn, tau_mem = dt / du, dt / dv
    return nir.CubaLIF(
        tau_syn=ones * tau_syn, tau_mem=ones * tau_mem, r=ones * (tau_mem / dt),
        v_leak=bias / dv, v_threshold=v_threshold, v_reset=np.zeros(layer.shape),
        w_in=ones * (tau_syn / dt),
        metadata={"netx_layer": int(layer.index), "iDecay": i_decay, "vDecay": v_decay,
                  "vThMant": threshold})
