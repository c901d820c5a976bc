"""Finite datasets: a user's own file or array of ``n >= 2`` points in any dimension ``d >= 1``.

Everything that enters npflow from outside passes one boundary check, :func:`check_array` (like
scikit-learn's), and every problem raises :class:`DataError` with a one-line message that names
the argument or file, says what was expected and what to do.

Files :func:`load` reads (and :func:`load_labels`, for a second file of class labels):

==========================  ====================================================================
name                        content
==========================  ====================================================================
``.npy``                    one array, memory-mapped read-only (``np.load(mmap_mode="r")``):
                            a file larger than memory is never loaded whole
``.npz``                    several arrays; ``key`` names the one to use
``.csv`` ``.tsv`` ``.txt``  text, one row per line (also gzipped: ``.csv.gz`` ...); the
                            delimiter is ``,`` / tab / any whitespace; ``#`` starts a comment;
                            an optional header line names the columns
IDX                         the MNIST format (``train-images-idx3-ubyte``, ``.idx``, plain or
                            gzipped); images ``(n, rows, cols)`` become rows of ``rows * cols``
==========================  ====================================================================

Nothing is ever unpickled. Rows are counted from 0 (``x[i]``); line and column numbers in messages
about text files count from 1, as in an editor.

Training on a finite array also needs a seeded train/validation split, :func:`train_val_split`,
and minibatches without replacement, reshuffled every epoch, that resume exactly from a
checkpoint: :class:`EpochSampler`.
"""
import csv
import dataclasses
import gzip
import json
import numbers
import os
import re
import reprlib
import shutil
import zipfile
from dataclasses import dataclass

import numpy as np

from . import _checks

CHUNK_ELEMENTS = 2 ** 20  # entries per chunk in streaming passes over a (memory-mapped) array

_TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": None}  # None: any run of whitespace
_IDX_NAME = re.compile(r"(^|[._-])idx\d?(-ubyte)?(\.gz)?$")
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SUPPORTED = (".npy, .npz, .csv, .tsv, .txt (text also as .csv.gz ...) and IDX files "
              "(train-images-idx3-ubyte, .idx, plain or .gz)")


class DataError(ValueError):
    """A data file or array is missing, unreadable, or not what npflow can train on."""


class DataOptionError(DataError, _checks.OptionError):
    """A :class:`DataError` caused by an option, which its template names (``{0}``, ...) for each
    front end to spell its own way (``label_column`` in Python, ``--label-column`` on the command
    line)."""


class DataTypeError(DataError, TypeError):
    """Entries that are not numbers at all: a sparse matrix, None or a dict in an object array.

    A :class:`DataError`, and a TypeError as NumPy and scikit-learn raise for such input."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A finite dataset, as :func:`load` returns it.

    Attributes
    ----------
    x : (n, d) float32 or float64 ndarray
        The points; a read-only ``np.memmap`` for ``.npy`` files (never loaded whole).
    y : (n,) int64 ndarray or None
        Class labels, when the file had a label column.
    columns : tuple of str or None
        Header names of the ``d`` feature columns of a text file with a header line (of a
        table: the names of its coordinates).
    source : str
        The file's path, or ``"array"``.
    image_shape : (c, h, w) tuple or None
        Each row is an image of this shape, flattened (``d = c h w``): IDX images, arrays of
        shape (n, h, w) or (n, c, h, w), or rows given an ``image_shape``.
    table : TableSchema or None
        For the rows of a table (:mod:`npflow.tabular`): its columns, and ``x`` holds their
        coordinates.
    """

    x: np.ndarray
    y: np.ndarray | None
    columns: tuple | None
    source: str
    image_shape: tuple | None = None
    table: object = None

    @property
    def integer_valued(self):
        """Every value is an integer (pixel intensities, counts): such data can be dequantized.

        A pass over the rows, made only when asked (a memory-mapped file is read once more)."""
        return _integer_valued(self.x)

    @classmethod
    def from_arrays(cls, x, y=None, *, drop_nonfinite=False, image_shape=None, name="X"):
        """A dataset from in-memory points ``x`` (n, d) and optional labels ``y`` (n,).

        Checked with :func:`check_array` and :func:`check_labels`; with ``drop_nonfinite`` the
        labels of the dropped rows are dropped too. ``source`` is ``"array"``; ``image_shape``
        (c, h, w) says each row is an image (:func:`check_image_shape`).
        """
        x, bad = _checked(x, name, 2, drop_nonfinite)
        if y is not None:
            y = np.delete(check_labels(y, len(x), "y"), bad)
        x = np.delete(x, bad, axis=0) if bad.size else x
        shape = None if image_shape is None else check_image_shape(image_shape, x.shape[1])
        return cls(x, y, None, "array", shape)

    @property
    def n(self):
        """Number of points."""
        return self.x.shape[0]

    @property
    def dim(self):
        """Dimension ``d`` of each point."""
        return self.x.shape[1]


# --- the boundary check ----------------------------------------------------------------------

