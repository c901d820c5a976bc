"""A table's columns and their invertible encoding into coordinates a flow can learn.

A table as people have it (a CSV file with a header, strings, integers, decimals and missing
cells) is read into a :class:`Table` of text cells (``None`` where a cell is missing).
:class:`TableEncoder` decides what each column is and turns every row into a point ``x`` in
``R^k`` (its *coordinates*) and back, column by column:

===========  ===============================================  =================================
kind         coordinates of a cell with value ``v``           back to a cell
===========  ===============================================  =================================
numeric      ``(v - mean) / scale``                           ``z * scale + mean``, rounded to
                                                              the column's decimal places
integer      ``(v + 1/2 - mean) / scale``; for training       ``floor(z * scale + mean)``,
             ``(v + u - mean) / scale``, ``u ~ U[0, 1)``      clipped to the observed range
             (:meth:`TableEncoder.dequantized`)
categorical  one-hot ``e_j`` of its level ``j`` (``K``        the level of the largest
             coordinates, levels sorted)                      coordinate (argmax)
ignore       none                                             a missing cell
===========  ===============================================  =================================

One-hot is the categorical encoding because it measured better than one dequantized code per
column (level ``j`` as ``j + u``, decoded by ``floor``): on the penguins table, the same flow
(3 x 128, 1,000 steps, seeds 0 and 1) scored overall 0.884 and 0.885 with one-hot against 0.844
and 0.852 with codes, and 0.973 and 0.958 against 0.868 and 0.897 on the categorical columns'
shapes (:func:`npflow.report.quality_report`; ``demos/experiments/penguins_categorical_encoding.py
--seeds 0 1 --steps 1000``).

``mean`` and ``scale`` are the column's observed mean and standard deviation (for integers those
of ``v + u``: mean ``+ 1/2``, variance ``+ 1/12``, as :class:`npflow.transforms.Standardize`
computes them), so every value coordinate has mean 0 and variance 1 on the fitted table.

Missing cells follow the missing-indicator method (a 0/1 indicator of "missing" beside the
filled-in value; see Van Ness, Bosschieter, Halpin-Gregorio and Udell 2023, "The Missing
Indicator Method: From Low to High Dimensions", KDD): a numeric or integer column with gaps gets
one more coordinate ``m`` (1 where the cell is missing) and its value coordinate is filled with
0, the column's mean; a generated cell is missing when ``m > 1/2``. A categorical column with gaps
gets one more level, "missing", whose one-hot coordinate is that indicator; a generated cell is
missing when that coordinate is the largest. Rows with gaps are kept, and
:meth:`TableEncoder.observed` gives the mask of observed cells for imputation. (ForestFlow,
Jolicoeur-Martineau, Fatras and Kachman 2024, AISTATS, trains on rows with gaps as they are,
because its gradient-boosted trees split on a missing value; a network needs a number in every
coordinate, hence the indicator and the fill value.)

The indicators and the regressed fill value measured better than MissDiff's masked loss (Ouyang,
Xie, Li, Ermon and Wu 2023, "MissDiff: Training Diffusion Models on Tabular Data with Missing
Values"), which keeps these coordinates but leaves the value coordinates of missing cells out of
the loss. On the penguins with 15% of their cells removed at random, the same flow (3 x 128, 8000
steps, seeds 0-2) scored overall 0.8375 against 0.8294 on held-out rows, missed the columns'
missing shares by 0.0149 against 0.0475 on average (unpulled level coordinates outvote a
categorical column's "missing" coordinate: sex came out missing in 4% of rows, not 18-21%), and
imputed numeric cells about as well (RMSE 0.8682 against 0.8545 of a standard deviation); on the
table's own few gaps the two did not differ (``demos/experiments/tables_missing.py --seeds 0 1
2``).

The fitted encoder is stored as plain JSON (:meth:`TableEncoder.to_dict`), so it goes into
npflow's pickle-free checkpoint beside the model.
"""
import csv
import gzip
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from . import _checks
from .data import DataError

