"""Divergence of the velocity field and exact log-likelihoods by the instantaneous change of variables.

A flow ``dx/dt = v(x, t)`` carries densities along with it (Chen et al. 2018, "Neural ODEs",
Theorem 1; Lipman et al. 2023, eq. 2-3 and Sec. 2)::

    d log p_t(x_t) / dt = - div v(x_t, t)

so for a data point x1, integrating from t = 1 back to t = 0::

    log p_1(x1) = log p_0(x0) - integral_0^1 div v(x_t, t) dt,    x0 = x(0) when x(1) = x1.

:func:`log_likelihood` integrates the augmented state ``[x, l]`` with ``dl/dt = div v(x, t)`` and
``l(1) = 0``, so that ``l(0) = -integral_0^1 div v dt`` and ``log p_1(x1) = log p_0(x0) + l(0)``.

The divergence ``div v = trace(dv/dx)`` comes from the network's own forward-mode tangents
(:meth:`npflow.nn.MLP.jvp`), or, for a field that offers only reverse mode, from its
vector-Jacobian products through the backward pass (``vjp``; ``eps^T J^T eps = eps^T J eps``):
exactly, with the d unit vectors, or estimated with Hutchinson's trick
``E[eps^T (dv/dx) eps] = trace(dv/dx)`` for probes with ``E[eps eps^T] = I`` (Hutchinson 1989;
Grathwohl et al. 2019, "FFJORD", eq. 7).

Which one: the exact divergence costs d tangents per velocity evaluation, Hutchinson's k probes
cost k tangents and add noise. ``log_likelihood(divergence="auto")`` takes the exact divergence up
to ``EXACT_MAX_DIM`` dimensions and Hutchinson's estimator with ``DEFAULT_PROBES`` probes above,
where it is measurably cheaper (``demos/experiments/bench_divergence.py``); ``"exact"`` or
``"hutchinson"`` forces either. With k >= 2 probes each probe gets its own accumulator ``l_k``, so
every point gets the mean of k independent estimates and their standard error.
"""
from dataclasses import dataclass

import numpy as np

from . import _checks, solvers

PROBES = ("rademacher", "gaussian")
DIVERGENCES = ("auto", "exact", "hutchinson")
# Hutchinson probes per point when n_probes=None: the standard error is the one-probe spread / 4.
# Measured (demos/experiments/bench_divergence.py, random 3 x 256 SiLU net, rk4 8 steps): one-probe
# std of the log-likelihood 0.011 nats at d = 2, 0.069 at d = 20, 0.117 at d = 64, so stderr
# 0.003 - 0.029.
DEFAULT_PROBES = 16
# divergence="auto" is exact up to this dimension. Measured by
# demos/experiments/bench_divergence.py (3 x 256 SiLU net, float32, 1000 points, one augmented
# velocity evaluation, CPU ms with one BLAS thread): the exact divergence costs ~4.4 ms per
# dimension (d = 10: 44, 20: 85, 64: 279, 100: 468 ms), Hutchinson with 16 probes 61-78 ms at
# any d. They cross between d = 14 and 20 (d = 16: 67 vs
# 73-78 ms); near the crossover the exact divergence wins, as it carries no noise.
EXACT_MAX_DIM = 16


def divergence(model, x, t):
    """Exact divergence ``div v(x, t) = sum_i dv_i/dx_i`` from d Jacobian-vector products.

    Parameters
    ----------
    model : object with ``jvp(x, t, *, dx) -> (v, dv)`` or ``vjp(x, t, *, dv) -> (v, dx)``
        (an :class:`~npflow.nn.MLP` has both)
    x : (n, d) points; t : float or (n,) times.

    Returns
    -------
    div : (n,) the divergence at each point.
    """
    return _velocity_and_divergence(model, _checks.points(x, "x"), t)[1]


