"""npflow: flow matching from scratch in NumPy.

Modules, one concept each (read them next to the papers):

- :mod:`npflow.nn`          the velocity network v(x, t), hand-written backprop and tangents
- :mod:`npflow.optim`       Adam, AdamW, gradient clipping, learning-rate schedules, EMA
- :mod:`npflow.datasets`    2-D toy distributions with labels and exact densities
- :mod:`npflow.data`        your own rows: files, arrays, checks, splits, epochs of minibatches
- :mod:`npflow.transforms`  the stored, invertible standardization between data and the network
- :mod:`npflow.paths`       probability paths x_t and their target velocities u_t
- :mod:`npflow.couplings`   independent and minibatch optimal-transport pairing of (x0, x1)
- :mod:`npflow.train`       the conditional flow matching loop
- :mod:`npflow.checkpoint`  atomic, pickle-free checkpoints
- :mod:`npflow.solvers`     Euler, midpoint, Heun, RK4 and adaptive Dormand-Prince
- :mod:`npflow.sampling`    sampling a trained network: chunks, reused buffers, threads
- :mod:`npflow.likelihood`  divergences and exact log-likelihoods
- :mod:`npflow.guidance`    classifier-free guidance of a class-conditional field
- :mod:`npflow.reflow`      rectified flow's reflow: retraining on the flow's own pairs
- :mod:`npflow.metrics`     W2, MMD, energy distance, Frechet distance, NLL (with floors)
- :mod:`npflow.baselines`   honest density baselines: a full-covariance Gaussian, a GMM by EM
- :mod:`npflow.classifier`  a softmax classifier from npflow's own layers (sample quality)
- :mod:`npflow.tables`      a table's columns (CSV, missing cells) and their invertible encoding
- :mod:`npflow.tabular`     a flow of a table's rows: the stored columns, rows in and out
- :mod:`npflow.imputation`  missing coordinates drawn by replacement during the ODE solve
- :mod:`npflow.report`      SDMetrics' quality measures of synthetic tables, in NumPy
- :mod:`npflow.trained`     ``TrainedFlow``: sample, score, encode, evaluate, reflow any checkpoint
- :mod:`npflow.flow`        ``Flow``: a scikit-learn estimator of your rows (fit, sample, score)
- :mod:`npflow.viz`         pictures (needs matplotlib; imported only on use)
- :mod:`npflow.cli`         the ``npflow`` command line

``npflow.train(...)`` calls :func:`npflow.train.train` (train a model in one call): the module
is callable, and stays the module for ``from npflow.train import Trainer``.
"""
from . import (baselines, checkpoint, classifier, couplings, data, datasets, flow, guidance,
               imputation, likelihood, metrics, nn, optim, paths, reflow, report, sampling,
               solvers, tables, tabular, train, trained, transforms)
from .checkpoint import CheckpointError, load_model
from .data import DataError, DataTypeError
from .flow import Flow, NotFittedError
from .guidance import GuidedField
from .likelihood import divergence, log_likelihood
from .nn import MLP
from .optim import EMA, Adam, AdamW
from .reflow import reflow_pairs
from .sampling import sample_flow
from .solvers import solve
from .train import DATA_DEFAULTS, TrainConfig, Trainer
from .trained import TrainedFlow
from .transforms import Standardize

__version__ = "0.1.0"

__all__ = [
    "Adam", "AdamW", "CheckpointError", "DATA_DEFAULTS", "DataError", "DataTypeError", "EMA", "Flow",
    "GuidedField", "MLP", "NotFittedError", "Standardize", "TrainConfig", "TrainedFlow",
    "Trainer", "baselines", "checkpoint",
    "classifier", "couplings",
    "data", "datasets", "divergence", "flow", "guidance", "imputation", "likelihood",
    "load_model", "log_likelihood", "metrics", "nn", "optim", "paths", "reflow", "reflow_pairs",
    "report", "sample_flow", "sampling", "solve", "solvers", "tables", "tabular", "train",
    "trained", "transforms",
]