def check_array(X, name="X", min_rows=2, drop_nonfinite=False, finite=True):
    """Return ``X`` as a floating ``(n, d)`` array after the one boundary check.

    float32 and float64 are kept (a memory map stays a memory map); other real dtypes, and object
    arrays holding numbers, become float64. Finiteness is checked chunk by chunk, so a
    memory-mapped array larger than memory is never loaded whole; ``finite=False`` skips that
    pass, for a caller whose own pass over the rows finds NaN and infinity anyway
    (:meth:`npflow.transforms.Standardize.fit`). The messages use scikit-learn's key words
    ("Reshape your data", "1 sample", "0 feature(s)", "Complex data not supported", "sparse"),
    so that code written against scikit-learn's ``check_array`` recognises them.

    Parameters
    ----------
    X : array_like, shape (n, d)
        The points.
    name : str
        How the message calls ``X``.
    min_rows : int
        Fewest rows accepted (after dropping non-finite rows).
    drop_nonfinite : bool
        Drop the rows holding NaN or infinity (a copy) instead of raising.
    finite : bool
        Check finiteness (a pass over every entry).

    Returns
    -------
    (n, d) float32 or float64 ndarray

    Raises
    ------
    DataError
        Not 2-D, not real numbers (complex, text, bool), too few rows, no columns, or
        NaN/infinity.
    DataTypeError
        (a DataError and a TypeError) A sparse matrix, or an object array holding None or an
        entry that is not a number (a dict, a list).
    """
    arr, bad = _checked(X, name, min_rows, drop_nonfinite, finite)
    return arr if not bad.size else np.delete(arr, bad, axis=0)


def _checked(X, name, min_rows, drop_nonfinite, finite=True):
    """``check_array`` without the dropping: returns the array and its non-finite rows (k,)."""
    ref = name if name.isidentifier() else "x"  # the array's name in the advice
    arr = X if isinstance(X, np.ndarray) else _as_array(X, name, ref)
    _check_dtype(arr, name, ref)
    _check_shape(arr, name, ref, min_rows)
    if arr.dtype == object:
        arr = _object_as_float(arr, name, f"give numbers only ({ref}.astype(float) parses numbers "
                                          f"written as text; np.nan marks a missing value, "
                                          f"dropped with drop_nonfinite=True)")
    elif arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    bad = _nonfinite_rows(arr) if finite else np.zeros(0, dtype=np.int64)
    if bad.size and not drop_nonfinite:
        text = f"{name} has {_n_rows(bad.size)} with NaN or infinity (first: row {bad[0]}); "
        raise DataOptionError(_checks.literal(text) + "set {0} to drop them", "drop_nonfinite")
    if bad.size:
        after = f" left after dropping {_n_rows(bad.size)} with NaN or infinity"
        _check_rows(arr.shape[0] - bad.size, name, min_rows, after)
    return arr, bad


def _n_rows(k):
    return f"{k} row" if k == 1 else f"{k} rows"


def _as_array(X, name, ref):
    """``X`` as an ndarray; a sparse matrix (anything with ``toarray`` and ``format``, like
    scipy.sparse's) is refused rather than made into a 0-D object array."""
    if hasattr(X, "toarray") and hasattr(X, "format"):
        shape = getattr(X, "shape", None)
        size = "" if shape is None else f" ({_dense_size(shape)} as float64)"
        raise DataTypeError(f"{name} is sparse ({X.format} format, shape {shape}), but sparse "
                            f"input is not supported: npflow needs a dense array; use "
                            f"{ref}.toarray() if it fits in memory{size}")
    try:
        return np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise DataError(f"{name} is not a rectangular array ({err})") from None


def _dense_size(shape):
    nbytes = 8 * int(np.prod(shape))
    return _checks.gib(nbytes) if nbytes >= 2 ** 20 else "under 1 MiB"


def _check_dtype(arr, name, ref):
    """Real numbers, or objects (converted once the shape is right)."""
    if arr.dtype.kind == "c":
        raise DataError(f"{name} holds complex numbers (dtype {arr.dtype}). Complex data not "
                        f"supported: give real columns, e.g. np.hstack([{ref}.real, {ref}.imag])")
    if arr.dtype.kind not in "iufO":
        raise DataError(f"{name} must hold real numbers, got dtype {arr.dtype}; "
                        f"convert it with {ref}.astype(float) if that is meaningful")


def _check_shape(arr, name, ref, min_rows):
    """2-D, with at least one column and ``min_rows`` rows."""
    if arr.ndim < 2:
        raise DataError(f"{name} must be 2-D (n, d), got shape {arr.shape}. Reshape your data "
                        f"with {ref}.reshape(-1, 1) for one feature, {ref}.reshape(1, -1) for "
                        f"one row")
    if arr.ndim != 2:
        raise DataError(f"{name} must be 2-D (n, d), got shape {arr.shape}: flatten each point "
                        f"with {ref}.reshape(len({ref}), -1)")
    if arr.shape[1] == 0:
        raise DataError(f"{name} has no columns: 0 feature(s) (shape={arr.shape}) while a "
                        f"minimum of 1 is required; each row needs at least one feature")
    _check_rows(arr.shape[0], name, min_rows)


