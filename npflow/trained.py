"""A trained flow, ready to use: sample, score, encode, evaluate and straighten any checkpoint.

A checkpoint holds one of two kinds of run, and :class:`TrainedFlow` hides the difference:

* **a built-in 2-D target** (:mod:`npflow.datasets`): the network works in data coordinates and
  its points start from the named source (``gaussian``, ``moons``, ...);
* **rows of data** (``target="data"``): the network works in standardized coordinates
  ``z = (x - mean) / scale`` (:class:`~npflow.transforms.Standardize`, stored in the checkpoint)
  and its points start from ``N(0, I_d)``, or from rows of a source dataset (a data-to-data flow).

Every method takes and returns data units; the map to the network's space is applied here, once.
The command line (:mod:`npflow.cli`) and the estimator (:class:`npflow.Flow`) are both faces of
this class.

A flow of the rows of a **table** (:mod:`npflow.tabular`: strings, integers, missing cells)
takes and gives rows as a :class:`~npflow.tables.Table`: :meth:`TrainedFlow.sample` decodes
generated coordinates with the stored encoder, :meth:`TrainedFlow.impute` fills in missing
cells, :meth:`TrainedFlow.evaluate` scores generated rows against held-out ones
(:mod:`npflow.report`). Such a flow has no density in data units (a category, an integer or a
missing cell has a probability, not a density): ``log_prob`` and ``encode`` refuse it.
"""
import contextlib
import dataclasses
import os
import time

import numpy as np

from . import (_checks, checkpoint, data, datasets, imputation, likelihood, metrics, paths,
               reflow, report, sampling, solvers, tables, tabular)
from ._progress import Progress
from .guidance import GuidedField
from .tables import Table, as_table
from .train import TrainConfig
from .transforms import Standardize, bits_per_dim

# Likelihood work (log-prob, evaluate, encode) integrates d + 1 tangents per row, so it defaults
# to fewer rk4 steps than sampling: 10 steps give the held-out NLL within 5e-4 nats of 20 steps on
# the Gaussian-mixture benchmark (d = 10; 13.7580 against 13.7585) and within 1e-4 bits/dim of
# dopri5 on the digits, at half the time of 20 steps.
LIKELIHOOD_STEPS = 10


