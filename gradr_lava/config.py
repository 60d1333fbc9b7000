"""Model configuration files (``models/*.toml``): what network to build and how to train it.

A config names the input encoding, the CUBA-LIF neuron parameters, the layers and the training
hyperparameters. ``load_model_config`` accepts a path or the name of a shipped config
(``digits-mlp``), validates every key and raises :class:`~gradr_deploy.errors.InputError` naming the
file and the key on a mistake.
"""

from __future__ import annotations

import math
import sysconfig
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gradr_deploy.errors import InputError

# The configs live in the repository's models/; a wheel installs a copy under
# <prefix>/share/gradr-lava/models (pyproject's data-files). A source tree wins over an install.
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
INSTALLED_MODELS_DIR = Path(sysconfig.get_path("data")) / "share" / "gradr-lava" / "models"
DEFAULT_MODELS = {"digits": "digits-mlp", "mnist": "mnist-2fc"}


def model_dirs() -> list[Path]:
    """Folders searched for shipped model configs, in order (those that exist)."""
    return [d for d in (MODELS_DIR, INSTALLED_MODELS_DIR) if d.is_dir()]


@dataclass(frozen=True)
class InputConfig:
    """How images become input spikes (see ``gradr_deploy.simulation.encoding``)."""

    encoding: str = "rate"  # "rate" (binary spikes) or "direct" (graded payloads)
    time_steps: int = 16  # T: time steps a sample is presented
    max_rate: float = 1.0  # rate: spike probability per step at full intensity
    levels: int = 15  # direct: payload at full intensity (intensities rounded to 1/levels)


@dataclass(frozen=True)
class NeuronConfig:
    """slayer CUBA-LIF parameters, in slayer's units (threshold in weight units)."""

    threshold: float = 1.0
    current_decay: float = 1.0  # fraction of synaptic current lost per step, in [0, 1]
    voltage_decay: float = 0.5  # fraction of membrane voltage lost per step, in [0, 1]
    tau_grad: float = 0.01  # surrogate gradient width
    scale_grad: float = 1.0  # surrogate gradient height


@dataclass(frozen=True)
class LayerConfig:
    """One synaptic layer: ``dense`` (``features``) or ``conv`` (``channels``, kernel...)."""

    type: str
    features: int = 0
    channels: int = 0
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_scale: float = 2.0  # slayer's weight initialisation scale
    # "constant", or "cosine": learning_rate * (1 + cos(pi * step / steps)) / 2 over the run
    lr_schedule: str = "constant"
    # cosine only: the fraction of the run held at learning_rate before the cosine decay starts
    # (0.75: the rate stays up until the default pruning ramp ends, then anneals to 0)
    lr_hold: float = 0.0
    # "none", or "affine": random rotation/translation/scale of training images (augment.py)
    augment: str = "none"
    # affine only: the ranges each image's transform is drawn from; the defaults are the Grad R
    # authors' (torchvision RandomAffine(30, (0.15, 0.15), (0.85, 1.11)))
    affine_degrees: float = 30.0  # rotation uniform in +-affine_degrees
    affine_translate: float = 0.15  # shift uniform in +-this fraction of the width and height
    affine_scale_min: float = 0.85
    affine_scale_max: float = 1.11
    # the fraction of the run (epochs) trained on augmented images; the epochs after it see
    # the originals, as the test set does (1.0: every epoch augmented)
    augment_until: float = 1.0
    # knowledge distillation (gradr_lava.distill): a trained netx file whose outputs the run
    # learns beside the labels ("" = none; relative to this file's folder), the soft term's
    # share of the loss, the softmax temperature on the student's spike counts, what of the
    # teacher is learned ("counts": its output spike counts; "current": the current into its
    # output neurons, summed) and the temperature on that (0: distill_temperature)
    teacher: str = ""
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    distill_signal: str = "counts"
    teacher_temperature: float = 0.0
    # the label loss on the output spike counts (gradr_lava.losses): "cross_entropy", or
    # "rate_mse" (the Grad R authors': MSE between firing rates and the one-hot label)
    loss: str = "cross_entropy"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    description: str
    input: InputConfig
    neuron: NeuronConfig
    layers: tuple[LayerConfig, ...]
    training: TrainingConfig
    source: str = ""  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        """The config as a TOML-shaped dict; ``parse_model_config`` reads it back."""
        return {
            "model": {"name": self.name, "description": self.description},
            "input": vars(self.input).copy(),
            "neuron": vars(self.neuron).copy(),
            "layers": [vars(layer).copy() for layer in self.layers],
            "training": vars(self.training).copy(),
        }


