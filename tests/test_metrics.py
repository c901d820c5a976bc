"""Tests for npflow.metrics: W2 against closed forms, brute force and SciPy; MMD^2 and the energy
distance against direct double-loop formulas and their defining properties; input checks."""
import itertools
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from npflow import metrics, solvers

seeds = st.integers(0, 2 ** 32 - 1)


def cloud(seed, n, d, shift=0.0, scale=1.0):
    return shift + scale * np.random.default_rng(seed).standard_normal((n, d))


def dist(p, q):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(p, q)))


# --- wasserstein2 --------------------------------------------------------------------------------

@given(seed=seeds, n=st.integers(1, 50), d=st.integers(1, 5))
def test_w2_of_a_set_to_itself_and_to_a_shuffle_is_zero(seed, n, d):
    a = cloud(seed, n, d, scale=3.0)
    assert metrics.wasserstein2(a, a) == pytest.approx(0.0, abs=1e-6)
    shuffled = a[np.random.default_rng(seed).permutation(n)]
    assert metrics.wasserstein2(a, shuffled) == pytest.approx(0.0, abs=1e-6)


@given(seed=seeds, n=st.integers(1, 50), d=st.integers(1, 5))
def test_w2_to_a_translate_is_the_shift_length(seed, n, d):
    """sum_i ||a_i - a_perm(i) - c||^2 = sum_i ||a_i - a_perm(i)||^2 + n |c|^2 >= n |c|^2."""
    rng = np.random.default_rng(seed)
    a = cloud(seed, n, d)
    c = rng.normal(0.0, 3.0, d)
    assert metrics.wasserstein2(a, a + c) == pytest.approx(np.linalg.norm(c), rel=1e-9, abs=1e-6)


@given(seed=seeds, n=st.integers(1, 6), d=st.integers(1, 3))
@example(seed=2388786, n=1, d=1)  # two points 4.7e-5 apart: the expansion lost 8 digits here
def test_w2_matches_brute_force(seed, n, d):
    a, b = cloud(seed, n, d), cloud(seed + 1, n, d, shift=1.0)
    best = min(
        sum(dist(a[i], b[p[i]]) ** 2 for i in range(n)) / n
        for p in itertools.permutations(range(n))
    )
    assert metrics.wasserstein2(a, b) == pytest.approx(math.sqrt(best), rel=1e-10)
    assert metrics.wasserstein2(b, a) == pytest.approx(math.sqrt(best), rel=1e-10)


@given(seed=seeds, n=st.integers(2, 150), d=st.integers(1, 4))
def test_w2_matches_scipy(seed, n, d):
    optimize = pytest.importorskip("scipy.optimize")
    a, b = cloud(seed, n, d), cloud(seed + 1, n, d, shift=2.0, scale=0.5)
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    rows, cols = optimize.linear_sum_assignment(cost)
    assert metrics.wasserstein2(a, b) == pytest.approx(math.sqrt(cost[rows, cols].mean()), rel=1e-10)


@pytest.mark.parametrize("offset", [0.0, 1e3, -1e6])
def test_w2_of_close_points_far_from_the_origin_is_accurate(offset):
    """Points 1e-6 apart at |x| up to 1e6: |a|^2 + |b|^2 - 2ab cancels all but a few digits
    (an absolute error ~ 1e-16 |x|^2, up to 1e-4, against a true cost of 1e-12); the matched
    differences do not."""
    a = offset + np.array([[0.0, 1.0], [5.0, -2.0], [-3.0, 4.0]])
    b = a[::-1] + np.array([1e-6, 0.0])
    stored = b[::-1] - a  # the shift as stored (exact: Sterbenz), ~1e-6 up to rounding of b
    assert np.all(np.abs(stored[:, 0] - 1e-6) < 1e-9)
    expected = np.sqrt(np.mean(np.sum(stored ** 2, axis=1)))
    assert metrics.wasserstein2(a, b) == pytest.approx(expected, rel=1e-12)


