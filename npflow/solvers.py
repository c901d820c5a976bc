"""ODE solvers for dx/dt = v(x, t): sampling a flow and integrating it backwards.

A flow is sampled by integrating ``dx/dt = v(x, t)`` from t = 0 (noise) to t = 1 (data)
(Lipman et al. 2023, eq. 1); the likelihood integrates an augmented state of shape (n, d + 1)
from t = 1 back to t = 0. The state may have any shape: the whole array is one ODE system, and
``velocity(x, t)`` returns an array of the same shape.

This module integrates any velocity function and knows nothing of networks; sampling a trained
network (chunks, reused buffers, threads) is :mod:`npflow.sampling`.

Every method is an explicit Runge-Kutta method given by its Butcher tableau (c, A, b)
(Hairer, Norsett & Wanner, *Solving Ordinary Differential Equations I*, Sec. II.1):

    k_i    = v(x + h sum_{j<i} a_ij k_j,  t + c_i h),   i = 1 .. s
    x_next = x + h sum_i b_i k_i

written out, with k1 = v(x, t) throughout:

    euler     x_next = x + h k1                                                 order 1
    midpoint  x_next = x + h k2,             k2 = v(x + h/2 k1, t + h/2)        order 2
    heun      x_next = x + h/2 (k1 + k2),    k2 = v(x + h k1, t + h)            order 2
    rk4       x_next = x + h/6 (k1 + 2 k2 + 2 k3 + k4),                         order 4
              k2 = v(x + h/2 k1, t + h/2),  k3 = v(x + h/2 k2, t + h/2),  k4 = v(x + h k3, t + h)

              c   |  A
              0   |
              1/2 |  1/2
              1/2 |  0    1/2
              1   |  0    0    1
              ----+--------------------
              b   |  1/6  1/3  1/3  1/6

    dopri5    Dormand & Prince (1980), "A family of embedded Runge-Kutta formulae",
              J. Comput. Appl. Math. 6(1), 19-26; Hairer et al. I, Sec. II.5:

              0    |
              1/5  |  1/5
              3/10 |  3/40        9/40
              4/5  |  44/45       -56/15       32/9
              8/9  |  19372/6561  -25360/2187  64448/6561  -212/729
              1    |  9017/3168   -355/33      46732/5247  49/176   -5103/18656
              1    |  35/384      0            500/1113    125/192  -2187/6784     11/84
              -----+-----------------------------------------------------------------------------
              b    |  35/384      0            500/1113    125/192  -2187/6784     11/84     0
              b^   |  5179/57600  0            7571/16695  393/640  -92097/339200  187/2100  1/40

              x_next = x + h sum b_i k_i is of order 5, the embedded x^ = x + h sum b^_i k_i of
              order 4, and err = x_next - x^ = h sum (b_i - b^_i) k_i estimates the local error.
              The last row of A equals b, so k7 = v(x_next, t + h) is the k1 of the next step
              ("first same as last", FSAL): an accepted step costs 6 evaluations.

The fixed-step methods step on the uniform grid ``t_i = t0 + i (t1 - t0) / N``, i = 0 .. N, and
every stage is evaluated at the times of the step it belongs to: ``times`` is
``linspace(t0, t1, N + 1)``. (A loop that steps by 1/N but evaluates v at ``linspace(0, 1, N)``,
i.e. at i / (N - 1), as the Euler loop of dome272/Flow-Matching's notebook does, evaluates on an
off-by-one grid whose times run ahead of the state.)

Integrating backwards (t1 < t0) is the same formulas with a negative step h.

Steps, one rule wherever an ODE is integrated (:func:`solve`, :func:`npflow.sampling.sample_flow`,
:func:`npflow.likelihood.log_likelihood`, :func:`npflow.metrics.path_energy`): ``steps=None``, the
default, means ``DEFAULT_STEPS = 100`` uniform steps for the fixed-step methods; an integer N >= 1
means N steps. dopri5 picks its own steps from ``rtol`` and ``atol``, so an explicit ``steps``
with dopri5 raises ValueError, and so do tolerances other than the defaults (``RTOL``, ``ATOL``)
with a fixed-step method, which would ignore them.
"""
import dataclasses

import numpy as np

from . import _checks

