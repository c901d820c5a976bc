"""Tests for npflow.sampling: sample_flow against solvers.solve on the bare network, the steps
rule, the reused buffers, the threads (and the BLAS count restored), and the public name."""
import numpy as np
import pytest

import npflow
from npflow import _blas, sampling
from npflow.nn import MLP
from npflow.sampling import sample_flow
from npflow.solvers import DEFAULT_STEPS, solve


def test_sample_flow_is_public_and_sampling_a_listed_module():
    assert npflow.sample_flow is sampling.sample_flow
    assert "sampling" in npflow.__all__ and "sample_flow" in npflow.__all__


@pytest.mark.parametrize("method, steps", [("euler", 7), ("rk4", 5), ("dopri5", None)])
def test_sample_flow_reuses_the_network_buffers_without_changing_results(method, steps):
    model = MLP(2, (16, 16), "selu", rng=np.random.default_rng(0), dtype=np.float64)
    x0 = np.random.default_rng(1).standard_normal((40, 2))
    fresh = solve(lambda x, t: model.forward(x, t), x0, method, steps=steps,
                  return_trajectory=True)
    reused = sample_flow(model, x0, method, steps=steps, return_trajectory=True)
    first = reused.x.copy()
    sample_flow(model, x0[::-1], method, steps=steps)  # must not write into the first result
    np.testing.assert_array_equal(reused.x, fresh.x)
    np.testing.assert_array_equal(reused.trajectory, fresh.trajectory)
    np.testing.assert_array_equal(reused.x, first)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_sample_flow_in_threads_matches_one_thread(method):
    model = MLP(2, (32, 32), "selu", rng=np.random.default_rng(0))  # float32, as in use
    x0 = np.random.default_rng(1).standard_normal((501, 2)).astype(np.float32)
    blas_threads = _blas.threads()
    one = sample_flow(model, x0, method, steps=6, threads=1, return_trajectory=True)
    three = sample_flow(model, x0, method, steps=6, threads=3, return_trajectory=True)
    np.testing.assert_allclose(three.x, one.x, rtol=0, atol=1e-5)
    np.testing.assert_allclose(three.trajectory, one.trajectory, rtol=0, atol=1e-5)
    assert three.nfe == one.nfe and three.x.shape == (501, 2)
    assert _blas.threads() == blas_threads  # the BLAS thread count is restored


def test_sample_flow_follows_the_steps_rule():
    model = MLP(2, (8,), "tanh", rng=np.random.default_rng(0), dtype=np.float64)
    x0 = np.random.default_rng(1).standard_normal((5, 2))
    default = sample_flow(model, x0, "rk4")
    assert default.nfe == 4 * DEFAULT_STEPS
    np.testing.assert_array_equal(default.x, sample_flow(model, x0, "rk4", DEFAULT_STEPS).x)
    assert sample_flow(model, x0, "dopri5").x.shape == (5, 2)
    with pytest.raises(ValueError, match="steps must be None for method 'dopri5'"):
        sample_flow(model, x0, "dopri5", steps=10)
    with pytest.raises(ValueError, match="steps must be None for method 'dopri5'"):
        sample_flow(model, x0, "dopri5", steps=10, chunk_size=2)


def test_sample_flow_threads_need_an_mlp_and_a_fixed_step_method():
    model = MLP(2, (8,), rng=np.random.default_rng(0))
    x0 = np.zeros((10, 2))
    with pytest.raises(ValueError, match="threads must be 1 unless"):
        sample_flow(model, x0, "dopri5", threads=2)
    with pytest.raises(ValueError, match="threads must be 1 unless"):
        sample_flow(lambda x, t: -x, x0, "euler", steps=2, threads=2)
    with pytest.raises(ValueError, match="threads"):
        sample_flow(model, x0, "euler", steps=2, threads=0)


def test_default_threads_only_for_large_batches(monkeypatch):
    model = MLP(2, (8,), rng=np.random.default_rng(0))
    assert sampling._workers(model, "rk4", sampling.PARALLEL_MIN_POINTS - 1, None) == 1
    assert sampling._workers(model, "dopri5", 10 ** 6, None) == 1
    assert sampling._workers(lambda x, t: x, "rk4", 10 ** 6, None) == 1
    monkeypatch.setattr(sampling._blas, "threads", lambda: None)  # a BLAS we cannot hold back
    assert sampling._workers(model, "rk4", 10 ** 6, None) == 1


def test_dopri5_samples_a_linear_field_in_five_dimensions():
    """v(x, t) = A x + b t: x(1) = e^A x0 + A^-2 (e^A - I - A) b, from an eigendecomposition."""
    rng = np.random.default_rng(9)
    A, b = 0.5 * rng.standard_normal((5, 5)), rng.standard_normal(5)
    w, V = np.linalg.eig(A)
    expA = ((V * np.exp(w)) @ np.linalg.inv(V)).real
    phi2 = ((V * ((np.exp(w) - 1 - w) / w ** 2)) @ np.linalg.inv(V)).real
    x0 = rng.standard_normal((30, 5))
    sol = sample_flow(lambda x, t: x @ A.T + t * b, x0, "dopri5", rtol=1e-10, atol=1e-10,
                      chunk_size=7)
    np.testing.assert_allclose(sol.x, x0 @ expA.T + phi2 @ b, rtol=1e-7, atol=1e-8)


def test_dopri5_samples_a_five_dimensional_network_like_fine_rk4():
    model = MLP(5, (16, 16), "silu", rng=np.random.default_rng(10), dtype=np.float64)
    x0 = np.random.default_rng(11).standard_normal((20, 5))
    sol = sample_flow(model, x0, "dopri5", rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sol.x, sample_flow(model, x0, "rk4", steps=400).x, atol=1e-7)


def test_a_guided_field_reuses_buffers_and_threads_like_its_network():
    """Sampling asks a field what it can do (workspace()), not which class it is."""
    from npflow.guidance import GuidedField
    net = MLP(2, (16, 16), "silu", dtype=np.float64, rng=np.random.default_rng(0), n_classes=3)
    field = GuidedField(net, 1, 2.5)
    x0 = np.random.default_rng(1).standard_normal((600, 2))
    plain = solve(field, x0, "rk4", 6).x  # no buffers, one thread
    for threads in (1, 2):
        got = sample_flow(field, x0, "rk4", 6, chunk_size=100, threads=threads).x
        np.testing.assert_allclose(got, plain, rtol=1e-12, atol=1e-12)
    work = field.workspace()
    first = field.forward(x0[:5], 0.3, work=work).copy()
    np.testing.assert_array_equal(field.forward(x0[:5], 0.3, work=work), first)
    np.testing.assert_allclose(first, field(x0[:5], 0.3), rtol=1e-12)
