"""How closely snnTorch, reading our NIR export, reproduces Lava's output spike counts.

For each netx network: export it to NIR (``gradr_deploy.interop.nir_export``), load the graph with
snnTorch's ``import_from_nir`` (float32), run both on the same input, and compare every
(sample, output neuron) spike count with Lava's integer grid
(``gradr_deploy.simulation.lava_exact``, which
agrees with Lava's CPU simulator spike for spike). Inputs: the network's own test encoding for
gradr-lava files (digits), Bernoulli spikes (rate ``--rate``) for the lava-dl files.

    python benchmarks/nir_agreement.py --json docs/figures/nir_agreement.json

Needs snnTorch and nirtorch (the `dev` extra in pyproject.toml).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from _runs import machine

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "netx"


def _stimulus(model: Path, samples: int, steps: int, rate: float) -> tuple[np.ndarray, int, str]:
    from gradr_deploy.datasets import load_digits
    from gradr_deploy.netx import read_netx
    from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
    from gradr_deploy.simulation.encoding import encoding_from_dict
    from gradr_deploy.simulation.stimulus import present

    network = read_netx(model)
    if METADATA_ATTR in network.attrs:
        recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), str(model))
        images = load_digits().test.images[:samples]
        spikes = present(encoding_from_dict(recorded.encoding), images, np.arange(samples),
                         recorded.seed, recorded.drain_steps)
        return spikes, recorded.window, "digits test images, the file's encoding"
    layers = len(network.synaptic_layers)
    features = int(network.layers[0].features[0])
    rng = np.random.default_rng(0)
    spikes = (rng.random((samples, features, steps)) < rate).astype(np.uint8)
    spikes = np.concatenate([spikes, np.zeros((samples, features, layers), np.uint8)], axis=2)
    return spikes, steps + layers, f"Bernoulli spikes, p = {rate}"


def measure(model: Path, samples: int, steps: int, rate: float) -> dict:
    import nir
    import torch
    from snntorch.import_nir import import_from_nir

    from gradr_deploy.interop.nir_export import export_nir
    from gradr_deploy.netx import read_netx
    from gradr_deploy.simulation import lava_exact

    spikes, window, source = _stimulus(model, samples, steps, rate)
    lava = lava_exact.exact_run(read_netx(model), spikes, window).output.sum(axis=2)
    with tempfile.TemporaryDirectory() as folder:
        module = import_from_nir(nir.read(export_nir(model, Path(folder) / "graph.nir")))
    inputs = torch.tensor(spikes, dtype=torch.float32)
    with torch.no_grad():
        out = torch.stack([module(inputs[:, :, t])[0] for t in range(window)], -1)
    snntorch = out.sum(-1).numpy()
    neuron = read_netx(model).layers[-1].neuron.params
    return {
        "model": model.name, "input": source, "samples": samples, "window": window,
        "iDecay": int(neuron["iDecay"]), "vDecay": int(neuron["vDecay"]),
        "count_agreement": float(np.mean(snntorch == lava)),
        "prediction_agreement": float(np.mean(snntorch.argmax(1) == lava.argmax(1))),
        "lava_spikes": int(lava.sum()), "snntorch_spikes": int(snntorch.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--steps", type=int, default=100, help="steps of generated input")
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    models = [REPO / "models" / "digits-mlp.net", REPO / "models" / "digits-mlp-gradr.net",
              SHARED / "oxford.net", SHARED / "mnist_lavadl.net"]
    rows = [measure(m, args.samples, args.steps, args.rate) for m in models if m.exists()]
    print(f"{'model':<22} {'iDecay':>6} {'vDecay':>6} {'counts equal':>12} "
          f"{'argmax equal':>12} {'Lava spikes':>11} {'snnTorch':>9}")
    for r in rows:
        print(f"{r['model']:<22} {r['iDecay']:>6} {r['vDecay']:>6} "
              f"{100 * r['count_agreement']:>11.2f}% {100 * r['prediction_agreement']:>11.2f}% "
              f"{r['lava_spikes']:>11} {r['snntorch_spikes']:>9}")
    if args.json:
        from gradr_deploy.atomic import write_json

        write_json(args.json, {"rows": rows, "machine": machine(with_torch=True),
                               "command": "python benchmarks/nir_agreement.py "
                               + " ".join(sys.argv[1:])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