MISSING_VALUES = ("", "NA", "N/A", "NaN", "nan", "?", "null", "NULL")  # cells read as missing
KINDS = ("numeric", "integer", "categorical", "ignore")
MAX_LEVELS = 50  # a categorical column with more levels would give the one-hot block > 50 coords
IDENTIFIER_SHARE = 0.9  # a string column with distinct values in > 90% of its rows ...
IDENTIFIER_MIN_LEVELS = 20  # ... and at least 20 of them is an identifier, not a category
DATE_SHARE = 0.9  # a string column whose values look like dates in > 90% of its rows is refused
MAX_DECIMALS = 15  # numbers written with more decimal places are written back as Python reprs

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_PLAIN_DECIMAL = re.compile(r"^[+-]?\d*\.(\d+)$")
_DATE = re.compile(r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
                   r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_files")
PENGUINS = os.path.join(_FILES, "penguins.csv.gz")  # see _files/PENGUINS.md


@dataclass(frozen=True, eq=False)
class Table:
    """Columns of text cells with names: what a CSV file holds.

    Attributes
    ----------
    names : tuple of str
        The ``d`` column names, distinct.
    cells : (n, d) object ndarray
        Each cell a ``str``, or ``None`` where it is missing.
    """

    names: tuple
    cells: np.ndarray

    def __post_init__(self):
        names = tuple(self.names)
        cells = np.asarray(self.cells, dtype=object)
        if cells.ndim != 2 or cells.shape[1] != len(names):
            raise ValueError(f"cells must have shape (n, {len(names)}) to match names, got "
                             f"shape {cells.shape}")
        if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
            raise ValueError(f"names must be distinct strings, got {names}")
        if not all(cell is None or isinstance(cell, str) for cell in cells.flat):
            raise TypeError("every cell must be a str or None (missing); use as_table() to "
                            "convert numbers")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "cells", cells)

    def __len__(self):
        return self.cells.shape[0]

    def column(self, name):
        """The ``(n,)`` object array of one column's cells."""
        if name not in self.names:
            raise KeyError(f"no column {name!r}; the columns are {', '.join(self.names)}")
        return self.cells[:, self.names.index(name)]

    def missing(self):
        """``(n, d)`` bool: which cells are missing."""
        return np.frompyfunc(lambda cell: cell is None, 1, 1)(self.cells).astype(bool)


def as_table(X, names=None, missing_values=MISSING_VALUES):
    """Return ``X`` as a :class:`Table` of text cells (a Table is returned unchanged).

    Parameters
    ----------
    X : Table or (n, d) array_like
        Cells: strings, numbers or booleans; ``None``, NaN and the strings in ``missing_values``
        (after stripping spaces) are missing.
    names : sequence of str, optional
        Column names for an array; default ``x0, x1, ...`` (as scikit-learn names features).
    missing_values : sequence of str
    """
    if isinstance(X, Table):
        return X
    cells = np.asarray(X, dtype=object)
    if cells.ndim != 2:
        raise ValueError(f"X must be a Table or have shape (n, d), got shape {cells.shape}")
    missing = frozenset(missing_values)
    text = np.empty(cells.shape, dtype=object)
    for index, cell in np.ndenumerate(cells):
        text[index] = _cell_text(cell, missing)
    names = tuple(f"x{j}" for j in range(cells.shape[1])) if names is None else tuple(names)
    return Table(names, text)


def _cell_text(cell, missing):
    """One cell as stripped text, or None when it is missing."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    if isinstance(cell, (float, np.floating)):
        text = repr(float(cell))
    else:
        text = str(cell).strip()
    return None if text in missing else text


def read_csv(path, header=None, missing_values=MISSING_VALUES, delimiter=","):
    """Read a CSV file (``.gz`` too) into a :class:`Table`.

    Parameters
    ----------
    path : str or os.PathLike
    header : bool or None
        Whether the first line names the columns; ``None`` decides from the file (see below).
    missing_values : sequence of str
        Cells (after stripping spaces) read as missing.
    delimiter : str

    The first line is a header when its fields are distinct and non-empty and it is not data: some
    column is numeric below it while its field is not a number, or (in a table of strings only)
    none of its fields occurs again in its column. Without a header the columns are named
    ``x0, x1, ...``.

    Raises
    ------
    DataError
        No such file, no rows, or a line with another number of fields than the first.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as file:
            reader = csv.reader(file, delimiter=delimiter)
            rows, lines = [], []
            for row in reader:
                if row:  # a blank line is no row
                    rows.append([field.strip() for field in row])
                    lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if not rows:
        raise DataError(f"{path} holds no rows")
    width = len(rows[0])
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise DataError(f"{path} line {line} has {len(row)} fields, the first line has "
                            f"{width}")
    missing = frozenset(missing_values)
    cells = np.array([[None if f in missing else f for f in row] for row in rows], dtype=object)
    cells = cells.reshape(len(rows), width)
    if header is None:
        header = _is_header(rows[0], cells[1:])
    if not header:
        return Table(tuple(f"x{j}" for j in range(width)), cells)
    if len(rows) < 2:
        raise DataError(f"{path} has a header line and no data rows")
    names = tuple(rows[0])
    if len(set(names)) != width or "" in names:
        raise DataError(f"{path}: the header names must be distinct and non-empty, got {names}")
    return Table(names, cells[1:])


