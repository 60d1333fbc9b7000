"""gradr-lava: Gradient Rewiring on lava-dl SLAYER networks, exported to netx HDF5.

The training side. Deployment (mapping, simulation, energy) lives in ``gradr_deploy`` (the
``deploy/`` folder). Importing this package loads neither torch nor Lava; :func:`train` does.

    >>> import gradr_lava
    >>> result = gradr_lava.train("digits-mlp", "digits", out="runs/x",  # doctest: +SKIP
    ...                           pruning=gradr_lava.Pruning("gradr", target_connectivity=0.3))
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Pruning", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gradr_lava import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradr_lava' has no attribute {name!r}")
