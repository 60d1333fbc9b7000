"""Proven lower bounds on the cores a layer needs, beyond the per-resource counting bounds.

The counting bounds in :func:`gradr_deploy.mapping.lower_bounds` ignore what depends on how neurons
are grouped and ordered on a core: the zeros a dense run stores between an axon's first and
last target and the index bits of sparse synapses. This module bounds those too, for any
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
   whole core; tails on ``e`` (:func:`miss_count`, :func:`_split_tails`) and on ``z``
   (:func:`z_tails`). For fixed multipliers every axon's cheapest option is found exactly, so
   any non-negative multipliers give a valid bound; a linear programme with column generation
   finds good ones.

The pair tables and the singular value cost ``O(N^2 A)``; they are computed only for layers up
to :data:`PAIRWISE_MAX_NEURONS` neurons and :data:`PAIRWISE_MAX_WORK` multiply-adds, and the
refinement runs only for those layers (larger layers keep the counting bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.cost import block_bits, index_bits

PAIRWISE_MAX_NEURONS = 2048
PAIRWISE_MAX_WORK = 4e9  # N^2 * A multiply-adds for the neuron-pair table
SPECTRAL_MARGIN = 1e-9  # added to the computed sigma_2^2 (eigvalsh backward error is ~1e-13)


@dataclass(frozen=True)
class LayerStats:
    """What the refined bound needs to know about a layer's nonzero synapses.

    ``fan_out`` lists only presynaptic neurons with at least one synapse (``axons`` of them).
    ``pair_rows[j]`` holds, in descending order, the number of axons that neither neuron ``j``
    nor each other neuron reads; ``sigma2`` is the second singular value of
    ``D_in^-1/2 M D_out^-1/2`` (``M`` the 0/1 synapse matrix without empty rows or columns),
    rounded up; ``axon_top`` and ``neuron_top`` bound the pairwise overlaps of any ``r`` axons
    or ``x`` neurons (:func:`_top_pair_sums`). All are ``None`` for layers too large to
    afford them.
    """

    neurons: int
    axons: int
    synapses: int
    fan_in: np.ndarray
    fan_out: np.ndarray
    pair_rows: np.ndarray | None = None
    sigma2: float | None = None
    # axon_top[r - 1] >= sum over ordered pairs of r distinct axons of the neurons both miss
    axon_top: np.ndarray | None = None
    # neuron_top[x - 1] >= sum over ordered pairs of x distinct neurons of the axons both miss
    neuron_top: np.ndarray | None = None

    @property
    def refinable(self) -> bool:
        return self.pair_rows is not None


def layer_stats(indptr: np.ndarray, indices: np.ndarray, n_pre: int) -> LayerStats:
    """Fan-ins, fan-outs and, for small layers, the pair table and spectral gap (CSR input)."""
    n = len(indptr) - 1
    fan_in = np.diff(indptr).astype(np.int64)
    counts = np.bincount(indices, minlength=n_pre).astype(np.int64)
    used = np.flatnonzero(counts)
    fan_out = counts[used]
    synapses = int(indptr[-1])
    a = len(used)
    if n < 2 or a == 0 or n > PAIRWISE_MAX_NEURONS or float(n) * n * a > PAIRWISE_MAX_WORK:
        return LayerStats(n, a, synapses, fan_in, fan_out)
    column = np.full(n_pre, -1, np.int64)
    column[used] = np.arange(a)
    rows = np.repeat(np.arange(n), fan_in)
    mask = np.zeros((n, a), np.float32)
    mask[rows, column[indices]] = 1.0
    non = 1.0 - mask
    common = non @ non.T  # exact: integer sums below 2^24
    np.fill_diagonal(common, -1.0)
    pair_rows = -np.sort(-common, axis=1)[:, :-1].astype(np.int32)
    axon_top = None
    if 2 <= a <= PAIRWISE_MAX_NEURONS and float(a) * a * n <= PAIRWISE_MAX_WORK:
        shared = non.T @ non
        np.fill_diagonal(shared, -1.0)
        axon_top = _top_pair_sums(-np.sort(-shared, axis=1)[:, :-1])
    sigma2 = _sigma2(mask, fan_in, fan_out)
    neuron_top = _top_pair_sums(pair_rows.astype(np.float64))
    return LayerStats(n, a, synapses, fan_in, fan_out, pair_rows, sigma2, axon_top, neuron_top)


def _top_pair_sums(rows: np.ndarray) -> np.ndarray:
    """``out[r - 1]`` >= the sum of ``overlap(i, i')`` over ordered pairs of ``r`` distinct items.

    ``rows[i]`` lists item ``i``'s overlaps with every other item in descending order. In a
    set of ``r`` items, item ``i`` contributes at most its ``r - 1`` largest overlaps, and the
    set at most the ``r`` largest such sums.
    """
    count = rows.shape[0]
    prefix = np.cumsum(rows, axis=1)  # prefix[i, m - 1] = sum of i's m largest overlaps
    by_column = np.cumsum(-np.sort(-prefix, axis=0), axis=0)  # [r - 1, m - 1]
    r = np.arange(2, count + 1)
    return np.concatenate([[0.0], by_column[r - 1, r - 2]])


def _sigma2(mask: np.ndarray, fan_in: np.ndarray, fan_out: np.ndarray) -> float | None:
    """Second singular value of the degree-normalised synapse matrix, rounded up."""
    live = fan_in > 0
    m = mask[live].astype(np.float64)
    if min(m.shape) < 2:
        return None
    m /= np.sqrt(fan_in[live].astype(np.float64))[:, None]
    m /= np.sqrt(fan_out.astype(np.float64))[None, :]
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eig = np.linalg.eigvalsh(gram)
    return math.sqrt(max(float(eig[-2]), 0.0) + SPECTRAL_MARGIN)


def miss_count(stats: LayerStats, x: np.ndarray) -> np.ndarray:
    """Upper bounds on the most axons that all miss some ``x`` neurons, for each ``x``.

    An axon missing ``x`` neurons has ``N - d_a >= x``; one neuron misses ``axons - fan_in``
    axons; ``x`` neurons missed by the same ``r`` axons form an all-zero block, so every pair
    of the neurons shares ``r`` non-target axons and every pair of the axons ``x`` non-target
    neurons (:attr:`LayerStats.neuron_top`, :attr:`LayerStats.axon_top`); the expander mixing
    lemma (:func:`_eml_volume`) bounds the fan-out such axons carry in the layer.
    """
    x = np.asarray(x)
    spare = np.sort(stats.neurons - stats.fan_out)  # non-targets per axon, ascending
    mu = (len(spare) - np.searchsorted(spare, x, side="left")).astype(np.float64)
    mu = np.where(x <= 1, np.minimum(mu, float(stats.axons - stats.fan_in.min())), mu)
    if stats.neuron_top is not None:
        # x neurons that r axons all miss: each of the x (x - 1) ordered neuron pairs shares
        # those r axons, so x (x - 1) r <= neuron_top[x - 1]
        top = stats.neuron_top[np.clip(x - 1, 0, len(stats.neuron_top) - 1)]
        pairs = np.maximum(x * (x - 1), 1).astype(np.float64)
        mu = np.where(x >= 2, np.minimum(mu, np.floor(top / pairs)), mu)
    if stats.axon_top is not None:
        # and each of the r (r - 1) ordered axon pairs shares those x neurons
        r = np.arange(1, len(stats.axon_top) + 1, dtype=np.float64)
        ok = r[None, :] * (r[None, :] - 1) * x[:, None] <= stats.axon_top[None, :]
        first_bad = np.where(ok.all(axis=1), len(r), np.argmin(ok, axis=1))
        mu = np.minimum(mu, first_bad)
    if stats.sigma2 is not None:
        volume = _eml_volume(stats, x)
        mu = np.minimum(mu, np.searchsorted(np.cumsum(np.sort(stats.fan_out)), volume, "right"))
    return np.minimum(mu, stats.axons)


def miss_bounds(stats: LayerStats, n: int) -> np.ndarray:
    """``mu[x - 1]`` for x = 1..n-1 (:func:`miss_count`), made non-increasing."""
    return np.minimum.accumulate(miss_count(stats, np.arange(1, n)))


def _eml_volume(stats: LayerStats, x: np.ndarray) -> np.ndarray:
    """Expander mixing lemma: synapses (in the layer) of axons that miss some ``x`` neurons.

    For neuron set ``P`` and axon set ``R`` without synapses between them, with ``alpha`` and
    ``beta`` their shares of all synapses, ``alpha * beta <= s^2 (1 - alpha)(1 - beta)``,
    ``s`` = :attr:`LayerStats.sigma2`; ``alpha`` is at least the ``x`` smallest fan-ins' share.
    """
    s2 = float(stats.sigma2) ** 2  # type: ignore[arg-type]
    x = np.clip(np.asarray(x), 1, stats.neurons)
    alpha = np.cumsum(np.sort(stats.fan_in))[x - 1] / max(stats.synapses, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(alpha > 0, s2 * (1 - alpha) / np.maximum(alpha, 1e-300), np.inf)
        beta = np.where(np.isinf(rho), 1.0, rho / (1 + rho))
    return beta * stats.synapses


def prefix_volumes(stats: LayerStats, n: int, mu: np.ndarray) -> np.ndarray:
    """``V[x - 1]`` >= layer synapses of the axons that miss some ``x`` neurons (x = 1..n-1)."""
    x = np.arange(1, n)
    spare = stats.neurons - stats.fan_out
    order = np.argsort(spare)
    vol_spare = np.concatenate([np.cumsum(stats.fan_out[order][::-1])[::-1], [0]])
    volume = vol_spare[np.searchsorted(spare[order], x, side="left")].astype(np.float64)
    top = np.concatenate([[0], np.cumsum(np.sort(stats.fan_out)[::-1])])
    volume = np.minimum(volume, top[np.minimum(mu.astype(np.int64), len(top) - 1)])
    if stats.sigma2 is not None:
        volume = np.minimum(volume, _eml_volume(stats, x))
    return volume


def _split_tails(per_side: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``min over x in 1..t`` of ``per_side(x) + per_side(t + 1 - x)``, for each ``t``.

    ``per_side[x - 1]`` bounds what misses the first (or last) ``x`` neurons of a core, for x =
    1..n-1 (nothing misses ``n`` or more). Whatever misses ``t`` end neurons in all misses the
    first ``x`` or the last ``t + 1 - x``, for every ``x``.
    """
    n = len(per_side) + 1
    padded = np.concatenate([per_side, [0.0]])  # per_side(n) = 0
    out = np.empty(len(t))
    for i, tt in enumerate(np.asarray(t, np.int64)):
        x = np.arange(1, tt + 1)
        out[i] = (padded[np.minimum(x, n) - 1] + padded[np.minimum(tt + 1 - x, n) - 1]).min()
    return out


def z_tails(stats: LayerStats, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds ``zeta`` and bounds ``R``: at most ``R`` axons miss ``zeta`` or more of a core.

    ``r`` axons each missing at least ``zeta`` of the core's ``n`` neurons: with ``c_j`` the
    number of them that miss neuron ``j``, ``sum_j c_j = s >= r zeta`` and ``sum_j c_j^2 = s +
    sum over ordered pairs of the neurons both miss <= s + axon_top[r - 1]``. Cauchy-Schwarz,
    ``s^2 <= n sum_j c_j^2``, and ``s^2 - n s`` growing for ``s >= n / 2`` give: ``r zeta < n /
    2`` or ``(r zeta)^2 - n r zeta <= n axon_top[r - 1]``. If ``r`` axons are impossible, so are
    more, so ``R`` is one less than the first impossible ``r``.
    """
    top = stats.axon_top
    if top is None or n < 2:
        return np.zeros(0, np.int64), np.zeros(0)
    r = np.arange(1, len(top) + 1, dtype=np.float64)
    zeta = np.unique(np.linspace(1, n, min(32, n)).round().astype(np.int64))
    z = zeta[:, None].astype(np.float64)
    s = r[None, :] * z  # the least total misses of r such axons
    possible = (s < n / 2) | (s * s - n * s <= n * top[None, :])
    # possible r are closed downwards: R = (first impossible r) - 1
    first_bad = np.where(possible.all(axis=1), len(top), np.argmin(possible, axis=1))
    bound = first_bad.astype(np.float64)
    keep = bound < stats.axons
    return zeta[keep], bound[keep]


def pair_sum_bound(stats: LayerStats, n: int) -> float:
    """Upper bound on ``sum_a z_a^2`` for a core of ``n`` neurons, ``z_a`` = neurons it misses.

    Over all the layer's axons (``z = n`` for those the core does not use), ``sum_a z_a^2 =
    sum over (j, j') in the core of |axons both miss|``: the diagonal gives
    each neuron's non-target count, the rest the pair table's ``n - 1`` largest entries per row
    at most. Without the table: ``n`` times the ``n`` largest non-target counts.
    """
    non = (stats.axons - stats.fan_in).astype(np.float64)
    if stats.pair_rows is None:
        return float(n) * float(np.sort(non)[::-1][:n].sum())
    rows = non + stats.pair_rows[:, : n - 1].sum(axis=1, dtype=np.float64)
    return float(np.sort(rows)[::-1][:n].sum())


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
        self.tails = np.minimum(_split_tails(mu, self.e[1:]), stats.axons)
        self.volume_tails = np.minimum(_split_tails(volumes, self.e[1:]), stats.synapses)
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