def _is_header(first, body):
    """Whether the fields ``first`` name the columns of ``body`` ((n, d) cells) rather than hold
    data (the rule in :func:`read_csv`)."""
    if len(body) == 0 or "" in first or len(set(first)) != len(first):
        return False
    numeric_below = [_all_numbers(column) for column in body.T]
    if any(numeric_below):
        return any(num and not _NUMBER.match(field) for num, field in zip(numeric_below, first))
    return not any(field in set(column) for field, column in zip(first, body.T))


def _all_numbers(cells):
    """Whether every observed cell is a number (and at least one is observed)."""
    observed = [cell for cell in cells if cell is not None]
    return bool(observed) and all(_NUMBER.match(cell) for cell in observed)


def write_csv(table, path, missing="NA", delimiter=","):
    """Write a :class:`Table` as CSV (gzipped when ``path`` ends in ``.gz``): the header line,
    then one line per row, missing cells written as ``missing``."""
    if not isinstance(table, Table):
        raise TypeError(f"table must be a Table, got {type(table).__name__}")
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, delimiter=delimiter, lineterminator="\n")
        writer.writerow(table.names)
        for row in table.cells:
            writer.writerow([missing if cell is None else cell for cell in row])


def stack_imputations(tables):
    """K filled copies of one table as one :class:`Table`, one after the other, numbered in a
    first column ``.imp`` (1 .. K), the long format of R's mice."""
    number = np.repeat(np.arange(1, len(tables) + 1).astype(str), len(tables[0]))[:, None]
    cells = np.concatenate([t.cells for t in tables])  # (K n, d)
    return Table((".imp",) + tuple(tables[0].names),
                 np.concatenate([number.astype(object), cells], axis=1))


def load_penguins():
    """The Palmer penguins table shipped with npflow (344 rows, 8 columns, NA cells; CC0;
    provenance in ``npflow/_files/PENGUINS.md``)."""
    return read_csv(PENGUINS, header=True)


@dataclass(frozen=True)
class Column:
    """One column's kind and the numbers that encode it (the fitted state of a column).

    Attributes
    ----------
    name : str
    kind : str
        ``"numeric"``, ``"integer"``, ``"categorical"`` or ``"ignore"``.
    missing : float
        Share of missing cells in the fitted table, in [0, 1].
    levels : tuple of str
        A categorical column's levels, sorted (empty for other kinds).
    low, high : float
        Observed range of a numeric or integer column (0 for other kinds).
    mean, scale : float
        The value coordinate is ``(v - mean) / scale`` (for integers ``v + 1/2`` or ``v + u``).
    decimals : int or None
        Decimal places a numeric or integer column is written with; None (a number written with
        an exponent): written as Python's repr (``int`` for integers).
    fixed : bool
        Whether every value had exactly ``decimals`` places (``3.50``); otherwise trailing zeros
        are dropped (``3.5``, ``42``), as R and pandas write numbers.
    """

    name: str
    kind: str
    missing: float = 0.0
    levels: tuple = ()
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    scale: float = 1.0
    decimals: int | None = None
    fixed: bool = False

    @property
    def has_gaps(self):
        """Whether the fitted column had missing cells (and so an indicator coordinate)."""
        return self.missing > 0 and self.kind != "ignore"

    @property
    def width(self):
        """Number of coordinates the column takes."""
        if self.kind == "ignore":
            return 0
        values = len(self.levels) if self.kind == "categorical" else 1
        return values + int(self.has_gaps)

    def feature_names(self):
        """Names of the column's coordinates (scikit-learn's ``name_level`` for one-hot ones,
        ``missingindicator_name`` for the indicator)."""
        if self.kind == "ignore":
            return []
        values = ([f"{self.name}_{level}" for level in self.levels]
                  if self.kind == "categorical" else [self.name])
        return values + ([f"missingindicator_{self.name}"] if self.has_gaps else [])

    def describe(self):
        """Levels or range, as text for :meth:`TableEncoder.summary`."""
        if self.kind == "categorical":
            shown = ", ".join(self.levels[:4]) + (", ..." if len(self.levels) > 4 else "")
            return f"{len(self.levels)} levels: {shown}"
        if self.kind in ("numeric", "integer"):
            return f"{_format_value(self, self.low)} .. {_format_value(self, self.high)}"
        return "not modelled"