METHODS = ("euler", "midpoint", "heun", "rk4", "dopri5")
DEFAULT_STEPS = 100  # uniform steps of the fixed-step methods when steps=None (module docstring)
RTOL = ATOL = 1e-5  # dopri5's default relative and absolute tolerances
ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4, "dopri5": 5}

# dopri5 step-size controller (Hairer et al. I, Sec. II.4, eq. 4.13; constants of their DOPRI5).
SAFETY = 0.9  # aim a little below the tolerance so the next step is likely accepted
MIN_FACTOR = 0.2  # shrink by at most 5x per step
MAX_FACTOR = 10.0  # grow by at most 10x per step (and not at all right after a rejection)
ERROR_EXPONENT = 1 / 5  # err ~ h^(q + 1) with q = 4, the order of the embedded solution


@dataclasses.dataclass(frozen=True)
class Solution:
    """Result of :func:`solve`.

    Attributes
    ----------
    x : np.ndarray, shape like the initial state
        The state at t1.
    trajectory : np.ndarray, shape (m, *x.shape), or None
        The states at ``times``: row 0 is the initial state, row m - 1 is ``x``. ``m = steps + 1``
        for the fixed-step methods, the number of accepted steps + 1 for dopri5.
        None unless ``return_trajectory=True``.
    times : np.ndarray, shape (m,), or None
        The time of each trajectory row (for dopri5: t0, then the end of each accepted step).
        None unless ``return_trajectory=True``.
    nfe : int
        Number of evaluations of the velocity.
    """

    x: np.ndarray
    trajectory: np.ndarray | None
    times: np.ndarray | None
    nfe: int


@dataclasses.dataclass(frozen=True)
class _Tableau:
    """Butcher tableau of an explicit Runge-Kutta method with s stages."""

    c: tuple  # (s,) stage times, as fractions of the step h
    a: tuple  # (s,) rows of A; row i holds a_ij for j < i
    b: tuple  # (s,) weights of the solution
    e: tuple = ()  # (s,) b - b^, weights of the error estimate (embedded methods only)


