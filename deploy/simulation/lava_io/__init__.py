"""Lava I/O processes of gradr-lava (:mod:`gradr_deploy.simulation.lava_io.files`).

They live in a package of their own because Lava's compiler imports every module in the
folder of a process's module when it looks for process models.
"""
