"""Tests for npflow.solvers: exactness, convergence order, tolerance, round trips, bookkeeping.

References are closed forms: polynomial-in-t fields integrate to polynomials, and two nonlinear
ODEs have known solutions:

* cubic decay  dx/dt = -t x^3,             x(t) = x0 / sqrt(1 + x0^2 (t^2 - t0^2))  (elementwise)
* rotation     dx/dt = (1 + 2t) J x,       x(t) = R(theta) x0, theta = (t - t0) + (t^2 - t0^2)
"""
import ast
import dataclasses
import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npflow import solvers as solvers_module
from npflow.solvers import DEFAULT_STEPS, METHODS, ORDERS, Solution, solve

FIXED = ("euler", "midpoint", "heun", "rk4")
J = np.array([[0.0, -1.0], [1.0, 0.0]])


def cubic(x, t):
    return -t * x**3


def cubic_exact(x0, t0, t1):
    return x0 / np.sqrt(1 + x0**2 * (t1**2 - t0**2))


def rotation(x, t):
    return (1 + 2 * t) * x @ J.T  # (n, 2)


def rotation_exact(x0, t0, t1):
    theta = (t1 - t0) + (t1**2 - t0**2)
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return x0 @ R.T


def method_kwargs(method, steps, tol=1e-10):
    """Keyword arguments that make ``method`` accurate: N steps, or a tight dopri5 tolerance."""
    return {"steps": steps} if method in FIXED else {"rtol": tol, "atol": tol}


class Counter:
    """Wraps a velocity, counting its evaluations and recording the times it was called at."""

    def __init__(self, velocity):
        self.velocity, self.calls, self.times = velocity, 0, []

    def __call__(self, x, t):
        self.calls += 1
        self.times.append(t)
        return self.velocity(x, t)


times_pair = st.tuples(st.floats(-3, 3), st.floats(-3, 3)).filter(lambda p: abs(p[0] - p[1]) > 1e-3)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)


# ----------------------------------------------------------------------------------------------
# Exactness on fields every method integrates without truncation error.
# ----------------------------------------------------------------------------------------------
@given(method=st.sampled_from(METHODS), ts=times_pair, steps=st.integers(1, 20), shape=shapes,
       seed=st.integers(0, 2**32 - 1))
def test_constant_field_is_exact_forward_and_backward(method, ts, steps, shape, seed):
    t0, t1 = ts
    rng = np.random.default_rng(seed)
    x0, c = rng.standard_normal(shape), rng.standard_normal(shape)
    sol = solve(lambda x, t: c, x0, method, t0=t0, t1=t1, **method_kwargs(method, steps))
    expected = x0 + (t1 - t0) * c
    atol = 1e-12 * (1 + np.abs(expected).max())
    np.testing.assert_allclose(sol.x, expected, rtol=1e-12, atol=atol)


def poly_field(coeffs):
    """``v(x, t) = sum_k a_k t^k`` (independent of x) and its exact flow.

    ``x(t1) = x0 + sum_k a_k (t1^(k+1) - t0^(k+1)) / (k + 1)``; each ``a_k`` is shaped like x.
    """

    def velocity(x, t):
        return sum(a * t**k for k, a in enumerate(coeffs))

    def exact(x0, t0, t1):
        return x0 + sum(a * (t1 ** (k + 1) - t0 ** (k + 1)) / (k + 1) for k, a in enumerate(coeffs))

    return velocity, exact


