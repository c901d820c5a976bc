"""Tests for npflow.paths: endpoints, ut = d xt / dt by finite differences, special cases of the
affine path, scheduler derivatives, dtypes and input validation."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import paths

H = 1e-6  # finite-difference step (float64)

seeds = st.integers(0, 2 ** 32 - 1)
sizes = st.integers(1, 16)
dims = st.integers(1, 6)
sigmas = st.floats(0.0, 0.9)
inner_times = st.floats(2 * H, 1 - 2 * H)


def draw(seed, n, d):
    """Source, target and noise arrays (n, d), float64, with a spread of scales."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((n, d))
    x1 = 3.0 * rng.standard_normal((n, d)) + 1.0
    eps = rng.standard_normal((n, d))
    return x0, x1, eps


def all_paths(sigma):
    """Every path, each with the eps it needs (None for deterministic paths)."""
    return [
        paths.LinearPath(),
        paths.LipmanPath(sigma_min=sigma),
        paths.ICFMPath(sigma=sigma),
        paths.AffinePath(paths.CosineScheduler(), name="vp"),
        paths.AffinePath(paths.LinearScheduler()),
        paths.AffinePath(paths.LipmanScheduler(sigma_min=sigma)),
    ]


def sample(path, x0, x1, t, eps):
    return path.sample(x0, x1, t, eps=eps if path.needs_noise else None)


SCHEDULERS = [paths.LinearScheduler(), paths.CosineScheduler(), paths.LipmanScheduler(0.0),
              paths.LipmanScheduler(0.1), paths.LipmanScheduler(0.5)]


# --- endpoints -------------------------------------------------------------------------------

@given(seed=seeds, n=sizes, d=dims, sigma=sigmas)
def test_endpoints(seed, n, d, sigma):
    x0, x1, eps = draw(seed, n, d)
    linear, lipman = paths.LinearPath(), paths.LipmanPath(sigma)
    np.testing.assert_array_equal(linear.sample(x0, x1, 0.0).xt, x0)
    np.testing.assert_array_equal(linear.sample(x0, x1, 1.0).xt, x1)
    # Lipman: sigma_0 = 1, sigma_1 = sigma_min, so t = 1 lands at x1 + sigma_min x0, not at x1.
    np.testing.assert_array_equal(lipman.sample(x0, x1, 0.0).xt, x0)
    np.testing.assert_allclose(lipman.sample(x0, x1, 1.0).xt, x1 + sigma * x0, rtol=1e-14,
                               atol=1e-14)
    # icfm: the straight line shifted by sigma * eps at every time, including the ends.
    icfm = paths.ICFMPath(sigma)
    np.testing.assert_allclose(icfm.sample(x0, x1, 0.0, eps).xt, x0 + sigma * eps, atol=1e-14)
    np.testing.assert_allclose(icfm.sample(x0, x1, 1.0, eps).xt, x1 + sigma * eps, atol=1e-14)
    vp = paths.make_path("vp")
    np.testing.assert_array_equal(vp.sample(x0, x1, 0.0).xt, x0)
    np.testing.assert_allclose(vp.sample(x0, x1, 1.0).xt, x1, rtol=0, atol=1e-14)


def test_icfm_with_zero_sigma_is_the_linear_path():
    x0, x1, eps = draw(0, 10, 3)
    t = np.linspace(0, 1, 10)
    a = paths.ICFMPath(0.0).sample(x0, x1, t, eps)
    b = paths.LinearPath().sample(x0, x1, t)
    np.testing.assert_array_equal(a.xt, b.xt)
    np.testing.assert_array_equal(a.ut, b.ut)


# --- ut is the time derivative of xt -------------------------------------------------------------

@given(seed=seeds, n=sizes, d=dims, sigma=sigmas, t=inner_times)
def test_ut_is_central_difference_of_xt(seed, n, d, sigma, t):
    x0, x1, eps = draw(seed, n, d)
    for path in all_paths(sigma):
        ahead = sample(path, x0, x1, t + H, eps).xt
        behind = sample(path, x0, x1, t - H, eps).xt  # eps held fixed
        numeric = (ahead - behind) / (2 * H)
        np.testing.assert_allclose(sample(path, x0, x1, t, eps).ut, numeric, rtol=1e-6,
                                   atol=1e-6, err_msg=path.name)


