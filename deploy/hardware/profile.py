"""Hardware profiles: per-core limits, synapse encoding, chip layout, energy and timing constants.

Profiles are TOML files (``deploy/hardware/profiles/loihi1.toml``, ``loihi2.toml``) in which every
constant has a neighbouring ``<key>_source`` string. Unknown values are ``nan`` with a source
saying so. Load one by name or path, optionally overriding constants the way the CLI's
``--override key=value`` does:

    >>> from gradr_deploy.hardware.profile import load_profile
    >>> p = load_profile("loihi1", {"chips": "4"})
    >>> (p.neurons_per_core, p.chips, p.sources["chips"])
    (1024, 4, 'override: chips=4')
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gradr_deploy.errors import InputError, option
from gradr_deploy.hardware.compiler_profile import COMPILER_KEYS, CompilerModel, parse_compiler

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CONVENTIONAL_FILE = PROFILE_DIR / "conventional.toml"
SOURCE_SUFFIX = "_source"


@dataclass(frozen=True)
class HardwareProfile:
    """Constants of one neuromorphic chip. Units are in the field names (bits, pJ, ns, s, W)."""

    name: str
    description: str
    # per core
    neurons_per_core: int
    input_axons_per_core: int
    output_axons_per_core: int
    synapse_memory_bits_per_core: int
    max_weight_bits: int
    max_delay_bits: int
    # synapse memory encoding (nengo-loihi's cost model)
    synapses_per_block: int
    block_header_bits: int
    memory_word_bits: int
    min_index_bits: int
    # chip
    cores_per_chip: int
    chips: int
    cores_per_tile: int
    mesh_tiles_x: int
    mesh_tiles_y: int
    # energy per operation (pJ) and static power (W); nan = unknown
    energy_pre_silicon: bool
    synop_pj: float
    neuron_update_active_pj: float
    neuron_update_inactive_pj: float
    spike_within_tile_pj: float
    hop_east_west_pj: float
    hop_north_south_pj: float
    static_power_w: float
    # timing (ns per operation, s per step); nan = unknown
    hop_east_west_ns: float
    hop_north_south_ns: float
    spike_within_tile_ns: float
    barrier_sync_ns: float
    synop_ns: float
    neuron_update_ns: float
    time_per_step_s: float
    # where each value comes from, keyed by field name
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
    path: Path | None = dataclasses.field(default=None, compare=False)
    # a model of Intel's Loihi 2 compiler (the profile's [compiler] table), or None
    compiler: CompilerModel | None = dataclasses.field(default=None, compare=False)

    @property
    def max_cores(self) -> int:
        """Cores available to the budget: ``cores_per_chip * chips``."""
        return self.cores_per_chip * self.chips

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready constants (nan -> None) with their sources."""
        values = {
            f.name: _json_value(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("sources", "path", "compiler")
        }
        compiler = None if self.compiler is None else self.compiler.to_dict()
        return {**values, "sources": dict(self.sources), "compiler": compiler}


@dataclass(frozen=True)
class ConventionalDevice:
    """A non-spiking processor running the network as an ANN (keras-spiking's devices)."""

    name: str
    synop_pj: float
    neuron_update_pj: float
    source: str


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


_HINTS = typing.get_type_hints(HardwareProfile)
FIELD_TYPES: dict[str, type] = {
    f.name: _HINTS[f.name]
    for f in dataclasses.fields(HardwareProfile)
    if f.name not in ("sources", "path", "compiler")
}
CONSTANT_KEYS = tuple(k for k in FIELD_TYPES if k not in ("name", "description"))


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``deploy/profiles`` (e.g. ``["loihi1", "loihi2"]``)."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml") if p != CONVENTIONAL_FILE)


