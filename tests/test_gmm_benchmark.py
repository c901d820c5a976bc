"""Tests of the Gaussian-mixture ground truth of demos/experiments/gmm_benchmark.py, against
closed forms, and a smoke run of its ``main`` at tiny sizes."""
import json

import numpy as np
import pytest

from _helpers import load_demo
from npflow import baselines

def load_benchmark():
    return load_demo("experiments/gmm_benchmark")


gb = load_benchmark()


def normal_log_density(x, mean, cov):
    """Independent reference: ``log N(x; m, S)`` through S^-1 and det S (no Cholesky)."""
    d = x.shape[1]
    diff = x - mean  # (n, d)
    quad = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return -0.5 * quad - 0.5 * np.log(np.linalg.det(cov)) - 0.5 * d * np.log(2 * np.pi)


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_log_density_matches_the_mixture_formula(dim):
    gmm = gb.make_gmm(dim, np.random.default_rng(dim))
    x = np.random.default_rng(10 + dim).standard_normal((50, dim)) * 2.0  # (50, d)
    density = sum(w * np.exp(normal_log_density(x, m, s))
                  for w, m, s in zip(gmm.weights, gmm.means, gmm.covs))
    np.testing.assert_allclose(gb.gmm_log_density(gmm, x), np.log(density), rtol=1e-10)


def test_log_density_integrates_to_one_in_2d():
    gmm = gb.make_gmm(2, np.random.default_rng(3))
    edges = np.linspace(-12, 12, 401)
    centres = (edges[:-1] + edges[1:]) / 2  # (400,)
    gx, gy = np.meshgrid(centres, centres)
    cells = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (400^2, 2)
    mass = np.exp(gb.gmm_log_density(gmm, cells)).sum() * (edges[1] - edges[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_sampler_has_the_mixture_moments():
    gmm = gb.make_gmm(3, np.random.default_rng(4))
    n = 400_000
    x = gb.sample_gmm(gmm, n, np.random.default_rng(5))  # (n, 3)
    mean = gmm.weights @ gmm.means  # (3,)
    second = np.einsum("k,kij->ij", gmm.weights,
                       gmm.covs + np.einsum("ki,kj->kij", gmm.means, gmm.means))
    cov = second - np.outer(mean, mean)  # (3, 3)
    stderr = np.sqrt(np.diag(cov) / n)  # of each coordinate's mean
    assert np.all(np.abs(x.mean(axis=0) - mean) < 5 * stderr)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=5 * np.sqrt(2 / n) * np.diag(cov).max())


def test_covariances_are_well_conditioned_and_means_spread():
    dim = 10
    gmm = gb.make_gmm(dim, np.random.default_rng(6))
    eigenvalues = np.linalg.eigvalsh(gmm.covs)  # (K, d)
    assert eigenvalues.min() >= gb.JITTER
    assert (eigenvalues[:, -1] / eigenvalues[:, 0]).max() < 100
    np.testing.assert_allclose(gmm.chols @ gmm.chols.transpose(0, 2, 1), gmm.covs, atol=1e-12)
    gaps = np.linalg.norm(gmm.means[:, None] - gmm.means[None], axis=-1)[np.triu_indices(8, 1)]
    assert 2.0 < np.median(gaps) < 7.0  # ~ spread sqrt(2) = 4.2


def test_entropy_of_one_gaussian_is_the_closed_form():
    gmm = gb.make_gmm(4, np.random.default_rng(7), n_components=1)
    estimate = gb.entropy(gmm, 100_000, np.random.default_rng(8))
    exact = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * gmm.covs[0]))
    assert abs(estimate.value - exact) < 4 * estimate.stderr
    assert 0 < estimate.stderr < 0.02  # var of -log p is d / 2 = 2: stderr sqrt(2 / 1e5)