def test_w2_one_dimensional_closed_form():
    """In 1-D the optimal pairing sorts both samples (monotone rearrangement)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 1)), rng.exponential(size=(40, 1))
    expected = math.sqrt(np.mean((np.sort(a[:, 0]) - np.sort(b[:, 0])) ** 2))
    assert metrics.wasserstein2(a, b) == pytest.approx(expected, rel=1e-10)


def test_w2_rejects_unequal_sizes():
    with pytest.raises(ValueError, match="b must hold as many points as a"):
        metrics.wasserstein2(np.zeros((3, 2)), np.zeros((4, 2)))


# --- mmd_rbf -------------------------------------------------------------------------------------

def mmd_loops(a, b, widths):
    """Gretton et al. (2012) eq. 3, written out with explicit loops."""
    def k(x, y):
        return sum(math.exp(-dist(x, y) ** 2 / (2 * s * s)) for s in widths)
    n, m = len(a), len(b)
    xx = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def median_loops(a, b):
    pooled = np.concatenate([a, b])
    ds = [dist(pooled[i], pooled[j]) for i in range(len(pooled)) for j in range(i + 1, len(pooled))]
    return float(np.median([x for x in ds if x > 0]))


@given(seed=seeds, n=st.integers(2, 9), m=st.integers(2, 9), d=st.integers(1, 3),
       widths=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=3))
def test_mmd_matches_double_loop(seed, n, m, d, widths):
    a, b = cloud(seed, n, d), cloud(seed + 1, m, d, shift=0.5)
    expected = mmd_loops(a, b, widths)
    assert metrics.mmd_rbf(a, b, bandwidth=widths) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if len(widths) == 1:
        single = metrics.mmd_rbf(a, b, bandwidth=widths[0])
        assert single == pytest.approx(expected, rel=1e-9, abs=1e-12)
    median = median_loops(a, b)
    assert metrics.mmd_rbf(a, b) == pytest.approx(mmd_loops(a, b, [median]), rel=1e-9, abs=1e-12)
    assert metrics.mmd_rbf(b, a) == pytest.approx(metrics.mmd_rbf(a, b), rel=1e-12, abs=1e-15)


def test_mmd_same_distribution_near_zero_different_clearly_positive():
    rng = np.random.default_rng(0)
    values = [metrics.mmd_rbf(rng.standard_normal((300, 2)), rng.standard_normal((300, 2)), 1.0)
              for _ in range(20)]
    # Unbiased: values scatter around 0 (some negative); the mean is within a few std errors.
    assert min(values) < 0.0 < max(values)
    assert abs(np.mean(values)) < 4 * np.std(values) / math.sqrt(len(values)) + 1e-4
    shifted = metrics.mmd_rbf(rng.standard_normal((300, 2)), 1.0 + rng.standard_normal((300, 2)), 1.0)
    assert shifted > 20 * max(abs(v) for v in values)


def test_mmd_closed_form_for_two_point_samples():
    """a = {0, 0}, b = {t, t} in 1-D, one width s: each within-sample mean is k(0) = 1 and the
    cross mean is exp(-t^2 / (2 s^2)), so MMD^2 = 2 - 2 exp(-t^2 / (2 s^2))."""
    t, s = 1.3, 0.7
    a, b = np.zeros((2, 1)), np.full((2, 1), t)
    expected = 2.0 - 2.0 * math.exp(-t * t / (2 * s * s))
    assert metrics.mmd_rbf(a, b, bandwidth=s) == pytest.approx(expected, rel=1e-12)
    assert metrics.mmd_rbf(a, a) == 0.0  # all points coincide: width 1.0, MMD exactly 0


@pytest.mark.parametrize("bandwidth, error", [
    (0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), ([], ValueError),
    ([1.0, 0.0], ValueError), ("wide", TypeError),
])
def test_mmd_rejects_bad_bandwidth(bandwidth, error):
    with pytest.raises(error, match="bandwidth"):
        metrics.mmd_rbf(np.zeros((3, 1)), np.ones((3, 1)), bandwidth=bandwidth)


def test_mmd_needs_two_points_per_sample():
    with pytest.raises(ValueError, match="at least|>= 2"):
        metrics.mmd_rbf(np.zeros((1, 2)), np.zeros((5, 2)))


# --- energy_distance -----------------------------------------------------------------------------

def energy_loops(a, b, unbiased=True):
    """Szekely and Rizzo (2013) written out: within-sample sums over i != j divided by n (n - 1)
    (the U-statistic), or over all pairs divided by n^2 (the V-statistic)."""
    n, m = len(a), len(b)
    ab = sum(dist(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    aa = sum(dist(a[i], a[j]) for i in range(n) for j in range(n) if i != j)
    bb = sum(dist(b[i], b[j]) for i in range(m) for j in range(m) if i != j)
    if unbiased:
        return 2 * ab - aa / (n * (n - 1)) - bb / (m * (m - 1))
    return 2 * ab - aa / n ** 2 - bb / m ** 2


@given(seed=seeds, n=st.integers(2, 10), m=st.integers(2, 10), d=st.integers(1, 4))
def test_energy_matches_double_loop_and_is_symmetric(seed, n, m, d):
    a, b = cloud(seed, n, d), cloud(seed + 1, m, d, shift=0.3, scale=2.0)
    expected = energy_loops(a, b)
    assert metrics.energy_distance(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-7)
    assert metrics.energy_distance(b, a) == pytest.approx(metrics.energy_distance(a, b), abs=1e-12)


@given(seed=seeds, n=st.integers(2, 40), d=st.integers(1, 4))
def test_energy_of_a_set_with_itself_is_minus_the_v_statistic_correction(seed, n, d):
    """E_u(a, a) = 2 S / n^2 - 2 S / (n (n - 1)) = -2 S / (n^2 (n - 1)), S = sum_{i!=j} |a_i - a_j|:
    the V-statistic (0 here) minus its bias; any order of the points gives the same."""
    a = cloud(seed, n, d)
    s = sum(dist(a[i], a[j]) for i in range(n) for j in range(n) if i != j)
    expected = -2 * s / (n ** 2 * (n - 1))
    assert metrics.energy_distance(a, a) == pytest.approx(expected, rel=1e-7, abs=1e-7)
    shuffled = a[np.random.default_rng(seed).permutation(n)]
    assert metrics.energy_distance(a, shuffled) == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_energy_is_unbiased_where_the_v_statistic_is_not():
    """Over many pairs of independent samples of one law the U-statistic averages to ~0 (within
    4 standard errors), while the V-statistic's mean is its bias E|X - X'| (1/n + 1/m) > 0
    (for N(0, I_2), E|X - X'| = sqrt(pi) = 1.77)."""
    rng = np.random.default_rng(0)
    n, m, pairs = 40, 30, 300
    u, v = [], []
    for _ in range(pairs):
        a, b = rng.standard_normal((n, 2)), rng.standard_normal((m, 2))
        u.append(metrics.energy_distance(a, b))
        d_aa = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
        d_bb = np.sqrt(((b[:, None] - b[None]) ** 2).sum(-1))
        v.append(u[-1] + d_aa.sum() / (n ** 2 * (n - 1)) + d_bb.sum() / (m ** 2 * (m - 1)))
    u, v = np.array(u), np.array(v)
    stderr = u.std(ddof=1) / math.sqrt(pairs)
    assert abs(u.mean()) < 4 * stderr
    assert min(u) < 0.0 < max(u)
    bias = math.sqrt(math.pi) * (1 / n + 1 / m)
    assert v.mean() == pytest.approx(bias, rel=0.1)
    assert v.mean() > 10 * stderr
    a, b = rng.standard_normal((n, 2)), 1.0 + rng.standard_normal((m, 2))
    shifted = metrics.energy_distance(a, b)
    assert shifted > 10 * stderr


@given(seed=seeds, n=st.integers(2, 30), m=st.integers(2, 30))
def test_energy_matches_scipy_in_one_dimension(seed, n, m):
    """SciPy's 1-D energy distance is the square root of the V-statistic, which exceeds the
    U-statistic by S_aa / (n^2 (n - 1)) + S_bb / (m^2 (m - 1))."""
    stats = pytest.importorskip("scipy.stats")
    a, b = cloud(seed, n, 1), cloud(seed + 1, m, 1, shift=0.5)
    s_aa, s_bb = np.abs(a - a.T).sum(), np.abs(b - b.T).sum()
    expected = stats.energy_distance(a[:, 0], b[:, 0]) ** 2 - s_aa / (n ** 2 * (n - 1)) \
        - s_bb / (m ** 2 * (m - 1))
    assert metrics.energy_distance(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_energy_needs_two_points_per_sample():
    with pytest.raises(ValueError, match=">= 2 points"):
        metrics.energy_distance(np.zeros((1, 2)), np.zeros((5, 2)))


# --- frechet_distance ----------------------------------------------------------------------------

def with_covariance(seed, n, mean, cov_root):
    """n points whose sample mean is exactly ``mean`` and sample covariance ``R R^T``: whitened
    standard normals (sample mean 0, covariance I) times ``R^T``, shifted."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T
    return mean + z @ cov_root.T


@given(seed=seeds, n=st.integers(2, 40), m=st.integers(2, 40))
def test_frechet_in_one_dimension_is_the_gaussian_w2_squared(seed, n, m):
    """1-D: FD = (m1 - m2)^2 + (s1 - s2)^2 with the sample means and standard deviations."""
    a, b = cloud(seed, n, 1, shift=0.7, scale=2.0), cloud(seed + 1, m, 1, shift=-0.3)
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(seed=seeds, k=st.integers(1, 5))
def test_frechet_with_commuting_covariances(seed, k):
    """S_a = Q diag(la) Q^T and S_b = Q diag(lb) Q^T commute, so the trace term is
    sum_i (sqrt(la_i) - sqrt(lb_i))^2."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((k, k)))[0]
    la, lb = rng.uniform(0.1, 4.0, k), rng.uniform(0.1, 4.0, k)
    mu_a, mu_b = rng.standard_normal(k), rng.standard_normal(k)
    a = with_covariance(seed, 30, mu_a, Q * np.sqrt(la))
    b = with_covariance(seed + 1, 25, mu_b, Q * np.sqrt(lb))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(la) - np.sqrt(lb)) ** 2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8, abs=1e-10)


