"""Tests for npflow.couplings: the exact assignment against brute force and SciPy, the fast
assignment against the plain reference algorithm, OT pairings against every other pairing,
within-class pairing, the Sinkhorn plan against the plain (non-log) iteration and its closed-form
structure, sampling frequencies, and input checks."""
import itertools

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npflow import couplings

seeds = st.integers(0, 2 ** 32 - 1)


def brute_force_min(cost):
    """Minimum of sum_i cost[i, perm[i]] over all permutations (n <= 8)."""
    n = cost.shape[0]
    perms = np.array(list(itertools.permutations(range(n))))  # (n!, n)
    return cost[np.arange(n), perms].sum(1).min()


def total(cost, perm):
    return cost[np.arange(cost.shape[0]), perm].sum()


def assert_permutation(perm, n):
    assert perm.dtype == np.int64 and perm.shape == (n,)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))


def random_cost(rng, n, kind):
    """Cost matrices of several kinds: floats, ties, duplicates, clouds, offsets and scales."""
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, (n, n)) * 10.0 ** rng.integers(-6, 7)
    if kind == "integers":  # many exact ties
        return rng.integers(-3, 4, (n, n)).astype(np.float64)
    if kind == "clouds":
        d = int(rng.integers(1, 6))
        x0, x1 = rng.standard_normal((n, d)), 2.0 + rng.standard_normal((n, d))
        return couplings.squared_distances(x0, x1)
    if kind == "duplicates":  # repeated points: identical rows and columns
        a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
        return couplings.squared_distances(a[rng.integers(0, 3, n)], b[rng.integers(0, 3, n)])
    return 1e9 + rng.uniform(0.0, 1.0, (n, n))  # "offset": a large constant on top


KINDS = ["uniform", "integers", "clouds", "duplicates", "offset"]
small_elements = st.one_of(
    st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False),
    st.sampled_from([-1.0, 0.0, 2.0]),  # exact ties
)


# --- solve_assignment ----------------------------------------------------------------------

@given(data=st.data(), n=st.integers(1, 7))
def test_assignment_matches_brute_force(data, n):
    cost = data.draw(hnp.arrays(np.float64, (n, n), elements=small_elements))
    perm = couplings.solve_assignment(cost)
    assert_permutation(perm, n)
    best = brute_force_min(cost)
    tol = 1e-9 * max(1.0, np.abs(cost).max())
    assert total(cost, perm) == pytest.approx(best, rel=1e-12, abs=tol)


@given(seed=seeds, n=st.integers(1, 7), kind=st.sampled_from(KINDS))
def test_assignment_matches_brute_force_on_structured_costs(seed, n, kind):
    cost = random_cost(np.random.default_rng(seed), n, kind)
    perm = couplings.solve_assignment(cost)
    assert_permutation(perm, n)
    assert total(cost, perm) == pytest.approx(brute_force_min(cost), rel=1e-12, abs=1e-12)


@given(seed=seeds, n=st.integers(1, 200), kind=st.sampled_from(KINDS))
def test_assignment_matches_scipy(seed, n, kind):
    optimize = pytest.importorskip("scipy.optimize")
    cost = random_cost(np.random.default_rng(seed), n, kind)
    perm = couplings.solve_assignment(cost)
    assert_permutation(perm, n)
    rows, cols = optimize.linear_sum_assignment(cost)
    reference = cost[rows, cols].sum()
    tol = 1e-11 * n * np.abs(cost).max()
    assert total(cost, perm) == pytest.approx(reference, rel=1e-11, abs=tol)


@given(seed=seeds, n=st.integers(2, 40), kind=st.sampled_from(KINDS))
def test_assignment_invariances(seed, n, kind):
    """Adding row/column constants shifts every permutation's cost equally; transposing maps
    optimal permutations to their inverses.  Both must leave the optimum where it is."""
    rng = np.random.default_rng(seed)
    cost = random_cost(rng, n, kind)
    best = total(cost, couplings.solve_assignment(cost))
    scale = max(1.0, np.abs(cost).max())
    row_shift, col_shift = rng.normal(0, scale, n), rng.normal(0, scale, n)
    shifted = cost + row_shift[:, None] + col_shift[None, :]
    expected = best + row_shift.sum() + col_shift.sum()
    tol = 1e-10 * n * 3 * scale
    assert total(shifted, couplings.solve_assignment(shifted)) == pytest.approx(expected, abs=tol)
    assert total(cost.T, couplings.solve_assignment(cost.T)) == pytest.approx(best, abs=tol)


