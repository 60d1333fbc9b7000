"""What a finished training run checks about its exported file: that the trained forward is
what Lava computes, which synapses pruning left idle, and that a network trained to a core
budget fits it once mapped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gradr_deploy.datasets import Split
from gradr_deploy.errors import InputError
from gradr_deploy.mapping import map_file
from gradr_deploy.reports.mapping import write_mapping
from gradr_deploy.simulation.encoding import Encoding
from gradr_deploy.simulation.stimulus import present
from gradr_lava.core_budget import BudgetPlan


def lava_agreement(model: Path, split: Split, encoding: Encoding, seed: int, drain_steps: int,
                   window: int, input_shape: tuple[int, ...] | None, samples: int = 500,
                   warn: bool = True) -> dict[str, Any]:
    """How far the SLAYER forward that was trained is from what Lava will compute.

    Compares the output spikes of lava-dl's SLAYER blocks rebuilt from the exported file
    (the training forward) with the exact reference on Lava's integer grid
    (:mod:`gradr_deploy.simulation.lava_exact`) on the first ``samples`` images of ``split``,
    and warns (``warn``) when they differ: the accuracy in Lava is then not the accuracy
    training reported.
    """
    from gradr_deploy.netx import read_netx
    from gradr_deploy.pipeline import check_programmable
    from gradr_deploy.simulation import lava_exact, reference

    network = read_netx(model)
    try:
        check_programmable(network)
    except InputError as exc:
        tqdm.write(f"warning: {exc}", file=sys.stderr)
        return {"samples": 0, "note": f"not checked: {exc}"}
    ids = np.arange(min(samples, len(split.labels)))
    spikes = present(encoding, split.images[ids], ids, seed, drain_steps)
    try:
        lava = lava_exact.exact_run(network, spikes, window, input_shape).output
        slayer = reference.reference_output(network, spikes, input_shape)
    except (lava_exact.ExactUnsupported, reference.ReferenceUnsupported) as exc:
        return {"samples": 0, "note": f"not checked: {exc}"}
    labels = split.labels[ids]
    lava_pred, slayer_pred = lava.sum(-1).argmax(1), slayer.sum(-1).argmax(1)
    result = {
        "samples": len(ids),
        "output_spike_agreement": float(np.mean(lava == slayer)),
        "prediction_agreement": float(np.mean(lava_pred == slayer_pred)),
        "slayer_accuracy": float(np.mean(slayer_pred == labels)),
        "lava_accuracy": float(np.mean(lava_pred == labels)),
    }
    if result["output_spike_agreement"] < 1.0 and warn:
        tqdm.write(
            f"warning: on {len(ids)} test images the trained SLAYER forward and Lava's "
            f"integer arithmetic agree on {100 * result['output_spike_agreement']:.2f}% "
            f"of output spikes and {100 * result['prediction_agreement']:.1f}% of "
            f"predictions (accuracy {result['slayer_accuracy']:.4f} vs "
            f"{result['lava_accuracy']:.4f} in Lava): gradr-lava deploy reports the Lava "
            "figure (docs/lava.md)", file=sys.stderr)
    return result


def idle_report(model: Path) -> list[dict[str, int]]:
    """Per dense layer of the exported file, its synapses that cannot change an output spike
    (:func:`gradr_deploy.netx.idle_synapses`; pruning leaves them, ``strip_idle`` removes them)."""
    from gradr_deploy.netx import idle_synapses, read_netx

    return [{"index": i, "synapses": layer.synapses, "idle": layer.idle,
             "live_neurons": layer.live_neurons}
            for i, layer in idle_synapses(read_netx(model)).items()]


def core_budget_check(model: Path, plan: BudgetPlan, hardware: str,
                      overrides: dict[str, str]) -> dict[str, Any]:
    """Map the exported file with ``gradr-lava map``'s mapper (writing mapping.json/png beside
    it) and compare with the plan."""
    mapping = map_file(model, hardware, overrides)
    write_mapping(mapping, model.parent)
    return {
        **plan.to_dict(),
        "mapped_cores": mapping.total_cores,
        "mapped_layers": [{"index": m.index, "cores": m.cores,
                           "limiting_resource": m.limiting} for m in mapping.layers],
        "fits": mapping.total_cores <= plan.budget_cores,
        "over_budget_by": max(0, mapping.total_cores - plan.budget_cores),
    }
