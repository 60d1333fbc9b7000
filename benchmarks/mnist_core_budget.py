"""Training MNIST 2FC to a Loihi core budget: budget-aware vs uniform connectivity.

For each hardware profile and core budget, ``gradr-lava train --fit-cores N`` is run twice with
the same epochs and seed: with the budget-aware split of the budget across layers and with one
uniform connectivity for all layers (the baseline at the same cores). A budget the dense network
already fits needs no pruning: the dense run of ``--dense-run`` (default: the connectivity
benchmark's) is mapped instead. Every network is mapped by the checker ``gradr-lava map`` uses
and run in Lava on the MNIST test set. Results: ``OUT/results.json``, ``OUT/accuracy_vs_cores.png``,
and with ``--markdown PATH`` a table.

    python benchmarks/mnist_core_budget.py --epochs 5 --out runs/bench/core_budget

Hardware names: ``loihi1``, ``loihi2-brief``, ``loihi2`` (Intel's compiler as modelled: dense
layers store zero weights, so pruning cannot meet a budget below the neuron-bound cores and the
row says so), and ``loihi2-sparse`` (the same model with sparse storage, ``--set
count_zero_weights=false``: what a network loaded with netx ``sparse_fc_layer=True`` would
need; assumed). With ``--results FILE`` rows are added to FILE as they finish and rows already
there are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _runs import lava_run, machine, save_figure, train_run

REPO = Path(__file__).resolve().parents[1]
SHAPES = [(800, 784), (10, 800)]
HARDWARE = {
    "loihi1": ("loihi1", {}), "loihi2-brief": ("loihi2-brief", {}), "loihi2": ("loihi2", {}),
    "loihi2-sparse": ("loihi2", {"count_zero_weights": "false"}),
}


def plot(rows: list[dict[str, Any]], path: Path, epochs: int | None = None) -> None:
    """Lava accuracy against cores, one panel per hardware profile, titled with the model, the
    data set, the epochs and the profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    hardware = sorted({r["hardware"] for r in rows})
    fig, axes = plt.subplots(1, len(hardware), figsize=(5 * len(hardware), 3.8), squeeze=False)
    for axis, name in zip(axes[0], hardware, strict=True):
        for allocation, marker in (("budget-aware", "o"), ("uniform", "v"), ("dense (fits)", "s")):
            points = [r for r in rows if r["hardware"] == name and r["allocation"] == allocation]
            if points:
                axis.plot([r["cores"] for r in points],
                          [100 * r["lava_accuracy"] for r in points], marker,
                          label=allocation, markersize=8)
        samples = sorted({str(r.get("lava_samples", "?")) for r in rows
                          if r["hardware"] == name})
        axis.set(title=f"hardware profile {name}", xlabel="cores used (mapped)",
                 ylabel=f"Lava accuracy (%), {'/'.join(samples)} test images")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    runs = sorted({str(r.get("epochs", epochs)) for r in rows})
    fig.suptitle(f"MNIST 2FC (mnist-2fc, 784-800-10) on MNIST, {'/'.join(runs)} epochs,\n"
                 "trained to a core budget", fontsize=10)
    save_figure(fig, path)


def _save(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    if args.results:
        from gradr_deploy.atomic import write_json

        write_json(args.results, {"machine": machine(), "epochs": args.epochs, "rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--hardware", nargs="+", default=["loihi2-sparse", "loihi1"],
                        choices=sorted(HARDWARE))
    parser.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lava-samples", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "core_budget")
    parser.add_argument("--dense-run", type=Path, default=REPO / "runs" / "bench" / "mnist")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--results", type=Path, help="JSON file rows are added to as they "
                        "finish (rows already there are skipped)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--replot", nargs=2, type=Path, metavar=("RESULTS.json", "OUT.png"),
                        help="only redraw the figure from a results file")
    args = parser.parse_args(argv)
    if args.replot:
        data = json.loads(args.replot[0].read_text())
        rows = [r for r in data["rows"] if "cores" in r]
        plot(rows, args.replot[1], data.get("meta", data).get("epochs"))
        return 0


    from gradr_deploy.atomic import atomic_path, write_json
    from gradr_deploy.errors import InputError
    from gradr_deploy.mapping import map_file
    from gradr_lava.core_budget import plan_budget

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.results and args.results.exists():
        rows = json.loads(args.results.read_text())["rows"]
    done = {(r["hardware"], r["budget_cores"]) for r in rows}
    for label in args.hardware:
        hardware, overrides = HARDWARE[label]
        for budget in args.budgets:
            if (label, budget) in done:
                continue
            try:
                plan = plan_budget(SHAPES, budget, hardware, overrides, seed=args.seed)
            except InputError as exc:  # no connectivity meets the budget: say so, with why
                rows.append({"hardware": label, "budget_cores": budget, "allocation": "none",
                             "fits": False, "note": str(exc)})
                print(rows[-1], flush=True)
                _save(args, rows)
                continue
            if all(layer.target_connectivity >= 1.0 for layer in plan.layers):
                dense_args = argparse.Namespace(**{**vars(args), "out": args.dense_run})
                metrics, report = train_run("dense", dense_args), lava_run("dense", dense_args)
                model = args.dense_run / "dense" / "model.net"
                runs = [("dense (fits)", metrics, report, model)]
            else:
                runs = []
                for allocation in ("budget-aware", "uniform"):
                    name = f"{label}-{budget}cores-{allocation}"
                    metrics = train_run(name, args, fit_cores=budget, hardware=hardware,
                                        hardware_overrides=overrides,
                                        budget_allocation=allocation)
                    runs.append((allocation, metrics, lava_run(name, args),
                                 args.out / name / "model.net"))
            for allocation, metrics, report, model in runs:
                mapping = map_file(model, hardware, overrides)
                last = metrics["history"][-1]
                rows.append({
                    "hardware": label, "budget_cores": budget, "allocation": allocation,
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
            _save(args, rows)

    rows = [r for r in rows if r.get("allocation") != "none" or print(r["note"])]
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
