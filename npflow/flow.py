"""Your own data in five lines: a flow-matching density estimator in scikit-learn's vocabulary.

    >>> import numpy as np, npflow
    >>> X = np.random.default_rng(0).standard_normal((500, 3)) @ np.diag([1.0, 2.0, 0.5]) + 4.0
    >>> flow = npflow.Flow(steps=300, hidden=(32, 32), solver_steps=10).fit(X)
    >>> flow
    Flow(solver_steps=10, hidden=(32, 32), steps=300)
    >>> flow.sample(4, rng=np.random.default_rng(1)).shape
    (4, 3)
    >>> flow.score_samples(X[:2]).shape, flow.transform(X[:2]).shape
    ((2,), (2, 3))
    >>> flow.get_params()["lr"] == npflow.DATA_DEFAULTS["lr"]
    True

:class:`Flow` wraps the pieces of npflow for a table of rows of any width ``d``:

* ``fit(X, y=None)`` trains by conditional flow matching on the rows (:class:`~npflow.train.Trainer`
  with target ``"data"``: a seeded train/validation split, the standardization of
  :mod:`npflow.transforms`, minibatches without replacement, the best weights by validation
  loss); labels ``y`` make it class-conditional, with classifier-free guidance at sampling time.
* ``sample`` integrates ``dx/dt = v(x, t)`` from Gaussian noise (:func:`npflow.sample_flow`) and
  maps the result back to data units.
* ``score_samples`` (alias ``log_prob``) is the exact change of variables,
  ``log p(x) = log p_z(z) + log|det dz/dx|`` with ``log p_z`` from
  :func:`npflow.likelihood.log_likelihood` (Chen et al. 2018, Thm. 1); ``score`` is its mean.
* ``transform`` (and ``fit_transform``) runs the flow backwards, data to noise;
  ``inverse_transform`` forwards.

A **table** (a :class:`~npflow.tables.Table`, or a 2-D object array of cells: strings,
numbers, ``None``/NaN where missing) is fitted through its columns' coordinates
(:mod:`npflow.tabular`): ``sample`` returns rows of the same kind (a Table, or an object array
with numbers as ``float``/``int`` and categories as ``str``), ``impute`` fills in missing cells
given the observed ones; ``column_kinds`` overrides the inferred kinds and ``label_column``
names a column of class labels to condition on (``sample(n, y="Gentoo")``). Such a flow has no
density in data units, so ``score_samples`` and the transforms refuse it.

It follows scikit-learn's estimator contract without importing it: every hyper-parameter is an
explicit keyword argument stored unchanged under its own name (``get_params``, ``set_params``,
``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV`` work), nothing is checked before
``fit``, which builds the :class:`~npflow.train.TrainConfig` (the same checks and messages as
``npflow train``) and checks ``X`` and ``y``; fitted state ends in ``_``. ``score`` being the
mean log-density of the rows given, ``GridSearchCV`` picks by held-out likelihood. The defaults
for data are :data:`npflow.train.DATA_DEFAULTS`, each with its measured reason, then
TrainConfig's. scikit-learn's ``check_estimator`` passes, its checks of bad input included
(``tests/test_flow_sklearn.py``): :func:`npflow.data.check_array` refuses complex, 1-D, empty
and sparse input in words scikit-learn's users know, and converts object arrays of numbers (an
object array with text or missing cells is a table).
"""
import contextlib
import dataclasses
import inspect
import numbers
import sys

import numpy as np

from . import _checks, checkpoint, data, imputation, likelihood, solvers, tabular
from .tables import Table, as_table
from .train import DATA, DATA_DEFAULTS, TrainConfig, Trainer, data_config
from .trained import TrainedFlow

