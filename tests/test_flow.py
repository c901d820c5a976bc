"""Tests for npflow.flow: the estimator's vocabulary and parameters (without scikit-learn; see
test_flow_sklearn.py for scikit-learn's own checks), its numbers against closed forms and the
likelihood module, files, and one-line errors for bad options and data."""
import dataclasses
import doctest

import numpy as np
import pytest

import npflow
from npflow import checkpoint, flow as flow_module, likelihood
from npflow.flow import Flow, NotFittedError
from npflow.train import DATA_DEFAULTS, TrainConfig

MEAN, STD = np.array([4.0, -2.0, 10.0]), np.array([1.0, 3.0, 0.5])


def gaussian_rows(n, seed):
    return MEAN + STD * np.random.default_rng(seed).standard_normal((n, 3))


@pytest.fixture(scope="module")
def fitted():
    return Flow(steps=400, hidden=(32, 32), batch_size=128, solver_steps=20,
                eval_every=100).fit(gaussian_rows(600, 0))


def test_the_module_docstring_example_runs():
    result = doctest.testmod(flow_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


def test_fit_returns_the_estimator_with_its_fitted_state(fitted):
    assert isinstance(fitted, Flow) and fitted.n_features_in_ == 3 and fitted.classes_ is None
    assert fitted.history_["loss"].shape == (400,)
    assert [int(s) for s in fitted.history_["val"][:, 0]] == [100, 200, 300, 400]
    train_rows = np.setdiff1d(np.arange(600), fitted.checkpoint_.data.val_index)  # 540 rows
    assert train_rows.size == 540
    np.testing.assert_allclose(fitted.transform_.mean,
                               gaussian_rows(600, 0)[train_rows].mean(axis=0), rtol=1e-12)


def test_every_run_option_is_a_parameter_with_the_data_default_then_trainconfigs():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    params = Flow().get_params()
    # target and source are "data" and noise, conditional follows y, reflow follows reflow()
    assert set(fields) - set(params) == {"source", "target", "conditional", "reflow"}
    assert set(params) - set(fields) == {"solver", "solver_steps", "divergence", "n_probes",
                                         "quiet", "image_shape", "column_kinds", "label_column"}
    for name in set(params) & set(fields):
        expected = DATA_DEFAULTS.get(name, fields[name])
        assert params[name] == expected and type(params[name]) is type(expected), name
    assert params["hidden"] == DATA_DEFAULTS["hidden"] and params["lr"] == DATA_DEFAULTS["lr"]
    assert params["schedule"] == "cosine" and params["val_fraction"] == 0.1  # TrainConfig's


def test_the_run_is_configured_by_the_parameters(tmp_path):
    est = Flow(steps=3, hidden=[8], batch_size=16, val_fraction=0.0, lr=1e-3, seed=5)
    est.fit(gaussian_rows(40, 0))
    config = est.checkpoint_.train_config
    assert config["steps"] == 3 and config["hidden"] == [8] and config["lr"] == 1e-3
    assert config["seed"] == 5 and config["target"] == "data" and config["conditional"] is False
    assert config["ema_decay"] == DATA_DEFAULTS["ema_decay"] and config["patience"] == 0
    assert est.hidden == [8]  # stored unchanged: the list stays a list


def test_get_params_and_set_params_round_trip():
    est = Flow(steps=7, hidden=(8, 8), solver="euler", quiet=False)
    params = est.get_params()
    assert params == est.get_params(deep=False)
    assert params["steps"] == 7 and params["hidden"] == (8, 8) and params["solver"] == "euler"
    other = Flow()
    assert other.set_params(**params) is other and other.get_params() == params
    assert other.set_params(lr=0.5).lr == 0.5 and est.lr == DATA_DEFAULTS["lr"]
    with pytest.raises(ValueError, match="invalid parameter 'bogus' for Flow; valid parameters "
                                         "are: solver, solver_steps, .*standardize") as info:
        other.set_params(steps=3, bogus=1)
    assert "\n" not in str(info.value) and other.steps == 7  # nothing was set


def test_a_flow_made_from_get_params_is_a_clone():
    hidden = [8, 8]  # scikit-learn's clone needs each value stored as given, not a copy
    est = Flow(hidden=hidden, steps=9, seed=4, divergence="hutchinson", n_probes=3)
    copy = Flow(**est.get_params())
    assert copy.get_params() == est.get_params()
    assert all(copy.get_params()[k] is v for k, v in est.get_params().items())
    assert est.hidden is hidden


def test_repr_shows_the_parameters_that_differ_from_the_defaults():
    assert repr(Flow()) == "Flow()"
    assert repr(Flow(lr=1e-3, steps=7, seed=0)) == "Flow(steps=7, lr=0.001)"
    assert repr(Flow(hidden=[8])) == "Flow(hidden=[8])"


def test_the_same_seed_gives_the_same_fit_bit_for_bit():
    X = gaussian_rows(100, 0)
    options = dict(steps=30, hidden=(16,), batch_size=32, solver_steps=4, eval_every=10)
    first, second = Flow(seed=3, **options).fit(X), Flow(seed=3, **options).fit(X)
    other = Flow(seed=4, **options).fit(X)
    np.testing.assert_array_equal(first.model_.params, second.model_.params)
    np.testing.assert_array_equal(first.history_["loss"], second.history_["loss"])
    np.testing.assert_array_equal(first.score_samples(X[:5]), second.score_samples(X[:5]))
    assert not np.array_equal(first.model_.params, other.model_.params)
    refit = first.fit(X)  # a second fit of the same estimator starts afresh
    np.testing.assert_array_equal(refit.model_.params, second.model_.params)


def test_log_prob_is_the_change_of_variables_in_data_units(fitted):
    X = gaussian_rows(5, 1)
    z = fitted.transform_.forward(X).astype(fitted.model_.dtype)
    inner = likelihood.log_likelihood(fitted.model_, z, method="rk4", steps=20).log_prob
    np.testing.assert_allclose(fitted.log_prob(X), inner - np.sum(np.log(fitted.transform_.scale)),
                               rtol=1e-6)
    assert fitted.score(X) == pytest.approx(float(np.mean(fitted.log_prob(X))))


def test_score_samples_is_log_prob(fitted):
    X = gaussian_rows(6, 6)
    assert Flow.log_prob is Flow.score_samples
    np.testing.assert_array_equal(fitted.score_samples(X), fitted.log_prob(X))
    assert fitted.score(X, y=np.zeros(6)) == float(np.mean(fitted.score_samples(X)))


def test_fit_transform_is_fit_then_transform():
    X = gaussian_rows(60, 7)
    options = dict(steps=10, hidden=(8,), batch_size=16, solver_steps=4)
    Z = Flow(**options).fit_transform(X)
    np.testing.assert_array_equal(Z, Flow(**options).fit(X).transform(X))


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
    assert back.get_params() == fitted.get_params()  # the run's options become the parameters
    X = gaussian_rows(4, 5)
    np.testing.assert_array_equal(back.log_prob(X), fitted.log_prob(X))
    np.testing.assert_array_equal(back.sample(3), fitted.sample(3))
    assert checkpoint.load(path).data is not None
    with pytest.raises(TypeError, match="bogus"):
        Flow.load(path, bogus=1)
    with pytest.raises(ValueError, match="solver_steps"):
        Flow.load(path, solver="dopri5", solver_steps=20)


def test_a_conditional_fit_samples_the_requested_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=800)
    X = np.where(y[:, None] == 0, -4.0, 4.0) + 0.5 * rng.standard_normal((800, 2))
    est = Flow(steps=2000, hidden=(32, 32), batch_size=128, solver_steps=20).fit(X, y)
    assert list(est.classes_) == [0, 1] and est.checkpoint_.train_config["conditional"]
    for label, sign in ((0, -1), (1, 1)):
        x = est.sample(200, rng=np.random.default_rng(1), y=label, guidance=2.0)
        assert np.mean(np.sign(x[:, 0]) == sign) > 0.95


