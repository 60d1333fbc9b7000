"""Grad R against magnitude pruning at matched connectivity, at a real training budget.

MNIST 2FC (784-800-10) with direct graded input (``models/mnist-2fc-direct-noaug.toml``: no
augmentation, which at this budget costs accuracy; ``--model mnist-2fc-direct --results
docs/figures/mnist_matched_affine`` for the augmented runs), 64 epochs per run by default,
several seeds. At each matched point every pruning variant gets the same per-layer targets,
counted as the deployed connectivity (nonzero 8-bit weights). The points are the per-layer
connectivity Grad R's own prior reached in issue 3's study (``mnist_connectivity_issue3.py``,
paper mode + fine-tuning): ``4pct`` = layer 0 at 3.95%, layer 1 at 14.21% (4.08% in all),
``1.3pct`` = 1.26% and 5.85% (1.32%); ``2pct`` (1.90% and 9.00%: 1.99% in all) is the budget
of the shipped sparse model; ``2pct-out30`` and ``2pct-out50`` spend the same 12,637 weights
with 30% or 50% of the output layer kept (layer 0 at 1.632% or 1.377%). (The same target on
both layers was tried first: magnitude pruning with the 10-neuron output layer at 4% fell to
~80%.) Every finished network runs in Lava on all 10,000 test images.

Variants (``--variants``):

- ``dense``: no pruning (once per seed, not per point);
- ``magnitude``: gradual magnitude pruning (Zhu & Gupta), the baseline;
- ``gradr``: Grad R, schedule mode, deployed count, every theta shifted (``gradr-lava
  train``'s default);
- ``gradr-crossing``: the same, shifting only the connections that leave or regrow
  (``--gradr-shift crossing``: kept weights keep their size);
- ``gradr-float``: the same, counting float nonzeros as the paper does;
- ``gradr-ft``: ``gradr`` with its last quarter on the frozen 8-bit topology, prior off;
- ``stds``: STDS (Chen et al. 2022), a soft threshold on free-signed weights, scheduled to the
  same deployed targets (``--prune stds``);
- ``deepr``: Deep R;
- ``magnitude-early``, ``gradr-crossing-early``: those two with the ramp over the first half of
  training instead of the first three quarters, so that the final topology trains at a higher
  learning rate (a test of why Grad R does not beat magnitude pruning at the 1.3% point);
- ``magnitude-idle``: magnitude pruning that drops first, at every mask update, the synapses
  that cannot change an output spike (``--prune-idle-first``): plain magnitude pruning spends
  ~13% of layer 0's budget at 1.3% on hidden neurons with no outgoing synapse;
- ``<variant>-hold`` (``magnitude``, ``gradr-crossing``, ``magnitude-idle``): the cosine
  schedule, with the full rate held until the pruning ramp ends (``lr_hold = 0.75``), so the
  topology forms at the full rate and the final one still anneals (the constant rate leaves
  the last epoch's accuracy noisy: Grad R crossing seed 1 fell from 96.21% at epoch 61 to
  95.66% at epoch 64);
- ``magnitude-idle-early-hold``: the ramp over the first half (as ``-early``) and the rate held
  as long, so the final topology anneals over the second half instead of the last quarter
  (the 2% network of ``magnitude-idle-hold`` lost most of its accuracy in the ramp's last
  factor of ~3 and recovered only part of it in the 20 epochs left);
  ``magnitude-idle-third-hold``: the same over the first 30%;
- ``gradr-crossing-idle-early-hold``: ``gradr-crossing-early-hold`` with ``idle_first``
  (``--prune-idle-first``): connections that cannot change an output spike are pushed out
  before every shift (Grad R crossing had left 16% of layer 0's synapses idle at ``1.3pct``);
- ``<variant>-constlr`` (``dense``, ``magnitude``, ``magnitude-idle``, ``gradr-crossing``,
  ``gradr``, ``stds``): the model's recipe with a constant learning rate instead of its cosine
  schedule (issue 3's 8-epoch runs, constant rate and rate input, reached 96.83% at 1.32% with
  magnitude pruning).

Long and interruptible by design. Each run trains in ``--out/<model>/<run>`` (resumed from its
checkpoint when interrupted); when it is finished and evaluated, its result is written to
``--results/<run>.json`` and, with ``--commit``, committed to git at once, so a new machine
(a fresh clone) skips every finished run. Runs are ordered seed by seed, so one seed of every
variant is complete first. ``--report`` only aggregates what is finished: a table (mean and
spread over seeds) and a plot (one panel per matched point, every seed a dot), written beside
the results folder under its name (``docs/figures/mnist_matched.{json,png}`` for the default
folder).

``--set SECTION.KEY=VALUE`` (repeatable) changes one key of the model config for every run,
after the variant's own edits, and is checked as the file would be: ``--set
training.batch_size=256`` asks one question of ``mnist-2fc-direct-affine5`` without a copy of
it. Each result records its edits (``config_overrides``), the runs train in their own folder
(``<model>+training.batch_size=256/<run>``), and a results folder holding runs with other
edits is refused, so give each question its own ``--results``. (The configs
``benchmarks/configs/mnist-2fc-direct-affine5-*.toml`` are such one-key copies, from before
``--set``; they stay because the committed results name them.)

``--jobs N`` trains N runs at a time, each in its own process with ``cpu_count // N`` torch
threads (``--threads``): on a 2-core AMD EPYC (AVX2) two one-thread runs took 44-50 s per
epoch each where one two-thread run took 64 s, 2.7x the epochs per hour, because much of a
step is small tensor operations that a second thread only slows.

    python benchmarks/mnist_connectivity.py --commit            # all of it, hours
    python benchmarks/mnist_connectivity.py --commit --jobs 2   # two runs at a time
    python benchmarks/mnist_connectivity.py --report --markdown docs/figures/mnist_matched.md
    python benchmarks/mnist_connectivity.py --model mnist-2fc-direct \
        --results docs/figures/mnist_matched_affine --report   # the augmented runs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from _runs import machine, save_figure

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_RESULTS = REPO / "docs" / "figures" / "mnist_matched"
# every variant the benchmark runs: name -> label (tables, plot legend), in the tables' and
# the plot's order; prune_options and model_config read a name's parts
VARIANTS: dict[str, str] = {
    "dense": "dense",
    "magnitude": "magnitude pruning",
    "gradr-crossing": "Grad R, crossing shift",
    "gradr": "Grad R (deployed count)",
    "gradr-float": "Grad R (float count)",
    "gradr-ft": "Grad R + fine-tune",
    "stds": "STDS (scheduled threshold)",
    "deepr": "Deep R",
    "magnitude-early": "magnitude pruning, ramp in the first half",
    "gradr-crossing-early": "Grad R crossing, ramp in the first half",
    "dense-constlr": "dense, constant learning rate",
    "magnitude-constlr": "magnitude pruning, constant learning rate",
    "gradr-crossing-constlr": "Grad R crossing, constant learning rate",
    "gradr-constlr": "Grad R (deployed count), constant learning rate",
    "stds-constlr": "STDS, constant learning rate",
    "magnitude-idle": "magnitude pruning, idle synapses first",
    "magnitude-idle-constlr": "magnitude pruning, idle synapses first, constant rate",
    "magnitude-hold": "magnitude pruning, rate held over the ramp, then cosine",
    "gradr-crossing-hold": "Grad R crossing, rate held over the ramp, then cosine",
    "magnitude-idle-hold": "magnitude pruning, idle first, rate held, then cosine",
    "magnitude-idle-early-hold": "magnitude pruning, idle first, ramp and rate held in the first "
                                 "half, then cosine",
    "magnitude-idle-third-hold": "magnitude pruning, idle first, ramp and rate held in the first "
                                 "30%, then cosine",
    "gradr-crossing-early-hold": "Grad R crossing, ramp and rate held in the first half, then "
                                 "cosine",
    "stds-early-hold": "STDS, ramp and rate held in the first half, then cosine",
    "gradr-crossing-idle-early-hold": "Grad R crossing, idle connections pushed out, ramp and "
                                      "rate held in the first half, then cosine",
}
VARIANT_ORDER = {name: order for order, name in enumerate(VARIANTS)}  # table order
# the fraction of the run the *-hold variants keep the full learning rate: the default ramp's end
HOLD = 0.75
# variant suffix -> its pruning ramp instead of (0, 0.75) (a "-hold" after it holds the rate as
# long): "-early" over the first half of training, so that the final topology trains (and
# Grad R rewires) at up to half the peak learning rate instead of 13% of it (cosine schedule);
# "-third" over the first 30%
RAMPS = {"-early": (0.0, 0.5), "-third": (0.0, 0.3)}
# the model config's sections that --set may change (not [model] or [[layers]])
SETTABLE = ("input", "neuron", "training")


def prune_options(variant: str, target: float | dict[int, float]) -> dict[str, Any]:
    """``TrainOptions`` keywords of one variant at connectivity ``target``."""
    if variant == "dense":
        return {}
    if variant == "magnitude":
        return {"prune": "magnitude", "target_connectivity": target}
    if variant == "magnitude-idle":
        return {"prune": "magnitude", "target_connectivity": target,
                "pruner_options": {"idle_first": True}}
    if variant == "gradr":
        return {"prune": "gradr", "target_connectivity": target, "gradr_shift": "all"}
    if variant == "gradr-crossing":
        return {"prune": "gradr", "target_connectivity": target, "gradr_shift": "crossing"}
    if variant == "gradr-crossing-idle":
        return {"prune": "gradr", "target_connectivity": target, "gradr_shift": "crossing",
                "pruner_options": {"idle_first": True}}
    if variant == "gradr-float":
        return {"prune": "gradr", "target_connectivity": target, "prune_mode": "schedule",
                "gradr_count": "float"}
    if variant == "gradr-ft":
        return {"prune": "gradr", "target_connectivity": target, "finetune": 0.25}
    if variant == "stds":
        return {"prune": "stds", "target_connectivity": target}
    if variant == "deepr":
        return {"prune": "deepr", "target_connectivity": target}
    for recipe in ("-constlr", "-hold"):  # training settings: see model_config
        if variant.endswith(recipe):
            return prune_options(variant.removesuffix(recipe), target)
    for suffix, ramp in RAMPS.items():
        if variant.endswith(suffix):
            return {**prune_options(variant.removesuffix(suffix), target), "prune_ramp": ramp}
    raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


# matched points: name -> per-layer deployed connectivity (layer index -> fraction)
POINTS: dict[str, dict[int, float]] = {
    "4pct": {0: 0.0395, 1: 0.1421},
    "1.3pct": {0: 0.0126, 1: 0.0585},
    "2pct": {0: 0.0190, 1: 0.0900},
    # the same 12,637 weights (1.99%) with more of them in the output layer: at "2pct" the
    # hidden neurons that survive keep ~1.6 outgoing synapses each (720 for 458 live ones)
    "2pct-out30": {0: 0.01632, 1: 0.3000},
    "2pct-out50": {0: 0.01377, 1: 0.5000},
}


def plan(args: argparse.Namespace) -> list[tuple[str, str, dict[int, float] | None, int]]:
    """(run name, variant, per-layer targets, seed), seed by seed."""
    runs = []
    for seed in args.seeds:
        for variant in args.variants:
            if variant in ("dense", "dense-constlr"):
                runs.append((f"{variant}-s{seed}", variant, None, seed))
                continue
            for point in args.points:
                runs.append((f"{variant}-{point}-s{seed}", variant, POINTS[point], seed))
    return runs


def settings(args: argparse.Namespace, variant: str, target: dict[int, float] | None,
             seed: int) -> dict:
    """What a result file must record to be reused for this run (JSON-shaped)."""
    return json.loads(json.dumps({
        "model": args.model, "epochs": args.epochs, "seed": seed, "variant": variant,
        "target_connectivity": target, "lava_samples": args.lava_samples,
        # only when given, so the results written before --set still match their runs
        **({"config_overrides": args.config_overrides} if args.config_overrides else {})}))


def parse_setting(text: str) -> tuple[str, Any]:
    """``--set SECTION.KEY=VALUE`` -> ("SECTION.KEY", VALUE): VALUE in TOML syntax (``256``,
    ``1e-3``, ``"cosine"``), or a bare word, read as a string (``cosine``)."""
    import tomllib

    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or section not in SETTABLE or not name:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SECTION.KEY=VALUE with SECTION one of {', '.join(SETTABLE)} "
            "(e.g. training.batch_size=256)")
    if key.strip() == "training.epochs":  # every run trains --epochs, which wins
        raise argparse.ArgumentTypeError("the runs' length is --epochs, not --set "
                                         "training.epochs")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return f"{section}.{name}", parsed


def run_folder(out: Path, model: str, overrides: dict[str, Any] | None, run: str) -> Path:
    """Where a run trains: one folder per model config and its ``--set`` edits."""
    edits = "".join(f"+{key}={value}" for key, value in sorted((overrides or {}).items()))
    safe = re.sub(r"[^\w.=+-]", "_", edits)
    if safe != edits:  # a path value (training.teacher) must not open subfolders or collide
        safe += "-" + hashlib.sha256(edits.encode()).hexdigest()[:8]
    return out / f"{Path(model).stem}{safe}" / run


def config_name(row: dict[str, Any]) -> str:
    """A result's model config, with its ``--set`` edits, for titles."""
    edits = ", ".join(f"{k} = {v}" for k, v in sorted(row.get("config_overrides", {}).items()))
    return Path(row["model"]).stem + (f" ({edits})" if edits else "")


