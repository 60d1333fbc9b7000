"""Training MNIST 2FC to a Loihi core budget: budget-aware vs uniform connectivity.

For each hardware profile and core budget, ``gradr-lava train --fit-cores N`` is run twice with
the same epochs and seed: with the budget-aware split of the budget across layers and with one
uniform connectivity for all layers (the baseline at the same cores). A budget the dense network
already fits needs no pruning: the dense run of ``--dense-run`` (default: the connectivity
benchmark's) is mapped instead. Every network is mapped by the checker ``gradr-lava map`` uses
and run in Lava on the MNIST test set. Results: ``OUT/results.json``, ``OUT/accuracy_vs_cores.png``,
and with ``--markdown PATH`` a table.

    python benchmarks/mnist_core_budget.py --epochs 5 --out runs/bench/core_budget
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from _runs import lava_run, machine, save_figure, train_run

REPO = Path(__file__).resolve().parents[1]
SHAPES = [(800, 784), (10, 800)]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hardware = sorted({r["hardware"] for r in rows})
    fig, axes = plt.subplots(1, len(hardware), figsize=(5 * len(hardware), 3.8), squeeze=False)
    for axis, name in zip(axes[0], hardware, strict=True):
        for allocation, marker in (("budget-aware", "o"), ("uniform", "v"), ("dense (fits)", "s")):
            points = [r for r in rows if r["hardware"] == name and r["allocation"] == allocation]
            if points:
                axis.plot([r["cores"] for r in points],
                          [100 * r["lava_accuracy"] for r in points], marker,
                          label=allocation, markersize=8)
        axis.set(title=name, xlabel="cores used (mapped)", ylabel="Lava test accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--hardware", nargs="+", default=["loihi2", "loihi1"])
    parser.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lava-samples", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "core_budget")
    parser.add_argument("--dense-run", type=Path, default=REPO / "runs" / "bench" / "mnist")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from deploy.atomic import atomic_path, write_json
    from deploy.mapping import map_file
    from gradr_lava.core_budget import plan_budget

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for hardware in args.hardware:
        for budget in args.budgets:
            plan = plan_budget(SHAPES, budget, hardware, seed=args.seed)
            if all(layer.target_connectivity >= 1.0 for layer in plan.layers):
                dense_args = argparse.Namespace(**{**vars(args), "out": args.dense_run})
                metrics, report = train_run("dense", dense_args), lava_run("dense", dense_args)
                model = args.dense_run / "dense" / "model.net"
                runs = [("dense (fits)", metrics, report, model)]
            else:
                runs = []
                for allocation in ("budget-aware", "uniform"):
                    name = f"{hardware}-{budget}cores-{allocation}"
                    metrics = train_run(name, args, fit_cores=budget, hardware=hardware,
                                        budget_allocation=allocation)
                    runs.append((allocation, metrics, lava_run(name, args),
                                 args.out / name / "model.net"))
            for allocation, metrics, report, model in runs:
                mapping = map_file(model, hardware)
                last = metrics["history"][-1]
                rows.append({
                    "hardware": hardware, "budget_cores": budget, "allocation": allocation,
                    "layer_connectivity": [layer["connectivity_quantized"]
                                           for layer in last["rewiring"]["layers"]],
                    "connectivity": last["connectivity"],
                    "cores": mapping.total_cores,
                    "cores_per_layer": [layer.cores for layer in mapping.layers],
                    "fits": mapping.total_cores <= budget,
                    "float_accuracy": metrics["test_accuracy"],
                    "lava_accuracy": report["lava_accuracy"],
                    "spike_agreement": report["spike_agreement"],
                    "lava_samples": report["samples"],
                    "epochs": metrics["epochs"],
                })
                print(rows[-1], flush=True)

    meta = {
        "machine": machine(),
        "epochs": args.epochs,
        "command": "python " + " ".join(["benchmarks/mnist_core_budget.py", *sys.argv[1:]]),
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(args.out / "results.json", {"meta": meta, "rows": rows})
    plot(rows, args.out / "accuracy_vs_cores.png")
    table = ["| hardware | budget | allocation | connectivity per layer | cores used (per layer) "
             "| fits | float acc. | Lava acc. | spike agreement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        layers = " / ".join(f"{100 * c:.1f}%" for c in r["layer_connectivity"])
        table.append(
            f"| {r['hardware']} | {r['budget_cores']} | {r['allocation']} | {layers} | "
            f"{r['cores']} ({'+'.join(map(str, r['cores_per_layer']))}) | "
            f"{'yes' if r['fits'] else 'NO'} | {100 * r['float_accuracy']:.2f}% | "
            f"{100 * r['lava_accuracy']:.2f}% | {r['spike_agreement']:.4f} |"
        )
    table.append("")
    table.append(f"Machine: {meta['machine']}. Epochs per run: {args.epochs}. Lava: "
                 f"{args.lava_samples} test images per run. Command: `{meta['command']}`.")
    text = "\n".join(table) + "\n"
    print(text)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