@given(method=st.sampled_from(("midpoint", "heun", "rk4", "dopri5")), ts=times_pair,
       steps=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_linear_in_t_field_is_exact_for_second_order_and_up(method, ts, steps, seed):
    t0, t1 = ts
    rng = np.random.default_rng(seed)
    x0, a, b = rng.standard_normal((3, 5, 2))
    velocity, exact = poly_field([a, b])  # v = a + b t
    sol = solve(velocity, x0, method, t0=t0, t1=t1, **method_kwargs(method, steps, tol=1e-6))
    np.testing.assert_allclose(sol.x, exact(x0, t0, t1), rtol=1e-11, atol=1e-11)


@given(ts=times_pair, steps=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_euler_on_linear_in_t_field_misses_by_the_left_riemann_sum_error(ts, steps, seed):
    # Euler sums h v(t_i) over the left ends of the grid: for v = a + b t the deficit is exactly
    # b h (t1 - t0) / 2. An off-by-one grid (evaluating at linspace(t0, t1, N)) would miss this.
    t0, t1 = ts
    rng = np.random.default_rng(seed)
    x0, a, b = rng.standard_normal((3, 5, 2))
    velocity, exact = poly_field([a, b])
    h = (t1 - t0) / steps
    sol = solve(velocity, x0, "euler", steps=steps, t0=t0, t1=t1)
    expected = exact(x0, t0, t1) - b * h * (t1 - t0) / 2
    np.testing.assert_allclose(sol.x, expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("method", METHODS)
def test_polynomial_in_t_up_to_degree_order_minus_one_is_exact(method):
    # A method of order p integrates t^k exactly for k < p (its quadrature order).
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3))
    coeffs = list(rng.standard_normal((ORDERS[method], 4, 3)))
    velocity, exact = poly_field(coeffs)
    sol = solve(velocity, x0, method, t0=-0.7, t1=1.3, **method_kwargs(method, 3, tol=1e-3))
    np.testing.assert_allclose(sol.x, exact(x0, -0.7, 1.3), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("method", FIXED)
def test_polynomial_of_degree_order_is_not_exact(method):
    # The order is sharp: t^p is integrated with an error, so the exactness test above can fail.
    x0 = np.zeros((1, 1))
    velocity, exact = poly_field([np.zeros_like(x0)] * ORDERS[method] + [np.ones_like(x0)])
    sol = solve(velocity, x0, method, steps=2)
    # (rk4 here: Simpson's rule on t^4 with h = 1/2 misses by 2 (1/4)^5 24 / 90 = 5.2e-4)
    assert np.abs(sol.x - exact(x0, 0.0, 1.0)).max() > 1e-4


# ----------------------------------------------------------------------------------------------
# Convergence order, tolerance, round trips.
# ----------------------------------------------------------------------------------------------
PROBLEMS = {
    "cubic": (cubic, cubic_exact, np.array([[0.6, -0.3, 0.1], [0.45, 0.2, -0.5]])),
    "rotation": (rotation, rotation_exact, np.array([[1.0, 0.5], [-0.3, 2.0], [0.2, -0.7]])),
}


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("t0, t1", [(0.0, 1.0), (1.5, 0.2)])
def test_observed_order_matches_theory(method, problem, t0, t1):
    velocity, exact, x0 = PROBLEMS[problem]
    steps = np.array([16, 32, 64, 128])
    expected = exact(x0, t0, t1)
    errors = [np.abs(solve(velocity, x0, method, steps=int(n), t0=t0, t1=t1).x - expected).max()
              for n in steps]
    observed = -np.polyfit(np.log(steps), np.log(errors), 1)[0]  # error ~ C N^-p
    assert abs(observed - ORDERS[method]) <= 0.3, (observed, errors)


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8, 1e-10])
def test_dopri5_meets_its_tolerance(problem, tol):
    velocity, exact, x0 = PROBLEMS[problem]
    expected = exact(x0, 0.0, 1.0)
    sol = solve(velocity, x0, "dopri5", rtol=tol, atol=tol)
    assert np.max(np.abs(sol.x - expected) / (tol + tol * np.abs(expected))) < 10


def rk4_steps_for_error(velocity, x0, expected, target):
    """Smallest N (bisection over [1, 4096]) whose rk4 error is at most ``target``."""
    lo, hi = 1, 4096
    while lo < hi:
        mid = (lo + hi) // 2
        if np.abs(solve(velocity, x0, "rk4", steps=mid).x - expected).max() <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("tol", [1e-8, 1e-10])
