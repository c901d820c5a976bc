"""Divergence of the velocity field and exact log-likelihoods by the instantaneous change of variables.

A flow ``dx/dt = v(x, t)`` carries densities along with it (Chen et al. 2018, "Neural ODEs",
Theorem 1; Lipman et al. 2023, eq. 2-3 and Sec. 2)::

    d log p_t(x_t) / dt = - div v(x_t, t)

so for a data point x1, integrating from t = 1 back to t = 0::

    log p_1(x1) = log p_0(x0) - integral_0^1 div v(x_t, t) dt,    x0 = x(0) when x(1) = x1.

:func:`log_likelihood` integrates the augmented state ``[x, l]`` with ``dl/dt = div v(x, t)`` and
``l(1) = 0``, so that ``l(0) = -integral_0^1 div v dt`` and ``log p_1(x1) = log p_0(x0) + l(0)``.

The divergence ``div v = trace(dv/dx)`` comes from the network's own forward-mode tangents
(:meth:`npflow.nn.MLP.jvp`): exactly, with the d unit tangents, or estimated with Hutchinson's
trick ``E[eps^T (dv/dx) eps] = trace(dv/dx)`` for probes with ``E[eps eps^T] = I`` (Hutchinson
1989; Grathwohl et al. 2019, "FFJORD", eq. 7).
"""
from dataclasses import dataclass

import numpy as np

from . import _checks, solvers

PROBES = ("rademacher", "gaussian")


def divergence(model, x, t):
    """Exact divergence ``div v(x, t) = sum_i dv_i/dx_i`` from d Jacobian-vector products.

    Parameters
    ----------
    model : object with ``jvp(x, t, *, dx) -> (v, dv)`` (an :class:`~npflow.nn.MLP`)
    x : (n, d) points; t : float or (n,) times.

    Returns
    -------
    div : (n,) the divergence at each point.
    """
    return _velocity_and_divergence(model, _checks.points(x, "x"), t)[1]


def _velocity_and_divergence(model, x, t):
    """``(v, div v)`` (n, d), (n,) from one call of ``jvp`` with the d unit tangents."""
    n, d = x.shape
    tangents = np.broadcast_to(np.eye(d, dtype=x.dtype)[:, None, :], (d, n, d))  # (d, n, d)
    v, dv = model.jvp(x, t, dx=tangents)  # dv[i, j] = J(x_j) e_i, column i of the Jacobian
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
    model : object with ``jvp``; x : (n, d); t : float or (n,).
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
    return _velocity_and_hutchinson(model, x, t, probes)[1]


def _velocity_and_hutchinson(model, x, t, probes):
    """``(v, mean_k eps_k^T J eps_k)`` (n, d), (n,) from one call of ``jvp`` with the probes."""
    v, dv = model.jvp(x, t, dx=probes)  # (n, d), (k, n, d)
    return v, np.einsum("knd,knd->n", probes, dv) / probes.shape[0]


def standard_normal_log_density(x):
    """``log N(x; 0, I) = -|x|^2 / 2 - (d / 2) log(2 pi)`` for x (n, d) -> (n,)."""
    return -0.5 * np.sum(x * x, axis=1) - 0.5 * x.shape[1] * np.log(2 * np.pi)


@dataclass(frozen=True)
class LogLikelihood:
    """Result of :func:`log_likelihood`.

    log_prob : (n,) log p_1(x1) in nats; x0 : (n, d) the points mapped back to t = 0;
    delta : (n,) ``l(0) = -integral_0^1 div v dt``; nfe : velocity evaluations (per chunk).
    """

    log_prob: np.ndarray
    x0: np.ndarray
    delta: np.ndarray
    nfe: int


def log_likelihood(model, x1, method="rk4", steps=None, rtol=1e-5, atol=1e-5, log_p0=None,
                   rng=None, probe="rademacher", n_probes=1, chunk_size=4096):
    """``log p_1(x1) = log p_0(x0) - integral_0^1 div v(x_t, t) dt`` (Chen et al. 2018, Thm. 1).

    Integrates the augmented ODE ``d[x, l]/dt = [v(x, t), div v(x, t)]`` from t = 1 to t = 0 with
    any solver of :mod:`npflow.solvers`.

    Parameters
    ----------
    model : object with ``jvp(x, t, *, dx)`` (an :class:`~npflow.nn.MLP`)
    x1 : (n, d) points at which to evaluate the model's density.
    method, steps, rtol, atol : see :func:`npflow.solvers.solve`; ``steps=None`` is
        ``solvers.DEFAULT_STEPS`` for the fixed-step methods and must stay None for dopri5 (the
        rule in :mod:`npflow.solvers`' docstring).
    log_p0 : callable (n, d) -> (n,), optional
        Log-density of the source; the standard normal by default.
    rng : np.random.Generator, optional
        Given: estimate the divergence by Hutchinson's trick with ``n_probes`` probes per point,
        drawn once and held fixed along each trajectory (FFJORD). None: the exact divergence.
    probe : {"rademacher", "gaussian"}
    chunk_size : int
        Points integrated at once, bounding memory for large n.

    Returns
    -------
    LogLikelihood
    """
    x1 = _checks.points(x1, "x1")
    chunk_size = _checks.positive_int(chunk_size, "chunk_size")
    n_probes = _checks.positive_int(n_probes, "n_probes")
    _checks.choice(probe, "probe", PROBES)
    if log_p0 is not None and not callable(log_p0):
        raise TypeError(f"log_p0 must be a callable (n, d) -> (n,) or None, got {log_p0!r}")
    log_p0 = standard_normal_log_density if log_p0 is None else log_p0
    parts, nfe = [], 0
    for start in range(0, x1.shape[0], chunk_size):
        chunk = x1[start:start + chunk_size]
        probes = None if rng is None else draw_probes(rng, (n_probes,) + chunk.shape, probe,
                                                      chunk.dtype)
        parts.append(_integrate_back(model, chunk, probes, method, steps, rtol, atol))
        nfe = max(nfe, parts[-1].nfe)
    z0 = np.concatenate([p.x for p in parts])  # (n, d + 1)
    x0, delta = z0[:, :-1], z0[:, -1]
    return LogLikelihood(log_p0(x0) + delta, x0, delta, nfe)


def _integrate_back(model, x1, probes, method, steps, rtol, atol):
    d = x1.shape[1]

    def augmented(z, t):  # z = [x, l] (n, d + 1) -> [v, div v]
        x = z[:, :d]
        v, div = _velocity_and_divergence(model, x, t) if probes is None else \
            _velocity_and_hutchinson(model, x, t, probes)
        return np.concatenate([v, div[:, None]], axis=1)

    z1 = np.concatenate([x1, np.zeros((x1.shape[0], 1), dtype=x1.dtype)], axis=1)
    return solvers.solve(augmented, z1, method=method, steps=steps, t0=1.0, t1=0.0,
                         rtol=rtol, atol=atol)
