"""What ``gradr-lava train`` (and :func:`gradr_lava.train`) was asked to do, and the files a run
directory holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradr_deploy.datasets import Dataset
from gradr_lava.config import ModelConfig

MODEL_FILE = "model.net"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"


# make_pruner's keywords that the trainer (and gradr_lava.Pruning) names otherwise
PRUNER_KEYWORDS = {"mode": "gradr_mode", "finetune": "gradr_finetune", "count": "gradr_count",
                   "shrink": "gradr_shift", "schedule": "prune_ramp",
                   "idle_first": "prune_idle_first"}
# make_pruner's options that have no command-line flag (gradr_lava.Pruning.options)
PRUNER_OPTIONS = frozenset({"temperature", "soft", "l1", "prune_every", "regrow_theta",
                            "adam_bias_correction", "idle_first"})


@dataclass(frozen=True)
class TrainOptions:
    """What ``gradr-lava train`` was asked to do."""

    dataset: str | Dataset  # a name (gradr_deploy.datasets.DATASETS) or loaded data
    out: Path
    model: str | ModelConfig | None = None  # config name, path or object; default per data set
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
    # (start, end) fractions of training over which connectivity ramps down (default 0, 0.75)
    prune_ramp: tuple[float, float] | None = None
    fit_cores: int | None = None  # train to fit this many cores (gradr_lava.core_budget)
    fit_chips: int | None = None  # ... or this many chips
    hardware: str = "loihi2"  # profile for --fit-cores / --fit-chips
    hardware_overrides: dict[str, str] = field(default_factory=dict)  # profile constants to change
    budget_allocation: str = "budget-aware"  # or "uniform" (the baseline)
    # the pruners' options without a flag (gradr_lava.Pruning.options): temperature, soft, l1,
    # prune_every, regrow_theta, adam_bias_correction, idle_first (make_pruner)
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
                **({"gradr_shift": self.gradr_shift} if self.gradr_shift else {}),
                **({"prune_ramp": list(self.prune_ramp)} if self.prune_ramp else {})}
