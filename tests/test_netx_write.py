"""deploy/netx/write.py writes what read_netx reads back, compressed or not, attributes kept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from netx_writer import shared_netx

from gradr_deploy.errors import InputError
from gradr_deploy.netx import ConvGeometry, NetxNetwork, PoolLayer, read_netx
from gradr_deploy.netx.write import write_netx

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_round_trip(compression: str | None, tmp_path: Path) -> None:
    for source in (REPO / "models" / "digits-mlp-gradr.net", shared_netx("pilotnet_snn.net")):
        original = read_netx(source)
        back = read_netx(write_netx(original, tmp_path / "copy.net", compression=compression))
        assert dict(back.attrs) == dict(original.attrs)
        for a, b in zip(original.layers, back.layers, strict=True):
            assert type(a) is type(b), (a.index, a.kind, b.kind)  # one dataclass per layer type
            for field in dataclasses.fields(a):
                x, y = getattr(a, field.name), getattr(b, field.name)
                if field.name == "neuron":
                    continue
                if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                    assert (x is None) == (y is None), (a.index, field.name)
                    if x is not None:
                        np.testing.assert_array_equal(np.asarray(x, np.float32), y)
                else:
                    assert x == y, (a.index, field.name)
            if a.neuron is not None:
                assert a.neuron.kind == b.neuron.kind
                assert {k: np.asarray(v).tolist() for k, v in a.neuron.params.items()} == \
                    {k: np.asarray(v).tolist() for k, v in b.neuron.params.items()}


def test_refuses_layers_it_cannot_write(tmp_path: Path) -> None:
    geometry = ConvGeometry(1, 1, (2, 2), (2, 2), (0, 0), (1, 1), 1)
    network = NetxNetwork(tmp_path / "x.net", (PoolLayer(index=0, shape=(1, 2, 2), conv=geometry),))
    with pytest.raises(InputError, match="'pool' layer"):
        write_netx(network, tmp_path / "x.net")
    assert not (tmp_path / "x.net").exists()
