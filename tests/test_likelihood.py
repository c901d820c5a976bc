"""Tests for npflow.likelihood: divergence, Hutchinson's estimator, exact log-likelihoods.

References are independent of the code under test:

* the divergence against central finite differences of ``MLP.forward`` (smooth activations) and
  against reverse mode (``MLP.backward`` with one-hot cotangents, every activation);
* a linear field ``v(x, t) = A x + b t`` carries ``N(mu0, s0^2 I)`` to the Gaussian
  ``N(e^A mu0 + m, s0^2 e^A e^{A^T})`` with
  ``m = int_0^1 e^{A(1 - s)} b s ds = A^{-2}(e^A - I - A) b``, both computed here from an
  eigendecomposition of A;
* Hutchinson's estimator against the exact variance of ``eps^T J eps``: for Rademacher probes
  ``(1/2) sum_{i != j} (J_ij + J_ji)^2``, for Gaussian probes ``(1/2) ||J + J^T||_F^2``.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow.likelihood import (DEFAULT_PROBES, EXACT_MAX_DIM, LogLikelihood, divergence,
                               draw_probes, hutchinson_divergence, log_likelihood,
                               standard_normal_log_density)
from npflow import likelihood, solvers
from npflow.nn import MLP

SMOOTH = ("silu", "tanh")
PROBE_KINDS = ("rademacher", "gaussian")
KINKED = ("relu", "selu")  # SELU's derivative jumps at 0 (lambda vs lambda * alpha)


def make_mlp(dim, hidden=(16, 16), activation="tanh", time_embedding="concat", seed=0):
    return MLP(dim, hidden, activation, time_embedding, embed_dim=8, time_scale=10.0,
               dtype=np.float64, rng=np.random.default_rng(seed))


class LinearField:
    """``v(x, t) = A x + b t`` in float64, with its exact forward-mode tangent ``A dx``."""

    def __init__(self, A, b):
        self.A, self.b = A, b

    def __call__(self, x, t):
        return x @ self.A.T + np.reshape(t, (-1, 1)) * self.b  # (n, d)

    def jvp(self, x, t, *, dx):
        return self(x, t), np.asarray(dx) @ self.A.T  # (n, d), (k, n, d)


def random_linear_field(seed, d):
    rng = np.random.default_rng(seed)
    return LinearField(0.5 * rng.standard_normal((d, d)), rng.standard_normal(d))


def matrix_function(A, f):
    """``f(A)`` through the eigendecomposition ``A = V diag(w) V^{-1}`` (A diagonalizable)."""
    w, V = np.linalg.eig(A)
    return ((V * f(w)) @ np.linalg.inv(V)).real


def phi2(w):
    """``(e^w - 1 - w) / w^2``, with its Taylor series near 0."""
    small = np.abs(w) < 1e-3
    safe = np.where(small, 1.0, w)
    return np.where(small, 0.5 + w / 6 + w**2 / 24, (np.exp(safe) - 1 - safe) / safe**2)


def pushforward(field, mu0, s0):
    """Mean and covariance of x(1) for x(0) ~ N(mu0, s0^2 I) under dx/dt = A x + b t."""
    expA = matrix_function(field.A, np.exp)
    m = matrix_function(field.A, phi2) @ field.b
    return expA @ mu0 + m, s0**2 * expA @ expA.T


def gaussian_log_density(x, mean, cov):
    diff = x - mean  # (n, d)
    _, logdet = np.linalg.slogdet(2 * np.pi * cov)
    return -0.5 * np.sum(diff * np.linalg.solve(cov, diff.T).T, axis=1) - 0.5 * logdet


def jacobians(model, x, t):
    """Full Jacobians (n, d, d) of v at each point, from d forward-mode tangents."""
    n, d = x.shape
    eye = np.broadcast_to(np.eye(d)[:, None, :], (d, n, d))
    _, dv = model.jvp(x, t, dx=eye)  # dv[i, j] = J(x_j) e_i
    return np.transpose(dv, (1, 2, 0))  # J[j][:, i] = dv[i, j]


# --- divergence ------------------------------------------------------------------------------

mlp_settings = dict(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 5),
    d=st.integers(1, 4),
    hidden=st.lists(st.integers(1, 16), min_size=1, max_size=3),
    time_embedding=st.sampled_from(["concat", "sinusoidal"]),
    per_point_t=st.booleans(),
)


def draw_inputs(seed, n, d, per_point_t):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    t = rng.random(n) if per_point_t else float(rng.random())
    return x, t


@given(activation=st.sampled_from(SMOOTH), **mlp_settings)
def test_divergence_matches_central_finite_differences(seed, n, d, hidden, time_embedding,
                                                       per_point_t, activation):
    model = make_mlp(d, hidden, activation, time_embedding, seed)
    x, t = draw_inputs(seed + 1, n, d, per_point_t)
    div = divergence(model, x, t)
    assert div.shape == (n,)
    h = 1e-5
    fd = np.zeros(n)
    for i in range(d):
        e = np.zeros(d)
        e[i] = h
        fd += (model.forward(x + e, t)[:, i] - model.forward(x - e, t)[:, i]) / (2 * h)
    np.testing.assert_allclose(div, fd, rtol=1e-6, atol=1e-7)


@given(activation=st.sampled_from(SMOOTH + KINKED), **mlp_settings)
def test_divergence_matches_reverse_mode_trace(seed, n, d, hidden, time_embedding, per_point_t,
                                               activation):
    model = make_mlp(d, hidden, activation, time_embedding, seed)
    x, t = draw_inputs(seed + 1, n, d, per_point_t)
    div = divergence(model, x, t)
    _, cache = model.forward_train(x, t)
    trace = np.zeros(n)
    for i in range(d):
        onehot = np.zeros((n, d))
        onehot[:, i] = 1.0
        trace += model.backward(cache, onehot)[:, i]  # row i of J, entry i: dv_i/dx_i
    np.testing.assert_allclose(div, trace, rtol=1e-10, atol=1e-12)


def test_divergence_of_a_linear_field_is_the_trace():
    field = random_linear_field(3, 4)
    x = np.random.default_rng(0).standard_normal((6, 4))
    div = divergence(field, x, 0.3)
    assert div.shape == (6,)
    np.testing.assert_allclose(div, np.full(6, np.trace(field.A)), rtol=1e-12)


# --- log-likelihood against the closed form of a linear flow -----------------------------------

@pytest.mark.parametrize("solver", [{"method": "rk4", "steps": 100},
                                    {"method": "dopri5", "steps": None, "rtol": 1e-10,
                                     "atol": 1e-10}])
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4))
def test_linear_flow_log_likelihood_matches_gaussian_pushforward(solver, seed, d):
    field = random_linear_field(seed, d)
    mean, cov = pushforward(field, np.zeros(d), 1.0)
    rng = np.random.default_rng(seed + 1)
    x1 = rng.multivariate_normal(mean, cov, size=8) + rng.standard_normal((8, d))
    ll = log_likelihood(field, x1, **solver)
    assert isinstance(ll, LogLikelihood)
    assert ll.log_prob.shape == (8,) and ll.x0.shape == (8, d) and ll.delta.shape == (8,)
    np.testing.assert_allclose(ll.log_prob, gaussian_log_density(x1, mean, cov), atol=1e-4)
    # the parts: x0 = e^{-A} (x1 - m) and delta = -tr(A) (the divergence is constant)
    x0 = (x1 - mean) @ matrix_function(-field.A, np.exp).T
    np.testing.assert_allclose(ll.x0, x0, atol=1e-6)
    np.testing.assert_allclose(ll.delta, -np.trace(field.A), atol=1e-8)
    if solver["method"] == "rk4":
        assert ll.nfe == 4 * 100


def test_log_likelihood_with_a_non_standard_source_density():
    d, mu0, s0 = 3, np.array([1.0, -2.0, 0.5]), 0.7
    field = random_linear_field(11, d)

    def log_p0(x):
        return (-0.5 * np.sum((x - mu0) ** 2, axis=1) / s0**2
                - 0.5 * d * np.log(2 * np.pi * s0**2))

    mean, cov = pushforward(field, mu0, s0)
    x1 = np.random.default_rng(2).multivariate_normal(mean, cov, size=10)
    ll = log_likelihood(field, x1, method="rk4", steps=100, log_p0=log_p0)
    np.testing.assert_allclose(ll.log_prob, gaussian_log_density(x1, mean, cov), atol=1e-4)
    # and the default source (standard normal) gives a different, also exact, answer
    ll_std = log_likelihood(field, x1, method="rk4", steps=100)
    mean_std, cov_std = pushforward(field, np.zeros(d), 1.0)
    np.testing.assert_allclose(ll_std.log_prob, gaussian_log_density(x1, mean_std, cov_std),
                               atol=1e-4)


def test_steps_rule_default_steps_and_dopri5_without_steps():
    """steps=None: DEFAULT_STEPS uniform steps for rk4; dopri5 works with no steps argument."""
    field = random_linear_field(5, 2)
    mean, cov = pushforward(field, np.zeros(2), 1.0)
    x1 = np.random.default_rng(6).multivariate_normal(mean, cov, size=6)
    default = log_likelihood(field, x1)
    assert default.nfe == 4 * solvers.DEFAULT_STEPS
    np.testing.assert_array_equal(default.log_prob,
                                  log_likelihood(field, x1, steps=solvers.DEFAULT_STEPS).log_prob)
    adaptive = log_likelihood(field, x1, method="dopri5", rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(adaptive.log_prob, gaussian_log_density(x1, mean, cov), atol=1e-6)


def test_standard_normal_log_density_closed_form():
    x = np.array([[0.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(standard_normal_log_density(x),
                               [-np.log(2 * np.pi), -2.5 - np.log(2 * np.pi)])


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_chunking_gives_the_same_result_as_one_chunk(method):
    model = make_mlp(2, (16, 16), "silu", seed=4)
    x1 = np.random.default_rng(5).standard_normal((23, 2))
    whole = log_likelihood(model, x1, method=method, steps=12)
    for chunk_size in (1, 5, 23):
        parts = log_likelihood(model, x1, method=method, steps=12, chunk_size=chunk_size)
        np.testing.assert_allclose(parts.log_prob, whole.log_prob, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(parts.x0, whole.x0, rtol=1e-10, atol=1e-12)
        assert parts.nfe == whole.nfe


# --- Hutchinson's estimator ----------------------------------------------------------------------

def exact_probe_variance(J, kind):
    """Var[eps^T J eps] per point for J (n, d, d)."""
    S = J + np.transpose(J, (0, 2, 1))  # (n, d, d)
    if kind == "gaussian":
        return 0.5 * np.sum(S**2, axis=(1, 2))
    offdiag = S - np.einsum("nii->ni", S)[:, :, None] * np.eye(J.shape[1])
    return 0.5 * np.sum(offdiag**2, axis=(1, 2))


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_error_has_the_exact_variance_over_k(kind):
    """Standardized errors (est - div) / sqrt(Var / k) have mean square 1 for every k:
    the estimate is unbiased and its error shrinks like 1 / sqrt(k)."""
    model = make_mlp(3, (16, 16), "tanh", seed=7)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1000, 3))
    t = rng.random(1000)
    div = divergence(model, x, t)
    var = exact_probe_variance(jacobians(model, x, t), kind)
    assert np.all(var > 1e-8)
    rms = []
    for k in (1, 16, 256):
        est = hutchinson_divergence(model, x, t, draw_probes(rng, (k, 1000, 3), kind))
        assert est.shape == (1000,)
        z2 = (est - div) ** 2 / (var / k)
        assert 0.8 < np.mean(z2) < 1.25, (k, np.mean(z2))
        rms.append(np.sqrt(np.mean((est - div) ** 2)))
    assert rms[0] / rms[1] == pytest.approx(4.0, rel=0.25)
    assert rms[1] / rms[2] == pytest.approx(4.0, rel=0.25)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4), repeats=st.integers(1, 3))
def test_hutchinson_is_exact_for_scaled_unit_probes(seed, d, repeats):
    """Probes sqrt(d) e_1 .. sqrt(d) e_d (each ``repeats`` times) have mean eps eps^T = I
    exactly, so the estimate (1/k) sum_k eps_k^T J eps_k is the trace itself."""
    model = make_mlp(d, (8, 8), "silu", seed=seed % 1000)
    x, t = draw_inputs(seed, 4, d, True)
    units = np.sqrt(d) * np.eye(d)[:, None, :] * np.ones((1, 4, 1))  # (d, 4, d)
    est = hutchinson_divergence(model, x, t, np.concatenate([units] * repeats))
    np.testing.assert_allclose(est, divergence(model, x, t), rtol=1e-10, atol=1e-12)


def test_rademacher_estimate_is_exact_for_a_diagonal_jacobian():
    field = LinearField(np.diag([0.3, -1.2, 2.0]), np.zeros(3))
    x = np.random.default_rng(0).standard_normal((5, 3))
    for k in (1, 2, 7):
        probes = draw_probes(np.random.default_rng(k), (k, 5, 3))
        est = hutchinson_divergence(field, x, 0.0, probes)
        np.testing.assert_allclose(est, 1.1, rtol=1e-12)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_with_many_probes_converges_to_the_divergence(kind):
    model = make_mlp(2, (16,), "silu", seed=9)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 2))
    div = divergence(model, x, 0.4)
    var = exact_probe_variance(jacobians(model, x, 0.4), kind)
    est = hutchinson_divergence(model, x, 0.4, draw_probes(rng, (20000, 5, 2), kind))
    assert np.all(np.abs(est - div) <= 5 * np.sqrt(var / 20000) + 1e-12)


def test_rademacher_probes_are_exactly_plus_or_minus_one():
    eps = draw_probes(np.random.default_rng(0), (50000, 3), "rademacher")
    assert eps.shape == (50000, 3) and eps.dtype == np.float64
    assert set(np.unique(eps)) == {-1.0, 1.0}
    np.testing.assert_allclose(eps.T @ eps / 50000, np.eye(3), atol=0.02)  # E[eps eps^T] = I
    eps32 = draw_probes(np.random.default_rng(0), (10, 2), "rademacher", dtype=np.float32)
    assert eps32.dtype == np.float32 and set(np.unique(eps32)) == {-1.0, 1.0}


def test_gaussian_probes_have_unit_variance():
    eps = draw_probes(np.random.default_rng(1), (200000, 3), "gaussian")
    assert eps.dtype == np.float64
    assert np.all(np.abs(eps.mean(axis=0)) < 0.01)
    np.testing.assert_allclose(eps.T @ eps / 200000, np.eye(3), atol=0.015)
    assert len(np.unique(eps)) == eps.size  # continuous, not a few levels
    assert draw_probes(np.random.default_rng(1), (4, 2), "gaussian",
                       dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_probes_come_only_from_the_passed_generator(probe):
    model = make_mlp(2, (16,), "tanh", seed=12)
    x1 = np.random.default_rng(13).standard_normal((6, 2))
    np.random.seed(123)
    global_state = np.random.get_state()[1].copy()
    hutchinson = {"steps": 5, "divergence": "hutchinson", "probe": probe}
    a = log_likelihood(model, x1, rng=np.random.default_rng(42), **hutchinson)
    b = log_likelihood(model, x1, rng=np.random.default_rng(42), **hutchinson)
    c = log_likelihood(model, x1, rng=np.random.default_rng(43), **hutchinson)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)
    assert not np.allclose(a.log_prob, c.log_prob)
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)  # global RNG untouched
    np.testing.assert_array_equal(draw_probes(np.random.default_rng(5), (3, 2), probe),
                                  draw_probes(np.random.default_rng(5), (3, 2), probe))


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_log_likelihood_is_unbiased(probe):
    """Fixed probes along each trajectory (FFJORD): the mean over many probe draws of the
    estimated delta is the exact delta. Copies of 3 points each get their own probe."""
    model = make_mlp(2, (16,), "tanh", seed=14)
    points = np.random.default_rng(15).standard_normal((3, 2))
    copies = 400
    x1 = np.repeat(points, copies, axis=0)  # (1200, 2), point i in rows i*copies .. (i+1)*copies
    exact = log_likelihood(model, points, steps=10)
    est = log_likelihood(model, x1, steps=10, divergence="hutchinson", n_probes=1,
                         rng=np.random.default_rng(16), probe=probe)
    assert est.stderr is None  # one probe: no spread to measure
    delta = est.delta.reshape(3, copies)
    np.testing.assert_allclose(est.x0.reshape(3, copies, 2), np.repeat(exact.x0[:, None], copies,
                                                                       axis=1), atol=1e-12)
    stderr = delta.std(axis=1, ddof=1) / np.sqrt(copies)
    assert np.all(np.abs(delta.mean(axis=1) - exact.delta) < 5 * stderr + 1e-12)
    assert np.all(delta.std(axis=1) > 0)  # it really is an estimate


# --- divergence="auto" | "exact" | "hutchinson", per-probe accumulators and their stderr ---------

@pytest.mark.parametrize("d", [3, 20])
def test_hutchinson_agrees_with_exact_within_its_reported_standard_error(d):
    """v(x) = A x: div v = tr A exactly, and each probe's accumulator is exactly -eps^T A eps
    (constant along the path), whose variance for Rademacher probes is known. With k probes the
    mean is off by ~sqrt(Var / k), and the reported stderr estimates exactly that."""
    field = LinearField(0.5 * np.random.default_rng(d).standard_normal((d, d)), np.zeros(d))
    x1 = np.random.default_rng(d + 1).standard_normal((2000, d))
    k = 8
    exact = log_likelihood(field, x1, steps=4, divergence="exact")
    est = log_likelihood(field, x1, steps=4, divergence="hutchinson", n_probes=k,
                         rng=np.random.default_rng(d + 2))
    assert exact.stderr is None and est.stderr.shape == (2000,)
    np.testing.assert_allclose(exact.delta, -np.trace(field.A), rtol=1e-12)
    np.testing.assert_allclose(est.x0, exact.x0, rtol=1e-12, atol=1e-12)  # probes move no point
    var = exact_probe_variance(np.broadcast_to(field.A, (1, d, d)), "rademacher")[0]
    error = est.log_prob - exact.log_prob  # = est.delta - exact.delta
    np.testing.assert_allclose(error, est.delta - exact.delta, atol=1e-9)
    assert 0.85 < np.mean(error ** 2) / (var / k) < 1.15  # unbiased, variance Var / k
    assert 0.9 < np.mean(est.stderr ** 2) / (var / k) < 1.1  # the reported stderr is right
    assert np.mean(np.abs(error) <= 3 * est.stderr) > 0.95  # t with 7 dof: 98% inside 3 stderr


def test_auto_is_exact_up_to_exact_max_dim_then_hutchinson():
    n, steps = 4, 2
    small = make_mlp(EXACT_MAX_DIM, (8,), seed=1)
    x = np.random.default_rng(2).standard_normal((n, EXACT_MAX_DIM))
    auto = log_likelihood(small, x, steps=steps, rng=np.random.default_rng(0))
    assert auto.stderr is None  # exact: the rng is not used
    np.testing.assert_array_equal(auto.log_prob, log_likelihood(small, x, steps=steps,
                                                                divergence="exact").log_prob)
    big = make_mlp(EXACT_MAX_DIM + 1, (8,), seed=1)
    x = np.random.default_rng(2).standard_normal((n, EXACT_MAX_DIM + 1))
    with pytest.raises(ValueError, match=r"rng must be a numpy.random.Generator .*d=17"):
        log_likelihood(big, x, steps=steps)
    auto = log_likelihood(big, x, steps=steps, rng=np.random.default_rng(0))
    forced = log_likelihood(big, x, steps=steps, divergence="hutchinson",
                            n_probes=DEFAULT_PROBES, rng=np.random.default_rng(0))
    assert auto.stderr.shape == (n,) and np.all(auto.stderr > 0)
    np.testing.assert_array_equal(auto.log_prob, forced.log_prob)  # DEFAULT_PROBES probes
    exact = log_likelihood(big, x, steps=steps, divergence="exact")
    assert exact.stderr is None
    assert np.all(np.abs(auto.log_prob - exact.log_prob) < 6 * auto.stderr)


def test_each_probe_has_its_own_accumulator_and_stderr_is_their_spread():
    """One chunk draws its probes once, as draw_probes(rng, (k, n, d)), so the same seed gives
    them back. For v(x) = A x the accumulator of probe k is exactly -eps_k^T A eps_k."""
    field = random_linear_field(31, 3)
    x1 = np.random.default_rng(32).standard_normal((5, 3))
    k = 3
    for probe in PROBE_KINDS:
        ll = log_likelihood(field, x1, steps=3, divergence="hutchinson", n_probes=k, probe=probe,
                            rng=np.random.default_rng(33))
        eps = draw_probes(np.random.default_rng(33), (k, 5, 3), probe)  # (k, n, d)
        per_probe = -np.einsum("kni,ij,knj->kn", eps, field.A, eps)  # (k, n)
        np.testing.assert_allclose(ll.delta, per_probe.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ll.stderr, per_probe.std(axis=0, ddof=1) / np.sqrt(k),
                                   rtol=1e-10, atol=1e-12)


# --- five dimensions: dopri5 against the closed form --------------------------------------------

@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_dopri5_log_likelihood_in_five_dimensions(divergence):
    """A linear field carries the Gaussian source to a Gaussian p1 (see pushforward)."""
    field = random_linear_field(21, 5)
    mean, cov = pushforward(field, np.zeros(5), 1.0)
    x1 = np.random.default_rng(22).multivariate_normal(mean, cov, size=50)
    ll = log_likelihood(field, x1, method="dopri5", rtol=1e-9, atol=1e-9, divergence=divergence,
                        rng=None if divergence == "exact" else np.random.default_rng(23))
    expected = gaussian_log_density(x1, mean, cov)
    if divergence == "exact":
        np.testing.assert_allclose(ll.log_prob, expected, atol=1e-6)
    else:
        assert np.all(np.abs(ll.log_prob - expected) < 6 * ll.stderr + 1e-6)


# --- bad inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, name", [
    ({"x1": np.zeros(4)}, ValueError, "x1"),
    ({"x1": np.array([[np.nan, 0.0]])}, ValueError, "x1"),
    ({"x1": np.array([["a", "b"]])}, TypeError, "x1"),
    ({"chunk_size": 0}, ValueError, "chunk_size"),
    ({"chunk_size": 2.5}, TypeError, "chunk_size"),
    ({"n_probes": 0}, ValueError, "n_probes"),
    ({"probe": "bogus"}, ValueError, "probe"),
    ({"probe": "bogus", "rng": np.random.default_rng(0)}, ValueError, "probe"),
    ({"rng": 0}, TypeError, "rng"),
    ({"rng": 0, "divergence": "hutchinson"}, TypeError, "rng"),
    ({"divergence": "hutchinson"}, ValueError, "rng must be a numpy.random.Generator"),
    ({"divergence": "trace"}, ValueError, "divergence"),
    ({"divergence": "exact", "rng": np.random.default_rng(0)}, ValueError, "rng and n_probes"),
    ({"divergence": "exact", "n_probes": 4}, ValueError, "n_probes goes with Hutchinson"),
    ({"method": "bogus"}, ValueError, "method"),
    ({"steps": 0}, ValueError, "steps"),
    ({"method": "dopri5", "steps": 10}, ValueError, "steps"),
    ({"method": "dopri5", "steps": None, "rtol": -1.0}, ValueError, "rtol"),
    ({"log_p0": 3.0}, TypeError, "log_p0"),
])
def test_log_likelihood_rejects_bad_arguments(kwargs, exc, name):
    model = make_mlp(2, (8,))
    args = {"x1": np.zeros((3, 2)), "steps": 4, **kwargs}
    with pytest.raises(exc, match=name) as info:
        log_likelihood(model, **args)
    assert "\n" not in str(info.value)


def test_divergence_helpers_reject_bad_arguments():
    model = make_mlp(2, (8,))
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="x"):
        divergence(model, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="probes"):
        hutchinson_divergence(model, x, 0.5, np.ones((2, 4, 2)))
    with pytest.raises(ValueError, match="probes"):
        hutchinson_divergence(model, x, 0.5, np.ones((3, 2)))
    with pytest.raises(ValueError, match="probe"):
        draw_probes(np.random.default_rng(0), (2, 3, 2), "uniform")
    with pytest.raises(TypeError, match="rng"):
        draw_probes(np.random.RandomState(0), (2, 3, 2))


# --- rows in data units --------------------------------------------------------------------

def test_log_likelihood_of_rows_adds_the_transforms_log_jacobian():
    """z = (x - m) / s: log p_x(x) = log p_z(z) - sum log s; dequantized rows get x + u first."""
    from npflow.likelihood import log_likelihood_of_rows
    from npflow.transforms import Standardize
    rng = np.random.default_rng(3)
    net, x = make_mlp(2), rng.integers(0, 5, size=(7, 2)).astype(np.float64)
    mean, scale = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    log_px, _ = log_likelihood_of_rows(net, x, None, Standardize(mean, scale), steps=8)
    direct = log_likelihood(net, (x - mean) / scale, steps=8).log_prob
    np.testing.assert_allclose(log_px, direct - np.log(scale).sum(), rtol=1e-12)
    u = np.random.default_rng(4).random(x.shape)  # what the dequantizing transform draws
    log_pu, _ = log_likelihood_of_rows(net, x, np.random.default_rng(4),
                                       Standardize(mean, scale, dequantize=True), steps=8)
    shifted = log_likelihood(net, (x + u - mean) / scale, steps=8).log_prob
    np.testing.assert_allclose(log_pu, shifted - np.log(scale).sum(), rtol=1e-10)


class _ReverseOnly:
    """A field that offers only vector-Jacobian products (as a network without jvp does)."""

    def __init__(self, net):
        self.net, self.dim, self.dtype = net, net.dim, net.dtype

    def __call__(self, x, t):
        return self.net.forward(x, t)

    def vjp(self, x, t, *, dv):
        return self.net.vjp(x, t, dv=dv)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_a_field_with_only_vjp_gets_the_same_log_likelihood(divergence):
    """Reverse mode gives eps^T J^T eps = eps^T J eps: the same divergence, the same density."""
    net = make_mlp(3, (8, 8))
    x1 = np.random.default_rng(2).standard_normal((6, 3))
    probes = {} if divergence == "exact" else {"n_probes": 4}
    ll = [likelihood.log_likelihood(field, x1, steps=5, divergence=divergence,
                                    rng=None if divergence == "exact" else
                                    np.random.default_rng(7), **probes).log_prob
          for field in (net, _ReverseOnly(net))]
    np.testing.assert_allclose(ll[1], ll[0], rtol=1e-10, atol=1e-10)


def test_vjp_is_the_transpose_of_jvp():
    net = make_mlp(3, (8, 8))
    rng = np.random.default_rng(4)
    x, u, w = (rng.standard_normal(s) for s in ((5, 3), (2, 5, 3), (2, 5, 3)))
    _, ju = net.jvp(x, 0.4, dx=u)
    _, jtw = net.vjp(x, 0.4, dv=w)
    np.testing.assert_allclose(np.einsum("knd,knd->kn", w, ju), np.einsum("knd,knd->kn", jtw, u),
                               rtol=1e-10)
