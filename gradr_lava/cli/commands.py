"""What each ``gradr-lava`` command does once its flags are parsed: call the Python API (the
same functions a script calls) and print a short summary.

Heavy modules (torch, Lava) are imported inside the commands that need them, so ``--help`` and
``map`` start fast and never load them.
"""

from __future__ import annotations

import argparse
import os
import sys


def cmd_train(args: argparse.Namespace) -> int:
    from gradr_deploy.simulation.lava_setup import require_lava

    require_lava("gradr-lava train")  # lava-dl's SLAYER blocks
    from gradr_lava.api import Pruning, train

    result = train(
        args.model, args.dataset, out=args.out, epochs=args.epochs, seed=args.seed,
        resume=args.resume, data_dir=args.data_dir, download=args.download,
        device=args.device, engine=args.engine, quiet=args.quiet,
        pruning=Pruning(
            args.prune, target_connectivity=args.target_connectivity, alpha=args.alpha,
            gradr_mode=args.gradr_mode, gradr_count=args.gradr_count,
            gradr_shift=args.gradr_shift, gradr_finetune=args.gradr_finetune,
            prune_ramp=args.prune_ramp,
            prune_idle_first=args.prune_idle_first,
            fit_cores=args.fit_cores, fit_chips=args.fit_chips, hardware=args.hardware,
            override=overrides(args.override), budget_allocation=args.budget_allocation))
    metrics = result.metrics
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    print(f"test accuracy (quantized PyTorch forward): {metrics['test_accuracy']:.4f} "
          f"after {metrics['epochs']} epochs, {metrics['seconds']:.1f} s")
    last = metrics["history"][-1] if metrics["history"] else {}
    if last.get("connectivity") is not None:
        print(f"connectivity (nonzero 8-bit weights / all weights): "
              f"{100 * last['connectivity']:.2f}%")
    print(f"wrote {result.netx_path}, {args.out / 'metrics.json'}")
    idle = [layer for layer in metrics.get("idle_synapses", []) if layer["idle"]]
    if idle:
        per_layer = ", ".join(f"layer {layer['index']}: {layer['idle']} of {layer['synapses']}"
                              for layer in idle)
        print(f"note: {per_layer} synapses cannot change any output spike (they feed neurons "
              f"with no path to the output or leave neurons that never spike); `gradr-lava "
              f"strip-idle {result.netx_path} OUT.net` writes the network without them")
    budget = metrics.get("core_budget")
    if budget is not None:
        targets = ", ".join(f"layer {layer['index']} {100 * layer['target_connectivity']:.1f}%"
                            for layer in budget["layers"])
        print(f"core budget {budget['budget_cores']} on {budget['hardware']} "
              f"({budget['allocation']}: {targets}): the exported network needs "
              f"{budget['mapped_cores']} cores")
        if not budget["fits"]:
            print(f"gradr-lava train: the network does not fit: {budget['mapped_cores']} cores "
                  f"needed, budget {budget['budget_cores']} (over by "
                  f"{budget['over_budget_by']}); the model is saved in {args.out}",
                  file=sys.stderr)
            return 3
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def overrides(pairs: list[str] | None) -> dict[str, str]:
    """``--override KEY=VALUE`` pairs as a dict (values are parsed by the profile loader)."""
    from gradr_deploy.errors import InputError

    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--override {pair!r}: expected KEY=VALUE, e.g. --override "
                             "synop_pj=23.6")
        overrides[key.strip()] = value.strip()
    return overrides