@given(seed=seeds, n=st.integers(2, 30), m=st.integers(2, 30), k=st.integers(1, 6))
def test_frechet_is_symmetric_and_matches_the_trace_of_sqrt_sa_sb(seed, n, m, k):
    """tr (S_a^1/2 S_b S_a^1/2)^1/2 = sum sqrt(eig(S_a S_b)) (similar matrices): an independent
    reference from the non-symmetric product. Fewer points than features are allowed."""
    a, b = cloud(seed, n, k), cloud(seed + 1, m, k, shift=0.5, scale=1.5)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    eig = np.clip(np.linalg.eigvals(s_a @ s_b).real, 0.0, None)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b)
                - 2 * np.sum(np.sqrt(eig)))
    scale = np.trace(s_a) + np.trace(s_b)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, abs=1e-6 * scale)
    assert metrics.frechet_distance(b, a) == pytest.approx(metrics.frechet_distance(a, b),
                                                           abs=1e-6 * scale)


@given(seed=seeds, n=st.integers(2, 40), k=st.integers(1, 8))
def test_frechet_is_zero_for_identical_samples(seed, n, k):
    a = cloud(seed, n, k, scale=3.0)
    shuffled = a[np.random.default_rng(seed).permutation(n)]
    scale = np.trace(np.atleast_2d(np.cov(a, rowvar=False)))
    for b in (a, shuffled):
        assert metrics.frechet_distance(a, b) == pytest.approx(0.0, abs=1e-6 * scale + 1e-12)