def test_fitted_gaussian_recovers_a_gaussian_and_is_worse_on_a_mixture():
    rng = np.random.default_rng(9)
    single = gb.make_gmm(3, rng, n_components=1)
    x = gb.sample_gmm(single, 200_000, rng)
    fitted = baselines.GaussianDensity(reg_covar=0.0).fit(x)  # the benchmark's baseline
    np.testing.assert_allclose(fitted.mean_, single.means[0], atol=0.01)
    probe = gb.sample_gmm(single, 20, rng)  # where the density is
    np.testing.assert_allclose(fitted.log_prob(probe),  # the ML Gaussian, exactly
                               normal_log_density(probe, x.mean(axis=0), np.cov(x.T, bias=True)),
                               rtol=1e-9)
    np.testing.assert_allclose(fitted.log_prob(probe),  # close to the true one
                               normal_log_density(probe, single.means[0], single.covs[0]),
                               atol=0.05)
    mixture = gb.make_gmm(3, rng)
    rows = gb.sample_gmm(mixture, 50_000, rng)
    kl = gb.mean_estimate(gb.gmm_log_density(mixture, rows) -
                          baselines.GaussianDensity(reg_covar=0.0).fit(rows).log_prob(rows))
    assert kl.value > 10 * kl.stderr  # KL(p || Gaussian) > 0: the mixture is not Gaussian


def test_mean_estimate_reports_the_standard_error():
    estimate = gb.mean_estimate([1.0, 2.0, 3.0, 4.0])
    assert estimate.value == 2.5
    assert estimate.stderr == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)


def test_make_gmm_validates_its_arguments():
    with pytest.raises(ValueError, match="dim"):
        gb.make_gmm(0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        gb.make_gmm(2, 0)
    with pytest.raises(ValueError, match="mixture must be one of far, near, got 'wide'"):
        gb.make_gmm(2, np.random.default_rng(0), "wide")
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        gb.gmm_log_density(gb.make_gmm(2, np.random.default_rng(0)), np.zeros((3, 5)))


def test_the_two_mixtures_differ_only_in_the_scale_of_their_means():
    """far: s_d = 2.6 in every d; near: 3 / sqrt(d); the same covariances and mean directions."""
    dim = 10
    far, near = (gb.make_gmm(dim, np.random.default_rng([gb.GMM_SEED, dim]), m)
                 for m in ("far", "near"))
    np.testing.assert_array_equal(far.covs, near.covs)
    np.testing.assert_allclose(far.means, near.means * 2.6 / (3.0 / np.sqrt(dim)), rtol=1e-12)
    gaps = np.linalg.norm(far.means[:, None] - far.means[None], axis=-1)[np.triu_indices(8, 1)]
    assert 7.0 < np.median(gaps) < 16.0  # ~ 2.6 sqrt(2 d) = 11.6


def test_definition_stderr_adds_the_two_variances():
    """std([0, 2]) = sqrt(2): over 4 rows the NLL's error is sqrt(2) / 2; H's is 0.5."""
    se = gb.definition_stderr(np.array([0.0, 2.0]), 4, gb.Estimate(1.0, 0.5))
    assert se == pytest.approx(np.sqrt(0.5 + 0.25))


def test_quick_run_writes_the_tables(tmp_path):
    rows = gb.main(["--quick", "--dims", "2", "3", "--out", str(tmp_path)])
    assert [(r["mixture"], r["d"]) for r in rows] == [("far", 2), ("far", 3), ("near", 2),
                                                      ("near", 3)]
    with open(tmp_path / gb.JSON_NAME) as f:
        stored = json.load(f)
    assert stored["quick"] and len(stored["rows"]) == 4
    for row in stored["rows"]:
        assert np.isfinite([row["flow_kl"], row["gaussian_kl"], row["entropy"]]).all()
        # KL = NLL - H on the held-out rows, however the Monte Carlo errors fall
        assert row["flow_kl"] == pytest.approx(row["flow_nll"] - row["entropy"])
        assert row["flow_kl_stderr"] > row["entropy_stderr"]  # the NLL's error comes on top
        assert row["gaussian_kl_paired"] > 0  # the fitted Gaussian is worse than the truth
    table = (tmp_path / gb.MD_NAME).read_text()
    assert table.count("\n") == 6 and "Gaussian KL" in table
