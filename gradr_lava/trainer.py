"""Train a SLAYER network on a data set, checkpoint every epoch, export it to netx HDF5.

One sample's path: ``gradr_deploy.datasets`` loads an image ``(H, W)`` in [0, 1] ->
``gradr_deploy.simulation.stimulus.present`` turns it into rate-coded spikes ``(F, T + drain)`` ->
``SpikingNetwork`` produces output spikes ``(classes, T + drain)`` -> the class with the most
output spikes is the prediction; the loss is cross-entropy on the output spike counts (or the
Grad R authors' rate MSE: ``gradr_lava.losses``).

A run directory holds ``checkpoint.pt`` (after every epoch), and at the end ``model.net``
(netx HDF5), ``metrics.json`` and ``training_curves.png``. ``resume=True`` continues from the
checkpoint with identical results to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gradr_deploy.atomic import directory_lock, write_json
from gradr_deploy.datasets import Dataset, load_dataset
from gradr_deploy.errors import InputError, option
from gradr_deploy.netx.metadata import NetworkMetadata
from gradr_deploy.progress import is_terminal
from gradr_deploy.simulation.stimulus import present
from gradr_lava import distributed
from gradr_lava.allocator import keep_freed_memory
from gradr_lava.augment import affine_of, apply_affine
from gradr_lava.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from gradr_lava.config import (
    DEFAULT_MODELS,
    ModelConfig,
    load_model_config,
    parse_model_config,
)
from gradr_lava.distill import Teacher, distillation_loss, teacher_path
from gradr_lava.epochs import batches, encoded, epoch_seed, lr_scheduler, make_encoding
from gradr_lava.export import export_netx
from gradr_lava.history import connectivity_columns, epoch_line, health_warnings, layer_shapes
from gradr_lava.losses import label_loss
from gradr_lava.network import SpikingNetwork
from gradr_lava.options import CURVES_FILE, METRICS_FILE, MODEL_FILE, TrainOptions
from gradr_lava.plots import plot_training_curves
from gradr_lava.pruner_setup import build_pruner, plan_core_budget
from gradr_lava.run_checks import core_budget_check, idle_report, lava_agreement


class Trainer:
    """Holds one run's network, data and optimizer; :meth:`run` trains and exports."""

    def __init__(self, options: TrainOptions):
        self.options = options
        if isinstance(options.dataset, Dataset):
            self.data: Dataset = options.dataset
        else:
            self.data = load_dataset(options.dataset, options.data_dir, download=options.download)
        self.dataset_name = self.data.name
        if isinstance(options.model, ModelConfig):  # validated as a file would be
            self.config: ModelConfig = parse_model_config(options.model.to_dict(),
                                                          f"ModelConfig {options.model.name!r}")
        else:
            self.config = load_model_config(
                options.model or DEFAULT_MODELS.get(self.dataset_name, "digits-mlp"))
        self.epochs = options.epochs or self.config.training.epochs
        if self.epochs < 1:
            raise InputError(f"{option('epochs')} must be >= 1, got {self.epochs}")
        self.context = distributed.setup(options.device)
        if self.context.device.type == "cpu":
            keep_freed_memory()
        torch.manual_seed(options.seed)
        self.network = SpikingNetwork(self.config, self.data.image_shape, self.data.num_classes,
                                      engine=options.engine).to(self.context.device)
        self.budget_plan = plan_core_budget(options, self.network, self.config)
        self.total_steps = self.epochs * math.ceil(
            len(self.data.train.labels) / self.config.training.batch_size
        )
        self.pruner, pruner_by_length = build_pruner(options, self.budget_plan,
                                                     self.total_steps)
        self.augment = affine_of(self.config.training)
        # A schedule laid out over total_steps cannot be resumed with another --epochs.
        self._schedules_by_length = (
            pruner_by_length or self.config.training.lr_schedule != "constant"
            or (self.augment is not None and self.config.training.augment_until < 1)
        )
        self.pruner.attach(self.network)
        self.model: torch.nn.Module = self.network  # what the training step calls
        if self.context.distributed:
            self.model = distributed.data_parallel(self.network, self.context)
        self.optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.config.training.learning_rate
        )
        self.scheduler = lr_scheduler(
            self.optimizer, self.config.training.lr_schedule, self.total_steps,
            hold=self.config.training.lr_hold,
        )
        self.encoding = make_encoding(self.config)
        self.drain_steps = len(self.network.synaptic_blocks)
        self.teacher: Teacher | None = None
        if self.config.training.teacher:
            # an edited config object keeps the file it was read from (its .source)
            source = getattr(options.model, "source", "") or self.config.source
            self.teacher = Teacher(
                teacher_path(self.config.training.teacher, source),
                int(np.prod(self.data.image_shape)),
                self.data.num_classes, self.encoding.to_dict(),
                self.encoding.time_steps + self.drain_steps, self.network.netx_input_shape,
                signal=self.config.training.distill_signal,
            ).to(self.context.device)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.seconds = 0.0

    # -- state ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.options.out / CHECKPOINT_NAME

    def _identity(self) -> dict[str, Any]:
        identity = {"dataset": self.dataset_name, "seed": self.options.seed,
                    "config": self.config.to_dict(), "prune": self.options.prune_settings()}
        if self.teacher is not None:  # the same path with other contents is another run
            identity["teacher_sha256"] = self.teacher.sha256
        return identity

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
                f"{self.checkpoint_path} was planned for {planned} epochs and its pruning, "
                f"learning-rate or augmentation schedule is laid out over them; resume with "
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

    def augments(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (from 0) trains on augmented images: with an augmentation
        set, the first ``augment_until`` of the run, rounded to whole epochs."""
        until = round(self.config.training.augment_until * self.epochs)
        return self.augment is not None and epoch < until

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training set; under torchrun each rank takes its share of every
        batch and the loss is scaled so that DDP's gradient average is the global batch mean."""
        self.network.train()
        split = self.data.train
        order = batches(len(split.labels), self.config.training.batch_size,
                        np.random.default_rng([self.options.seed, epoch]))
        seed = epoch_seed(self.options.seed, epoch)
        sums = [torch.zeros((), dtype=torch.float64, device=self.context.device),  # loss
                torch.zeros((), dtype=torch.int64, device=self.context.device)]  # correct
        seen = 0
        shards = [distributed.shard(batch, self.context) for batch in order]
        warps = (self.augment.epoch_parameters(self.options.seed, epoch, len(split.labels))
                 if self.augments(epoch) else None)

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
        bar = tqdm(encoded(len(order), encode, background), total=len(order),
                   desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                   disable=not (self._progress and is_terminal()), leave=False,
                   dynamic_ncols=True)
        for step, spikes in enumerate(bar):
            ids = shards[step]
            self._train_step(spikes.to(self.context.device, non_blocking=True),
                             torch.from_numpy(split.labels[ids]), len(order[step]), sums)
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
        training = self.config.training
        teacher = None if self.teacher is None else self.teacher.targets(spikes)
        losses = distillation_loss(
            counts, teacher, labels, training.distill_weight, training.distill_temperature,
            training.teacher_temperature,
            hard=label_loss(counts, labels, training.loss, self.encoding.time_steps))
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
            row.update(connectivity_columns(self.pruner.end_epoch(epoch, self.epochs)))
            distributed.check_identical(self._rank_state(), f"after epoch {epoch + 1}, the "
                                        "model, optimizer or pruner state", self.context)
            row["seconds"] = time.perf_counter() - started
            row["warnings"] = health_warnings(row, self.history, self.data.num_classes,
                                              self.config.training.loss)
            if self.context.is_main:
                for text in row["warnings"]:
                    tqdm.write(f"warning: {text}", file=sys.stderr)
            self.seconds += row["seconds"]
            self.history.append(row)
            self._save_checkpoint(epoch)
            if self._progress:
                tqdm.write(epoch_line(row, self.epochs))
        return self.finish()

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
            dataset=self.dataset_name,
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
            title=f"{self.config.name} on {self.dataset_name}, seed {self.options.seed}, "
                  f"pruning: {self.options.prune}",
            pruned=self.options.prune != "none")
        train_samples = len(self.data.train.labels) * len(self.history)
        metrics = {
            "dataset": self.dataset_name,
            "model": self.config.to_dict(),
            "seed": self.options.seed,
            "prune": self.options.prune_settings(),
            "epochs": len(self.history),
            "test_accuracy": self.history[-1]["test_accuracy"] if self.history else math.nan,
            "seconds": self.seconds,
            "train_samples_per_second": train_samples / self.seconds if self.seconds else None,
            "layers": layer_shapes(self.network),
            "engine": self.network.describe_engine(self.context.device),
            **({"teacher": self.teacher.describe()} if self.teacher is not None else {}),
            **self.context.describe(),
            "encoding": self.encoding.to_dict(),
            "drain_steps": self.drain_steps,
            "history": self.history,
            "warnings": [text for row in self.history for text in row.get("warnings", [])],
            "files": {"model": MODEL_FILE, "curves": CURVES_FILE, "checkpoint": CHECKPOINT_NAME},
        }
        metrics["idle_synapses"] = idle_report(out / MODEL_FILE)
        metrics["lava_agreement"] = lava_agreement(
            out / MODEL_FILE, self.data.test, self.encoding, self.options.seed, self.drain_steps,
            self.metadata().window, self.network.netx_input_shape, warn=self._progress)
        if self.budget_plan is not None:
            metrics["core_budget"] = core_budget_check(
                out / MODEL_FILE, self.budget_plan, self.options.hardware,
                self.options.hardware_overrides)
        write_json(out / METRICS_FILE, metrics)
        return metrics

def train(options: TrainOptions) -> dict[str, Any]:
    """Train, checkpoint and export as described in the module docstring; return metrics."""
    return Trainer(options).run()


__all__ = ["CURVES_FILE", "METRICS_FILE", "MODEL_FILE", "TrainOptions", "Trainer", "train"]