def infer_kind(name, cells, max_levels=MAX_LEVELS):
    """The kind of one column of text cells, or a one-line refusal.

    numeric when every observed cell is a number, integer when every one is moreover a whole
    number, categorical otherwise.

    Raises
    ------
    DataError
        The column is entirely missing, holds dates, looks like an identifier (nearly every value
        a distinct string), or has more than ``max_levels`` levels.
    """
    observed = [cell for cell in cells if cell is not None]
    if not observed:
        raise DataError(f"column {name!r} is entirely missing; drop it or mark it 'ignore'")
    if all(_NUMBER.match(cell) for cell in observed):
        return "integer" if all(float(cell).is_integer() for cell in observed) else "numeric"
    if sum(bool(_DATE.match(cell)) for cell in observed) > DATE_SHARE * len(observed):
        raise DataError(f"column {name!r} holds dates (e.g. {observed[0]!r}); convert it to a "
                        f"number (days since a start date) or mark it 'ignore'")
    _check_levels(name, observed, max_levels)
    return "categorical"


def _check_levels(name, observed, max_levels):
    """Refuse an identifier-like column or one with too many levels (see :func:`infer_kind`)."""
    distinct = len(set(observed))
    if distinct >= IDENTIFIER_MIN_LEVELS and distinct > IDENTIFIER_SHARE * len(observed):
        raise DataError(f"column {name!r} looks like an identifier ({distinct} distinct values in "
                        f"{len(observed)} rows); mark it 'ignore' (--ignore {name}, or "
                        f"column_kinds={{{name!r}: 'ignore'}})")
    if distinct > max_levels:
        raise DataError(f"column {name!r} has {distinct} levels, more than max_levels="
                        f"{max_levels}; group rare levels or mark it 'ignore'")


def fit_column(name, cells, kind=None, max_levels=MAX_LEVELS):
    """The :class:`Column` of one column of text cells (``kind`` None: :func:`infer_kind`)."""
    kind = infer_kind(name, cells, max_levels) if kind is None else kind
    _checks.choice(kind, f"the kind of column {name!r}", KINDS)
    observed = [cell for cell in cells if cell is not None]
    missing = 1.0 - len(observed) / len(cells) if len(cells) else 0.0
    if kind == "ignore":
        return Column(name, kind, missing)
    if not observed:
        raise DataError(f"column {name!r} is entirely missing; drop it or mark it 'ignore'")
    if kind == "categorical":
        _check_levels(name, observed, max_levels)
        return Column(name, kind, missing, levels=tuple(sorted(set(observed))))
    v = _numbers(name, cells, kind)[~_is_none(cells)]  # (n_observed,)
    if kind == "integer":  # statistics of v + u, u ~ U[0, 1): mean + 1/2, variance + 1/12
        mean, scale = v.mean() + 0.5, math.sqrt(v.var() + 1.0 / 12.0)
    else:
        mean, scale = v.mean(), v.std()
        scale = scale if scale > 0 else 1.0  # a constant column is only shifted
    decimals, fixed = _decimals(observed)
    return Column(name, kind, missing, low=float(v.min()), high=float(v.max()), mean=float(mean),
                  scale=float(scale), decimals=decimals, fixed=fixed)


def _decimals(observed):
    """Decimal places of numbers written as text, and whether all have that many; (None, False)
    when one is written with an exponent or more than MAX_DECIMALS places."""
    places = []
    for cell in observed:
        if "e" in cell.lower():
            return None, False
        match = _PLAIN_DECIMAL.match(cell)
        places.append(len(match.group(1)) if match else 0)
    most = max(places)
    return (None, False) if most > MAX_DECIMALS else (most, min(places) == most)


def _is_none(cells):
    """(n,) bool: which cells are None."""
    return np.fromiter((cell is None for cell in cells), dtype=bool, count=len(cells))


