"""Export a trained :class:`~gradr_lava.network.SpikingNetwork` to a netx HDF5 file.

lava-dl's ``export_hdf5`` mutates the block it exports (it disables weight norm in place), and
the pruning parametrizations (Grad R's ``w = s * relu(theta)``, masks) must be folded into
plain weights (:func:`gradr_lava.rewiring.fold`, exact +0.0 for absent connections) before
slayer can write them. Both happen here on a deep copy, so exporting never changes the model
being trained. The file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import copy
from pathlib import Path

import h5py
import torch

from gradr_deploy.atomic import atomic_path
from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
from gradr_lava.network import SpikingNetwork
from gradr_lava.rewiring import fold


def export_netx(
    network: SpikingNetwork, path: str | Path, metadata: NetworkMetadata
) -> Path:
    """Write ``network`` as netx HDF5 to ``path`` (atomically), with gradr-lava metadata.

    Weights are written as slayer's 8-bit quantized values (what the forward pass uses), so an
    absent connection is exactly 0 in the file.
    """
    path = Path(path)
    frozen = copy.deepcopy(network).cpu().eval()
    fold(frozen)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs[METADATA_ATTR] = metadata.to_json()
        layers = handle.create_group("layer")
        with torch.no_grad():
            for index, block in enumerate(frozen.blocks):
                block.export_hdf5(layers.create_group(str(index)))
    return path
