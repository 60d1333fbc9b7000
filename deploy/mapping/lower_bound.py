"""Proven lower bounds on the cores a layer needs, beyond the per-resource counting bounds.

The counting bounds in :func:`gradr_deploy.mapping.bounds.lower_bounds` ignore what depends on
how neurons are grouped and ordered on a core: the zeros a dense run stores between an axon's
first and last target and the index bits of sparse synapses. This module bounds those too, for any
placement (any grouping of neurons into cores, any order within a core, dense or sparse per
axon). The full argument is in docs/mapping.md ("Lower bound"); in short:

1. Let ``c(n)`` be the least synapse memory of any core holding ``n`` neurons of the layer.
   Removing a neuron never raises a core's cost, so ``c`` is non-decreasing, and a placement on
   ``m`` cores has a core of ``ceil(N / m)`` neurons or more. If ``L(n) <= c(n)`` is a proven
   bound and ``L(ceil(N / m)) > memory per core``, then ``m`` (or fewer) cores are impossible.
2. ``L(n)`` is a Lagrangian dual (:class:`CoreProblem`). In a core of ``n`` neurons, axon
   ``a`` (fan-out ``d_a``) has ``k_a`` targets, ``z_a = n - k_a`` non-targets, and misses
   ``e_a`` neurons at the two ends of the core's order; it costs ``min(block(n - e_a, b),
   block(k_a, b + index(n)))``, or nothing if unused. Facts true for every core are relaxed
   with multipliers: the total of ``k_a`` lies between the ``n`` smallest and largest fan-ins;
   ``sum z_a^2`` is at most the pair-table bound :func:`pair_sum_bound`; few axons miss the
   whole core; tails on ``e`` (:func:`miss_count`, :func:`split_tails`) and on ``z``
   (:func:`z_tails`). For fixed multipliers every axon's cheapest option is found exactly, so
   any non-negative multipliers give a valid bound; a linear programme with column generation
   finds good ones.

The pair tables and the singular value cost ``O(N^2 A)``; they are computed only for layers up
to :data:`~gradr_deploy.mapping.layer_stats.PAIRWISE_MAX_NEURONS` neurons and
:data:`~gradr_deploy.mapping.layer_stats.PAIRWISE_MAX_WORK` multiply-adds, and the
refinement runs only for those layers (larger layers keep the counting bounds).
"""

from __future__ import annotations

import math

import numpy as np

from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.cost import block_bits, index_bits
from gradr_deploy.mapping.layer_stats import (
    LayerStats,
    miss_bounds,
    miss_count,
    pair_sum_bound,
    prefix_volumes,
    split_tails,
    z_tails,
)