@given(seed=seeds, n=st.integers(2, 60), trials=st.integers(1, 20))
def test_assignment_beats_random_permutations(seed, n, trials):
    rng = np.random.default_rng(seed)
    cost = rng.standard_normal((n, n))
    best = total(cost, couplings.solve_assignment(cost))
    for _ in range(trials):
        assert best <= total(cost, rng.permutation(n)) + 1e-12


def test_assignment_known_answer():
    # Row 0 must take column 1 and row 1 column 0 (cost 1 + 2 = 3 beats 4 + 5 = 9).
    np.testing.assert_array_equal(couplings.solve_assignment([[4.0, 1.0], [2.0, 5.0]]), [1, 0])
    np.testing.assert_array_equal(couplings.solve_assignment([[7.5]]), [0])
    # Anti-diagonal zeros in a matrix of ones.
    cost = 1.0 - np.eye(5)[::-1]
    np.testing.assert_array_equal(couplings.solve_assignment(cost), [4, 3, 2, 1, 0])


def test_assignment_accepts_integers_float32_and_constant_costs():
    cost = np.array([[3, 1, 2], [2, 3, 1], [1, 2, 3]])
    np.testing.assert_array_equal(couplings.solve_assignment(cost), [1, 2, 0])
    np.testing.assert_array_equal(couplings.solve_assignment(cost.astype(np.float32)), [1, 2, 0])
    assert_permutation(couplings.solve_assignment(np.full((6, 6), 2.5)), 6)


@pytest.mark.parametrize("scale", [1e-300, 1e-8, 1e8, 1e300])
def test_assignment_extreme_scales(scale):
    rng = np.random.default_rng(0)
    cost = rng.uniform(-1.0, 1.0, (6, 6))
    perm = couplings.solve_assignment(cost * scale)
    assert total(cost, perm) == pytest.approx(brute_force_min(cost), rel=1e-12)


@pytest.mark.parametrize("bad, error", [
    (np.zeros((2, 3)), ValueError),
    (np.zeros(3), ValueError),
    (np.zeros((0, 0)), ValueError),
    (np.zeros((2, 2, 2)), ValueError),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), ValueError),
    (np.array([["a", "b"], ["c", "d"]]), TypeError),
    (np.ones((2, 2), dtype=complex), TypeError),
    (np.ones((2, 2), dtype=bool), TypeError),
])
@pytest.mark.parametrize("solve", [couplings.solve_assignment,
                                   couplings.solve_assignment_reference])
def test_assignment_rejects_bad_input(bad, error, solve):
    with pytest.raises(error, match="cost"):
        solve(bad)


# --- solve_assignment_reference: the plain algorithm, and the fast one against it -------------

@given(data=st.data(), n=st.integers(1, 7))
def test_reference_assignment_matches_brute_force(data, n):
    cost = data.draw(hnp.arrays(np.float64, (n, n), elements=small_elements))
    perm = couplings.solve_assignment_reference(cost)
    assert_permutation(perm, n)
    tol = 1e-9 * max(1.0, np.abs(cost).max())
    assert total(cost, perm) == pytest.approx(brute_force_min(cost), rel=1e-12, abs=tol)


def test_reference_assignment_known_answers():
    np.testing.assert_array_equal(couplings.solve_assignment_reference([[4, 1], [2, 5]]), [1, 0])
    np.testing.assert_array_equal(couplings.solve_assignment_reference([[7.5]]), [0])
    cost = 1.0 - np.eye(5)[::-1]  # zeros on the anti-diagonal only
    np.testing.assert_array_equal(couplings.solve_assignment_reference(cost), [4, 3, 2, 1, 0])
    # Row 1 is cheapest everywhere: the row-by-row method must move row 0 off column 0.
    np.testing.assert_array_equal(
        couplings.solve_assignment_reference([[1.0, 10.0, 10.0], [0.0, 1.0, 10.0],
                                              [0.0, 0.0, 1.0]]), [0, 1, 2])


@given(seed=seeds, n=st.integers(1, 40), kind=st.sampled_from(KINDS))
def test_fast_assignment_matches_the_reference(seed, n, kind):
    cost = random_cost(np.random.default_rng(seed), n, kind)
    fast, reference = couplings.solve_assignment(cost), couplings.solve_assignment_reference(cost)
    assert_permutation(reference, n)
    tol = 1e-12 * max(1.0, np.abs(cost).max()) * n
    assert total(cost, fast) == pytest.approx(total(cost, reference), rel=1e-12, abs=tol)