def _numbers(name, cells, kind):
    """(n,) float64 values of a numeric or integer column, NaN where missing; DataError (one line,
    naming the column and row) on a cell that is not a number of that kind."""
    v = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if not _NUMBER.match(cell) or (kind == "integer" and not float(cell).is_integer()):
            what = "a whole number" if kind == "integer" else "a number"
            raise DataError(f"column {name!r} row {i}: {cell!r} is not {what} (the column is "
                            f"{kind}; mark it 'categorical' or 'ignore' to keep such cells)")
        v[i] = float(cell)
    return v


def _format_value(column, x):
    """One decoded value of a numeric or integer column as the input wrote it (an integer column
    written ``3.0`` comes back ``3.0``)."""
    if column.decimals is None:
        return str(int(x)) if column.kind == "integer" else repr(float(x))
    text = f"{round(float(x), column.decimals) + 0.0:.{column.decimals}f}"  # + 0.0: no "-0.0"
    if not column.fixed and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def encode_column(column, cells, handle_unknown="error"):
    """The ``(n, width)`` coordinates of one column's text cells (the table in the module
    docstring); integers at ``v + 1/2`` (see :meth:`TableEncoder.dequantized`)."""
    n = len(cells)
    gone = _is_none(cells)  # (n,) missing cells
    if column.kind == "ignore":
        return np.zeros((n, 0))
    if column.kind == "categorical":
        values = _one_hot(column, cells, gone, handle_unknown)  # (n, K)
    else:
        v = _numbers(column.name, cells, column.kind)
        if column.kind == "integer":
            v = v + 0.5  # the middle of [v, v + 1), which floor() maps back to v
        values = np.where(gone, 0.0, (v - column.mean) / column.scale)[:, None]  # (n, 1)
    if not column.has_gaps:
        if gone.any():
            raise DataError(f"column {column.name!r} has missing cells, and had none when the "
                            f"encoder was fitted; refit on a table with gaps in it")
        return values
    return np.concatenate([values, gone[:, None].astype(np.float64)], axis=1)  # indicator last


def _one_hot(column, cells, gone, handle_unknown):
    """(n, K) one-hot rows of a categorical column's observed cells (missing and, with
    ``handle_unknown="ignore"``, unseen levels are rows of zeros)."""
    index = {level: j for j, level in enumerate(column.levels)}
    values = np.zeros((len(cells), len(column.levels)))
    for i, cell in enumerate(cells):
        if gone[i]:
            continue
        j = index.get(cell)
        if j is None:
            if handle_unknown == "error":
                raise DataError(f"column {column.name!r} row {i}: level {cell!r} was not seen in "
                                f"fit (levels {', '.join(column.levels)}); pass "
                                f"handle_unknown='ignore' to encode it as zeros")
            continue
        values[i, j] = 1.0
    return values


def decode_column(column, z, complete=False):
    """One column's ``(n, width)`` coordinates back to ``(n,)`` text cells (None: missing).

    ``complete``: every cell as observed, whatever its missing indicator says (a number from its
    value coordinate, a category as the largest coordinate among the levels); an ignored column
    stays missing.
    """
    n = z.shape[0]
    cells = np.full(n, None, dtype=object)
    if column.kind == "ignore":
        return cells
    if column.kind == "categorical":
        levels = z[:, :len(column.levels)] if complete else z  # (n, K) or with the missing level
        j = np.argmax(levels, axis=1)  # (n,) the largest coordinate; K is the missing level
        for i in range(n):
            if j[i] < len(column.levels):
                cells[i] = column.levels[j[i]]
        return cells
    x = z[:, 0] * column.scale + column.mean  # (n,)
    if column.kind == "integer":
        x = np.clip(np.floor(x), column.low, column.high)
    gone = z[:, 1] > 0.5 if column.has_gaps and not complete else np.zeros(n, dtype=bool)
    for i in range(n):
        if not gone[i]:
            cells[i] = _format_value(column, x[i])
    return cells


