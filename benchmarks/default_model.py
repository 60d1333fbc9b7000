"""Benchmark the default model (digits-mlp): training samples/s and Lava time steps/s.

Trains the default digits model for a few epochs (measuring training throughput of every epoch
after the first, which pays for warm-up), exports it, then runs test samples through Lava's CPU
simulator (recording every layer, as ``gradr-lava deploy`` does) and through the PyTorch
reference. Prints a table; ``--json PATH`` also writes the figures. Peak memory is the process's
maximum resident set size (Lava's worker processes are forked and not included).

    python benchmarks/default_model.py --epochs 4 --samples 200 --json runs/bench/default.json
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _runs import machine


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits-mlp")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=200, help="test samples run in Lava")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    import torch

    from gradr_deploy.atomic import write_json
    from gradr_deploy.netx import read_netx
    from gradr_deploy.pipeline import spike_agreement
    from gradr_deploy.simulation.lava_sim import run_lava
    from gradr_deploy.simulation.reference import reference_output
    from gradr_deploy.simulation.stimulus import present
    from gradr_lava.trainer import Trainer, TrainOptions

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(TrainOptions(dataset="digits", out=Path(tmp), model=args.model,
                                       epochs=args.epochs, progress=False))
        train_rates = []
        for epoch in range(args.epochs):
            started = time.perf_counter()
            trainer.train_epoch(epoch)
            rate = len(trainer.data.train.labels) / (time.perf_counter() - started)
            if epoch > 0 or args.epochs == 1:
                train_rates.append(rate)
        accuracy = trainer.evaluate()["test_accuracy"]
        trainer.history = [{"epoch": args.epochs, "loss": 0.0, "train_accuracy": 0.0,
                            "test_accuracy": accuracy, "seconds": 0.0}]
        trainer.finish()
        model = Path(tmp) / "model.net"
        meta = trainer.metadata()
        test = trainer.data.test
        count = min(args.samples, len(test.labels))
        spikes = present(trainer.encoding, test.images[:count], np.arange(count), meta.seed,
                         meta.drain_steps)
        network = read_netx(model)
        started = time.perf_counter()
        torch_out = reference_output(network, spikes, meta.input_shape)
        torch_seconds = time.perf_counter() - started
        run = run_lava(model, spikes, meta.window, meta.input_shape)
        output_only = run_lava(model, spikes, meta.window, meta.input_shape, record_hidden=False)

    results = {
        "model": args.model,
        "machine": machine(with_torch=True),
        "torch_threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "train_samples_per_second": statistics.median(train_rates),
        "test_accuracy": accuracy,
        "lava_samples": count,
        "lava_time_steps": run.time_steps,
        "lava_seconds": run.seconds,
        "lava_time_steps_per_second": run.time_steps_per_second,
        "lava_output_only_time_steps_per_second": output_only.time_steps_per_second,
        "reference_time_steps_per_second": run.time_steps / torch_seconds,
        "spike_agreement": spike_agreement(run.output_spikes, torch_out),
        "peak_rss_mib": peak_rss_mib(),
    }
    rows = [
        ("training (samples/s, median of epochs 2..)",
         f"{results['train_samples_per_second']:.0f}"),
        ("Lava CPU simulation, all layers recorded (time steps/s)",
         f"{results['lava_time_steps_per_second']:.0f}"),
        ("Lava CPU simulation, output recorded (time steps/s)",
         f"{results['lava_output_only_time_steps_per_second']:.0f}"),
        ("PyTorch reference (time steps/s, batched)",
         f"{results['reference_time_steps_per_second']:.0f}"),
        ("spike agreement Lava vs PyTorch", f"{results['spike_agreement']:.4f}"),
        ("test accuracy after the run", f"{accuracy:.4f}"),
        ("peak RSS of this process (MiB)", f"{results['peak_rss_mib']:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"default model benchmark: {args.model}, {args.epochs} epochs, {count} Lava samples")
    print(f"machine: {results['machine']}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>10}")
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
