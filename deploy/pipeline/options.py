"""What ``gradr-lava deploy`` was asked to do, and the names of the files it writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY_FILE = "deploy.json"
SPIKES_FILE = "spikes.npz"
DEFAULT_TIME_STEPS = 16  # for files without gradr-lava metadata


@dataclass(frozen=True)
class DeployOptions:
    """What ``gradr-lava deploy`` was asked to do."""

    model: Path
    target: str = "lava-sim"
    dataset: str | None = None  # default: the data set recorded in the file
    data_dir: Path | None = None
    download: bool = False
    samples: int | None = None  # default: the whole test split
    out: Path | None = None  # default: the model's directory
    time_steps: int | None = None  # only for files without gradr-lava metadata
    progress: bool = True
    hardware: str = "loihi2"  # profile name or TOML path (deploy/hardware/profiles)
    overrides: Mapping[str, str] = field(default_factory=dict)  # profile constants to change
    max_cores: int | None = None
    chips: int | None = None
    record_activity: bool = True  # False: record only the output layer (faster, no energy)
    copies: int | None = None  # network copies side by side in Lava (default: planned)
    save_spikes: bool = False  # write spikes.npz (inputs as presented, Lava's outputs)
    inputs: Path | None = None  # the user's own input spikes (simulation/inputs.py), not data