def test_dopri5_needs_fewer_evaluations_than_rk4_for_the_same_error(problem, tol):
    # At loose tolerances (1e-4 .. 1e-6) the two cost about the same on these easy problems (rk4
    # reaches 1e-7 in 8 steps on the cubic); the 5th order pays off below.
    velocity, exact, x0 = PROBLEMS[problem]
    expected = exact(x0, 0.0, 1.0)
    sol = solve(velocity, x0, "dopri5", rtol=tol, atol=tol)
    error = np.abs(sol.x - expected).max()
    assert sol.nfe < 4 * rk4_steps_for_error(velocity, x0, expected, error)


def test_dopri5_steps_scale_like_tol_to_the_minus_one_fifth():
    # The local error estimate is O(h^5), so a controller holding it at tol takes steps
    # h ~ tol^(1/5): the number of accepted steps grows like tol^(-1/5).
    velocity, _, x0 = PROBLEMS["rotation"]
    tols = np.logspace(-5, -10, 6)
    runs = [solve(velocity, x0, "dopri5", rtol=tol, atol=tol, t1=3.0, return_trajectory=True)
            for tol in tols]
    accepted = [len(run.times) - 1 for run in runs]
    slope = -np.polyfit(np.log(tols), np.log(accepted), 1)[0]
    assert abs(slope - 1 / 5) < 0.03, (slope, accepted)


@pytest.mark.parametrize("tol", [1e-6, 1e-9])
def test_dopri5_controller_rarely_rejects_on_a_smooth_problem(tol):
    # nfe = 2 + 6 (accepted + rejected); a controller with the wrong exponent or no safety factor
    # rejects about one step in three here.
    velocity, _, x0 = PROBLEMS["rotation"]
    sol = solve(velocity, x0, "dopri5", rtol=tol, atol=tol, t1=3.0, return_trajectory=True)
    accepted = len(sol.times) - 1
    rejected = (sol.nfe - 2) // 6 - accepted
    assert 0 <= rejected <= 0.15 * accepted + 5, (accepted, rejected)


def mlp_like_field(seed, d):
    """A smooth nonlinear field v(x, t) = tanh(x W + t b) U, like a small network."""
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((d, 16)), rng.standard_normal(16)
    U = rng.standard_normal((16, d)) / 4
    return lambda x, t: np.tanh(x @ W + t * b) @ U


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 4))
def test_forward_then_backward_returns_the_start(seed, d):
    velocity = mlp_like_field(seed, d)
    x0 = np.random.default_rng(seed + 1).standard_normal((8, d))
    for method, kwargs, tol in [("rk4", {"steps": 200}, 1e-8),
                                ("dopri5", {"rtol": 1e-10, "atol": 1e-10}, 1e-7)]:
        x1 = solve(velocity, x0, method, t0=0.0, t1=1.0, **kwargs).x
        back = solve(velocity, x1, method, t0=1.0, t1=0.0, **kwargs).x
        np.testing.assert_allclose(back, x0, atol=tol, err_msg=method)


