"""Conditional flow matching training (Lipman et al. 2023, eq. 9 and 23; Tong et al. 2023, Alg. 1-3).

One step::

    x0 ~ p0 (source), x1 ~ p1 (target)           fresh samples every batch
    (x0, x1) <- coupling(x0, x1)                  independent, or minibatch OT
    t ~ U[0, 1]                                   (or a documented non-uniform density)
    xt, ut = path(x0, x1, t)                      probability path and its target velocity
    L(theta) = mean || v_theta(xt, t) - ut ||^2   the CFM loss
    theta <- Adam(theta, dL/dtheta)               hand-written backprop and optimizer

:class:`Trainer` owns the network, the optimizer, the EMA and the random generator, so that a run
can be checkpointed at any step and resumed bit for bit.
"""
import dataclasses
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from . import _checks, checkpoint, couplings, datasets, paths
from ._progress import Progress
from .nn import ACTIVATIONS, MLP, TIME_EMBEDDINGS, Workspace
from .optim import EMA, SCHEDULES, Adam, AdamW, clip_grad_norm, make_schedule

TIME_SAMPLINGS = ("uniform", "logit-normal")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; stored as JSON in every checkpoint.

    The defaults train the 2-D checkerboard to a precision of 0.955 (the fraction of 10,000 RK4
    samples on the filled squares, seeds 0 and 1) in 32-57 s on two CPU cores; the comments give
    the measured reason for each choice (precisions of 10,000 samples; the README has the tuning
    log and the timings).
    """

    source: str = "gaussian"          # x0 ~ p0: noise, or any dataset (data-to-data flows)
    target: str = "checkerboard"      # x1 ~ p1: the starting demo's data
    path: str = "linear"              # CondOT / rectified flow: straight lines, constant speed
    sigma: float = 0.1                # noise of icfm, sigma_min of lipman; unused by linear and vp
    coupling: str = "independent"     # the starting demo's pairing; "ot" straightens paths
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
    time_embedding: str = "concat"    # t as an input: as good as the sinusoidal embedding here
    embed_dim: int = 64               # size of the sinusoidal embedding, when used
    time_scale: float = 1000.0        # t scale inside the sinusoidal embedding (see nn)
    time_sampling: str = "logit-normal"  # mid-path t decide which square a point joins: +0.04-0.06
    seed: int = 0                     # the single source of randomness of the run
    conditional: bool = False         # learn v(x, t, y) for the target's class labels y
    label_dropout: float = 0.1        # P(y -> null): one net learns both fields (0.1-0.2: CFG)
    reflow: int = 0                   # rectifications before this run (> 0: trains on fixed pairs)
    dtype: str = "float32"            # float32 is twice as fast; float64 for checks

    def __post_init__(self):
        for name in ("source", "target"):
            _checks.choice(getattr(self, name), name, datasets.DATASETS)
        _checks.choice(self.path, "path", paths.PATHS)
        _checks.choice(self.coupling, "coupling", couplings.COUPLINGS)
        _checks.choice(self.schedule, "schedule", SCHEDULES)
        _checks.choice(self.activation, "activation", ACTIVATIONS)
        _checks.choice(self.time_embedding, "time_embedding", TIME_EMBEDDINGS)
        _checks.choice(self.time_sampling, "time_sampling", TIME_SAMPLINGS)
        _checks.choice(self.dtype, "dtype", ("float32", "float64"))
        for name in ("steps", "batch_size", "embed_dim"):
            _checks.positive_int(getattr(self, name), name)
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.reflow, int) or isinstance(self.reflow, bool) or self.reflow < 0:
            raise ValueError(f"reflow must be an integer >= 0, got {self.reflow!r}")
        if not isinstance(self.conditional, bool):
            raise TypeError(f"conditional must be True or False, got {self.conditional!r}")
        _checks.finite_float(self.label_dropout, "label_dropout", low=0, high=1)
        if self.conditional and self.reflow:
            raise ValueError("reflow must be 0 for a conditional run: reflow pairs carry no labels")
        _checks.finite_float(self.lr, "lr", low=0, low_open=True)
        _checks.finite_float(self.sigma, "sigma", low=0)
        _checks.finite_float(self.weight_decay, "weight_decay", low=0)
        _checks.finite_float(self.grad_clip, "grad_clip", low=0)
        _checks.finite_float(self.ema_decay, "ema_decay", low=0, high=1)
        _checks.finite_float(self.time_scale, "time_scale", low=0, low_open=True)
        if not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty list of widths >= 1, got {self.hidden!r}")
        object.__setattr__(self, "hidden", tuple(_checks.positive_int(w, "hidden")
                                                 for w in self.hidden))

    def to_dict(self):
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)


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
    """Draw training times t in (0, 1), shape (n,).

    ``"uniform"``: t ~ U[0, 1] (Lipman et al. 2023, eq. 23). ``"logit-normal"``: t = sigmoid(z),
    z ~ N(0, 1) (Esser et al. 2024, Sec. 3.1), which spends more steps mid-path.
    """
    if kind == "uniform":
        return rng.random(n, dtype=dtype)
    z = rng.standard_normal(n)
    return (1.0 / (1.0 + np.exp(-z))).astype(dtype)


class Trainer:
    """A flow-matching run: network, Adam(W), EMA, schedule, random generator and loss history.

    Parameters
    ----------
    config : TrainConfig
    pairs : (x0, x1), two (N, d) arrays, optional
        Fixed training pairs (reflow, Liu et al. 2023, Alg. 1; see :mod:`npflow.reflow`): each
        batch is a random minibatch of them instead of fresh source and target draws paired by
        the coupling. Required exactly when ``config.reflow > 0``.
    """

    def __init__(self, config, pairs=None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        dim = datasets.sample(config.target, 1, np.random.default_rng(0)).shape[1]
        self.n_classes = datasets.n_classes(config.target) if config.conditional else 0
        self.pairs = _check_pairs(pairs, config.reflow, dim)
        self.model = MLP(dim, config.hidden, config.activation, config.time_embedding,
                         config.embed_dim, config.time_scale, np.dtype(config.dtype).type,
                         rng=self.rng, n_classes=self.n_classes)
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

    # --- one step ---------------------------------------------------------------------------
    def draw_batch(self):
        """Sample x0 ~ p0 and x1 ~ p1 (and labels y), pair them, draw t (and eps), evaluate xt, ut.

        Conditional runs pair within each class and then replace each label by the null label
        ``n_classes`` with probability ``label_dropout`` (Ho and Salimans 2022, Alg. 1). Reflow
        runs draw a minibatch of the fixed pairs instead.
        """
        cfg, rng, n = self.config, self.rng, self.config.batch_size
        x0, x1, y = self._draw_pairs(n)
        t = sample_t(rng, n, cfg.time_sampling)
        eps = rng.standard_normal(x0.shape) if self.path.needs_noise else None
        dtype = self.model.dtype
        ps = self.path.sample(x0.astype(dtype), x1.astype(dtype), t.astype(dtype),
                              eps=None if eps is None else eps.astype(dtype))
        return Batch(ps.xt, ps.t, ps.ut, y)

    def _draw_pairs(self, n):
        """(x0, x1, y): y is None unless the run is conditional."""
        cfg, rng = self.config, self.rng
        if self.pairs is not None:
            idx = rng.integers(0, self.pairs[0].shape[0], size=n)  # (n,) with replacement
            return self.pairs[0][idx], self.pairs[1][idx], None
        x0 = datasets.sample(cfg.source, n, rng)
        if not cfg.conditional:
            x1 = datasets.sample(cfg.target, n, rng)
            x0, x1, _ = self.coupling(x0, x1, rng)
            return x0, x1, None
        x1, y1 = datasets.sample_labelled(cfg.target, n, rng)
        x0, x1, y1 = self.coupling(x0, x1, rng, y1)  # OT pairs within each class
        drop = rng.random(n) < cfg.label_dropout  # (n,) -> the null label
        return x0, x1, np.where(drop, self.n_classes, y1)

    def train_step(self):
        """One CFM step: loss, backprop, clip, Adam, EMA. Returns the loss (float)."""
        batch = self.draw_batch()
        v, cache = self.model.forward_train(batch.xt, batch.t, batch.y, self.work)  # (n, d)
        diff = v - batch.ut  # (n, d)
        loss = float(np.mean(diff * diff))  # L = mean ||v - ut||^2 / d  (MSE over n*d entries)
        diff *= 2.0 / diff.size  # dL/dv
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

    # --- whole runs -------------------------------------------------------------------------
    def run(self, out=None, checkpoint_every=1000, quiet=False, stream=None):
        """Train until ``config.steps``, saving to ``out`` periodically and at the end.

        Ctrl-C saves a checkpoint (when ``out`` is given) and returns with ``interrupted=True``.
        A non-finite loss raises :class:`TrainingDiverged`; the last periodic checkpoint (from
        before the divergence) stays on disk.

        Returns
        -------
        RunResult
        """
        total = self.config.steps
        progress = Progress(total, start=self.step, enabled=False if quiet else None,
                            stream=stream)
        interrupted = False
        try:
            while self.step < total:
                loss = self.train_step()
                progress.update(self.step, loss=loss)
                if out is not None and self.step % checkpoint_every == 0 and self.step < total:
                    self.save(out)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.close()
        if out is not None:
            self.save(out)
        return RunResult(self, interrupted)

    # --- checkpoints -------------------------------------------------------------------------
    def to_checkpoint(self):
        """Snapshot of the whole run as a :class:`~npflow.checkpoint.Checkpoint`."""
        state = self.optimizer.state_dict()
        return checkpoint.Checkpoint(
            self.model.config(), self.config.to_dict(), _rng_state(self.rng),
            self.model.params.copy(), self.ema.shadow.copy(), state["m"], state["v"],
            int(state["step_count"]), self.step, np.asarray(self.losses))

    def save(self, path):
        """Write the run to ``path`` atomically (see :mod:`npflow.checkpoint`)."""
        checkpoint.save(path, self.to_checkpoint())

    @classmethod
    def from_checkpoint(cls, path, steps=None):
        """Rebuild a run from ``path`` to continue it, optionally extending it to ``steps``.

        A reflow run (``reflow > 0``) cannot be resumed: its fixed pairs are not stored.
        """
        ckpt = checkpoint.load(path)
        if ckpt.train_config.get("reflow", 0):
            raise checkpoint.CheckpointError(
                f"{path!r} is a reflow run, which cannot be resumed (its training pairs are not "
                f"stored); run npflow reflow again from its parent model")
        try:
            values = dict(ckpt.train_config)
            if steps is not None:
                values["steps"] = steps
            trainer = cls(TrainConfig.from_dict(values))
            trainer.rng.bit_generator.state = ckpt.rng_state
        except (ValueError, TypeError, KeyError) as err:
            raise checkpoint.CheckpointError(f"{path!r} cannot be resumed: {err}") from None
        trainer.model.params[...] = ckpt.params
        trainer.ema.shadow[...] = ckpt.ema_params
        trainer.optimizer.load_state_dict(
            {"m": ckpt.adam_m, "v": ckpt.adam_v, "step_count": ckpt.adam_step})
        trainer.step = ckpt.step
        trainer.losses = list(ckpt.losses)
        return trainer


@dataclass(frozen=True)
class RunResult:
    """What :meth:`Trainer.run` returns: the trainer and whether Ctrl-C stopped it early."""

    trainer: Trainer
    interrupted: bool


def _check_pairs(pairs, reflow, dim):
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
    x0 = _checks.points(x0, "pairs[0]", dim=dim)
    x1 = _checks.points(x1, "pairs[1]", dim=dim)
    if x1.shape != x0.shape:
        raise ValueError(f"pairs[1] must have shape {x0.shape} like pairs[0], got {x1.shape}")
    return x0, x1


def _rng_state(rng):
    """The generator's state as plain JSON (big integers stay exact)."""
    return json.loads(json.dumps(rng.bit_generator.state))


def train(config=None, out=None, quiet=True, **overrides):
    """Train a model: ``train(steps=2000, target="moons")``. Returns the :class:`Trainer`.

    Parameters
    ----------
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``; keyword ``overrides`` replace single fields.
    out : str, optional
        Checkpoint path (written periodically and at the end).
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    trainer = Trainer(config)
    trainer.run(out=out, quiet=quiet)
    return trainer


def resolve_out(out):
    """Return ``out`` after checking its folder exists (a missing folder is an early error)."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"--out: folder {folder!r} does not exist")
    return out