def model_config(model: str, variant: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model config of ``variant``: ``model``'s, with a constant learning rate for the
    ``*-constlr`` variants (as issue 3's runs trained), and the full rate held for the first
    ``HOLD`` of the run (``*-early-hold``, ``*-third-hold``: as long as their ramp), then the
    cosine decay, for the ``*-hold`` variants; then ``overrides`` (``--set``: "SECTION.KEY"
    -> value), checked as the config file would be."""
    import dataclasses

    from gradr_lava.config import load_model_config, parse_model_config

    config = load_model_config(model)
    if variant.endswith("-constlr"):
        config = dataclasses.replace(config, training=dataclasses.replace(
            config.training, lr_schedule="constant"))
    if variant.endswith("-hold"):
        hold = next((ramp[1] for suffix, ramp in RAMPS.items()
                     if variant.endswith(f"{suffix}-hold")), HOLD)
        config = dataclasses.replace(config, training=dataclasses.replace(
            config.training, lr_schedule="cosine", lr_hold=hold))
    if overrides:
        data = config.to_dict()
        for key, value in overrides.items():
            section, name = key.split(".", 1)
            data[section][name] = value
        edits = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
        # the file stays the source: a relative teacher path is read from its folder
        config = dataclasses.replace(
            parse_model_config(data, f"{config.source} with --set {edits}"),
            source=config.source)
    return config


def run_one(name: str, variant: str, target: dict[int, float] | None, seed: int,
            args: argparse.Namespace) -> dict[str, Any]:
    """Train (or resume), evaluate in Lava on the test set, return the result row."""
    from gradr_deploy.pipeline import DeployOptions, deploy_network
    from gradr_lava.trainer import TrainOptions, train

    out = run_folder(args.out, args.model, args.config_overrides, name)
    started = time.perf_counter()
    metrics = train(TrainOptions(
        dataset="mnist", data_dir=args.data_dir,
        model=model_config(args.model, variant, args.config_overrides),
        out=out, epochs=args.epochs,
        seed=seed, resume=(out / "checkpoint.pt").exists(), progress=not args.quiet,
        **prune_options(variant, target or 1.0)))
    report = deploy_network(DeployOptions(
        model=out / "model.net", data_dir=args.data_dir, samples=args.lava_samples, out=out,
        progress=not args.quiet, record_activity=False))
    last = metrics["history"][-1]
    return {
        "run": name, **settings(args, variant, target, seed),
        "connectivity": last["connectivity"],
        "layer_connectivity": [layer["connectivity_quantized"]
                               for layer in last["rewiring"]["layers"]],
        "float_accuracy": metrics["test_accuracy"],
        "lava_accuracy": report["lava_accuracy"],
        "torch_accuracy": report["torch_accuracy"],
        "spike_agreement": report["spike_agreement"],
        "training_forward_agreement": report["training_forward"].get("output_spike_agreement"),
        **topology(out / "model.net"),
        "accuracy_by_epoch": [h["test_accuracy"] for h in metrics["history"]],
        "train_seconds": metrics["seconds"], "wall_seconds": time.perf_counter() - started,
        "jobs": args.jobs, "torch_threads": torch_threads(),
        "warnings": metrics.get("warnings", []), "machine": machine(with_torch=True),
        "command": "python benchmarks/mnist_connectivity.py " + " ".join(sys.argv[1:]),
    }


Job = tuple[str, str, dict[int, float] | None, int]


def pending(args: argparse.Namespace) -> list[Job]:
    """The planned runs without a result file yet (at most ``--max-runs`` of them)."""
    jobs = []
    for name, variant, target, seed in plan(args):
        path = args.results / f"{name}.json"
        if path.exists():
            found = json.loads(path.read_text())
            if all(found.get(k) == v for k, v in settings(args, variant, target, seed).items()):
                continue
            raise SystemExit(f"{path} holds a run with other settings; remove it or use "
                             "another --results folder")
        jobs.append((name, variant, target, seed))
    return jobs if args.max_runs is None else jobs[:args.max_runs]


def run_job(job: Job, args: argparse.Namespace) -> tuple[dict[str, Any] | None, str | None]:
    """One run, in this process or a worker: its row, or the traceback that stopped it."""
    try:
        return run_one(*job, args), None
    except Exception:  # one failed run must not stop the queue; its checkpoint stays
        return None, traceback.format_exc()


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _start_worker(threads: int, parent: int) -> None:
    """Pool initializer: the thread limit, and a watchdog that ends this worker once the
    benchmark that spawned it is gone. A benchmark killed by a signal never shuts its pool
    down, and its workers went on training for nobody (seen: ``pkill -f mnist_connectivity``
    left both runs of ``--jobs 2`` at work). Each epoch's checkpoint is written whole, so the
    next ``--resume`` loses at most the epoch in progress."""
    _limit_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, poll_seconds: float = 5.0) -> None:
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os._exit(143)  # as if terminated: the parent's own signal ended the benchmark


def run_all(jobs: list[Job], args: argparse.Namespace):
    """Yield ``(job, row, error)`` as runs finish: one at a time here, or ``--jobs`` at a time
    in worker processes (spawned: a fresh torch per run, progress bars off)."""
    threads = args.threads or (max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1
                               else None)
    if args.jobs == 1:
        if threads:
            _limit_threads(threads)
        for job in jobs:
            print(f"== {job[0]}", flush=True)
            yield (job, *run_job(job, args))
        return
    quiet = argparse.Namespace(**{**vars(args), "quiet": True})
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(threads, os.getpid())) as pool:
        futures = {pool.submit(run_job, job, quiet): job for job in jobs}
        print(f"== {len(jobs)} runs, {args.jobs} at a time, {threads} thread(s) each: "
              + ", ".join(job[0] for job in jobs), flush=True)
        for future in as_completed(futures):
            yield (futures[future], *future.result())


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def topology(model: Path) -> dict[str, Any]:
    """What the network's synapses can do: per layer, the synapses that cannot change an
    output spike (:func:`gradr_deploy.netx.idle_synapses`), the neurons that can spike and
    reach the output, and the connectivity counting only the other synapses."""
    from gradr_deploy.netx import idle_synapses, read_netx

    network = read_netx(model)
    idle = idle_synapses(network)
    weights = sum(network.layers[i].weight_matrix().size for i in idle)
    return {
        "idle_synapses": [idle[i].idle for i in sorted(idle)],
        "live_neurons": [idle[i].live_neurons for i in sorted(idle)],
        "useful_connectivity": sum(idle[i].synapses - idle[i].idle for i in idle) / weights,
    }


def add_topology(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[Path]:
    """Add :func:`topology` to result files written before it existed, where the run's
    network is still on disk; returns the files changed."""
    from gradr_deploy.atomic import write_json

    changed = []
    for row in rows:
        model = run_folder(args.out, row["model"], row.get("config_overrides"),
                           row["run"]) / "model.net"
        if "useful_connectivity" in row or not model.exists():
            continue
        row.update(topology(model))
        path = args.results / f"{row['run']}.json"
        write_json(path, row)
        changed.append(path)
    return changed


def commit(path: Path, message: str) -> None:
    """Commit ``path`` alone (other staged changes are left out), retrying a busy index."""
    for attempt in range(10):
        add = subprocess.run(["git", "add", str(path)], cwd=REPO, capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", str(path)], cwd=REPO,
            capture_output=True, text=True).returncode == 0
        if done:
            return
        time.sleep(2 + attempt)
    print(f"warning: could not commit {path}; it is written, commit it by hand", file=sys.stderr)


def load_results(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds per (variant, target)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = json.dumps(row["target_connectivity"], sort_keys=True)
        groups.setdefault((row["variant"], key), []).append(row)
    table = []
    for (variant, key), members in sorted(groups.items(), key=lambda kv: (
            -statistics.fmean(m["connectivity"] for m in kv[1]), VARIANT_ORDER[kv[0][0]])):
        target = json.loads(key)
        lava = [m["lava_accuracy"] for m in members]
        table.append({
            "variant": variant, "target_connectivity": target, "seeds": sorted(
                m["seed"] for m in members),
            "lava_accuracy_mean": statistics.fmean(lava),
            "lava_accuracy_min": min(lava), "lava_accuracy_max": max(lava),
            "lava_accuracy_stdev": statistics.stdev(lava) if len(lava) > 1 else 0.0,
            "connectivity_mean": statistics.fmean(m["connectivity"] for m in members),
            "useful_connectivity_mean": (
                statistics.fmean(m["useful_connectivity"] for m in members)
                if all("useful_connectivity" in m for m in members) else None),
            "live_hidden_neurons_mean": (
                statistics.fmean(m["live_neurons"][0] for m in members)
                if all("live_neurons" in m for m in members) else None),
            "spike_agreement_min": min(m["spike_agreement"] for m in members),
        })
    return table


def _maybe(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def markdown(table: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | target | seeds | connectivity (8-bit) | useful | live hidden neurons | "
             "Lava accuracy, mean | min / max | stdev | spike agreement (min) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        spec = t["target_connectivity"]
        target = "-" if spec is None else f"{point_name(spec)}: " + " / ".join(
            f"{100 * value:g}%" for _, value in sorted(spec.items()))
        lines.append(
            f"| {VARIANTS[t['variant']]} | {target} | {len(t['seeds'])} | "
            f"{100 * t['connectivity_mean']:.2f}% | "
            f"{_maybe(t['useful_connectivity_mean'], '{:.2%}')} | "
            f"{_maybe(t['live_hidden_neurons_mean'], '{:.0f}')} | "
            f"{100 * t['lava_accuracy_mean']:.2f}% | "
            f"{100 * t['lava_accuracy_min']:.2f} / {100 * t['lava_accuracy_max']:.2f} | "
            f"{100 * t['lava_accuracy_stdev']:.2f} | {t['spike_agreement_min']:.4f} |")
    if rows:
        epochs = sorted({r["epochs"] for r in rows})
        machines = sorted({r["machine"] for r in rows})
        lines += ["", f"Model `{rows[0]['model']}`, {epochs} epochs, "
                  f"{rows[0]['lava_samples']} MNIST test images in Lava per run; "
                  f"machine{'s' if len(machines) > 1 else ''}: {'; '.join(machines)}. "
                  "*useful*: the connectivity counting only "
                  "synapses that can change an output spike (the others feed hidden neurons "
                  "with no outgoing synapse, or leave neurons that never spike); *live hidden "
                  "neurons*: of 800, those that can spike and reach the output."]
    return "\n".join(lines) + "\n"


def point_name(target: dict[str, float] | None) -> str:
    """The ``POINTS`` name of a result's per-layer targets (JSON keys), or "dense"."""
    if target is None:
        return "dense"
    for name, spec in POINTS.items():
        if {str(layer): value for layer, value in spec.items()} == target:
            return name
    return " / ".join(f"{100 * value:g}%" for _, value in sorted(target.items()))


def plot(table: list[dict[str, Any]], rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per matched point: every seed's Lava accuracy per variant (dots), the mean
    (bar) and the seed range; the dense networks' accuracy as a note in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted({point_name(r["target_connectivity"]) for r in rows} - {"dense"},
                    key=lambda name: -statistics.fmean(
                        r["connectivity"] for r in rows
                        if point_name(r["target_connectivity"]) == name))
    if not points:
        return
    counts = [len({t["variant"] for t in table if point_name(t["target_connectivity"]) == p})
              for p in points]
    fig, axes = plt.subplots(1, len(points), figsize=(2.4 + 0.75 * sum(counts), 4.6),
                             squeeze=False, gridspec_kw={"width_ratios": [c + 1 for c in counts]})
    for ax, point in zip(axes[0], points, strict=True):
        here = [t for t in table if point_name(t["target_connectivity"]) == point]
        here.sort(key=lambda t: VARIANT_ORDER[t["variant"]])
        for x, t in enumerate(here):
            seeds = [100 * r["lava_accuracy"] for r in rows if r["variant"] == t["variant"]
                     and point_name(r["target_connectivity"]) == point]
            mean = 100 * t["lava_accuracy_mean"]
            colour = "tab:orange" if t["variant"].startswith("magnitude") else (
                "tab:purple" if t["variant"].startswith("stds") else "tab:blue")
            ax.errorbar([x], [mean], yerr=[[mean - min(seeds)], [max(seeds) - mean]],
                        fmt="_", markersize=16, capsize=4, color=colour)
            ax.scatter([x] * len(seeds), seeds, s=14, color=colour, alpha=0.6)
            ax.annotate(f"{mean:.2f}\nn={len(seeds)}", (x, max(seeds)), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=6.5)
        connectivity = statistics.fmean(t["connectivity_mean"] for t in here)
        ax.set_xticks(range(len(here)), [t["variant"] for t in here], rotation=60,
                      ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(here) - 0.4)
        values = [100 * r["lava_accuracy"] for r in rows
                  if point_name(r["target_connectivity"]) == point]
        low, high = min(values), max(values)
        pad = max(0.1, 0.1 * (high - low))
        ax.set_ylim(low - pad, high + 2.5 * pad)  # room for the labels above the dots
        ax.set_title(f"{point}\n{100 * connectivity:.2f}% connectivity", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(f"accuracy in Lava, {rows[0]['lava_samples']:,} MNIST test images (%)")
    dense = [t for t in table if t["target_connectivity"] is None]
    note = "; ".join(f"{t['variant']} {100 * t['lava_accuracy_mean']:.2f}% "
                     f"(n={len(t['seeds'])})" for t in dense)
    epochs = "/".join(str(e) for e in sorted({r["epochs"] for r in rows}))
    # one short line each: a figure of one or two panels is narrower than the whole sentence
    lines = [f"MNIST 2FC, {epochs} epochs", config_name(rows[0]),
             "dots: seeds, bars: mean and seed range", *([note] if note else [])]
    fig.suptitle("\n".join(lines), fontsize=9)
    save_figure(fig, path)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked before any run starts (exit 2 naming the flag)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="mnist-2fc-direct-noaug")
    parser.add_argument("--epochs", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--points", nargs="+", default=["4pct", "1.3pct"], choices=list(POINTS))
    parser.add_argument("--variants", type=lambda s: s.split(","),
                        default=["dense", "magnitude", "gradr-crossing", "gradr", "gradr-ft",
                                 "gradr-float"])
    parser.add_argument("--set", dest="config_overrides", type=parse_setting, action="append",
                        default=[], metavar="SECTION.KEY=VALUE",
                        help="change one key of the model config for every run (repeatable; "
                             "SECTION: input, neuron or training), recorded in each result")
    parser.add_argument("--lava-samples", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "matched")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--commit", action="store_true",
                        help="commit each finished run's result file to git as it completes")
    parser.add_argument("--max-runs", type=int, help="stop after this many new runs")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at a time, each in its own process (default 1)")
    parser.add_argument("--threads", type=int,
                        help="torch threads per run (default: cores / jobs when jobs > 1, "
                             "torch's own choice for one job)")
    parser.add_argument("--report", action="store_true", help="only aggregate finished runs")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.config_overrides = dict(args.config_overrides)  # (key, value) pairs, the last wins
    for variant in args.variants:  # unknown names stop here, before hours of work
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        prune_options(variant, 0.5)
        if args.config_overrides:
            from gradr_deploy.errors import InputError

            try:
                model_config(args.model, variant, args.config_overrides)
            except InputError as exc:
                parser.error(str(exc))
    for flag in ("jobs", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    from gradr_deploy.atomic import atomic_path, write_json

    args.results.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    if not args.report:
        for (name, *_), row, error in run_all(pending(args), args):
            if row is None:
                print(error, file=sys.stderr)
                print(f"{name}: FAILED (rerun resumes it from its checkpoint)", flush=True)
                failed.append(name)
                continue
            path = args.results / f"{name}.json"
            write_json(path, row)
            print(f"{name}: connectivity {100 * row['connectivity']:.2f}%, Lava "
                  f"{100 * row['lava_accuracy']:.2f}% ({row['wall_seconds'] / 60:.1f} min)",
                  flush=True)
            if args.commit:
                commit(path, f"benchmark mnist_connectivity: {name} (Lava "
                             f"{100 * row['lava_accuracy']:.2f}% at "
                             f"{100 * row['connectivity']:.2f}% connectivity)")
    rows = load_results(args.results)
    for path in add_topology(rows, args):
        print(f"added the topology of the network on disk to {path}")
        if args.commit:
            commit(path, f"benchmark mnist_connectivity: idle synapses of {path.stem}")
    table = aggregate(rows)
    text = markdown(table, rows)
    print(text)
    if rows:
        stem = args.results.parent / args.results.name
        write_json(stem.with_suffix(".json"), {"table": table, "runs": rows})
        plot(table, rows, stem.with_suffix(".png"))
    if args.markdown:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text)
    if failed:
        print(f"failed runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