def test_frechet_needs_two_points_per_sample():
    with pytest.raises(ValueError, match=">= 2 points"):
        metrics.frechet_distance(np.zeros((1, 2)), np.zeros((5, 2)))


# --- nearest_distances ---------------------------------------------------------------------------

@given(seed=seeds, n=st.integers(1, 30), m=st.integers(1, 30), d=st.integers(1, 5),
       chunk_size=st.integers(1, 40))
def test_nearest_distances_match_brute_force(seed, n, m, d, chunk_size):
    x, ref = cloud(seed, n, d), cloud(seed + 1, m, d, shift=0.2)
    expected = [min(dist(x[i], ref[j]) for j in range(m)) for i in range(n)]
    got = metrics.nearest_distances(x, ref, chunk_size=chunk_size)
    assert got.shape == (n,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_nearest_distance_of_a_copy_is_exactly_zero_and_close_points_are_accurate():
    ref = 1e3 + cloud(0, 50, 3)
    x = np.concatenate([ref[[4, 17]], ref[[9]] + np.array([1e-7, 0.0, 0.0])])
    got = metrics.nearest_distances(x, ref, chunk_size=2)
    assert got[0] == 0.0 and got[1] == 0.0
    assert got[2] == pytest.approx(abs(x[2, 0] - ref[9, 0]), rel=1e-9)


def test_nearest_distances_reject_bad_input():
    with pytest.raises(ValueError, match="reference"):
        metrics.nearest_distances(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="chunk_size"):
        metrics.nearest_distances(np.zeros((3, 2)), np.zeros((3, 2)), chunk_size=0)


# --- negative_log_likelihood ---------------------------------------------------------------------

def test_nll_is_the_mean_of_minus_log_p():
    assert metrics.negative_log_likelihood([-1.0, -2.0, -3.5]) == pytest.approx(6.5 / 3)
    # Standard normal in 1-D: E[-log p] = 0.5 log(2 pi) + 0.5 (the entropy).
    x = np.random.default_rng(0).standard_normal(200_000)
    log_p = -0.5 * x ** 2 - 0.5 * math.log(2 * math.pi)
    assert metrics.negative_log_likelihood(log_p) == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5,
                                                                   abs=5e-3)


