"""Training from Python: ``gradr_lava.train(model, dataset, pruning=..., out=...)``.

    >>> import gradr_lava
    >>> result = gradr_lava.train("digits-mlp", "digits", out="runs/gr", epochs=10,
    ...                           pruning=gradr_lava.Pruning("gradr", target_connectivity=0.3))
    >>> result.test_accuracy, result.connectivity, result.netx_path  # doctest: +SKIP

Keyword names are ``gradr-lava train``'s flags with ``-`` as ``_`` (``--gradr-mode`` ->
``gradr_mode``, ``--override`` -> ``override``; ``--prune`` is ``Pruning(method)``);
``tests/test_api_train.py`` checks that every flag has its keyword. The command line itself
calls :func:`train`, and errors name the keywords from Python, the flags from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradr_deploy.datasets import Dataset
    from gradr_lava.config import ModelConfig

__all__ = ["Pruning", "TrainResult", "train"]


@dataclass(frozen=True)
class Pruning:
    """How to prune while training (the ``pruning while training`` and ``core budget`` flags).

    Attributes:
        method: ``gradr`` (Gradient Rewiring), ``stds`` (its successor, Chen et al. 2022),
            ``deepr`` (Deep R), ``magnitude`` or ``none``.
        target_connectivity: final fraction of nonzero weights, one for every layer or
            ``{layer: fraction}`` (synaptic layer index from 0).
        alpha: Grad R paper mode: the Laplace prior's strength.
        gradr_mode, gradr_count, gradr_shift, gradr_finetune: Grad R's variants
            (``docs/rewiring.md``).
        fit_cores, fit_chips: derive per-layer targets so the network fits this budget.
        hardware, override, budget_allocation: the profile for the budget, constants to override
            (``{"count_zero_weights": "false"}``), and how the budget is split.
        options: the pruners' own options that have no flag, as
            :func:`gradr_lava.rewiring.make_pruner` takes them: Deep R's ``temperature``,
            ``soft``, ``l1``; magnitude's ``prune_every``; ``regrow_theta``; Grad R paper
            mode's ``adam_bias_correction``.
        prune_ramp: ``(start, end)`` fractions of training over which connectivity ramps
            down to the target (magnitude, stds, Grad R schedule mode; default (0, 0.75)).
        prune_idle_first: magnitude: drop first, at every mask update, the synapses that
            cannot change an output spike; Grad R schedule mode: push them out before every
            shift (``--prune-idle-first``, ``docs/rewiring.md``).
    """

    method: str = "gradr"
    target_connectivity: float | Mapping[int, float] | None = None
    alpha: float | None = None
    gradr_mode: str | None = None
    gradr_count: str | None = None
    gradr_shift: str | None = None
    gradr_finetune: float | None = None
    fit_cores: int | None = None
    fit_chips: int | None = None
    hardware: str = "loihi2"
    override: Mapping[str, str] = field(default_factory=dict)
    budget_allocation: str = "budget-aware"
    options: Mapping[str, Any] = field(default_factory=dict)
    prune_ramp: tuple[float, float] | None = None
    prune_idle_first: bool = False


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced (the run directory's files, read back).

    Attributes:
        run_dir: the run directory (``--out``); ``netx_path``: its ``model.net``.
        test_accuracy: fraction correct on the test split, quantized PyTorch forward.
        connectivity: nonzero 8-bit weights / all weights after the last epoch.
        history: one row per epoch (``docs/outputs.md``, metrics.json ``history``).
        metrics: the whole ``metrics.json``.
    """

    run_dir: Path
    netx_path: Path
    test_accuracy: float
    connectivity: float | None
    history: list[dict[str, Any]]
    metrics: dict[str, Any]

    @property
    def network(self) -> Any:
        """The exported network (:class:`gradr_deploy.netx.NetxNetwork`)."""
        from gradr_deploy.netx import read_netx

        return read_netx(self.netx_path)


def train(model: str | Path | ModelConfig | None = None,
          dataset: str | Dataset | tuple[Any, Any] = "digits", *, out: str | Path,
          pruning: Pruning | None = None, epochs: int | None = None, seed: int = 0,
          resume: bool = False, data_dir: str | Path | None = None, download: bool = False,
          device: str = "auto", engine: str = "auto",
          quiet: bool = True) -> TrainResult:
    """Train ``model`` on ``dataset``, pruned as ``pruning`` says, and export it to netx.

    Args:
        model: a config name from ``models/`` (``digits-mlp``, ``mnist-2fc``, ...), a TOML
            path, or a :class:`gradr_lava.config.ModelConfig` (e.g. ``dataclasses.replace`` of a
            loaded one); None: the data set's default.
        dataset: ``digits`` (embedded) or ``mnist`` (``data_dir`` holds the IDX files, or
            ``download``); or the data itself: a :class:`gradr_deploy.datasets.Dataset`, or a
            pair ``(train, test)`` of map-style data sets of ``(image, label)`` (images
            ``(H, W)`` in [0, 1] or uint8; see :func:`gradr_deploy.datasets.from_samples`).
        out: the run directory (checkpoint.pt after every epoch, model.net, metrics.json).
        pruning: None trains dense.
        epochs: overrides the config's; ``seed``: 0 .. 2**32 - 1; ``resume``: continue ``out``.
        device, engine: ``auto``/``cpu``/``cuda`` and ``auto``/``fast``/``slayer``.
        quiet: no progress output.

    Raises:
        gradr_deploy.errors.ToolchainError: bad input (exit code 2 on the command line), no
            Lava (4).
    """
    from gradr_deploy.simulation.lava_setup import require_lava

    require_lava("training")
    from gradr_lava.config import ModelConfig
    from gradr_lava.trainer import MODEL_FILE, TrainOptions
    from gradr_lava.trainer import train as run_training

    if isinstance(dataset, tuple):
        from gradr_deploy.datasets import from_samples

        dataset = from_samples("custom", *dataset)
    p = pruning or Pruning("none")
    targets = p.target_connectivity
    if isinstance(targets, Mapping):
        targets = {int(k): float(v) for k, v in targets.items()}
    out = Path(out)
    metrics = run_training(TrainOptions(
        dataset=dataset, out=out,
        model=model if model is None or isinstance(model, ModelConfig) else str(model),
        data_dir=None if data_dir is None else Path(data_dir), download=download,
        epochs=epochs, seed=seed, resume=resume, progress=not quiet, prune=p.method,
        target_connectivity=targets, alpha=p.alpha, prune_mode=p.gradr_mode,
        gradr_count=p.gradr_count, gradr_shift=p.gradr_shift, finetune=p.gradr_finetune,
        prune_ramp=None if p.prune_ramp is None else tuple(p.prune_ramp),
        fit_cores=p.fit_cores, fit_chips=p.fit_chips, hardware=p.hardware,
        hardware_overrides=dict(p.override), budget_allocation=p.budget_allocation,
        pruner_options={**p.options, **({"idle_first": True} if p.prune_idle_first else {})},
        engine=engine, device=device))
    history = metrics.get("history", [])
    return TrainResult(run_dir=out, netx_path=out / MODEL_FILE,
                       test_accuracy=metrics["test_accuracy"],
                       connectivity=history[-1].get("connectivity") if history else None,
                       history=history, metrics=metrics)