def _object_as_float(arr, name, advice):
    """An object array of Python numbers as float64; text, None and other objects are refused.

    Text is refused even when it reads as a number, as a string array is, and None is not taken
    for NaN (NumPy's cast would); ``advice`` says what to give instead. The entries are visited
    in Python (an object array is in memory anyway)."""
    refused = np.frompyfunc(lambda v: v is None or isinstance(v, (str, bytes)), 1, 1)(arr)
    if refused.astype(bool).any():
        where = tuple(int(i) for i in np.argwhere(refused.astype(bool))[0])
        value = arr[where]
        error = DataTypeError if value is None else DataError
        what = "None" if value is None else f"text ({_short(value)})"
        raise error(f"{name} is an object array holding {what} at {list(where)} where numbers "
                    f"are expected; {advice}")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as err:
        first = next(((i, v) for i, v in np.ndenumerate(arr) if not _is_real(v)), None)
        at = "" if first is None else f" ({_short(first[1])} at {list(first[0])})"
        raise DataTypeError(f"{name} is an object array holding something that is not a real "
                            f"number{at}: {str(err).splitlines()[0].rstrip('.')}; "
                            f"{advice}") from None


def _short(value):
    """A short one-line repr of ``value``, for a message."""
    return " ".join(reprlib.repr(value).split())


def _is_real(value):
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _check_rows(n, name, min_rows, after=""):
    if n < min_rows:
        sample = "1 sample" if n == 1 else f"{n} samples"
        raise DataError(f"{name} needs at least {_n_rows(min_rows)}, got {sample}{after}")