def load_profile(
    name_or_path: str | Path = "loihi2",
    overrides: Mapping[str, str | float | int | bool] | None = None,
) -> HardwareProfile:
    """Load a profile by name (``"loihi1"``, ``"loihi2"``) or TOML path, applying overrides.

    Args:
        name_or_path: a shipped profile's name or the path of a profile TOML file.
        overrides: constant name (bare ``chips`` or dotted ``chip.chips``) -> value; strings
            are parsed as the constant's type (``"4"``, ``"2.5e-9"``, ``"true"``).

    Raises:
        InputError: unknown profile, malformed file, unknown key (the message lists the valid
            keys) or a value of the wrong type.
    """
    path = _resolve(name_or_path)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a TOML hardware profile ({error})") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror or error})") from None
    compiler_table = document.pop("compiler", None)
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, kind in FIELD_TYPES.items():
        if key not in flat:
            raise InputError(f"{path}: missing constant '{key}' "
                             "(see deploy/hardware/profiles/loihi1.toml)")
        values[key] = _convert(path, key, flat[key], kind)
        sources[key] = str(flat.get(key + SOURCE_SUFFIX, "no source given"))
    extra = sorted(k for k in flat if k not in FIELD_TYPES and not k.endswith(SOURCE_SUFFIX))
    if extra:
        raise InputError(f"{path}: unknown keys {extra}; valid keys: {', '.join(CONSTANT_KEYS)}")
    compiler_overrides: dict[str, Any] = {}
    valid = CONSTANT_KEYS + (COMPILER_KEYS if compiler_table is not None else ())
    for raw_key, raw_value in (overrides or {}).items():
        key = raw_key.rsplit(".", 1)[-1]
        if key in COMPILER_KEYS and compiler_table is not None and key not in CONSTANT_KEYS:
            compiler_overrides[key] = raw_value
            continue
        if key not in CONSTANT_KEYS:
            raise InputError(
                f"unknown hardware constant '{raw_key}' for {path.stem}; valid keys: "
                f"{', '.join(valid)}"
            )
        values[key] = _convert(option("override", {raw_key: raw_value}), key, raw_value,
                               FIELD_TYPES[key])
        sources[key] = f"override: {raw_key}={raw_value}"
    compiler = None
    if compiler_table is not None:
        if not isinstance(compiler_table, dict):
            raise InputError(f"{path}: 'compiler' must be a table")
        compiler = parse_compiler(compiler_table, str(path), compiler_overrides, _convert)
    profile = HardwareProfile(
        **values, sources=MappingProxyType(sources), path=path, compiler=compiler
    )
    _validate(profile)
    return profile


def load_conventional_devices() -> dict[str, ConventionalDevice]:
    """CPU / GPU / ARM comparison constants (keras-spiking ModelEnergy), keyed by name."""
    with open(CONVENTIONAL_FILE, "rb") as handle:
        document = tomllib.load(handle)
    return {
        name: ConventionalDevice(
            name, float(d["synop_pj"]), float(d["neuron_update_pj"]), str(d["source"])
        )
        for name, d in document.items()
    }


def _resolve(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise InputError(f"{candidate}: no such hardware profile file")
        return candidate
    shipped = PROFILE_DIR / f"{name_or_path}.toml"
    if str(name_or_path) in available_profiles():
        return shipped
    raise InputError(
        f"unknown hardware '{name_or_path}'; choose one of {available_profiles()} or give a "
        "profile .toml path"
    )


def _convert(where: Any, key: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}") from None


def _validate(profile: HardwareProfile) -> None:
    positive = (
        "neurons_per_core", "input_axons_per_core", "output_axons_per_core",
        "synapse_memory_bits_per_core", "max_weight_bits", "synapses_per_block",
        "memory_word_bits", "cores_per_chip", "chips", "cores_per_tile", "mesh_tiles_x",
        "mesh_tiles_y",
    )  # fmt: skip
    for key in positive:
        if getattr(profile, key) < 1:
            raise InputError(f"hardware profile {profile.name}: '{key}' must be >= 1")
    for key in ("block_header_bits", "min_index_bits", "max_delay_bits"):
        if getattr(profile, key) < 0:
            raise InputError(f"hardware profile {profile.name}: '{key}' must be >= 0")
    for key, upper in _UPPER_BOUNDS.items():
        if getattr(profile, key) > upper:
            raise InputError(
                f"hardware profile {profile.name}: '{key}' = {getattr(profile, key)} is beyond "
                f"any plausible chip (at most {upper})"
            )
    for key, kind in FIELD_TYPES.items():
        value = getattr(profile, key)
        if kind is float and (math.isinf(value) or value < 0):
            raise InputError(
                f"hardware profile {profile.name}: '{key}' = {value} must be a finite number "
                ">= 0 (nan, in a profile file, means unknown)"
            )
        overridden = profile.sources.get(key, "").startswith("override:")
        if kind is float and math.isnan(value) and overridden:
            raise InputError(f"{option('override', {key: 'nan'})}: give a finite number >= 0")


# Upper bounds that no real chip reaches: they keep a typo from allocating terabytes.
_UPPER_BOUNDS = {
    "neurons_per_core": 1 << 24, "input_axons_per_core": 1 << 24,
    "output_axons_per_core": 1 << 24, "synapse_memory_bits_per_core": 1 << 36,
    "max_weight_bits": 64, "max_delay_bits": 16, "synapses_per_block": 1 << 16,
    "block_header_bits": 1 << 12, "memory_word_bits": 1 << 12, "min_index_bits": 64,
    "cores_per_chip": 1 << 16, "chips": 1 << 16, "cores_per_tile": 1 << 10,
    "mesh_tiles_x": 1 << 12, "mesh_tiles_y": 1 << 12,
}
