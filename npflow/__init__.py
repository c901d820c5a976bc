"""npflow: flow matching from scratch in NumPy.

Modules, one concept each (read them next to the papers):

- :mod:`npflow.nn`          the velocity network v(x, t), hand-written backprop and tangents
- :mod:`npflow.optim`       Adam, AdamW, gradient clipping, learning-rate schedules, EMA
- :mod:`npflow.datasets`    2-D toy distributions with labels and exact densities
- :mod:`npflow.paths`       probability paths x_t and their target velocities u_t
- :mod:`npflow.couplings`   independent and minibatch optimal-transport pairing of (x0, x1)
- :mod:`npflow.train`       the conditional flow matching loop
- :mod:`npflow.checkpoint`  atomic, pickle-free checkpoints
- :mod:`npflow.solvers`     Euler, midpoint, Heun, RK4 and adaptive Dormand-Prince
- :mod:`npflow.sampling`    sampling a trained network: chunks, reused buffers, threads
- :mod:`npflow.likelihood`  divergences and exact log-likelihoods
- :mod:`npflow.guidance`    classifier-free guidance of a class-conditional field
- :mod:`npflow.reflow`      rectified flow's reflow: retraining on the flow's own pairs
- :mod:`npflow.metrics`     W2, MMD, energy distance, NLL
- :mod:`npflow.viz`         pictures (needs matplotlib; imported only on use)
- :mod:`npflow.cli`         the ``npflow`` command line
"""
from . import (checkpoint, couplings, datasets, guidance, likelihood, metrics, nn, optim, paths,
               reflow, sampling, solvers, train)
from .checkpoint import CheckpointError, load_model
from .guidance import GuidedField
from .likelihood import divergence, log_likelihood
from .nn import MLP
from .optim import EMA, Adam, AdamW
from .reflow import reflow_pairs
from .sampling import sample_flow
from .solvers import solve
from .train import TrainConfig, Trainer

__version__ = "0.1.0"

__all__ = [
    "Adam", "AdamW", "CheckpointError", "EMA", "GuidedField", "MLP", "TrainConfig", "Trainer",
    "checkpoint", "couplings", "datasets", "divergence", "guidance", "likelihood", "load_model",
    "log_likelihood", "metrics", "nn", "optim", "paths", "reflow", "reflow_pairs", "sample_flow",
    "sampling", "solve", "solvers", "train",
]