_TABLEAUS = {
    "euler": _Tableau(c=(0.0,), a=((),), b=(1.0,)),
    "midpoint": _Tableau(c=(0.0, 1 / 2), a=((), (1 / 2,)), b=(0.0, 1.0)),
    "heun": _Tableau(c=(0.0, 1.0), a=((), (1.0,)), b=(1 / 2, 1 / 2)),
    "rk4": _Tableau(
        c=(0.0, 1 / 2, 1 / 2, 1.0),
        a=((), (1 / 2,), (0.0, 1 / 2), (0.0, 0.0, 1.0)),
        b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    ),
    "dopri5": _Tableau(
        c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
        a=(
            (),
            (1 / 5,),
            (3 / 40, 9 / 40),
            (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
            (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
        ),
        b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
        e=(
            35 / 384 - 5179 / 57600,
            0.0,
            500 / 1113 - 7571 / 16695,
            125 / 192 - 393 / 640,
            -2187 / 6784 + 92097 / 339200,
            11 / 84 - 187 / 2100,
            -1 / 40,
        ),
    ),
}


def solve(velocity, x, method="rk4", steps=None, t0=0.0, t1=1.0, rtol=RTOL, atol=ATOL,
          return_trajectory=False, max_steps=100_000):
    """Integrate ``dx/dt = v(x, t)`` from ``x(t0) = x`` to t1.

    Parameters
    ----------
    velocity : callable
        ``velocity(x, t) -> v``: x an array shaped like the state, t a Python float, v an array of
        the same shape. It must not modify x in place; it may reuse its output buffer.
    x : array_like, any shape, e.g. (n, d) or (n, d + 1)
        Initial state x(t0). Not modified. Integer input is converted to float64; a floating dtype
        is kept (float32 in, float32 out).
    method : {"euler", "midpoint", "heun", "rk4", "dopri5"}
        Update rule; see the module docstring for the equations and tableaus.
    steps : int, optional
        Number N >= 1 of uniform steps of the fixed-step methods; None means ``DEFAULT_STEPS``.
        Must be None for dopri5, which chooses its own steps (the rule in the module docstring).
    t0, t1 : float
        Start and end time, finite and different. ``t1 < t0`` integrates backwards.
    rtol, atol : float
        dopri5 only (> 0; a fixed-step method takes only the defaults): a step is accepted when
        the RMS over all entries of ``err / (atol + rtol max(|x|, |x_next|))`` is at most 1
        (Hairer et al. I, eq. 4.10-4.11). The RMS runs over the whole state, so one point of a
        large batch may exceed the tolerance.
        Tolerances near the resolution of x's dtype (about 1e-7 for float32) cost many tiny steps.
    return_trajectory : bool
        Also return every intermediate state and its time.
    max_steps : int
        dopri5 only: the most steps it may attempt (accepted plus rejected).

    Returns
    -------
    Solution
        ``x`` (final state), ``trajectory`` and ``times`` (None unless requested), ``nfe``.

    Raises
    ------
    TypeError
        When an argument has the wrong type, or ``velocity`` returns a non-real array.
    ValueError
        On invalid argument values, when ``velocity`` returns the wrong shape, or when the state
        stops being finite.
    RuntimeError
        When dopri5 exceeds ``max_steps`` or its step size underflows.
    """
    if not callable(velocity):
        raise TypeError("velocity must be callable as velocity(x, t), "
                        f"got {type(velocity).__name__}")
    x = _state(x)
    _checks.choice(method, "method", METHODS)
    t0 = _checks.finite_float(t0, "t0")
    t1 = _checks.finite_float(t1, "t1")
    if t0 == t1:
        raise ValueError(f"t1 must differ from t0, got t0 = t1 = {t0}")
    max_steps = _checks.positive_int(max_steps, "max_steps")
    if not isinstance(return_trajectory, (bool, np.bool_)):
        raise TypeError(f"return_trajectory must be a bool, got {return_trajectory!r}")

    field = _Field(velocity, x.shape)
    steps = check_steps(method, steps, rtol, atol)
    rtol, atol = float(rtol), float(atol)
    if method == "dopri5":
        solution = _solve_dopri5(field, x, t0, t1, rtol, atol, max_steps, return_trajectory)
    else:
        solution = _solve_fixed(field, _TABLEAUS[method], x, t0, t1, steps, return_trajectory)
    if not np.all(np.isfinite(solution.x)):
        raise SolverDiverged(f"the state became NaN or infinite between t0={t0} and t1={t1}: velocity "
                         "returned non-finite values or the solution diverged")
    return solution


class SolverDiverged(ValueError):
    """The state of an integration became NaN or infinite (a failure at run time, not a bad
    argument)."""


def check_steps(method, steps, rtol=RTOL, atol=ATOL):
    """The number of uniform steps of ``method`` (the rule of the module docstring).

    None means :data:`DEFAULT_STEPS` for the fixed-step methods; dopri5 picks its own steps from
    ``rtol`` and ``atol``, so it takes only None (and None is returned). The tolerances are
    checked too (> 0): a fixed-step method ignores them, so it refuses any but the defaults
    :data:`RTOL` and :data:`ATOL`.
    """
    _checks.choice(method, "method", METHODS)
    tolerances = {"rtol": (rtol, RTOL), "atol": (atol, ATOL)}
    for name, (value, _) in tolerances.items():
        _checks.finite_float(value, name, low=0, low_open=True)
    changed = [name for name, (value, default) in tolerances.items() if value != default]
    if changed and method != "dopri5":
        raise _checks.OptionError(" and ".join(f"{{{i}}}" for i in range(len(changed))) +
                                  f" set{'s' if len(changed) == 1 else ''} the step-size "
                                  f"control of {{{len(changed)}}} 'dopri5'; {{{len(changed)}}} "
                                  f"{method!r} takes fixed steps", *changed, "method")
    if method == "dopri5":
        if steps is not None:
            raise _checks.OptionError("{0} must be None for {1} 'dopri5' (it picks its own steps "
                                      f"from rtol and atol), got {steps!r}", "steps", "method")
        return None
    return DEFAULT_STEPS if steps is None else _checks.positive_int(steps, "steps")


# ----------------------------------------------------------------------------------------------
# Runge-Kutta machinery shared by all methods. Buffers are allocated once per solve; every update
# is written in place (out=...), so a step allocates nothing beyond what velocity allocates.
# ----------------------------------------------------------------------------------------------
class _Field:
    """The velocity with a shape check and a counter of evaluations (nfe)."""

    def __init__(self, velocity, shape):
        self.velocity = velocity
        self.shape = shape
        self.nfe = 0

    def __call__(self, x, t, out):
        """``out <- v(x, t)``; a copy, so velocity may return x or reuse its own buffers."""
        v = np.asarray(self.velocity(x, float(t)))
        self.nfe += 1
        if v.shape != self.shape:
            raise ValueError(f"velocity(x, t) must return an array of shape {self.shape} like x, "
                             f"got shape {v.shape}")
        if v.dtype.kind not in "fiu":
            raise TypeError(f"velocity(x, t) must return a real array, got dtype {v.dtype}")
        np.copyto(out, v, casting="same_kind")
        return out


def _combine(out, base, h, weights, K, tmp):
    """``out <- base + h sum_j w_j K[j]`` in place, skipping zero weights; ``base=None`` means 0.

    ``out`` may be ``base``. ``K`` (s, *shape) holds the stages, ``tmp`` is scratch like ``out``.
    """
    if base is None:
        out.fill(0)
    elif base is not out:
        np.copyto(out, base)
    for w, k in zip(weights, K):
        if w != 0:
            np.multiply(k, h * w, out=tmp)
            out += tmp
    return out


def _stages(field, tableau, x, t, h, K, xs, tmp, first=0):
    """Fill ``K[first:]`` with ``k_i = v(x + h sum_{j<i} a_ij k_j, t + c_i h)``.

    ``xs`` receives the stage inputs; after the call it holds the input of the last stage.
    """
    for i in range(first, len(tableau.c)):
        xi = x if i == 0 else _combine(xs, x, h, tableau.a[i], K, tmp)
        field(xi, t + tableau.c[i] * h, out=K[i, ...])  # K[i, ...] is a view even for 0-d states


def _solve_fixed(field, tableau, x, t0, t1, steps, return_trajectory):
    """N steps ``x_{i+1} = x_i + h sum_j b_j k_j`` on ``t_i = t0 + i h``, ``h = (t1 - t0) / N``."""
    times = np.linspace(t0, t1, steps + 1)  # (N + 1,)
    h = (t1 - t0) / steps
    K = np.empty((len(tableau.c), *x.shape), dtype=x.dtype)  # (s, *shape) stages
    xs, tmp = np.empty_like(x), np.empty_like(x)
    trajectory = np.empty((steps + 1, *x.shape), dtype=x.dtype) if return_trajectory else None
    if return_trajectory:
        trajectory[0] = x
    for i in range(steps):
        _stages(field, tableau, x, times[i], h, K, xs, tmp)
        _combine(x, x, h, tableau.b, K, tmp)
        if return_trajectory:
            trajectory[i + 1] = x
    return Solution(x=x, trajectory=trajectory, times=times if return_trajectory else None,
                    nfe=field.nfe)


def _solve_dopri5(field, x, t0, t1, rtol, atol, max_steps, return_trajectory):
    """Adaptive Dormand-Prince 5(4) with FSAL and the step-size controller of Hairer et al. I, II.4.

    After a step of size h with error norm ``err`` (see :func:`_error_norm`) the next size is
    ``h_new = h min(fac_max, max(MIN_FACTOR, SAFETY err^(-1/5)))``; the step is accepted when
    ``err <= 1``. ``fac_max`` is MAX_FACTOR, or 1 right after a rejection (Hairer et al. I, II.4).
    """
    tableau = _TABLEAUS["dopri5"]
    K = np.empty((len(tableau.c), *x.shape), dtype=x.dtype)  # (7, *shape) stages
    x_next, err, scale, tmp = (np.empty_like(x) for _ in range(4))
    field(x, t0, out=K[0, ...])
    if not np.all(np.isfinite(K[0])):
        raise ValueError(f"velocity(x, t0) returned NaN or infinite values at t0={t0}")
    direction = 1.0 if t1 > t0 else -1.0
    h_abs = _initial_step(field, x, t0, K[0], direction, abs(t1 - t0), rtol, atol)
    t, fac_max = t0, MAX_FACTOR
    states, times = ([x.copy()], [t0]) if return_trajectory else (None, None)
    for _ in range(max_steps):
        h = direction * min(h_abs, abs(t1 - t))  # the last step lands exactly on t1
        _stages(field, tableau, x, t, h, K, x_next, tmp, first=1)  # k1 is the FSAL k7
        # The last row of A is b, so the input of stage 7 is the 5th-order x_next itself.
        _combine(err, None, h, tableau.e, K, tmp)
        error = _error_norm(err, x, x_next, rtol, atol, scale, tmp)
        if error <= 1:  # accept
            t = t1 if abs(h) == abs(t1 - t) else t + h
            x, x_next = x_next, x
            K[0] = K[-1]
            if return_trajectory:
                states.append(x.copy())
                times.append(t)
            if t == t1:
                return Solution(x=x, trajectory=np.stack(states) if return_trajectory else None,
                                times=np.array(times) if return_trajectory else None,
                                nfe=field.nfe)
            factor = fac_max if error == 0 else min(fac_max, SAFETY * error ** -ERROR_EXPONENT)
            fac_max = MAX_FACTOR
        else:  # reject; a NaN error (from non-finite stages) also lands here
            shrink = SAFETY * error ** -ERROR_EXPONENT if np.isfinite(error) else 0.0
            factor = max(MIN_FACTOR, shrink)
            fac_max = 1.0
        h_abs = abs(h) * factor
        if h_abs <= 10 * abs(np.spacing(t)):
            raise RuntimeError(f"dopri5 step size underflowed at t={t} (|h|={h_abs:.3g}): the "
                               f"solution blows up, the ODE is too stiff for rtol={rtol}, "
                               f"atol={atol}, or velocity returned NaN")
    raise RuntimeError(f"dopri5 used max_steps={max_steps} steps and stopped at t={t} before "
                       f"t1={t1}; raise max_steps or loosen rtol/atol")


def _error_norm(err, x, x_next, rtol, atol, scale, tmp):
    """RMS of ``err / (atol + rtol max(|x|, |x_next|))`` (Hairer et al. I, eq. 4.10-4.11).

    Overwrites ``err`` and the scratch buffers ``scale``, ``tmp`` (all shaped like x).
    Returns a float.
    """
    np.maximum(np.abs(x, out=scale), np.abs(x_next, out=tmp), out=scale)
    scale *= rtol
    scale += atol
    err /= scale
    return float(np.sqrt(np.mean(np.square(err, out=err))))


def _initial_step(field, x, t0, f0, direction, span, rtol, atol):
    """First step size ``|h|`` (Hairer et al. I, Sec. II.4, "Starting step size", p. 169).

    With ``||.||`` the RMS weighted by ``atol + rtol |x0|`` and ``f0 = v(x0, t0)`` (given):
    ``d0 = ||x0||``, ``d1 = ||f0||``, ``h0 = 0.01 d0 / d1`` (1e-6 if either is below 1e-5),
    ``d2 = ||v(x0 + h0 f0, t0 + h0) - f0|| / h0`` (one evaluation),
    ``h1 = (0.01 / max(d1, d2))^(1/5)`` (``max(1e-6, 1e-3 h0)`` if that max is below 1e-15),
    and ``h = min(100 h0, h1)``. The exponent is 1/(q + 1) with q = 4, the order of the error
    estimator. Both h0 and h are capped at ``span = |t1 - t0|``, so v is never evaluated
    outside [t0, t1]. Forward or backward as ``direction`` is +1 or -1.
    """
    scale = atol + rtol * np.abs(x)

    def norm(y):
        return float(np.sqrt(np.mean(np.square(y / scale))))

    d0, d1 = norm(x), norm(f0)
    h0 = 1e-6 if min(d0, d1) < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = field(x + direction * h0 * f0, t0 + direction * h0, out=np.empty_like(x))
    d2 = norm(f1 - f0) / h0
    d12 = max(d1, d2)
    h1 = max(1e-6, 1e-3 * h0) if d12 <= 1e-15 else (0.01 / d12) ** ERROR_EXPONENT
    return min(100 * h0, h1, span)


def _state(x):
    """Return a finite floating copy of the initial state (any shape, at least one entry).

    ``_checks.points`` needs shape (n, d); the solvers take any shape, hence this small check.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"x must be a real numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"x must hold at least one value, got shape {arr.shape}")
    arr = np.array(arr, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64)  # a copy
    if not np.all(np.isfinite(arr)):
        raise ValueError("x must be finite, found NaN or infinity")
    return arr
