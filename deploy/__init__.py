"""Everything from a netx HDF5 file onward: reading, mapping onto Loihi cores, budget checks,
simulation in Lava, hardware runs and energy estimates.

The folder ``deploy/`` is installed as the import package ``gradr_deploy`` (PyPI's unrelated
``deploy`` distribution owns the name ``deploy``). This package never imports ``gradr_lava``
(the training side), so a netx file written by any lava-dl user can be mapped and simulated.
``import gradr_deploy`` loads neither torch nor Lava: only the simulation modules do, and only
when they are called.
"""

__all__ = ["errors"]
