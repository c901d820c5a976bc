"""Your own data in five lines: a flow-matching estimator with scikit-learn's vocabulary.

    >>> import numpy as np, npflow
    >>> X = np.random.default_rng(0).standard_normal((500, 3)) @ np.diag([1.0, 2.0, 0.5]) + 4.0
    >>> flow = npflow.Flow(steps=300, hidden=(32, 32), solver_steps=10).fit(X)
    >>> flow.sample(4, rng=np.random.default_rng(1)).shape
    (4, 3)
    >>> flow.log_prob(X[:2]).shape, flow.transform(X[:2]).shape
    ((2,), (2, 3))

:class:`Flow` wraps the pieces of npflow for a table of rows of any width ``d``:

* ``fit(X, y=None)`` trains by conditional flow matching on the rows (:class:`~npflow.train.Trainer`
  with target ``"data"``: a seeded train/validation split, the standardization of
  :mod:`npflow.transforms`, minibatches without replacement, the best weights by validation
  loss); labels ``y`` make it class-conditional, with classifier-free guidance at sampling time.
* ``sample`` integrates ``dx/dt = v(x, t)`` from Gaussian noise (:func:`npflow.sample_flow`) and
  maps the result back to data units.
* ``log_prob`` is the exact change of variables, ``log p(x) = log p_z(z) + log|det dz/dx|``
  with ``log p_z`` from :func:`npflow.likelihood.log_likelihood` (Chen et al. 2018, Thm. 1).
* ``transform`` runs the flow backwards, data to noise; ``inverse_transform`` forwards.

Hyper-parameters are constructor arguments, stored unchanged in :attr:`Flow.options` and
validated at once (the same checks and messages as ``npflow train``); fitted state ends in ``_``.
The defaults for data are :data:`npflow.train.DATA_DEFAULTS`, each with its measured reason.
"""
import dataclasses

import numpy as np

from . import _checks, checkpoint, data, guidance, likelihood, sampling, solvers
from . import reflow as reflow_module
from .transforms import Standardize
from .train import DATA, TrainConfig, Trainer, data_config

SOLVERS = solvers.METHODS


