"""Networks in and out of other formats: NIR graphs (``nir_export``, ``nir_import``).

:func:`read_network` reads what ``gradr-lava map`` and ``deploy`` accept: a netx file or a NIR
graph, told apart by content. Importing this package loads neither torch nor Lava.
"""

from __future__ import annotations

from pathlib import Path

from gradr_deploy.netx import NetxNetwork, read_netx


def read_network(path: str | Path) -> tuple[NetxNetwork, tuple[int, ...] | None, tuple[str, ...]]:
    """A netx or NIR file as netx layers: ``(network, input_shape, notes)``.

    ``input_shape`` is netx's ``(x, y, f)`` for a conv-first network (recorded by gradr-lava
    in a netx file, or the NIR graph's input type), else None; ``notes`` say what a NIR
    conversion rounded.
    """
    from gradr_deploy.interop.nir_import import is_nir_file, read_nir
    from gradr_deploy.netx.metadata import recorded_input_shape

    if is_nir_file(path):
        imported = read_nir(path)
        return imported.network, imported.input_shape, imported.notes
    network = read_netx(path)
    return network, recorded_input_shape(network.attrs, str(network.path)), ()
