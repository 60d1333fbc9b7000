"""Lava processes that stream spikes from and to memory-mapped files.

Lava's ``RingBuffer`` source and sink hold their data in a ``Var``; reading or writing a large
``Var`` between runs goes through the runtime's message channels and is slow (measured: 26 s to
read 1.5 M recorded values, 12 s to write the next input; ``benchmarks/lava_throughput.py``).
These two processes do the same job through a file instead: the parent writes every sample's
input into a ``.npy`` file before the run and reads every recorded spike from another after
it; the process models, in Lava's child processes, memory-map the files. They take no part in
the network's arithmetic: the network's processes are netx's, in Lava's fixed-point models.
"""

from __future__ import annotations

import numpy as np

from gradr_deploy.simulation import lava_compat

lava_compat.install()
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class FileSource(AbstractProcess):
    """Sends column ``t - 1`` of the ``(*shape, steps)`` array in ``path`` at step ``t``."""

    def __init__(self, *, shape: tuple[int, ...], path: str) -> None:
        super().__init__(shape=shape, path=path)
        self.s_out = OutPort(shape=shape)


class FileSink(AbstractProcess):
    """Writes what arrives at step ``t`` into column ``t - 1`` of the uint8 array in ``path``
    (``(*shape, steps)``; values are spikes, 0 or 1)."""

    def __init__(self, *, shape: tuple[int, ...], path: str) -> None:
        super().__init__(shape=shape, path=path)
        self.a_in = InPort(shape=shape)


@implements(proc=FileSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFileSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._data = np.load(proc_params["path"], mmap_mode="r")

    def run_spk(self) -> None:
        self.s_out.send(np.asarray(self._data[..., self.time_step - 1], dtype=np.int32))


@implements(proc=FileSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFileSinkModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._data = np.load(proc_params["path"], mmap_mode="r+")

    def run_spk(self) -> None:
        self._data[..., self.time_step - 1] = self.a_in.recv()

    def _stop(self) -> None:
        self._data.flush()
        super()._stop()
