"""gradr-lava: Gradient Rewiring on lava-dl SLAYER networks, exported to netx HDF5.

The training side. Deployment (mapping, simulation, energy) lives in the ``deploy`` package.
Importing this package loads neither torch nor Lava; the training modules do.
"""

__version__ = "0.1.0"
