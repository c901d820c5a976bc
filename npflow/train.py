"""Conditional flow matching training (Lipman et al. 2023, eq. 9 and 23; Tong et al. 2023, Alg. 1-3).

One step::

    x0 ~ p0 (source), x1 ~ p1 (target)           fresh samples, or the next minibatch of rows
    (x0, x1) <- coupling(x0, x1)                  independent, or minibatch OT
    t ~ U[0, 1]                                   (or a documented non-uniform density)
    xt, ut = path(x0, x1, t)                      probability path and its target velocity
    L(theta) = mean || v_theta(xt, t) - ut ||^2 / d   the CFM loss, per coordinate
    theta <- Adam(theta, dL/dtheta)               hand-written backprop and optimizer

The loss is the mean over the batch of the squared norm divided by the dimension d: the mean
over all n d entries, as ``torch.nn.functional.mse_loss`` takes it. It differs from Lipman et
al.'s eq. 9 by the constant factor 1/d, so its minimiser is the same. For the same error in
each coordinate, the squared norm (and its gradient) grows in proportion to d; the mean stays
at the scale of one coordinate, so the threshold of ``grad_clip`` means about the same at
every d.

:class:`Trainer` owns the network, the optimizer, the EMA and the random generator, so that a run
can be checkpointed at any step and resumed bit for bit. On a user's rows (target ``"data"``),
:class:`RowBatches` adds the split, the standardization, the epochs and the validation loss;
a signal (Ctrl-C, SIGTERM) is held until the step in progress ends (:meth:`Trainer.run`).
"""
import dataclasses
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass

import numpy as np

from . import _checks, checkpoint, couplings, data, datasets, networks, paths, transforms
from ._progress import Progress
from .nn import ACTIVATIONS, TIME_EMBEDDINGS, Workspace, check_hidden
from .optim import EMA, SCHEDULES, Adam, AdamW, clip_grad_norm, make_schedule

