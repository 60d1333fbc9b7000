"""Everything from a netx HDF5 file onward: reading, mapping onto Loihi cores, budget checks,
simulation in Lava, hardware runs and energy estimates.

The folder ``deploy/`` is installed as the import package ``gradr_deploy`` (PyPI's unrelated
``deploy`` distribution owns the name ``deploy``). This package never imports ``gradr_lava``
(the training side), so a netx file written by any lava-dl user can be mapped and simulated.
``import gradr_deploy`` loads neither torch nor Lava (nor numpy: the names below load on first
use, since the environment's start-up hook imports this package in every interpreter); only
the simulation step loads Lava, when it runs.

The Python API (:mod:`gradr_deploy.api`): :func:`read_netx`, :func:`map_network`,
:func:`simulate`, :func:`estimate_energy`, :func:`map_model` (``gradr-lava map``) and
:func:`run` (``gradr-lava deploy``).
"""

from typing import Any

__all__ = ["DeployResult", "MapResult", "Simulation", "estimate_energy", "map_model",
           "map_network", "read_netx", "run", "simulate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gradr_deploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradr_deploy' has no attribute {name!r}")
