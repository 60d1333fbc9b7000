"""Time the core mapper on a random sparse network with ~10 million synapses.

Builds a dense-layer network in memory (or as a netx HDF5 file in a temporary directory with
``--hdf5``, then timing read + map), maps it onto each requested hardware profile, and prints
wall time (``time.perf_counter``, best of ``--repeat``), the mapping's peak traced memory
(``tracemalloc``, measured in a separate untimed run) and the process's peak RSS.

    .venv/bin/python benchmarks/mapping_speed.py --json runs/mapping_speed.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _runs import machine

from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.netx import DenseLayer, InputLayer, Layer, NetxNetwork, Neuron, read_netx
from gradr_deploy.netx.write import write_netx


def build_network(sizes: list[int], synapses: int, seed: int) -> NetxNetwork:
    """Dense layers ``sizes[0] -> sizes[1] -> ...`` pruned at random to ``synapses`` in total."""
    rng = np.random.default_rng(seed)
    dense_total = sum(a * b for a, b in itertools.pairwise(sizes))
    density = min(1.0, synapses / dense_total)
    layers: list[Layer] = [InputLayer(index=0, shape=(sizes[0],))]
    for n_in, n_out in itertools.pairwise(sizes):
        w = rng.integers(-127, 128, size=(n_out, n_in), dtype=np.int16).astype(np.float32)
        w[rng.random((n_out, n_in), dtype=np.float32) >= density] = 0
        layers.append(DenseLayer(index=len(layers), shape=(n_out,), weight=w,
                                 features=(n_in, n_out), neuron=Neuron("CUBA", {"vThMant": 80})))
    return NetxNetwork(Path("random.net"), tuple(layers))


def run(args: argparse.Namespace) -> list[dict]:
    net = build_network(args.sizes, args.synapses, args.seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.net"
        if args.hdf5:
            write_netx(net, path)

        def work(profile):
            source = read_netx(path) if args.hdf5 else net
            mapping = map_network(source, profile, refine_bounds=True)
            _ = mapping.lower_bound_cores  # lower bounds are refined lazily: time them too
            return mapping

        for hardware in args.hardware:
            profile = load_profile(hardware)
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                mapping = work(profile)
                times.append(time.perf_counter() - start)
            tracemalloc.start()
            work(profile)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results.append(
                {
                    "hardware": hardware,
                    "input": "hdf5" if args.hdf5 else "memory",
                    "layers": args.sizes,
                    "synapses": sum(m.synapses for m in mapping.layers),
                    "total_cores": mapping.total_cores,
                    "lower_bound_cores": mapping.lower_bound_cores,
                    "cores_per_layer": [m.cores for m in mapping.layers],
                    "lower_bound_per_layer": [m.lower_bound for m in mapping.layers],
                    "best_seconds": min(times),
                    "all_seconds": times,
                    "peak_traced_mib": peak / 2**20,
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synapses", type=int, default=10_000_000, help="nonzero synapses")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1024, 4096, 4096, 4096, 10], help="layer sizes"
    )
    parser.add_argument("--hardware", nargs="+", default=["loihi1", "loihi2"])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hdf5", action="store_true", help="write a netx file; time read + map")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    results = run(args)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    header = f"{'hardware':<9} {'input':<7} {'synapses':>10} {'cores':>6} {'LB':>5} "
    header += f"{'best s':>8} {'peak MiB':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['hardware']:<9} {r['input']:<7} {r['synapses']:>10} {r['total_cores']:>6} "
            f"{r['lower_bound_cores']:>5} {r['best_seconds']:>8.3f} {r['peak_traced_mib']:>9.1f}"
        )
    print(f"process peak RSS {rss_mib:.0f} MiB; {machine()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "results": results,
            "process_peak_rss_mib": rss_mib,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "machine": machine(),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