class TrainedFlow:
    """The flow of a checkpoint, in data units.

    Parameters
    ----------
    ckpt : Checkpoint
        What :func:`npflow.checkpoint.load` returns (or ``Trainer.to_checkpoint()``).
    ema, best : bool
        Which weights (:meth:`~npflow.checkpoint.Checkpoint.model`): by default the moving
        average, at the lowest validation loss for a run on rows. ``best=False`` (the last
        moving average) is refused for a model without validation-best weights (a built-in
        target), where it would change nothing.

    Attributes
    ----------
    model : MLP
        The velocity field ``v(z, t)`` in the network's space.
    dim : int
        The dimension ``d`` of a row.
    on_rows : bool
        Trained on rows of data (else on a built-in 2-D target).
    transform, source_transform : Standardize or None
        Data units to the network's space (rows only); the source's for a data-to-data flow.
    table : TableSchema or None
        The columns of a table (:mod:`npflow.tabular`); its coordinates are the flow's
        "data units".
    """

    def __init__(self, ckpt, ema=True, best=True):
        self.checkpoint = ckpt
        self.config = ckpt.train_config
        if not _checks.boolean(best, "best") and ckpt.data is None:
            raise _checks.OptionError("{0} picks between the best and the last weights of a "
                                      "model trained on rows; this model, of a built-in target, "
                                      "has only its last weights", "best")
        self.model = ckpt.model(ema=ema, best=best)
        self.dim = self.model.dim
        self.on_rows = ckpt.data is not None
        self.transform = self.source_transform = self.table = None
        if self.on_rows:
            self.transform = Standardize.from_dict(ckpt.data.transform)
            source = ckpt.data.source_transform
            self.source_transform = None if source is None else Standardize.from_dict(source)
            table = ckpt.data.info.get("table")
            self.table = None if table is None else tabular.TableSchema.from_dict(table)
        self.path = paths.make_path(self.config["path"], sigma=self.config["sigma"])

    @classmethod
    def load(cls, path, ema=True, best=True):
        """The TrainedFlow of the checkpoint file ``path`` (:func:`npflow.checkpoint.load`)."""
        return cls(checkpoint.load(path), ema=ema, best=best)

    # --- what the flow is -----------------------------------------------------------------------
    @property
    def source_is_data(self):
        """Whether points start from rows of a source dataset (a data-to-data flow)."""
        return self.source_transform is not None

    @property
    def has_density(self):
        """Whether the source has a density, so that the flow's rows have one."""
        if self.on_rows:
            return not self.source_is_data
        return datasets.has_density(self.config["source"])

    @property
    def n_classes(self):
        """Number of classes of a class-conditional flow (0 when unconditional)."""
        return self.model.n_classes

    @property
    def dequantized(self):
        """Whether the rows are integer data, modelled as ``x + u``, ``u ~ U[0, 1)``."""
        return self.on_rows and self.transform.dequantize

    def describe(self):
        """One line naming what the flow maps: ``"gaussian -> moons"`` or ``"rows (d = 5)"``."""
        if self.table is not None:
            return f"a table of {len(self.table.names)} columns ({self.dim} coordinates)"
        if self.on_rows:
            return f"rows (d = {self.dim})" + (" from source rows" if self.source_is_data else "")
        return f"{self.config['source']} -> {self.config['target']}"

    # --- coordinates ------------------------------------------------------------------------------
    def check_rows(self, x, name="x"):
        """``x`` as finite float64 rows (n, d) of this flow's dimension (ValueError otherwise)."""
        if self.table is not None:
            raise _checks.OptionError("{0}: this model is of a table; it takes and gives rows as "
                                      "a Table (sample, evaluate, impute), not as numbers", name)
        x = _checks.points(x, name, dtype=np.float64)
        if x.shape[1] != self.dim:
            raise _checks.OptionError(f"{{0}} has {x.shape[1]} columns, but the model was "
                                      f"trained in d = {self.dim}", name)
        return x

    def to_network(self, x, source=False):
        """Rows in data units (n, d) -> the network's space (the source's map with ``source``)."""
        transform = self.source_transform if source else self.transform
        x = np.asarray(x, dtype=np.float64)
        return x if transform is None else transform.forward(x)

    def to_data(self, z):
        """Points in the network's space (..., d) -> data units."""
        z = np.asarray(z, dtype=np.float64)
        if self.transform is None:
            return z
        return self.transform.inverse(z.reshape(-1, self.dim)).reshape(z.shape)

    def check_source_rows(self, source_rows):
        """``source_rows`` (m, d) as float64 rows, given exactly when this flow maps rows of a
        source dataset (a data-to-data flow); None when it starts from its own source."""
        if source_rows is None:
            if self.source_is_data:
                raise _checks.OptionError("this model maps rows of a source dataset: give them "
                                          "({0})", "source_rows")
            return None
        if not self.source_is_data:
            raise _checks.OptionError("{0} applies to a data-to-data model only; this model "
                                      "draws its own starting points", "source_rows")
        return self.check_rows(source_rows, "source_rows")

    def draw_source(self, n, rng):
        """``n`` points of the source, in the network's space: noise, or a built-in source."""
        self.check_source_rows(None)  # a data-to-data flow has no source to draw from
        if self.on_rows:
            return rng.standard_normal((n, self.dim))
        return datasets.sample(self.config["source"], n, rng)

    def field(self, label=None, guidance=None):
        """The velocity to integrate: the network, or its guided field for class ``label``.

        ``v_w = (1 - w) v(x, t, null) + w v(x, t, y)`` with ``w = guidance`` (1 by default; Ho
        and Salimans 2022, eq. 6), see :class:`~npflow.guidance.GuidedField`.
        """
        given = "label" if label is not None else "guidance" if guidance is not None else None
        if given is not None and not self.n_classes:
            raise _checks.OptionError("{0} needs a class-conditional model (trained with labels, "
                                      "such as a table with a label column); this model is "
                                      "unconditional", given)
        if label is None:
            if guidance is not None:
                raise _checks.OptionError("{0} needs {1} (the class to generate)", "guidance",
                                          "label")
            return self.model
        return GuidedField(self.model, label, 1.0 if guidance is None else guidance)

    # --- sampling -------------------------------------------------------------------------------
    def sample_chunks(self, n=None, rng=None, *, label=None, guidance=None, source_rows=None,
                      chunk_size=20000, method="rk4", steps=None, rtol=solvers.RTOL,
                      atol=solvers.ATOL, return_trajectory=False, complete=False):
        """Generate rows chunk by chunk: an iterator of ``(rows, solution)``, one per chunk.

        ``x0`` is drawn from the source (``n`` points, from ``rng``) or, for a data-to-data flow,
        is ``source_rows`` (m, d) in data units; ``dx/dt = v(x, t)`` is integrated from 0 to 1
        (:func:`npflow.sample_flow`) and ``rows`` (chunk, d) are in data units. Memory is bounded
        by ``chunk_size`` whatever ``n``. The arguments are checked here, before any work.
        ``complete`` is for a model of a table (:meth:`sample_table`) and refused here.
        """
        if complete:
            raise _checks.OptionError("{0} applies to a model of a table", "complete")
        if self.table is not None:
            raise ValueError("sample_chunks gives rows of numbers; this model is of a table: "
                             "draw its rows with sample")
        field = self.field(label, guidance)
        solvers.check_steps(method, steps, rtol, atol)
        chunk_size = _checks.positive_int(chunk_size, "chunk_size")
        source_rows = self.check_source_rows(source_rows)
        if source_rows is not None:
            n = len(source_rows)
        else:
            n = _checks.positive_int(n, "n")
            rng = _checks.generator(rng)
        if return_trajectory and n > chunk_size:
            raise _checks.OptionError("{0} holds every step of every point in memory: use {1} <= "
                                      f"{{2}} ({chunk_size})", "return_trajectory", "n",
                                      "chunk_size")
        solver = {"method": method, "steps": steps, "rtol": rtol, "atol": atol,
                  "return_trajectory": return_trajectory}
        return self._chunks(field, n, rng, source_rows, chunk_size, solver)

    def _chunks(self, field, n, rng, source_rows, chunk_size, solver):
        for start in range(0, n, chunk_size):
            m = min(chunk_size, n - start)
            x0 = self.draw_source(m, rng) if source_rows is None else \
                self.to_network(source_rows[start:start + m], source=True)
            with _integrating("integrating the flow failed"):
                sol = sampling.sample_flow(field, x0.astype(self.model.dtype), **solver)
            yield self.to_data(sol.x), sol

    def sample(self, n=None, rng=None, *, complete=False, **kwargs):
        """``n`` generated rows (n, d) in data units; ``kwargs`` as :meth:`sample_chunks`.

        A model of a table returns a :class:`~npflow.tables.Table` (:meth:`sample_table`).
        """
        if self.table is not None:
            return self.sample_table(n, rng, complete=complete, **kwargs)
        return np.concatenate([rows for rows, _ in self.sample_chunks(n, rng, complete=complete,
                                                                      **kwargs)])

    def save_samples(self, path, n, rng, *, trajectory=None, progress=None, **kwargs):
        """Generate ``n`` rows and write them to ``path``; returns a one-line account of the work.

        A flow of points writes ``.npy`` or ``.csv`` chunk by chunk (a
        :class:`~npflow.data.RowWriter`: memory bounded by ``chunk_size``, the file renamed over
        ``path`` only when complete), and its ``(steps + 1, n, d)`` trajectory to ``trajectory``
        (``.npy``) if named. A model of a table writes its rows as a CSV, as the table was
        (:meth:`sample_table`). ``kwargs`` as :meth:`sample_chunks` (or :meth:`sample_table`);
        ``progress``: a progress line on standard error (None: when it is a terminal).
        """
        t_start, method = time.perf_counter(), kwargs.get("method", "rk4")
        if self.table is not None:
            out = _checks.out_path(path, (".csv", ".csv.gz"), "out")
            kwargs.pop("chunk_size", None)  # a table is drawn at once
            for name in ("trajectory", "source_rows"):
                if (trajectory if name == "trajectory" else kwargs.pop(name, None)) is not None:
                    raise _checks.OptionError("{0} does not apply to a model of a table", name)
            rows = self.sample_table(n, rng, **kwargs)
            tables.write_csv(rows, out)
            return (f"sampled {len(rows)} rows of {len(rows.names)} columns with {method} "
                    f"({100 * rows.missing().mean():.1f}% of cells missing), "
                    f"{time.perf_counter() - t_start:.2f} s; saved {out}")
        out = _checks.out_path(path, (".npy", ".csv"), "out")
        traj_out = trajectory and _checks.out_path(trajectory, (".npy",), "trajectory")
        chunks = self.sample_chunks(n, rng, return_trajectory=bool(traj_out), **kwargs)
        n = n if kwargs.get("source_rows") is None else len(kwargs["source_rows"])
        writer = data.RowWriter(out, n, self.dim, self.model.dtype)
        bar = Progress(n, enabled=progress, label="point")
        done, nfe, complete = 0, 0, False
        try:
            for rows, sol in chunks:
                writer.write(rows)
                done, nfe = done + len(rows), max(nfe, sol.nfe)
                bar.update(done)
            complete = True
        finally:
            bar.close()
            writer.close(complete)
        if traj_out:
            np.save(traj_out, self.to_data(sol.trajectory))
        return (f"sampled {n} points with {method}: {nfe} velocity evaluations, "
                f"{time.perf_counter() - t_start:.2f} s; saved {out}" +
                (f" and {traj_out}" if traj_out else ""))

    def sample_table(self, n, rng, *, complete=False, label=None, guidance=None, method="rk4",
                     steps=None, rtol=solvers.RTOL, atol=solvers.ATOL):
        """``n`` generated rows of a table, written as the table was (a
        :class:`~npflow.tables.Table`: its header, column order, category strings, integers in
        their observed range, missing cells in each column's share).

        ``complete``: rows without missing cells, the rows of the table that had none: every
        missing indicator is held at "observed" by replacement (:func:`npflow.imputation.impute`)
        while the rest is generated. ``label``: a level of the label column (or its index);
        None draws each row's label in the table's proportions, then the row given its label.
        """
        schema = self._table_schema("sample_table")
        n, rng = _checks.positive_int(n, "n"), _checks.generator(rng)
        y = schema.label_index(label)
        if y is None and schema.label is not None and guidance is None:
            y = schema.draw_labels(n, rng)
        field = self.field(y, guidance)
        if complete:
            imputation.check_solver(method, steps)
        solvers.check_steps(method, steps, rtol, atol)
        if complete:
            indicators = np.broadcast_to(schema.features.indicators(), (n, self.dim))
            z = self._impute(field, np.zeros((n, self.dim)), indicators, rng, method, steps)
        else:
            x0 = self.draw_source(n, rng).astype(self.model.dtype)
            with _integrating("integrating the flow failed"):
                z = self.to_data(sampling.sample_flow(field, x0, method=method, steps=steps,
                                                      rtol=rtol, atol=atol).x)
        labels = None if y is None else np.broadcast_to(np.asarray(y, dtype=np.int64), (n,))
        return schema.rows(z, labels, complete)

    # --- imputation -----------------------------------------------------------------------------
    def impute(self, table, rng, n_imputations=1, guidance=None, method="rk4", steps=None,
               resample=imputation.RESAMPLE):
        """Fill in the missing cells of a table's rows, each drawn given the observed cells of
        its row (:func:`npflow.imputation.impute`: the observed coordinates are put back on the
        path after every solver step, the missing ones follow the field).

        Parameters
        ----------
        table : Table or (n, d) array_like
            Rows with the model's columns, in order; a model with a label column needs every
            row's label.
        rng : numpy.random.Generator
            Draws the noise of each imputation.
        n_imputations : int
            ``K``: independent imputations; how they differ shows the uncertainty of each cell.
        guidance : float, optional
            Classifier-free guidance weight of a model with a label column (default 1).
        method, steps
            A fixed-step solver and its steps.
        resample : int
            ``U``: passes per solver step (RePaint's resampling, :mod:`npflow.imputation`).

        Returns
        -------
        tuple of K Table
            The rows with every missing cell filled (cells of ignored columns stay missing);
            observed cells are the input's, and a row without gaps comes back unchanged.
        """
        schema = self._table_schema("impute")
        table = schema.checked(table, "table")
        rng = _checks.generator(rng)
        k = _checks.positive_int(n_imputations, "n_imputations")
        imputation.check_solver(method, steps)
        z, known = schema.known(table)  # (n, d) each
        y = schema.labels_of(table)
        gaps = ~known.all(axis=1)  # (n,) rows with something to fill in
        field = self.field(None if y is None else y[gaps], guidance) if gaps.any() else None
        missing = table.missing()
        filled = []
        for _ in range(k):
            cells = table.cells.copy()
            if gaps.any():
                z_gaps = self._impute(field, z[gaps], known[gaps], rng, method, steps, resample)
                drawn = schema.rows(z_gaps, None if y is None else y[gaps], complete=True).cells
                block = cells[gaps]
                block[missing[gaps]] = drawn[missing[gaps]]
                cells[gaps] = block
            filled.append(Table(schema.names, cells))
        return tuple(filled)

    def save_imputations(self, table, path, rng, n_imputations=1, **kwargs):
        """Impute ``table`` (:meth:`impute`; ``kwargs`` are its) and write the filled rows to
        ``path`` (``.csv`` or ``.csv.gz``): one table, or K stacked in the long format of
        :func:`npflow.tables.stack_imputations`. Returns a one-line account of the work."""
        out = _checks.out_path(path, (".csv", ".csv.gz"), "out")
        t_start = time.perf_counter()
        filled = self.impute(table, rng, n_imputations, **kwargs)
        tables.write_csv(filled[0] if len(filled) == 1 else tables.stack_imputations(filled), out)
        gaps = filled[0].missing() != as_table(table).missing()  # (n, d) the cells drawn
        return (f"imputed {int(gaps.sum())} missing cells in {int(gaps.any(axis=1).sum())} of "
                f"{len(gaps)} rows ({len(filled)} imputation{'s' if len(filled) > 1 else ''}, "
                f"{kwargs.get('method', 'rk4')}), {time.perf_counter() - t_start:.2f} s; "
                f"saved {out}")

    def _impute(self, field, z, known, rng, method, steps, resample=1):
        """Rows ``z`` (n, d) in data units with the coordinates not ``known`` drawn by
        replacement, from noise drawn from ``rng``; in data units."""
        x1 = self.to_network(z).astype(self.model.dtype)
        x0 = self.draw_source(len(z), rng).astype(self.model.dtype)
        with _integrating("integrating the flow failed"):
            x = imputation.impute(field, x0, x1, known, self.path, method, steps, resample, rng)
        return self.to_data(x)

    def _table_schema(self, what):
        if self.table is None:
            raise ValueError(f"{what} needs a model of a table (trained on rows with categories "
                             f"or missing cells); this model is of {self.describe()}")
        return self.table

    # --- densities and encodings ------------------------------------------------------------------
    def log_prob(self, x, rng=None, divergence="auto", n_probes=None, method="rk4", steps=None,
                 **solver):
        """``log p(x)`` (n,) of rows in data units, in nats, and the LogLikelihood.

        ``log p_x(x) = log p_z(z) + log|det dz/dx|`` (Chen et al. 2018, Thm. 1) with ``log p_z``
        from :func:`npflow.likelihood.log_likelihood` (the source's density for a built-in
        target). A dequantized flow scores ``x + u``, ``u ~ U[0, 1)`` drawn from ``rng``, which
        also draws Hutchinson's probes when the divergence is estimated.
        """
        self.refuse_table("log_prob")
        if not self.has_density:
            raise ValueError("this flow's source has no density (rows of data, or a 2-D source "
                             "without a closed form), so its rows have none either")
        log_p0 = None if self.on_rows else _source_log_density(self.config["source"])
        x, steps = self.check_rows(x), _likelihood_steps(method, steps)
        with _integrating("integrating the likelihood failed"):
            return likelihood.log_likelihood_of_rows(
                self.model, x, rng, self.transform, divergence, n_probes, log_p0=log_p0,
                method=method, steps=steps, **solver)

    def encode(self, x, method="rk4", steps=None, **solver):
        """Rows (n, d) to noise: the flow integrated from t = 1 back to t = 0 (network space)."""
        self.refuse_table("encode")
        z1 = self.to_network(self.check_rows(x)).astype(self.model.dtype)
        steps = _likelihood_steps(method, steps)
        with _integrating("integrating the flow backwards failed"):
            sol = solvers.solve(self.model, z1, method, steps, t0=1.0, t1=0.0, **solver)
        return sol.x.astype(np.float64)

    def refuse_table(self, what):
        """Raise a one-line ValueError naming ``what`` (log_prob, encode: maps of rows of
        numbers with a density) when this flow is of a table, whose categories, integers and
        missing cells have probabilities, not a density."""
        if self.table is not None:
            raise ValueError(f"{what}: this model is of a table, whose categories, integers and "
                             f"missing cells have probabilities, not a density; compare it with "
                             f"held-out rows by evaluate")

    def decode(self, z, method="rk4", steps=None, **solver):
        """Noise (n, d) in the network's space to rows in data units (t = 0 to 1)."""
        z = _checks.points(z, "z", dim=self.dim, dtype=self.model.dtype)
        return self.to_data(sampling.sample_flow(self.model, z, method=method, steps=steps,
                                                 **solver).x)

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, n=2000, rng=None, held_out=None, divergence="auto", n_probes=None,
                 method="rk4", steps=None, train=None, target_column=None, **solver):
        """Sample metrics beside their floors, and the held-out NLL: an :class:`Evaluation`
        (a dict); for a model of a table, the report of :meth:`evaluate_table` (``train``,
        ``target_column`` are its).

        ``n`` generated points are compared with ``n`` reference points (fresh points of a
        built-in target, or ``held_out`` rows (m, d) of a flow of rows) by W2, MMD^2 (one RBF
        bandwidth: the median distance of the reference) and the energy distance; each metric's
        ``*_floor`` is the same metric between two reference sets of the same law, what a
        perfect model would score. ``nll`` is the mean negative log-likelihood in nats of the
        held-out rows (of ``n`` fresh target points), with ``bits_per_dim`` when dequantized, and
        ``nll_floor`` the target's entropy where it is known (the checkerboard: log 32).
        """
        rng = _checks.generator(np.random.default_rng(0) if rng is None else rng)
        if self.table is not None:
            if divergence != "auto" or n_probes is not None:
                raise _checks.OptionError("{0} and {1} are for a likelihood; a model of a table "
                                          "is scored by its report", "divergence", "n_probes")
            return self.evaluate_table(held_out, rng, n, train, target_column, method=method,
                                       steps=steps, **solver)
        given = [name for name, value in (("train", train), ("target_column", target_column))
                 if value is not None]
        if given:
            raise _checks.OptionError(_checks.listed(len(given), ("applies", "apply")) +
                                      " to a model of a table only", *given)
        likelihood.check_divergence(divergence, n_probes)  # before any work
        steps, n = _likelihood_steps(method, steps), _checks.integer(n, "n", 2)
        if self.on_rows != (held_out is not None):
            raise _checks.OptionError(
                "{0} scores a model trained on rows; a model of a built-in target is scored on "
                "fresh points" if held_out is not None else
                "this model was trained on rows of data: score it on held-out rows ({0})",
                "held_out")
        if self.source_is_data:
            raise _checks.OptionError("a data-to-data model has no source density and no source "
                                      "to draw from: map source rows ({0}) instead",
                                      "source_rows")
        if held_out is not None:
            held_out = self.check_rows(held_out, "held_out")
            if len(held_out) < 4:
                raise _checks.refuse("held_out", f"needs at least 4 rows (2 to compare with the "
                                                 f"samples, 2 for the floor), got {len(held_out)}")
            n = min(n, len(held_out) // 2)
        _checks.affordable(metrics.pairwise_bytes(n), f"evaluate with n = {n} (W2, MMD and the "
                           f"energy distance compare every pair of points)")
        solver = {"method": method, "steps": steps, **solver}
        generated, sol = next(self.sample_chunks(n, rng, chunk_size=n, **solver))
        if held_out is None:
            target = self.config["target"]
            reference, nll_rows, floor_set = (datasets.sample(target, n, rng) for _ in range(3))
        else:
            shuffled = held_out[rng.permutation(len(held_out))]
            reference, floor_set, nll_rows = shuffled[:n], shuffled[n:2 * n], held_out
        result = {"n": n, "nfe": sol.nfe, **_sample_metrics(generated, reference, floor_set)}
        result.update(self._nll(nll_rows, rng, divergence, n_probes, solver))
        checkerboard = self.config["target"] == "checkerboard"
        result["precision"] = datasets.checkerboard_precision(generated) if checkerboard else None
        result["nll_floor"] = float(np.log(32)) if checkerboard else None  # its entropy
        return Evaluation(result, method=method)

    def evaluate_table(self, held_out, rng, n=2000, train=None, target_column=None, **solver):
        """Score ``n`` generated rows of a table against held-out rows: a
        :class:`~npflow.tabular.TableEvaluation`.

        The quality report (:func:`npflow.report.quality_report`, the held-out rows as the real
        table: column shapes, column pair trends, overall, missing shares); with the training
        rows ``train``, the distance to the closest training row of synthetic and held-out rows
        (:func:`npflow.report.closest_records`); with a categorical ``target_column`` (default:
        the label column), machine-learning efficiency (:func:`npflow.tabular.efficiency`).
        ``solver``: as :meth:`sample_table`.
        """
        schema = self._table_schema("evaluate_table")
        if held_out is None:
            raise _checks.OptionError("this model is of a table: score it on held-out rows "
                                      "({0})", "held_out")
        held_out = schema.checked(held_out, "held_out")
        train = None if train is None else schema.checked(train, "train")
        target = schema.label if target_column is None else target_column
        synthetic = self.sample_table(n, rng, **solver)
        quality = report.quality_report(held_out, synthetic, schema.encoder)
        closest = None if train is None else report.closest_records(synthetic, held_out, train,
                                                                    schema.encoder)
        efficiency = None if target is None else tabular.efficiency(
            schema, target, synthetic, held_out, train, rng)
        return tabular.TableEvaluation(len(synthetic), quality, closest, efficiency)

    def training_table(self):
        """The training rows of a model of a table, read again from the file its checkpoint
        names (without the validation rows); None when it was trained on an array, or the file
        is gone or no longer has the rows it had."""
        info = self.checkpoint.data.info if self.on_rows else {}
        files = info.get("files")
        if self.table is None or not files or not os.path.isfile(files["data"]):
            return None
        read = data.TrainingFiles.from_dict(files)
        table = tabular.read_table(read.data, read.delimiter, read.header)
        if len(table) != info["n"] or table.names != self.table.names:
            return None
        keep = np.ones(len(table), dtype=bool)
        keep[self.checkpoint.data.val_index] = False
        return Table(table.names, table.cells[keep])

    def _nll(self, rows, rng, divergence, n_probes, solver):
        """Mean negative log-likelihood of ``rows`` in nats (and bits/dim when dequantized)."""
        if not self.has_density:
            return {"nll": None}
        probes = {} if divergence == "exact" else {"n_probes": n_probes}
        log_p, ll = self.log_prob(rows, rng, divergence, **probes, **solver)
        result = {"nll": metrics.negative_log_likelihood(log_p)}
        if not self.on_rows:
            return result
        result["nll_rows"] = len(rows)
        if ll.stderr is not None:  # Hutchinson: the probes' noise in the mean
            result["nll_probe_stderr"] = float(np.sqrt(np.sum(ll.stderr ** 2)) / len(rows))
        if self.dequantized:
            result["bits_per_dim"] = bits_per_dim(result["nll"], self.dim)
        return result

    # --- reflow -----------------------------------------------------------------------------------
    def reflow_trainer(self, n_pairs=20000, steps=2000, seed=0, method="rk4", sample_steps=None,
                       source_rows=None, rng=None, **overrides):
        """A :class:`~npflow.train.Trainer` of the next rectified flow (Liu et al. 2023, Alg. 1).

        ``x0`` is drawn from the source (``n_pairs`` points from ``rng``; None: a stream spawned
        off ``seed``, independent of the run's own generator ``default_rng(seed)``), or is
        ``source_rows`` for a data-to-data flow; the flow carries it to ``x1``
        (:func:`npflow.reflow_pairs`, in the network's space), and a copy of the network is
        fitted to the fixed pairs for ``steps`` steps (``overrides``: other TrainConfig fields
        of that run). A flow of rows keeps its transform: the new checkpoint is used like this
        one.
        """
        if self.n_classes:
            raise ValueError("reflow of a class-conditional flow is not supported (the pairs "
                             "carry no labels)")
        seed = _checks.nonnegative_int(seed, "seed")
        if sample_steps is not None:
            sample_steps = _checks.positive_int(sample_steps, "sample_steps")
        if rng is None:
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        source_rows = self.check_source_rows(source_rows)
        if source_rows is None:
            x0 = self.draw_source(_checks.positive_int(n_pairs, "n_pairs"),
                                  _checks.generator(rng))
        else:
            x0 = self.to_network(source_rows, source=True)
        pairs = reflow.reflow_pairs(self.model, x0.astype(self.model.dtype), method, sample_steps)
        parent = TrainConfig.from_dict(self.config)
        data_state = None
        if self.on_rows:
            data_state = dataclasses.replace(self.checkpoint.data, val_losses=np.zeros((0, 2)))
        return reflow.reflow_trainer(self.model, parent, pairs, data_state=data_state,
                                     **{"steps": steps, "seed": seed, **overrides})


class Evaluation(dict):
    """What :meth:`TrainedFlow.evaluate` measures of a flow of points, as a dict (JSON-ready).

    Keys: ``n`` points per set, ``nfe`` velocity evaluations of the sampling solve, ``w2``,
    ``mmd``, ``energy`` and their ``*_floor``, ``nll`` (nats; None without a source density)
    and ``nll_floor``, ``precision`` (the checkerboard, else None); for held-out rows also
    ``nll_rows``, ``nll_probe_stderr`` (Hutchinson) and ``bits_per_dim`` (dequantized).
    """

    def __init__(self, result, method="rk4"):
        super().__init__(result)
        self.method = method

    def to_dict(self):
        return dict(self)

    def summary(self):
        """A short printable table: each metric beside its floor."""
        lines = [f"{self['n']} points per set, {self.method}, {self['nfe']} evaluations",
                 f"  {'':18}{'model':>10}{'floor':>10}   (floor: two reference sets of the same "
                 f"law)"]
        for key, label, fmt in (("w2", "W2 (exact)", ".4f"), ("mmd", "MMD^2 (RBF)", ".5f"),
                                ("energy", "energy distance", ".5f")):
            lines.append(f"  {label:<18}{self[key]:>10{fmt}}{self[key + '_floor']:>10{fmt}}")
        if self["nll"] is not None:
            floor = "" if self["nll_floor"] is None else f"{self['nll_floor']:>10.4f}   (entropy)"
            lines.append(f"  {'NLL (nats)':<18}{self['nll']:>10.4f}{floor}")
        if self.get("bits_per_dim") is not None:
            lines.append(f"  {'bits per dim':<18}{self['bits_per_dim']:>10.4f}   (dequantized: "
                         f"a bound on the discrete NLL)")
        if self["precision"] is not None:
            lines.append(f"  {'precision':<18}{self['precision']:>10.4f}")
        return "\n".join(lines)


@contextlib.contextmanager
def _integrating(what):
    """Report a ValueError raised while integrating as :class:`~npflow.solvers.SolverDiverged`.

    The arguments were checked before; a ValueError here comes from the computation itself (a
    state that became NaN, a network that overflowed), a failure at run time.
    """
    try:
        yield
    except (solvers.SolverDiverged, _checks.OptionError):  # options that do not go together:
        raise  # a usage error, wherever it is found
    except ValueError as err:
        raise solvers.SolverDiverged(f"{what}: {err}") from None


def _likelihood_steps(method, steps):
    """``steps`` of a likelihood integration: None is :data:`LIKELIHOOD_STEPS` (not dopri5)."""
    if steps is None and method != "dopri5":
        return LIKELIHOOD_STEPS
    return solvers.check_steps(method, steps)


def _source_log_density(name):
    """``log p0`` of a built-in source with a closed form, else None."""
    if not datasets.has_density(name):
        return None
    return lambda x: datasets.log_density(name, x)


def _sample_metrics(generated, reference, floor_set):
    """W2, MMD^2 and energy distance of generated vs reference, and reference-vs-floor_set."""
    width = metrics.median_distance(reference)  # one MMD bandwidth for the model and the floor
    out = {}
    for name, metric in (("w2", metrics.wasserstein2),
                         ("mmd", lambda a, b: metrics.mmd_rbf(a, b, bandwidth=width)),
                         ("energy", metrics.energy_distance)):
        out[name] = metric(generated, reference)
        out[f"{name}_floor"] = metric(floor_set, reference)
    return out

