"""A flow of a table's rows: the columns stored with the model, and rows in and out of it.

A table (:class:`~npflow.tables.Table`: a header, strings, integers, decimals, missing cells)
is trained on through its coordinates (:class:`~npflow.tables.TableEncoder`): numbers
standardized, integers dequantized afresh every batch, categories one-hot, a missing indicator
beside every column with gaps. :class:`TableSchema` is what the model keeps of the table, as
JSON in its checkpoint (``DataState.info["table"]``): the fitted encoder of every column in the
file's order, and the column (if any) whose levels are the class labels of a conditional flow.
From it, generated coordinates become rows written as the table was: same header, same column
order, category strings, integers in their observed range, missing cells.

The encoder is fitted on the whole table, training and validation rows alike: every level and
every column's gaps must be encodable in every row, the validation rows' too. (The
standardization the network sees on top, :class:`~npflow.transforms.Standardize`, is fitted on
the training rows only, as for any run on rows.)
"""
import numbers
import os
from dataclasses import dataclass

import numpy as np

from . import _checks, data
from .data import DataError
from .tables import Table, TableEncoder, as_table, read_csv


@dataclass(frozen=True, eq=False)
class TableSchema:
    """The columns of a table a flow was trained on (stored with the model).

    Attributes
    ----------
    encoder : TableEncoder
        Fitted on the whole table, every column in the file's order; the label column, if any,
        is a categorical one.
    label : str or None
        The column whose levels are the class labels of a conditional flow: taken out of the
        coordinates, given to the network as ``y`` (level ``j`` of ``encoder``'s sorted levels is
        label ``j``).
    label_counts : tuple of int
        Rows of each label level in the table: unconditional sampling draws labels in these
        proportions, then rows given their label (``p(x, y) = p(y) p(x | y)``).
    features : TableEncoder
        The encoder of every other column (derived): its coordinates are the flow's.
    """

    encoder: TableEncoder
    label: str = None
    label_counts: tuple = ()

    def __post_init__(self):
        if not isinstance(self.encoder, TableEncoder):
            raise TypeError(f"encoder must be a fitted TableEncoder, got "
                            f"{type(self.encoder).__name__}")
        described = self.encoder.to_dict()
        names = [c["name"] for c in described["columns"]]
        if self.label is not None:
            if self.label not in names:
                raise ValueError(f"label {self.label!r} is not a column of the encoder")
            column = self.encoder.columns_[names.index(self.label)]
            if column.kind != "categorical" or len(self.label_counts) != len(column.levels):
                raise ValueError(f"label column {self.label!r} must be categorical with one "
                                 f"count per level")
        described["columns"] = [c for c in described["columns"] if c["name"] != self.label]
        features = TableEncoder.from_dict(described)
        if not len(features.feature_columns_):
            raise DataError("the table has no column to model (every column is ignored or is "
                            "the label)")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "label_counts", tuple(int(c) for c in self.label_counts))

    @classmethod
    def fit(cls, table, types=None, label=None):
        """The schema of ``table``: its columns' kinds (inferred, or ``types``) and encodings.

        Parameters
        ----------
        table : Table or (n, d) array_like
        types : dict, optional
            Column name -> kind, over the inferred kinds (:class:`TableEncoder`); the
            ``column_kinds`` of :class:`~npflow.data.TrainingFiles` and :class:`npflow.Flow`.
        label : str, optional
            A column of class labels (no missing cells); it must be categorical.
        """
        table = as_table(table)
        types = dict(types or {})
        unknown = [name for name in types if name not in table.names]
        if unknown:
            raise _checks.OptionError(f"{{0}} names columns not in the table: "
                                      f"{', '.join(unknown)} (its columns are "
                                      f"{', '.join(table.names)})", "column_kinds")
        if label is not None:
            if label not in table.names:
                raise DataError(f"label column {label!r} is not a column of the table; its "
                                f"columns are {', '.join(table.names)}")
            if types.get(label, "categorical") != "categorical":
                raise DataError(f"label column {label!r} holds class labels, so it is "
                                f"categorical, not {types[label]!r}")
            gone = np.flatnonzero(table.missing()[:, table.names.index(label)])
            if gone.size:
                raise DataError(f"label column {label!r} has {gone.size} missing cells (first: "
                                f"row {gone[0]}); every row needs a label")
            types[label] = "categorical"
        encoder = TableEncoder(types=types).fit(table)
        counts = ()
        if label is not None:
            levels = encoder.columns_[table.names.index(label)].levels
            cells = list(table.column(label))
            counts = tuple(cells.count(level) for level in levels)
        return cls(encoder, label, counts)

    @property
    def names(self):
        """Every column's name, in the file's order."""
        return tuple(c.name for c in self.encoder.columns_)

    @property
    def levels(self):
        """The label column's levels (label ``j`` is ``levels[j]``), empty without one."""
        if self.label is None:
            return ()
        return self.encoder.columns_[self.names.index(self.label)].levels

    @property
    def dim(self):
        """Coordinates ``k`` of a row (the flow's dimension)."""
        return len(self.features.feature_columns_)

    def summary(self):
        """Each column's name, kind, levels or range and missing share (the label's kind says
        so), and the number of coordinates."""
        lines = self.encoder.summary().splitlines()
        if self.label is not None:
            index = 1 + self.names.index(self.label)  # the header line comes first
            lines[index] = lines[index].replace("categorical", "label      ", 1)
        lines[-1] = f"{len(self.names)} columns -> {self.dim} coordinates" + (
            f" and {len(self.levels)} class labels ({self.label})" if self.label else "")
        return "\n".join(lines)

    # --- rows in ----------------------------------------------------------------------------
    def checked(self, table, name="table"):
        """``table`` as a :class:`Table` with this schema's columns in order (ValueError)."""
        table = as_table(table, names=None if isinstance(table, Table) else self.names,
                         missing_values=self.encoder.missing_values)
        if table.names != self.names:
            raise _checks.OptionError(f"{{0}} must have the columns {', '.join(self.names)} in "
                                      f"that order (those the model was trained on), got "
                                      f"{', '.join(table.names)}", name)
        return table

    def features_of(self, table):
        """The :class:`Table` of every column but the label, in order."""
        keep = [j for j, name in enumerate(table.names) if name != self.label]
        return Table(tuple(table.names[j] for j in keep), table.cells[:, keep])

    def labels_of(self, table):
        """``(n,)`` int64 label indices of the label column (DataError on a missing or unseen
        level), or None without a label column."""
        if self.label is None:
            return None
        index = {level: j for j, level in enumerate(self.levels)}
        cells = table.column(self.label)
        for i, cell in enumerate(cells):
            if cell not in index:
                what = "is missing" if cell is None else f"is {cell!r}, not one of " + \
                    ", ".join(self.levels)
                raise DataError(f"label column {self.label!r} row {i} {what}")
        return np.array([index[cell] for cell in cells], dtype=np.int64)

    def coordinates(self, table):
        """``(z, y)``: the ``(n, k)`` coordinates of a table's rows (integers at ``v + 1/2``) and
        their ``(n,)`` labels (None without a label column)."""
        table = self.checked(table)
        return self.features.transform(self.features_of(table)), self.labels_of(table)

    def known(self, table):
        """What imputation holds fixed: ``(z, known)``, both ``(n, k)``.

        ``known`` marks the coordinates of every observed cell and every missing indicator; in
        ``z`` every indicator is 0 ("observed"), so that a missing cell is generated as a value,
        not as a gap. A missing cell of a column that had no gaps when the schema was fitted
        (it has no indicator) is encoded as a stand-in value, its first level or its lowest
        value, and is unknown like any other.
        """
        table = self.checked(table)
        features = self.features_of(table)
        stand_in = np.array([[c.levels[0] if c.kind == "categorical" else repr(c.low)
                              for c in self.features.columns_]], dtype=object)  # (1, d)
        no_indicator = np.array([not c.has_gaps for c in self.features.columns_])  # (d,)
        cells = np.where(features.missing() & no_indicator, stand_in, features.cells)
        z = self.features.transform(Table(features.names, cells))  # (n, k)
        indicators = self.features.indicators()  # (k,)
        z[:, indicators] = 0.0
        observed = self.features.observed(features)[:, self.features.feature_columns_]  # (n, k)
        return z, observed | indicators[None, :]

    def label_index(self, label):
        """The index of a label given as a level (or as an index), for sampling."""
        if label is None or self.label is None:
            return label
        if isinstance(label, str):
            if label not in self.levels:
                raise _checks.OptionError(f"{{0}} {label!r} is not a level of {self.label!r}: "
                                          f"{', '.join(self.levels)}", "label")
            return self.levels.index(label)
        return label

    def draw_labels(self, n, rng):
        """``(n,)`` labels drawn in the table's proportions (``label_counts``)."""
        p = np.asarray(self.label_counts, dtype=np.float64)
        return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)

    # --- rows out ---------------------------------------------------------------------------
    def rows(self, z, y=None, complete=False):
        """Coordinates ``(n, k)`` (and labels ``(n,)``) back to a :class:`Table` in the file's
        column order; ``complete``: no missing cell (:meth:`TableEncoder.inverse_transform`)."""
        features = self.features.inverse_transform(z, complete=complete)
        cells = np.empty((len(features), len(self.names)), dtype=object)
        for j, name in enumerate(self.names):
            if name == self.label:
                cells[:, j] = None if y is None else [self.levels[i] for i in y]
            else:
                cells[:, j] = features.column(name)
        return Table(self.names, cells)

    # --- the checkpoint -----------------------------------------------------------------------
    def to_dict(self):
        """JSON-safe description (stored as ``DataState.info["table"]``)."""
        return {"encoder": self.encoder.to_dict(), "label": self.label,
                "label_counts": list(self.label_counts)}

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict`; ValueError (one line) when malformed."""
        if not isinstance(d, dict) or set(d) != {"encoder", "label", "label_counts"}:
            raise ValueError(f"a table schema has the keys encoder, label, label_counts; got "
                             f"{sorted(d) if isinstance(d, dict) else type(d).__name__}")
        return cls(TableEncoder.from_dict(d["encoder"]), d["label"], tuple(d["label_counts"]))


def dataset(table, types=None, label=None, source="array"):
    """A :class:`~npflow.data.Dataset` of a table's coordinates, its labels and its schema
    (the rows a :class:`~npflow.train.Trainer` trains on)."""
    schema = TableSchema.fit(table, types, label)
    z, y = schema.coordinates(table)
    return data.Dataset(z, y, tuple(schema.features.get_feature_names_out()), source,
                        table=schema)


def read_table(path, delimiter=None, header=None, name="--data"):
    """Read a text file of rows as a :class:`Table` (:func:`npflow.tables.read_csv`); the
    delimiter defaults by extension (``,`` for .csv, tab for .tsv)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{name} file {path!r} does not exist")
    if delimiter is None:
        ext = os.path.splitext(path.lower().removesuffix(".gz"))[1]
        delimiter = {".csv": ",", ".tsv": "\t"}.get(ext)
        if delimiter is None:
            raise data.DataOptionError(_checks.literal(f"{name} {path!r}: a table needs its "
                                                       f"column separator; ") + "give it with {0}",
                                       "delimiter")
    return read_csv(path, header=header, delimiter=delimiter)


def label_name(table, label_column):
    """The name of the label column given by name or index (negative allowed), or None."""
    if label_column is None or isinstance(label_column, str):
        return label_column
    width = len(table.names)
    if not (isinstance(label_column, numbers.Integral) and -width <= label_column < width):
        raise data.DataOptionError(f"{{0}} {label_column!r} is out of range for a table of "
                                   f"{width} columns (use 0..{width - 1} or -{width}..-1)",
                                   "label_column")
    return table.names[int(label_column) % width]


def has_text_or_gaps(table):
    """Whether some cell of ``table`` is missing or not a number: a table, not rows of numbers."""
    for cell in table.cells.flat:
        if cell is None:
            return True
        try:
            float(cell)
        except ValueError:
            return True
    return False


# --- evaluation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Efficiency:
    """Machine-learning efficiency: a classifier of ``target`` from the other columns, trained
    on synthetic rows and on real training rows, both tested on the held-out rows.

    Attributes
    ----------
    target : str
    synthetic : float
        Held-out accuracy of the classifier trained on the synthetic rows.
    real : float or None
        Held-out accuracy of the same classifier trained on the real training rows (None when
        they were not given).
    majority : float
        Share of the held-out rows' most frequent level: what always guessing it scores.
    """

    target: str
    synthetic: float
    real: float = None
    majority: float = 0.0

    def summary(self):
        real = "" if self.real is None else f", trained on real rows {self.real:.4f}"
        return (f"classifier of {self.target} tested on held-out rows: trained on synthetic rows "
                f"{self.synthetic:.4f}{real} (majority level {self.majority:.4f})")


CLASSIFIER = {"hidden": (64,), "epochs": 40}  # npflow.classifier.Classifier, batch 64, Adam 3e-3


def efficiency(schema, target, synthetic, held_out, train, rng):
    """:class:`Efficiency` of ``synthetic`` rows for predicting the categorical column
    ``target`` (rows whose target is missing are left out).

    The features are the other columns' coordinates (:meth:`TableEncoder.transform`); the
    classifier is :class:`npflow.classifier.Classifier` with one hidden layer of 64 units, 40
    epochs (:data:`CLASSIFIER`), its weights and batches drawn from ``rng``.
    """
    from .classifier import Classifier  # only evaluation needs it
    encoder = schema.encoder
    if target not in schema.names:
        raise _checks.OptionError(f"{{0}} {target!r} is not a column: {', '.join(schema.names)}",
                                  "target_column")
    j = schema.names.index(target)
    levels = encoder.columns_[j].levels
    if encoder.columns_[j].kind != "categorical" or len(levels) < 2:
        raise _checks.OptionError(f"{{0}} {target!r} must be a categorical column with at least "
                                  f"two levels", "target_column")
    index = {level: i for i, level in enumerate(levels)}

    def rows(table):
        x = encoder.transform(table)[:, encoder.feature_columns_ != j]  # (n, k - K)
        cells = table.column(target)
        keep = np.array([cell is not None for cell in cells], dtype=bool)
        return x[keep], np.array([index[c] for c in cells[keep]], dtype=np.int64)

    x_test, y_test = rows(held_out)

    def accuracy(table):
        x, y = rows(table)
        model = Classifier(x.shape[1], len(levels), hidden=CLASSIFIER["hidden"], rng=rng)
        return model.fit(x, y, rng, epochs=CLASSIFIER["epochs"]).accuracy(x_test, y_test)

    majority = float(np.max(np.bincount(y_test, minlength=len(levels))) / max(len(y_test), 1))
    return Efficiency(target, accuracy(synthetic), None if train is None else accuracy(train),
                      majority)


@dataclass(frozen=True)
class TableEvaluation:
    """Synthetic rows of a table model scored against held-out rows.

    Attributes
    ----------
    n : int
        Synthetic rows generated.
    quality : QualityReport
        SDMetrics' column shapes, column pair trends, overall score, and missing shares
        (:func:`npflow.report.quality_report`; real = the held-out rows).
    closest : ClosestRecords or None
        Distance to the closest training row of synthetic and of held-out rows
        (:func:`npflow.report.closest_records`); None without the training rows.
    efficiency : Efficiency or None
        None without a target column.
    """

    n: int
    quality: object
    closest: object = None
    efficiency: Efficiency = None

    def summary(self):
        lines = [self.quality.summary()]
        lines.append("distance to closest record: not measured (no training rows given, or "
                     "the training file named in the model is gone or changed)"
                     if self.closest is None else self.closest.summary())
        if self.efficiency is not None:
            lines.append(self.efficiency.summary())
        return "\n".join(lines)

    def to_dict(self):
        """The scores as plain JSON values."""
        q = self.quality
        out = {"n": self.n, "column_shapes": q.column_shapes_score,
               "column_pair_trends": q.column_pair_trends_score, "overall": q.score,
               "columns": {s.columns[0]: {"metric": s.metric, "score": s.score}
                           for s in q.column_shapes},
               "missing": {name: {"real": a, "synthetic": b} for name, a, b in q.missing}}
        if self.closest is not None:
            out["dcr_median_synthetic"] = float(np.median(self.closest.synthetic))
            out["dcr_median_holdout"] = float(np.median(self.closest.holdout))
            out["dcr_share_closer"] = self.closest.share_closer
        if self.efficiency is not None:
            e = self.efficiency
            out["efficiency"] = {"target": e.target, "synthetic": e.synthetic, "real": e.real,
                                 "majority": e.majority}
        return out