def _jacobian_products(model, x, t, vectors):
    """``(v, P)``: ``P_k = J vectors_k`` by ``model.jvp`` (forward mode), or, for a field that
    offers only ``vjp``, ``P_k = J^T vectors_k`` (reverse mode). Both give the same
    ``u^T P u`` and the same diagonal, which is all a divergence needs."""
    if getattr(model, "jvp", None) is not None:
        return model.jvp(x, t, dx=vectors)
    if getattr(model, "vjp", None) is not None:
        return model.vjp(x, t, dv=vectors)
    raise TypeError(f"model must offer jvp or vjp for a divergence (as a network does), got "
                    f"a {type(model).__name__}")


def _velocity_and_divergence(model, x, t):
    """``(v, div v)`` (n, d), (n,) from the products with the d unit vectors."""
    n, d = x.shape
    tangents = np.broadcast_to(np.eye(d, dtype=x.dtype)[:, None, :], (d, n, d))  # (d, n, d)
    v, dv = _jacobian_products(model, x, t, tangents)  # dv[i, j] = J(x_j) e_i (or J^T e_i)
    return v, np.einsum("ini->n", dv)  # sum_i dv[i, j, i] = trace J(x_j)


def draw_probes(rng, shape, kind="rademacher", dtype=np.float64):
    """Probe vectors with ``E[eps eps^T] = I``: Rademacher (+-1) or standard Gaussian."""
    _checks.generator(rng)
    _checks.choice(kind, "probe", PROBES)
    if kind == "rademacher":
        return rng.choice(np.array([-1.0, 1.0], dtype=dtype), size=shape)
    return rng.standard_normal(shape).astype(dtype)


def hutchinson_divergence(model, x, t, probes):
    """Unbiased divergence estimate ``mean_k eps_k^T (dv/dx) eps_k`` (Hutchinson 1989).

    Parameters
    ----------
    model : object with ``jvp`` or ``vjp``; x : (n, d); t : float or (n,).
    probes : (k, n, d) probe vectors (see :func:`draw_probes`); k probes per point.

    Returns
    -------
    div : (n,) the estimate (its variance falls as 1/k).
    """
    x = _checks.points(x, "x")
    probes = np.asarray(probes, dtype=x.dtype)
    if probes.ndim != 3 or probes.shape[1:] != x.shape:
        raise ValueError(f"probes must have shape (k, {x.shape[0]}, {x.shape[1]}), "
                         f"got {probes.shape}")
    return _velocity_and_probe_traces(model, x, t, probes)[1].mean(axis=0)


def _velocity_and_probe_traces(model, x, t, probes):
    """``(v, eps_k^T J eps_k)`` (n, d), (k, n), one estimate per probe, from one ``jvp`` call."""
    v, dv = _jacobian_products(model, x, t, probes)  # (n, d), (k, n, d)
    return v, np.einsum("knd,knd->kn", probes, dv)


def standard_normal_log_density(x):
    """``log N(x; 0, I) = -|x|^2 / 2 - (d / 2) log(2 pi)`` for x (n, d) -> (n,)."""
    return -0.5 * np.sum(x * x, axis=1) - 0.5 * x.shape[1] * np.log(2 * np.pi)


@dataclass(frozen=True)
class LogLikelihood:
    """Result of :func:`log_likelihood`.

    log_prob : (n,) log p_1(x1) in nats; x0 : (n, d) the points mapped back to t = 0;
    delta : (n,) ``l(0) = -integral_0^1 div v dt`` (with Hutchinson, the mean over the probes);
    nfe : velocity evaluations (per chunk);
    stderr : (n,) the standard error of ``log_prob`` (and of ``delta``) from Hutchinson's k >= 2
    probes, ``std_k(l_k(0)) / sqrt(k)``; None for the exact divergence or a single probe.
    """

    log_prob: np.ndarray
    x0: np.ndarray
    delta: np.ndarray
    nfe: int
    stderr: np.ndarray | None = None