@pytest.mark.parametrize("options, match", [
    (dict(lr=-1.0), "lr"), (dict(steps=0), "steps"), (dict(hidden=()), "hidden"),
    (dict(val_fraction=1.0), "val_fraction"), (dict(solver="leapfrog"), "solver"),
    (dict(solver="dopri5", solver_steps=10), "solver_steps"), (dict(seed=-1), "seed"),
    (dict(divergence="exact", n_probes=4), "n_probes"), (dict(n_probes=0), "n_probes"),
    (dict(divergence="trace"), "divergence"), (dict(quiet="yes"), "quiet"),
    (dict(activation="softmax"), "activation"), (dict(dtype="float16"), "dtype"),
])
def test_bad_parameters_are_stored_and_refused_by_fit_by_name(options, match):
    est = Flow(**{"steps": 2, "hidden": (4,), **options})  # scikit-learn's rule: no checks
    assert all(est.get_params()[name] is value for name, value in options.items())
    with pytest.raises((ValueError, TypeError), match=match) as info:
        est.fit(gaussian_rows(20, 0))
    assert "\n" not in str(info.value) and not hasattr(est, "model_")


@pytest.mark.parametrize("name", ["target", "bogus", "conditional"])
def test_an_unknown_parameter_is_refused_when_the_estimator_is_made(name):
    with pytest.raises(TypeError, match=name):
        Flow(**{name: 1})


def test_bad_calls_get_one_line(fitted):
    with pytest.raises(NotFittedError, match="not fitted"):
        Flow().sample(3)
    for method in (Flow().score_samples, Flow().transform, Flow().inverse_transform):
        with pytest.raises((ValueError, AttributeError), match="not fitted"):
            method(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X has 4 features, but Flow is expecting 3 features"):
        fitted.log_prob(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="y has 9 entries but the data has 10 rows"):
        Flow(steps=2).fit(np.zeros((10, 2)), np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="reshape"):
        Flow(steps=2).fit(np.zeros(10))
    with pytest.raises(ValueError, match="conditional"):
        fitted.sample(3, y=1)
    with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
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
    assert child.get_params() == parent.get_params()
    assert child.checkpoint_.train_config["reflow"] == 1
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


def test_a_flow_of_images_fits_a_unet():
    X = np.random.default_rng(0).integers(0, 16, size=(80, 64)).astype(float)
    flow = Flow(arch="unet", channels=4, multipliers=(1, 2), groups=2, steps=3, batch_size=8,
                image_shape=(8, 8), dequantize=True, solver_steps=2, eval_every=3).fit(X)
    assert flow.model_.arch == "unet" and flow.model_.image_shape == (1, 8, 8)
    assert flow.sample(2, rng=np.random.default_rng(1)).shape == (2, 64)
    assert np.isfinite(flow.score(X[:3]))
    with pytest.raises(ValueError, match="arch 'unet' needs rows that are images"):
        Flow(arch="unet", steps=1).fit(X)
    with pytest.raises(ValueError, match=r"image_shape \(1, 7, 7\) must be"):
        Flow(arch="unet", image_shape=(7, 7), steps=1).fit(X)