class _RangeMin:
    """Sparse table: minimum and its position over ``values[l..r]`` for arrays of ``l, r``."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        arg = [np.arange(len(values))]
        width = 1
        while 2 * width <= len(values):
            prev = arg[-1]
            left, right = prev[: len(prev) - width], prev[width:]
            arg.append(np.where(values[left] <= values[right], left, right))
            width *= 2
        self.arg = arg

    def query(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.broadcast_arrays(np.asarray(lo), np.asarray(hi))
        size = np.maximum(hi - lo + 1, 1)
        level = np.floor(np.log2(size)).astype(np.int64)
        level = np.minimum(level, len(self.arg) - 1)
        out_arg = np.zeros(lo.shape, np.int64)
        for j in np.unique(level):
            sel = level == j
            table = self.arg[j]
            left = table[np.clip(lo[sel], 0, len(table) - 1)]
            right = table[np.clip(hi[sel] - (1 << j) + 1, 0, len(table) - 1)]
            out_arg[sel] = np.where(self.values[left] <= self.values[right], left, right)
        return self.values[out_arg], out_arg


class CoreProblem:
    """The Lagrangian dual ``L(n)`` for one core size ``n``; :meth:`maximise` finds multipliers.

    For each group of axons with equal fan-out ``d`` the options are: unused (only if the
    axon can miss ``n`` neurons), dense with span ``n - e`` (``e`` end neurons missed, cost
    ``block(n - e, b)``) and ``k <= min(d, n - e)`` targets, or sparse with ``k`` targets
    (cost ``block(k, b + index(n))``); always ``k >= n - (N - d)``. Constraints, each with a
    multiplier: ``sum k >= K_min`` (``lam``), ``sum k <= K_max`` (``lam2``), ``sum z^2 <= Z2``
    with ``z = n - k`` (``eta``; unused axons have ``z = n``), ``sum d e <= W`` (``phi``),
    unused axons ``<= U`` (``omega``), axons with ``e >= e_c`` ``<= T_c`` (``nu[c]``, one per
    dense cost level; ``psi[c]``: the same for their fan-out) and axons with ``z >= zeta_i``
    ``<= R_i`` (``rho[i]``). Any non-negative multipliers give a valid bound (weak duality):
    :meth:`value` minimises exactly over every option; :meth:`maximise` finds good multipliers
    by linear programming with column generation.
    """

    _FIXED = ("lam", "lam2", "eta", "phi", "omega")

    def __init__(self, stats: LayerStats, n: int, bits: int, profile: HardwareProfile) -> None:
        self.n = n
        big_n = stats.neurons
        idx = index_bits(n, profile)
        e_all = np.arange(n)
        dense_e = block_bits(n - e_all, bits, profile).astype(np.float64)  # span n - e
        self.sparse_k = block_bits(np.arange(1, n + 1), bits + idx, profile).astype(np.float64)
        self.e = np.concatenate([[0], np.flatnonzero(np.diff(dense_e) < 0) + 1])  # level starts
        self.dense_cost = dense_e[self.e]
        values, counts = np.unique(stats.fan_out, return_counts=True)
        self.d = values.astype(np.float64)
        self.counts = counts.astype(np.float64)
        self.k_lo = np.maximum(1, n - (big_n - values))
        self.k_hi = np.minimum(n, values)
        self.forced = (big_n - values) < n
        # right-hand sides
        fan_in = np.sort(stats.fan_in)
        self.k_min = float(fan_in[:n].sum())
        self.k_max = float(fan_in[::-1][:n].sum())
        self.z2 = pair_sum_bound(stats, n)
        mu = miss_bounds(stats, n)
        self.unused_max = float(miss_count(stats, np.array([n]))[0])
        if n > 1:
            self.unused_max = min(self.unused_max, float(mu[-1]))

        volumes = prefix_volumes(stats, n, mu)
        self.tails = np.minimum(split_tails(mu, self.e[1:]), stats.axons)
        self.volume_tails = np.minimum(split_tails(volumes, self.e[1:]), stats.synapses)
        self.w = 2.0 * float(volumes.sum()) if n > 1 else 0.0
        self.zeta, self.z_tails = z_tails(stats, n)
        self.levels, self.zs = len(self.tails), len(self.zeta)
        self.size = len(self._FIXED) + 2 * self.levels + self.zs
        self.rhs = np.concatenate(
            [
                [-self.k_min, self.k_max, self.z2, self.w, self.unused_max],
                self.tails,
                self.volume_tails,
                self.z_tails,
            ]
        )  # the dual subtracts y . rhs (lam enters with K_min, hence the sign)

    # --- the dual function ---------------------------------------------------------------

    def _split(self, y: np.ndarray) -> tuple[float, ...]:
        lam, lam2, eta, phi, omega = (float(v) for v in y[:5])
        nu = y[5 : 5 + self.levels]
        psi = y[5 + self.levels : 5 + 2 * self.levels]
        return lam, lam2, eta, phi, omega, nu, psi, y[5 + 2 * self.levels :]

    def _z_penalty(self, rho: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(rho)])[np.searchsorted(self.zeta, z, "right")]

    def responses(self, y: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
        """Per group: the least option cost at multipliers ``y`` and that option."""
        n = self.n
        lam, lam2, eta, phi, omega, nu, psi, rho = self._split(y)  # type: ignore[misc]
        k = np.arange(1, n + 1, dtype=np.float64)
        f = (lam2 - lam) * k + eta * (n - k) ** 2 + self._z_penalty(rho, n - k.astype(np.int64))
        sparse_val, sparse_arg = _RangeMin(self.sparse_k + f).query(self.k_lo - 1, self.k_hi - 1)
        hi = np.minimum(self.k_hi[:, None], n - self.e[None, :])
        ok = hi >= self.k_lo[:, None]
        lo = np.broadcast_to(self.k_lo[:, None], hi.shape)
        dense_val, dense_arg = _RangeMin(f).query(lo - 1, np.maximum(hi, lo) - 1)
        nu_sum = np.concatenate([[0.0], np.cumsum(nu)])
        psi_sum = np.concatenate([[0.0], np.cumsum(psi)])
        dense_val = dense_val + (self.dense_cost + nu_sum)[None, :]
        dense_val = dense_val + self.d[:, None] * (phi * self.e + psi_sum)[None, :]
        dense_val = np.where(ok, dense_val, np.inf)
        level = dense_val.argmin(axis=1)
        rows = np.arange(len(self.d))
        best_dense = dense_val[rows, level]
        unused = eta * float(n) ** 2 + omega + float(self._z_penalty(rho, np.array([n]))[0])
        unused_val = np.where(self.forced, np.inf, unused)
        cost = np.minimum(np.minimum(best_dense, sparse_val), unused_val)
        options = []
        for g in range(len(self.d)):
            if cost[g] == unused_val[g]:
                options.append(("unused", 0, 0))
            elif cost[g] == best_dense[g]:
                options.append(("dense", int(level[g]), int(dense_arg[g, level[g]]) + 1))
            else:
                options.append(("sparse", 0, int(sparse_arg[g]) + 1))
        return cost, options

    def value(self, y: np.ndarray) -> float:
        """The dual at multipliers ``y`` (non-negative): a lower bound on the core's bits."""
        y = np.maximum(np.asarray(y, np.float64), 0.0)
        cost, _ = self.responses(y)
        total = float(cost @ self.counts)
        penalty = float(y @ self.rhs)
        # floating-point safety: a margin far above the round-off of these sums
        slack = 1e-11 * (float(np.abs(cost) @ self.counts) + float(np.abs(y * self.rhs).sum()))
        return total - penalty - slack

    # --- finding multipliers -----------------------------------------------------------------

    def _row(self, g: int, option: tuple) -> tuple[float, np.ndarray]:
        """Constant and multiplier coefficients of one option's cost (affine in ``y``)."""
        n = self.n
        kind, level, k = option
        coef = np.zeros(self.size)
        if kind == "unused":
            coef[2], coef[4] = float(n) ** 2, 1.0
            z = n
            const = 0.0
        else:
            coef[0], coef[1], coef[2] = -k, k, float(n - k) ** 2
            z = n - k
            if kind == "dense":
                coef[3] = self.d[g] * self.e[level]
                coef[5 : 5 + level] = 1.0
                coef[5 + self.levels : 5 + self.levels + level] = self.d[g]
                const = float(self.dense_cost[level])
            else:
                const = float(self.sparse_k[k - 1])
        first = 5 + 2 * self.levels
        coef[first : first + int(np.searchsorted(self.zeta, z, "right"))] = 1.0
        return const, coef

    def _initial_options(self) -> set[tuple[int, tuple]]:
        pool = set()
        n = self.n
        for g in range(len(self.d)):
            lo, hi = int(self.k_lo[g]), int(self.k_hi[g])
            for level, e in enumerate(self.e):
                top = min(hi, n - int(e))
                if top >= lo:
                    pool.add((g, ("dense", level, top)))
            for k in {lo, hi, (lo + hi) // 2}:
                pool.add((g, ("sparse", 0, k)))
            if not self.forced[g]:
                pool.add((g, ("unused", 0, 0)))
        return pool

    def maximise(self, target: float = math.inf, rounds: int = 40) -> tuple[float, np.ndarray]:
        """Best multipliers found and the bound there.

        Column generation: solve the LP over a pool of options, add every group's exact best
        response at the LP's multipliers and halfway to the best multipliers so far
        (stabilisation), repeat. The LP over a partial pool over-estimates the dual's maximum,
        so the search stops once that estimate is below ``target`` (the bound cannot exceed
        it) or the bound is above it. Whatever the LP returns, the bound is :meth:`value` at
        those multipliers (exact minimum over all options), so it is valid.
        """
        start = np.zeros(self.size)
        start[5 : 5 + self.levels] = self.dense_cost[:-1] - self.dense_cost[1:]
        best = (self.value(start), start)
        try:
            from scipy import sparse
            from scipy.optimize import linprog
        except ImportError:  # pragma: no cover - scipy is a dependency
            return best
        pool = self._initial_options()
        groups = len(self.d)
        big = 1e3 * (1.0 + float(self.dense_cost[0]) + float(self.sparse_k[-1]))
        bounds = [(-big, big)] * groups + [(0.0, 1e4)] * self.size
        objective = -np.concatenate([self.counts, -self.rhs])
        objective[groups:] += 1e-6  # among equally good multipliers prefer small ones
        for _ in range(rounds):
            if best[0] > target:
                break
            items = sorted(pool)
            consts, coefs = zip(*(self._row(g, opt) for g, opt in items), strict=True)
            a_t = sparse.csr_matrix(
                (np.ones(len(items)), (np.arange(len(items)), [g for g, _ in items])),
                shape=(len(items), groups),
            )
            a_ub = sparse.hstack([a_t, -sparse.csr_matrix(np.array(coefs))]).tocsr()
            res = linprog(objective, A_ub=a_ub, b_ub=np.array(consts), bounds=bounds,
                          method="highs")  # fmt: skip
            if res.status != 0 or res.x is None:
                break
            estimate = -float(res.fun) + 1e-6 * float(res.x[groups:].sum())
            y = np.maximum(res.x[groups:], 0.0)
            new = set()
            for trial in (y, 0.5 * (y + best[1])):
                exact = self.value(trial)
                if exact > best[0]:
                    best = (exact, trial)
                _, options = self.responses(trial)
                new |= {(g, opt) for g, opt in enumerate(options)}
            new -= pool
            gap = estimate - best[0]
            hopeless = math.isfinite(target) and estimate <= target
            if not new or gap <= 1e-7 * max(abs(best[0]), 1.0) or hopeless:
                break
            pool |= new
        return best


def memory_lower_bound(
    stats: LayerStats, n: int, bits: int, profile: HardwareProfile, target: float = math.inf
) -> float:
    """Proven lower bound on the synapse bits of any core holding ``n`` neurons of the layer.

    With a finite ``target`` the search may stop early, once the bound exceeds it or once it
    is clear that it cannot.
    """
    if n < 1 or stats.synapses == 0:
        return 0.0
    return max(CoreProblem(stats, n, bits, profile).maximise(target)[0], 0.0)


def axon_lower_bound(stats: LayerStats, n: int) -> int:
    """Input axons any core of ``n`` neurons uses: all but those that can miss ``n`` neurons."""
    if n < 1 or stats.axons == 0:
        return 0
    largest_fan_in = int(np.sort(stats.fan_in)[min(n, stats.neurons) - 1])
    can_miss = int(np.count_nonzero(stats.neurons - stats.fan_out >= n))
    if stats.pair_rows is not None and n >= 2:
        can_miss = min(can_miss, int(stats.pair_rows[:, 0].max()))
    return max(largest_fan_in, stats.axons - can_miss)


def refine_cores(
    stats: LayerStats, bits: int, profile: HardwareProfile, start: int, stop: int
) -> dict[str, int]:
    """Core bounds above ``start`` (the counting bound) proven for memory and input axons.

    Memory only for :attr:`LayerStats.refinable` layers; input axons for every layer.

    ``m`` cores are impossible when a core of ``ceil(N / m)`` neurons cannot fit; then so are
    all fewer cores (core costs never fall as neurons are added). Tries ``stop - 1`` first
    (``stop`` = cores found), then bisects below it; any certified ``m`` proves ``m + 1``.
    Returns only the resources that prove more than ``start``.
    """
    big_n = stats.neurons
    cap_bits = profile.synapse_memory_bits_per_core
    cap_in = profile.input_axons_per_core
    out = {}
    resources = ("synapse_memory", "input_axons") if stats.refinable else ("input_axons",)
    for resource in resources:

        def impossible(m: int, resource: str = resource) -> bool:
            n = math.ceil(big_n / m)
            if resource == "input_axons":
                return axon_lower_bound(stats, n) > cap_in
            return memory_lower_bound(stats, n, bits, profile, cap_bits) > cap_bits

        bound = start
        if stop - 1 >= start and impossible(stop - 1):
            bound = stop
        else:
            lo, hi = start, stop - 2  # find the largest certified m in [start, stop - 2]
            while lo <= hi:
                mid = (lo + hi) // 2
                if impossible(mid):
                    bound, lo = mid + 1, mid + 1
                else:
                    hi = mid - 1
        if bound > start:
            out[resource] = bound
    return out
