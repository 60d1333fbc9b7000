"""The deployment side from Python: read -> map -> simulate -> energy, or all of it at once.

    >>> import gradr_deploy as gd
    >>> network = gd.read_netx("models/digits-mlp.net")
    >>> mapping = gd.map_network(network, hardware="loihi2")
    >>> mapping.total_cores
    2
    >>> sim = gd.simulate(network, spikes)  # spikes: (N, inputs, steps), 0/1 or payloads
    >>> energy = gd.estimate_energy(mapping, sim)
    >>> energy.total_j  # joules per inference  # doctest: +SKIP

or ``gd.run("models/digits-mlp.net", samples=100)``, which is ``gradr-lava deploy``; its
keyword names are the command's flags (``--save-spikes`` -> ``save_spikes``).

Importing this module loads neither torch nor Lava; :func:`simulate` and :func:`run` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.atomic import check_writable
from gradr_deploy.energy import EnergyEstimate
from gradr_deploy.energy import estimate_energy as _estimate_energy
from gradr_deploy.mapping import NetworkMapping, map_file, map_network
from gradr_deploy.netx import NetxNetwork, read_netx

__all__ = ["DeployResult", "MapResult", "Simulation", "estimate_energy", "map_model",
           "map_network", "read_netx", "run", "simulate"]


@dataclass(frozen=True)
class MapResult:
    """What :func:`map_model` (``gradr-lava map``) found and wrote.

    Attributes:
        mapping: the placement (``.total_cores``, ``.chips``, ``.layers``, ``.to_dict()``).
        json_path, png_path: ``mapping.json`` and ``mapping.png`` written (None without ``out``).
        budget: :func:`gradr_deploy.mapping.budget.utilization` against ``max_cores`` /
            ``chips``; ``budget_error``: why the network does not fit ("" when it does).
    """

    mapping: NetworkMapping
    json_path: Path | None
    png_path: Path | None
    budget: dict[str, Any]
    budget_error: str

    @property
    def fits(self) -> bool:
        return not self.budget_error


def map_model(model: str | Path, *, hardware: str | Path = "loihi2",
              override: Mapping[str, Any] | None = None, refine_bounds: bool = False,
              out: str | Path | None = None, max_cores: int | None = None,
              chips: int | None = None) -> MapResult:
    """``gradr-lava map`` from Python: map a netx file or NIR graph, write ``mapping.json`` and
    ``mapping.png`` into ``out`` (when given), and check the core budget.

    Over budget is a result (``.fits`` False, ``.budget_error`` the message), not an exception,
    so the mapping is there to look at; bad input raises :class:`InputError`.
    """
    from gradr_deploy.errors import BudgetError
    from gradr_deploy.mapping.budget import check_budget, utilization
    from gradr_deploy.reports.mapping import write_mapping

    directory = None if out is None else check_writable(Path(out))  # before the work
    mapping = map_file(model, hardware, override, refine_bounds=refine_bounds)
    json_path = png_path = None
    if directory is not None:
        json_path, png_path = write_mapping(mapping, directory)
    try:
        check_budget(mapping, max_cores, chips)
        error = ""
    except BudgetError as exc:
        error = str(exc)
    return MapResult(mapping, json_path, png_path, utilization(mapping, max_cores, chips), error)


@dataclass(frozen=True)
class Simulation:
    """A Lava run of a network on given inputs, with its exact PyTorch reference.

    Attributes:
        network: the network simulated.
        inputs: ``(N, F, window)`` the spikes presented (drain steps included).
        layer_spikes: per layer Lava built (every layer but ``flatten``), ``(N, neurons,
            window)`` uint8 in the stored neuron order; the last is the output layer.
        window: steps per sample (Lava resets every ``window`` steps).
        reference_spikes: the same layers from the reference on Lava's integer grid, or None
            when it does not cover the network.
        seconds: wall time of the Lava run (s); ``copies``: network copies side by side.
    """

    network: NetxNetwork
    inputs: np.ndarray
    layer_spikes: tuple[np.ndarray, ...]
    window: int
    reference_spikes: tuple[np.ndarray, ...] | None
    seconds: float
    copies: int

    @property
    def output_spikes(self) -> np.ndarray:
        return self.layer_spikes[-1]

    @property
    def spike_agreement(self) -> float | None:
        """Share of identical (sample, neuron, step) bins, Lava vs the reference, all layers."""
        if self.reference_spikes is None:
            return None
        same = sum(int(np.count_nonzero(a == b))
                   for a, b in zip(self.layer_spikes, self.reference_spikes, strict=True))
        return same / sum(a.size for a in self.layer_spikes)

    def predictions(self) -> np.ndarray:
        """``(N,)`` the most active output neuron of each sample."""
        return self.output_spikes.sum(axis=2).argmax(axis=1)


def simulate(network: NetxNetwork, spikes: np.ndarray, target: str = "lava-sim", *,
             drain_steps: int | None = None, input_shape: tuple[int, int, int] | None = None,
             copies: int | None = None) -> Simulation:
    """Run ``network`` in Lava on ``spikes`` ``(N, F, steps)`` (or ``(F, steps)``) and compute
    the exact reference beside it.

    ``drain_steps`` empty steps (default one per synaptic layer) follow each sample so that its
    last spikes reach the output. ``target`` is ``lava-sim`` (Lava's CPU simulator) or
    ``loihi2`` (hardware, with Intel's lava-loihi).
    """
    from gradr_deploy.simulation import lava_exact, lava_sim
    from gradr_deploy.simulation.stimulus import append_drain, pad_window, payload_bits, run_window

    lava_sim.run_config(target)
    spikes = np.asarray(spikes)
    if spikes.ndim == 2:
        spikes = spikes[None]
    if drain_steps is None:
        drain_steps = len(network.synaptic_layers)
    window = run_window(spikes.shape[2] + drain_steps, target)
    inputs = pad_window(append_drain(spikes.astype(np.uint8), drain_steps), window)
    if input_shape is None:
        from gradr_deploy.netx.metadata import recorded_input_shape

        input_shape = recorded_input_shape(network.attrs, str(network.path))
    copies = copies or lava_sim.plan_copies(lava_sim.network_density(network), len(inputs),
                                            target, lava_sim.copies_limit(network))
    try:
        reference = tuple(lava_exact.exact_run(network, inputs, window, input_shape,
                                               streams=copies).layers)
    except lava_exact.ExactUnsupported:
        reference = None
    run = lava_sim.run_lava(network.path, inputs, window, input_shape, target=target,
                            copies=copies, record_hidden=True,
                            input_message_bits=payload_bits(inputs))
    return Simulation(network, inputs, tuple(run.layer_spikes or [run.output_spikes]), window,
                      reference, run.seconds, run.copies)


def estimate_energy(mapping: NetworkMapping, simulation: Simulation) -> EnergyEstimate:
    """Energy and latency of one inference from a simulation's measured activity."""
    from gradr_deploy.pipeline import activity_per_inference

    steps = [spikes.sum(axis=(0, 1)) for spikes in simulation.layer_spikes]
    activity = activity_per_inference(simulation.network, simulation.inputs, steps)
    return _estimate_energy(mapping, activity, simulation.window)


@dataclass(frozen=True)
class DeployResult:
    """What :func:`run` (``gradr-lava deploy``) measured; ``report`` is ``deploy.json``."""

    lava_accuracy: float | None
    torch_accuracy: float | None
    spike_agreement: float | None
    cores: int
    chips: int
    energy_j: float | None  # per inference (one sample)
    report: dict[str, Any]
    path: Path  # the deploy.json written


def run(model: str | Path, *, target: str = "lava-sim", dataset: str | None = None,
        data_dir: str | Path | None = None, download: bool = False,
        inputs: str | Path | None = None, samples: int | None = None,
        time_steps: int | None = None, out: str | Path | None = None,
        hardware: str = "loihi2", override: Mapping[str, str] | None = None,
        max_cores: int | None = None, chips: int | None = None, copies: int | None = None,
        save_spikes: bool = False, quiet: bool = True) -> DeployResult:
    """``gradr-lava deploy`` from Python: map, check the budget, run in Lava against the
    reference, estimate energy, write ``deploy.json``. Arguments are the command's flags
    (``override`` is ``--override``); errors are :class:`gradr_deploy.errors.ToolchainError`."""
    from gradr_deploy.pipeline import DEPLOY_FILE, DeployOptions, deploy_network

    options = DeployOptions(
        model=Path(model), target=target, dataset=dataset,
        data_dir=None if data_dir is None else Path(data_dir), download=download,
        samples=samples, out=None if out is None else Path(out), time_steps=time_steps,
        progress=not quiet, hardware=hardware, overrides=dict(override or {}),
        max_cores=max_cores, chips=chips, copies=copies, save_spikes=save_spikes,
        inputs=None if inputs is None else Path(inputs))
    report = deploy_network(options)
    energy = report["energy"]["energy_j"]["total"] if report.get("energy") else None
    return DeployResult(
        lava_accuracy=report["lava_accuracy"], torch_accuracy=report["torch_accuracy"],
        spike_agreement=report["spike_agreement"], cores=report["cores"],
        chips=report["chips"], energy_j=energy, report=report,
        path=(options.out or options.model.parent) / DEPLOY_FILE)
