"""Tests for npflow.flow: the estimator's vocabulary, its numbers against closed forms and the
likelihood module, files, and one-line errors for bad options and data."""
import doctest

import numpy as np
import pytest

import npflow
from npflow import checkpoint, flow as flow_module, likelihood
from npflow.flow import Flow
from npflow.train import DATA_DEFAULTS

MEAN, STD = np.array([4.0, -2.0, 10.0]), np.array([1.0, 3.0, 0.5])


def gaussian_rows(n, seed):
    return MEAN + STD * np.random.default_rng(seed).standard_normal((n, 3))


@pytest.fixture(scope="module")
def fitted():
    return Flow(steps=400, hidden=(32, 32), batch_size=128, solver_steps=20,
                eval_every=100).fit(gaussian_rows(600, 0))


def test_the_module_docstring_example_runs():
    result = doctest.testmod(flow_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


def test_fit_returns_the_estimator_with_its_fitted_state(fitted):
    assert isinstance(fitted, Flow) and fitted.n_features_in_ == 3 and fitted.classes_ is None
    assert fitted.history_["loss"].shape == (400,)
    assert [int(s) for s in fitted.history_["val"][:, 0]] == [100, 200, 300, 400]
    train_rows = np.setdiff1d(np.arange(600), fitted.checkpoint_.data.val_index)  # 540 rows
    assert train_rows.size == 540
    np.testing.assert_allclose(fitted.transform_.mean,
                               gaussian_rows(600, 0)[train_rows].mean(axis=0), rtol=1e-12)


def test_options_take_data_defaults_then_trainconfig_defaults():
    est = Flow(steps=7)
    assert est.config.steps == 7 and est.config.target == "data"
    for field, value in DATA_DEFAULTS.items():
        if field != "steps":
            assert getattr(est.config, field) == value
    assert est.options == {"steps": 7}


def test_log_prob_is_the_change_of_variables_in_data_units(fitted):
    X = gaussian_rows(5, 1)
    z = fitted.transform_.forward(X).astype(fitted.model_.dtype)
    inner = likelihood.log_likelihood(fitted.model_, z, method="rk4", steps=20).log_prob
    np.testing.assert_allclose(fitted.log_prob(X), inner - np.sum(np.log(fitted.transform_.scale)),
                               rtol=1e-6)
    assert fitted.score(X) == pytest.approx(float(np.mean(fitted.log_prob(X))))


def test_a_learned_gaussian_has_about_the_true_log_likelihood(fitted):
    held_out = gaussian_rows(2000, 2)
    entropy = 0.5 * 3 * np.log(2 * np.pi * np.e) + np.sum(np.log(STD))
    assert -fitted.score(held_out) == pytest.approx(entropy, abs=0.15)


def test_samples_have_the_data_moments(fitted):
    x = fitted.sample(4000, rng=np.random.default_rng(3))
    assert x.shape == (4000, 3) and x.dtype == np.float64
    np.testing.assert_allclose(x.mean(axis=0), MEAN, atol=0.25 * STD.max())
    np.testing.assert_allclose(x.std(axis=0), STD, rtol=0.2)
    np.testing.assert_array_equal(fitted.sample(5), fitted.sample(5))  # rng=None: the seed


def test_transform_and_inverse_transform_are_inverse_maps(fitted):
    X = gaussian_rows(20, 4)
    Z = fitted.transform(X)
    assert Z.shape == X.shape
    np.testing.assert_allclose(fitted.inverse_transform(Z), X, rtol=1e-4, atol=1e-4 * STD.max())


def test_save_and_load_give_the_same_numbers(fitted, tmp_path):
    path = str(tmp_path / "flow.npz")
    fitted.save(path)
    back = Flow.load(path, solver_steps=20)
    X = gaussian_rows(4, 5)
    np.testing.assert_array_equal(back.log_prob(X), fitted.log_prob(X))
    np.testing.assert_array_equal(back.sample(3), fitted.sample(3))
    assert checkpoint.load(path).data is not None


def test_a_conditional_fit_samples_the_requested_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=800)
    X = np.where(y[:, None] == 0, -4.0, 4.0) + 0.5 * rng.standard_normal((800, 2))
    est = Flow(steps=2000, hidden=(32, 32), batch_size=128, solver_steps=20).fit(X, y)
    assert list(est.classes_) == [0, 1] and est.config.conditional is False  # options unchanged
    for label, sign in ((0, -1), (1, 1)):
        x = est.sample(200, rng=np.random.default_rng(1), y=label, guidance=2.0)
        assert np.mean(np.sign(x[:, 0]) == sign) > 0.95


@pytest.mark.parametrize("options, match", [
    (dict(lr=-1.0), "lr"), (dict(steps=0), "steps"), (dict(hidden=()), "hidden"),
    (dict(val_fraction=1.0), "val_fraction"), (dict(solver="leapfrog"), "solver"),
    (dict(solver="dopri5", solver_steps=10), "solver_steps"), (dict(target="moons"), "target"),
    (dict(bogus=1), "bogus"),
])
def test_options_are_validated_when_the_estimator_is_made(options, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        Flow(**options)
    assert "\n" not in str(info.value)


def test_bad_calls_get_one_line(fitted):
    with pytest.raises(RuntimeError, match="not fitted"):
        Flow().sample(3)
    with pytest.raises(ValueError, match="4 columns.*fitted on 3"):
        fitted.log_prob(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reshape"):
        Flow(steps=2).fit(np.zeros(10))
    with pytest.raises(ValueError, match="conditional"):
        fitted.sample(3, y=1)
    with pytest.raises(ValueError, match="guidance needs y"):
        fitted.sample(3, guidance=2.0)


def test_flow_is_public():
    assert npflow.Flow is Flow and "Flow" in npflow.__all__


def test_reflow_straightens_a_flow_of_rows_in_five_dimensions():
    from npflow import metrics, solvers
    rng = np.random.default_rng(0)
    X = rng.standard_normal((800, 5)) @ rng.standard_normal((5, 5)) + 2.0
    X[:400] += 4.0  # two clusters: curved paths for the independent coupling
    parent = Flow(steps=800, hidden=(64, 64), batch_size=256, solver_steps=20).fit(X)
    child = parent.reflow(n_pairs=2000, steps=600, rng=np.random.default_rng(1))
    assert child.config.reflow == 0 and child.checkpoint_.train_config["reflow"] == 1
    assert child.checkpoint_.train_config["path"] == "linear"
    np.testing.assert_array_equal(child.transform_.mean, parent.transform_.mean)
    z0 = np.random.default_rng(2).standard_normal((500, 5)).astype(np.float32)
    straightness = {}
    for name, est in (("parent", parent), ("child", child)):
        sol = solvers.solve(est.model_, z0, "rk4", 20, return_trajectory=True)
        straightness[name] = metrics.straightness(est.model_, sol.trajectory, sol.times)
    assert straightness["child"] < 0.5 * straightness["parent"]
    with pytest.raises(ValueError, match="conditional"):
        Flow(steps=5).fit(X[:50], np.arange(50) % 2).reflow(n_pairs=10, steps=2)