@given(seed=seeds, n=sizes, d=dims, sigma=st.floats(0.0, 0.9), t=st.floats(0.0, 0.999))
def test_lipman_ut_is_the_papers_vector_field_at_xt(seed, n, d, sigma, t):
    # Lipman et al. 2023 eq. 21: u_t(x | x1) = (x1 - (1 - sigma_min) x) / (1 - (1 - sigma_min) t)
    x0, x1, _ = draw(seed, n, d)
    s = paths.LipmanPath(sigma).sample(x0, x1, t)
    field = (x1 - (1 - sigma) * s.xt) / (1 - (1 - sigma) * t)
    np.testing.assert_allclose(s.ut, field, rtol=1e-9, atol=1e-9)


# --- special cases of the affine path --------------------------------------------------------

@given(seed=seeds, n=sizes, d=dims, sigma=sigmas)
def test_linear_and_lipman_are_affine_paths(seed, n, d, sigma):
    x0, x1, _ = draw(seed, n, d)
    t = np.random.default_rng(seed).uniform(size=n)
    pairs = [(paths.LinearPath(), paths.AffinePath(paths.LinearScheduler())),
             (paths.LipmanPath(sigma), paths.AffinePath(paths.LipmanScheduler(sigma)))]
    for direct, affine in pairs:
        a, b = direct.sample(x0, x1, t), affine.sample(x0, x1, t)
        np.testing.assert_allclose(a.xt, b.xt, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(a.ut, b.ut, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, n=sizes, d=dims, sigma=sigmas)
def test_paths_are_the_affine_path_with_their_scheduler_to_the_last_bit(dtype, seed, n, d, sigma):
    x0, x1, _ = (a.astype(dtype) for a in draw(seed, n, d))
    t = np.random.default_rng(seed).uniform(size=n).astype(dtype)
    pairs = [(paths.LinearPath(), paths.LinearScheduler()),
             (paths.LipmanPath(sigma), paths.LipmanScheduler(sigma))]
    for path, scheduler in pairs:
        assert isinstance(path, paths.AffinePath) and path.scheduler == scheduler
        a, b = path.sample(x0, x1, t), paths.AffinePath(scheduler).sample(x0, x1, t)
        assert a.xt.tobytes() == b.xt.tobytes() and a.ut.tobytes() == b.ut.tobytes(), path.name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(seed=seeds, n=sizes, d=dims, sigma=sigmas)
def test_paths_compute_the_papers_formulas_to_the_last_bit(dtype, seed, n, d, sigma):
    # The closed forms as the papers write them, evaluated in the same floating-point order:
    # training runs pinned bit for bit rely on the path's arithmetic staying exactly this.
    x0, x1, eps = (a.astype(dtype) for a in draw(seed, n, d))
    t = np.random.default_rng(seed).uniform(size=(n, 1)).astype(dtype)
    shrink = 1 - sigma
    expected = {
        paths.LinearPath(): ((1 - t) * x0 + t * x1, x1 - x0),  # Liu et al. 2023
        paths.LipmanPath(sigma): ((1 - shrink * t) * x0 + t * x1, x1 - shrink * x0),  # eq. 22-23
        paths.ICFMPath(sigma): ((1 - t) * x0 + t * x1 + sigma * eps, x1 - x0),  # Tong et al.
    }
    for path, (xt, ut) in expected.items():
        s = sample(path, x0, x1, t, eps)
        assert s.xt.dtype == dtype and s.ut.dtype == dtype, path.name
        assert s.xt.tobytes() == xt.tobytes() and s.ut.tobytes() == ut.tobytes(), path.name


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
@given(seed=seeds, n=sizes, d=dims)
def test_affine_ut_is_central_difference_of_xt_at_per_row_times(scheduler, seed, n, d):
    x0, x1, _ = draw(seed, n, d)
    t = np.random.default_rng(seed).uniform(2 * H, 1 - 2 * H, size=(n, 1))
    path = paths.AffinePath(scheduler)
    numeric = (path.sample(x0, x1, t + H).xt - path.sample(x0, x1, t - H).xt) / (2 * H)
    np.testing.assert_allclose(path.sample(x0, x1, t).ut, numeric, rtol=1e-6, atol=1e-6)


@given(seed=seeds, n=sizes, d=dims, sigma=sigmas)
def test_per_row_times_match_scalar_times(seed, n, d, sigma):
    x0, x1, eps = draw(seed, n, d)
    t = np.random.default_rng(seed + 1).uniform(size=n)
    for path in all_paths(sigma):
        batch = sample(path, x0, x1, t, eps)
        for i in range(n):
            row = sample(path, x0[i:i + 1], x1[i:i + 1], float(t[i]), eps[i:i + 1])
            np.testing.assert_allclose(batch.xt[i], row.xt[0], rtol=1e-15, atol=1e-15)
            np.testing.assert_allclose(batch.ut[i], row.ut[0], rtol=1e-15, atol=1e-15)


# --- schedulers ------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
@given(t=inner_times)
def test_scheduler_derivatives_match_finite_differences(scheduler, t):
    for value, derivative in ((scheduler.alpha, scheduler.d_alpha),
                              (scheduler.sigma, scheduler.d_sigma)):
        numeric = (value(t + H) - value(t - H)) / (2 * H)
        np.testing.assert_allclose(derivative(t), numeric, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=repr)
def test_scheduler_boundary_values_and_monotonicity(scheduler):
    # Guide eq. 4.51: alpha_0 = 0, alpha_1 = 1, sigma_0 = 1, d_alpha > 0 > d_sigma; sigma_1 is 0,
    # or sigma_min for the Lipman scheduler.
    sigma_1 = getattr(scheduler, "sigma_min", 0.0)
    np.testing.assert_allclose([scheduler.alpha(0.0), scheduler.alpha(1.0)], [0.0, 1.0],
                               atol=1e-15)
    np.testing.assert_allclose([scheduler.sigma(0.0), scheduler.sigma(1.0)], [1.0, sigma_1],
                               atol=1e-15)
    t = np.linspace(0.001, 0.999, 999)
    assert np.all(scheduler.d_alpha(t) > 0) and np.all(scheduler.d_sigma(t) < 0)
    assert scheduler.alpha(t).shape == t.shape and scheduler.d_sigma(t).shape == t.shape


def test_cosine_scheduler_preserves_variance():
    t = np.linspace(0, 1, 101)
    s = paths.CosineScheduler()
    np.testing.assert_allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, 1.0, rtol=1e-15)
    np.testing.assert_allclose(s.alpha(0.5), math.sqrt(0.5), rtol=1e-15)


