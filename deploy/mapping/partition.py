"""Greedy contiguous packing of a layer's neurons onto cores, and the neuron orders tried.

Each core takes the longest run of neurons, in partition order, that fits all four limits (binary
search on one vectorised cost evaluation), which is optimal for that order. The synapse cost of
a core is nengo-loihi's: per input axon the cheaper of the dense encoding (one weight for every
compartment from the axon's first to its last target, zeros included) and the sparse one (one
``bits + index_bits`` entry per synapse). :func:`try_orders` packs a dense layer in two other
orders and keeps the one needing fewest cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradr_deploy.errors import BudgetError
from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.cost import block_bits, envelope, index_bits
from gradr_deploy.mapping.result import Connectivity

ORDER_SEARCH_MAX_NEURONS = 2048  # larger layers keep their stored order


def axon_synapse_bits(
    counts: np.ndarray, spans: np.ndarray, neurons: int, bits: int, profile: HardwareProfile
) -> tuple[int, int]:
    """Synapse bits of one core and how many of its axons use the dense encoding.

    Per input axon, the cheaper of two nengo-loihi encodings (each block carries its own format
    index, and an axon's synapse-map entry has its own compartment base):

    - dense: one weight for every compartment from the axon's first to its last target
      (``spans``; zeros included), no index bits;
    - sparse: one ``bits + index_bits`` entry per nonzero synapse (``counts``).
    """
    if counts.size == 0:
        return 0, 0
    dense = block_bits(spans, bits, profile)
    sparse = block_bits(counts, bits + index_bits(neurons, profile), profile)
    return int(np.minimum(dense, sparse).sum()), int(np.count_nonzero(dense <= sparse))



@dataclass
class CoreRuns:
    neurons: list[int] = field(default_factory=list)
    axons: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    bits: list[int] = field(default_factory=list)
    encoding: list[str] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)


def run_cost(
    conn: Connectivity, a: int, n: int, bits: int, profile: HardwareProfile
) -> tuple[int, int, str, np.ndarray]:
    """Input axons, synapse bits, encoding and used axons of one core holding rows a..a+n-1."""
    indptr, indices = conn.indptr, conn.indices
    cols = indices[indptr[a] : indptr[a + n]]
    rows = np.repeat(np.arange(n), np.diff(indptr[a : a + n + 1]))
    counts = np.bincount(cols, minlength=conn.n_pre)
    used = np.flatnonzero(counts)
    first = np.full(conn.n_pre, n, np.int64)
    last = np.zeros(conn.n_pre, np.int64)
    np.minimum.at(first, cols, rows)
    np.maximum.at(last, cols, rows)
    spans = last[used] - first[used] + 1
    used_bits, n_dense = axon_synapse_bits(counts[used], spans, n, bits, profile)
    return used.size, used_bits, _encoding_name(n_dense, used.size), used


def partition(
    conn: Connectivity, out_cost: np.ndarray, bits: int, profile: HardwareProfile, label: str
) -> CoreRuns:
    """Greedy contiguous packing of ``conn``'s rows; ``out_cost`` per row (partition order).

    Raises:
        BudgetError: a single neuron exceeds a per-core limit on its own.
    """
    cap_n, cap_in = profile.neurons_per_core, profile.input_axons_per_core
    cap_out, cap_bits = profile.output_axons_per_core, profile.synapse_memory_bits_per_core
    indptr = conn.indptr
    out_cum = np.concatenate([[0], np.cumsum(out_cost, dtype=np.int64)])
    ks, gs = envelope(bits, profile.synapses_per_block, profile)
    per_synapse = float(np.min(gs[1:] / ks[1:]))  # 0 only for free synapses (no header, 0 bits)
    max_synapses = int(cap_bits // per_synapse) if per_synapse > 0 else conn.synapses
    cores = CoreRuns()

    def evaluate(a: int, n: int) -> tuple[bool, int, int, str, np.ndarray]:
        axons, used_bits, encoding, used = run_cost(conn, a, n, bits, profile)
        return axons <= cap_in and used_bits <= cap_bits, axons, used_bits, encoding, used

    start, guess, total = 0, 0, conn.n_post
    while start < total:
        hi = min(cap_n, total - start)
        hi = min(hi, int(np.searchsorted(out_cum, out_cum[start] + cap_out, "right")) - 1 - start)
        hi = min(
            hi, int(np.searchsorted(indptr, indptr[start] + max_synapses, "right")) - 1 - start
        )
        best = evaluate(start, hi) if hi >= 1 else None
        n = hi
        if best is None or not best[0]:
            lo, bad = 0, max(hi, 1)
            if 0 < guess < bad:
                trial = evaluate(start, guess)
                lo, bad = (guess, bad) if trial[0] else (0, guess)
                best = trial if trial[0] else None
            while bad - lo > 1:
                mid = (lo + bad) // 2
                trial = evaluate(start, mid)
                if trial[0]:
                    lo, best = mid, trial
                else:
                    bad = mid
            n = lo
            if n == 0 or best is None:
                raise BudgetError(
                    _single_neuron_message(conn, start, out_cost, bits, profile, label)
                )
        _, axons, used_bits, encoding, used = best
        cores.neurons.append(n)
        cores.axons.append(axons)
        cores.out.append(int(out_cum[start + n] - out_cum[start]))
        cores.bits.append(used_bits)
        cores.encoding.append(encoding)
        cores.inputs.append(used.astype(np.int32))
        start, guess = start + n, n
    return cores


def _encoding_name(dense_axons: int, axons: int) -> str:
    if axons == 0:
        return "none"
    if dense_axons == axons:
        return "dense"
    return "sparse" if dense_axons == 0 else "mixed"


def _single_neuron_message(
    conn: Connectivity,
    q: int,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
    label: str,
) -> str:
    fan_in = int(conn.indptr[q + 1] - conn.indptr[q])
    one_bits = int(block_bits(np.ones(fan_in, np.int64), bits, profile).sum())
    return (
        f"{label}: neuron {int(conn.order[q])} alone does not fit one core: fan-in {fan_in} "
        f"input axons (limit {profile.input_axons_per_core}), {one_bits} synapse bits (limit "
        f"{profile.synapse_memory_bits_per_core}), {int(out_cost[q])} output axons (limit "
        f"{profile.output_axons_per_core}); prune its fan-in to <= "
        f"{profile.input_axons_per_core} inputs or use fewer weight bits"
    )



def try_orders(
    conn: Connectivity,
    cores: CoreRuns,
    out_all: np.ndarray,
    bits: int,
    profile: HardwareProfile,
    label: str,
) -> tuple[Connectivity, CoreRuns]:
    """Greedy packing is optimal for a fixed order; try two other orders and keep one that
    needs fewer cores (else the stored order).

    Orders: by the mean index of each neuron's inputs (groups neurons reading nearby inputs),
    and spectral (second singular vector of the degree-normalised synapse matrix, which groups
    neurons sharing inputs).
    """
    best = conn, cores
    for perm in (_centroid_order(conn), _spectral_order(conn)):
        if perm is None or np.array_equal(perm, np.arange(conn.n_post)):
            continue
        other = _reordered(conn, perm)
        trial = partition(other, out_all[other.order], bits, profile, label)
        if len(trial.neurons) < len(best[1].neurons):
            best = other, trial
    return best


def _reordered(conn: Connectivity, perm: np.ndarray) -> Connectivity:
    """``conn`` with its rows taken in the order ``perm`` (positions in the current order)."""
    lengths = np.diff(conn.indptr)[perm]
    indptr = np.zeros(len(perm) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - conn.indptr[perm], lengths)
    return Connectivity(indptr, conn.indices[offsets], conn.n_pre, conn.order[perm])


def _row_ids(conn: Connectivity) -> np.ndarray:
    return np.repeat(np.arange(conn.n_post), np.diff(conn.indptr))


def _centroid_order(conn: Connectivity) -> np.ndarray:
    fan_in = np.diff(conn.indptr)
    total = np.bincount(_row_ids(conn), weights=conn.indices, minlength=conn.n_post)
    return np.argsort(total / np.maximum(fan_in, 1), kind="stable")


def _spectral_order(conn: Connectivity, iterations: int = 20) -> np.ndarray | None:
    """Neurons sorted by the second left singular vector of ``D_in^-1/2 M D_out^-1/2``."""
    rows, cols = _row_ids(conn), conn.indices
    fan_in = np.diff(conn.indptr).astype(np.float64)
    fan_out = np.bincount(cols, minlength=conn.n_pre).astype(np.float64)
    if conn.n_post < 3 or not conn.synapses:
        return None
    r_in = np.where(fan_in > 0, 1 / np.sqrt(np.maximum(fan_in, 1)), 0.0)
    r_out = np.where(fan_out > 0, 1 / np.maximum(fan_out, 1), 0.0)
    top = np.sqrt(fan_in) / np.linalg.norm(np.sqrt(fan_in))
    v = np.random.default_rng(0).standard_normal(conn.n_post)
    for _ in range(iterations):
        v -= top * (top @ v)
        u = np.bincount(cols, weights=(r_in * v)[rows], minlength=conn.n_pre) * r_out
        v = r_in * np.bincount(rows, weights=u[cols], minlength=conn.n_post)
        norm = np.linalg.norm(v)
        if norm == 0:
            return None
        v /= norm
    return np.argsort(v * r_in, kind="stable")