def log_likelihood(model, x1, method="rk4", steps=None, rtol=solvers.RTOL, atol=solvers.ATOL,
                   log_p0=None, divergence="auto", rng=None, probe="rademacher", n_probes=None,
                   chunk_size=1024):
    """``log p_1(x1) = log p_0(x0) - integral_0^1 div v(x_t, t) dt`` (Chen et al. 2018, Thm. 1).

    Integrates the augmented ODE ``d[x, l]/dt = [v(x, t), div v(x, t)]`` from t = 1 to t = 0 with
    any solver of :mod:`npflow.solvers`. With Hutchinson's estimator and k probes the state is
    ``[x, l_1 .. l_k]`` (n, d + k), ``dl_k/dt = eps_k^T (dv/dx) eps_k``, each probe drawn once and
    held fixed along the trajectory (FFJORD); ``delta`` is the mean of the ``l_k(0)``.

    Parameters
    ----------
    model : object with ``jvp(x, t, *, dx)`` (an :class:`~npflow.nn.MLP`)
    x1 : (n, d) points at which to evaluate the model's density.
    method, steps, rtol, atol : see :func:`npflow.solvers.solve`; ``steps=None`` is
        ``solvers.DEFAULT_STEPS`` for the fixed-step methods and must stay None for dopri5 (the
        rule in :mod:`npflow.solvers`' docstring).
    log_p0 : callable (n, d) -> (n,), optional
        Log-density of the source; the standard normal by default.
    divergence : {"auto", "exact", "hutchinson"}
        ``"auto"``: exact for ``d <= EXACT_MAX_DIM``, Hutchinson's estimator above (see the module
        docstring); ``"exact"`` or ``"hutchinson"`` forces either.
    rng : np.random.Generator, optional
        Draws the probes; required when the divergence is Hutchinson's. Unused when ``"auto"``
        picks the exact divergence, an error with ``divergence="exact"``.
    probe : {"rademacher", "gaussian"}
    n_probes : int, optional
        Hutchinson probes per point, ``DEFAULT_PROBES`` when None; from 2 on, ``stderr`` is given.
        Unused when ``"auto"`` picks the exact divergence, an error with ``divergence="exact"``.
    chunk_size : int
        Points integrated at once, bounding memory for large n. 1024 keeps a chunk's (k, n, h)
        tangents small enough to stay in cache (``npflow evaluate`` of 10,000 rows in 10-D with
        the data defaults: 18.1 s, against 19.1 s with chunks of 4096).

    Returns
    -------
    LogLikelihood
    """
    x1 = _checks.points(x1, "x1")
    chunk_size = _checks.positive_int(chunk_size, "chunk_size")
    _checks.choice(probe, "probe", PROBES)
    probes_per_point = _probes_per_point(divergence, x1.shape[1], rng, n_probes)
    if log_p0 is not None and not callable(log_p0):
        raise TypeError(f"log_p0 must be a callable (n, d) -> (n,) or None, got {log_p0!r}")
    log_p0 = standard_normal_log_density if log_p0 is None else log_p0
    parts, nfe = [], 0
    for start in range(0, x1.shape[0], chunk_size):
        chunk = x1[start:start + chunk_size]
        probes = None if probes_per_point is None else \
            draw_probes(rng, (probes_per_point,) + chunk.shape, probe, chunk.dtype)  # (k, n, d)
        parts.append(_integrate_back(model, chunk, probes, method, steps, rtol, atol))
        nfe = max(nfe, parts[-1].nfe)
    z0 = np.concatenate([p.x for p in parts])  # (n, d + k), k = 1 for the exact divergence
    d = x1.shape[1]
    x0, deltas = z0[:, :d], z0[:, d:]  # (n, d), (n, k)
    delta = deltas.mean(axis=1)  # (n,)
    k = deltas.shape[1]
    stderr = deltas.std(axis=1, ddof=1) / np.sqrt(k) if k >= 2 else None
    return LogLikelihood(log_p0(x0) + delta, x0, delta, nfe, stderr)


