"""Sample-quality metrics: how far generated points are from data points.

* ``wasserstein2``: exact 2-Wasserstein distance between two equal-size point clouds.
* ``mmd_rbf``: unbiased squared maximum mean discrepancy with Gaussian (RBF) kernels.
* ``energy_distance``: unbiased estimate of the energy distance of Szekely and Rizzo.
* ``negative_log_likelihood``: mean ``-log p`` in nats, from log-densities.
* ``path_energy`` and ``normalized_path_energy``: the kinetic energy of a flow's trajectories and
  its relative excess over ``W2^2`` (Tong et al. 2024), i.e. how far the flow is from dynamic OT.
* ``frechet_distance``: the Frechet distance between Gaussians fitted to two feature sets (FID).
* ``nearest_distances``: each point's distance to its nearest reference point (memorization).
* ``straightness``: how far a flow's velocity strays from the straight line between each
  trajectory's endpoints (Liu et al. 2023); 0 for straight, constant-speed paths.

``mmd_rbf`` and ``energy_distance`` are unbiased U-statistics: for two samples of one law their
mean is 0 (single values scatter around 0 and can be negative), so a model's value is not
inflated by the finite sample size.

Memory: the first three build the ``(n, m)`` matrix of pairwise distances, ``8 n m`` bytes
(800 MB at n = m = 10,000), and ``wasserstein2`` solves an ``(n, n)`` assignment on it.  They are
meant for evaluation sets up to about 10,000 points; subsample beyond that.
:func:`pairwise_bytes` is their peak memory, to check before computing them.

References
----------
Gretton, Borgwardt, Rasch, Schoelkopf, Smola. A kernel two-sample test. JMLR 13, 2012.
Szekely, Rizzo. Energy statistics: a class of statistics based on distances. Journal of
Statistical Planning and Inference 143(8), 2013.
Peyre, Cuturi. Computational optimal transport. Foundations and Trends in ML 11, 2019.
Benamou, Brenier. A computational fluid mechanics solution to the Monge-Kantorovich mass transfer
problem. Numerische Mathematik 84, 2000.
Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio. Improving and generalizing
flow-based generative models with minibatch optimal transport. TMLR 2024 (arXiv 2302.00482).
"""
import numbers

import numpy as np

from npflow import _checks, solvers
from npflow.couplings import solve_assignment, squared_distances

__all__ = ["energy_distance", "frechet_distance", "median_distance", "mmd_rbf",
           "nearest_distances", "negative_log_likelihood", "normalized_path_energy",
           "pairwise_bytes", "path_energy", "straightness", "wasserstein2"]

# Peak bytes per pair of points of the pairwise metrics on two samples of n points each: the
# tracemalloc peak over n^2 at n = 1000 and 2000, d = 2 and 10 (checked by tests/test_metrics.py).
# mmd_rbf with the median heuristic (its default) pools the distances to find the median; with a
# given bandwidth it holds seven (n, n) float64 arrays at once, 56 n^2.
_PEAK_PER_PAIR = {"median_distance": 20, "wasserstein2": 24, "energy_distance": 32, "mmd_rbf": 88}


def pairwise_bytes(n):
    """Peak memory in bytes of :func:`wasserstein2`, :func:`mmd_rbf`, :func:`energy_distance`
    and :func:`median_distance` on samples of ``n`` points each, one at a time: ``88 n^2``
    (mmd_rbf's with the median heuristic), about 8.8 GB at n = 10,000.

    Parameters
    ----------
    n : int
        Points per sample.

    Returns
    -------
    int
    """
    return max(_PEAK_PER_PAIR.values()) * _checks.positive_int(n, "n") ** 2


