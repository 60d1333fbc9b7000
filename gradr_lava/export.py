"""Export a trained :class:`~gradr_lava.network.SpikingNetwork` to a netx HDF5 file.

lava-dl's ``export_hdf5`` mutates the block it exports (it disables weight norm in place), and
torch parametrizations (Grad R's ``w = s * relu(theta)``) must be folded into plain weights
before slayer can write them. Both happen here on a deep copy, so exporting never changes the
model being trained. The file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import copy
from pathlib import Path

import h5py
import torch
from torch.nn.utils import parametrize

from deploy.atomic import atomic_path
from deploy.metadata import METADATA_ATTR, NetworkMetadata
from gradr_lava.network import SpikingNetwork


def fold_parametrizations(module: torch.nn.Module) -> None:
    """Replace every parametrized tensor in ``module`` by its current value, in place.

    Not ``torch.nn.utils.parametrize.remove_parametrizations``: that deletes the property from
    the module's generated class, which a deep copy shares with the original, so folding the
    copy would break the model still being trained.
    """
    for submodule in [m for m in module.modules() if parametrize.is_parametrized(m)]:
        values = {
            name: getattr(submodule, name).detach().clone()
            for name in submodule.parametrizations
        }
        del submodule.parametrizations
        submodule.__class__ = submodule.__class__.__bases__[0]
        for name, value in values.items():
            submodule.register_parameter(name, torch.nn.Parameter(value))


def export_netx(
    network: SpikingNetwork, path: str | Path, metadata: NetworkMetadata
) -> Path:
    """Write ``network`` as netx HDF5 to ``path`` (atomically), with gradr-lava metadata.

    Weights are written as slayer's 8-bit quantized values (what the forward pass uses), so an
    absent connection is exactly 0 in the file.
    """
    path = Path(path)
    frozen = copy.deepcopy(network).cpu().eval()
    fold_parametrizations(frozen)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs[METADATA_ATTR] = metadata.to_json()
        layers = handle.create_group("layer")
        with torch.no_grad():
            for index, block in enumerate(frozen.blocks):
                block.export_hdf5(layers.create_group(str(index)))
    return path
