"""Tests for npflow.guidance: the guided field against the network's own conditional and
unconditional outputs, linearity in w, the JVP against finite differences, and validation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import likelihood, nn, sampling
from npflow.guidance import GuidedField

H = 1e-6


def make_net(n_classes=4, seed=0):
    return nn.MLP(2, (16, 12), "tanh", dtype=np.float64, rng=np.random.default_rng(seed),
                  n_classes=n_classes)


def batch(seed, n=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)), rng.uniform(size=n)


def test_w1_is_the_conditional_field_and_w0_the_unconditional():
    net = make_net()
    x, t = batch(1)
    for k in range(4):
        np.testing.assert_array_equal(GuidedField(net, k, 1.0)(x, t), net(x, t, np.full(7, k)))
    np.testing.assert_array_equal(GuidedField(net, 2, 0.0)(x, t), net(x, t, np.full(7, 4)))


def test_w1_and_w0_evaluate_one_field_only():
    net = make_net()
    calls = []
    forward = net.forward
    net.forward = lambda x, t, y=None: calls.append(y) or forward(x, t, y)
    x, t = batch(2)
    GuidedField(net, 1, 1.0)(x, t)
    GuidedField(net, 1, 0.0)(x, t)
    assert len(calls) == 2
    GuidedField(net, 1, 3.0)(x, t)
    assert len(calls) == 4


@given(w=st.floats(-3, 8), seed=st.integers(0, 1000))
def test_guided_field_is_affine_in_w(w, seed):
    """v_w = v_0 + w (v_1 - v_0), with v_0 and v_1 from the network directly."""
    net = make_net(seed=seed % 5)
    x, t = batch(seed)
    labels = np.random.default_rng(seed).integers(0, 4, size=7)
    cond, uncond = net(x, t, labels), net(x, t, np.full(7, 4))
    np.testing.assert_allclose(GuidedField(net, labels, w)(x, t), (1 - w) * uncond + w * cond,
                               rtol=1e-12, atol=1e-12)


def test_jvp_takes_the_tangents_by_keyword_only():
    field = GuidedField(make_net(), 1, 2.0)
    x, t = batch(8)
    with pytest.raises(TypeError):
        field.jvp(x, t, np.ones((1, 7, 2)))
    v, dv = field.jvp(x, t, dx=np.ones((1, 7, 2)))
    np.testing.assert_array_equal(v, field(x, t))


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5])
def test_jvp_matches_finite_differences(w):
    net = make_net(seed=3)
    x, t = batch(4)
    field = GuidedField(net, np.arange(7) % 4, w)
    dx = np.random.default_rng(5).standard_normal((3, 7, 2))
    v, dv = field.jvp(x, t, dx=dx)
    np.testing.assert_allclose(v, field(x, t), rtol=1e-13, atol=1e-14)
    for j in range(3):
        fd = (field(x + H * dx[j], t) - field(x - H * dx[j], t)) / (2 * H)
        np.testing.assert_allclose(dv[j], fd, rtol=0, atol=1e-7 * np.abs(fd).max() + 1e-9)


def test_works_with_the_solvers_and_the_likelihood():
    net = make_net(seed=6)
    x0 = np.random.default_rng(7).standard_normal((5, 2))
    field = GuidedField(net, 1, 2.0)
    sol = sampling.sample_flow(field, x0, "rk4", 8)
    assert sol.x.shape == (5, 2) and np.all(np.isfinite(sol.x))
    ll = likelihood.log_likelihood(field, sol.x, method="rk4", steps=8)
    assert np.all(np.isfinite(ll.log_prob))


@pytest.mark.parametrize("label, error, match", [
    (4, ValueError, r"label must be a class in 0 \.\. 3, got 4"),
    (-1, ValueError, r"label must be a class in 0 \.\. 3"),
    (np.array([0, 5]), ValueError, r"label must be a class in 0 \.\. 3"),
    (1.0, TypeError, r"label must hold integer classes"),
    (True, TypeError, r"label must be an integer class"),
    (np.zeros((2, 2), dtype=int), ValueError, r"label must be an integer or have shape \(n,\)"),
])
def test_bad_labels(label, error, match):
    with pytest.raises(error, match=match):
        GuidedField(make_net(), label, 1.0)


def test_label_array_must_match_the_batch():
    with pytest.raises(ValueError, match=r"label must have shape \(7,\)"):
        GuidedField(make_net(), np.zeros(3, dtype=int), 2.0)(*batch(0))


def test_needs_a_conditional_model_and_a_finite_weight():
    with pytest.raises(ValueError, match=r"model must be class-conditional"):
        GuidedField(make_net(n_classes=0), 0, 1.0)
    with pytest.raises(ValueError, match=r"guidance must be a finite number"):
        GuidedField(make_net(), 0, float("nan"))