def wasserstein2(a, b):
    """Exact 2-Wasserstein distance between two uniform point clouds of equal size.

    ``W2(a, b) = sqrt(min_perm (1/n) sum_i ||a_i - b_perm(i)||^2)``: for two uniform empirical
    measures with the same number of atoms an optimal plan is a permutation (Birkhoff), so the
    OT problem is the assignment problem, solved exactly by ``solve_assignment``
    (Peyre and Cuturi 2019, Prop. 2.1).

    Accuracy: the assignment is solved on ``squared_distances``, whose expansion
    ``|a|^2 + |b|^2 - 2 <a, b>`` carries an absolute error of about ``1e-16 (|a_i|^2 + |b_j|^2)``;
    the returned cost is then recomputed from the differences ``a_i - b_perm(i)`` of the matched
    pairs, so it keeps full relative precision even for nearly coincident clouds.

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
    perm = solve_assignment(squared_distances(a, b))  # (n,) from the (n, n) cost
    diff = a - b[perm]  # (n, d) matched pairs, exact differences
    return float(np.sqrt(np.mean(np.sum(diff * diff, axis=1))))


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
    """Unbiased estimate of the energy distance (Szekely and Rizzo 2013), the U-statistic.

    The energy distance of two laws is ``E(P, Q) = 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||``
    (X, X' ~ P and Y, Y' ~ Q independent); it is >= 0 and 0 only when P = Q. Its estimate::

        E_u(a, b) = 2/(nm) sum_{i,j} ||a_i - b_j|| - 1/(n(n-1)) sum_{i!=j} ||a_i - a_j||
                    - 1/(m(m-1)) sum_{i!=j} ||b_i - b_j||

    averages each within-sample term over distinct pairs only, so ``E[E_u] = E(P, Q)`` exactly:
    ~0 (possibly negative) for two samples of one law. The V-statistic (``1/n^2`` and ``1/m^2``
    over all pairs, the energy distance between the empirical measures, which SciPy's 1-D
    ``scipy.stats.energy_distance`` returns the square root of) exceeds it by
    ``S_aa / (n^2 (n-1)) + S_bb / (m^2 (m-1))`` with ``S_aa = sum_{i!=j} ||a_i - a_j||``, a bias
    of about ``E||X - X'|| / n + E||Y - Y'|| / m``. Measured on 10 pairs of independent
    checkerboard samples of 2000 points: V-statistic 0.0012 to 0.0063, this estimate -0.0029 to
    0.0021 (the bias, 0.0042, is as large as a good model's value). Distances come from
    ``squared_distances``, so pairs closer than ~1e-8 times the coordinates' scale carry an
    absolute error of that order.

    Parameters
    ----------
    a : array_like, shape (n, d)
        ``n >= 2``.
    b : array_like, shape (m, d)
        ``m >= 2``.

    Returns
    -------
    float
    """
    a, b = _two_samples(a, b)
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"a and b must hold >= 2 points each for the unbiased energy distance, "
                         f"got {n}, {m}")
    d_aa, d_bb, d_ab = (np.sqrt(squared_distances(p, q)) for p, q in ((a, a), (b, b), (a, b)))
    np.fill_diagonal(d_aa, 0.0)  # i = j is left out (and the expansion's rounding with it)
    np.fill_diagonal(d_bb, 0.0)
    within_a = d_aa.sum() / (n * (n - 1))  # i != j
    within_b = d_bb.sum() / (m * (m - 1))
    return float(2.0 * d_ab.mean() - within_a - within_b)


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


def path_energy(velocity, x0, method="dopri5", steps=None, rtol=solvers.RTOL, atol=solvers.ATOL):
    """Path energy of a flow: ``PE(v) = E_{x(0) ~ q0} int_0^1 ||v(x(t), t)||^2 dt``.

    ``x(t)`` solves ``dx/dt = v(x, t)`` from ``x(0) = x0``, so this is the energy the *model*
    spends, along its own trajectories (Tong et al. 2024, Sec. 5.1, the PE inside the normalized
    path energy). The integral rides along with the ODE: the augmented state ``[x, e]`` of shape
    ``(n, d + 1)`` obeys ``dx/dt = v(x, t)``, ``de/dt = ||v(x, t)||^2``, ``e(0) = 0``, and
    ``PE = mean_i e_i(1)``. By Benamou and Brenier (2000, Prop. 1.1) ``PE >= W2^2(q0, p1)`` for
    ``p1`` the law of ``x(1)``, with equality exactly for the dynamic OT flow (straight lines at
    constant speed, paired by the OT plan).

    Parameters
    ----------
    velocity : callable
        ``velocity(x, t) -> v`` with x of shape (n, d) and t a float, e.g. an
        :class:`~npflow.nn.MLP`.
    x0 : array_like, shape (n, d)
        Starting points drawn from the source q0.
    method, steps, rtol, atol
        The ODE solver, as in :func:`npflow.solvers.solve`: ``steps=None`` is
        ``solvers.DEFAULT_STEPS`` for the fixed-step methods and must stay None for dopri5 (the
        rule in :mod:`npflow.solvers`' docstring).

    Returns
    -------
    float
    """
    x0 = _checks.points(x0, "x0", dtype=np.float64)
    if not callable(velocity):
        raise TypeError("velocity must be callable as velocity(x, t), "
                        f"got {type(velocity).__name__}")
    d = x0.shape[1]

    def augmented(z, t):
        v = np.asarray(velocity(z[:, :d], t), dtype=np.float64)  # (n, d)
        return np.concatenate([v, np.sum(v * v, axis=1, keepdims=True)], axis=1)  # (n, d + 1)

    z0 = np.concatenate([x0, np.zeros((x0.shape[0], 1))], axis=1)  # (n, d + 1)
    z1 = solvers.solve(augmented, z0, method=method, steps=steps, rtol=rtol, atol=atol).x
    return float(np.mean(z1[:, d]))


def normalized_path_energy(energy, w2_squared):
    """Normalized path energy ``NPE = |PE(v) - W2^2(q0, q1)| / W2^2(q0, q1)`` (Tong et al. 2024).

    The relative gap between the energy a flow spends (:func:`path_energy`) and the least energy
    any flow from q0 to q1 can spend, ``W2^2(q0, q1)`` (Benamou and Brenier 2000): 0 for the
    dynamic optimal transport, larger for curved or needlessly long paths.

    Parameters
    ----------
    energy : float
        ``PE(v) >= 0``, e.g. from :func:`path_energy`.
    w2_squared : float
        ``W2^2(q0, q1) > 0``, e.g. ``wasserstein2(x0, x1) ** 2`` on held-out samples.

    Returns
    -------
    float
    """
    energy = _checks.finite_float(energy, "energy", low=0)
    w2_squared = _checks.finite_float(w2_squared, "w2_squared", low=0, low_open=True)
    return abs(energy - w2_squared) / w2_squared


def straightness(model, trajectory, times):
    """Straightness ``S = mean_i int_0^1 ||v(x_i(t), t) - (x_i(1) - x_i(0))||^2 dt`` of a flow.

    The sample version of ``S(Z) = int_0^1 E ||(Z_1 - Z_0) - dZ_t/dt||^2 dt`` (Liu et al. 2023,
    Sec. 3.2): ``dZ_t/dt = v(Z_t, t)`` along the ODE's trajectories, and ``S = 0`` exactly when
    every path is a straight line at constant speed, which a single Euler step integrates
    exactly. The integral uses the trapezoid rule on the trajectory's own time grid, and the
    endpoints are the trajectory's first and last states.

    Parameters
    ----------
    model : callable ``model(x, t) -> v`` with x (n, d) and t a float, e.g. an MLP.
    trajectory : array_like, shape (m + 1, n, d)
        States ``x_i(t_k)`` on the grid, e.g. ``sampling.sample_flow(..., return_trajectory=True)``.
    times : array_like, shape (m + 1,)
        Increasing times ``t_0 < ... < t_m`` of the grid (``m >= 1``).

    Returns
    -------
    float
    """
    trajectory = np.asarray(trajectory, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if trajectory.ndim != 3 or trajectory.shape[0] < 2 or trajectory.shape[1] == 0:
        raise ValueError(f"trajectory must have shape (m + 1, n, d) with m >= 1 and n >= 1, got "
                         f"shape {trajectory.shape}")
    if times.shape != trajectory.shape[:1] or not np.all(np.diff(times) > 0):
        raise ValueError(f"times must be {trajectory.shape[0]} increasing values, one per state "
                         f"of trajectory, got shape {times.shape}")
    if not (np.all(np.isfinite(trajectory)) and np.all(np.isfinite(times))):
        raise ValueError("trajectory and times must be finite, found NaN or infinity")
    chord = trajectory[-1] - trajectory[0]  # (n, d) x(1) - x(0)
    sq = np.stack([np.sum((np.asarray(model(x, float(t)), dtype=np.float64) - chord) ** 2, axis=1)
                   for x, t in zip(trajectory, times)])  # (m + 1, n)
    integral = np.sum(0.5 * (sq[1:] + sq[:-1]) * np.diff(times)[:, None], axis=0)  # (n,)
    return float(np.mean(integral))


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    ``FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2})``, with ``mu`` the
    sample means and ``S`` the sample covariances (``1/(n-1)``): the squared 2-Wasserstein
    distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)`` (Dowson and Landau 1982), used on
    network features as the Frechet Inception Distance (Heusel et al. 2017). Both square
    roots come from symmetric eigendecompositions (``np.linalg.eigh``) with the eigenvalues
    clipped at 0, so a rank-deficient covariance (fewer points than features) is fine.
    ``(S_a^{1/2} S_b S_a^{1/2})^{1/2}`` has the trace of ``(S_a S_b)^{1/2}``, so FD is symmetric.
    Rounding can leave a value of about ``-1e-15 tr(S)`` where the exact one is 0.

    Parameters
    ----------
    a : array_like, shape (n, k)
        Features of the first sample, ``n >= 2``.
    b : array_like, shape (m, k)
        Features of the second sample, ``m >= 2``.

    Returns
    -------
    float

    References
    ----------
    Dowson, Landau. The Frechet distance between multivariate normal distributions. Journal of
    Multivariate Analysis 12(3), 1982.
    Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter. GANs trained by a two time-scale update
    rule converge to a local Nash equilibrium. NeurIPS 2017.
    """
    a, b = _two_samples(a, b)
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"a and b must hold >= 2 points each for their covariances, got "
                         f"{a.shape[0]}, {b.shape[0]}")
    mean_gap = a.mean(axis=0) - b.mean(axis=0)  # (k,)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))  # (k, k); cov of one feature is a 0-d array
    s_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(s_a)
    middle = root_a @ s_b @ root_a  # (k, k), symmetric PSD
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)))
    return float(mean_gap @ mean_gap + np.trace(s_a) + np.trace(s_b) - 2.0 * cross)


