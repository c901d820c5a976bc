"""Tests for npflow.guidance: the guided field against the network's own conditional and
unconditional outputs, linearity in w, the JVP against finite differences, and validation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import likelihood, nn, sampling
from npflow.guidance import GuidedField
from npflow.solvers import solve

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
    (4, ValueError, r"label must hold classes in 0 \.\. 3, got 4"),
    (-1, ValueError, r"label must hold classes in 0 \.\. 3, got -1"),
    (np.array([0, 5]), ValueError, r"label must hold classes in 0 \.\. 3, got values in 0 \.\. 5"),
    (1.0, TypeError, r"label must hold integer class labels"),
    (True, TypeError, r"label must be an integer class"),
    (np.zeros((2, 2), dtype=int), ValueError, r"label must have shape \(n,\), one label per point"),
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


# --- five dimensions: a guided linear field, sampled and scored with dopri5 ----------------------

class LinearConditional:
    """A class-conditional field ``v(x, t, y) = A_y x`` (A_K for the null label K), in float64,
    with the forward/jvp interface of a conditional MLP. Guiding it gives the linear field
    ``B x`` with ``B = (1 - w) A_K + w A_y``, whose flow is ``x(1) = e^B x(0)``."""

    def __init__(self, d, n_classes, seed):
        self.dim, self.dtype, self.n_classes = d, np.float64, n_classes
        self.A = 0.4 * np.random.default_rng(seed).standard_normal((n_classes + 1, d, d))

    def forward(self, x, t, y=None):
        return np.einsum("nij,nj->ni", self.A[y], x)  # (n, d)

    def jvp(self, x, t, y=None, *, dx):
        return self.forward(x, t, y), np.einsum("nij,knj->kni", self.A[y], dx)  # (k, n, d)


def expm(B):
    w, V = np.linalg.eig(B)
    return ((V * np.exp(w)) @ np.linalg.inv(V)).real


def test_guided_linear_field_in_five_dimensions_with_dopri5():
    d, w, label = 5, 2.5, 1
    model = LinearConditional(d, n_classes=2, seed=4)
    field = GuidedField(model, label, w)
    B = (1 - w) * model.A[2] + w * model.A[label]
    x0 = np.random.default_rng(5).standard_normal((40, d))
    sol = sampling.sample_flow(field, x0, "dopri5", rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sol.x, x0 @ expm(B).T, rtol=1e-7, atol=1e-8)
    # N(0, I) pushed by e^B is N(0, e^B e^B^T): log p1 = log N(e^-B x1; 0, I) - tr B
    x1 = sol.x
    ll = likelihood.log_likelihood(field, x1, method="dopri5", rtol=1e-10, atol=1e-10)
    back = x1 @ expm(-B).T
    expected = -0.5 * np.sum(back ** 2, axis=1) - 0.5 * d * np.log(2 * np.pi) - np.trace(B)
    np.testing.assert_allclose(ll.log_prob, expected, atol=1e-7)
    est = likelihood.log_likelihood(field, x1, method="dopri5", rtol=1e-10, atol=1e-10,
                                    divergence="hutchinson", rng=np.random.default_rng(6))
    assert np.all(np.abs(est.log_prob - expected) < 6 * est.stderr + 1e-7)


def test_guided_network_in_five_dimensions_with_dopri5():
    net = nn.MLP(5, (16, 12), "tanh", dtype=np.float64, rng=np.random.default_rng(7), n_classes=3)
    field = GuidedField(net, np.arange(9) % 3, 1.5)
    x0 = np.random.default_rng(8).standard_normal((9, 5))
    sol = sampling.sample_flow(field, x0, "dopri5", rtol=1e-9, atol=1e-9)
    reference = solve(lambda x, t: field(x, t), x0, "rk4", steps=400).x
    np.testing.assert_allclose(sol.x, reference, atol=1e-7)
    ll = likelihood.log_likelihood(field, sol.x, method="dopri5", rtol=1e-9, atol=1e-9)
    ll_rk4 = likelihood.log_likelihood(field, sol.x, method="rk4", steps=400)
    np.testing.assert_allclose(ll.log_prob, ll_rk4.log_prob, atol=1e-6)