@pytest.mark.parametrize("bad, error", [
    ([0.0, np.nan], ValueError), ([-np.inf], ValueError), ([], ValueError),
    (np.zeros((2, 2)), ValueError), (["a"], TypeError), (np.ones(2, dtype=bool), TypeError),
])
def test_nll_rejects_bad_input(bad, error):
    with pytest.raises(error, match="log_prob"):
        metrics.negative_log_likelihood(bad)


# --- shared validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [metrics.wasserstein2, metrics.mmd_rbf, metrics.energy_distance])
def test_metrics_reject_bad_points(fn):
    good = np.zeros((3, 2))
    with pytest.raises(ValueError, match="b"):
        fn(good, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="a"):
        fn(np.zeros(3), good)
    with pytest.raises(ValueError, match="a"):
        fn(np.full((3, 2), np.inf), good)
    with pytest.raises(TypeError, match="b"):
        fn(good, np.full((3, 2), "x"))


# --- path_energy and normalized_path_energy ------------------------------------------------------

TIGHT = {"rtol": 1e-9, "atol": 1e-9}


@given(seed=seeds, n=st.integers(1, 30), d=st.integers(1, 4))
def test_path_energy_of_a_constant_field_is_its_squared_norm(seed, n, d):
    """x(t) = x0 + t c: int_0^1 ||c||^2 dt = ||c||^2 for every point."""
    c = np.random.default_rng(seed).normal(0.0, 2.0, d)
    energy = metrics.path_energy(lambda x, t: np.broadcast_to(c, x.shape), cloud(seed, n, d))
    assert energy == pytest.approx(float(c @ c), rel=1e-12, abs=1e-12)


