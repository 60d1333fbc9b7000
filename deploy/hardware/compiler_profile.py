"""The constants of a model of Intel's Loihi 2 compiler: a profile's ``[compiler]`` table.

Intel's compiler (lava-loihi, closed source) prints how it splits each layer over cores. The
``loihi2`` profile models what those printouts show (see :mod:`gradr_deploy.mapping.compiler_model`
for the
rules and ``docs/mapping.md`` for the fit). Releases of the compiler differ in capacity and in
how they split layers; each release is a ``[compiler.releases.NAME]`` table and ``release``
selects one. Every constant carries a ``<key>_source`` string, and an override (``override=``,
``--override KEY=VALUE``) replaces any of them (release keys apply to the selected release).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gradr_deploy.errors import InputError, option

SPLIT_RULES = ("max-group", "iterative")
ROW_STATISTICS = ("max", "mean")


@dataclass(frozen=True)
class CompilerRelease:
    """What differs between compiler releases.

    Attributes:
        name: the release, e.g. ``"2024-04"`` (the date of the printout it was fitted to).
        synmem_units_per_core: SynMem capacity of a core, in units (``unit_bits`` each).
        synmem_fill: fraction of that capacity the compiler fills when it sizes neuron groups.
        split: ``"max-group"``: every group of a layer has the largest size whose cores keep
            Synapses within ``synmem_fill`` of the capacity (the last group takes the rest);
            ``"iterative"``: start with one group, and while the fullest core needs ``r`` times
            the allowed SynMem, multiply the number of groups by ``ceil(r)`` (equal groups).
        weight_slot_bits: bits of one synapse slot; 0 means ``weight_bits + slot_overhead_bits``
            with netx's weight bits of the layer.
        row_statistic: how that release prints a layer's row: its largest core (``max``) or the
            layer's totals divided by its cores (``mean``).
    """

    name: str
    synmem_units_per_core: int
    synmem_fill: float
    split: str
    weight_slot_bits: int
    row_statistic: str


@dataclass(frozen=True)
class CompilerModel:
    """Per-core capacities and record sizes as Intel's Loihi 2 compiler counts them.

    Units: SynMem in units of ``unit_bits`` bits; axons, neurons and groups are counts. The
    neuron, input-axon and axon-map capacities are the profile's ``neurons_per_core``,
    ``input_axons_per_core`` and ``output_axons_per_core``.
    """

    release: CompilerRelease
    releases: Mapping[str, CompilerRelease]
    axon_header_bits: int
    slot_overhead_bits: int
    unit_bits: int
    conv_neurons_per_core: int
    axon_mem_per_core: int
    neuron_groups_per_core: int
    conv_slot_extra_bits: int
    total_axon_weight: float
    total_neuron_weight: float
    total_neuron_capacity: int
    count_zero_weights: bool
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def with_release(self, name: str) -> CompilerModel:
        """The same model with another of its releases selected."""
        return dataclasses.replace(self, release=self.releases[name])

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("release", "releases", "sources")}
        return {
            **values,
            "release": dataclasses.asdict(self.release),
            "releases": sorted(self.releases),
            "sources": dict(self.sources),
        }


_MODEL_TYPES = {f.name: t for f, t in zip(
    dataclasses.fields(CompilerModel),
    typing.get_type_hints(CompilerModel).values(), strict=True,
) if f.name not in ("release", "releases", "sources")}
_RELEASE_TYPES = {f.name: t for f, t in zip(
    dataclasses.fields(CompilerRelease),
    typing.get_type_hints(CompilerRelease).values(), strict=True,
) if f.name != "name"}
COMPILER_KEYS = ("release", *_MODEL_TYPES, *_RELEASE_TYPES)
_POSITIVE = ("unit_bits", "conv_neurons_per_core", "axon_mem_per_core",
             "neuron_groups_per_core", "total_neuron_capacity")
_UPPER = 1 << 40  # no per-core capacity or record size comes near this


def parse_compiler(
    table: Mapping[str, Any], where: str, overrides: Mapping[str, Any],
    convert: typing.Callable[[Any, str, Any, type], Any],
) -> CompilerModel:
    """Build a :class:`CompilerModel` from a profile's ``[compiler]`` table and overrides.

    Args:
        table: the TOML table (with its ``releases`` sub-tables).
        where: the profile file, for messages.
        overrides: ``--override`` values keyed by bare constant name (compiler keys only).
        convert: the profile loader's value parser ``(where, key, value, type) -> value``.

    Raises:
        InputError: a missing or unknown key, a value of the wrong type or out of range, or
            an unknown release.
    """
    releases_table = table.get("releases")
    if not isinstance(releases_table, Mapping) or not releases_table:
        raise InputError(f"{where}: [compiler] needs at least one [compiler.releases.NAME]")
    sources: dict[str, str] = {}
    releases: dict[str, CompilerRelease] = {}
    release_overrides = {k: v for k, v in overrides.items() if k in _RELEASE_TYPES}
    selected = str(overrides.get("release", table.get("release", "")))
    if selected not in releases_table:
        raise InputError(
            f"{where}: compiler release {selected!r} is not one of {sorted(releases_table)} "
            f"({option('override', {'release': 'NAME'})})"
        )
    for name, raw in releases_table.items():
        values = {}
        for key, kind in _RELEASE_TYPES.items():
            if key not in raw:
                raise InputError(f"{where}: [compiler.releases.{name}] lacks '{key}'")
            value = raw[key]
            if name == selected and key in release_overrides:
                value = release_overrides[key]
                sources[key] = f"override: {key}={value}"
            elif name == selected:
                sources[key] = str(raw.get(f"{key}_source", "no source given"))
            values[key] = convert(where, key, value, kind)
        releases[str(name)] = CompilerRelease(name=str(name), **values)
    values = {}
    for key, kind in _MODEL_TYPES.items():
        if key in overrides:
            value, sources[key] = overrides[key], f"override: {key}={overrides[key]}"
        elif key in table:
            value, sources[key] = table[key], str(table.get(f"{key}_source", "no source given"))
        else:
            raise InputError(f"{where}: [compiler] lacks '{key}'")
        values[key] = convert(where, key, value, kind)
    sources["release"] = (f"override: release={selected}" if "release" in overrides
                          else str(table.get("release_source", "no source given")))
    model = CompilerModel(release=releases[selected], releases=MappingProxyType(releases),
                          sources=MappingProxyType(sources), **values)
    _validate(model, where)
    return model


def _validate(model: CompilerModel, where: str) -> None:
    release = model.release
    numbers: dict[str, float] = {
        **{k: getattr(model, k) for k in _POSITIVE if hasattr(model, k)},
        "synmem_units_per_core": release.synmem_units_per_core,
    }
    for key, value in numbers.items():
        if not 1 <= value <= _UPPER:
            raise InputError(f"{where}: compiler constant '{key}' = {value} must be in "
                             f"[1, {_UPPER}]")
    for key in ("axon_header_bits", "slot_overhead_bits", "conv_slot_extra_bits"):
        if not 0 <= getattr(model, key) <= _UPPER:
            raise InputError(f"{where}: compiler constant '{key}' must be in [0, {_UPPER}]")
    if not 0 <= release.weight_slot_bits <= _UPPER:
        raise InputError(f"{where}: 'weight_slot_bits' must be in [0, {_UPPER}]")
    for key, value in (("synmem_fill", release.synmem_fill),
                       ("total_axon_weight", model.total_axon_weight),
                       ("total_neuron_weight", model.total_neuron_weight)):
        if not (math.isfinite(value) and 0 < value <= 1):
            raise InputError(f"{where}: '{key}' = {value} must be a fraction in (0, 1]")
    if release.split not in SPLIT_RULES:
        raise InputError(f"{where}: 'split' = {release.split!r}; choose one of {SPLIT_RULES}")
    if release.row_statistic not in ROW_STATISTICS:
        raise InputError(
            f"{where}: 'row_statistic' = {release.row_statistic!r}; choose {ROW_STATISTICS}")
