"""Knowledge distillation from a trained netx network: the student learns the teacher's spike
counts beside the labels.

The teacher is any netx HDF5 file the PyTorch reference rebuilds
(:class:`gradr_deploy.simulation.reference.ReferenceNetwork`: CUBA dense / conv / flatten), fed
the student's own input spikes of every batch, augmentation included, so its counts need no
storage and resume stays exact. It runs on the fast engine where that covers it (forward only,
~0.04 s per 128-image batch of MNIST 2FC on one CPU thread), else on slayer's forward.

The loss of a sample with student counts ``s`` (``(classes,)``, spikes over the window) and the
teacher's signal ``t`` is Hinton et al.'s (2015)::

    (1 - distill_weight) * CE(s, label)
        + distill_weight * T^2 * KL(softmax(t / T_t) || softmax(s / T))

with ``T = distill_temperature`` and ``T_t = teacher_temperature`` (``T`` unless set); the
``T^2`` keeps the soft term's gradient on the scale of the hard one as ``T`` changes. The
teacher's signal (``distill_signal``) is its output spike counts, or the synaptic current into
its output neurons summed over the window (in weight units: graded, where counts saturate).
Why two temperatures: a well-trained teacher's counts are nearly one-hot (the shipped dense
MNIST network fires no output neuron but the winner for 96.8% of 2,000 training images:
``benchmarks/teacher_signal.py``), while its currents (winner ~38, runner-up ~-10) keep which
wrong classes are near, on a scale ~5x the counts'.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gradr_deploy.errors import InputError
from gradr_deploy.netx import DenseLayer, read_netx
from gradr_deploy.netx.metadata import recorded_metadata
from gradr_deploy.simulation.reference import ReferenceNetwork, ReferenceUnsupported
from gradr_lava import fast_cuba


def teacher_path(teacher: str, config_source: str) -> Path:
    """``[training].teacher`` of the config read from ``config_source``: a relative path is
    read from that file's folder (as TOML files name their neighbours), or from the working
    directory for a config that did not come from a file."""
    path = Path(teacher).expanduser()
    source = Path(config_source)
    if not path.is_absolute() and config_source.endswith(".toml") and source.is_file():
        path = source.parent / path
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Teacher:
    """A frozen netx network that gives spike counts for the student's input spikes.

    Args:
        path: the netx HDF5 file.
        input_features: F, the student's input size (``H * W`` for images).
        num_classes: the student's output size; the teacher's must equal it.
        encoding: the student's ``Encoding.to_dict()``; a gradr-lava teacher must have been
            trained on the same (a foreign file records none, and is taken as it is).
        window_steps: S, the steps of the student's input ``(N, F, S)``; a deeper teacher gets
            zero steps appended so that its last layer sees every spike.
        input_shape: netx's ``(x, y, f)`` for a conv-first student, else None.
        signal: ``"counts"`` or ``"current"`` (module docstring; needs a dense last layer).

    Raises:
        InputError: the file is missing or unreadable, uses layers the reference does not
            rebuild, or does not fit the student (the message names the file and the size).
    """

    def __init__(self, path: Path, input_features: int, num_classes: int,
                 encoding: dict[str, Any], window_steps: int,
                 input_shape: tuple[int, int, int] | None = None, signal: str = "counts"):
        self.path = path
        self.signal = signal
        where = f"[training].teacher {path}"
        if not path.is_file():
            raise InputError(f"{where} not found: give the netx HDF5 file of a trained network "
                             "(a relative path is read from the model config's folder)")
        network = read_netx(path)
        self.sha256 = file_sha256(path)
        recorded = recorded_metadata(network.attrs, str(path))
        self.encoding_checked = recorded is not None
        if recorded is not None and recorded.encoding != encoding:
            raise InputError(f"{where} was trained on the input encoding {recorded.encoding}, "
                             f"the student is on {encoding}: a teacher must see the student's "
                             "spikes as it saw its own")
        synaptic = network.synaptic_layers
        if not synaptic:
            raise InputError(f"{where} has no synaptic layer")
        first, last = synaptic[0], synaptic[-1]
        if isinstance(first, DenseLayer) and first.weight.shape[1] != input_features:
            raise InputError(f"{where} layer {first.index} takes {first.weight.shape[1]} inputs, "
                             f"the student's input has {input_features}")
        outputs = int(last.weight.shape[0])
        if outputs != num_classes:
            raise InputError(f"{where} layer {last.index} has {outputs} output neurons, the "
                             f"data set has {num_classes} classes")
        if signal == "current" and not isinstance(last, DenseLayer):
            raise InputError(f"{where} layer {last.index} is {last.kind}: distill_signal = "
                             "\"current\" reads the current into a dense output layer; use "
                             "\"counts\"")
        try:
            self.network = ReferenceNetwork(network, input_shape if not isinstance(
                first, DenseLayer) else None)
        except ReferenceUnsupported as exc:
            raise InputError(f"{where}: cannot be rebuilt as a teacher ({exc})") from None
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.extra_steps = max(0, len(synaptic) - (window_steps - int(
            encoding.get("time_steps", window_steps))))
        blocks = list(self.network.blocks)
        self.engine = "fast" if fast_cuba.network_unsupported_reason(blocks) is None else "slayer"

    def to(self, device: torch.device) -> Teacher:
        self.network.to(device)
        return self

    @torch.no_grad()
    def targets(self, spikes: torch.Tensor) -> torch.Tensor:
        """Input spikes ``(N, F, S)`` -> the teacher's signal ``(N, classes)`` (float32)."""
        if self.signal == "counts":
            return self.counts(spikes)
        hidden = self._forward(spikes, list(self.network.blocks)[:-1])
        weight = self.network.blocks[-1].synapse.weight  # stored on slayer's grid already
        return hidden.sum(dim=-1) @ weight.reshape(weight.shape[0], -1).t()

    @torch.no_grad()
    def counts(self, spikes: torch.Tensor) -> torch.Tensor:
        """Input spikes ``(N, F, S)`` -> output spike counts ``(N, classes)`` (float32)."""
        return self._forward(spikes, list(self.network.blocks)).sum(dim=-1)

    def _forward(self, spikes: torch.Tensor, blocks: list[torch.nn.Module]) -> torch.Tensor:
        """Spikes out of the last of ``blocks``, flattened: ``(N, features, S + extra)``."""
        if self.extra_steps:
            spikes = F.pad(spikes, (0, self.extra_steps))
        x = fast_cuba.forward_blocks(blocks, self.network.shaped_input(spikes), self.engine)[-1]
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def describe(self) -> dict[str, Any]:
        """For metrics.json: which file (and its content) taught the run, on which engine."""
        return {"file": str(self.path), "sha256": self.sha256, "engine": self.engine,
                "encoding_checked": self.encoding_checked, "signal": self.signal}


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor | None,
                      labels: torch.Tensor, weight: float, temperature: float,
                      teacher_temperature: float | None = None,
                      hard: torch.Tensor | None = None) -> torch.Tensor:
    """Summed over the batch: ``(1 - weight) * hard + weight * T^2 * KL`` (module docstring),
    ``hard`` the label loss (cross-entropy unless given).

    Args:
        student: the student's output spike counts ``(N, classes)``, with gradient.
        teacher: the teacher's signal ``(N, classes)``; None: the label loss alone.
        teacher_temperature: ``T_t``; 0 or None (``[training]``'s default): ``temperature``.
        labels: ``(N,)`` class indices.
        hard: the label loss summed over the batch, in place of the cross-entropy
            (:func:`gradr_lava.losses.label_loss`).
    """
    if hard is None:
        hard = F.cross_entropy(student, labels, reduction="sum")
    if teacher is None or weight == 0.0:
        return hard
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.log_softmax(teacher / (teacher_temperature or temperature), dim=1),
                    reduction="sum", log_target=True)
    return (1.0 - weight) * hard + weight * temperature**2 * soft
