"""Everything from a netx HDF5 file onward: reading, mapping onto Loihi cores, budget checks,
simulation in Lava, hardware runs and energy estimates.

This package never imports ``gradr_lava`` (the training side), so a netx file written by any
lava-dl user can be mapped and simulated. ``import deploy`` loads neither torch nor Lava: only
the simulation modules do, and only when they are called.
"""

__all__ = ["errors"]
