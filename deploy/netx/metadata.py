"""What a gradr-lava netx file records about its input, beside lava-dl's own layer description.

lava-dl's netx format describes layers only. To run a network on the data it was trained on,
``deploy`` also needs the data set, the spike encoding and the presentation window. gradr-lava's
exporter stores them as one JSON string in the HDF5 root attribute :data:`METADATA_ATTR`; netx
ignores root attributes, so the file stays a plain netx file. Files from other lava-dl users
carry no such attribute: ``deploy`` then needs ``--dataset`` and uses :data:`DEFAULT_ENCODING`.

Presentation window: a sample's spikes are presented for ``time_steps`` steps and followed by
``drain_steps`` empty steps (one per synaptic layer, the pipeline latency), so every output spike
a sample causes falls inside its ``window = time_steps + drain_steps`` steps. Lava resets all
neuron states every ``window`` steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from gradr_deploy.errors import InputError, option

METADATA_ATTR = "gradr_lava"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class NetworkMetadata:
    dataset: str | None  # data set name ("digits", "mnist") or None when unknown
    encoding: dict[str, Any]  # RateEncoding.to_dict()
    time_steps: int  # T: steps each sample is presented
    drain_steps: int  # empty steps after each sample
    seed: int  # seed of the test-set spike encoding
    input_shape: tuple[int, ...] | None  # (x, y, f) for netx when the first layer is conv
    model: str = ""  # model config name
    schema: int = SCHEMA_VERSION

    @property
    def window(self) -> int:
        """Steps per sample: presentation plus drain."""
        return self.time_steps + self.drain_steps

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> NetworkMetadata:
        try:
            data = json.loads(text)
            data["input_shape"] = (
                tuple(data["input_shape"]) if data.get("input_shape") is not None else None
            )
            metadata = cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise InputError(
                f"{source}: root attribute {METADATA_ATTR!r} is not valid gradr-lava metadata "
                f"({exc}); re-export the model or pass {option('dataset')} explicitly"
            ) from None
        metadata.validate(source)
        return metadata

    def validate(self, source: str) -> None:
        """Raise InputError unless every recorded value is of its type and in range."""
        def bad(field: str, rule: str) -> InputError:
            return InputError(f"{source}: root attribute {METADATA_ATTR!r}: {field} = "
                              f"{getattr(self, field)!r} must be {rule}; re-export the model")

        for field, high in (("time_steps", 4096), ("drain_steps", 4096)):
            value = getattr(self, field)
            low = 1 if field == "time_steps" else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise bad(field, f"an integer in {low} .. {high}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or \
                not 0 <= self.seed < 2**32:
            raise bad("seed", "an integer in 0 .. 2**32 - 1")
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise bad("dataset", "a data set name")
        if not isinstance(self.encoding, dict):
            raise bad("encoding", "a table")
        if self.input_shape is not None and (
                len(self.input_shape) != 3 or not all(
                    isinstance(v, int) and 0 < v <= 1 << 16 for v in self.input_shape)):
            raise bad("input_shape", "three positive integers (x, y, f)")


def recorded_metadata(attrs: Mapping[str, Any], source: str) -> NetworkMetadata | None:
    """The metadata gradr-lava recorded in a file's root ``attrs``; None for a foreign file."""
    if METADATA_ATTR not in attrs:
        return None
    return NetworkMetadata.from_json(str(attrs[METADATA_ATTR]), source)


def recorded_input_shape(attrs: Mapping[str, Any], source: str) -> tuple[int, ...] | None:
    """netx ``(x, y, f)`` input shape recorded by gradr-lava in a file's root ``attrs``."""
    recorded = recorded_metadata(attrs, source)
    return None if recorded is None else recorded.input_shape