def cmd_map(args: argparse.Namespace) -> int:
    from gradr_deploy.api import map_model
    from gradr_deploy.errors import BudgetError
    from gradr_deploy.mapping import LayerBounds
    from gradr_deploy.reports.mapping import format_table

    result = map_model(args.model, hardware=args.hardware, override=overrides(args.override),
                       refine_bounds=args.refine_bounds, out=args.out or args.model.parent,
                       max_cores=args.max_cores, chips=args.chips)
    print(format_table(result.mapping))
    # only the partitioner's counting bounds can be refined (not the compiler model's)
    if any(isinstance(layer.lower_bounds, LayerBounds) and not layer.lower_bounds.refined
           and layer.cores > layer.lower_bound for layer in result.mapping.layers):
        print("(lower bounds: counting bounds; --refine-bounds tightens them and says why any "
              "gap remains)")
    print(f"wrote {result.json_path}, {result.png_path}")
    if not result.fits:
        raise BudgetError(result.budget_error)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from gradr_deploy.api import run
    from gradr_deploy.simulation.lava_setup import require_lava

    require_lava("gradr-lava deploy")

    result = run(
        args.model, target=args.target, dataset=args.dataset, data_dir=args.data_dir,
        download=args.download, inputs=args.inputs, samples=args.samples,
        time_steps=args.time_steps, out=args.out, hardware=args.hardware,
        override=overrides(args.override), max_cores=args.max_cores, chips=args.chips,
        copies=args.copies, save_spikes=args.save_spikes, quiet=args.quiet)
    report = result.report
    lava = report["lava"]
    source = (f"{report['samples']} samples of {args.inputs}" if args.inputs is not None
              else f"{report['samples']} {report['dataset']} test samples")
    accuracy = ("" if report["lava_accuracy"] is None and args.inputs is not None else
                f"Lava accuracy {_fmt(report['lava_accuracy'])}, PyTorch accuracy "
                f"{_fmt(report['torch_accuracy'])} (Lava's integer grid), ")
    print(f"{source} on {report['target']}: {accuracy}"
          f"spike agreement {_fmt(report['spike_agreement'])} over all "
          f"{len(report['layers'])} layers; {lava['seconds']:.1f} s in Lava "
          f"({lava['samples_per_second']:.3g} samples/s, {lava['copies']} copies)")
    synops = report["synaptic_operations"]
    if synops is not None:
        print(f"NeuroBench: connection sparsity {report['connection_sparsity']:.4f}, "
              f"activation sparsity {report['activation_sparsity']:.4f}, synaptic operations "
              f"per inference {synops['Effective_ACs']:.4g} ACs + "
              f"{synops['Effective_MACs']:.4g} MACs (dense {synops['Dense']:.4g})")
    training = report["training_forward"]
    if training.get("output_spike_agreement") is not None:
        print(f"training forward (SLAYER): accuracy {_fmt(training['accuracy'])}, output "
              f"spike agreement with Lava {_fmt(training['output_spike_agreement'])}")
        if training.get("note"):
            print(f"warning: {training['note']}", file=sys.stderr)
    joules = report["energy"]["energy_j"]  # the CLI always records activity
    breakdown = ", ".join(f"{name} {1e9 * value:.3f}" for name, value in joules.items()
                          if name not in ("dynamic", "total") and value is not None)
    print(f"{report['hardware']}: {report['cores']} cores on {report['chips']} chip(s); "
          f"estimated energy per inference {1e9 * joules['total']:.3f} nJ "
          f"({breakdown}; nJ, an estimate from pre-silicon figures: see deploy.json)")
    if report.get("note"):
        print(report["note"])
    print(f"wrote {result.path}")
    return 0


def cmd_strip_idle(args: argparse.Namespace) -> int:
    from gradr_deploy.netx import strip_idle

    removed = strip_idle(args.model, args.out)
    total = sum(layer.synapses for layer in removed.values())
    idle = sum(layer.idle for layer in removed.values())
    per_layer = ", ".join(f"layer {i}: {layer.idle} of {layer.synapses}"
                          for i, layer in removed.items() if layer.idle)
    if not idle:
        print(f"wrote {args.out}: no synapse of {args.model.name}'s dense layers is idle, the "
              "copy is unchanged")
        return 0
    print(f"wrote {args.out}: removed {idle} of {total} synapses ({idle / total:.1%}; "
          f"{per_layer}) that cannot change any output spike")
    return 0


def cmd_export_nir(args: argparse.Namespace) -> int:
    from gradr_deploy.interop.nir_export import export_nir

    path = export_nir(args.model, args.out, dt=args.dt)
    print(f"wrote {path} (NIR graph; dt = {args.dt} s per time step)")
    return 0


def cmd_import_nir(args: argparse.Namespace) -> int:
    from gradr_deploy.interop.nir_import import read_nir
    from gradr_deploy.netx.write import write_netx

    imported = read_nir(args.graph, dt=args.dt)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    path = write_netx(imported.network, args.out)
    synaptic = len(imported.network.synaptic_layers)
    print(f"wrote {path} (netx, {synaptic} synaptic layers; dt = {imported.dt} s per step)")
    return 0


def cmd_setup_lava(args: argparse.Namespace) -> int:
    from gradr_deploy.simulation.lava_setup import setup_lava

    setup_lava(tuple(args.pip_args or ()))
    return 0