@given(seed=seeds, a=st.floats(-1.5, 1.5))
def test_path_energy_of_a_linear_field_matches_the_closed_form(seed, a):
    """v = a x: x(t) = e^{at} x0, int_0^1 a^2 e^{2at} dt ||x0||^2 = (a/2)(e^{2a} - 1) ||x0||^2."""
    x0 = cloud(seed, 20, 2)
    expected = a / 2 * math.expm1(2 * a) * np.mean(np.sum(x0 ** 2, axis=1))
    energy = metrics.path_energy(lambda x, t: a * x, x0, **TIGHT)
    assert energy == pytest.approx(expected, rel=1e-6, abs=1e-9)
    rk4 = metrics.path_energy(lambda x, t: a * x, x0, method="rk4", steps=200)
    assert rk4 == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_path_energy_follows_the_steps_rule():
    """steps=None: DEFAULT_STEPS rk4 steps (the same number as explicit); with dopri5 an explicit
    steps is an error."""
    x0 = cloud(3, 10, 2)
    calls = []

    def velocity(x, t):
        calls.append(t)
        return -0.5 * x

    default = metrics.path_energy(velocity, x0, method="rk4")
    assert len(calls) == 4 * solvers.DEFAULT_STEPS
    assert default == metrics.path_energy(velocity, x0, method="rk4", steps=solvers.DEFAULT_STEPS)
    expected = -0.25 * math.expm1(-1.0) * np.mean(np.sum(x0 ** 2, axis=1))  # (a/2)(e^{2a} - 1)
    assert default == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="steps"):
        metrics.path_energy(velocity, x0, method="dopri5", steps=10)


def test_path_energy_of_a_time_dependent_field():
    """v = 2 t c: x(t) = x0 + t^2 c, PE = int 4 t^2 ||c||^2 dt = 4/3 ||c||^2, and W2^2 = ||c||^2
    (a translation), so NPE = 1/3: same endpoints as the straight flow, a third more energy."""
    c = np.array([3.0, -4.0])  # ||c||^2 = 25
    x0 = cloud(0, 50, 2)
    energy = metrics.path_energy(lambda x, t: np.broadcast_to(2 * t * c, x.shape), x0, **TIGHT)
    assert energy == pytest.approx(100 / 3, rel=1e-9)
    w2_squared = metrics.wasserstein2(x0, x0 + c) ** 2
    assert metrics.normalized_path_energy(energy, w2_squared) == pytest.approx(1 / 3, rel=1e-6)


@given(seed=seeds, n=st.integers(2, 40), s=st.floats(0.2, 3.0))
def test_npe_of_the_dynamic_ot_flow_is_zero(seed, n, s):
    """x -> s x + c (s > 0) is the gradient of a convex function, hence the OT map (Brenier), and
    the straight constant-speed flow x(t) = (1 + (s - 1) t) x0 + t c, whose velocity at x is
    ((s - 1)(x - t c) / (1 + (s - 1) t)) + c, is the dynamic OT (Benamou-Brenier): PE = W2^2.
    W2 is computed independently, by the exact assignment."""
    x0 = cloud(seed, n, 2)
    c = np.random.default_rng(seed).normal(0.0, 2.0, 2)

    def velocity(x, t):
        return (s - 1) * (x - t * c) / (1 + (s - 1) * t) + c

    energy = metrics.path_energy(velocity, x0, **TIGHT)
    w2_squared = metrics.wasserstein2(x0, s * x0 + c) ** 2
    assert energy == pytest.approx(np.mean(np.sum(((s - 1) * x0 + c) ** 2, axis=1)), rel=1e-7)
    assert metrics.normalized_path_energy(energy, w2_squared) == pytest.approx(0.0, abs=1e-6)