def _psd_sqrt(s):
    """Symmetric square root ``V diag(sqrt(max(w, 0))) V^T`` of a symmetric matrix (k, k)."""
    w, V = np.linalg.eigh(s)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def nearest_distances(x, reference, chunk_size=4096):
    """Euclidean distance from each row of x to its nearest row of ``reference``.

    ``d_i = min_j ||x_i - r_j||``, e.g. how close each generated sample is to its nearest
    training example (a copy has distance 0). The nearest row is found on ``squared_distances``
    of ``chunk_size`` rows of x at a time, so memory stays at ``8 chunk_size m`` bytes; its
    distance is then recomputed from the difference ``x_i - r_j`` itself, so a copy gives
    exactly 0 (the expansion ``|x|^2 + |r|^2 - 2 <x, r>`` alone would give ~1e-8 |x|).

    Parameters
    ----------
    x : array_like, shape (n, d)
    reference : array_like, shape (m, d)
    chunk_size : int
        Rows of x compared with the whole reference at once.

    Returns
    -------
    ndarray, shape (n,)
    """
    x = _checks.points(x, "x", dtype=np.float64)
    reference = _checks.points(reference, "reference", dim=x.shape[1], dtype=np.float64)
    chunk_size = _checks.positive_int(chunk_size, "chunk_size")
    nearest = np.empty(x.shape[0], dtype=np.int64)  # (n,) index of the nearest reference row
    for start in range(0, x.shape[0], chunk_size):
        part = x[start:start + chunk_size]
        nearest[start:start + len(part)] = np.argmin(squared_distances(part, reference), axis=1)
    return np.linalg.norm(x - reference[nearest], axis=1)


def median_distance(x):
    """Median Euclidean distance between the distinct points of ``x`` (n, d), ``n >= 2``.

    1.0 when all points coincide.

    The median heuristic for the MMD bandwidth (Gretton et al. 2012) computed on one sample, so
    that a model's MMD and its data-vs-data floor use the same kernel.
    """
    x = _checks.points(x, "x", dtype=np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold >= 2 points for a median distance, got {x.shape[0]}")
    sq = squared_distances(x, x)[np.triu_indices(x.shape[0], k=1)]
    positive = sq[sq > 0.0]
    return float(np.median(np.sqrt(positive))) if positive.size else 1.0