SOLVERS = solvers.METHODS
# The default of every TrainConfig field for a run on rows: DATA_DEFAULTS, then TrainConfig's.
_DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(TrainConfig)}, **DATA_DEFAULTS}


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted Flow was called before ``fit`` (or ``Flow.load``).

    A ValueError and an AttributeError, like scikit-learn's ``NotFittedError``, so that code
    catching either (scikit-learn's checks among them) recognises it.
    """


class Flow:
    """A generative model of rows ``x`` in ``R^d``, fitted by flow matching.

    Every argument is stored unchanged under its own name and checked by ``fit`` (scikit-learn's
    rule, so that ``clone`` and ``set_params`` work); the defaults of the training options are
    :data:`~npflow.train.DATA_DEFAULTS`, then :class:`~npflow.train.TrainConfig`'s; with
    ``arch="unet"`` the options left at those defaults take
    :data:`~npflow.train.UNET_DATA_DEFAULTS` (batch, steps, learning rate, warm-up, EMA).

    Parameters
    ----------
    solver : {"euler", "midpoint", "heun", "rk4", "dopri5"}
        ODE solver of ``sample``, ``score_samples`` and the transforms.
    solver_steps : int, optional
        Uniform steps of the fixed-step solvers (None: ``solvers.DEFAULT_STEPS``, 100); None
        for dopri5.
    divergence : {"auto", "exact", "hutchinson"}
        How ``score_samples`` gets ``div v``: exact (d tangents) up to
        :data:`~npflow.likelihood.EXACT_MAX_DIM` dimensions and Hutchinson's estimator with
        ``n_probes`` probes above, unless forced (:func:`npflow.likelihood.log_likelihood`).
    n_probes : int, optional
        Hutchinson probes per row (:data:`~npflow.likelihood.DEFAULT_PROBES` by default).
    seed : int
        Seed of the training run and of the draws made when no ``rng`` is given: the same seed
        on the same rows gives a bit-identical fit.
    quiet : bool
        No progress line while fitting.
    column_kinds : dict, optional
        A table: column name -> ``"numeric"``, ``"integer"``, ``"categorical"`` or
        ``"ignore"``, over the inferred kinds.
    label_column : str, optional
        A table: the column of class labels to condition on (a class-conditional flow).
    hidden, residual, activation, steps, batch_size, lr, schedule, warmup_steps, weight_decay, \
grad_clip, ema_decay, time_embedding, embed_dim, time_scale, time_sampling, path, sigma, \
coupling, label_dropout, dtype, val_fraction, eval_every, patience, dequantize, standardize, \
arch, channels, multipliers, blocks, groups
        The fields of :class:`~npflow.train.TrainConfig` of the same names (network, optimizer,
        probability path, coupling, validation and early stopping, dequantization and
        standardization of the rows); their comments there give each one's meaning.
    image_shape : (c, h, w), optional
        Each row of ``X`` is an image of this shape, flattened (``arch="unet"`` needs it).

    Attributes
    ----------
    model_ : MLP
        The velocity field with the EMA weights of the lowest validation loss.
    transform_ : Standardize
        Data units to the network's space.
    n_features_in_ : int
        Columns ``d`` of the rows seen by ``fit``.
    classes_ : (K,) ndarray or None
        The class labels of a conditional fit (a table's: the label column's levels).
    table_ : TableSchema or None
        The columns of a fitted table (:mod:`npflow.tabular`).
    history_ : dict
        ``"loss"``: (steps,) training losses; ``"val"``: (k, 2) rows (step, validation loss).
    checkpoint_ : Checkpoint
        Everything ``save`` writes.
    """

    def __init__(self, *, solver="rk4", solver_steps=None, divergence="auto", n_probes=None,
                 seed=_DEFAULTS["seed"], quiet=True, column_kinds=None, label_column=None,
                 hidden=_DEFAULTS["hidden"], residual=_DEFAULTS["residual"],
                 activation=_DEFAULTS["activation"], steps=_DEFAULTS["steps"],
                 batch_size=_DEFAULTS["batch_size"], lr=_DEFAULTS["lr"],
                 schedule=_DEFAULTS["schedule"], warmup_steps=_DEFAULTS["warmup_steps"],
                 weight_decay=_DEFAULTS["weight_decay"], grad_clip=_DEFAULTS["grad_clip"],
                 ema_decay=_DEFAULTS["ema_decay"], time_embedding=_DEFAULTS["time_embedding"],
                 embed_dim=_DEFAULTS["embed_dim"], time_scale=_DEFAULTS["time_scale"],
                 time_sampling=_DEFAULTS["time_sampling"], path=_DEFAULTS["path"],
                 sigma=_DEFAULTS["sigma"], coupling=_DEFAULTS["coupling"],
                 label_dropout=_DEFAULTS["label_dropout"], dtype=_DEFAULTS["dtype"],
                 val_fraction=_DEFAULTS["val_fraction"], eval_every=_DEFAULTS["eval_every"],
                 patience=_DEFAULTS["patience"], dequantize=_DEFAULTS["dequantize"],
                 standardize=_DEFAULTS["standardize"], arch=_DEFAULTS["arch"],
                 channels=_DEFAULTS["channels"], multipliers=_DEFAULTS["multipliers"],
                 blocks=_DEFAULTS["blocks"], groups=_DEFAULTS["groups"], image_shape=None):
        self.solver = solver
        self.solver_steps = solver_steps
        self.divergence = divergence
        self.n_probes = n_probes
        self.seed = seed
        self.quiet = quiet
        self.column_kinds = column_kinds
        self.label_column = label_column
        self.hidden = hidden
        self.residual = residual
        self.activation = activation
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.ema_decay = ema_decay
        self.time_embedding = time_embedding
        self.embed_dim = embed_dim
        self.time_scale = time_scale
        self.time_sampling = time_sampling
        self.path = path
        self.sigma = sigma
        self.coupling = coupling
        self.label_dropout = label_dropout
        self.dtype = dtype
        self.val_fraction = val_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.dequantize = dequantize
        self.standardize = standardize
        self.arch = arch
        self.channels = channels
        self.multipliers = multipliers
        self.blocks = blocks
        self.groups = groups
        self.image_shape = image_shape

    # --- parameters -----------------------------------------------------------------------------
    @classmethod
    def _param_names(cls):
        """The constructor's keyword arguments, in order: the estimator's parameters."""
        return tuple(name for name in inspect.signature(cls.__init__).parameters
                     if name != "self")

    def get_params(self, deep=True):
        """The parameters as a dict ``{name: value}`` (``deep``: no nested estimators here)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set parameters by name (checked at the next ``fit``, like the constructor's).

        Returns
        -------
        self
        """
        valid = self._param_names()
        unknown = [name for name in params if name not in valid]
        if unknown:  # before any is set: a refused call changes nothing
            raise ValueError(f"invalid parameter {', '.join(map(repr, unknown))} for Flow; valid "
                             f"parameters are: {', '.join(valid)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        shown = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items()
                          if repr(value) != repr(defaults[name].default))
        return f"{type(self).__name__}({shown})"

    def __sklearn_tags__(self):
        """scikit-learn's tags: a density estimator of 2-D rows (``y``, class labels, optional)
        that transforms rows to noise as float64.

        Only scikit-learn calls this method, so its classes are taken from the loaded module:
        npflow never imports scikit-learn.
        """
        utils = sys.modules["sklearn.utils"]
        return utils.Tags(estimator_type="density_estimator",
                          target_tags=utils.TargetTags(required=False),
                          transformer_tags=utils.TransformerTags(preserves_dtype=["float64"]))

    def train_config(self, conditional=False):
        """The :class:`TrainConfig` that ``fit`` trains (``conditional``: fitted with labels);
        its errors name the parameter."""
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        defaults = inspect.signature(type(self).__init__).parameters
        options = {name: value for name, value in self.get_params().items()  # those set: the
                   if name in fields and value != defaults[name].default}  # rest are defaults
        return data_config(**options, conditional=conditional)

    def _check_options(self):
        """Check the parameters of the fitted methods (the solver's and ``quiet``)."""
        _checks.choice(self.solver, "solver", SOLVERS)
        with _spelled():
            likelihood.check_divergence(self.divergence, self.n_probes)
            solvers.check_steps(self.solver, self.solver_steps)
        _checks.boolean(self.quiet, "quiet")

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on the rows of ``X`` (n, d); with labels ``y`` (n,), a class-conditional flow.

        ``X`` may be a table (a :class:`~npflow.tables.Table`, or a 2-D object array with text
        or missing cells); its class labels are then a column, ``label_column``, not ``y``.

        Returns
        -------
        self
        """
        table = _table_input(X)
        if table is None and (self.column_kinds is not None or self.label_column is not None):
            raise ValueError("column_kinds and label_column apply to a table (a Table or an "
                             "object array of cells); X is an array of numbers")
        if table is not None and y is not None:
            raise ValueError("y must be None for a table: name its column of class labels "
                             "with label_column")
        config = self.train_config(
            conditional=y is not None or (table is not None and self.label_column is not None))
        self._check_options()
        if table is None:
            rows = data.Dataset.from_arrays(X, y, image_shape=self.image_shape)  # the one check
        else:
            with _spelled():
                rows = tabular.dataset(table, self.column_kinds, self.label_column)
        trainer = Trainer(config, data=rows, labels=rows.y)
        trainer.run(quiet=self.quiet)
        self._set_fitted(trainer.to_checkpoint())
        self.table_kind_ = "table" if isinstance(X, Table) or table is None else "objects"
        return self

    def _set_fitted(self, ckpt, ema=True, best=True):
        self.flow_ = TrainedFlow(ckpt, ema=ema, best=best)
        self.checkpoint_, self.model_, self.transform_ = ckpt, self.flow_.model, \
            self.flow_.transform
        self.table_, self.table_kind_ = self.flow_.table, "table"
        self.n_features_in_ = self.flow_.dim if self.table_ is None else len(self.table_.names)
        self.classes_ = np.arange(self.flow_.n_classes) if self.flow_.n_classes else None
        if self.table_ is not None and self.table_.label is not None:
            self.classes_ = np.array(self.table_.levels, dtype=object)
        self.history_ = {"loss": np.asarray(ckpt.losses), "val": ckpt.data.val_losses}

    def _check_fitted(self):
        if not hasattr(self, "flow_"):
            raise NotFittedError("this Flow is not fitted yet: call fit(X) first (or Flow.load)")

    def _rows(self, X, name="X"):
        self._check_fitted()
        if self.table_ is not None:
            self.flow_.refuse_table("score_samples and the transforms")
        X = data.check_array(X, name, min_rows=1)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but Flow is expecting "
                             f"{self.n_features_in_} features as input (the columns of fit's X)")
        return X

    def _rng(self, rng):
        return np.random.default_rng(self.seed) if rng is None else _checks.generator(rng)

    def _solver(self):
        """The solver keyword arguments: ``solver_steps`` None is 100 for every fixed-step
        method (:data:`npflow.solvers.DEFAULT_STEPS`), also for the likelihood."""
        return {"method": self.solver, "steps": solvers.check_steps(self.solver,
                                                                    self.solver_steps)}

    # --- using the fitted flow (npflow.trained.TrainedFlow in data units) -------------------
    def sample(self, n, rng=None, y=None, guidance=1.0, complete=False):
        """Draw ``n`` rows: ``x0 ~ N(0, I_d)``, integrated to t = 1, mapped to data units.

        A table's rows come back as the table was given (a Table, or an object array); ``y``
        is then a level of the label column (None: labels drawn in the table's proportions),
        and ``complete`` asks for rows without missing cells.

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
        (n, d) float64 ndarray, or a table
        """
        self._check_fitted()
        with _spelled():
            rows = self.flow_.sample(
                n, self._rng(rng), label=y, complete=complete,
                guidance=None if y is None and guidance == 1.0 else guidance, **self._solver())
        return rows if self.table_ is None else self._as_given(rows)

    def impute(self, X, rng=None, n_imputations=None, resample=imputation.RESAMPLE):
        """Fill in the missing cells of a table's rows, each drawn given the observed cells of
        its row (:meth:`npflow.trained.TrainedFlow.impute`); rows without gaps are unchanged.

        Parameters
        ----------
        X : Table or (n, d) object array
            Rows with the fitted columns.
        rng : np.random.Generator, optional
            None uses ``np.random.default_rng(seed)``.
        n_imputations : int, optional
            None: one filled table; K: a tuple of K independent ones.
        resample : int
            ``U``: passes per solver step (RePaint's resampling, :mod:`npflow.imputation`).

        Returns
        -------
        table of X's kind, or a tuple of them
        """
        self._check_fitted()
        table = _table_input(X)
        if self.table_ is None or table is None:
            raise ValueError("impute needs a Flow fitted on a table and X a table (a Table or an "
                             "object array of cells)")
        solver = self._solver()
        with _spelled():
            filled = self.flow_.impute(table, self._rng(rng), 1 if n_imputations is None else
                                       n_imputations, method=solver["method"],
                                       steps=solver["steps"], resample=resample)
        if not isinstance(X, Table):  # the given cells, and the drawn ones as values
            gaps = table.missing()
            filled = tuple(np.where(gaps, self._as_given(t, "objects"), X) for t in filled)
        return filled[0] if n_imputations is None else filled

    def _as_given(self, table, kind=None):
        """A generated Table as the kind of table ``fit`` was given: the Table, or an object
        array with numbers as float (int for integer columns) and None where missing."""
        if (kind or self.table_kind_) == "table":
            return table
        cells = np.empty(table.cells.shape, dtype=object)
        for j, column in enumerate(self.table_.encoder.columns_):
            convert = {"numeric": float, "integer": lambda c: int(float(c))}.get(column.kind, str)
            cells[:, j] = [None if c is None else convert(c) for c in table.cells[:, j]]
        return cells

    def score_samples(self, X, rng=None):
        """Log-density of each row in data units (nats): ``log p_z(z) + log|det dz/dx|``.

        For a flow fitted with ``dequantize=True`` the rows are integer data: each gets fresh
        uniform noise ``u`` (from ``rng``) and the value is ``log p(x + u)``, whose mean is a
        lower bound on the discrete log-likelihood (Theis et al. 2016). ``rng`` also draws
        Hutchinson's probes when the divergence is estimated (see ``divergence``).

        Returns
        -------
        (n,) float64 ndarray
        """
        X = self._rows(X)
        with _spelled():
            log_p, _ = self.flow_.log_prob(X, self._rng(rng), self.divergence, self.n_probes,
                                           **self._solver())
        return log_p

    log_prob = score_samples  # npflow's name for it (baselines, likelihood)

    def score(self, X, y=None, rng=None):
        """Mean log-density of the rows of ``X`` (higher is better); ``y`` is ignored."""
        return float(np.mean(self.score_samples(X, rng=rng)))

    def transform(self, X):
        """Data to noise: the flow integrated from t = 1 back to t = 0. (n, d) -> (n, d)."""
        X = self._rows(X)  # first: an unfitted Flow says so
        return self.flow_.encode(X, **self._solver())

    def fit_transform(self, X, y=None):
        """``fit(X, y)``, then ``transform(X)``: the rows of ``X`` as noise. (n, d) -> (n, d)."""
        return self.fit(X, y).transform(X)

    def inverse_transform(self, Z):
        """Noise to data: the flow integrated from t = 0 to t = 1, in data units."""
        Z = self._rows(Z, "Z")
        return self.flow_.decode(Z, **self._solver())

    def reflow(self, n_pairs=20000, steps=2000, rng=None, **overrides):
        """A straighter flow: this one retrained on its own pairs (Liu et al. 2023, Alg. 1).

        ``z0 ~ N(0, I_d)`` (drawn from ``rng``) is carried to ``z1`` by this flow (rk4, in the
        network's space); a copy of the network, warm-started from this one, is fitted to the
        fixed pairs with the straight-line objective (:mod:`npflow.reflow`); ``overrides`` are
        TrainConfig fields of that run. Few Euler steps then suffice.

        Returns
        -------
        Flow
            A new fitted Flow with the same transform (this one is unchanged).
        """
        self._check_fitted()
        trainer = self.flow_.reflow_trainer(n_pairs, steps, self.seed, rng=self._rng(rng),
                                            sample_steps=self._solver()["steps"], **overrides)
        trainer.run(quiet=self.quiet)
        child = type(self)(**self.get_params())
        child._set_fitted(trainer.to_checkpoint())
        return child

    # --- files ----------------------------------------------------------------------------------
    def save(self, path):
        """Write the fitted flow (a resumable checkpoint, :mod:`npflow.checkpoint`) to ``path`` atomically."""
        self._check_fitted()
        checkpoint.save(path, self.checkpoint_)

    @classmethod
    def load(cls, path, ema=True, best=True, **kwargs):
        """A fitted Flow from a checkpoint trained on data (``Flow.save`` or ``npflow train
        --data``).

        ``ema``, ``best``: which weights (see :meth:`~npflow.checkpoint.Checkpoint.model`; by
        default the EMA at the lowest validation loss); ``kwargs``: parameters to set (the
        solver options, ``quiet``); the others are the checkpoint's training options.
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
        config = dataclasses.asdict(TrainConfig.from_dict(ckpt.train_config))
        params = {name: config[name] for name in cls._param_names() if name in config}
        flow = cls(**{**params, **kwargs})
        flow._check_options()
        flow._set_fitted(ckpt, ema, best)
        return flow


def _table_input(X):
    """``X`` as a Table when it is one, or a 2-D object array of cells (str, numbers, None or
    NaN where missing) with some text or missing cell; else None (an object array of numbers
    is converted by :func:`npflow.data.check_array`, other objects are refused there)."""
    if isinstance(X, Table):
        return X
    if not (isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 2):
        return None
    cells = X.ravel()
    if not all(c is None or isinstance(c, (str, numbers.Real)) for c in cells):
        return None
    text_or_gap = any(c is None or isinstance(c, str) or (isinstance(c, float) and np.isnan(c))
                      for c in cells)
    return as_table(X) if text_or_gap else None


# The names of the library's arguments as Flow calls them (in messages of npflow's checks).
_PARAMS = {"method": "solver", "steps": "solver_steps", "label": "y", "x": "X", "table": "X"}


@contextlib.contextmanager
def _spelled():
    """Re-raise a combination error of the library with the options named as Flow's."""
    try:
        yield
    except _checks.OptionError as err:
        raise ValueError(err.spell(lambda name: _PARAMS.get(name, name), "this call")) from None