# ----------------------------------------------------------------------------------------------
# Trajectories, evaluation counts, state shapes, aliasing.
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("t0, t1", [(0.0, 1.0), (1.0, 0.0)])
def test_fixed_step_trajectory_rows_are_the_solutions_on_the_uniform_grid(method, t0, t1):
    x0 = PROBLEMS["rotation"][2]
    steps = 7
    sol = solve(rotation, x0, method, steps=steps, t0=t0, t1=t1, return_trajectory=True)
    assert sol.trajectory.shape == (steps + 1, *x0.shape)
    grid = t0 + (t1 - t0) * np.arange(steps + 1) / steps  # t_i = t0 + i (t1 - t0) / N
    np.testing.assert_allclose(sol.times, grid, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(sol.trajectory[0], x0)
    np.testing.assert_array_equal(sol.trajectory[-1], sol.x)
    for i in range(1, steps + 1):  # row i = the same method run for i steps up to t_i
        partial = solve(rotation, x0, method, steps=i, t0=t0, t1=float(sol.times[i])).x
        np.testing.assert_allclose(sol.trajectory[i], partial, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t0, t1", [(0.0, 1.0), (1.0, 0.0)])
def test_dopri5_trajectory_holds_accepted_states_at_their_times(t0, t1):
    x0 = PROBLEMS["rotation"][2]
    sol = solve(rotation, x0, "dopri5", t0=t0, t1=t1, rtol=1e-8, atol=1e-8, return_trajectory=True)
    assert sol.trajectory.shape == (len(sol.times), *x0.shape)
    assert sol.times[0] == t0 and sol.times[-1] == t1
    assert np.all(np.sign(t1 - t0) * np.diff(sol.times) > 0)
    np.testing.assert_array_equal(sol.trajectory[0], x0)
    np.testing.assert_array_equal(sol.trajectory[-1], sol.x)
    for t, row in zip(sol.times, sol.trajectory):
        np.testing.assert_allclose(row, rotation_exact(x0, t0, t), atol=1e-6)


def test_no_trajectory_unless_asked():
    for method in METHODS:
        sol = solve(rotation, PROBLEMS["rotation"][2], method, **method_kwargs(method, 3, tol=1e-4))
        assert sol.trajectory is None and sol.times is None


@pytest.mark.parametrize("method, per_step",
                         [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
@pytest.mark.parametrize("steps", [1, 5, 13])
def test_fixed_step_nfe_is_stages_times_steps(method, per_step, steps):
    counter = Counter(rotation)
    sol = solve(counter, PROBLEMS["rotation"][2], method, steps=steps)
    assert sol.nfe == counter.calls == per_step * steps


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("t0, t1", [(0.0, 1.0), (1.0, 0.0), (0.0, 1e-3), (0.5, 0.499)])
def test_dopri5_nfe_matches_a_counter_and_stays_inside_the_interval(problem, t0, t1):
    # Short intervals: the initial-step probe must not evaluate v beyond t1.
    velocity, _, x0 = PROBLEMS[problem]
    counter = Counter(velocity)
    sol = solve(counter, x0, "dopri5", t0=t0, t1=t1, rtol=1e-7, atol=1e-7)
    assert sol.nfe == counter.calls
    assert min(t0, t1) <= min(counter.times) and max(counter.times) <= max(t0, t1)


def test_dopri5_costs_six_evaluations_per_accepted_step():
    # On v = a + b t the error estimate vanishes, so no step is rejected: nfe = 2 + 6 * steps
    # (v(x0, t0), one probe for the initial step size, then 6 per step thanks to FSAL).
    velocity, _ = poly_field([np.ones((3, 2)), -2 * np.ones((3, 2))])
    counter = Counter(velocity)
    sol = solve(counter, np.zeros((3, 2)), "dopri5", t0=0.0, t1=10.0, return_trajectory=True)
    accepted = len(sol.times) - 1
    assert accepted > 1
    assert sol.nfe == counter.calls == 2 + 6 * accepted


@given(shape=shapes, method=st.sampled_from(METHODS), seed=st.integers(0, 2**32 - 1))
def test_state_of_any_shape_follows_the_elementwise_solution(shape, method, seed):
    x0 = np.random.default_rng(seed).uniform(-1, 1, size=shape)
    sol = solve(cubic, x0, method, t0=0.0, t1=1.0, **method_kwargs(method, 64, tol=1e-9))
    assert sol.x.shape == x0.shape
    tol = {"euler": 2e-2, "midpoint": 1e-3, "heun": 1e-3, "rk4": 1e-7, "dopri5": 1e-7}[method]
    np.testing.assert_allclose(sol.x, cubic_exact(x0, 0.0, 1.0), atol=tol)
    flat = solve(cubic, x0.reshape(-1), method, **method_kwargs(method, 64, tol=1e-9))
    np.testing.assert_allclose(sol.x.reshape(-1), flat.x, rtol=1e-12, atol=1e-14)


def test_augmented_state_n_by_d_plus_one():
    # The likelihood integrates (x, log-density change) together: state (n, d + 1).
    def augmented(z, t):  # dx/dt = -x, d(logp)/dt = d (the divergence of -x is -d)
        return np.concatenate([-z[:, :-1], np.full((len(z), 1), z.shape[1] - 1.0)], axis=1)

    x0 = np.random.default_rng(0).standard_normal((6, 2))
    z0 = np.concatenate([x0, np.zeros((6, 1))], axis=1)  # (n, d + 1)
    for method in ("rk4", "dopri5"):
        z1 = solve(augmented, z0, method, t0=1.0, t1=0.0, **method_kwargs(method, 50)).x
        np.testing.assert_allclose(z1[:, :2], z0[:, :2] * np.e, rtol=1e-7)
        np.testing.assert_allclose(z1[:, 2], -2.0, rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_velocity_may_return_its_input_or_reuse_a_buffer(method):
    # The solver copies each stage, so a velocity returning x itself (dx/dt = x) or overwriting one
    # output buffer on every call still integrates correctly.
    x0 = np.array([[0.5, -1.0], [2.0, 0.25]])
    kwargs = method_kwargs(method, 200)
    tol = {"euler": 1e-2, "midpoint": 1e-5, "heun": 1e-5}.get(method, 1e-9)
    np.testing.assert_allclose(solve(lambda x, t: x, x0, method, **kwargs).x, x0 * np.e, rtol=tol)

    buffer = np.empty_like(x0)

    def reusing(x, t):
        return np.multiply(cubic(x, t), 1.0, out=buffer)

    fresh = solve(cubic, x0, method, **kwargs).x
    np.testing.assert_array_equal(solve(reusing, x0, method, **kwargs).x, fresh)


def test_input_is_not_modified_and_dtypes():
    x0 = np.array([[0.5, -1.0]])
    keep = x0.copy()
    solve(cubic, x0, "rk4", steps=3)
    solve(cubic, x0, "dopri5")
    np.testing.assert_array_equal(x0, keep)
    assert solve(cubic, x0.astype(np.float32), "rk4", steps=3).x.dtype == np.float32
    assert solve(cubic, x0.astype(np.float32), "dopri5").x.dtype == np.float32
    assert solve(lambda x, t: -x, np.array([[1, 2]]), "heun", steps=3).x.dtype == np.float64


def test_public_constants_and_frozen_solution():
    assert METHODS == ("euler", "midpoint", "heun", "rk4", "dopri5")
    assert ORDERS == {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4, "dopri5": 5}
    sol = solve(cubic, np.ones((1, 1)), "euler", steps=1)
    assert isinstance(sol, Solution)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sol.nfe = 0


# ----------------------------------------------------------------------------------------------
# Bad inputs.
# ----------------------------------------------------------------------------------------------
X = np.ones((2, 2))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"velocity": "v"}, TypeError, "velocity must be callable"),
    ({"x": np.array([[1.0, np.nan]])}, ValueError, "x must be finite"),
    ({"x": np.array(["a"])}, TypeError, "x must be a real numeric array"),
    ({"x": np.ones((0, 2))}, ValueError, "x must hold at least one value"),
    ({"method": "rk45"}, ValueError, "method must be one of dopri5, euler, heun, midpoint, rk4"),
    ({"method": "euler", "steps": 0}, ValueError, "steps must be an integer >= 1"),
    ({"method": "euler", "steps": 2.5}, TypeError, "steps must be an integer"),
    ({"method": "euler", "steps": True}, TypeError, "steps must be an integer"),
    ({"method": "dopri5", "steps": 10}, ValueError, "steps must be None for method 'dopri5'"),
    ({"t0": float("nan")}, ValueError, "t0 must be a finite number"),
    ({"t1": float("inf")}, ValueError, "t1 must be a finite number"),
    ({"t0": 0.5, "t1": 0.5}, ValueError, "t1 must differ from t0"),
    ({"rtol": 0.0}, ValueError, "rtol must be in"),
    ({"atol": -1e-3}, ValueError, "atol must be in"),
    ({"rtol": "1e-5"}, TypeError, "rtol must be a real number"),
    ({"max_steps": 0}, ValueError, "max_steps must be an integer >= 1"),
    ({"method": "heun", "rtol": 1e-3}, ValueError,
     "rtol sets the step-size control of method 'dopri5'; method 'heun' takes fixed steps"),
    ({"atol": 1e-3, "rtol": 1e-3}, ValueError, "rtol and atol set the step-size control"),
    ({"return_trajectory": "yes"}, TypeError, "return_trajectory must be a bool"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, error, match):
    args = {"velocity": cubic, "x": X, "method": "rk4", "steps": 4, **kwargs}
    with pytest.raises(error, match=match):
        solve(**args)


@pytest.mark.parametrize("method", METHODS)
def test_velocity_of_the_wrong_shape_or_type_raises(method):
    kwargs = method_kwargs(method, 4)
    shape_message = r"velocity\(x, t\) must return an array of shape \(2, 2\)"
    with pytest.raises(ValueError, match=shape_message):
        solve(lambda x, t: x[:, :1], X, method, **kwargs)
    with pytest.raises(TypeError, match=r"velocity\(x, t\) must return a real array"):
        solve(lambda x, t: x + 1j, X, method, **kwargs)


@pytest.mark.parametrize("method, per_step",
                         [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_steps_none_means_default_steps_uniform_steps(method, per_step):
    assert DEFAULT_STEPS == 100
    x0 = PROBLEMS["rotation"][2]
    default = solve(rotation, x0, method, steps=None, return_trajectory=True)
    explicit = solve(rotation, x0, method, steps=DEFAULT_STEPS)
    np.testing.assert_array_equal(default.x, explicit.x)
    assert default.nfe == per_step * DEFAULT_STEPS and len(default.times) == DEFAULT_STEPS + 1
    np.testing.assert_array_equal(solve(rotation, x0, method).x, explicit.x)  # the default


@pytest.mark.parametrize("method", FIXED)
def test_non_finite_velocity_raises_for_fixed_steps(method):
    with pytest.raises(ValueError, match="NaN or infinite"):
        solve(lambda x, t: x * np.nan if t > 0.5 else x, X, method, steps=4)


def test_non_finite_velocity_raises_for_dopri5():
    with pytest.raises(ValueError, match=r"velocity\(x, t0\) returned NaN"):
        solve(lambda x, t: x * np.nan, X, "dopri5")
    with pytest.raises(RuntimeError, match="NaN"):
        solve(lambda x, t: x * np.nan if t > 0.5 else x, X, "dopri5")


def test_dopri5_blow_up_and_max_steps_raise():
    # dx/dt = x^2 from x = 1 blows up at t = 1: the step size must underflow before t1 = 2.
    with pytest.raises(RuntimeError, match="step size underflowed at t=1"):
        solve(lambda x, t: x**2, np.ones(1), "dopri5", t1=2.0)
    with pytest.raises(RuntimeError, match="max_steps=3"):
        solve(rotation, X, "dopri5", rtol=1e-10, atol=1e-10, max_steps=3)


def test_solvers_know_nothing_of_networks():
    """solvers.py integrates any velocity: it imports neither the network nor the BLAS control
    (those live in npflow.sampling)."""
    tree = ast.parse(inspect.getsource(solvers_module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & {"nn", "_blas", "npflow.nn", "npflow._blas", "MLP", "Workspace"}
    assert not hasattr(solvers_module, "sample_flow")