def test_schedulers_keep_float32():
    t = np.linspace(0, 1, 5, dtype=np.float32)
    for scheduler in SCHEDULERS:
        for f in (scheduler.alpha, scheduler.sigma, scheduler.d_alpha, scheduler.d_sigma):
            assert f(t).dtype == np.float32, (scheduler, f)


def test_scheduler_alpha_returns_a_copy():
    t = np.array([0.25, 0.5])
    for scheduler in (paths.LinearScheduler(), paths.LipmanScheduler()):
        scheduler.alpha(t)[0] = 9.0
        assert t[0] == 0.25


# --- shapes, dtypes, results -----------------------------------------------------------------

@pytest.mark.parametrize("t_shape", ["scalar", "flat", "column"])
def test_time_shapes_give_column_times(t_shape):
    n, d = 7, 3
    x0, x1, eps = draw(3, n, d)
    t = {"scalar": 0.3, "flat": np.full(n, 0.3), "column": np.full((n, 1), 0.3)}[t_shape]
    for path in all_paths(0.1):
        s = sample(path, x0, x1, t, eps)
        assert s.t.shape == (n, 1) and np.all(s.t == 0.3)
        assert s.xt.shape == (n, d) and s.ut.shape == (n, d)
        np.testing.assert_array_equal(s.x0, x0)
        np.testing.assert_array_equal(s.x1, x1)


def test_float32_in_float32_out():
    x0, x1, eps = (a.astype(np.float32) for a in draw(4, 8, 2))
    t = np.linspace(0, 1, 8)  # float64 times follow the points' dtype
    for path in all_paths(0.1):
        s = sample(path, x0, x1, t, eps)
        for field in ("x0", "x1", "t", "xt", "ut"):
            assert getattr(s, field).dtype == np.float32, (path.name, field)


def test_mixed_precision_promotes_to_float64():
    x0, x1, _ = draw(5, 4, 2)
    s = paths.LinearPath().sample(x0.astype(np.float32), x1, 0.5)
    assert s.xt.dtype == np.float64 and s.t.dtype == np.float64


def test_integer_points_become_float64():
    s = paths.LinearPath().sample(np.zeros((2, 2), dtype=int), np.ones((2, 2), dtype=int), 0.5)
    assert s.xt.dtype == np.float64
    np.testing.assert_array_equal(s.xt, 0.5)