def resolve_model_path(model: str | Path) -> Path:
    """Map a config name (``digits-mlp``) or a path to an existing file."""
    path = Path(model)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InputError(f"model config {path} not found")
        return path
    folders = model_dirs()
    for folder in folders:
        shipped = folder / f"{model}.toml"
        if shipped.is_file():
            return shipped
    names = sorted({p.stem for folder in folders for p in folder.glob("*.toml")})
    if not names:
        raise InputError(
            f"unknown model {model!r}, and no shipped model configs were found (looked in "
            f"{MODELS_DIR} and {INSTALLED_MODELS_DIR}): give a path to a .toml file"
        )
    raise InputError(
        f"unknown model {model!r}: give a path to a .toml file or one of: {', '.join(names)}"
    )


LR_SCHEDULES = ("constant", "cosine")
LOSSES = ("cross_entropy", "rate_mse")
_FIELD_TYPES = {"int": int, "float": float, "str": str}


def _section(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise InputError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    values = {}
    for key, value in table.items():
        expected = _FIELD_TYPES[known[key].type]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise InputError(
                f"{where}.{key} = {value!r}: expected a {expected.__name__}"
            )
        values[key] = value
    return cls(**values)


ENCODINGS = ("rate", "direct")
AUGMENTATIONS = ("none", "affine")
# (low, high, low inclusive): every number a config holds must be finite and within these
RANGES: dict[str, tuple[float, float, bool]] = {
    "time_steps": (1, 4096, True), "max_rate": (0, 1, False), "levels": (1, 127, True),
    "threshold": (0, 1e6, False), "current_decay": (0, 1, True), "voltage_decay": (0, 1, True),
    "tau_grad": (0, 1e3, False), "scale_grad": (0, 1e3, False),
    "features": (1, 65536, True), "channels": (1, 4096, True), "kernel_size": (1, 64, True),
    "stride": (1, 64, True), "padding": (0, 64, True),
    "epochs": (1, 100_000, True), "batch_size": (1, 65_536, True),
    "learning_rate": (0, 10, False), "weight_scale": (0, 1e3, False), "lr_hold": (0, 1, True),
    "affine_degrees": (0, 180, True), "affine_translate": (0, 1, True),
    "affine_scale_min": (0, 10, False), "affine_scale_max": (0, 10, False),
    "augment_until": (0, 1, False),
    "distill_weight": (0, 1, True), "distill_temperature": (0, 100, False),
    "teacher_temperature": (0, 1000, True),
}


def _check_ranges(section: Any, where: str) -> None:
    for f in fields(section):
        value = getattr(section, f.name)
        if f.name not in RANGES or isinstance(value, str):
            continue
        if f.name in ("features", "channels") and value == 0:
            continue  # the unused one of a layer's two sizes; checked per type below
        low, high, inclusive = RANGES[f.name]
        ok = math.isfinite(value) and (low <= value if inclusive else low < value) \
            and value <= high
        interval = f"{'[' if inclusive else '('}{low:g}, {high:g}]"
        _check(ok, f"{where} {f.name} = {value!r} must be a finite number in {interval}")


_AFFINE_KEYS = ("affine_degrees", "affine_translate", "affine_scale_min", "affine_scale_max",
                "augment_until")


def _check_unused(training: TrainingConfig, keys: tuple[str, ...], used: bool, where: str,
                  why: str, fix: str) -> None:
    """Keys that only count with another setting must keep their defaults without it."""
    changed = [key for key in keys if getattr(training, key) != getattr(TrainingConfig, key)]
    _check(used or not changed, f"{where} sets {', '.join(changed)} but {why}: {fix} or remove "
           f"{'them' if len(changed) > 1 else 'it'}")


def _check_affine(training: TrainingConfig, where: str) -> None:
    _check_unused(training, _AFFINE_KEYS, training.augment == "affine", where,
                  f"augment = {training.augment!r}", 'set augment = "affine"')
    _check(training.affine_scale_min <= training.affine_scale_max,
           f"{where} affine_scale_min = {training.affine_scale_min!r} is above "
           f"affine_scale_max = {training.affine_scale_max!r}: swap them")


_DISTILL_KEYS = ("distill_weight", "distill_temperature", "distill_signal", "teacher_temperature")
DISTILL_SIGNALS = ("counts", "current")


def _check_distillation(training: TrainingConfig, where: str) -> None:
    _check(training.distill_signal in DISTILL_SIGNALS,
           f"{where}.distill_signal = {training.distill_signal!r}: use one of "
           f"{', '.join(DISTILL_SIGNALS)}")
    if training.teacher:
        _check(training.distill_weight > 0.0,
               f"{where} names a teacher but distill_weight = 0.0: the teacher would not "
               f"count; set distill_weight (0.5 weighs labels and teacher alike)")
    _check_unused(training, _DISTILL_KEYS, bool(training.teacher), where, "names no teacher",
                  'set teacher = "path/to/trained.net"')


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def parse_model_config(data: dict[str, Any], source: str) -> ModelConfig:
    """Build and validate a :class:`ModelConfig` from a parsed TOML document."""
    unknown = sorted(set(data) - {"model", "input", "neuron", "layers", "training"})
    _check(not unknown, f"{source}: unknown section(s) {unknown}")
    model = data.get("model", {})
    input_cfg = _section(InputConfig, data.get("input", {}), f"{source} [input]")
    neuron = _section(NeuronConfig, data.get("neuron", {}), f"{source} [neuron]")
    training = _section(TrainingConfig, data.get("training", {}), f"{source} [training]")
    raw_layers = data.get("layers", [])
    _check(
        isinstance(raw_layers, list) and len(raw_layers) > 0,
        f"{source}: needs at least one [[layers]] table",
    )
    for i, raw in enumerate(raw_layers):
        if not isinstance(raw, dict) or "type" not in raw:
            raise InputError(f"{source} [[layers]] #{i}: missing 'type' (dense or conv)")
    layers = tuple(
        _section(LayerConfig, raw, f"{source} [[layers]] #{i}") for i, raw in enumerate(raw_layers)
    )
    for i, layer in enumerate(layers):
        where = f"{source} [[layers]] #{i}"
        _check(layer.type in ("dense", "conv"), f"{where}: type {layer.type!r} is not dense/conv")
        if layer.type == "dense":
            _check(layer.features > 0, f"{where}: dense layers need features > 0")
        else:
            _check(layer.channels > 0, f"{where}: conv layers need channels > 0")
            _check(
                all(previous.type == "conv" for previous in layers[:i]),
                f"{where}: conv layers must come before dense layers",
            )
            _check(layer.kernel_size > 0 and layer.stride > 0, f"{where}: bad kernel/stride")
    for section, name in ((input_cfg, "input"), (neuron, "neuron"), (training, "training"),
                          *((layer, f"layers #{i}") for i, layer in enumerate(layers))):
        _check_ranges(section, f"{source} [{name}]")
    _check(input_cfg.encoding in ENCODINGS,
           f"{source} [input].encoding = {input_cfg.encoding!r}: use one of "
           f"{', '.join(ENCODINGS)}")
    _check(training.augment in AUGMENTATIONS,
           f"{source} [training].augment = {training.augment!r}: use one of "
           f"{', '.join(AUGMENTATIONS)}")
    _check_affine(training, f"{source} [training]")
    _check_distillation(training, f"{source} [training]")
    _check(training.lr_schedule in LR_SCHEDULES,
           f"{source} [training].lr_schedule = {training.lr_schedule!r}: use one of "
           f"{', '.join(LR_SCHEDULES)}")
    _check(training.loss in LOSSES,
           f"{source} [training].loss = {training.loss!r}: use one of {', '.join(LOSSES)}")
    _check(training.lr_hold < 1.0,
           f"{source} [training].lr_hold = {training.lr_hold!r}: the fraction of the run "
           f"before the decay must be below 1")
    _check(training.lr_hold == 0.0 or training.lr_schedule == "cosine",
           f"{source} [training].lr_hold = {training.lr_hold!r} delays the cosine decay: set "
           f"lr_schedule = \"cosine\" or remove lr_hold")
    return ModelConfig(
        name=str(model.get("name", Path(source).stem)),
        description=str(model.get("description", "")),
        input=input_cfg,
        neuron=neuron,
        layers=layers,
        training=training,
        source=source,
    )


def load_model_config(model: str | Path) -> ModelConfig:
    """Read a model config by name or path; raise InputError naming the file on any mistake."""
    path = resolve_model_path(model)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"model config {path} is not a UTF-8 TOML file: {exc}") from None
    return parse_model_config(data, str(path))
