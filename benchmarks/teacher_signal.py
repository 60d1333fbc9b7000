"""What a distillation teacher has to teach: how one-hot its output spike counts are, and how
graded the current into its output neurons is (``gradr_lava/distill.py``, ``docs/training.md``).

For the first ``--samples`` MNIST training images (unaugmented), encoded as the file records,
it prints the distribution of the winner's and the runner-up's spike counts, the mean winner and
runner-up current, and the mean top softmax probability of both signals at a few temperatures.

    python benchmarks/teacher_signal.py --data-dir ../shared/data/mnist \\
        [--model models/mnist-2fc-dense.net] [--samples 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _runs import machine

from gradr_deploy.datasets import load_dataset
from gradr_deploy.netx import read_netx
from gradr_deploy.netx.metadata import recorded_metadata
from gradr_deploy.simulation.encoding import encoding_from_dict
from gradr_deploy.simulation.stimulus import present
from gradr_lava.distill import Teacher

TEMPERATURES = (1.0, 2.0, 5.0, 10.0, 20.0)


def measure(model: Path, data_dir: Path | None, samples: int) -> dict:
    meta = recorded_metadata(read_netx(model).attrs, str(model))
    if meta is None:
        raise SystemExit(f"{model} records no gradr-lava metadata (data set, encoding): this "
                         "benchmark reads a network trained by gradr-lava")
    data = load_dataset(meta.dataset or "mnist", data_dir)
    ids = np.arange(min(samples, len(data.train.labels)))
    spikes = torch.from_numpy(present(encoding_from_dict(meta.encoding), data.train.images[ids],
                                      ids, meta.seed, meta.drain_steps)).to(torch.float32)
    features = spikes.shape[1]
    args = (features, data.num_classes, meta.encoding, spikes.shape[-1], meta.input_shape)
    teacher = Teacher(model, *args, signal="current")
    counts, current = teacher.counts(spikes), teacher.targets(spikes)
    top = torch.sort(counts, dim=1, descending=True).values
    top_current = torch.sort(current, dim=1, descending=True).values
    n = len(ids)
    return {
        "model": str(model), "samples": n, "machine": machine(with_torch=True),
        "train_accuracy": float((counts.argmax(1).numpy() == data.train.labels[ids]).mean()),
        "winner_count_histogram": torch.bincount(top[:, 0].long()).tolist(),
        "runner_up_count_histogram": torch.bincount(top[:, 1].long()).tolist(),
        "winner_spikes_every_step": float((top[:, 0] == meta.time_steps).float().mean()),
        "no_other_output_spike": float((top[:, 1] == 0).float().mean()),
        "mean_winner_current": float(top_current[:, 0].mean()),
        "mean_runner_up_current": float(top_current[:, 1].mean()),
        "mean_top_probability": {
            "counts": {str(t): float(torch.softmax(counts / t, 1).max(1).values.mean())
                       for t in TEMPERATURES},
            "current": {str(t): float(torch.softmax(current / t, 1).max(1).values.mean())
                        for t in TEMPERATURES},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/mnist-2fc-dense.net"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = measure(args.model, args.data_dir, args.samples)
    print(f"{found['model']}, first {found['samples']} training images; {found['machine']}")
    print(f"  accuracy on them {found['train_accuracy']:.4f}")
    print(f"  winner spikes on every input step: {found['winner_spikes_every_step']:.4f}; "
          f"no other output spike: {found['no_other_output_spike']:.4f}")
    print(f"  winner count histogram {found['winner_count_histogram']}")
    print(f"  runner-up count histogram {found['runner_up_count_histogram']}")
    print(f"  mean current: winner {found['mean_winner_current']:.2f}, runner-up "
          f"{found['mean_runner_up_current']:.2f} (weight units, summed over the window)")
    print("  mean top softmax probability    T: " + "  ".join(f"{t:>6g}" for t in TEMPERATURES))
    for signal in ("counts", "current"):
        row = found["mean_top_probability"][signal]
        print(f"  {signal:>31}: " + "  ".join(f"{row[str(t)]:6.4f}" for t in TEMPERATURES))
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