class Flow:
    """A generative model of rows ``x`` in ``R^d``, fitted by flow matching.

    Parameters
    ----------
    solver : {"euler", "midpoint", "heun", "rk4", "dopri5"}
        ODE solver of ``sample``, ``log_prob`` and the transforms.
    solver_steps : int, optional
        Uniform steps of the fixed-step solvers (None: ``solvers.DEFAULT_STEPS``, 100); None
        for dopri5.
    divergence : {"auto", "exact", "hutchinson"}
        How ``log_prob`` gets ``div v``: exact (d tangents) up to
        :data:`~npflow.likelihood.EXACT_MAX_DIM` dimensions and Hutchinson's estimator with
        ``n_probes`` probes above, unless forced (:func:`npflow.likelihood.log_likelihood`).
    n_probes : int, optional
        Hutchinson probes per row (:data:`~npflow.likelihood.DEFAULT_PROBES` by default).
    seed : int
        Seed of the training run and of the draws made when no ``rng`` is given.
    quiet : bool
        No progress line while fitting.
    **options
        Any field of :class:`~npflow.train.TrainConfig` (``hidden``, ``steps``,
        ``batch_size``, ``lr``, ``coupling``, ``val_fraction``, ``patience``, ``dequantize``,
        ...); unset ones take :data:`~npflow.train.DATA_DEFAULTS`, then TrainConfig's.

    Attributes
    ----------
    model_ : MLP
        The velocity field with the EMA weights of the lowest validation loss.
    transform_ : Standardize
        Data units to the network's space.
    n_features_in_ : int
    classes_ : (K,) int ndarray or None
        The class labels of a conditional fit.
    history_ : dict
        ``"loss"``: (steps,) training losses; ``"val"``: (k, 2) rows (step, validation loss).
    checkpoint_ : Checkpoint
        Everything ``save`` writes.
    """

    def __init__(self, *, solver="rk4", solver_steps=None, divergence="auto", n_probes=None,
                 seed=0, quiet=True, **options):
        self.options = dict(options)
        self.divergence = _checks.choice(divergence, "divergence", likelihood.DIVERGENCES)
        self.n_probes = None if n_probes is None else _checks.positive_int(n_probes, "n_probes")
        if divergence == "exact" and n_probes is not None:
            raise ValueError("n_probes goes with a Hutchinson divergence, not divergence='exact'")
        self.solver = _checks.choice(solver, "solver", SOLVERS)
        if solver_steps is not None:
            solver_steps = _checks.positive_int(solver_steps, "solver_steps")
        if solver == "dopri5" and solver_steps is not None:
            raise ValueError("solver_steps must be None with solver 'dopri5' (it picks its own)")
        self.solver_steps = solver_steps
        self.seed = _checks.nonnegative_int(seed, "seed")
        self.quiet = _checks.boolean(quiet, "quiet")
        self.config = data_config(seed=seed, **options)

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on the rows of ``X`` (n, d); with labels ``y`` (n,), a class-conditional flow.

        Returns
        -------
        self
        """
        X = data.check_array(X, "X")
        config = self.config if y is None else dataclasses.replace(self.config, conditional=True)
        trainer = Trainer(config, data=X, labels=y)
        trainer.run(quiet=self.quiet)
        self._set_fitted(trainer.to_checkpoint())
        return self

    def _set_fitted(self, ckpt, ema=True, best=True):
        self.checkpoint_ = ckpt
        self.model_ = ckpt.model(ema=ema, best=best)
        self.transform_ = Standardize.from_dict(ckpt.data.transform)
        self.n_features_in_ = self.model_.dim
        self.classes_ = np.arange(self.model_.n_classes) if self.model_.n_classes else None
        self.history_ = {"loss": np.asarray(ckpt.losses), "val": ckpt.data.val_losses}

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("this Flow is not fitted yet: call fit(X) first (or Flow.load)")

    def _rows(self, X, name="X"):
        self._check_fitted()
        X = data.check_array(X, name, min_rows=1)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} columns, but the flow was fitted on "
                             f"{self.n_features_in_}")
        return X

    def _rng(self, rng):
        return np.random.default_rng(self.seed) if rng is None else _checks.generator(rng)

    def _solve(self, field, z, backwards=False):
        if backwards:
            return solvers.solve(field, z, self.solver, self.solver_steps, t0=1.0, t1=0.0).x
        return sampling.sample_flow(field, z, method=self.solver, steps=self.solver_steps).x

    # --- using the fitted flow ----------------------------------------------------------------
    def sample(self, n, rng=None, y=None, guidance=1.0):
        """Draw ``n`` rows: ``x0 ~ N(0, I_d)``, integrated to t = 1, mapped to data units.

        Parameters
        ----------
        n : int
        rng : np.random.Generator, optional
            Draws the noise; None uses ``np.random.default_rng(seed)`` (repeatable).
        y : int or (n,) int array, optional
            Requested classes (a conditional fit), with classifier-free guidance weight
            ``guidance`` (``v_w = (1 - w) v(x, t, null) + w v(x, t, y)``, see
            :mod:`npflow.guidance`).

        Returns
        -------
        (n, d) float64 ndarray
        """
        self._check_fitted()
        n = _checks.positive_int(n, "n")
        z0 = self._rng(rng).standard_normal((n, self.n_features_in_)).astype(self.model_.dtype)
        z1 = self._solve(self._field(y, guidance), z0)
        return self.transform_.inverse(z1.astype(np.float64))

    def _field(self, y, weight):
        if y is None:
            if weight != 1.0:
                raise ValueError("guidance needs y (the requested classes)")
            return self.model_
        if self.classes_ is None:
            raise ValueError("y needs a class-conditional flow: fit(X, y) with labels")
        return guidance.GuidedField(self.model_, y, weight)

    def log_prob(self, X, rng=None):
        """Log-density of each row in data units (nats): ``log p_z(z) + log|det dz/dx|``.

        For a flow fitted with ``dequantize=True`` the rows are integer data: each gets fresh
        uniform noise ``u`` (from ``rng``) and the value is ``log p(x + u)``, whose mean is a
        lower bound on the discrete log-likelihood (Theis et al. 2016). ``rng`` also draws
        Hutchinson's probes when the divergence is estimated (see ``divergence``).

        Returns
        -------
        (n,) float64 ndarray
        """
        log_p, _ = likelihood.log_likelihood_of_rows(
            self.model_, self._rows(X), self._rng(rng), self.transform_, self.divergence,
            self.n_probes, method=self.solver, steps=self.solver_steps)
        return log_p

    def score(self, X, y=None, rng=None):
        """Mean log-density of the rows of ``X`` (higher is better); ``y`` is ignored."""
        return float(np.mean(self.log_prob(X, rng=rng)))

    def transform(self, X):
        """Data to noise: the flow integrated from t = 1 back to t = 0. (n, d) -> (n, d)."""
        X = self._rows(X)
        z = self.transform_.forward(np.asarray(X, dtype=np.float64)).astype(self.model_.dtype)
        return self._solve(self.model_, z, backwards=True).astype(np.float64)

    def inverse_transform(self, Z):
        """Noise to data: the flow integrated from t = 0 to t = 1, in data units."""
        Z = self._rows(Z, "Z").astype(self.model_.dtype)
        return self.transform_.inverse(self._solve(self.model_, Z).astype(np.float64))

    def reflow(self, n_pairs=20000, steps=2000, rng=None, **overrides):
        """A straighter flow: this one retrained on its own pairs (Liu et al. 2023, Alg. 1).

        ``z0 ~ N(0, I_d)`` is carried to ``z1`` by this flow (rk4, in the network's space); a
        copy of the network, warm-started from this one, is fitted to the fixed pairs with the
        straight-line objective (:mod:`npflow.reflow`). Few Euler steps then suffice.

        Returns
        -------
        Flow
            A new fitted Flow with the same transform (this one is unchanged).
        """
        self._check_fitted()
        if self.classes_ is not None:
            raise ValueError("reflow of a class-conditional flow is not supported (the pairs "
                             "carry no labels)")
        n_pairs = _checks.positive_int(n_pairs, "n_pairs")
        z0 = self._rng(rng).standard_normal((n_pairs, self.n_features_in_))
        pairs = reflow_module.reflow_pairs(self.model_, z0.astype(self.model_.dtype), "rk4",
                                           self.solver_steps)
        parent = TrainConfig.from_dict(self.checkpoint_.train_config)
        trainer = reflow_module.reflow_trainer(self.model_, parent, pairs, steps=steps,
                                               **overrides)
        trainer.run(quiet=self.quiet)
        ckpt = trainer.to_checkpoint()
        state = dataclasses.replace(self.checkpoint_.data, best_params=trainer.ema.shadow.copy(),
                                    best_step=trainer.step, val_losses=np.zeros((0, 2)))
        child = Flow(solver=self.solver, solver_steps=self.solver_steps,
                     divergence=self.divergence, n_probes=self.n_probes, seed=self.seed,
                     quiet=self.quiet, **self.options)
        child._set_fitted(dataclasses.replace(ckpt, data=state))
        return child

    # --- files ----------------------------------------------------------------------------------
    def save(self, path):
        """Write the fitted flow (a resumable checkpoint, format 2) to ``path`` atomically."""
        self._check_fitted()
        checkpoint.save(path, self.checkpoint_)

    @classmethod
    def load(cls, path, ema=True, best=True, **kwargs):
        """A fitted Flow from a checkpoint trained on data (``Flow.save`` or ``npflow train
        --data``).

        ``ema``, ``best``: which weights (see :meth:`~npflow.checkpoint.Checkpoint.model`; by
        default the EMA at the lowest validation loss); ``kwargs``: the solver options.
        """
        ckpt = checkpoint.load(path)
        if ckpt.data is None:
            raise checkpoint.CheckpointError(
                f"{path!r} was trained on a built-in 2-D dataset, not on rows of data; load it "
                f"with npflow.load_model")
        if ckpt.train_config.get("source") == DATA:
            raise checkpoint.CheckpointError(
                f"{path!r} is a data-to-data flow (its source is rows of data, not noise); map "
                f"source rows with npflow sample --source-data")
        options = {key: value for key, value in ckpt.train_config.items()
                   if key not in ("seed", "target")}
        flow = cls(seed=ckpt.train_config.get("seed", 0), **{**options, **kwargs})
        flow._set_fitted(ckpt, ema, best)
        return flow

    def __repr__(self):
        shown = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Flow({shown})"