def row_chunks(x, rows=None):
    """Yield consecutive row blocks of ``x`` (n, d) of about :data:`CHUNK_ELEMENTS` entries each.

    ``rows`` (m,): the blocks are ``x[rows[...]]``, these rows only, in their order."""
    step = max(1, CHUNK_ELEMENTS // max(1, x.shape[1]))
    if rows is None:
        for start in range(0, x.shape[0], step):
            yield x[start:start + step]
        return
    for start in range(0, len(rows), step):
        yield x[rows[start:start + step]]


def _nonfinite_rows(x):
    """Indices (k,) of the rows of ``x`` (n, d) holding NaN or infinity, one chunk at a time."""
    bad, start = [np.zeros(0, dtype=np.int64)], 0
    for chunk in row_chunks(x):
        bad.append(start + np.flatnonzero(~np.isfinite(chunk).all(axis=1)))
        start += len(chunk)
    return np.concatenate(bad)


def _integer_valued(x):
    """Whether every entry of the finite array ``x`` (n, d) is an integer, one chunk at a time."""
    return all(bool(np.all(chunk == np.round(chunk))) for chunk in row_chunks(x))


def check_labels(y, n, name="labels"):
    """Return class labels ``y`` as an ``(n,)`` int64 array of integers ``>= 0``.

    Integral floats (``3.0``, as read from a text file) and object arrays of Python integers are
    accepted; an ``(n, 1)`` column is squeezed. There is no upper bound: a run learns its number
    of classes from these labels. Labels given to a model that knows its number of classes are
    checked by :func:`npflow._checks.classes` instead (integers in ``0 .. K-1`` only).

    Raises
    ------
    DataError
        Wrong shape or length, not integers (the first bad row is named), NaN/infinity, or
        negative; a :class:`DataTypeError` for an object array holding None or non-numbers.
    """
    n = _checks.positive_int(n, "n")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D ({n},), got shape {arr.shape}")
    if len(arr) != n:
        raise DataError(f"{name} has {len(arr)} entries but the data has {n} rows; "
                        f"they must match one to one")
    if arr.dtype == object:
        ref = name if name.isidentifier() else "y"
        arr = _object_as_float(arr, name, f"give integer class labels (np.unique({ref}, "
                                          f"return_inverse=True)[1] numbers the classes 0 .. K-1)")
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{name} must be integer class labels, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError(f"{name} row {bad[0]} is {arr[bad[0]]} ({_n_rows(bad.size)} with NaN "
                            f"or infinity); every row needs an integer class label")
        frac = np.flatnonzero(arr != np.round(arr))
        if frac.size:
            raise DataError(f"{name} row {frac[0]} is {arr[frac[0]]}, expected an integer "
                            f"class label ({frac.size} such rows)")
    negative = np.flatnonzero(arr < 0)
    if negative.size:
        raise DataError(f"{name} row {negative[0]} is {arr[negative[0]]}; "
                        f"class labels must be integers >= 0")
    return arr.astype(np.int64)


# --- files -----------------------------------------------------------------------------------

def load(path, *, key=None, delimiter=None, header=None, label_column=None, drop_nonfinite=False,
         image_shape=None, name="--data"):
    """Read a dataset file (see the module docstring for the formats).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    key : str, optional
        ``.npz`` only: the array to use (not needed when the file holds one array).
    delimiter : str, optional
        Text only: one character; default ``,`` for csv, tab for tsv, any whitespace for txt.
    header : bool, optional
        Text only: whether line 1 names the columns. Default: detected (the first row has a
        non-numeric cell while the second row is all numbers).
    label_column : int or str, optional
        Text only: the column (index, negative allowed, or header name) holding class labels,
        removed from ``x`` and returned as ``y``.
    drop_nonfinite : bool
        Drop rows with NaN or infinity instead of raising (this copies a memory map).
    image_shape : (c, h, w), optional
        Each row is an image of this shape (a CSV of pixels); arrays of images and IDX files
        carry their own.
    name : str
        How messages call the file (the CLI option).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        With a one-line message naming the file and the problem.
    """
    path = os.fspath(path)
    kind = _file_kind(path, name)
    if kind != "npz" and key is not None:
        raise _checks.refuse("key", f"applies to .npz files only, but {name} is {path!r}",
                             DataOptionError)
    given = [option for option, value in (("delimiter", delimiter), ("header", header),
                                          ("label_column", label_column)) if value is not None]
    if kind != "text" and given:
        hint = "; give labels of other files with {%d}" % len(given)
        only = _checks.literal(f" to text files only, but {name} is {path!r}")
        raise DataOptionError(_checks.listed(len(given), ("applies", "apply")) + only +
                              (hint if "label_column" in given else ""), *given, "labels")
    where = f"{name} {path!r}"
    x, columns = _read(kind, path, where, key, delimiter, header)
    if kind == "idx" and x.ndim == 1:
        raise DataOptionError(_checks.literal(f"{where} is a 1-D IDX file of {len(x)} labels, not "
                                              f"data; ") + "give it as {0}", "labels")
    x, shape = _rows_of_images(x)
    x = check_array(x, where, drop_nonfinite=drop_nonfinite)
    y = None
    if label_column is not None:
        x, y, columns = _split_labels(x, columns, label_column, where)
    if image_shape is not None:
        if shape is not None:
            raise _checks.OptionError(f"{{0}}: {where} holds images of shape {shape} already",
                                      "image_shape")
        shape = check_image_shape(image_shape, x.shape[1])
    return Dataset(x, y, columns, path, shape)


def _rows_of_images(x):
    """Images (n, h, w) or (n, c, h, w) as flat rows (n, c h w) and their (c, h, w); rows as
    they are, with None."""
    if x.ndim == 3:
        return x.reshape(len(x), -1), (1, *x.shape[1:])
    if x.ndim == 4:
        return x.reshape(len(x), -1), tuple(x.shape[1:])
    return x, None


def check_image_shape(image_shape, d):
    """``image_shape`` as a (c, h, w) tuple of positive ints whose product is ``d``."""
    try:
        shape = tuple(_checks.positive_int(int(s), "image_shape") for s in image_shape)
    except (TypeError, ValueError):
        raise _checks.OptionError(f"{{0}} must be (c, h, w), positive integers, got "
                                  f"{image_shape!r}", "image_shape") from None
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or int(np.prod(shape)) != d:
        raise _checks.OptionError(f"{{0}} {shape} must be (h, w) or (c, h, w) with c h w = "
                                  f"{d}, the number of columns", "image_shape")
    return shape


def _kinds_of_pairs(pairs):
    """``{name: kind}`` of ``(name, kind)`` pairs, refusing a column given two kinds."""
    kinds = {}
    for name, kind in pairs:
        if kinds.setdefault(name, kind) != kind:
            raise _checks.OptionError(f"{{0}} gives column {_checks.literal(repr(name))} two "
                                      f"kinds, {kinds[name]} and {kind}", "column_kinds")
    return kinds or None


@dataclass(frozen=True)
class TrainingFiles:
    """Where a run's rows come from: files and reading options, stored in its checkpoint.

    ``data`` is read with :func:`load` (``key``, ``delimiter``, ``header``, ``label_column``,
    ``drop_nonfinite``); ``labels`` is a second file of class labels (:func:`load_labels`);
    ``source_data`` holds the rows of a source distribution (a data-to-data flow), read with
    the same options but no label column. Paths are stored absolute, so that a run resumed from
    another folder reads the same files.

    ``table``: read ``data`` as a table (:func:`npflow.tables.read_csv`: strings, integers,
    missing cells) and train on its coordinates (:mod:`npflow.tabular`); None decides from the
    file: a text file that is not all numbers (some cell missing or not a number) is a table.
    ``column_kinds`` (column name -> kind, :data:`npflow.tables.KINDS`, or ``(name, kind)``
    pairs, as repeated command-line options give them, each name once) overrides the inferred
    kinds of a table's columns; a table's ``label_column`` may hold strings.
    """

    data: str = None
    labels: str = None
    source_data: str = None
    key: str = None
    delimiter: str = None
    header: bool = None
    label_column: object = None
    drop_nonfinite: bool = False
    image_shape: tuple = None
    table: bool = None
    column_kinds: dict = None

    def __post_init__(self):
        if self.column_kinds is not None and not isinstance(self.column_kinds, dict):
            object.__setattr__(self, "column_kinds", _kinds_of_pairs(self.column_kinds))
        given = [f for f in ("labels", "source_data", "key", "delimiter", "header",
                             "label_column", "drop_nonfinite", "image_shape", "table",
                             "column_kinds")
                 if getattr(self, f) not in (None, False)]
        if self.data is None and given:
            raise _checks.OptionError(_checks.listed(len(given), ("needs", "need")) +
                                      " {%d} (rows of your own)" % len(given), *given, "data")
        if self.labels is not None and self.label_column is not None:
            raise _checks.OptionError("give class labels either with {0} or with {1}, not both",
                                      "labels", "label_column")
        if self.labels is not None and self.drop_nonfinite:
            raise _checks.OptionError("{0} cannot keep a separate {1} file aligned with the rows "
                                      "it drops: put the labels in a column ({2}) instead",
                                      "drop_nonfinite", "labels", "label_column")
        if self.column_kinds is not None and self.table is False:
            raise _checks.OptionError("{0} set the kinds of a table's columns, so {1} cannot "
                                      "be off", "column_kinds", "table")
        for name in ("data", "labels", "source_data"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, os.path.abspath(getattr(self, name)))

    def load(self):
        """``(rows, labels, source)``: the :class:`Dataset` of ``data``, its labels (n,) or
        None, and the Dataset of ``source_data`` or None (each checked once, as it is read)."""
        read = {"key": self.key, "delimiter": self.delimiter, "header": self.header,
                "drop_nonfinite": self.drop_nonfinite}
        if self.table or self.column_kinds is not None:
            return self._load_table()
        try:
            table = load(self.data, name="--data", label_column=self.label_column,
                         image_shape=self.image_shape, **read)
        except DataError:
            if self.table is None and _file_kind(self.data, "--data") == "text":
                found = self._read_if_table()
                if found is not None:
                    return self._load_table(found)
            raise
        labels = table.y
        if self.labels is not None:
            labels = load_labels(self.labels, table.n, name="--labels")
        source = None
        if self.source_data is not None:
            source = load(self.source_data, name="--source-data", **read)
        return table, labels, source

    def _read_if_table(self):
        """The file as a :class:`~npflow.tables.Table` when it has missing or non-numeric cells
        (None when it does not, or cannot be read as a table)."""
        from . import tabular  # tabular builds on this module
        try:
            table = tabular.read_table(self.data, self.delimiter, self.header)
        except DataError:
            return None
        return table if tabular.has_text_or_gaps(table) else None

    def read_table(self):
        """``data`` as a :class:`~npflow.tables.Table`, the rows a model of a table scores or
        fills in (its own schema names the label column)."""
        from . import tabular  # tabular builds on this module
        if self.label_column is not None:
            raise _checks.OptionError("{0} does not apply: a model of a table knows its label "
                                      "column", "label_column")
        self._check_table_options()
        return tabular.read_table(self.data, self.delimiter, self.header)

    def _check_table_options(self):
        """Refuse the options of rows of numbers, and a file that is not text, for a table."""
        refused = [name for name in ("drop_nonfinite", "source_data", "key", "image_shape")
                   if getattr(self, name) not in (None, False)]
        if refused:
            name = refused[0]
            raise _checks.OptionError("{0} applies to rows of numbers; {1} is read as a table "
                                      "(its rows with missing cells are kept)", name, "data")
        if _file_kind(self.data, "--data") != "text":
            raise _checks.OptionError(f"{{0}} {self.data!r} is not a text file (.csv, .tsv, "
                                      f"or .gz), so it cannot be read as a table", "data")

    def _load_table(self, table=None):
        """``(rows, labels, None)`` of a table: its coordinates and its schema
        (:mod:`npflow.tabular`)."""
        from . import tabular  # tabular builds on this module
        self._check_table_options()
        if table is None:
            table = tabular.read_table(self.data, self.delimiter, self.header)
        rows = tabular.dataset(table, self.column_kinds,
                               tabular.label_name(table, self.label_column), source=self.data)
        labels = rows.y
        if self.labels is not None:
            labels = load_labels(self.labels, rows.n, name="--labels")
        return rows, labels, None

    def to_dict(self):
        values = dataclasses.asdict(self)
        if self.image_shape is not None:
            values["image_shape"] = list(self.image_shape)
        return values

    @classmethod
    def from_dict(cls, values):
        """From :meth:`to_dict`, or the nested form ``{"data", "read": {...}, ...}`` of older
        checkpoints."""
        values = dict(values)
        values.update(values.pop("read", None) or {})
        if values.get("image_shape") is not None:
            values["image_shape"] = tuple(values["image_shape"])
        return cls(**values)


def load_labels(path, n, name="--labels"):
    """Read ``n`` class labels from a second file; returns an ``(n,)`` int64 array.

    The file is a ``.npy`` / ``.npz`` array, a one-column text file (a header line is allowed),
    or an IDX labels file (``train-labels-idx1-ubyte``, plain or gzipped). Checked with
    :func:`check_labels`.
    """
    path = os.fspath(path)
    kind = _file_kind(path, name)
    where = f"{name} {path!r}"
    y, _ = _read(kind, path, where)
    return check_labels(y, n, where)


def _file_kind(path, name):
    """``"npy"``, ``"npz"``, ``"text"`` or ``"idx"``, after checking the file exists, not empty."""
    if not os.path.exists(path):
        raise DataError(f"{name} file {path!r} does not exist")
    if os.path.isdir(path):
        raise DataError(f"{name} {path!r} is a folder; give a data file ({_SUPPORTED})")
    if os.path.getsize(path) == 0:
        raise DataError(f"{name} file {path!r} is empty")
    base = os.path.basename(path).lower()
    if _IDX_NAME.search(base):
        return "idx"
    ext = os.path.splitext(base[:-3] if base.endswith(".gz") else base)[1]
    if ext in (".npy", ".npz") and not base.endswith(".gz"):
        return ext[1:]
    if ext in _TEXT_DELIMITERS:
        return "text"
    raise DataError(f"{name} {path!r} has an unknown extension; supported: {_SUPPORTED}")


def _read(kind, path, where, key=None, delimiter=None, header=None):
    """The array in the file (and the text header's column names, or None)."""
    try:
        if kind == "npy":
            return _read_npy(path, where), None
        if kind == "npz":
            return _read_npz(path, key, where), None
        if kind == "idx":
            return read_idx(path), None
        return _read_text(path, delimiter, header, where)
    except (OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as err:
        raise DataError(f"{where} could not be read ({type(err).__name__}: {err})") from None


def _read_npy(path, where):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataError(f"{where} is not a .npy file (it does not start with the NumPy magic)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "Python objects" in str(err):
            raise DataError(f"{where} holds Python objects (a pickled array), which npflow never "
                            f"loads; save a numeric array with np.save") from None
        raise DataError(f"{where} is not a readable .npy file ({err})") from None


def _read_npz(path, key, where):
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle any other file
        raise DataError(f"{where} is not a readable .npz file (not a zip archive)")
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if key is None and len(keys) != 1:
            raise DataError(f"{where} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); "
                            f"choose one with key= (--key)")
        key = keys[0] if key is None else key
        if key not in keys:
            raise DataError(f"{where} has no array {key!r}; its arrays are {', '.join(keys)}")
        try:
            return archive[key]
        except ValueError:
            raise DataError(f"{where}: array {key!r} holds Python objects (pickled), which "
                            f"npflow never loads; save numeric arrays with np.savez") from None


def _split_labels(table, columns, label_column, where):
    """Remove the label column from ``table`` (n, D): returns x (n, D - 1), y (n,), columns."""
    width = table.shape[1]
    if isinstance(label_column, str):
        if columns is None:
            text = f"{label_column!r} names a column, but {where} has no header line; "
            raise DataOptionError("{0} " + _checks.literal(text) + "give a column index or set {1}",
                                  "label_column", "header")
        if label_column not in columns:
            raise _checks.refuse("label_column", f"{label_column!r} is not a column of {where}; "
                                 f"its columns are {', '.join(columns)}", DataOptionError)
        j = columns.index(label_column)
    elif isinstance(label_column, numbers.Integral) and not isinstance(label_column, bool):
        if not -width <= label_column < width:
            raise _checks.refuse("label_column", f"{label_column} is out of range for {where} "
                                 f"with {width} columns (use 0..{width - 1} or -{width}..-1)",
                                 DataOptionError)
        j = int(label_column) % width
    else:
        raise TypeError(f"label_column must be a column index or a header name, "
                        f"got {label_column!r}")
    if width == 1:
        raise DataError(f"{where} has only the label column; it needs at least one feature column")
    y = check_labels(table[:, j], len(table), f"label column {label_column!r} of {where}")
    x = np.delete(table, j, axis=1)
    return x, y, None if columns is None else columns[:j] + columns[j + 1:]


# --- text files ------------------------------------------------------------------------------

def _read_text(path, delimiter, header, where):
    """Parse a text table: returns ``(table (n, D) float64, column names or None)``.

    NumPy's ``loadtxt`` reads the numbers; when it fails, the file is scanned again line by line
    to name the line and column at fault.
    """
    if delimiter is None:
        delimiter = _TEXT_DELIMITERS[os.path.splitext(path.lower().removesuffix(".gz"))[1]]
    elif not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise DataError(f"delimiter must be a single character, got {delimiter!r}")
    if header is not None and not isinstance(header, bool):
        raise TypeError(f"header must be True, False or None (detect), got {header!r}")
    first = list(_text_rows(path, delimiter, stop=2))
    if not first:
        raise DataError(f"{where} is empty (no data rows, only blank or comment lines)")
    if header is None:
        header = _looks_like_header(first[0][1]) and len(first) == 2 and _numeric(first[1][1])
        header = header or (len(first) == 1 and _looks_like_header(first[0][1]))
    if header and len(first) == 1:
        raise DataError(f"{where} has a header line but no data rows")
    skip, columns = (first[0][0], tuple(c.strip() for c in first[0][1])) if header else (0, None)
    try:
        with _open_text(path) as f:
            table = np.loadtxt(f, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64,
                               comments="#", quotechar='"' if delimiter else None)
    except ValueError as err:
        _raise_text_error(path, delimiter, skip, columns, where, err)
    if columns is not None and len(columns) != table.shape[1]:
        raise DataError(f"{where}: the header on line {skip} names {len(columns)} columns but the "
                        f"data rows have {table.shape[1]}")
    return table, columns


def _open_text(path):
    """The file as text: gzip detected by name, UTF-8 with or without a BOM, any line endings."""
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _text_rows(path, delimiter, stop=None):
    """Yield ``(line number, cells)`` of the non-blank lines, with ``#`` comments removed."""
    with _open_text(path) as f:
        count = 0
        for lineno, line in enumerate(f, start=1):
            text = line.partition("#")[0]
            if not text.strip():
                continue
            if delimiter is None:
                yield lineno, text.split()
            else:
                yield lineno, next(csv.reader([text], delimiter=delimiter))
            count += 1
            if count == stop:
                return


def _numeric(cells):
    return all(_is_number(cell) for cell in cells)


def _looks_like_header(cells):
    return any(cell.strip() and not _is_number(cell) for cell in cells)


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _raise_text_error(path, delimiter, skip, columns, where, err):
    """Find the first ragged line or non-numeric cell after line ``skip`` and raise about it."""
    width = None if columns is None else len(columns)
    first = skip if columns is not None else None  # the line that fixed the column count
    for lineno, cells in _text_rows(path, delimiter):
        if lineno <= skip:
            continue
        if width is None:
            width, first = len(cells), lineno
        if len(cells) != width:
            raise DataError(f"{where}: line {lineno} has {len(cells)} columns, expected {width} "
                            f"(as on line {first}); every row needs the same number of cells")
        for j, cell in enumerate(cells):
            if not _is_number(cell):
                label = f" ({columns[j]!r})" if columns is not None else ""
                what = "is empty" if not cell.strip() else f"holds {cell.strip()!r}"
                text = f"{where}: line {lineno}, column {j + 1}{label} {what}, expected a number"
                if lineno == 1:
                    raise DataOptionError(_checks.literal(text) + "; if line 1 is a header, "
                                          "set {0}", "header")
                raise DataError(text)
    raise DataError(f"{where} could not be read as a table of numbers ({str(err).splitlines()[0]})")


# --- IDX (MNIST) -----------------------------------------------------------------------------

def read_idx(path):
    """Read an IDX file (the MNIST / Fashion-MNIST format), plain or gzipped.

    Layout: two zero bytes, a type code (``0x08`` ubyte, ``0x09`` byte, ``0x0B`` short, ``0x0C``
    int, ``0x0D`` float, ``0x0E`` double), the number of dimensions ``k``; then ``k`` big-endian
    int32 sizes, then the big-endian data. Gzip is detected by its magic bytes ``1f 8b``.

    Returns
    -------
    ndarray of shape (n, ...) in the file's type (native byte order), e.g. (60000, 28, 28) uint8.

    Raises
    ------
    DataError
        Bad magic, unknown type code, or a size that does not match the dimensions.
    """
    path = os.fspath(path)
    where = f"IDX file {path!r}"
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{where} is a damaged gzip file ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(f"{where} does not start with the IDX magic (two zero bytes, type, ndim)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise DataError(f"{where} has unknown type code 0x{code:02X}; expected one of "
                        f"{', '.join(f'0x{c:02X}' for c in _IDX_TYPES)}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{where} is truncated or has no dimensions in its header (ndim {ndim})")
    dims = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    need = int(np.prod(dims)) * dtype.itemsize
    have = len(raw) - 4 - 4 * ndim
    if min(dims) < 0 or need != have:
        raise DataError(f"{where} has {have} data bytes, but dimensions {dims} of {dtype.name} "
                        f"need {need}")
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


# --- train/validation split and minibatches ---------------------------------------------------

@dataclass(frozen=True, eq=False)
class Split:
    """Sorted row indices of a split: ``train`` (n_train,) and ``val`` (n_val,), both int64."""

    train: np.ndarray
    val: np.ndarray


def train_val_split(n, val_fraction, rng):
    """Split rows ``0 .. n-1`` at random into training and validation rows.

    ``n_val = round(val_fraction * n)``, at least 1 when ``val_fraction > 0``, and at least one
    row is left for training.

    Parameters
    ----------
    n : int
        Number of rows.
    val_fraction : float
        In ``[0, 1)``; 0 gives an empty validation part.
    rng : numpy.random.Generator
        Draws the permutation.

    Returns
    -------
    Split
    """
    n = _checks.positive_int(n, "n")
    val_fraction = _checks.finite_float(val_fraction, "val_fraction", 0.0, 1.0, high_open=True)
    rng = _checks.generator(rng)
    n_val = min(max(round(val_fraction * n), 1 if val_fraction > 0 else 0), n - 1)
    if val_fraction > 0 and n_val == 0:
        raise _checks.OptionError(f"{{0}} {val_fraction} needs at least 2 rows (1 to train, 1 "
                                  f"to validate), got {n}; set {{0}} to 0", "val_fraction")
    perm = rng.permutation(n)  # (n,)
    return Split(np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64))


class EpochSampler:
    """Minibatches of row indices without replacement, reshuffled every epoch.

    Each epoch visits the rows ``0 .. n-1`` in a fresh permutation drawn from ``rng`` (which the
    sampler owns). A batch that crosses the end of an epoch takes the rest of this epoch and
    continues in the next permutation, so every row is used exactly once per epoch, also when
    ``batch_size > n``.

    Resuming is exact and cheap: :meth:`state` records the generator's state at the start of the
    current epoch and the position inside it; :meth:`from_state` draws that epoch's permutation
    again.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    position : int
        Index, in the current epoch's permutation, of the next row to hand out.
    """

    def __init__(self, n, batch_size, rng):
        self.n = _checks.positive_int(n, "n")
        self.batch_size = _checks.positive_int(batch_size, "batch_size")
        self._rng = _checks.generator(rng)
        self.epoch = 0
        self.position = 0
        self._new_permutation()

    def _new_permutation(self):
        self._epoch_state = json.loads(json.dumps(self._rng.bit_generator.state))  # a deep copy
        self._perm = self._rng.permutation(self.n)  # (n,)

    def next_batch(self):
        """Return the next ``(batch_size,)`` int64 row indices."""
        parts, need = [], self.batch_size
        while need:
            take = min(need, self.n - self.position)
            parts.append(self._perm[self.position:self.position + take])
            self.position += take
            need -= take
            if self.position == self.n:
                self.epoch += 1
                self.position = 0
                self._new_permutation()
        return np.concatenate(parts).astype(np.int64)

    def state(self):
        """JSON-serializable state: ``{"n", "epoch", "position", "rng"}`` (rng at epoch start)."""
        return {"n": self.n, "epoch": self.epoch, "position": self.position,
                "rng": json.loads(json.dumps(self._epoch_state))}

    @classmethod
    def from_state(cls, n, batch_size, state):
        """Rebuild a sampler from :meth:`state`; it continues with bit-identical batches."""
        try:
            rng_state, epoch, position = state["rng"], state["epoch"], state["position"]
            bit_generator = getattr(np.random, rng_state["bit_generator"])()
            if not isinstance(bit_generator, np.random.BitGenerator):
                raise ValueError(f"{rng_state['bit_generator']!r} is not a bit generator")
            bit_generator.state = rng_state
        except (TypeError, KeyError, AttributeError, ValueError) as err:
            raise ValueError(f"state is not an EpochSampler state "
                             f"({type(err).__name__}: {err})") from None
        if state.get("n", n) != n:
            raise ValueError(f"state was saved for n = {state['n']} rows, but n = {n}")
        if not (isinstance(position, int) and 0 <= position < n):
            raise ValueError(f"state position must be an integer in [0, {n}), got {position!r}")
        if not (isinstance(epoch, int) and epoch >= 0):
            raise ValueError(f"state epoch must be an integer >= 0, got {epoch!r}")
        sampler = cls(n, batch_size, np.random.Generator(bit_generator))
        sampler.epoch, sampler.position = epoch, position
        return sampler


class RowWriter:
    """Rows written chunk by chunk to a temporary ``.npy`` or ``.csv`` file, renamed over
    ``path`` only when complete.

    The ``.npy`` header is written first (its shape is known), then each chunk's bytes in turn:
    nothing is kept in memory but the chunk, so any number of rows that fits on disk can be
    written. A file that would not fit in the folder's free space is refused before writing.
    """

    def __init__(self, path, n, d, dtype):
        folder = os.path.dirname(os.path.abspath(path))
        self.path, self.csv, self.dtype = path, path.endswith(".csv"), np.dtype(dtype)
        need = n * d * (24 if self.csv else self.dtype.itemsize)
        free = shutil.disk_usage(folder).free
        if need > free:
            raise DataError(f"{n} rows of dimension {d} need about {_checks.gib(need)} on disk "
                            f"for {path}; its folder has {_checks.gib(free)} free")
        self.tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.partial")
        if self.csv:
            self.file = open(self.tmp, "w", encoding="ascii")
        else:
            self.file = open(self.tmp, "wb")
            np.lib.format.write_array_header_1_0(self.file, {
                "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                "shape": (n, d)})

    def write(self, rows):
        """Append the next rows (m, d)."""
        if self.csv:
            np.savetxt(self.file, rows, delimiter=",", fmt="%.9g")
        else:
            self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def close(self, complete=True):
        """Close, and rename over the target when ``complete`` (else delete)."""
        self.file.close()
        if complete:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def save_rows(path, rows):
    """Write (n, k) rows to ``path`` (.npy or .csv) through a temporary file and a rename."""
    writer = RowWriter(path, rows.shape[0], rows.shape[1], rows.dtype)
    writer.write(rows)
    writer.close()
