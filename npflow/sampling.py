"""Sampling a trained network: its flow from t = 0 to 1, in chunks, reusing buffers, on threads.

:func:`npflow.solvers.solve` integrates any velocity function; :func:`sample_flow` is what
knows the network; the solvers know nothing of networks. For a field that offers
``workspace()`` (a network, or a guided field of one) it

* integrates the points in chunks of ``chunk_size`` (bounded memory; each chunk is its own ODE,
  for dopri5 with its own steps),
* passes one :class:`~npflow.nn.Workspace` per chunk, so every velocity evaluation writes into
  the same arrays instead of fresh ones (no page faults per step),
* integrates two chunks at once on two threads when there are enough points, with NumPy's
  OpenBLAS held to one thread meanwhile (:mod:`npflow._blas`): two Python threads that each call
  a two-thread BLAS fight over two cores.

``steps`` follows the rule of :mod:`npflow.solvers`: None is ``solvers.DEFAULT_STEPS`` for the
fixed-step methods, and dopri5 takes no ``steps``.
"""
import os

import numpy as np

from . import _blas, _checks, solvers
from .solvers import Solution, solve

# sample_flow's default uses two threads from this many points on (measured on two cores: 10,000
# points of a 3 x 64 SELU net, RK4 with 100 steps, 1.4 s in one thread, 0.9 s in two).
PARALLEL_MIN_POINTS = 4096


def sample_flow(model, x0, method="rk4", steps=None, rtol=solvers.RTOL, atol=solvers.ATOL,
                chunk_size=None, return_trajectory=False, threads=None):
    """Push source points through the learned flow: integrate ``dx/dt = v(x, t)`` from 0 to 1.

    Parameters
    ----------
    model : callable ``model(x, t) -> v``, e.g. an :class:`~npflow.nn.MLP`
    x0 : (n, d) points drawn from the source p0.
    method, steps, rtol, atol : see :func:`npflow.solvers.solve`; ``steps=None`` is
        ``solvers.DEFAULT_STEPS`` for the fixed-step methods and must stay None for dopri5 (the
        rule in :mod:`npflow.solvers`' docstring).
    chunk_size : int, optional
        Integrate at most this many points at once so memory stays bounded for large n
        (each chunk is an independent ODE; for dopri5 each picks its own steps).
    return_trajectory : bool
        Also return the (steps + 1, n, d) trajectory (fixed-step methods only when chunking).
    threads : int, optional
        Integrate this many chunks at once, on a thread pool, with NumPy's BLAS held to one
        thread meanwhile (:mod:`npflow._blas`); needs an :class:`~npflow.nn.MLP` and a fixed-step
        method. None: two threads when that holds, n >= ``PARALLEL_MIN_POINTS``, two cores are
        usable and the BLAS can be held to one thread; otherwise one. Every row follows the same
        ODE either way, so the samples agree with one thread's up to BLAS rounding (~1e-6).

    Returns
    -------
    Solution
        ``x`` (n, d) the samples; ``nfe`` the evaluations of the most expensive chunk.
    """
    x0 = _checks.points(x0, "x0")
    n = x0.shape[0]
    chunk_size = n if chunk_size is None else _checks.positive_int(chunk_size, "chunk_size")
    if return_trajectory and method == "dopri5" and chunk_size < n:
        raise ValueError("return_trajectory with dopri5 needs chunk_size >= n: each chunk picks "
                         "its own time steps")
    workers = _workers(model, method, n, threads)
    chunk_size = min(chunk_size, -(-n // workers))  # at least one chunk per worker

    def part(start):
        return solve(_reusing_buffers(model), x0[start:start + chunk_size], method=method,
                     steps=steps, rtol=rtol, atol=atol, return_trajectory=return_trajectory)

    starts = range(0, n, chunk_size)
    if workers == 1:
        parts = [part(start) for start in starts]
    else:
        from concurrent.futures import ThreadPoolExecutor  # imported late: keeps import fast
        with _blas.limit(1), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(part, starts))
    if len(parts) == 1:
        return parts[0]
    trajectory = np.concatenate([p.trajectory for p in parts], axis=1) if return_trajectory \
        else None
    return Solution(x=np.concatenate([p.x for p in parts]), trajectory=trajectory,
                    times=parts[0].times, nfe=max(p.nfe for p in parts))


def _workers(model, method, n, threads):
    """How many chunks :func:`sample_flow` integrates at once (see its ``threads``)."""
    parallel_ok = method != "dopri5" and _workspace(model) is not None
    if threads is not None:
        threads = _checks.positive_int(threads, "threads")
        if threads > 1 and not parallel_ok:
            raise ValueError(f"threads must be 1 unless the model reuses buffers (offers "
                             f"workspace(), as a network does) and the method is a "
                             f"fixed-step one, got threads={threads} with method {method!r} and "
                             f"a {type(model).__name__} model")
        return min(threads, n)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if parallel_ok and n >= PARALLEL_MIN_POINTS and (usable or 1) >= 2 \
            and _blas.threads() is not None:
        return 2
    return 1


def _reusing_buffers(model):
    """The field's forward with one reused workspace of its own, else ``model`` itself.

    :func:`solve` copies every velocity it receives, so the network may write each evaluation
    into the same arrays; fresh arrays of this size would cost page faults at every call.
    """
    work = _workspace(model)
    if work is None:
        return model
    return lambda x, t: model.forward(x, t, work=work)


def _workspace(model):
    """A fresh workspace of ``model`` (``model.workspace()``), or None when it offers none."""
    make = getattr(model, "workspace", None)
    return None if make is None else make()
