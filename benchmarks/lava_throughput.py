"""Lava throughput per lever: samples/s and time steps/s of bit-exact Lava runs.

    python benchmarks/lava_throughput.py --data-dir ../shared/data/mnist \
        [--samples 2000] [--full] [--json runs/bench/lava_throughput.json]

Trains (or reuses) a dense and a 4%-connected MNIST 2FC network (1 epoch each: speed does not
depend on accuracy), then times Lava on ``--samples`` test images for each lever:

- ``netx-ringbuffer``: netx's own network with Lava's ``RingBuffer`` source and sinks, one run
  per 250 samples (the path before this benchmark existed), every layer recorded;
- ``copies-K-binary`` / ``copies-K``: K copies side by side, block-diagonal ``Sparse``
  synapses, file-backed I/O, binary-path or graded-path sums
  (:mod:`gradr_deploy.simulation.lava_graph`);
- ``plain-dense``: one copy with netx's ``Dense`` synapses and file-backed I/O.

Every run is checked spike for spike, every layer, against the exact reference. With
``--full`` it also times ``gradr-lava deploy`` end to end on all 10,000 test images (dense and
pruned) and records wall time and peak memory. Prints a table; ``--json`` writes the rows.
Finished rows are kept in the JSON and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _runs import machine  # noqa: E402

from gradr_deploy.atomic import write_json  # noqa: E402

NETWORKS = {"dense": [], "pruned": ["--prune", "magnitude", "--target-connectivity", "0.04"]}


def _train(name: str, args: argparse.Namespace) -> Path:
    out = args.out / name
    if not (out / "model.net").exists():
        subprocess.run([str(Path(sys.executable).parent / "gradr-lava"), "train", "--dataset",
                        "mnist", "--data-dir", str(args.data_dir), "--model", "mnist-2fc",
                        "--epochs", "1", "--out", str(out), "--quiet",
                        *(["--resume"] if (out / "checkpoint.pt").exists() else []),
                        *NETWORKS[name]], check=True)
    return out / "model.net"


def _inputs(model: Path, args: argparse.Namespace):
    from gradr_deploy.datasets import load_dataset
    from gradr_deploy.netx import read_netx
    from gradr_deploy.pipeline import DeployOptions, network_metadata
    from gradr_deploy.simulation.encoding import RateEncoding
    from gradr_deploy.simulation.stimulus import present

    net = read_netx(model)
    meta = network_metadata(net, DeployOptions(model=model))
    test = load_dataset("mnist", args.data_dir).test
    encoding = RateEncoding.from_dict(meta.encoding)
    spikes = present(encoding, test.images[: args.samples], np.arange(args.samples), meta.seed,
                     meta.drain_steps)
    return net, spikes, meta.window


def _ringbuffer_run(model: Path, spikes: np.ndarray, window: int) -> list[np.ndarray]:
    """The previous path: netx's network, RingBuffers, one compile per 250 samples."""
    from gradr_deploy.simulation import lava_compat

    lava_compat.install()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io

    outputs: list[list[np.ndarray]] = []
    for first in range(0, len(spikes), 250):
        chunk = spikes[first: first + 250]
        steps = len(chunk) * window
        network = netx.hdf5.Network(net_config=str(model), reset_interval=window)
        source = io.source.RingBuffer(
            data=chunk.transpose(1, 0, 2).reshape(chunk.shape[1], steps).astype(np.float32))
        source.s_out.connect(network.inp)
        sinks = []
        for layer in network.layers:
            sink = io.sink.RingBuffer(shape=layer.out.shape, buffer=steps)
            layer.out.connect(sink.a_in)
            sinks.append(sink)
        try:
            network.run(condition=RunSteps(num_steps=steps),
                        run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            data = [s.data.get().reshape(-1, len(chunk), window).transpose(1, 0, 2)
                    for s in sinks]
        finally:
            network.stop()
        outputs.append([d.astype(np.uint8) for d in data])
    return [np.concatenate([o[k] for o in outputs]) for k in range(len(outputs[0]))]


def _lever(name: str, model: Path, net, spikes, window) -> dict:
    from gradr_deploy.simulation.lava_exact import exact_run
    from gradr_deploy.simulation.lava_graph import run_in_process

    start = time.perf_counter()
    if name == "netx-ringbuffer":
        layers, copies = _ringbuffer_run(model, spikes, window), 1
    else:
        copies = 1 if name == "plain-dense" else int(name.split("-")[1])
        run = run_in_process(model, spikes, window, copies=copies,
                             sparse=name != "plain-dense", summed=not name.endswith("binary")
                             and name != "plain-dense")
        layers = run.layer_spikes
    seconds = time.perf_counter() - start
    exact = exact_run(net, spikes, window, streams=copies if name != "netx-ringbuffer" else 1)
    agreement = [float(np.mean(a == b)) for a, b in zip(layers, exact.layers, strict=True)]
    if name == "netx-ringbuffer":  # 250-sample runs: each run is its own stream
        agreement = [float(np.mean(a[:, :, k:] == b[:, :, k:]))
                     for k, (a, b) in enumerate(zip(layers, exact.layers, strict=True))]
    return {"seconds": seconds, "samples_per_second": len(spikes) / seconds,
            "time_steps_per_second": len(spikes) * window / seconds,
            "copies": copies, "spike_agreement_per_layer": agreement}


def _deploy(model: Path, args: argparse.Namespace) -> dict:
    out = args.out / f"deploy-{model.parent.name}"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c",
         "import resource, sys; from gradr_lava.cli import main; code = main(sys.argv[1:]); "
         "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
         "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)",
         "deploy", str(model), "--target", "lava-sim", "--data-dir", str(args.data_dir),
         "--out", str(out), "--quiet"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak = next(line for line in result.stdout.splitlines() if line.startswith("PEAK_KB"))
    parent_kb, child_kb = (int(v) for v in peak.split()[1:])
    report = json.loads((out / "deploy.json").read_text())
    return {"seconds": seconds, "samples": report["samples"],
            "lava_seconds": report["lava"]["seconds"],
            "samples_per_second": report["samples"] / seconds,
            "spike_agreement": report["spike_agreement"],
            "lava_accuracy": report["lava_accuracy"], "torch_accuracy": report["torch_accuracy"],
            "peak_rss_mib": {"deploy": parent_kb / 1024, "largest_child": child_kb / 1024}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--levers", default="netx-ringbuffer,plain-dense,copies-32-binary,"
                        "copies-8,copies-32,copies-64")
    parser.add_argument("--full", action="store_true",
                        help="also time gradr-lava deploy on all 10,000 test images")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "lava")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    done = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    rows = done.get("rows", {})
    for name in NETWORKS:
        model = _train(name, args)
        net, spikes, window = _inputs(model, args)
        for lever in args.levers.split(","):
            key = f"{name}/{lever}/{args.samples}"
            if key not in rows:
                rows[key] = _lever(lever, model, net, spikes, window)
                if args.json:
                    write_json(args.json, {"machine": machine(), "rows": rows})
            row = rows[key]
            print(f"{name:7s} {lever:18s} {row['samples_per_second']:8.1f} samples/s "
                  f"{row['time_steps_per_second']:9.0f} steps/s  agreement "
                  f"{min(row['spike_agreement_per_layer']):.4f}", flush=True)
        if args.full:
            key = f"{name}/deploy/10000"
            if key not in rows:
                rows[key] = _deploy(model, args)
                if args.json:
                    write_json(args.json, {"machine": machine(), "rows": rows})
            row = rows[key]
            print(f"{name:7s} gradr-lava deploy, 10000 images: {row['seconds']:.1f} s wall "
                  f"({row['lava_seconds']:.1f} s Lava), agreement {row['spike_agreement']:.4f}, "
                  f"Lava {row['lava_accuracy']:.4f} = PyTorch {row['torch_accuracy']:.4f}, peak "
                  f"RSS {row['peak_rss_mib']['deploy']:.0f} MiB (+ largest child "
                  f"{row['peak_rss_mib']['largest_child']:.0f} MiB)", flush=True)
    print(f"machine: {machine()}; ru_maxrss of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
