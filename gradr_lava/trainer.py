"""Train a SLAYER network on a data set, checkpoint every epoch, export it to netx HDF5.

One sample's path: ``gradr_deploy.datasets`` loads an image ``(H, W)`` in [0, 1] ->
``gradr_deploy.simulation.stimulus.present`` turns it into rate-coded spikes ``(F, T + drain)`` ->
``SpikingNetwork`` produces output spikes ``(classes, T + drain)`` -> the class with the most
output spikes is the prediction; the loss is cross-entropy on the output spike counts.

A run directory holds ``checkpoint.pt`` (after every epoch), and at the end ``model.net``
(netx HDF5), ``metrics.json`` and ``training_curves.png``. ``resume=True`` continues from the
checkpoint with identical results to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gradr_deploy.atomic import directory_lock, write_json
from gradr_deploy.datasets import Dataset, load_dataset
from gradr_deploy.errors import InputError, option, renamed_options
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_file
from gradr_deploy.netx.metadata import NetworkMetadata
from gradr_deploy.progress import is_terminal
from gradr_deploy.reports.mapping import write_mapping
from gradr_deploy.simulation.encoding import DirectEncoding, Encoding, RateEncoding
from gradr_deploy.simulation.stimulus import present
from gradr_lava import distributed
from gradr_lava.allocator import keep_freed_memory
from gradr_lava.augment import RandomAffine, apply_affine
from gradr_lava.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from gradr_lava.config import (
    DEFAULT_MODELS,
    ModelConfig,
    load_model_config,
    parse_model_config,
)
from gradr_lava.core_budget import BudgetPlan, plan_budget, uniform_targets
from gradr_lava.export import export_netx
from gradr_lava.network import SpikingNetwork
from gradr_lava.plots import plot_training_curves
from gradr_lava.rewiring import Pruner, RewiringError, make_pruner

MODEL_FILE = "model.net"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"


# make_pruner's options that have no command-line flag (gradr_lava.Pruning.options)
# make_pruner's keywords that the trainer (and gradr_lava.Pruning) names otherwise
PRUNER_KEYWORDS = {"mode": "gradr_mode", "finetune": "gradr_finetune", "count": "gradr_count",
                   "shrink": "gradr_shift"}
PRUNER_OPTIONS = frozenset({"temperature", "soft", "l1", "prune_every", "regrow_theta",
                            "schedule", "adam_bias_correction"})


@dataclass(frozen=True)
class TrainOptions:
    """What ``gradr-lava train`` was asked to do."""

    dataset: str
    out: Path
    model: str | None = None  # config name or path; default per data set
    data_dir: Path | None = None
    download: bool = False
    epochs: int | None = None  # overrides the config's
    seed: int = 0
    resume: bool = False
    progress: bool = True
    prune: str = "none"  # none | gradr | deepr | magnitude (gradr_lava.rewiring)
    target_connectivity: float | dict[int, float] | None = None  # nonzero fraction (per layer)
    alpha: float | None = None  # Grad R prior strength (paper mode)
    prune_mode: str | None = None  # Grad R: "paper" or "schedule" (default: see _make_pruner)
    gradr_count: str | None = None  # Grad R schedule: "deployed" (default) or "float"
    gradr_shift: str | None = None  # Grad R schedule: "all" (default) or "crossing"
    finetune: float | None = None  # Grad R: final fraction of training on a frozen topology
    fit_cores: int | None = None  # train to fit this many cores (gradr_lava.core_budget)
    fit_chips: int | None = None  # ... or this many chips
    hardware: str = "loihi2"  # profile for --fit-cores / --fit-chips
    hardware_overrides: dict[str, str] = field(default_factory=dict)  # profile constants (--set)
    budget_allocation: str = "budget-aware"  # or "uniform" (the baseline)
    # the pruners' options without a flag (gradr_lava.Pruning.options): temperature, soft, l1,
    # prune_every, regrow_theta, schedule, adam_bias_correction (gradr_lava.rewiring.make_pruner)
    pruner_options: dict[str, Any] = field(default_factory=dict)
    engine: str = "auto"  # auto | fast | slayer (gradr_lava.network.select_engine)
    device: str = "auto"  # auto | cpu | cuda (gradr_lava.distributed.resolve_device)

    def prune_settings(self) -> dict[str, Any]:
        return {"method": self.prune, "target_connectivity": self.target_connectivity,
                "alpha": self.alpha, "mode": self.prune_mode, "finetune": self.finetune,
                "fit_cores": self.fit_cores,
                "fit_chips": self.fit_chips, "hardware": self.hardware,
                "budget_allocation": self.budget_allocation,
                # only when given, so runs started before the option existed still resume
                **({"hardware_overrides": dict(self.hardware_overrides)}
                   if self.hardware_overrides else {}),
                **({"gradr_count": self.gradr_count} if self.gradr_count else {}),
                **({"pruner_options": dict(self.pruner_options)}
                   if self.pruner_options else {}),
                **({"gradr_shift": self.gradr_shift} if self.gradr_shift else {})}


def _epoch_seed(seed: int, epoch: int) -> int:
    """Training spikes are drawn afresh each epoch, reproducibly."""
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1)[0] & 0x7FFFFFFF)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def make_encoding(config: ModelConfig) -> Encoding:
    """The input encoding a model config asks for (``[input]``)."""
    cfg = config.input
    if cfg.encoding == "direct":
        return DirectEncoding(time_steps=cfg.time_steps, levels=cfg.levels)
    return RateEncoding(time_steps=cfg.time_steps, max_rate=cfg.max_rate)


def _encoded(count: int, encode: Callable[[int], torch.Tensor],
             background: bool) -> Iterator[torch.Tensor]:
    """``encode(0), ..., encode(count - 1)`` in order; with ``background``, each next one is
    computed on a second thread while the caller works on the current one."""
    if not background:
        for i in range(count):
            yield encode(i)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
        pending = pool.submit(encode, 0)
        for i in range(count):
            current = pending.result()
            if i + 1 < count:
                pending = pool.submit(encode, i + 1)
            yield current


def _lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule: constant, or cosine from the config's rate to 0."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


class Trainer:
    """Holds one run's network, data and optimizer; :meth:`run` trains and exports."""

    def __init__(self, options: TrainOptions):
        self.options = options
        self.config: ModelConfig = load_model_config(
            options.model or DEFAULT_MODELS.get(options.dataset, "digits-mlp")
        )
        self.data: Dataset = load_dataset(
            options.dataset, options.data_dir, download=options.download
        )
        self.epochs = options.epochs or self.config.training.epochs
        if self.epochs < 1:
            raise InputError(f"{option('epochs')} must be >= 1, got {self.epochs}")
        self.context = distributed.setup(options.device)
        if self.context.device.type == "cpu":
            keep_freed_memory()
        torch.manual_seed(options.seed)
        self.network = SpikingNetwork(self.config, self.data.image_shape, self.data.num_classes,
                                      engine=options.engine).to(self.context.device)
        self.budget_plan = self._plan_budget()
        self.total_steps = self.epochs * math.ceil(
            len(self.data.train.labels) / self.config.training.batch_size
        )
        self.pruner, pruner_by_length = self._make_pruner()
        # A schedule laid out over total_steps cannot be resumed with another --epochs.
        self._schedules_by_length = (
            pruner_by_length or self.config.training.lr_schedule != "constant"
        )
        self.pruner.attach(self.network)
        self.model: torch.nn.Module = self.network  # what the training step calls
        if self.context.distributed:
            self.model = distributed.data_parallel(self.network, self.context)
        self.optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.config.training.learning_rate
        )
        self.scheduler = _lr_scheduler(
            self.optimizer, self.config.training.lr_schedule, self.total_steps
        )
        self.encoding = make_encoding(self.config)
        self.augment = RandomAffine() if self.config.training.augment == "affine" else None
        self.drain_steps = len(self.network.synaptic_blocks)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.seconds = 0.0

    def _plan_budget(self) -> BudgetPlan | None:
        o = self.options
        if o.fit_cores is None and o.fit_chips is None:
            return None
        if o.target_connectivity is not None or o.prune not in ("none", "gradr"):
            raise InputError(
                f"{option('fit_cores')}/{option('fit_chips')} derive "
                f"{option('target_connectivity')} per layer and train with Grad R: drop "
                f"{option('target_connectivity')} and {option('method')}"
            )
        shapes = []
        for block in self.network.synaptic_blocks:
            if type(block).__name__ != "Dense":
                raise InputError(f"{option('fit_cores')} supports dense layers only; "
                                 f"{self.config.source} has a {type(block).__name__} layer")
            shapes.append(tuple(block.synapse.weight.shape[:2]))
        budget = o.fit_cores
        if o.fit_chips is not None:
            chip_cores = load_profile(o.hardware, o.hardware_overrides).cores_per_chip * o.fit_chips
            budget = chip_cores if budget is None else min(budget, chip_cores)
        plan = plan_budget if o.budget_allocation == "budget-aware" else uniform_targets
        return plan(shapes, budget, o.hardware, o.hardware_overrides, seed=o.seed)

    def _make_pruner(self) -> tuple[Pruner, bool]:
        """The pruner, and whether it is laid out over ``total_steps``.

        Grad R without ``--alpha`` or ``--gradr-mode`` runs in schedule mode: it is the mode
        that reaches ``--target-connectivity``, and by default it counts the weights that stay
        nonzero in 8 bits, so the target is the deployed connectivity.
        """
        o = self.options
        method, mode, targets = o.prune, o.prune_mode, o.target_connectivity
        if self.budget_plan is not None:
            method, mode, targets = "gradr", o.prune_mode or "schedule", self.budget_plan.targets
        if method == "gradr" and mode is None and o.alpha is None:
            mode = "schedule"
        count = shrink = None
        if method == "gradr" and mode == "schedule":
            count = o.gradr_count or "deployed"
            shrink = (o.gradr_shift or "all") == "all"
        else:
            for name, value in (("gradr_count", o.gradr_count), ("gradr_shift", o.gradr_shift)):
                if value is not None:
                    raise InputError(f"{option(name)} is a Grad R schedule-mode option "
                                     f"({option('method', 'gradr')} "
                                     f"{option('gradr_mode', 'schedule')})")
        needs_steps = method == "magnitude" or (
            method == "gradr" and (mode == "schedule" or bool(o.finetune)))
        extra = dict(o.pruner_options)
        unknown = sorted(set(extra) - PRUNER_OPTIONS)
        if unknown:
            raise InputError(f"pruner options {unknown} unknown; the options without a flag are "
                             f"{sorted(PRUNER_OPTIONS)}")
        if "schedule" in extra:
            extra["schedule"] = tuple(extra["schedule"])
        if method == "gradr" and mode == "paper" and o.alpha is None:
            raise InputError(
                f"{option('method', 'gradr')} {option('gradr_mode', 'paper')} needs "
                f"{option('alpha')} (the prior strength; the reference's MNIST value is 0.06 for "
                f"~5% connectivity), or drop {option('gradr_mode', 'paper')} to reach "
                f"{option('target_connectivity')} exactly")
        # the pruner's keywords are the trainer's under other names: its messages name ours
        with renamed_options(PRUNER_KEYWORDS):
            try:
                pruner = make_pruner(
                    method, target_connectivity=targets, alpha=o.alpha,
                    mode=mode, total_steps=self.total_steps if needs_steps else None,
                    finetune=o.finetune, count=count, shrink=shrink, seed=o.seed, **extra,
                )
            except RewiringError as exc:
                raise InputError(f"{option('method', o.prune)}: {exc}") from None
        return pruner, needs_steps

    # -- state ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.options.out / CHECKPOINT_NAME

    def _identity(self) -> dict[str, Any]:
        return {"dataset": self.options.dataset, "seed": self.options.seed,
                "config": self.config.to_dict(), "prune": self.options.prune_settings()}

    def state(self) -> dict[str, Any]:
        return {
            "identity": self._identity(),
            "epoch": len(self.history),
            "epochs": self.epochs,
            "seconds": self.seconds,
            "history": self.history,
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "pruner": self.pruner.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        identity = state.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("config"), dict):
            # config keys added since the checkpoint was written count at their defaults
            try:
                config = parse_model_config(identity["config"], str(self.checkpoint_path))
                identity = {**identity, "config": config.to_dict()}
            except InputError:
                pass  # not a config this version reads: the comparison below says so
        if identity != self._identity():
            raise InputError(
                f"{self.checkpoint_path} belongs to a different run (data set, seed or model "
                f"config differ); resume with the original options or use a new {option('out')}"
            )
        planned = state.get("epochs", self.epochs)
        if planned != self.epochs and self._schedules_by_length:
            raise InputError(
                f"{self.checkpoint_path} was planned for {planned} epochs and its pruning or "
                f"learning-rate schedule is laid out over them; resume with "
                f"{option('epochs', planned)}"
            )
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.pruner.load_state_dict(state["pruner"])
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.start_epoch = int(state["epoch"])
        self.seconds = float(state["seconds"])

    # -- one pass -------------------------------------------------------------------------
    def _spikes(self, images: np.ndarray, ids: np.ndarray, seed: int) -> torch.Tensor:
        return self._host_spikes(images, ids, seed).to(self.context.device)

    def _host_spikes(self, images: np.ndarray, ids: np.ndarray, seed: int) -> torch.Tensor:
        spikes = torch.from_numpy(present(self.encoding, images, ids, seed, self.drain_steps))
        return spikes.to(torch.float32)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training set; under torchrun each rank takes its share of every
        batch and the loss is scaled so that DDP's gradient average is the global batch mean."""
        self.network.train()
        split = self.data.train
        batches = _batches(len(split.labels), self.config.training.batch_size,
                           np.random.default_rng([self.options.seed, epoch]))
        seed = _epoch_seed(self.options.seed, epoch)
        sums = [torch.zeros((), dtype=torch.float64, device=self.context.device),  # loss
                torch.zeros((), dtype=torch.int64, device=self.context.device)]  # correct
        seen = 0
        shards = [distributed.shard(batch, self.context) for batch in batches]
        warps = (None if self.augment is None else
                 self.augment.epoch_parameters(self.options.seed, epoch, len(split.labels)))

        def encode(i: int) -> torch.Tensor:
            images = split.images[shards[i]]
            if warps is not None:
                images = apply_affine(images, warps[shards[i]])
            return self._host_spikes(images, shards[i], seed)

        # On a GPU the next batch is rate-coded on a CPU thread while this one trains; on the
        # CPU that thread would only compete with the step for the same cores (measured: an
        # MNIST 2FC epoch 13.9 s inline, 17.5 s with the thread, on 2 cores).
        background = self.context.device.type == "cuda"
        # on a terminal a bar per epoch; in a log only the epoch lines (gradr_deploy.progress)
        bar = tqdm(_encoded(len(batches), encode, background), total=len(batches),
                   desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                   disable=not (self._progress and is_terminal()), leave=False,
                   dynamic_ncols=True)
        for step, spikes in enumerate(bar):
            ids = shards[step]
            self._train_step(spikes.to(self.context.device, non_blocking=True),
                             torch.from_numpy(split.labels[ids]), len(batches[step]), sums)
            seen += len(ids)
            if self._progress and step % 10 == 0:  # reading the sums back syncs a GPU
                bar.set_postfix(loss=f"{float(sums[0]) / seen:.3f}",
                                acc=f"{int(sums[1]) / seen:.3f}", refresh=False)
        total_loss, total_correct, total_seen = distributed.all_sum(
            [float(sums[0]), float(sums[1]), float(seen)], self.context)
        return {"loss": total_loss / total_seen, "train_accuracy": total_correct / total_seen}

    def _train_step(self, spikes: torch.Tensor, labels: torch.Tensor, global_batch: int,
                    sums: list[torch.Tensor]) -> None:
        """One optimizer and pruner step on this rank's share of a batch; adds the summed loss
        and the number correct to ``sums``."""
        labels = labels.to(self.context.device)
        counts = self.model(spikes).sum(dim=-1)
        losses = torch.nn.functional.cross_entropy(counts, labels, reduction="sum")
        # DDP averages gradients over ranks: scaled so, the result is the global batch mean
        loss = losses * (self.context.world_size / global_batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # The pruner's own update uses the learning rate of the step just taken.
        self.pruner.after_step(self.optimizer, self.scheduler.get_last_lr()[0])
        self.scheduler.step()
        sums[0] += losses.detach()
        sums[1] += (counts.argmax(dim=1) == labels).sum()

    @property
    def _progress(self) -> bool:
        return self.options.progress and self.context.is_main

    @torch.no_grad()
    def evaluate(self, batch_size: int = 512) -> dict[str, Any]:
        """Test accuracy of the quantized forward, on the spikes ``deploy`` will replay, and
        each synaptic layer's firing rate (spikes per neuron per time step, over the window).
        Under torchrun each rank evaluates a contiguous part of the test set."""
        self.network.eval()
        split = self.data.test
        part = np.array_split(np.arange(len(split.labels)), self.context.world_size)
        mine = part[self.context.rank]
        layers = len(self.network.synaptic_blocks)
        sums = [0.0] * (1 + 2 * layers)  # correct, then per layer: spikes, neuron-steps
        for start in range(0, len(mine), batch_size):
            ids = mine[start : start + batch_size]
            outputs = self.network.forward_layers(
                self._spikes(split.images[ids], ids, self.options.seed)
            )
            synaptic = [out for out, block in zip(outputs, self.network.blocks, strict=True)
                        if hasattr(block, "synapse")]
            for i, out in enumerate(synaptic):
                sums[1 + 2 * i] += float(out.sum())
                sums[2 + 2 * i] += out.numel()
            predicted = outputs[-1].sum(-1).argmax(dim=1).cpu().numpy()
            sums[0] += int((predicted == split.labels[ids]).sum())
        sums = distributed.all_sum(sums, self.context)
        return {
            "test_accuracy": sums[0] / len(split.labels),
            "firing_rates": [sums[1 + 2 * i] / sums[2 + 2 * i] for i in range(layers)],
        }

    # -- the run --------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            # one run writes a run directory at a time; under torchrun rank 0 holds the lock
            with contextlib.ExitStack() as stack:
                error = None
                if self.context.is_main:
                    try:
                        stack.enter_context(directory_lock(self.options.out))
                    except (InputError, OSError) as exc:
                        error = exc
                distributed.agree(error, self.context)
                result = self._run()
            # every rank is past its last collective before any leaves the group
            distributed.barrier(self.context)
            return result
        finally:
            distributed.shutdown(self.context)

    def _run(self) -> dict[str, Any]:
        out = self.options.out
        if self.options.resume:
            self.restore(load_checkpoint(self.checkpoint_path))
        elif self.checkpoint_path.exists():
            raise InputError(
                f"{out} already holds a training run ({CHECKPOINT_NAME}); pass "
                f"{option('resume', True)} to continue it, or choose another {option('out')}"
            )
        out.mkdir(parents=True, exist_ok=True)
        for epoch in range(self.start_epoch, self.epochs):
            started = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            row["learning_rate"] = self.scheduler.get_last_lr()[0]  # where the epoch ended
            row.update(self.evaluate())
            row.update(_connectivity_columns(self.pruner.end_epoch(epoch, self.epochs)))
            distributed.check_identical(self._rank_state(), f"after epoch {epoch + 1}, the "
                                        "model, optimizer or pruner state", self.context)
            row["seconds"] = time.perf_counter() - started
            row["warnings"] = self._health(row)
            self.seconds += row["seconds"]
            self.history.append(row)
            self._save_checkpoint(epoch)
            if self._progress:
                tqdm.write(_epoch_line(row, self.epochs))
        return self.finish()

    def _health(self, row: dict[str, Any]) -> list[str]:
        """Warnings about an epoch that trained nothing: a silent output layer (no gradient
        reaches the network through it) or a loss stuck at chance. Printed and recorded."""
        warnings = []
        epoch, chance = row["epoch"], math.log(self.data.num_classes)
        if row["firing_rates"] and row["firing_rates"][-1] == 0.0:
            warnings.append(
                f"epoch {epoch}: the output layer fired no spike on the test set, so the "
                "loss cannot improve through it (too few connections, or weights too small): "
                f"prune more slowly (more {option('epochs')}, a higher "
                f"{option('target_connectivity')}) or raise "
                "weight_scale in the model config")
        if abs(row["loss"] - chance) < 1e-3:
            previous = self.history[-1]["loss"] if self.history else None
            if previous is None or abs(previous - row["loss"]) < 1e-3:
                warnings.append(f"epoch {epoch}: the training loss {row['loss']:.4f} is at "
                                f"chance (ln {self.data.num_classes} = {chance:.4f}) and not "
                                "moving")
        if self.context.is_main:
            for text in warnings:
                tqdm.write(f"warning: {text}", file=sys.stderr)
        return warnings

    def _rank_state(self) -> list[torch.Tensor]:
        """What must be equal on every rank: weights and buffers, the optimizer's moments, the
        pruner's masks and random generator."""
        tensors = list(self.network.state_dict().values())
        for state in self.optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
        pending = [self.pruner.state_dict()]
        while pending:
            item = pending.pop()
            if isinstance(item, torch.Tensor):
                tensors.append(item)
            elif isinstance(item, dict):
                pending += list(item.values())
            elif isinstance(item, list | tuple):
                pending += list(item)
        return tensors

    @torch.no_grad()
    def _infer_shapes(self) -> None:
        """slayer neurons learn their shape in their first forward pass; a resumed run that
        had already finished trains no epoch here, so run one test sample through first."""
        self.network.eval()
        split = self.data.test
        self.network(self._spikes(split.images[:1], np.arange(1), self.options.seed))

    def _save_checkpoint(self, epoch: int) -> None:
        error = None
        if self.context.is_main:
            try:
                save_checkpoint(self.checkpoint_path, self.state())
            except OSError as exc:
                kept = (f"the checkpoint of epoch {epoch} is kept" if epoch
                        else "no earlier checkpoint exists")
                error = InputError(
                    f"could not write {self.checkpoint_path} after epoch {epoch + 1} "
                    f"({exc.strerror or exc}); {kept}: free space (or fix permissions) and "
                    f"rerun with {option('resume', True)}")
        distributed.agree(error, self.context)

    def metadata(self) -> NetworkMetadata:
        return NetworkMetadata(
            dataset=self.options.dataset,
            encoding=self.encoding.to_dict(),
            time_steps=self.encoding.time_steps,
            drain_steps=self.drain_steps,
            seed=self.options.seed,
            input_shape=self.network.netx_input_shape,
            model=self.config.name,
        )

    def finish(self) -> dict[str, Any]:
        """Export, plot, check and write metrics (rank 0); every rank returns the metrics."""
        metrics, error = None, None
        if self.context.is_main:
            try:
                metrics = self._finish()
            except Exception as exc:  # the other ranks must not wait for a broadcast forever
                error = exc
        distributed.agree(error, self.context)
        return distributed.broadcast(metrics, self.context)

    def _finish(self) -> dict[str, Any]:
        out = self.options.out
        self._infer_shapes()
        export_netx(self.network, out / MODEL_FILE, self.metadata())
        plot_training_curves(
            self.history, out / CURVES_FILE,
            title=f"{self.config.name} on {self.options.dataset}, seed {self.options.seed}, "
                  f"pruning: {self.options.prune}",
            pruned=self.options.prune != "none")
        train_samples = len(self.data.train.labels) * len(self.history)
        metrics = {
            "dataset": self.options.dataset,
            "model": self.config.to_dict(),
            "seed": self.options.seed,
            "prune": self.options.prune_settings(),
            "epochs": len(self.history),
            "test_accuracy": self.history[-1]["test_accuracy"] if self.history else math.nan,
            "seconds": self.seconds,
            "train_samples_per_second": train_samples / self.seconds if self.seconds else None,
            "layers": layer_shapes(self.network),
            "engine": {"name": self.network.engine,
                       **({"note": self.network.engine_note} if self.network.engine_note else {})},
            **self.context.describe(),
            "encoding": self.encoding.to_dict(),
            "drain_steps": self.drain_steps,
            "history": self.history,
            "warnings": [text for row in self.history for text in row.get("warnings", [])],
            "files": {"model": MODEL_FILE, "curves": CURVES_FILE, "checkpoint": CHECKPOINT_NAME},
        }
        metrics["lava_agreement"] = self.check_lava_agreement(out / MODEL_FILE)
        if self.budget_plan is not None:
            metrics["core_budget"] = self.check_core_budget(out / MODEL_FILE)
        write_json(out / METRICS_FILE, metrics)
        return metrics

    def check_lava_agreement(self, model: Path, samples: int = 500) -> dict[str, Any]:
        """How far the SLAYER forward that was trained is from what Lava will compute.

        Compares the output spikes of lava-dl's SLAYER blocks rebuilt from the exported file
        (the training forward) with the exact reference on Lava's integer grid
        (:mod:`gradr_deploy.simulation.lava_exact`), on the first ``samples`` test images, and
        warns when they
        differ: the accuracy in Lava is then not the accuracy training reported.
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
        split = self.data.test
        ids = np.arange(min(samples, len(split.labels)))
        spikes = present(self.encoding, split.images[ids], ids, self.options.seed,
                         self.drain_steps)
        input_shape = self.network.netx_input_shape
        try:
            lava = lava_exact.exact_run(network, spikes, self.metadata().window,
                                        input_shape).output
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
        if result["output_spike_agreement"] < 1.0 and self._progress:
            tqdm.write(
                f"warning: on {len(ids)} test images the trained SLAYER forward and Lava's "
                f"integer arithmetic agree on {100 * result['output_spike_agreement']:.2f}% "
                f"of output spikes and {100 * result['prediction_agreement']:.1f}% of "
                f"predictions (accuracy {result['slayer_accuracy']:.4f} vs "
                f"{result['lava_accuracy']:.4f} in Lava): gradr-lava deploy reports the Lava "
                "figure (docs/lava.md)", file=sys.stderr)
        return result

    def check_core_budget(self, model: Path) -> dict[str, Any]:
        """Map the exported file with ``gradr-lava map``'s mapper and compare with the plan."""
        plan = self.budget_plan
        mapping = map_file(model, self.options.hardware, self.options.hardware_overrides)
        write_mapping(mapping, model.parent)
        return {
            **plan.to_dict(),
            "mapped_cores": mapping.total_cores,
            "mapped_layers": [{"index": m.index, "cores": m.cores,
                               "limiting_resource": m.limiting} for m in mapping.layers],
            "fits": mapping.total_cores <= plan.budget_cores,
            "over_budget_by": max(0, mapping.total_cores - plan.budget_cores),
        }


def layer_shapes(network: SpikingNetwork) -> list[dict[str, Any]]:
    """Per block: type, weight shape and count of prunable weights."""
    rows = []
    for index, block in enumerate(network.blocks):
        row: dict[str, Any] = {"index": index, "type": type(block).__name__.lower()}
        if hasattr(block, "synapse"):
            weight = block.synapse.weight
            row["weight_shape"] = list(weight.shape)
            row["weights"] = int(weight.numel())
        rows.append(row)
    return rows


def _connectivity_columns(stats: dict[str, Any]) -> dict[str, Any]:
    """The pruner's per-epoch statistics, nested, plus the headline connectivity figures:
    ``connectivity`` counts nonzero 8-bit weights (what is exported and deployed),
    ``connectivity_float`` nonzero float weights (the paper's definition)."""
    total = stats.get("total", {})
    return {
        "connectivity": total.get("connectivity_quantized"),
        "connectivity_float": total.get("connectivity"),
        "rewiring": stats,
    }


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']:>3}/{epochs}  loss {row['loss']:.4f}  "
            f"train {row['train_accuracy']:.4f}  test {row['test_accuracy']:.4f}  "
            f"{row['seconds']:.1f}s")
    if row.get("connectivity") is not None:
        text += f"  connectivity {100 * row['connectivity']:.2f}%"
    return text


def train(options: TrainOptions) -> dict[str, Any]:
    """Train, checkpoint and export as described in the module docstring; return metrics."""
    return Trainer(options).run()
