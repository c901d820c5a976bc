"""Tests of demos/minimal.py, the one-file flow matching: its backward pass against float64 central
differences, its Adam against Kingma & Ba's Algorithm 1 worked by hand, its solvers on fields with
known solutions, its sampler's support, and a short training run.

The file is a script that must not depend on npflow, so it is loaded from its path; npflow is used
here only to check it.
"""
import ast
import importlib.util
import os

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _helpers import central_difference, load_demo
from npflow import datasets

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos",
                    "minimal.py")
minimal = load_demo("minimal")

RTOL = 1e-6  # float64 central differences with step 1e-6 agree to ~1e-9 away from ReLU kinks


def test_the_file_is_short_and_imports_only_the_standard_library_and_numpy():
    with open(PATH) as f:
        source = f.read()
    assert len(source.splitlines()) <= 150
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"argparse", "os", "numpy", "matplotlib"}


@given(widths=st.lists(st.integers(1, 8), min_size=1, max_size=3), n=st.integers(1, 8),
       seed=st.integers(0, 2 ** 32 - 1))
def test_backward_matches_central_differences_for_every_parameter_and_the_input(widths, n, seed):
    sizes = (3, *widths, 2)
    rng = np.random.default_rng(seed)
    params = minimal.init_mlp(sizes, rng, dtype=np.float64)
    for b in params[1::2]:
        b[...] = rng.standard_normal(b.shape)  # non-zero biases: every block is exercised
    x, t = rng.standard_normal((n, 2)), rng.random((n, 1))
    weights = rng.standard_normal((n, 2))  # L = sum(v * weights), so dL/dv = weights

    def loss():
        return float(np.sum(minimal.forward(params, x, t)[0] * weights))

    v, inputs = minimal.forward(params, x, t)
    z = [a @ W + b for a, W, b in zip(inputs, params[::2], params[1::2])][:-1]  # pre-ReLU
    assume(all(np.abs(zk).min() > 1e-4 for zk in z))  # no ReLU kink within the step 1e-6
    assert v.shape == (n, 2) and [a.shape[1] for a in inputs] == list(sizes[:-1])
    grads, d_input = minimal.backward(params, inputs, weights)
    assert [g.shape for g in grads] == [p.shape for p in params]
    for k, (p, g) in enumerate(zip(params, grads)):
        np.testing.assert_allclose(g, central_difference(loss, p), rtol=RTOL, atol=1e-8,
                                   err_msg=f"parameter {k}")
    np.testing.assert_allclose(d_input[:, :2], central_difference(loss, x), rtol=RTOL, atol=1e-8)
    np.testing.assert_allclose(d_input[:, 2:], central_difference(loss, t), rtol=RTOL, atol=1e-8)


def test_cfm_loss_is_the_mean_squared_regression_and_its_gradient_is_exact():
    rng = np.random.default_rng(3)
    params = minimal.init_mlp((3, 6, 6, 2), rng, dtype=np.float64)
    x0, x1, t = rng.standard_normal((5, 2)), rng.standard_normal((5, 2)), rng.random((5, 1))
    loss, grads = minimal.cfm_loss(params, x0, x1, t)
    xt = (1 - t) * x0 + t * x1
    v = minimal.forward(params, xt, t)[0]
    assert loss == pytest.approx(np.mean(np.sum((v - (x1 - x0)) ** 2, axis=1)) / 2, rel=1e-12)
    for k, (p, g) in enumerate(zip(params, grads)):
        numeric = central_difference(lambda: minimal.cfm_loss(params, x0, x1, t)[0], p)
        np.testing.assert_allclose(g, numeric, rtol=RTOL, atol=1e-8, err_msg=f"parameter {k}")


def test_adam_first_two_steps_match_algorithm_1_by_hand():
    p = [np.array([1.0, -2.0])]
    opt = minimal.Adam(p)
    opt.step(p, [np.array([0.5, -4.0])], lr=0.1)
    # Step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: theta -= lr g / (|g| + eps).
    np.testing.assert_allclose(opt.m[0], [0.05, -0.4], rtol=1e-12)
    np.testing.assert_allclose(opt.v[0], [0.00025, 0.016], rtol=1e-12)
    expected = np.array([1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 4.0 / (4.0 + 1e-8)])
    np.testing.assert_allclose(p[0], expected, rtol=1e-12)
    # Step 2 with g = (1, 1): m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2, bias 1 - beta^2.
    opt.step(p, [np.array([1.0, 1.0])], lr=0.1)
    m = np.array([0.9 * 0.05 + 0.1, 0.9 * -0.4 + 0.1])
    v = np.array([0.999 * 0.00025 + 0.001, 0.999 * 0.016 + 0.001])
    expected = expected - 0.1 * (m / 0.19) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    np.testing.assert_allclose(p[0], expected, rtol=1e-12)


def field_of_time(w):
    """Parameters of a one-hidden-unit net with v(x, t) = t * w for t >= 0 (w: (2,))."""
    W1 = np.array([[0.0], [0.0], [1.0]])  # (3, 1) the hidden unit is relu(t) = t
    return [W1, np.zeros(1), np.asarray(w, dtype=np.float64)[None, :], np.zeros(2)]


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_solvers_on_v_equal_t_w(steps):
    w = np.array([2.0, -6.0])
    params = field_of_time(w)
    x0 = np.array([[0.5, 1.0], [-1.0, 3.0]])
    # Exact: x(1) = x0 + w / 2. Euler sums the left end points: h^2 sum_{k < N} k = (N - 1) / 2N.
    np.testing.assert_allclose(minimal.rk4(params, x0, steps), x0 + w / 2, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(minimal.euler(params, x0, steps),
                               x0 + w * (steps - 1) / (2 * steps), rtol=1e-12, atol=1e-12)


def test_checkerboard_lies_on_the_eight_filled_squares_evenly():
    x = minimal.checkerboard(16000, np.random.default_rng(0))
    assert x.shape == (16000, 2)
    labels = datasets.checkerboard_square(x)
    assert np.all(labels >= 0)
    counts = np.bincount(labels, minlength=8)
    assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(2000 * 7 / 8))  # binomial: 5 sigma


def test_short_training_lowers_the_loss_and_returns_shaped_weights(capsys):
    params, losses = minimal.train(60, np.random.default_rng(0), width=16, depth=2, batch=256,
                                   lr=5e-3, warmup=5)
    assert [p.shape for p in params] == [(3, 16), (16,), (16, 16), (16,), (16, 2), (2,)]
    assert len(losses) == 60 and np.all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert capsys.readouterr().out.count("loss") == 10  # one line per tenth of the run


def test_main_writes_the_samples_it_returns_and_is_deterministic(tmp_path):
    samples, losses = minimal.main(["--steps", "3", "--n", "50", "--out", str(tmp_path / "a")])
    assert samples.shape == (50, 2) and len(losses) == 3
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "samples.npy"), samples)
    again, _ = minimal.main(["--steps", "3", "--n", "50", "--out", str(tmp_path / "b")])
    np.testing.assert_array_equal(again, samples)
    if importlib.util.find_spec("matplotlib") is not None:
        with open(tmp_path / "a" / "samples.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