TIME_SAMPLINGS = ("uniform", "logit-normal")
DATA = "data"  # the source or target name of a finite dataset passed to the Trainer
VAL_MAX_ROWS = 4096  # validation rows scored at each evaluation (more cost time, not accuracy)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; stored as JSON in every checkpoint.

    The defaults train the 2-D checkerboard to a precision of 0.955 (the fraction of 10,000 RK4
    samples on the filled squares, seeds 0 and 1) in 32-57 s on two CPU cores; the comments give
    the measured reason for each choice (precisions of 10,000 samples; demos/experiments/README.md
    has the tuning log and the timings).
    """

    source: str = "gaussian"          # x0 ~ p0: noise, or any dataset (data-to-data flows)
    target: str = "checkerboard"      # x1 ~ p1: dome272/Flow-Matching's 4 x 4 board
    path: str = "linear"              # CondOT / rectified flow: straight lines, constant speed
    sigma: float = 0.1                # noise of icfm, sigma_min of lipman; unused by linear and vp
    coupling: str = "independent"     # x0, x1 drawn independently; "ot" straightens paths
    steps: int = 8500                 # 3 x 128 at lr 8e-3: 7000 steps 0.948-0.952, 8500 0.955
    batch_size: int = 2048            # the CFM target x1 - x0 is noisy: big batches (1536: 0.949)
    lr: float = 8e-3                  # peak rate; 8500 steps at 5e-3 reach only 0.948
    schedule: str = "cosine"          # decaying to 0 lets the last steps settle the square edges
    warmup_steps: int = 200           # avoids early blow-ups at the high peak rate
    weight_decay: float = 0.0         # AdamW decay; 0 gives plain Adam
    grad_clip: float = 1.0            # global-norm clipping; 0 disables
    ema_decay: float = 0.995          # averages the last ~200 steps: 0.999 lags on a short run
    hidden: tuple = (128, 128, 128)   # 1/4 the flops of 3 x 256 (6000 steps, batch 1536: 0.949)
    activation: str = "relu"          # sharp edges: ReLU beat SiLU (0.93 vs 0.88, logit-normal t)
    residual: bool = False            # shortcuts a_i = a_{i-1} + act(z_i) where widths match (nn)
    time_embedding: str = "concat"    # t as an input: as good as the sinusoidal embedding here
    embed_dim: int = 64               # size of the sinusoidal embedding, when used
    time_scale: float = 1000.0        # t scale inside the sinusoidal embedding (see nn)
    time_sampling: str = "logit-normal"  # mid-path t decide which square a point joins: +0.04-0.06
    seed: int = 0                     # the single source of randomness of the run
    conditional: bool = False         # learn v(x, t, y) for the target's class labels y
    label_dropout: float = 0.1        # P(y -> null): one net learns both fields (0.1-0.2: CFG)
    reflow: int = 0                   # rectifications before this run (> 0: trains on fixed pairs)
    dtype: str = "float32"            # float32 is twice as fast; float64 for checks
    # Runs on a finite dataset (target "data": the Trainer's ``data`` argument, a user's rows).
    val_fraction: float = 0.1         # rows held out: validation loss, best weights, patience
    eval_every: int = 500             # steps between validation losses
    patience: int = 0                 # evaluations without improvement before stopping; 0: never
    dequantize: bool = False          # integer data: x + u, u ~ U[0, 1) fresh each batch
    standardize: bool = True          # the network sees (x - mean) / std (images: one pooled map)
    # The network (npflow.networks): the MLP above, or a U-Net for images (npflow.networks.unet).
    arch: str = "mlp"                 # "unet" needs rows that are images
    channels: int = 16                # U-Net: base width C (demos/mnist.py: 264 K weights)
    multipliers: tuple = (1, 2, 2)    # U-Net: C_i = C m_i per level (28 -> 14 -> 7 for MNIST)
    blocks: int = 1                   # U-Net: residual blocks per level
    groups: int = 8                   # U-Net: groups of every group norm

    def __post_init__(self):
        for name, options in CHOICES.items():
            _checks.choice(getattr(self, name), name,
                           (*options, DATA) if name in ("source", "target") else options)
        if self.source == DATA and self.target != DATA:
            raise ValueError("source 'data' (rows of a file) needs target 'data' as well")
        for name in ("steps", "batch_size", "embed_dim", "channels", "blocks", "groups"):
            _checks.positive_int(getattr(self, name), name)
        object.__setattr__(self, "multipliers", tuple(
            _checks.positive_int(m, "multipliers") for m in _sequence(self.multipliers,
                                                                       "multipliers")))
        for name in ("warmup_steps", "seed", "reflow", "patience"):
            _checks.nonnegative_int(getattr(self, name), name)
        _checks.positive_int(self.eval_every, "eval_every")
        for name in ("conditional", "dequantize", "standardize", "residual"):
            _checks.boolean(getattr(self, name), name)
        _checks.finite_float(self.val_fraction, "val_fraction", low=0, high=1, high_open=True)
        _checks.finite_float(self.label_dropout, "label_dropout", low=0, high=1)
        if self.conditional and self.reflow:
            raise ValueError("reflow must be 0 for a conditional run: reflow pairs carry no labels")
        _checks.finite_float(self.lr, "lr", low=0, low_open=True)
        _checks.finite_float(self.sigma, "sigma", low=0)
        _checks.finite_float(self.weight_decay, "weight_decay", low=0)
        _checks.finite_float(self.grad_clip, "grad_clip", low=0)
        _checks.finite_float(self.ema_decay, "ema_decay", low=0, high=1)
        _checks.finite_float(self.time_scale, "time_scale", low=0, low_open=True)
        object.__setattr__(self, "hidden", check_hidden(self.hidden))
        self._check_combinations()

    def _check_combinations(self):
        """Refuse every option that this run would silently ignore (one line naming it).

        An option is *set* when it differs from its default here; a set option that the rest
        of the configuration does not use is an error, not a silent no-op.
        """
        unused = [(names, why) for names, why in self._unused() if self._is_set(names[0])]
        if unused:
            names, why = unused[0]
            raise _checks.OptionError("{0} " + why, *names)
        if self.target == DATA and self.source not in ("gaussian", DATA):
            raise _checks.OptionError(
                "{0} of a run on rows must be 'gaussian' (noise N(0, I_d)) or 'data' (rows of a "
                f"source dataset), got {self.source!r}", "source")

    def _unused(self):
        """((option, other options named), why) for the options this run does not use."""
        if self.target != DATA:
            for name in ("val_fraction", "eval_every", "patience", "dequantize", "standardize"):
                yield (name, "data"), (f"applies to a run on rows of data ({{1}}), not to the "
                                       f"built-in target {self.target!r}")
        elif self.val_fraction == 0:  # no validation rows: no validation loss to watch
            for name in ("eval_every", "patience"):
                yield (name, "val_fraction"), "needs validation rows, but {1} is 0 (none held out)"
        if not self.conditional:
            yield ("label_dropout", "conditional"), "needs {1} (a class-conditional run)"
        if self.path not in ("icfm", "lipman"):
            yield ("sigma",), f"is used by the icfm and lipman paths, not by path {self.path!r}"
        for name in _UNET_ONLY if self.arch == "mlp" else _MLP_ONLY:
            yield (name, "arch"), f"is an option of another network than {{1}} {self.arch!r}"
        if self.arch == "mlp" and self.time_embedding != "sinusoidal":
            for name in ("embed_dim", "time_scale"):
                yield (name,), (f"sets the sinusoidal time embedding, not time_embedding "
                                f"{self.time_embedding!r}")

    def _is_set(self, name):
        return getattr(self, name) != _FIELD_DEFAULTS[name]

    def to_dict(self):
        return {**dataclasses.asdict(self), "hidden": list(self.hidden),
                "multipliers": list(self.multipliers)}

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)


# The values each text option of TrainConfig may take (source and target also "data").
CHOICES = {"source": tuple(datasets.DATASETS), "target": tuple(datasets.DATASETS),
           "path": tuple(paths.PATHS), "coupling": tuple(couplings.COUPLINGS),
           "schedule": tuple(SCHEDULES), "activation": tuple(ACTIVATIONS),
           "time_embedding": tuple(TIME_EMBEDDINGS), "time_sampling": TIME_SAMPLINGS,
           "dtype": ("float32", "float64"), "arch": tuple(networks.ARCHITECTURES)}
_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_MLP_ONLY = ("hidden", "activation", "residual", "time_embedding")  # options of one network
_UNET_ONLY = ("channels", "multipliers", "blocks", "groups")


def start(options, files=None):
    """A new :class:`Trainer` for ``options`` (TrainConfig fields): on a built-in target, or on
    the rows of ``files`` (a :class:`~npflow.data.TrainingFiles`) with :func:`data_config`.

    Class labels in ``files`` make the run conditional unless ``options`` say otherwise. The
    options are checked before the files are read.
    """
    if files is None:
        return Trainer(TrainConfig(**options))
    labeled = files.labels is not None or files.label_column is not None
    config = data_config(files.source_data is not None, **{"conditional": labeled, **options})
    x, labels, source = files.load()
    return Trainer(config, data=x, labels=labels, source_data=source,
                   data_files=files.to_dict())


RESUME = ("no", "yes", "auto")  # how start_or_resume treats a checkpoint already at ``out``


def start_or_resume(out, options, files=None, resume="no"):
    """The :class:`Trainer` of a run saved to ``out``, as a command line or a job script asks.

    ``resume="no"``: a new run (:func:`start`). ``"yes"``: the run saved in ``out`` continued
    (:meth:`Trainer.resume`: ``options`` must be the stored ones, ``steps`` aside, which
    re-plans). ``"auto"``: continued when ``out`` exists, else new, so that a job's first launch
    and its requeues run one command.
    """
    _checks.choice(resume, "resume", RESUME)
    if resume == "yes" and not os.path.isfile(out):
        where = _checks.literal(str(out))
        raise _checks.OptionError(f"{{0}}: there is no checkpoint {where} to continue (name it "
                                  f"with {{1}}, use {{0}} auto to start it, or train without "
                                  f"{{0}})", "resume", "out")
    if resume != "no" and os.path.exists(out):
        return Trainer.resume(out, options, files)
    return start(options, files)


def data_config(source_rows=False, **options):
    """The :class:`TrainConfig` of a run on rows: ``options``, then DATA_DEFAULTS, then the rest.

    The target is ``"data"``; the source is N(0, I_d) (``"gaussian"``), or rows of a source
    dataset when ``source_rows`` (a data-to-data flow).
    """
    if options.get("target", DATA) != DATA:
        raise _checks.OptionError(f"{{0}} are the target of a run on rows, so {{1}} cannot name "
                                  f"a built-in target (got {options['target']!r})", "data",
                                  "target")
    source = {"source": DATA} if source_rows else {}
    defaults = DATA_DEFAULTS if options.get("arch", "mlp") == "mlp" else {
        **{k: v for k, v in DATA_DEFAULTS.items() if k not in _MLP_ONLY}, **UNET_DATA_DEFAULTS}
    return TrainConfig(**{**defaults, **source, **options, "target": DATA})


# Defaults for a run on a user's rows (``npflow train --data``, :class:`npflow.Flow`): these fields
# replace TrainConfig's checkerboard defaults; the others stay (cosine schedule, clipping at 1,
# t concatenated, val_fraction 0.1). Measured on the "near" mixture of
# demos/experiments/gmm_benchmark.py (8 full-covariance Gaussians, d = 10, 20,000 rows); KL =
# mean log p - log q over 2,000 held-out rows, nats, one run each, standard errors about 0.012,
# another seed 0.002 apart (the tuning log is in demos/experiments/README.md).
DATA_DEFAULTS = {
    "hidden": (128,) * 10,           # depth, not width: plain 10 x 128 0.173, 4 x 256 0.22
    "residual": True,                # shortcuts let depth train: 0.129 (plain 12 x 128 0.243)
    "activation": "silu",            # a smooth field for a smooth density
    "time_sampling": "uniform",      # logit-normal t 0.298, t pushed towards 1 0.281 (3 x 256)
    "batch_size": 512,               # 1024 (at twice the time) 0.133
    "lr": 3e-3,                      # flat around it: 2e-3 0.136, 5e-3 0.134
    "steps": 10000,                  # 15,000: 0.130; the rows are the limit (200,000: 0.090)
    "warmup_steps": 200,             # no divergence seen up to lr 5e-3
    "ema_decay": 0.999,              # averages the last ~1000 of 10,000 steps
}
# ... and for a U-Net (``arch="unet"``), over those: the class-conditional U-Net of
# demos/mnist.py on 4,000 MNIST images (28 x 28, channels 16, multipliers 1, 2, 2), measured
# in the same run as the MLP of DATA_DEFAULTS: 0.94 held-out bits/dim against 5.58, a Frechet
# distance of 434 against 1512, in 522-558 s of training on two idle cores (0.44-0.47 s a step).
UNET_DATA_DEFAULTS = {
    "batch_size": 64,                # the demo's: 0.44-0.47 s a step
    "steps": 1200,                   # 19 epochs of the 4,000 images
    "lr": 2e-3,                      # the demo's, and the 8x8 digits U-Net's
    "warmup_steps": 50,
    "ema_decay": 0.995,              # 0.999^1200 would leave 30% of the average on the first weights
}


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite."""


