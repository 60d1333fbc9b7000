"""How well the `loihi2` compiler model reproduces every partition Intel's compiler printed.

The printed rows come from lava-dl's tutorial notebooks (lava-nc/lava-dl @ d825ac5):
Oxford ``tutorials/lava/lib/dl/netx/oxford/run.ipynb`` (release of Nov 2023), MNIST
``.../netx/mnist/run.ipynb`` (Apr 2024, percentages), PilotNet SNN and SDNN
``.../netx/pilotnet_snn/benchmark.ipynb`` and ``.../pilotnet_sdnn/benchmark.ipynb`` (Jan 2023).
Each printout lists layers last first; here they are in file order. ``None`` = not printed.

    python benchmarks/compiler_fit.py [--json runs/bench/compiler_fit.json]

prints, for each network, the release modelled, each layer's printed and modelled cores,
neurons and Synapses per core (the release's row statistic), and the residual in percent.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gradr_deploy.atomic import write_json  # noqa: E402
from gradr_deploy.mapping import map_file  # noqa: E402

NETX = REPO.parent / "shared" / "data" / "netx"

# file -> (release, printed total, [(layer index, cores, neurons, synapses units)])
PRINTED = {
    "oxford.net": ("2023-11", 5, [(0, 3, 85, 5400), (1, 2, 100, 8064)]),
    "mnist_lavadl.net": ("2024-04", 5, [(0, 3, 50, 12544), (1, 1, 64, 2688),
                                        (2, 1, 10, 256)]),
    "pilotnet_snn.net": ("2023-01", 74, [
        (0, 13, 3168, 0), (1, 25, 3072, 81), (2, 13, 2160, 864), (3, 3, 2688, 1620),
        (4, 3, 2048, 2160), (5, 2, 2048, 2880), (7, 12, 8, 7253), (8, 1, 50, 1300),
        (9, 1, 10, 150), (10, 1, 1, 10)]),
    # the printed SDNN run shows no row for the input layer (13 cores in the SNN run)
    "pilotnet_sdnn.net": ("2023-01", 61, [
        (0, None, None, None), (1, 25, 3072, 81), (2, 13, 2160, 864), (3, 3, 2688, 1620),
        (4, 3, 2048, 2592), (5, 2, 2048, 2880), (7, 12, 8, 7253), (8, 1, 50, 1500),
        (9, 1, 10, 150), (10, 1, 1, 10)]),
}


def _residual(model: float, printed: float | None) -> float | None:
    if printed is None:
        return None
    return 0.0 if model == printed else 100 * (model - printed) / printed if printed else math.inf


def fit(name: str) -> dict:
    release, printed_total, rows = PRINTED[name]
    mapping = map_file(NETX / name, "loihi2", {"release": release})
    statistic = mapping.hardware.compiler.release.row_statistic
    by_index = {layer.index: layer for layer in mapping.layers}
    layers = []
    for index, cores, neurons, synapses in rows:
        compiled = by_index[index].compiled
        row = compiled.row(statistic)
        modelled = (compiled.cores, math.floor(row["neurons"]), math.floor(row["synapses"]))
        layers.append({
            "layer": index, "kind": compiled.kind,
            "printed": {"cores": cores, "neurons": neurons, "synapses": synapses},
            "modelled": dict(zip(("cores", "neurons", "synapses"), modelled, strict=True)),
            "residual_percent": {key: _residual(m, p) for key, m, p in
                                 zip(("cores", "neurons", "synapses"), modelled,
                                     (cores, neurons, synapses), strict=True)},
        })
    return {"file": name, "release": release, "printed_total": printed_total,
            "modelled_total": mapping.total_cores, "layers": layers}


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = [fit(name) for name in PRINTED if (NETX / name).exists()]
    print("| file | release | layer | cores printed / model | neurons printed / model | "
          "Synapses printed / model | residual (neurons, Synapses) |")
    print("|---|---|---|---|---|---|---|")
    for result in results:
        for layer in result["layers"]:
            p, m, r = layer["printed"], layer["modelled"], layer["residual_percent"]
            print(f"| {result['file']} | {result['release']} | {layer['layer']} "
                  f"({layer['kind']}) | {_n(p['cores'])} / {m['cores']} | {_n(p['neurons'])} / "
                  f"{m['neurons']} | {_n(p['synapses'])} / {m['synapses']} | "
                  f"{_fmt(r['neurons'])}, {_fmt(r['synapses'])} |")
        print(f"| {result['file']} | {result['release']} | total | "
              f"{result['printed_total']} / {result['modelled_total']} | | | |")
    if args.json:
        write_json(args.json, {"results": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