@given(seed=seeds, n=st.integers(2, 40), omega=st.floats(0.05, 3.0))
def test_a_rotating_flow_spends_more_than_w2_squared(seed, n, omega):
    """v = omega J x (J the quarter turn): PE = omega^2 mean ||x0||^2 (the speed is constant),
    and by Benamou-Brenier PE >= W2^2(x0, R(omega) x0), here strictly, as the paths are arcs."""
    x0 = cloud(seed, n, 2)
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    energy = metrics.path_energy(lambda x, t: omega * x @ quarter.T, x0, **TIGHT)
    mean_sq = np.mean(np.sum(x0 ** 2, axis=1))
    assert energy == pytest.approx(omega ** 2 * mean_sq, rel=1e-7)
    rotation = np.array([[np.cos(omega), -np.sin(omega)], [np.sin(omega), np.cos(omega)]])
    w2_squared = metrics.wasserstein2(x0, x0 @ rotation.T) ** 2
    assert w2_squared <= energy * (1 + 1e-7)
    # the identity pairing costs 2 (1 - cos omega) mean ||x0||^2 < omega^2 mean ||x0||^2
    assert w2_squared <= 2 * (1 - np.cos(omega)) * mean_sq * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("energy, w2_squared, expected", [
    (5.0, 4.0, 0.25), (3.0, 4.0, 0.25), (4.0, 4.0, 0.0), (0.0, 2.0, 1.0), (30.0, 10.0, 2.0)])
def test_npe_is_the_relative_gap(energy, w2_squared, expected):
    assert metrics.normalized_path_energy(energy, w2_squared) == pytest.approx(expected)


@pytest.mark.parametrize("energy, w2_squared, error", [
    (1.0, 0.0, ValueError), (1.0, -1.0, ValueError), (-0.1, 1.0, ValueError),
    (float("nan"), 1.0, ValueError), (1.0, float("inf"), ValueError), ("1", 1.0, TypeError)])
def test_npe_rejects_bad_input(energy, w2_squared, error):
    with pytest.raises(error, match="energy|w2_squared"):
        metrics.normalized_path_energy(energy, w2_squared)


def test_path_energy_rejects_bad_input():
    with pytest.raises(TypeError, match="velocity"):
        metrics.path_energy("not a function", np.zeros((3, 2)))
    with pytest.raises(ValueError, match="x0"):
        metrics.path_energy(lambda x, t: x, np.zeros(3))
    with pytest.raises(ValueError, match="x0"):
        metrics.path_energy(lambda x, t: x, np.full((3, 2), np.nan))


def test_median_distance_is_the_median_over_distinct_pairs():
    x = np.random.default_rng(0).standard_normal((9, 3))
    pairs = [np.linalg.norm(x[i] - x[j]) for i in range(9) for j in range(i + 1, 9)]
    assert metrics.median_distance(x) == pytest.approx(float(np.median(pairs)), rel=1e-12)
    assert metrics.median_distance(np.ones((4, 2))) == 1.0
    with pytest.raises(ValueError, match=">= 2 points"):
        metrics.median_distance(np.ones((1, 2)))


@pytest.mark.parametrize("metric", ["median_distance", "wasserstein2", "energy_distance",
                                    "mmd_rbf"])
def test_pairwise_bytes_bounds_the_peak_memory_of_each_metric(metric):
    n = 1000
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    args = (b,) if metric == "median_distance" else (a, b)
    tracemalloc.start()
    try:
        getattr(metrics, metric)(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= metrics.pairwise_bytes(n)
    assert peak >= 0.9 * metrics._PEAK_PER_PAIR[metric] * n * n  # the table is not loose
