"""Training throughput of MNIST 2FC (784-800-10, LIF, membrane decay 0.5): slayer, gradr-lava's
fast path, SpikingJelly and snnTorch, side by side, in alternated rounds.

Every library trains the same network on the same batches: rate-coded MNIST training images
(8 presentation steps, batch 128, pre-encoded once), cross-entropy on output spike counts, Adam
at 1e-3. gradr-lava's engines also simulate one drain step per layer (Loihi's one-step latency
per layer, which the exported network needs; the input is silent then). Each measurement is a
fresh process: warm-up steps, then timed steps; samples/s is timed samples over wall time, and
peak memory is the process's peak resident set (``ru_maxrss``, framework import included). Rounds
rotate the order; the table shows the median over rounds.

gradr-lava's fast rows run as ``gradr-lava train`` does, with glibc malloc told to keep freed
blocks (``gradr_lava/allocator.py``); the ``+malloc`` rows give slayer and the peers the same
setting through malloc's environment variables, so both comparisons are in the table.

The peers run in their own environment (``benchmarks/peers-env.sh`` builds ``.venv-peers``);
without it their rows are skipped and the JSON says so.

    python benchmarks/training_throughput.py --json docs/figures/training_throughput.json
    python benchmarks/training_throughput.py --rounds 1 --steps 5       # a quick look

``--torchrun`` adds 1 vs 2 processes of ``torchrun -m gradr_lava train`` on MNIST (wall time of
the training epochs as metrics.json records it). ``--device cuda`` measures on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
LIBRARIES = ("slayer", "slayer+malloc", "fast", "fast+gradr", "spikingjelly",
             "spikingjelly+malloc", "snntorch", "snntorch+malloc")
# glibc malloc settings equal to gradr_lava.allocator.keep_freed_memory(), given by environment
# to the "+malloc" rows, so that the peers can be compared with the same allocator behaviour
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
              "MALLOC_TOP_PAD_": str(64 << 20)}
PEERS = ("spikingjelly", "snntorch")
STEPS_IN, HIDDEN, CLASSES, BATCH = 8, 800, 10, 128


# -- workers: one library, one process ----------------------------------------------------------
def _gradr_model(library: str, device: str):
    import torch

    from gradr_lava.config import load_model_config
    from gradr_lava.network import SpikingNetwork

    config = load_model_config("mnist-2fc")
    engine = "slayer" if library.startswith("slayer") else "fast"
    if engine == "fast":  # as gradr-lava train runs it (gradr_lava/allocator.py)
        from gradr_lava.allocator import keep_freed_memory

        keep_freed_memory()
    net = SpikingNetwork(config, (28, 28), CLASSES, engine=engine).to(device)
    if library == "fast+gradr":
        from gradr_lava.rewiring import make_pruner

        pruner = make_pruner("gradr", target_connectivity=0.05, alpha=1e-3, seed=0)
        pruner.attach(net)
    else:
        pruner = None
    drain = len(net.synaptic_blocks)

    def run(x):  # x: (T, N, 784) -> counts (N, 10)
        spikes = torch.cat([x, x.new_zeros(drain, *x.shape[1:])]).movedim(0, -1)
        return net(spikes).sum(-1)

    return net, run, pruner


def _spikingjelly_model(device: str):
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    net = torch.nn.Sequential(
        layer.Linear(784, HIDDEN, bias=False),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.Linear(HIDDEN, CLASSES, bias=False),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True),
    ).to(device)
    functional.set_step_mode(net, "m")

    def run(x):
        functional.reset_net(net)
        return net(x).sum(0)

    return net, run, None


def _snntorch_model(device: str):
    import snntorch as snn
    import torch
    from snntorch import surrogate

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(784, HIDDEN, bias=False)
            self.lif1 = snn.Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid())
            self.fc2 = torch.nn.Linear(HIDDEN, CLASSES, bias=False)
            self.lif2 = snn.Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid())

        def forward(self, x):
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            counts = 0
            for step in x:
                spk1, mem1 = self.lif1(self.fc1(step), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                counts = counts + spk2
            return counts

    net = Net().to(device)
    return net, net, None


def worker(library: str, data: Path, warmup: int, steps: int, device: str) -> dict:
    """Train ``steps`` batches after ``warmup`` ones; return samples/s and peak memory."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    peer = library.split("+")[0]
    if peer in PEERS:
        net, run, pruner = (_spikingjelly_model if peer == "spikingjelly"
                            else _snntorch_model)(device)
    else:
        net, run, pruner = _gradr_model(library, device)
    arrays = np.load(data)
    batches = torch.from_numpy(arrays["spikes"]).to(device)  # (B, T, N, 784)
    labels = torch.from_numpy(arrays["labels"]).to(device)   # (B, N)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(i: int) -> None:
        counts = run(batches[i % len(batches)])
        loss = torch.nn.functional.cross_entropy(counts, labels[i % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if pruner is not None:
            pruner.after_step(optimizer, 1e-3)

    for i in range(warmup):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    result = {"library": library, "samples_per_second": steps * BATCH / seconds,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if peer in PEERS:
        from importlib.metadata import version

        result["version"] = version(peer)
    return result


# -- driver -------------------------------------------------------------------------------------
def _encode(data_dir: Path, batches: int, out: Path) -> None:
    """Rate-code ``batches`` x 128 MNIST training images over 8 steps (seed 0) into ``out``."""
    import numpy as np

    from gradr_deploy.datasets import load_dataset

    train = load_dataset("mnist", data_dir).train
    rng = np.random.default_rng(0)
    ids = rng.permutation(len(train.labels))[: batches * BATCH].reshape(batches, BATCH)
    probability = train.images[ids].reshape(batches, BATCH, -1).astype(np.float32)
    spikes = rng.random((batches, STEPS_IN, BATCH, 784), dtype=np.float32) < probability[:, None]
    np.savez(out, spikes=spikes.astype(np.float32), labels=train.labels[ids].astype(np.int64))


def _measure(library: str, data: Path, args: argparse.Namespace) -> dict:
    python = PEERS_PYTHON if library.split("+")[0] in PEERS else Path(sys.executable)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADR_LAVA_MALLOC": "tuned"}
    for name in MALLOC_ENV:
        env.pop(name, None)
    if library.endswith("+malloc"):
        env.update(MALLOC_ENV)
    command = [str(python), __file__, "--worker", library, "--data-file", str(data),
               "--warmup", str(args.warmup), "--steps", str(args.steps), "--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"{library} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _torchrun(args: argparse.Namespace) -> list[dict]:
    """1 vs 2 processes of ``torchrun -m gradr_lava train`` for one MNIST epoch."""
    rows = []
    for procs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            command = [str(Path(sys.executable).parent / "torchrun"), "--standalone",
                       f"--nproc_per_node={procs}", "-m", "gradr_lava", "train",
                       "--dataset", "mnist", "--data-dir", str(args.data_dir), "--epochs", "1",
                       "--out", str(out), "--quiet", "--device", args.device]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"torchrun x{procs} failed:\n{done.stderr[-3000:]}")
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append({"processes": procs, "wall_seconds": time.perf_counter() - started,
                         "epoch_seconds": metrics["seconds"],
                         "train_samples_per_second": metrics["train_samples_per_second"],
                         "test_accuracy": metrics["test_accuracy"]})
            print(f"torchrun x{procs}: {rows[-1]['train_samples_per_second']:.0f} samples/s "
                  f"(epoch {metrics['seconds']:.1f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--torchrun", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_file, args.warmup, args.steps,
                                args.device)))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._runs import machine

    libraries = [name for name in args.libraries.split(",") if name]
    skipped = {}
    if not PEERS_PYTHON.exists():
        for name in list(libraries):
            if name.split("+")[0] in PEERS:
                libraries.remove(name)
                skipped[name] = f"no {PEERS_PYTHON} (run benchmarks/peers-env.sh)"
    results: dict[str, list[dict]] = {name: [] for name in libraries}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "batches.npz"
        _encode(args.data_dir, max(4, args.warmup), data)
        for r in range(args.rounds):
            order = libraries[r % len(libraries):] + libraries[: r % len(libraries)]
            for name in order:
                row = _measure(name, data, args)
                results[name].append(row)
                print(f"round {r + 1}: {name:<20} {row['samples_per_second']:8.0f} samples/s  "
                      f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
    summary = []
    for name, rows in results.items():
        rates = [row["samples_per_second"] for row in rows]
        summary.append({"library": name, "version": rows[0].get("version", "this repo"),
                        "median_samples_per_second": statistics.median(rates),
                        "samples_per_second": rates,
                        "peak_rss_mib": max(row["peak_rss_mib"] for row in rows),
                        **({"peak_cuda_mib": max(row["peak_cuda_mib"] for row in rows)}
                           if args.device == "cuda" else {})})
    base = {row["library"]: row["median_samples_per_second"] for row in summary}
    print(f"\nMNIST 2FC training, batch {BATCH}, {STEPS_IN} steps, {args.device}, "
          f"median of {args.rounds} rounds x {args.steps} steps ({machine(True)})")
    print(f"{'library':<21}{'version':<11}{'samples/s':>10}{'vs slayer':>11}{'peak MiB':>10}")
    for row in summary:
        ratio = (f"{row['median_samples_per_second'] / base['slayer']:.2f}x"
                 if "slayer" in base else "-")
        print(f"{row['library']:<21}{row['version']:<11}{row['median_samples_per_second']:>10.0f}"
              f"{ratio:>11}{row['peak_rss_mib']:>10.0f}")
    report = {"machine": machine(True), "device": args.device, "batch": BATCH,
              "presentation_steps": STEPS_IN, "rounds": args.rounds, "steps": args.steps,
              "warmup": args.warmup, "libraries": summary, "skipped": skipped,
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    if args.torchrun:
        report["torchrun"] = _torchrun(args)
    if args.json:
        from gradr_deploy.atomic import write_json

        write_json(args.json, report)


if __name__ == "__main__":
    main()