@dataclass(frozen=True)
class Batch:
    """One training batch: the path sample and the loss terms' inputs.

    xt, ut : (n, d); t : (n, 1); y : (n,) class labels (``n_classes`` = null), or None.
    """

    xt: np.ndarray
    t: np.ndarray
    ut: np.ndarray
    y: np.ndarray = None


def sample_t(rng, n, kind, dtype=np.float64):
    """Draw training times t, shape (n,).

    ``"uniform"``: t ~ U[0, 1) (Lipman et al. 2023, eq. 23; NumPy's ``random`` includes 0 and
    excludes 1, which changes no expectation). ``"logit-normal"``: t = sigmoid(z), z ~ N(0, 1)
    (Esser et al. 2024, Sec. 3.1), in (0, 1), which spends more steps mid-path.
    """
    if kind == "uniform":
        return rng.random(n, dtype=dtype)
    z = rng.standard_normal(n)
    return (1.0 / (1.0 + np.exp(-z))).astype(dtype)


def path_batch(path, x0, x1, rng, time_sampling, dtype):
    """Draw ``t`` (and the path's noise ``eps``) for the pairs (x0, x1), each (n, d), and
    evaluate the path there: its :class:`~npflow.paths.PathSample` (xt, t, ut) in ``dtype``."""
    t = sample_t(rng, x0.shape[0], time_sampling)
    eps = rng.standard_normal(x0.shape) if path.needs_noise else None
    return path.sample(x0.astype(dtype), x1.astype(dtype), t.astype(dtype),
                       eps=None if eps is None else eps.astype(dtype))


