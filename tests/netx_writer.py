"""Write small netx HDF5 files with chosen neuron parameters, biases and delays (for tests)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def _neuron(node: h5py.Group, i_decay: int, v_decay: int, threshold: int) -> None:
    neuron = node.create_group("neuron")
    for key, value in (("gradedSpike", False), ("iDecay", i_decay), ("refDelay", 1),
                       ("vDecay", v_decay), ("vThMant", threshold)):
        neuron.create_dataset(key, data=value)
    neuron.create_dataset("type", data=b"CUBA")


def write_net(path: Path, layers: list[dict], metadata: str | None = None) -> Path:
    """Each dict: ``kind`` (dense/conv/flatten), ``weight``, neuron ``i_decay``, ``v_decay``,
    ``threshold``, optional ``bias``, ``delay``; conv: ``shape`` (f, y, x), ``stride``,
    ``padding``, ``dilation``, ``groups``."""
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, spec in enumerate(layers):
            node = group.create_group(str(index))
            kind = spec["kind"]
            node.create_dataset("type", (1,), "S10", [kind.encode()])
            if kind == "flatten":
                node.create_dataset("shape", data=np.array(spec["shape"]))
                continue
            weight = np.asarray(spec["weight"], np.float32)
            if kind == "dense":
                node.create_dataset("shape", data=np.array([weight.shape[0]]))
                node.create_dataset("inFeatures", data=weight.shape[1])
                node.create_dataset("outFeatures", data=weight.shape[0])
            else:
                node.create_dataset("shape", data=np.array(spec["shape"]))
                node.create_dataset("inChannels", data=weight.shape[1] * spec.get("groups", 1))
                node.create_dataset("outChannels", data=weight.shape[0])
                node.create_dataset("kernelSize", data=np.array(weight.shape[2:]))
                for key in ("stride", "padding", "dilation"):
                    node.create_dataset(key, data=np.array(spec.get(key, (1, 1))))
                node.create_dataset("groups", data=spec.get("groups", 1))
            node.create_dataset("weight", data=weight)
            if spec.get("bias") is not None:
                node.create_dataset("bias", data=np.asarray(spec["bias"], np.float32))
            if spec.get("delay") is not None:
                node.create_dataset("delay", data=np.asarray(spec["delay"], np.float32))
            _neuron(node, spec.get("i_decay", 4096), spec.get("v_decay", 0),
                    spec.get("threshold", 64))
        if metadata is not None:
            handle.attrs["gradr_lava"] = metadata
    return path


def even_weights(rng: np.random.Generator, shape: tuple[int, ...], density: float = 0.6,
                 scale: int = 60) -> np.ndarray:
    """Exported-style weights: even integers, a share ``density`` of them nonzero."""
    values = rng.integers(-scale, scale + 1, shape) * 2
    return np.where(rng.random(shape) < density, values, 0)


NETX_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netx"


def shared_netx(name: str) -> Path:
    """One of the lava-dl users' netx files in ../shared/data/netx (skips the test if absent)."""
    import pytest

    path = NETX_DIR / name
    if not path.exists():
        pytest.skip(f"{path} missing: the real netx files live in ../shared/data/netx")
    return path
