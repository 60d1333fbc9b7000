"""Run at interpreter start-up by the ``gradr_lava_compat.pth`` hook
(:mod:`gradr_deploy.simulation.lava_setup`).

Registers :mod:`gradr_deploy.simulation.lava_compat`'s meta-path finder, which only acts when
Lava's three
affected modules are imported, so that ``import lava...`` works on Python 3.11 in any script
of the environment. Set ``GRADR_LAVA_COMPAT=0`` to start an interpreter without it.
"""

import os

if os.environ.get("GRADR_LAVA_COMPAT", "1") != "0":
    from gradr_deploy.simulation import lava_compat

    lava_compat.install()