class RowBatches:
    """A finite dataset as a stream of CFM training batches (the Trainer's ``data``).

    * A seeded split of the rows into training and validation rows (:func:`data.train_val_split`).
    * The transform between data units and the network's space, fitted on the training rows
      (:class:`transforms.Standardize`): the network works in ``z = (x - mean) / scale``. With
      ``dequantize`` each batch is ``x + u``, ``u ~ U[0, 1)`` fresh (Theis et al. 2016).
    * Minibatches without replacement, reshuffled every epoch (:class:`data.EpochSampler`).
    * A fixed validation batch: its rows, noise ``x0``, times ``t`` (and ``u``, ``eps``) drawn
      once, so the validation loss moves only with the weights.
    * The rows of a table (a :class:`~npflow.data.Dataset` with a
      :class:`~npflow.tabular.TableSchema`) are its coordinates; their integer columns are
      dequantized afresh in every batch (:meth:`~npflow.tables.TableEncoder.dequantized`) and
      the schema goes into the checkpoint as ``info()["table"]``. The Standardize stays on top:
      it gives the one-hot and missing-indicator coordinates, whose spread depends on their
      levels' shares, unit variance like the noise, and it is fitted on the training rows.

    Independent streams, spawned from the run's seed (``SeedSequence(seed).spawn``), draw the
    split, the batch order, the validation batch and the source batches; the run's own
    generator draws the rest (x0, u, t), so every part can be resumed exactly.
    """

    def __init__(self, config, x, labels=None, source=None, files=None):
        split_ss, batch_ss, val_ss, source_ss = np.random.SeedSequence(config.seed).spawn(4)
        self.config, self.files = config, files
        self.image_shape = x.image_shape if isinstance(x, data.Dataset) else None
        self.table = x.table if isinstance(x, data.Dataset) else None
        if self.table is not None and config.dequantize:
            raise _checks.OptionError("{0} is for rows of integers; a table's integer columns "
                                      "are dequantized without it", "dequantize")
        self.x = _rows(x, "data")
        n, self.dim = self.x.shape
        self.y = _check_run_labels(config, labels, n)
        self.n_classes = int(self.y.max()) + 1 if self.y is not None else 0
        self.split = data.train_val_split(n, config.val_fraction, np.random.default_rng(split_ss))
        self.transform = _fit_transform(self.x, self.split.train, config,
                                        pooled=self.image_shape is not None)
        self.sampler = data.EpochSampler(len(self.split.train), config.batch_size,
                                         np.random.default_rng(batch_ss))
        self.source = self.source_transform = self.source_sampler = None
        if (config.source == DATA) != (source is not None):
            raise ValueError("source_data must be given exactly when config.source is 'data'")
        if source is not None:
            self.source = _rows(source, "source_data")
            if self.source.shape[1] != self.dim:
                raise ValueError(f"source_data must have {self.dim} columns like data, got "
                                 f"{self.source.shape[1]}")
            self.source_transform = _fit_transform(self.source, None, config, dequantize=False)
            self.source_sampler = data.EpochSampler(len(self.source), config.batch_size,
                                                    np.random.default_rng(source_ss))
        self._val_ss = val_ss
        self._val = None  # built on first use, once the path and the coupling are known

    def next_pairs(self, rng):
        """Next minibatch ``(x0, x1, y1)`` in the network's space; y1 None when unlabelled."""
        idx = np.sort(self.split.train[self.sampler.next_batch()])  # sorted: faster on a memmap
        x1 = self.to_model(self.x[idx], rng)  # (B, d)
        y1 = None if self.y is None else self.y[idx]
        return self.draw_source(idx.size, rng), x1, y1

    def to_model(self, rows, rng):
        """Data rows (B, d) -> network space, dequantized with fresh noise when configured (a
        table's integer columns always)."""
        rows = np.asarray(rows, dtype=np.float64)
        if self.table is not None:
            rows = self.table.features.dequantized(rows, rng)
        elif self.transform.dequantize:
            rows = self.transform.dequantized(rows, rng)
        return self.transform.forward(rows)

    def draw_source(self, n, rng):
        """x0: standard normal noise in d dimensions, or the next rows of the source data."""
        if self.source is None:
            return rng.standard_normal((n, self.dim))
        return self._source_rows(self.source_sampler.next_batch())

    def _source_rows(self, rows):
        """Source rows (sorted first: faster on a memmap) in the network's space."""
        rows = np.sort(rows)
        return self.source_transform.forward(np.asarray(self.source[rows], dtype=np.float64))

    def validation_loss(self, model, path, coupling):
        """``mean |v(xt, t) - ut|^2`` of ``model`` on the fixed validation batch, or None."""
        if self.split.val.size == 0:
            return None
        if self._val is None:
            self._val = self._validation_batch(model.dtype, path, coupling)
        xt, t, ut, y = self._val
        total = 0.0
        for start in range(0, len(xt), self.config.batch_size):
            end = start + self.config.batch_size
            v = model.forward(xt[start:end], t[start:end], None if y is None else y[start:end])
            total += float(np.sum((v - ut[start:end]) ** 2, dtype=np.float64))
        return total / ut.size

    def _validation_batch(self, dtype, path, coupling):
        """(xt, t, ut, y) on up to VAL_MAX_ROWS validation rows, drawn once from their stream."""
        rng = np.random.default_rng(self._val_ss)
        rows = self.split.val[:VAL_MAX_ROWS]
        x1 = self.to_model(self.x[rows], rng)
        y1 = None if self.y is None else self.y[rows]
        if self.source is None:
            x0 = rng.standard_normal(x1.shape)
        else:
            x0 = self._source_rows(rng.choice(len(self.source), size=len(rows)))
        pairs = [coupling(x0[s:s + self.config.batch_size], x1[s:s + self.config.batch_size],
                          rng, None if y1 is None else y1[s:s + self.config.batch_size])
                 for s in range(0, len(rows), self.config.batch_size)]
        x0, x1 = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
        y1 = None if y1 is None else np.concatenate([p[2] for p in pairs])
        ps = path_batch(path, x0, x1, rng, self.config.time_sampling, dtype)
        return ps.xt, ps.t, ps.ut, y1

    # --- checkpoints ------------------------------------------------------------------------
    def info(self):
        """What identifies the data: its size and a fingerprint of rows (and labels, source);
        where it came from; a table's columns (:class:`~npflow.tabular.TableSchema` as JSON)."""
        info = {"n": int(self.x.shape[0]), "dim": self.dim,
                "fingerprint": _fingerprint(self.x, self.y, self.source), "files": self.files}
        if self.table is not None:
            info["table"] = json.loads(json.dumps(self.table.to_dict()))
        return info

    def state(self, val_losses, best_params, best_step):
        """The :class:`~npflow.checkpoint.DataState` of this dataset within a run."""
        return checkpoint.DataState(
            self.info(), self.transform.to_dict(),
            None if self.source is None else self.source_transform.to_dict(),
            self.sampler.state(), None if self.source is None else self.source_sampler.state(),
            self.split.val.copy(), np.asarray(val_losses, dtype=np.float64).reshape(-1, 2),
            best_params, best_step)

    def restore(self, path, state):
        """Continue from a checkpoint's :class:`~npflow.checkpoint.DataState` (same data only)."""
        if state.info.get("fingerprint") != self.info()["fingerprint"]:
            raise checkpoint.CheckpointError(
                f"{path!r} was trained on other data (n={state.info.get('n')}, "
                f"d={state.info.get('dim')}) than the rows given now (n={self.x.shape[0]}, "
                f"d={self.dim}); resume with the same file")
        if state.info.get("table") != self.info().get("table"):
            raise checkpoint.CheckpointError(f"{path!r} was trained on a table whose columns "
                                             f"were read otherwise; resume with the same file "
                                             f"and column kinds")
        if not np.array_equal(state.val_index, self.split.val):
            raise checkpoint.CheckpointError(f"{path!r}: its validation rows differ from the "
                                             f"split of this seed")
        self.sampler = data.EpochSampler.from_state(len(self.split.train),
                                                    self.config.batch_size, state.sampler)
        if self.source is not None:
            self.source_sampler = data.EpochSampler.from_state(
                len(self.source), self.config.batch_size, state.source_sampler)


def _rows(x, name):
    """The rows of a :class:`~npflow.data.Dataset` (checked when it was read: a memory-mapped
    file is not scanned again), or an array after :func:`npflow.data.check_array`."""
    return x.x if isinstance(x, data.Dataset) else data.check_array(x, name)


