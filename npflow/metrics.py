"""Sample-quality metrics: how far generated points are from data points.

* ``wasserstein2``: exact 2-Wasserstein distance between two equal-size point clouds.
* ``mmd_rbf``: unbiased squared maximum mean discrepancy with Gaussian (RBF) kernels.
* ``energy_distance``: the energy distance of Szekely and Rizzo.
* ``negative_log_likelihood``: mean ``-log p`` in nats, from log-densities.

Memory: the first three build the ``(n, m)`` matrix of pairwise distances, ``8 n m`` bytes
(800 MB at n = m = 10,000), and ``wasserstein2`` solves an ``(n, n)`` assignment on it.  They are
meant for evaluation sets up to about 10,000 points; subsample beyond that.

References
----------
Gretton, Borgwardt, Rasch, Schoelkopf, Smola. A kernel two-sample test. JMLR 13, 2012.
Szekely, Rizzo. Energy statistics: a class of statistics based on distances. Journal of
Statistical Planning and Inference 143(8), 2013.
Peyre, Cuturi. Computational optimal transport. Foundations and Trends in ML 11, 2019.
"""
import numbers

import numpy as np

from npflow import _checks
from npflow.couplings import solve_assignment, squared_distances

__all__ = ["energy_distance", "mmd_rbf", "negative_log_likelihood", "wasserstein2"]


def wasserstein2(a, b):
    """Exact 2-Wasserstein distance between two uniform point clouds of equal size.

    ``W2(a, b) = sqrt(min_perm (1/n) sum_i ||a_i - b_perm(i)||^2)``: for two uniform empirical
    measures with the same number of atoms an optimal plan is a permutation (Birkhoff), so the
    OT problem is the assignment problem, solved exactly by ``solve_assignment``
    (Peyre and Cuturi 2019, Prop. 2.1).

    Parameters
    ----------
    a : array_like, shape (n, d)
    b : array_like, shape (n, d)

    Returns
    -------
    float
    """
    a, b = _two_samples(a, b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"b must hold as many points as a ({a.shape[0]}), got {b.shape[0]}")
    cost = squared_distances(a, b)  # (n, n)
    perm = solve_assignment(cost)
    return float(np.sqrt(cost[np.arange(a.shape[0]), perm].mean()))


def mmd_rbf(a, b, bandwidth=None):
    """Unbiased estimate of the squared MMD with a Gaussian kernel (Gretton et al. 2012, eq. 3).

    ``MMD_u^2 = 1/(n(n-1)) sum_{i!=j} k(a_i, a_j) + 1/(m(m-1)) sum_{i!=j} k(b_i, b_j)
    - 2/(nm) sum_{i,j} k(a_i, b_j)`` with ``k(x, y) = sum_s exp(-||x - y||^2 / (2 s^2))`` over
    the bandwidths ``s``.  Being unbiased, it is ~0 and can be slightly negative when both samples
    come from one distribution.

    Parameters
    ----------
    a : array_like, shape (n, d)
        ``n >= 2``.
    b : array_like, shape (m, d)
        ``m >= 2``.
    bandwidth : float or sequence of float, optional
        Kernel widths ``s > 0``; several give a sum of kernels, which is sensitive to several
        length scales at once.  ``None`` uses the median heuristic (as in Gretton et al.
        2012): one kernel whose ``s`` is the median distance between distinct points of the
        pooled sample (1.0 if all points coincide).  The heuristic depends on the samples, so
        compare models with a fixed ``bandwidth``.

    Returns
    -------
    float
    """
    a, b = _two_samples(a, b)
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"a and b must hold >= 2 points each for the unbiased MMD, got {n}, {m}")
    d_aa, d_bb, d_ab = squared_distances(a, a), squared_distances(b, b), squared_distances(a, b)
    widths = _median_bandwidth(d_aa, d_bb, d_ab) if bandwidth is None else _bandwidths(bandwidth)
    k_aa, k_bb, k_ab = (sum(np.exp(-d / (2.0 * s * s)) for s in widths) for d in (d_aa, d_bb, d_ab))
    within_a = (k_aa.sum() - np.trace(k_aa)) / (n * (n - 1))  # i != j
    within_b = (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within_a + within_b - 2.0 * k_ab.mean())


def energy_distance(a, b):
    """Energy distance between two point clouds (Szekely and Rizzo 2013), V-statistic form.

    ``E(a, b) = 2/(nm) sum_{i,j} ||a_i - b_j|| - 1/n^2 sum_{i,j} ||a_i - a_j||
    - 1/m^2 sum_{i,j} ||b_i - b_j||``.  This V-statistic is the energy distance between the two
    empirical measures: it is >= 0, symmetric, and 0 exactly when the samples are equal as
    multisets.  (SciPy's one-dimensional ``scipy.stats.energy_distance`` returns its square
    root.)  Distances come from ``squared_distances``, so pairs closer than ~1e-8 times the
    coordinates' scale carry an absolute error of that order.

    Parameters
    ----------
    a : array_like, shape (n, d)
    b : array_like, shape (m, d)

    Returns
    -------
    float
    """
    a, b = _two_samples(a, b)
    d_aa, d_bb, d_ab = (np.sqrt(squared_distances(p, q)) for p, q in ((a, a), (b, b), (a, b)))
    return float(2.0 * d_ab.mean() - d_aa.mean() - d_bb.mean())


def negative_log_likelihood(log_prob):
    """Mean negative log-likelihood in nats: ``-(1/n) sum_i log p(x_i)``.

    Parameters
    ----------
    log_prob : array_like, shape (n,)
        Log-densities ``log p(x_i)`` (natural log), e.g. from a flow's change of variables.

    Returns
    -------
    float
    """
    log_prob = np.asarray(log_prob)
    if not np.issubdtype(log_prob.dtype, np.number) or np.iscomplexobj(log_prob):
        raise TypeError(f"log_prob must be a real numeric array, got dtype {log_prob.dtype}")
    if log_prob.ndim != 1 or log_prob.size == 0:
        raise ValueError(f"log_prob must have shape (n,) with n >= 1, got shape {log_prob.shape}")
    if not np.all(np.isfinite(log_prob)):
        raise ValueError("log_prob must be finite, found NaN or infinity")
    return float(-np.mean(log_prob, dtype=np.float64))


def _two_samples(a, b):
    a = _checks.points(a, "a", dtype=np.float64)
    b = _checks.points(b, "b", dim=a.shape[1], dtype=np.float64)
    return a, b


def _bandwidths(bandwidth):
    widths = [bandwidth] if isinstance(bandwidth, numbers.Real) else list(bandwidth)
    if not widths:
        raise ValueError("bandwidth must be a positive number or a non-empty sequence of them")
    return [_checks.finite_float(s, "bandwidth", low=0.0, low_open=True) for s in widths]


def _median_bandwidth(d_aa, d_bb, d_ab):
    """Median distance between distinct points of the pooled sample (the median heuristic)."""
    pooled = np.concatenate([
        d_aa[np.triu_indices_from(d_aa, k=1)],
        d_bb[np.triu_indices_from(d_bb, k=1)],
        d_ab.ravel(),
    ])
    positive = pooled[pooled > 0.0]
    return [float(np.median(np.sqrt(positive)))] if positive.size else [1.0]
