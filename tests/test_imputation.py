"""Tests for npflow.imputation: replacement during the ODE solve, against the exact field of a
Gaussian target (x0 ~ N(0, I), x1 ~ N(m, S), the linear path)."""
import numpy as np
import pytest

from npflow import _checks, imputation, paths

M = np.array([1.0, -2.0])


def gaussian_field(S):
    """The exact marginal velocity of the linear path from N(0, I) to N(M, S):
    ``E[x1 - x0 | xt] = M + (t S - (1 - t) I) ((1 - t)^2 I + t^2 S)^-1 (x - t M)``."""
    eye = np.eye(len(S))

    def field(x, t):
        A = (t * S - (1 - t) * eye) @ np.linalg.inv((1 - t) ** 2 * eye + t ** 2 * S)
        return M + (x - t * M) @ A.T
    return field


def impute_b(S, n=4000, seed=0, steps=50, resample=1):
    """Impute coordinate b of n rows whose coordinate a is known to be 2."""
    rng = np.random.default_rng(seed)
    x1 = np.zeros((n, 2))
    x1[:, 0] = 2.0
    known = np.zeros((n, 2), dtype=bool)
    known[:, 0] = True
    return imputation.impute(gaussian_field(S), rng.standard_normal((n, 2)), x1, known,
                             paths.make_path("linear"), "rk4", steps, resample, rng)


def test_known_coordinates_come_back_exactly():
    x = impute_b(np.array([[1.0, 0.8], [0.8, 1.0]]), n=50)
    assert np.all(x[:, 0] == 2.0) and np.all(np.isfinite(x[:, 1]))


def test_a_row_without_unknown_coordinates_is_unchanged():
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((5, 2))
    x = imputation.impute(gaussian_field(np.eye(2)), rng.standard_normal((5, 2)), x1,
                          np.ones((5, 2), dtype=bool), paths.make_path("icfm"), "euler", 3)
    np.testing.assert_array_equal(x, x1)


def test_independent_coordinates_impute_the_marginal():
    b = impute_b(np.diag([1.0, 4.0]))[:, 1]  # b ~ N(-2, 4) whatever a is
    assert abs(b.mean() + 2.0) < 4 * np.sqrt(4.0 / len(b))
    assert abs(b.var() - 4.0) < 0.3


def test_correlated_coordinates_lean_towards_the_conditional():
    # b | a = 2 is N(-1.2, 0.36); the marginal is N(-2, 1). Replacement lands in between
    # (measured: mean -1.66, variance 0.66), the heuristic's documented bias.
    b = impute_b(np.array([[1.0, 0.8], [0.8, 1.0]]))[:, 1]
    assert -1.9 < b.mean() < -1.3
    assert 0.4 < b.var() < 0.9


def test_resampling_moves_the_draws_to_the_conditional():
    # RePaint's passes: 10 per step land near N(-1.2, 0.36) (measured: mean -1.28, variance
    # 0.39), where one pass stays half-way (-1.66, 0.66).
    b = impute_b(np.array([[1.0, 0.8], [0.8, 1.0]]), resample=10, steps=20)[:, 1]
    assert -1.35 < b.mean() < -1.15
    assert 0.3 < b.var() < 0.45


def test_resampling_keeps_independent_coordinates_marginal():
    b = impute_b(np.diag([1.0, 4.0]), resample=4, steps=20)[:, 1]
    assert abs(b.mean() + 2.0) < 4 * np.sqrt(4.0 / len(b))
    assert abs(b.var() - 4.0) < 0.3


def test_resampling_needs_an_affine_path_and_a_generator():
    args = (lambda x, t: x, np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2), dtype=bool))
    with pytest.raises(_checks.OptionError, match="resample"):
        imputation.impute(*args, paths.make_path("icfm"), "euler", 2, resample=2,
                          rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        imputation.impute(*args, paths.make_path("linear"), "euler", 2, resample=2)


def test_dopri5_and_shapes_are_refused():
    field, path = gaussian_field(np.eye(2)), paths.make_path("linear")
    x = np.zeros((3, 2))
    with pytest.raises(_checks.OptionError, match="method"):
        imputation.impute(field, x, x, np.ones((3, 2), bool), path, "dopri5")
    with pytest.raises(ValueError, match="known"):
        imputation.impute(field, x, x, np.ones((3, 1), bool), path)


def test_path_mean_is_the_path_without_noise():
    rng = np.random.default_rng(2)
    x0, x1 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for name in ("linear", "icfm"):
        np.testing.assert_allclose(imputation.path_mean(paths.make_path(name), x0, x1, 0.25),
                                   0.75 * x0 + 0.25 * x1)