class TableEncoder:
    """Columns of a table to coordinates in ``R^k`` and back (scikit-learn's vocabulary).

    Parameters
    ----------
    types : dict, optional
        Column name -> ``"numeric"``, ``"integer"``, ``"categorical"`` or ``"ignore"``, over the
        inferred kind (:func:`infer_kind`); e.g. integer codes of categories -> "categorical".
    handle_unknown : {"error", "ignore"}
        A level not seen in :meth:`fit`: raise, or encode as a one-hot row of zeros
        (as scikit-learn's ``OneHotEncoder``).
    max_levels : int
        Most levels a categorical column may have (:data:`MAX_LEVELS`).
    missing_values : sequence of str
        Strings read as missing when an array (not a :class:`Table`) is given.

    Attributes
    ----------
    columns_ : tuple of Column
        The fitted columns, in input order.
    n_features_in_ : int
    feature_names_in_ : (d,) object ndarray
    categories_ : list
        Per input column, the ``(K,)`` object array of levels of a categorical column, or None.
    feature_columns_ : (k,) int64 ndarray
        The input column each coordinate belongs to.
    """

    def __init__(self, types=None, handle_unknown="error", max_levels=MAX_LEVELS,
                 missing_values=MISSING_VALUES):
        self.types = types
        self.handle_unknown = handle_unknown
        self.max_levels = max_levels
        self.missing_values = missing_values

    def _check_params(self):
        _checks.choice(self.handle_unknown, "handle_unknown", ("error", "ignore"))
        _checks.positive_int(self.max_levels, "max_levels")
        types = {} if self.types is None else self.types
        if not isinstance(types, dict):
            raise TypeError(f"types must be a dict of column name -> kind, got "
                            f"{type(types).__name__}")
        for name, kind in types.items():
            _checks.choice(kind, f"types[{name!r}]", KINDS)
        return types

    def fit(self, X, y=None):
        """Infer (or take from ``types``) each column's kind and fit its encoding; return self.

        Parameters
        ----------
        X : Table or (n, d) array_like
        y : ignored
        """
        types = self._check_params()
        table = as_table(X, missing_values=self.missing_values)
        unknown = sorted(set(types) - set(table.names))
        if unknown:
            raise ValueError(f"types names columns not in the table: {', '.join(unknown)} "
                             f"(the columns are {', '.join(table.names)})")
        if len(table) < 1:
            raise DataError("the table has no rows")
        self._set_columns(tuple(fit_column(name, table.cells[:, j], types.get(name),
                                           self.max_levels)
                                for j, name in enumerate(table.names)))
        return self

    def _set_columns(self, columns):
        self.columns_ = columns
        self.n_features_in_ = len(columns)
        self.feature_names_in_ = np.array([c.name for c in columns], dtype=object)
        self.categories_ = [np.array(c.levels, dtype=object) if c.kind == "categorical" else None
                            for c in columns]
        self.feature_columns_ = np.repeat(np.arange(len(columns)), [c.width for c in columns])

    def _fitted(self):
        if not hasattr(self, "columns_"):
            raise ValueError("this TableEncoder is not fitted yet; call fit(table) first")
        return self.columns_

    def _table(self, X):
        """``X`` as a Table with the fitted columns, in order."""
        columns = self._fitted()
        table = as_table(X, names=[c.name for c in columns] if not isinstance(X, Table) else None,
                         missing_values=self.missing_values)
        if table.names != tuple(c.name for c in columns):
            raise ValueError(f"X must have the fitted columns {', '.join(c.name for c in columns)}"
                             f" in that order, got {', '.join(table.names)}")
        return table

    def transform(self, X):
        """The ``(n, k)`` float64 coordinates of the rows of ``X`` (integers at ``v + 1/2``)."""
        table = self._table(X)
        blocks = [encode_column(c, table.cells[:, j], self.handle_unknown)
                  for j, c in enumerate(self.columns_)]
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(table), 0))

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, z, complete=False):
        """``(n, k)`` coordinates (encoded or generated) back to a :class:`Table` of text cells
        written like the fitted table's; ignored columns come back missing. ``complete``: no
        other missing cell, whatever the missing indicators say (:func:`decode_column`)."""
        columns = self._fitted()
        z = _checks.points(z, "z", dim=len(self.feature_columns_), dtype=np.float64)
        cells = np.empty((z.shape[0], len(columns)), dtype=object)
        for j, column in enumerate(columns):
            cells[:, j] = decode_column(column, z[:, self.feature_columns_ == j], complete)
        return Table(tuple(c.name for c in columns), cells)

    def dequantized(self, z, rng):
        """Return a copy of encoded rows with every observed integer cell moved from ``v + 1/2``
        to ``v + u``, fresh ``u ~ U[0, 1)`` (Theis, van den Oord and Bethge 2016, Sec. 3.1):
        the points a flow is trained on. ``inverse_transform`` maps them back to ``v``.

        Parameters
        ----------
        z : (n, k) array_like
            Rows from :meth:`transform`.
        rng : numpy.random.Generator
        """
        self._fitted()
        rng = _checks.generator(rng)
        z = np.array(_checks.points(z, "z", dim=len(self.feature_columns_), dtype=np.float64))
        start = 0
        for column in self.columns_:
            if column.kind == "integer":
                observed = z[:, start + 1] < 0.5 if column.has_gaps else np.ones(len(z), bool)
                u = rng.random(len(z))  # (n,)
                z[:, start] += np.where(observed, (u - 0.5) / column.scale, 0.0)
            start += column.width
        return z

    def observed(self, X):
        """``(n, d)`` bool: which cells of ``X`` are observed (not missing). The mask of
        coordinates is ``observed(X)[:, feature_columns_]``."""
        return ~self._table(X).missing()

    def values(self, X):
        """Each column's cells as values, for measures on the table (:mod:`npflow.report`): a
        ``(n,)`` float64 array for a numeric or integer column (NaN where missing), the ``(n,)``
        object array of text cells for a categorical one (None where missing), None for an
        ignored one."""
        table = self._table(X)
        return [_numbers(c.name, table.cells[:, j], c.kind) if c.kind in ("numeric", "integer")
                else table.cells[:, j] if c.kind == "categorical" else None
                for j, c in enumerate(self.columns_)]

    def indicators(self):
        """``(k,)`` bool: which coordinates are missing indicators (the last coordinate of each
        column with gaps; for a categorical column, its "missing" level)."""
        columns = self._fitted()
        flags = [[False] * (c.width - 1) + [True] if c.has_gaps else [False] * c.width
                 for c in columns]
        return np.array([f for column in flags for f in column], dtype=bool)

    def get_feature_names_out(self, input_features=None):
        """The ``(k,)`` names of the coordinates: ``name`` for a number, ``name_level`` for a
        one-hot coordinate, ``missingindicator_name`` for an indicator."""
        columns = self._fitted()
        if input_features is not None and list(input_features) != [c.name for c in columns]:
            raise ValueError("input_features must equal feature_names_in_")
        return np.array([f for c in columns for f in c.feature_names()], dtype=object)

    def summary(self):
        """A short printable table: each column's name, kind, levels or range, missing share."""
        columns = self._fitted()
        rows = [("column", "type", "levels / range", "missing")]
        rows += [(c.name, c.kind, c.describe(), f"{100 * c.missing:.1f}%") for c in columns]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3]
                 for row in rows]
        k = len(self.feature_columns_)
        return "\n".join(lines + [f"{len(columns)} columns -> {k} coordinates"])

    def to_dict(self):
        """JSON-safe description of the fitted encoder (for npflow's checkpoint)."""
        columns = self._fitted()
        return {"handle_unknown": self.handle_unknown, "max_levels": self.max_levels,
                "missing_values": list(self.missing_values),
                "columns": [{"name": c.name, "kind": c.kind, "missing": c.missing,
                             "levels": list(c.levels), "low": c.low, "high": c.high,
                             "mean": c.mean, "scale": c.scale, "decimals": c.decimals,
                             "fixed": c.fixed} for c in columns]}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted encoder from :meth:`to_dict`; ValueError (one line) when malformed."""
        keys = {"handle_unknown", "max_levels", "missing_values", "columns"}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"a TableEncoder dict has exactly the keys {', '.join(sorted(keys))};"
                             f" got {got}")
        encoder = cls(handle_unknown=d["handle_unknown"], max_levels=d["max_levels"],
                      missing_values=tuple(d["missing_values"]))
        encoder._check_params()
        try:
            columns = tuple(_column_from_dict(c) for c in d["columns"])
        except (TypeError, KeyError, ValueError) as err:
            raise ValueError(f"malformed TableEncoder column: {err}") from None
        encoder._set_columns(columns)
        return encoder


def _column_from_dict(c):
    """A :class:`Column` from its dict in :meth:`TableEncoder.to_dict`."""
    _checks.choice(c["kind"], "kind", KINDS)
    decimals = None if c["decimals"] is None else int(c["decimals"])
    column = Column(str(c["name"]), c["kind"], float(c["missing"]),
                    tuple(str(level) for level in c["levels"]), float(c["low"]), float(c["high"]),
                    float(c["mean"]), float(c["scale"]), decimals, bool(c["fixed"]))
    if not (math.isfinite(column.scale) and column.scale > 0):
        raise ValueError(f"column {column.name!r} scale must be finite and > 0")
    return column