def log_likelihood_of_rows(model, x, rng=None, transform=None, divergence="auto", n_probes=None,
                           **kwargs):
    """``log p_x(x) = log p_z(z) + log|det dz/dx|`` of rows ``x`` (n, d) in data units.

    ``z = transform.forward(x)`` (a :class:`~npflow.transforms.Standardize`; None: the network
    works in data units) and ``log p_z`` is :func:`log_likelihood`'s. A dequantizing transform
    first adds fresh ``u ~ U[0, 1)`` to each row (Theis et al. 2016), drawn from ``rng``, which
    also draws Hutchinson's probes when the divergence is estimated (``"exact"`` takes none).
    ``kwargs`` go to :func:`log_likelihood` (the solver, ``log_p0``, ``chunk_size``).

    Returns
    -------
    (n,) float64 ndarray of ``log p_x(x)``, and the :class:`LogLikelihood` in the network's space
    """
    check_divergence(divergence, n_probes)
    x = np.asarray(x, dtype=np.float64)
    shift = 0.0
    if transform is not None:
        x = transform.dequantized(x, rng) if transform.dequantize else x
        x, shift = transform.forward(x), transform.log_abs_det()
    probes = {} if divergence == "exact" else {"rng": rng, "n_probes": n_probes}
    ll = log_likelihood(model, x.astype(model.dtype), divergence=divergence, **probes, **kwargs)
    return ll.log_prob.astype(np.float64) + shift, ll


def check_divergence(divergence, n_probes=None):
    """Check a divergence mode and its probe count: ``n_probes`` only with an estimate.

    Returns ``(divergence, n_probes)``; ``n_probes`` None means :data:`DEFAULT_PROBES`.
    """
    _checks.choice(divergence, "divergence", DIVERGENCES)
    if n_probes is not None:
        n_probes = _checks.positive_int(n_probes, "n_probes")
        if divergence == "exact":
            raise _checks.OptionError("{0} goes with Hutchinson's estimate, not {1} 'exact'",
                                      "n_probes", "divergence")
    return divergence, n_probes


def _probes_per_point(divergence, d, rng, n_probes):
    """Hutchinson's k for this call, or None for the exact divergence (checks the arguments)."""
    divergence, n_probes = check_divergence(divergence, n_probes)
    if rng is not None:
        _checks.generator(rng)
    if divergence == "exact" and (rng is not None or n_probes is not None):
        raise ValueError("rng and n_probes must be None with divergence='exact' (they set "
                         "Hutchinson's estimator); pass divergence='hutchinson' to estimate it")
    if divergence == "exact" or (divergence == "auto" and d <= EXACT_MAX_DIM):
        return None
    if rng is None:
        raise ValueError(f"rng must be a numpy.random.Generator for Hutchinson's estimator "
                         f"(divergence={divergence!r}, d={d}, EXACT_MAX_DIM={EXACT_MAX_DIM}): "
                         f"pass rng=np.random.default_rng(seed), or divergence='exact'")
    return DEFAULT_PROBES if n_probes is None else n_probes


def _integrate_back(model, x1, probes, method, steps, rtol, atol):
    """Solve the augmented ODE from t = 1 to 0; ``probes`` (k, n, d), or None for exact."""
    n, d = x1.shape
    k = 1 if probes is None else probes.shape[0]

    def augmented(z, t):  # z = [x, l_1 .. l_k] (n, d + k) -> [v, div estimates]
        x = z[:, :d]
        if probes is None:
            v, div = _velocity_and_divergence(model, x, t)  # (n, d), (n,)
            return np.concatenate([v, div[:, None]], axis=1)
        v, traces = _velocity_and_probe_traces(model, x, t, probes)  # (n, d), (k, n)
        return np.concatenate([v, traces.T], axis=1)

    z1 = np.concatenate([x1, np.zeros((n, k), dtype=x1.dtype)], axis=1)  # (n, d + k)
    return solvers.solve(augmented, z1, method=method, steps=steps, t0=1.0, t1=0.0,
                         rtol=rtol, atol=atol)
