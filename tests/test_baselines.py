"""Tests for npflow.baselines against closed forms, EM's guarantees and grid integrals."""
import math

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from npflow.baselines import GaussianDensity, GaussianMixture, select_components


def random_covariance(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def closed_form_log_density(x, mean, cov):
    """``log N(x; mean, cov)`` through the inverse and determinant (independent of Cholesky)."""
    d = mean.shape[0]
    diff = x - mean
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(cov)[1] + maha)


def two_clusters(rng, n=600):
    """A well-separated 2-component mixture in 2-D: weights (0.3, 0.7)."""
    means = np.array([[-4.0, 0.0], [4.0, 1.0]])
    covs = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 1.2]]])
    k = (rng.random(n) < 0.7).astype(int)
    z = rng.standard_normal((n, 2))
    x = means[k] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[k], z)
    return x, means, covs, np.array([0.3, 0.7])


# --- GaussianDensity -------------------------------------------------------------------------

@given(d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
@settings(deadline=None)
def test_gaussian_log_prob_matches_closed_form(d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((50, d)) @ np.linalg.cholesky(random_covariance(rng, d)).T
    model = GaussianDensity(reg_covar=0.0).fit(X)
    mean = X.mean(axis=0)
    cov = (X - mean).T @ (X - mean) / X.shape[0]
    np.testing.assert_allclose(model.mean_, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.covariance_, cov, rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((20, d))
    np.testing.assert_allclose(model.log_prob(x), closed_form_log_density(x, mean, cov),
                               rtol=1e-9, atol=1e-9)
    assert model.score(x) == pytest.approx(float(np.mean(model.log_prob(x))))


def test_gaussian_reg_covar_is_added_to_the_diagonal():
    X = np.random.default_rng(0).standard_normal((40, 3))
    a, b = GaussianDensity(0.0).fit(X), GaussianDensity(0.5).fit(X)
    np.testing.assert_allclose(b.covariance_, a.covariance_ + 0.5 * np.eye(3))


def test_gaussian_sample_moments():
    rng = np.random.default_rng(1)
    mean, cov = np.array([1.0, -2.0, 0.5]), random_covariance(rng, 3)
    model = GaussianDensity(0.0)
    model.mean_, model.cholesky_ = mean, np.linalg.cholesky(cov)
    x = model.sample(200_000, rng)
    se = np.sqrt(np.diag(cov) / x.shape[0])
    assert np.all(np.abs(x.mean(axis=0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.02)


def test_gaussian_density_integrates_to_one_in_2d():
    X = two_clusters(np.random.default_rng(2))[0]
    model = GaussianDensity().fit(X)
    assert grid_integral_2d(model, (-15, 15)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("X", [
    np.ones((10, 2)),
    # d points in d dimensions: rank d - 1. For this draw Cholesky succeeds by round-off (the
    # smallest eigenvalue comes out as 2e-16) and gave a finite log-density of 16.5 at each point.
    np.random.default_rng(0).standard_normal((3, 3)),
])
def test_singular_covariance_says_raise_reg_covar(X):
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianDensity(0.0).fit(X)
    assert np.all(np.isfinite(GaussianDensity(1e-3).fit(X).log_prob(X)))


# --- GaussianMixture -------------------------------------------------------------------------

def grid_integral_2d(model, limits, m=400):
    low, high = limits
    h = (high - low) / m
    c = low + h * (np.arange(m) + 0.5)
    gx, gy = np.meshgrid(c, c)
    return float(np.sum(np.exp(model.log_prob(np.stack([gx.ravel(), gy.ravel()], 1)))) * h * h)


def em_data(seed):
    """200 points in 3-D: two clusters on a random plane, plus isotropic noise of s.d. 0.3."""
    rng = np.random.default_rng(seed)
    X = two_clusters(rng, 200)[0] @ rng.standard_normal((2, 3))
    return X + 0.3 * rng.standard_normal(X.shape), rng


@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4))
@settings(deadline=None, max_examples=15)
def test_em_log_likelihood_never_decreases(seed, k):
    X, rng = em_data(seed)
    model = GaussianMixture(k, reg_covar=0.0, max_iter=60, tol=0.0)
    try:
        model.fit(X, rng)
    except ValueError as error:
        # With reg_covar = 0 the likelihood is unbounded: EM may climb towards a component
        # collapsing onto d = 3 or fewer points (Bishop 2006, Sec. 9.2.1), and fit refuses the
        # singular covariance (about 2% of seeds for k = 3, 5% for k = 4). EM's guarantee is
        # for the runs that stay away from it.
        assert "singular" in str(error) and "reg_covar" in str(error)
        reject()
    steps = np.diff(model.history_)
    assert np.all(steps >= -1e-9 * np.abs(np.asarray(model.history_[1:]))), steps.min()


@pytest.mark.parametrize("seed, k", [(184289938, 3), (198, 4)])
def test_em_refuses_a_component_collapsing_onto_too_few_points(seed, k):
    # Seed 198 collapses a component onto 3 points whose covariance (smallest eigenvalue about
    # -2e-16 times the largest) still passes Cholesky by round-off; its log-likelihood was
    # round-off too, and fell by 0.004 nats in one EM step.
    X, rng = em_data(seed)
    with pytest.raises(ValueError, match="singular; raise reg_covar"):
        GaussianMixture(k, reg_covar=0.0, max_iter=60, tol=0.0).fit(X, rng)
    assert np.isfinite(GaussianMixture(k, reg_covar=1e-3, max_iter=60).fit(X, rng).score(X))


def test_em_recovers_a_well_separated_two_component_mixture():
    rng = np.random.default_rng(3)
    X, means, covs, weights = two_clusters(rng, 4000)
    model = GaussianMixture(2).fit(X, np.random.default_rng(4))
    order = np.argsort(model.means_[:, 0])
    assert model.converged_
    np.testing.assert_allclose(model.weights_[order], weights, atol=0.03)
    np.testing.assert_allclose(model.means_[order], means, atol=0.1)
    np.testing.assert_allclose(model.covariances_[order], covs, atol=0.12)


def test_mixture_log_prob_is_the_weighted_sum_of_component_densities():
    rng = np.random.default_rng(5)
    X = two_clusters(rng, 300)[0]
    model = GaussianMixture(3).fit(X, rng)
    x = rng.standard_normal((25, 2)) * 3
    direct = sum(w * np.exp(closed_form_log_density(x, mu, cov)) for w, mu, cov in
                 zip(model.weights_, model.means_, model.covariances_))
    np.testing.assert_allclose(model.log_prob(x), np.log(direct), rtol=1e-9)


def test_mixture_log_prob_is_finite_far_from_every_component():
    X = two_clusters(np.random.default_rng(6), 300)[0]
    model = GaussianMixture(2).fit(X, np.random.default_rng(0))
    far = np.array([[1e3, -1e3]])
    assert np.isfinite(model.log_prob(far)).all()  # log-sum-exp: no log(0)


def test_mixture_density_integrates_to_one_in_1d_and_2d():
    rng = np.random.default_rng(7)
    X2 = two_clusters(rng, 500)[0]
    assert grid_integral_2d(GaussianMixture(3).fit(X2, rng), (-15, 15)) == \
        pytest.approx(1.0, abs=1e-3)
    X1 = X2[:, :1]
    model = GaussianMixture(2).fit(X1, rng)
    h = 0.01
    grid = np.arange(-20, 20, h)[:, None] + h / 2
    assert float(np.sum(np.exp(model.log_prob(grid))) * h) == pytest.approx(1.0, abs=1e-4)


def test_mixture_sample_moments():
    rng = np.random.default_rng(8)
    model = GaussianMixture(2).fit(two_clusters(rng, 500)[0], rng)
    x = model.sample(200_000, np.random.default_rng(9))
    mean = model.weights_ @ model.means_
    spread = sum(w * (np.outer(mu - mean, mu - mean) + cov) for w, mu, cov in
                 zip(model.weights_, model.means_, model.covariances_))
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), spread, rtol=0.02, atol=0.02)


def test_fit_is_deterministic_given_the_rng():
    X = two_clusters(np.random.default_rng(10), 300)[0]
    a = GaussianMixture(3).fit(X, np.random.default_rng(1))
    b = GaussianMixture(3).fit(X, np.random.default_rng(1))
    np.testing.assert_array_equal(a.means_, b.means_)


def test_select_components_picks_two_for_two_clusters():
    rng = np.random.default_rng(11)
    X = two_clusters(rng, 1500)[0]
    best, scores = select_components(X[:1000], X[1000:], [1, 2, 3], rng)
    assert list(scores) == [1, 2, 3]
    assert scores[2] > scores[1] + 0.5
    assert best.n_components == max(scores, key=scores.get)
    assert best.score(X[1000:]) == pytest.approx(scores[best.n_components])


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error", [
    ({"n_components": 0}, ValueError), ({"n_components": 1.5}, TypeError),
    ({"n_components": 2, "reg_covar": -1.0}, ValueError),
    ({"n_components": 2, "max_iter": 0}, ValueError),
    ({"n_components": 2, "tol": float("nan")}, ValueError)])
def test_bad_hyper_parameters_raise(kwargs, error):
    with pytest.raises(error):
        GaussianMixture(**kwargs)


def test_unfitted_models_and_bad_inputs_raise():
    with pytest.raises(ValueError, match="not fitted"):
        GaussianDensity().log_prob(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixture(2).sample(3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least n_components"):
        GaussianMixture(5).fit(np.zeros((3, 2)), np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        GaussianMixture(1).fit(np.zeros((3, 2)), rng=0)
    model = GaussianDensity().fit(np.random.default_rng(0).standard_normal((10, 2)))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        model.log_prob(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="candidates"):
        select_components(np.zeros((3, 2)), np.zeros((3, 2)), [], np.random.default_rng(0))
