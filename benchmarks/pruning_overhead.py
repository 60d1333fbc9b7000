"""Training-step cost of each pruning method relative to dense training, on MNIST 2FC.

One network per method (none, gradr paper, gradr paper in its fine-tuning phase, gradr
schedule, deepr, magnitude), trained on the same MNIST batches; steps are timed round-robin
across the methods (so background load hits all of them alike) and the median step time of
each is compared with dense training's.
A full step is timed: spike encoding, forward, backward, Adam, and the pruner's ``after_step``.

    python benchmarks/pruning_overhead.py --steps 30 --json runs/bench/pruning_overhead.json
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _runs import machine

REPO = Path(__file__).resolve().parents[1]
METHODS = {
    "none": {},
    "gradr-paper": {"method": "gradr", "target_connectivity": 0.05, "alpha": 0.06},
    # Fine-tuning (frozen topology, prior off) from the end of the warm-up: every timed step
    # pays for holding the frozen connections at theta <= 0.
    "gradr-finetuning": {"method": "gradr", "target_connectivity": 0.05, "alpha": 0.06,
                         "finetune": "timed steps"},
    "gradr-schedule": {"method": "gradr", "target_connectivity": 0.05, "mode": "schedule"},
    "deepr": {"method": "deepr", "target_connectivity": 0.05},
    "magnitude": {"method": "magnitude", "target_connectivity": 0.05},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from gradr_deploy.atomic import write_json
    from gradr_deploy.datasets import load_mnist
    from gradr_deploy.simulation.encoding import RateEncoding
    from gradr_deploy.simulation.stimulus import present
    from gradr_lava.config import load_model_config
    from gradr_lava.network import SpikingNetwork
    from gradr_lava.rewiring import make_pruner

    config = load_model_config("mnist-2fc")
    data = load_mnist(args.data_dir)
    encoding = RateEncoding(time_steps=config.input.time_steps)
    total_steps = args.steps + args.warmup
    runs = {}
    for name, spec in METHODS.items():
        torch.manual_seed(0)
        network = SpikingNetwork(config, data.image_shape, data.num_classes)
        method = spec.get("method", "none")
        options = {k: v for k, v in spec.items() if k != "method"}
        if method == "magnitude" or options.get("mode") == "schedule":
            options["total_steps"] = total_steps
        if "finetune" in options:
            options["total_steps"] = total_steps
            options["finetune"] = args.steps / total_steps
        pruner = make_pruner(method, **options)
        pruner.attach(network)
        optimizer = torch.optim.Adam(network.parameters(), lr=config.training.learning_rate)
        runs[name] = (network, pruner, optimizer, [])

    rng = np.random.default_rng(0)
    for step in range(total_steps):
        ids = rng.choice(len(data.train.labels), args.batch_size, replace=False)
        labels = torch.from_numpy(data.train.labels[ids])
        for network, pruner, optimizer, times in runs.values():
            started = time.perf_counter()
            spikes = present(encoding, data.train.images[ids], ids, step, 2)
            counts = network(torch.from_numpy(spikes.astype(np.float32))).sum(-1)
            loss = torch.nn.functional.cross_entropy(counts, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            pruner.after_step(optimizer, config.training.learning_rate)
            if step >= args.warmup:
                times.append(time.perf_counter() - started)

    dense = statistics.median(runs["none"][3])
    results = {
        "machine": machine(with_torch=True),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "methods": {
            name: {"median_step_s": statistics.median(times),
                   "ratio_to_dense": statistics.median(times) / dense}
            for name, (_, _, _, times) in runs.items()
        },
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"MNIST 2FC training step, batch {args.batch_size}, median of {args.steps} steps "
          f"({results['machine']})")
    print(f"  {'method':<16} {'step (ms)':>10} {'x dense':>8}")
    for name, row in results["methods"].items():
        print(f"  {name:<16} {1000 * row['median_step_s']:>10.1f} {row['ratio_to_dense']:>8.3f}")
    print(f"  peak RSS {results['peak_rss_mib']:.0f} MiB")
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
