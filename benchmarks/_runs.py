"""Shared by the MNIST benchmarks: resumable training runs and Lava evaluations on disk."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str | None:
    """The CPU's model name (Linux), which matters to timings: two '2-core x86_64' machines of
    this project trained the same run in 20 and 68 minutes."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine(with_torch: bool = False) -> str:
    """The machine line every benchmark records beside its figures."""
    model = cpu_model()
    text = (f"{platform.machine()}{f' ({model})' if model else ''}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")
    if with_torch:
        import torch

        text += f", torch {torch.__version__}"
    return text


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from gradr_deploy.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, floats to 1e-9 (0.05 and 1 - 0.95 are the same setting)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(
            a, b, rel_tol=1e-9)
    return a == b


def train_run(name: str, args: argparse.Namespace, **options: Any) -> dict[str, Any]:
    """Train ``args.out/name`` on MNIST 2FC for ``args.epochs`` (skip if done, resume if cut).

    A finished run is reused only if it was trained with the same model config and pruning
    settings; otherwise this stops, naming the folder, rather than mixing results.
    """
    from gradr_lava.config import load_model_config, parse_model_config
    from gradr_lava.trainer import METRICS_FILE, TrainOptions, train

    out = args.out / name
    run = TrainOptions(
        dataset="mnist", data_dir=args.data_dir, model="mnist-2fc", out=out, epochs=args.epochs,
        seed=args.seed, resume=(out / "checkpoint.pt").exists(), progress=not args.quiet,
        **options,
    )
    if (out / METRICS_FILE).exists():
        metrics = json.loads((out / METRICS_FILE).read_text())
        wanted = json.loads(json.dumps({"model": load_model_config("mnist-2fc").to_dict(),
                                        "prune": run.prune_settings(), "seed": args.seed}))
        # Keys added to the config since that run was trained count at their defaults.
        found = {**metrics, "model": parse_model_config(metrics["model"], str(out)).to_dict()}
        if not all(_same(found.get(key), value) for key, value in wanted.items()):
            raise SystemExit(f"{out} holds a run with other settings (model config, pruning "
                             "or seed); remove it or choose another --out")
        if metrics["epochs"] >= args.epochs:
            return metrics
    return train(run)


def lava_run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``args.out/name/model.net`` in Lava on ``args.lava_samples`` test images (cached)."""
    from gradr_deploy.pipeline import DEPLOY_FILE, DeployOptions, deploy_network

    out = args.out / name
    report_path = out / DEPLOY_FILE
    if report_path.exists():
        report = json.loads(report_path.read_text())
        if report["samples"] == args.lava_samples:
            return report
    return deploy_network(DeployOptions(
        model=out / "model.net", data_dir=args.data_dir, samples=args.lava_samples, out=out,
        progress=not args.quiet, record_activity=False,
    ))