@given(data=st.data(), n=st.integers(1, 40), high=st.integers(0, 5))
def test_fast_assignment_matches_the_reference_on_integer_costs_with_ties(data, n, high):
    cost = data.draw(hnp.arrays(np.int64, (n, n), elements=st.integers(0, high)))
    fast, reference = couplings.solve_assignment(cost), couplings.solve_assignment_reference(cost)
    assert_permutation(fast, n)
    assert_permutation(reference, n)
    assert total(cost, fast) == total(cost, reference)  # integer totals: exact


# --- squared_distances -----------------------------------------------------------------------

@given(seed=seeds, n=st.integers(1, 12), m=st.integers(1, 12), d=st.integers(1, 5))
def test_squared_distances_match_double_loop(seed, n, m, d):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, d)) * 3, rng.standard_normal((m, d))
    expected = np.array([[np.sum((a[i] - b[j]) ** 2) for j in range(m)] for i in range(n)])
    got = couplings.squared_distances(a, b)
    assert got.shape == (n, m) and np.all(got >= 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_squared_distances_clip_cancellation():
    a = np.full((3, 2), 1e8) + np.arange(3)[:, None] * 1e-9
    assert np.all(couplings.squared_distances(a, a) >= 0.0)


def test_squared_distances_reject_mismatched_dimensions():
    with pytest.raises(ValueError, match="b"):
        couplings.squared_distances(np.zeros((2, 3)), np.zeros((2, 2)))


# --- ot_coupling -------------------------------------------------------------------------------

def batch(seed, n, d, classes=None):
    """Distinct noise and data points (so rows can be identified by value) and optional labels."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((n, d))
    x1 = 4.0 + rng.standard_normal((n, d))
    y1 = None if classes is None else rng.integers(0, classes, n)
    return x0, x1, y1, rng


def source_rows(points, original):
    """Index in ``original`` of each row of ``points`` (rows are distinct)."""
    matches = np.all(points[:, None, :] == original[None, :, :], axis=-1)  # (n, n)
    assert np.all(matches.sum(1) == 1)
    return matches.argmax(1)


@given(seed=seeds, n=st.integers(1, 64), d=st.integers(1, 4), trials=st.integers(1, 10))
def test_ot_coupling_never_costs_more(seed, n, d, trials):
    x0, x1, _, rng = batch(seed, n, d)
    out0, out1, y1 = couplings.ot_coupling(x0, x1, rng)
    assert y1 is None
    np.testing.assert_array_equal(out0, x0)
    assert_permutation(source_rows(out1, x1), n)
    paired = np.sum((out0 - out1) ** 2)
    assert paired <= np.sum((x0 - x1) ** 2) + 1e-9  # the pairing as drawn
    for _ in range(trials):
        assert paired <= np.sum((x0 - x1[rng.permutation(n)]) ** 2) + 1e-9


@given(seed=seeds, n=st.integers(1, 7), d=st.integers(1, 3))
def test_ot_coupling_is_optimal(seed, n, d):
    x0, x1, _, rng = batch(seed, n, d)
    out0, out1, _ = couplings.ot_coupling(x0, x1, rng)
    cost = np.array([[np.sum((p - q) ** 2) for q in x1] for p in x0])
    assert np.sum((out0 - out1) ** 2) == pytest.approx(brute_force_min(cost), rel=1e-12)


@given(seed=seeds, n=st.integers(1, 14), d=st.integers(1, 3), classes=st.integers(1, 4))
def test_ot_coupling_within_classes(seed, n, d, classes):
    x0, x1, y1, rng = batch(seed, n, d, classes)
    out0, out1, out_y = couplings.ot_coupling(x0, x1, rng, y1=y1)
    np.testing.assert_array_equal(out0, x0)  # the noise keeps its order
    index = source_rows(out1, x1)
    assert_permutation(index, n)
    np.testing.assert_array_equal(out_y, y1[index])  # labels travel with their points
    assert np.all(np.diff(out_y) >= 0)  # grouped in consecutive class blocks
    for label in np.unique(y1):
        block = out_y == label
        assert block.sum() == np.sum(y1 == label)
        cost = np.array([[np.sum((p - q) ** 2) for q in x1[y1 == label]] for p in x0[block]])
        if block.sum() <= 7:
            paired = np.sum((out0[block] - out1[block]) ** 2)
            assert paired == pytest.approx(brute_force_min(cost), rel=1e-12)


@given(seed=seeds, n=st.integers(8, 120), classes=st.integers(1, 5))
def test_ot_coupling_within_classes_matches_scipy(seed, n, classes):
    optimize = pytest.importorskip("scipy.optimize")
    x0, x1, y1, rng = batch(seed, n, 2, classes)
    out0, out1, out_y = couplings.ot_coupling(x0, x1, rng, y1=y1)
    for label in np.unique(y1):
        block = out_y == label
        cost = ((out0[block][:, None, :] - x1[y1 == label][None, :, :]) ** 2).sum(-1)
        rows, cols = optimize.linear_sum_assignment(cost)
        paired = np.sum((out0[block] - out1[block]) ** 2)
        assert paired == pytest.approx(cost[rows, cols].sum(), rel=1e-11)


def test_independent_coupling_returns_the_batch_unchanged():
    x0, x1, y1, rng = batch(0, 9, 2, 3)
    out0, out1, out_y = couplings.independent_coupling(x0, x1, rng, y1=y1)
    np.testing.assert_array_equal(out0, x0)
    np.testing.assert_array_equal(out1, x1)
    np.testing.assert_array_equal(out_y, y1)
    assert couplings.independent_coupling(x0, x1, rng)[2] is None


# --- Sinkhorn ----------------------------------------------------------------------------------

def plain_sinkhorn(cost, reg, iters):
    """Textbook multiplicative Sinkhorn (Cuturi 2013, Alg. 1); fine when exp(-C/reg) is safe."""
    n, m = cost.shape
    kernel = np.exp(-cost / reg)
    u, v = np.ones(n), np.ones(m)
    for _ in range(iters):
        u = (1.0 / n) / (kernel @ v)
        v = (1.0 / m) / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :]


@example(seed=4198799368, n=3, m=3, reg=0.5)  # rows off by 8e-5 in l1 after 5000 iterations
@given(seed=seeds, n=st.integers(1, 20), m=st.integers(1, 20), reg=st.floats(0.5, 10.0))
def test_sinkhorn_plan_matches_plain_iteration(seed, n, m, reg):
    rng = np.random.default_rng(seed)
    cost = couplings.squared_distances(rng.standard_normal((n, 2)), rng.standard_normal((m, 2)))
    tol, max_iter = 1e-13, 5000
    plan = couplings.sinkhorn_plan(cost, reg, max_iter=max_iter, tol=tol)
    plain = plain_sinkhorn(cost, reg, max_iter)
    np.testing.assert_allclose(plan, plain, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), 1.0 / m, rtol=1e-10)  # the last update fits columns
    # sinkhorn_plan stops once the rows are within tol of 1/n in l1, or after max_iter
    # iterations.  Sinkhorn converges linearly at a rate set by the points: when the plan is
    # nearly a permutation (reg = 0.5, the example above), its blocks exchange mass only through
    # entries ~ exp(-C / reg), and 5000 iterations do not reach tol for about 1 draw in 600
    # (the example needs ~1e5).  The l1 row error never grows: rescaling the rows of a plan
    # with row sums r moves column j by sum_i (a_i / r_i - 1) P_ij, at most sum_i |a_i - r_i|
    # in total.  So the rows are within tol, or as close as the plain iteration's after
    # max_iter (plus round-off).
    row_error = np.abs(plan.sum(1) - 1.0 / n).sum()
    plain_row_error = np.abs(plain.sum(1) - 1.0 / n).sum()
    assert row_error <= max(tol, plain_row_error) + 1e-14, (row_error, plain_row_error)


@given(seed=seeds, n=st.integers(2, 12))
def test_sinkhorn_plan_structure_and_limits(seed, n):
    rng = np.random.default_rng(seed)
    cost = couplings.squared_distances(rng.standard_normal((n, 2)), 3 + rng.standard_normal((n, 2)))
    reg = 0.7
    plan = couplings.sinkhorn_plan(cost, reg, max_iter=10000, tol=1e-12)
    # log P + C / reg = f_i + g_j: all double differences vanish (Cuturi 2013, Lemma 2).
    z = np.log(plan) + cost / reg
    np.testing.assert_allclose(z - z[:1, :] - z[:, :1] + z[0, 0], 0.0, atol=1e-8)
    # reg -> infinity: the independent plan a b^T.
    wide = couplings.sinkhorn_plan(cost, 1e9)
    np.testing.assert_allclose(wide, 1.0 / n ** 2, rtol=1e-6)


def test_sinkhorn_plan_small_reg_approaches_the_ot_permutation():
    rng = np.random.default_rng(3)
    x0, x1 = rng.standard_normal((6, 2)), rng.standard_normal((6, 2)) * 2.0
    cost = couplings.squared_distances(x0, x1)
    perm = couplings.solve_assignment(cost)
    plan = couplings.sinkhorn_plan(cost, 1e-3, max_iter=20000)  # no underflow in the log domain
    assert np.all(np.isfinite(plan))
    assert plan[np.arange(6), perm].sum() > 0.99


def test_sinkhorn_coupling_samples_pairs_from_the_plan():
    x0 = np.array([[0.0], [1.0], [2.0]])
    x1 = np.array([[0.5], [1.7], [3.0]])
    reg = 1.0
    plan = couplings.sinkhorn_plan(couplings.squared_distances(x0, x1), reg, tol=1e-12)
    rng = np.random.default_rng(0)
    counts = np.zeros((3, 3))
    draws = 4000
    for _ in range(draws):
        out0, out1, _ = couplings.sinkhorn_coupling(x0, x1, rng, reg=reg)
        np.add.at(counts, (source_rows(out0, x0), source_rows(out1, x1)), 1)
    freq = counts / counts.sum()
    sd = np.sqrt(plan * (1 - plan) / counts.sum())
    assert np.all(np.abs(freq - plan) < 5 * sd + 1e-12)


@given(seed=seeds, n=st.integers(2, 30), classes=st.integers(1, 3))
def test_sinkhorn_coupling_within_classes_and_reproducible(seed, n, classes):
    x0, x1, y1, _ = batch(seed, n, 2, classes)
    out0, out1, out_y = couplings.sinkhorn_coupling(x0, x1, np.random.default_rng(seed), y1=y1)
    again = couplings.sinkhorn_coupling(x0, x1, np.random.default_rng(seed), y1=y1)
    for first, second in zip((out0, out1, out_y), again):
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(out_y, y1[source_rows(out1, x1)])  # pairs stay within classes
    i0 = source_rows(out0, x0)
    for label in np.unique(y1):
        block = np.flatnonzero(out_y == label)  # the class's consecutive block of x0
        assert np.all((i0[block] >= block[0]) & (i0[block] <= block[-1]))


# --- registry and validation -----------------------------------------------------------------

def test_registry_and_make_coupling():
    assert set(couplings.COUPLINGS) == {"independent", "ot", "sinkhorn"}
    assert couplings.make_coupling("ot") is couplings.ot_coupling
    x0, x1, _, rng = batch(1, 5, 2)
    bound = couplings.make_coupling("sinkhorn", reg=2.0)
    expected = couplings.sinkhorn_coupling(x0, x1, np.random.default_rng(4), reg=2.0)
    for got, want in zip(bound(x0, x1, np.random.default_rng(4)), expected[:2]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="name"):
        couplings.make_coupling("exact")
    with pytest.raises(TypeError, match="reg"):
        couplings.make_coupling("ot", reg=1.0)


@pytest.mark.parametrize("fn", sorted(couplings.COUPLINGS))
def test_couplings_reject_bad_input(fn):
    coupling = couplings.COUPLINGS[fn]
    x0, x1, y1, rng = batch(0, 4, 2, 2)
    with pytest.raises(ValueError, match="x1"):
        coupling(x0, x1[:3], rng)
    with pytest.raises(ValueError, match="x1"):
        coupling(x0, x1[:, :1], rng)
    with pytest.raises(ValueError, match="x0"):
        coupling(x0[:, 0], x1, rng)
    with pytest.raises(TypeError, match="rng"):
        coupling(x0, x1, 0)
    with pytest.raises(TypeError, match="y1"):
        coupling(x0, x1, rng, y1=y1.astype(float))
    with pytest.raises(ValueError, match="y1"):
        coupling(x0, x1, rng, y1=y1[:3])
    with pytest.raises(ValueError, match="x0"):
        coupling(np.full((4, 2), np.nan), x1, rng)


def test_sinkhorn_rejects_bad_parameters():
    x0, x1, _, rng = batch(0, 4, 2)
    with pytest.raises(ValueError, match="reg"):
        couplings.sinkhorn_coupling(x0, x1, rng, reg=0.0)
    with pytest.raises(ValueError, match="cost"):
        couplings.sinkhorn_plan(np.array([[np.inf]]), 1.0)
    with pytest.raises(TypeError, match="max_iter"):
        couplings.sinkhorn_plan(np.ones((2, 2)), 1.0, max_iter=2.5)