def test_path_sample_is_frozen():
    s = paths.LinearPath().sample(np.zeros((1, 1)), np.ones((1, 1)), 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.xt = np.zeros((1, 1))


def test_paths_draw_no_randomness():
    x0, x1, eps = draw(6, 5, 2)
    state = np.random.get_state()[1].copy()
    for path in all_paths(0.1):
        first, second = sample(path, x0, x1, 0.4, eps), sample(path, x0, x1, 0.4, eps)
        np.testing.assert_array_equal(first.xt, second.xt)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# --- make_path -------------------------------------------------------------------------------

def test_make_path_builds_each_named_path():
    assert paths.PATHS == ("linear", "lipman", "icfm", "vp")
    built = {name: paths.make_path(name, sigma=0.2) for name in paths.PATHS}
    assert isinstance(built["linear"], paths.LinearPath)
    assert isinstance(built["linear"].scheduler, paths.LinearScheduler)
    assert isinstance(built["lipman"], paths.LipmanPath) and built["lipman"].sigma_min == 0.2
    assert built["lipman"].scheduler == paths.LipmanScheduler(0.2)
    assert isinstance(built["icfm"], paths.ICFMPath) and built["icfm"].sigma == 0.2
    assert isinstance(built["vp"], paths.AffinePath)
    assert isinstance(built["vp"].scheduler, paths.CosineScheduler)
    for name, path in built.items():
        assert path.name == name
        assert path.needs_noise == (name == "icfm")


def test_make_path_default_sigma_is_0_1():
    assert paths.make_path("lipman").sigma_min == 0.1
    assert paths.make_path("icfm").sigma == 0.1


# --- errors ----------------------------------------------------------------------------------

def test_icfm_without_eps_raises():
    x0, x1, _ = draw(7, 4, 2)
    with pytest.raises(ValueError, match="eps is required"):
        paths.ICFMPath(0.1).sample(x0, x1, 0.5)


def test_eps_given_to_a_deterministic_path_raises():
    x0, x1, eps = draw(8, 4, 2)
    for path in all_paths(0.1):
        if not path.needs_noise:
            with pytest.raises(ValueError, match="eps must be None"):
                path.sample(x0, x1, 0.5, eps=eps)


@pytest.mark.parametrize("x0_shape,x1_shape", [((4, 2), (5, 2)), ((4, 2), (4, 3)),
                                               ((4,), (4,)), ((4, 2, 1), (4, 2, 1)),
                                               ((0, 2), (0, 2))])
def test_bad_point_shapes_raise(x0_shape, x1_shape):
    for path in all_paths(0.1):
        eps = np.zeros(x0_shape) if path.needs_noise else None
        with pytest.raises(ValueError, match="x0|x1"):
            path.sample(np.zeros(x0_shape), np.zeros(x1_shape), 0.5, eps=eps)


@pytest.mark.parametrize("eps_shape", [(4, 3), (3, 2), (4,)])
def test_icfm_eps_shape_mismatch_raises(eps_shape):
    with pytest.raises(ValueError, match="eps must"):
        paths.ICFMPath(0.1).sample(np.zeros((4, 2)), np.zeros((4, 2)), 0.5, eps=np.zeros(eps_shape))


@pytest.mark.parametrize("t", [np.zeros(3), np.zeros((4, 2)), -0.1, 1.5, np.nan,
                               np.array([0.5, 0.5, 0.5, 2.0])])
def test_bad_times_raise(t):
    for path in all_paths(0.1):
        eps = np.zeros((4, 2)) if path.needs_noise else None
        with pytest.raises(ValueError, match="t must"):
            path.sample(np.zeros((4, 2)), np.ones((4, 2)), t, eps=eps)


def test_non_finite_points_raise():
    x = np.zeros((2, 2))
    x[0, 1] = np.inf
    with pytest.raises(ValueError, match="x1 must be finite"):
        paths.LinearPath().sample(np.zeros((2, 2)), x, 0.5)


@pytest.mark.parametrize("build,error", [
    (lambda: paths.make_path("ot"), ValueError),
    (lambda: paths.make_path("icfm", sigma=-0.1), ValueError),
    (lambda: paths.make_path("lipman", sigma=1.0), ValueError),
    (lambda: paths.make_path("lipman", sigma=float("nan")), ValueError),
    (lambda: paths.make_path("icfm", sigma="0.1"), TypeError),
    (lambda: paths.LipmanScheduler(sigma_min=-0.5), ValueError),
])
def test_bad_path_settings_raise(build, error):
    with pytest.raises(error, match="name|sigma"):
        build()