def _check_run_labels(config, labels, n):
    """Labels (n,) int64 for a conditional run on data, None otherwise."""
    if labels is None:
        if config.conditional:
            raise _checks.OptionError("{0} needs class labels for a run on rows: a {1} or a "
                                      "{2} file", "conditional", "label_column", "labels")
        return None
    if not config.conditional:
        raise _checks.OptionError("class labels were given, but {0} is off: turn it on to learn "
                                  "v(x, t, y), or leave the labels out", "conditional")
    return data.check_labels(labels, n, "labels")


def _fit_transform(x, rows, config, dequantize=None, pooled=False):
    """The Standardize of ``x[rows]`` (every row when None; identity when not standardizing;
    one map for every coordinate when ``pooled``: the pixels of images)."""
    dequantize = config.dequantize if dequantize is None else dequantize
    if not config.standardize:
        return transforms.Standardize.identity(x.shape[1], dequantize)
    return transforms.Standardize.fit(x, dequantize=dequantize, rows=rows, pooled=pooled)


def _sequence(value, name):
    """A list or tuple (not a string), or a ValueError naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got "
                         f"{value!r}")
    return value


def _fingerprint(x, y, source):
    """SHA-1 of the shape and of up to 256 evenly spaced rows (and the labels, the source)."""
    digest = hashlib.sha1()
    for arr in (x, y, source):
        if arr is None:
            digest.update(b"none")
            continue
        pick = np.unique(np.linspace(0, len(arr) - 1, min(len(arr), 256)).astype(np.int64))
        digest.update(repr(arr.shape).encode())
        digest.update(np.ascontiguousarray(arr[pick], dtype=np.float64).tobytes())
    return digest.hexdigest()


def _row_batches(config, data_rows, labels, source_data, files):
    """The :class:`RowBatches` of a run on data (target "data"), None for the toy samplers."""
    if config.target != DATA:
        if data_rows is not None or labels is not None or source_data is not None:
            raise _checks.OptionError(f"{{0}} are the target of the run, but {{1}} is "
                                      f"{config.target!r} (rows of data have target 'data')",
                                      "data", "target")
        return None
    if data_rows is None:
        raise ValueError("data must be given (an (n, d) array) when the target is 'data'")
    return RowBatches(config, data_rows, labels, source_data, files)


class Trainer:
    """A flow-matching run: network, Adam(W), EMA, schedule, random generator and loss history.

    Parameters
    ----------
    config : TrainConfig
    pairs : (x0, x1), two (N, d) arrays, optional
        Fixed training pairs (reflow, Liu et al. 2023, Alg. 1; see :mod:`npflow.reflow`): each
        batch is a random minibatch of them instead of fresh source and target draws paired by
        the coupling. Required exactly when ``config.reflow > 0``; their d sets the network's
        (for a flow of data rows they live in its standardized space).
    data : (n, d) array or Dataset, optional
        The rows of a finite dataset (a user's file or array, any d); required exactly when
        ``config.target == "data"``. A memory-mapped array is read batch by batch, never whole;
        a :class:`~npflow.data.Dataset` (what :func:`npflow.data.load` returns) is not checked
        again.
        See :class:`RowBatches` for the split, the transform and the batches.
    labels : (n,) int array, optional
        Class labels ``0 .. K - 1`` of ``data``, for ``config.conditional``.
    source_data : (m, d) array, optional
        Rows of a source dataset (``config.source == "data"``): a data-to-data flow.
    data_files : dict, optional
        Where the rows came from (JSON: file names and reading options), stored in the
        checkpoint so that ``npflow train --resume`` can read them again.
    data_state : DataState, optional
        A reflow run of a flow of rows: the parent's data (its transform), written into this
        run's checkpoints so that they map rows as the parent did.
    """

    def __init__(self, config, pairs=None, data=None, labels=None, source_data=None,
                 data_files=None, data_state=None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.pairs = _check_pairs(pairs, config.reflow)
        self.rows = None if config.reflow else _row_batches(config, data, labels, source_data,
                                                            data_files)
        if self.pairs is not None:  # fixed pairs of a parent flow, in any dimension
            dim, self.n_classes = self.pairs[0].shape[1], 0
        elif self.rows is not None:
            dim, self.n_classes = self.rows.dim, self.rows.n_classes
        else:
            dim = datasets.sample(config.target, 1, np.random.default_rng(0)).shape[1]
            self.n_classes = datasets.n_classes(config.target) if config.conditional else 0
        image_shape = None if self.rows is None else self.rows.image_shape
        self.model = _network(config, dim, self.n_classes, self.rng, image_shape)
        opt_cls = AdamW if config.weight_decay > 0 else Adam
        self.optimizer = opt_cls(self.model.params, lr=config.lr, weight_decay=config.weight_decay)
        self.schedule = make_schedule(config.schedule, config.lr, config.steps,
                                      min(config.warmup_steps, config.steps))
        self.ema = EMA(self.model.params, config.ema_decay)
        self.work = Workspace(self.model.dtype)  # activations and their gradients, reused
        self.path = paths.make_path(config.path, sigma=config.sigma)
        self.coupling = couplings.make_coupling(config.coupling)
        self.step = 0
        self.losses = []
        self.val_losses = []  # (step, validation loss) of each evaluation (finite datasets)
        self.best_params, self.best_step = self.ema.shadow.copy(), 0
        self.replanned = None  # set by from_checkpoint when steps changes the plan
        self.data_state = data_state

    # --- one step ---------------------------------------------------------------------------
    def draw_batch(self):
        """Sample x0 ~ p0 and x1 ~ p1 (and labels y), pair them, draw t (and eps), evaluate xt, ut.

        Conditional runs pair within each class and then replace each label by the null label
        ``n_classes`` with probability ``label_dropout`` (Ho and Salimans 2022, Alg. 1). Reflow
        runs draw a minibatch of the fixed pairs instead; runs on a finite dataset the next
        minibatch of its rows (:class:`RowBatches`).
        """
        x0, x1, y = self._draw_pairs(self.config.batch_size)
        ps = path_batch(self.path, x0, x1, self.rng, self.config.time_sampling, self.model.dtype)
        return Batch(ps.xt, ps.t, ps.ut, y)

    def _draw_pairs(self, n):
        """(x0, x1, y): y is None unless the run is conditional."""
        cfg, rng = self.config, self.rng
        if self.pairs is not None:
            idx = rng.integers(0, self.pairs[0].shape[0], size=n)  # (n,) with replacement
            return self.pairs[0][idx], self.pairs[1][idx], None
        if self.rows is not None:
            x0, x1, y1 = self.rows.next_pairs(rng)
        elif cfg.conditional:
            x0 = datasets.sample(cfg.source, n, rng)
            x1, y1 = datasets.sample_labelled(cfg.target, n, rng)
        else:
            x0, x1, y1 = (datasets.sample(cfg.source, n, rng), datasets.sample(cfg.target, n, rng),
                          None)
        x0, x1, y1 = self.coupling(x0, x1, rng, y1)  # with labels: OT pairs within each class
        if not cfg.conditional:
            return x0, x1, None
        drop = rng.random(n) < cfg.label_dropout  # (n,) -> the null label
        return x0, x1, np.where(drop, self.n_classes, y1)

    def train_step(self):
        """One CFM step: loss, backprop, clip, Adam, EMA. Returns the loss (float)."""
        batch = self.draw_batch()
        v, cache = self.model.forward_train(batch.xt, batch.t, batch.y, self.work)  # (n, d)
        diff = v - batch.ut  # (n, d)
        loss = float(np.mean(diff * diff))  # L = (1 / (n d)) sum_i ||v_i - ut_i||^2
        diff *= 2.0 / diff.size  # dL/dv = 2 (v - ut) / (n d)
        self.model.backward(cache, diff, self.work)
        grads = self.model.grads
        norm = clip_grad_norm(grads, self.config.grad_clip) if self.config.grad_clip > 0 \
            else float(np.sqrt(np.dot(grads, grads)))
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise TrainingDiverged(
                f"the loss became {loss} (gradient norm {norm}) at step {self.step + 1}; "
                f"try a lower learning rate (now {self.config.lr:g}) or --grad-clip 1")
        self.optimizer.step(grads, lr=self.schedule(self.step))
        self.ema.update(self.model.params)
        self.step += 1
        self.losses.append(loss)
        return loss

    def ema_model(self, best=False):
        """A copy of the network with the EMA weights (those used for sampling).

        ``best=True``: the EMA weights of the lowest validation loss so far (finite datasets).
        """
        net = networks.build(networks.describe(self.model), np.random.default_rng(0))
        net.params[...] = self.best_params if best else self.ema.shadow
        return net

    # --- validation (finite datasets) ---------------------------------------------------------
    def evaluate(self):
        """Validation loss of the EMA weights on the fixed validation batch; updates the best.

        Returns the loss, or None when nothing is held out (then the best weights are simply
        the latest ones).
        """
        if self.rows is None:
            return None
        loss = self.rows.validation_loss(self.ema_model(), self.path, self.coupling)
        if loss is None or not self.val_losses or loss < min(v for _, v in self.val_losses):
            self.best_params, self.best_step = self.ema.shadow.copy(), self.step
        if loss is not None:
            self.val_losses.append((self.step, loss))
        return loss

    def _patience_ran_out(self):
        """Whether the last ``patience`` evaluations all failed to beat the best loss."""
        patience = self.config.patience
        if not patience or len(self.val_losses) <= patience:
            return False
        best_before = min(v for _, v in self.val_losses[:-patience])
        return min(v for _, v in self.val_losses[-patience:]) >= best_before

    # --- whole runs -------------------------------------------------------------------------
    def run(self, out=None, checkpoint_every=1000, quiet=False, stream=None):
        """Train until ``config.steps``, saving to ``out`` periodically and at the end.

        A step is all or nothing: SIGINT (Ctrl-C) and SIGTERM (a scheduler's or ``kill``'s
        stop) are held until the step in progress has finished, then the run saves a
        checkpoint (when ``out`` is given) and returns with ``signal`` set, so the saved run
        resumes exactly as if it had not been stopped. A run on a finite dataset evaluates its
        validation loss every ``eval_every`` steps and at the end, and stops early when
        ``patience`` evaluations in a row fail to improve it. A non-finite loss raises
        :class:`TrainingDiverged`; the last periodic checkpoint (from before the divergence)
        stays on disk.

        Returns
        -------
        RunResult
        """
        total, first, t_start = self.config.steps, self.step, time.perf_counter()
        checkpoint_every = _checks.positive_int(checkpoint_every, "checkpoint_every")
        progress = Progress(total, start=self.step, enabled=False if quiet else None,
                            stream=stream)
        stopped_early = False
        try:
            with _HeldSignals() as held:
                while self.step < total and held.received is None and not stopped_early:
                    loss = self.train_step()
                    if self.rows is not None and (self.step % self.config.eval_every == 0
                                                  or self.step == total):
                        self.evaluate()
                        stopped_early = self._patience_ran_out()
                    progress.update(self.step, **self._progress_values(loss))
                    if out is not None and self.step % checkpoint_every == 0 and \
                            self.step < total:
                        self.save(out)
                if out is not None:
                    self.save(out)
        finally:
            progress.close()
        return RunResult(self, self.step - first, time.perf_counter() - t_start,
                         held.received is not None, _signal_name(held.received), stopped_early)

    def _progress_values(self, loss):
        values = {"loss": loss}
        if self.rows is not None:
            values["epoch"] = self.rows.sampler.epoch
            if self.val_losses:
                values["val"] = self.val_losses[-1][1]
        return values

    # --- checkpoints -------------------------------------------------------------------------
    def to_checkpoint(self):
        """Snapshot of the whole run as a :class:`~npflow.checkpoint.Checkpoint`."""
        state = self.optimizer.state_dict()
        if self.rows is not None:
            data = self.rows.state(self.val_losses, self.best_params.copy(), self.best_step)
        elif self.data_state is not None:  # reflow of a flow of rows: the latest EMA is the best
            data = dataclasses.replace(self.data_state, best_params=self.ema.shadow.copy(),
                                       best_step=self.step)
        else:
            data = None
        return checkpoint.Checkpoint(
            networks.describe(self.model), self.config.to_dict(), _rng_state(self.rng),
            self.model.params.copy(), self.ema.shadow.copy(), state["m"], state["v"],
            int(state["step_count"]), self.step, np.asarray(self.losses), data)

    def save(self, path):
        """Write the run to ``path`` atomically (see :mod:`npflow.checkpoint`)."""
        checkpoint.save(path, self.to_checkpoint())

    @classmethod
    def resume(cls, path, given=None, files=None):
        """Continue the run stored in ``path``, as a job's requeue repeats its command.

        ``given``: the TrainConfig fields the command sets (see :meth:`from_checkpoint`: each
        must be the stored value, ``steps`` re-plans). A run on rows reads them again from
        ``files`` (a :class:`~npflow.data.TrainingFiles`, which must name the stored files) or,
        when None, from the files its checkpoint names.
        """
        ckpt = checkpoint.load(path)
        rows = {}
        if ckpt.data is not None:
            stored = ckpt.data.info.get("files")
            if files is None and stored is None:
                raise _checks.OptionError(f"{path} was trained on rows given as an array; name "
                                          f"them with {{0}}", "data")
            files = files or data.TrainingFiles.from_dict(stored)
            x, labels, source = files.load()
            rows = {"data": x, "labels": labels, "source_data": source,
                    "data_files": files.to_dict()}
        return cls.from_checkpoint(path, given=given, **rows)

    @classmethod
    def from_checkpoint(cls, path, steps=None, data=None, labels=None, source_data=None,
                        data_files=None, given=None):
        """Rebuild a run from ``path`` to continue it.

        Resuming to the run's own total (``steps`` None or equal to it) continues it bit for
        bit: the result equals the uninterrupted run's. A different ``steps`` *re-plans* the
        run: the learning-rate schedule is rebuilt for the new total from the current step on,
        so a decaying schedule jumps (a warm restart) and the result is not what training
        ``steps`` from scratch would give; :attr:`replanned` then says so. A constant schedule
        is unaffected. A run on a finite dataset needs the same ``data`` (and labels, source)
        again; their fingerprint is checked. A reflow run (``reflow > 0``) cannot be resumed:
        its fixed pairs are not stored.

        ``given`` (a dict of TrainConfig fields, and ``data_files``) are the options of the
        command that asks to continue, as a job scheduler's requeue repeats them: each must be
        what the stored run used (``steps`` aside, which re-plans), else an
        :class:`~npflow._checks.OptionError` names the option, the stored and the given value.
        """
        ckpt = checkpoint.load(path)
        _check_same_run(path, ckpt, given or {}, data_files)
        steps = (given or {}).get("steps", steps)
        if ckpt.train_config.get("reflow", 0):
            raise checkpoint.CheckpointError(
                f"{path!r} is a reflow run, which cannot be resumed (its training pairs are not "
                f"stored); run npflow reflow again from its parent model")
        try:
            values = dict(ckpt.train_config)
            planned = values["steps"]
            if steps is not None:
                values["steps"] = steps
            trainer = cls(TrainConfig.from_dict(values), data=data, labels=labels,
                          source_data=source_data, data_files=data_files)
            trainer.rng.bit_generator.state = ckpt.rng_state
        except (ValueError, TypeError, KeyError) as err:
            raise checkpoint.CheckpointError(f"{path!r} cannot be resumed: {err}") from None
        if (ckpt.data is None) != (trainer.rows is None):
            raise checkpoint.CheckpointError(
                f"{path!r} cannot be resumed: it was trained "
                f"{'without' if ckpt.data is None else 'on'} a dataset of rows")
        if ckpt.step > trainer.config.steps:
            raise _checks.OptionError(f"{{0}} {trainer.config.steps} is fewer than the "
                                      f"{ckpt.step} steps already done in {path}", "steps")
        trainer.model.params[...] = ckpt.params
        trainer.ema.shadow[...] = ckpt.ema_params
        trainer.optimizer.load_state_dict(
            {"m": ckpt.adam_m, "v": ckpt.adam_v, "step_count": ckpt.adam_step})
        trainer.step = ckpt.step
        trainer.losses = list(ckpt.losses)
        if ckpt.data is not None:
            trainer.rows.restore(path, ckpt.data)
            trainer.val_losses = [(int(s), float(v)) for s, v in ckpt.data.val_losses]
            trainer.best_params[...] = ckpt.data.best_params
            trainer.best_step = ckpt.data.best_step
        if planned != trainer.config.steps:
            trainer.replanned = Replanned(
                planned, trainer.config.steps, trainer.config.schedule,
                float(make_schedule(trainer.config.schedule, trainer.config.lr, planned,
                                    min(trainer.config.warmup_steps, planned))(ckpt.step)),
                float(trainer.schedule(ckpt.step)))
        return trainer


def _check_same_run(path, ckpt, given, data_files):
    """Refuse options (and data files) that differ from the stored run's (steps re-plans)."""
    try:
        stored = TrainConfig.from_dict(ckpt.train_config)
        wanted = dataclasses.replace(stored, **{k: v for k, v in given.items() if k != "steps"})
    except (ValueError, TypeError) as err:
        raise checkpoint.CheckpointError(f"{path!r} cannot be resumed: {err}") from None
    changed = [(name, getattr(stored, name), getattr(wanted, name)) for name in given
               if name != "steps" and getattr(stored, name) != getattr(wanted, name)]
    files = None if ckpt.data is None else ckpt.data.info.get("files")
    if data_files is not None and files is not None:
        files = data.TrainingFiles.from_dict(files).to_dict()
        changed += [(name, files[name], value) for name, value in data_files.items()
                    if files[name] != value]
    if changed:
        name, before, now = changed[0]
        used = "did not give it" if before is None else f"used {_checks.shown(before)}"
        says = "leaves it out" if now is None else f"says {_checks.shown(now)}"
        stored = _checks.literal(f"the run stored in {path} {used}")
        raise _checks.OptionError(f"{{0}}: {stored}, {{caller}} {_checks.literal(says)}", name)


@dataclass(frozen=True)
class Replanned:
    """How :meth:`Trainer.from_checkpoint` changed a run's length and learning rate.

    ``lr_before`` is the rate the stored plan gives at the resumed step, ``lr_after`` the new
    plan's; they are equal for a constant schedule, where re-planning changes nothing else.
    """

    planned_steps: int
    steps: int
    schedule: str
    lr_before: float
    lr_after: float

    def describe(self):
        """One line for the user."""
        if self.lr_before == self.lr_after:
            return (f"extended from {self.planned_steps} to {self.steps} steps; the "
                    f"{self.schedule} learning rate continues unchanged")
        return (f"re-planned from {self.planned_steps} to {self.steps} steps: the {self.schedule} "
                f"schedule is rebuilt for the new total, so the learning rate jumps from "
                f"{self.lr_before:.3g} to {self.lr_after:.3g} (a warm restart), and the result "
                f"differs from a run of {self.steps} steps from scratch")


@dataclass(frozen=True)
class RunResult:
    """What :meth:`Trainer.run` returns.

    ``steps``: the steps this run did, in ``seconds``. ``interrupted``: a signal stopped the run
    early (``signal`` is ``"SIGINT"`` or ``"SIGTERM"``); ``stopped_early``: the validation loss
    stopped improving (``patience``).
    """

    trainer: Trainer
    steps: int
    seconds: float
    interrupted: bool
    signal: str = None
    stopped_early: bool = False

    def summary(self):
        """One line: steps done, speed, final loss (and epochs, best validation loss)."""
        trainer, done, seconds = self.trainer, self.steps, self.seconds
        loss = trainer.losses[-1] if trainer.losses else float("nan")
        line = (f"trained {done} steps in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} "
                f"steps/s), final loss {loss:.4f}")
        if trainer.rows is not None:
            line += f", {trainer.rows.sampler.epoch} epochs"
            if trainer.val_losses:
                best = min(v for _, v in trainer.val_losses)
                line += f", best validation loss {best:.4f} at step {trainer.best_step}"
            if self.stopped_early:
                line += " (stopped early: no improvement in patience evaluations)"
        return line


class _HeldSignals:
    """Inside the block, SIGINT and SIGTERM only record their arrival in ``received``.

    The training loop looks at ``received`` between steps, so a signal never lands between
    the optimizer update, the EMA update and the step counter (a checkpoint saved there would
    hold an optimizer one step ahead of the run, or EMA weights scaled by the decay). Python
    delivers signals to the main thread only; elsewhere nothing is installed.
    """

    CAUGHT = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.received = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.CAUGHT:
                self._previous[signum] = signal.signal(signum, self._hold)
        return self

    def _hold(self, signum, frame):
        if self.received is None:
            self.received = signum

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False


def _signal_name(signum):
    return None if signum is None else signal.Signals(signum).name


def network_description(config, dim, n_classes=0, image_shape=None):
    """The description (:func:`npflow.networks.describe`) of the network ``config`` trains in
    ``d = dim`` with ``n_classes`` classes (on images of ``image_shape`` (c, h, w))."""
    if config.arch != "mlp":
        if image_shape is None:
            raise _checks.OptionError(f"{{0}} {config.arch!r} needs rows that are images (IDX "
                                      f"files, arrays of shape (n, h, w) or (n, c, h, w), or "
                                      f"{{1}} for a file of pixels)", "arch", "image_shape")
        embed_dim = None if not config._is_set("embed_dim") else config.embed_dim
        return {"arch": config.arch, "image_shape": list(image_shape),
                "channels": config.channels, "multipliers": list(config.multipliers),
                "blocks": config.blocks, "groups": config.groups, "embed_dim": embed_dim,
                "time_scale": config.time_scale, "n_classes": n_classes, "dtype": config.dtype}
    return {"arch": "mlp", "dim": dim, "hidden": list(config.hidden),
            "activation": config.activation, "time_embedding": config.time_embedding,
            "embed_dim": config.embed_dim, "time_scale": config.time_scale,
            "dtype": config.dtype, "n_classes": n_classes, "residual": config.residual}


def _network(config, dim, n_classes, rng, image_shape=None):
    """The run's network, after checking that training it fits in memory (one line if not).

    The weights alone (seven arrays of P parameters: :func:`npflow.networks.count_params`) are
    checked before anything is allocated, then a step's whole need (the network's
    ``memory(batch_size)``) and the batch draws: a dozen float64 values per coordinate and row
    (draws, path, coupling), and three (B, B) float64 matrices for an OT or Sinkhorn coupling.
    """
    description = network_description(config, dim, n_classes, image_shape)
    network = "hidden layers " + _checks.shown(config.hidden) if description["arch"] == "mlp" else \
        "a " + description["arch"]  # words, not option names: the message is no OptionError
    what = f"training with batches of {config.batch_size} rows and {network} in d = {dim}"
    batch = config.batch_size
    draws = batch * 12 * (dim + 1) * 8 + (0 if config.coupling == "independent" else
                                          3 * 8 * batch ** 2)
    itemsize = np.dtype(config.dtype).itemsize
    _checks.affordable(7 * networks.count_params(description) * itemsize + draws, what)
    net = networks.build(description, rng)
    _checks.affordable(net.memory(batch) + draws, what)
    return net


def _check_pairs(pairs, reflow):
    """Validate the fixed pairs of a reflow run: None exactly when ``reflow == 0``."""
    if pairs is None:
        if reflow:
            raise ValueError(f"pairs must be given when reflow > 0 (got reflow={reflow}): a "
                             "reflow run trains on fixed pairs (x0, x1)")
        return None
    if not reflow:
        raise ValueError("pairs must be None when config.reflow is 0; set reflow to the number "
                         "of rectifications (see npflow.reflow)")
    try:
        x0, x1 = pairs
    except (TypeError, ValueError):
        raise TypeError("pairs must be a pair (x0, x1) of (N, d) arrays") from None
    x0 = _checks.points(x0, "pairs[0]")
    x1 = _checks.points(x1, "pairs[1]", dim=x0.shape[1])
    if x1.shape != x0.shape:
        raise ValueError(f"pairs[1] must have shape {x0.shape} like pairs[0], got {x1.shape}")
    return x0, x1


def _rng_state(rng):
    """The generator's state as plain JSON (big integers stay exact)."""
    return json.loads(json.dumps(rng.bit_generator.state))


def train(config=None, out=None, quiet=True, data=None, labels=None, **overrides):
    """Train a model: ``train(steps=2000, target="moons")``. Returns the :class:`Trainer`.

    Parameters
    ----------
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``; keyword ``overrides`` replace single fields.
    out : str, optional
        Checkpoint path (written periodically and at the end).
    data, labels : optional
        Rows (n, d) and labels (n,) of a finite dataset; ``data`` sets the target to "data".
        (:class:`npflow.Flow` does the same with the defaults for data.)
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    if data is not None and config.target != DATA:
        config = dataclasses.replace(config, target=DATA)
    trainer = Trainer(config, data=data, labels=labels)
    trainer.run(out=out, quiet=quiet)
    return trainer


class _CallableModule(types.ModuleType):
    """This module, callable: ``npflow.train(steps=2000)`` is :func:`train`.

    Users reach for ``npflow.train(...)``; making the module callable keeps both that and the
    imports of its classes (``from npflow.train import Trainer``, ``import npflow.train``).
    """

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
