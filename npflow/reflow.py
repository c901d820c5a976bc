"""Reflow: straighten a learned flow by retraining on its own pairs (Liu et al. 2023, Alg. 1).

A trained flow ``Z^k`` with field ``v^k`` defines a deterministic coupling: ``x1 = Z^k_1(x0)``,
the ODE ``dx/dt = v^k(x, t)`` integrated from ``x0 ~ p0`` (:func:`reflow_pairs`). The next flow
``Z^{k+1}`` is fitted to these *fixed* pairs with the same straight-line objective,
``min E || v(xt, t) - (x1 - x0) ||^2`` with ``xt = (1 - t) x0 + t x1`` (Liu et al. 2023, eq. 1
with ``(X0, X1) = (Z^k_0, Z^k_1)``). Pairs produced by a flow never cross, so each rectification
makes the paths straighter (Liu et al. 2023, Sec. 2.2 and Thm. 3.7) and few Euler steps suffice.

Following common practice (the authors' code, and InstaFlow, Liu et al. 2024) the new network
starts from the parent's weights rather than from scratch: the parent already carries
``x0`` close to ``x1``, so far fewer steps are needed.

References
----------
Liu, Gong, Liu. Flow straight and fast: learning to generate and transfer data with rectified
flow. ICLR 2023 (arXiv 2209.03003).
"""
import dataclasses

import numpy as np

from . import _checks, sampling
from .train import TrainConfig, Trainer


def reflow_pairs(model, x0, method="rk4", steps=None):
    """The coupling of a flow: ``x1 = Z_1(x0)``, the ODE ``dx/dt = v(x, t)`` solved on [0, 1].

    Deterministic given ``x0``: the caller draws ``x0 ~ p0`` with its own ``rng``.

    Parameters
    ----------
    model : callable ``model(x, t) -> v`` (an :class:`~npflow.nn.MLP`)
    x0 : (N, d) source points.
    method : {"euler", "midpoint", "heun", "rk4"}
        Fixed-step solver; rk4 with 100 steps is accurate for the 2-D flows here.
    steps : int, optional
        Uniform solver steps; None is ``solvers.DEFAULT_STEPS`` (100), the rule of
        :mod:`npflow.solvers`.

    Returns
    -------
    x0 : (N, d) float64 ndarray, the source points.
    x1 : (N, d) float64 ndarray, their images under the flow.
    """
    x0 = _checks.points(x0, "x0", dtype=getattr(model, "dtype", np.float64))
    if method == "dopri5":
        raise _checks.refuse("method", "must be a fixed-step solver (euler, midpoint, heun, rk4), "
                                       "got 'dopri5'")
    x1 = sampling.sample_flow(model, x0, method=method, steps=steps).x
    return x0.astype(np.float64), x1.astype(np.float64)


def reflow_trainer(model, config, pairs, data_state=None, **overrides):
    """A :class:`~npflow.train.Trainer` for the next rectification, warm-started from ``model``.

    Parameters
    ----------
    model : MLP
        The parent flow, whose weights initialise the new network (and its EMA).
    config : TrainConfig
        The parent's configuration; the new one is it with ``reflow + 1``, the straight path
        ``path="linear"`` (``xt = (1 - t) x0 + t x1``, ``ut = x1 - x0``, whatever the parent's
        path: a Lipman or I-CFM parent's target would not be the straight line between the
        pairs), ``coupling="independent"`` (the pairs are fixed) and ``overrides``.
    pairs : (x0, x1)
        Two (N, d) arrays from :func:`reflow_pairs`.
    data_state : DataState, optional
        A flow of rows: the parent checkpoint's data (its transform above all), carried into
        the new run's checkpoints so that they map rows as the parent did.
    **overrides
        TrainConfig fields to change (e.g. ``steps``, ``lr``, ``seed``); the architecture must
        stay the parent's.

    Returns
    -------
    Trainer
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.conditional:
        raise ValueError("config must be unconditional: reflow of conditional flows is not "
                         "supported (the pairs carry no labels)")
    # Liu et al. 2023, Alg. 1: the straight-line objective, whatever path the parent used.
    new = dataclasses.replace(config, reflow=config.reflow + 1, path="linear",
                              sigma=TrainConfig.sigma, coupling="independent", **overrides)
    trainer = Trainer(new, pairs=pairs, data_state=data_state)
    if model.config() != trainer.model.config():
        raise ValueError(f"model must have the architecture of the config, got {model.config()} "
                         f"for a config that builds {trainer.model.config()}")
    trainer.model.params[...] = model.params
    trainer.ema.shadow[...] = model.params
    return trainer
