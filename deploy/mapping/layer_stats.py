"""What the lower bounds know about one layer's synapse pattern, independent of a placement.

Fan-ins and fan-outs, the neuron-pair table (how many inputs two neurons share) and the second
singular value of the normalised synapse matrix (:func:`layer_stats`), and the per-core-size
bounds derived from them (:func:`miss_count`, :func:`prefix_volumes`, :func:`z_tails`,
:func:`pair_sum_bound`) that :class:`gradr_deploy.mapping.lower_bound.CoreProblem` relaxes.
The argument is in ``docs/mapping.md`` ("Lower bound").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


def split_tails(per_side: np.ndarray, t: np.ndarray) -> np.ndarray:
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
