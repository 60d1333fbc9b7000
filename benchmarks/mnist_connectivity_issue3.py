"""Issue 3's study (8 epochs, rate coding): accuracy vs connectivity on MNIST 2FC (784-800-10).

Trains, with the same epoch budget each: the dense network; Grad R as published (paper mode)
at several alpha; Grad R with a final fine-tuning phase on its frozen topology (``--finetune``,
our option) at several alpha; Grad R's schedule mode; then Deep R and gradual magnitude pruning
at the per-layer connectivity that Grad R runs actually reached (matched connectivity), one
pair of baselines per Grad R run named by ``--match``. Every trained network is exported and
run in Lava (CPU, fixed point) on the MNIST test set; the table has float (quantized PyTorch)
and Lava accuracy, deployed connectivity (nonzero 8-bit weights / all weights), training time
per epoch.

Runs are resumable: each run lives in ``OUT/<name>/``; a finished run is not retrained, an
interrupted one resumes from its last epoch. Results go to ``OUT/results.json`` and
``OUT/accuracy_vs_connectivity.png``; ``--markdown PATH`` also writes the table.

    python benchmarks/mnist_connectivity_issue3.py --epochs 8 --out runs/bench/mnist \\
        --markdown docs/results-mnist.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from _runs import lava_run, machine, save_figure, train_run

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def row(name: str, method: str, alpha: float | None, metrics: dict[str, Any],
        report: dict[str, Any] | None, matched_to: str | None = None) -> dict[str, Any]:
    last = metrics["history"][-1]
    return {
        "run": name,
        "method": method,
        "alpha": alpha,
        "mode": metrics["prune"].get("mode") or ("paper" if method == "gradr" else None),
        "finetune": metrics["prune"].get("finetune"),
        "matched_to": matched_to,
        "target_connectivity": metrics["prune"]["target_connectivity"],
        "connectivity": last["connectivity"],
        "connectivity_float": last["connectivity_float"],
        "layer_connectivity": [layer["connectivity_quantized"]
                               for layer in last["rewiring"]["layers"]],
        "float_accuracy": metrics["test_accuracy"],
        "lava_accuracy": report["lava_accuracy"] if report else None,
        "torch_accuracy_same_samples": report["torch_accuracy"] if report else None,
        "spike_agreement": report["spike_agreement"] if report else None,
        "lava_samples": report["samples"] if report else 0,
        "epochs": metrics["epochs"],
        "seconds_per_epoch": metrics["seconds"] / metrics["epochs"],
        "train_seconds": metrics["seconds"],
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    dense = next((r for r in rows if r["method"] == "none"), None)
    lines = [
        "| run | method | alpha | fine-tune | connectivity (8-bit nonzero) | float accuracy | "
        "Lava accuracy | spike agreement | s/epoch | x dense time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = (f"{r['seconds_per_epoch'] / dense['seconds_per_epoch']:.2f}"
                 if dense else "-")
        lava = f"{100 * r['lava_accuracy']:.2f}%" if r["lava_accuracy"] is not None else "-"
        agree = f"{r['spike_agreement']:.4f}" if r["spike_agreement"] is not None else "-"
        lines.append(
            f"| {r['run']} | {r['method']} | {r['alpha'] if r['alpha'] is not None else '-'} | "
            f"{r['finetune'] or '-'} | {100 * r['connectivity']:.2f}% | "
            f"{100 * r['float_accuracy']:.2f}% | {lava} | "
            f"{agree} | {r['seconds_per_epoch']:.1f} | {ratio} |"
        )
    lines.append("")
    lines.append(f"Machine: {meta['machine']}. Epochs per run: {meta['epochs']} (the paper "
                 f"trains 512). Lava: {meta['lava_samples']} test images per run. "
                 f"Command: `{meta['command']}`.")
    return "\n".join(lines) + "\n"


def _kind(r: dict[str, Any]) -> str:
    if r["method"] != "gradr":
        return r["method"]
    if r["finetune"]:
        return "gradr-ft"
    return "gradr-schedule" if r["mode"] == "schedule" else "gradr"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    markers = {"none": ("s", "dense"), "gradr": ("o", "Grad R (paper)"),
               "gradr-ft": ("D", "Grad R + fine-tune"), "gradr-schedule": ("P", "Grad R schedule"),
               "deepr": ("^", "Deep R"), "magnitude": ("v", "magnitude")}
    for method, (marker, label) in markers.items():
        points = [r for r in rows if _kind(r) == method]
        if not points:
            continue
        accuracy = [100 * (r["lava_accuracy"] if r["lava_accuracy"] is not None
                           else r["float_accuracy"]) for r in points]
        ax.plot([100 * r["connectivity"] for r in points], accuracy, marker,
                label=label, markersize=8)
    ax.set_xscale("log")
    ax.set(xlabel="connectivity: nonzero 8-bit weights (%)", ylabel="test accuracy in Lava (%)",
           title="MNIST 2FC (784-800-10), T = 8")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save_figure(fig, path)


def measured_row(name: str, method: str, alpha: float | None, args: argparse.Namespace,
                 prune: dict[str, Any], matched_to: str | None = None) -> dict[str, Any]:
    """Train (or reuse) one run, run it in Lava, and return its table row."""
    metrics = train_run(name, args, **prune)
    report = None if args.skip_lava else lava_run(name, args)
    result = row(name, method, alpha, metrics, report, matched_to)
    print(f"{name}: connectivity {100 * result['connectivity']:.2f}%, "
          f"float {result['float_accuracy']:.4f}", flush=True)
    return result


def matched_runs(rows: list[dict[str, Any]], names: list[str] | None) -> list[dict[str, Any]]:
    """The Grad R rows the baselines are matched to (see ``--match``)."""
    if names:
        by_name = {r["run"]: r for r in rows}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SystemExit(f"--match: no run named {', '.join(unknown)}; runs: "
                             f"{', '.join(by_name)}")
        return [by_name[n] for n in names]
    finetuned = [r for r in rows if r["method"] == "gradr" and r["finetune"]]
    if finetuned:
        return finetuned
    paper = [r for r in rows if r["method"] == "gradr" and r["alpha"] is not None]
    return [min(paper, key=lambda r: abs(r["connectivity"] - 0.05))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--alphas", type=float, nargs="*", default=[0.03, 0.06, 0.12],
                        help="Grad R (paper form) prior strengths")
    parser.add_argument("--finetune", type=float, default=0.25,
                        help="fine-tuning fraction of the Grad R + fine-tune runs (0: none)")
    parser.add_argument("--finetune-alphas", type=float, nargs="*", default=[0.06, 0.12],
                        help="prior strengths of the Grad R + fine-tune runs")
    parser.add_argument("--match", nargs="*", default=None, metavar="RUN",
                        help="Grad R runs whose per-layer connectivity the baselines get "
                        "(default: every Grad R + fine-tune run, else the paper-form run "
                        "nearest 5%%)")
    parser.add_argument("--target", type=float, default=0.95,
                        help="Grad R target sparsity p's complement (connectivity in mu)")
    parser.add_argument("--schedule-target", type=float, default=0.05,
                        help="also run Grad R's schedule mode to this connectivity (0: skip)")
    parser.add_argument("--lava-samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "mnist")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--skip-lava", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    target = 1.0 - args.target if args.target > 0.5 else args.target

    from gradr_deploy.atomic import atomic_path, write_json

    started = time.perf_counter()
    plan: list[tuple[str, str, float | None, dict[str, Any]]] = [("dense", "none", None, {})]
    for alpha in args.alphas:
        plan.append((f"gradr-a{alpha:g}", "gradr", alpha,
                     {"prune": "gradr", "alpha": alpha, "target_connectivity": target}))
    if args.finetune > 0:
        for alpha in args.finetune_alphas:
            plan.append((f"gradr-a{alpha:g}-ft{args.finetune:g}", "gradr", alpha,
                         {"prune": "gradr", "alpha": alpha, "target_connectivity": target,
                          "finetune": args.finetune}))
    if args.schedule_target > 0:
        plan.append((f"gradr-schedule-{100 * args.schedule_target:g}pct", "gradr", None,
                     {"prune": "gradr", "prune_mode": "schedule",
                      "target_connectivity": args.schedule_target}))
    rows = []
    for name, method, alpha, prune in plan:
        rows.append(measured_row(name, method, alpha, args, prune))
    for matched in matched_runs(rows, args.match):
        # Baselines get each layer's connectivity that Grad R reached, so totals match too.
        per_layer = {i: c for i, c in enumerate(matched["layer_connectivity"])}
        for method in ("deepr", "magnitude"):
            name = f"{method}-as-{matched['run']}"
            rows.append(measured_row(name, method, None, args,
                                     {"prune": method, "target_connectivity": per_layer},
                                     matched_to=matched["run"]))
    meta = {
        "machine": machine(),
        "epochs": args.epochs,
        "lava_samples": 0 if args.skip_lava else args.lava_samples,
        "command": "python " + " ".join(["benchmarks/mnist_connectivity_issue3.py", *sys.argv[1:]]),
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(args.out / "results.json", {"meta": meta, "rows": rows})
    plot(rows, args.out / "accuracy_vs_connectivity.png")
    table = markdown(rows, meta)
    print(table)
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
