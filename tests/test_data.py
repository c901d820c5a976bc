"""Tests for npflow.data: every file format and every bad case, split and sampler.

Each bad case writes a small file in ``tmp_path`` and checks the error is one line naming what
it must (file, line, column, keys, dimensions). Streaming passes are exercised on several chunks
by shrinking ``CHUNK_ELEMENTS``, and a memory-mapped file is checked with ``tracemalloc`` to be
read without loading it whole.
"""
import gzip
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import data
from npflow._checks import OptionError
from npflow.data import DataError, TrainingFiles


def one_line_error(match, fn, *args, **kwargs):
    """Call ``fn`` expecting a DataError whose message is one line containing every ``match``."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for part in [match] if isinstance(match, str) else match:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def _flag(name):
    """How the command line spells the option ``name``."""
    return "--" + name.replace("_", "-")


def write(path, text, mode="w"):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
    else:
        with open(path, mode, **({} if "b" in mode else {"newline": ""})) as f:
            f.write(text)
    return str(path)


def idx_bytes(arr, code=0x08):
    """An IDX file's bytes, built independently of read_idx."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + np.asarray(arr, dtype=dtype).tobytes()


@pytest.fixture
def small_chunks(monkeypatch):
    """Make every streaming pass take several chunks on tiny arrays."""
    monkeypatch.setattr(data, "CHUNK_ELEMENTS", 7)


# --- check_array -----------------------------------------------------------------------------

def test_check_array_keeps_float32_and_float64_and_converts_ints():
    x32 = np.ones((3, 2), dtype=np.float32)
    assert data.check_array(x32) is x32
    out = data.check_array([[1, 2], [3, 4]])
    assert out.dtype == np.float64 and out.shape == (2, 2)
    assert data.check_array(np.arange(6, dtype=np.uint8).reshape(3, 2)).dtype == np.float64


@pytest.mark.parametrize("bad, parts", [
    (np.arange(5.0), ["X must be 2-D (n, d)", "(5,)", "Reshape your data", "X.reshape(-1, 1)",
                      "X.reshape(1, -1)"]),
    (np.float64(3.0), ["X must be 2-D (n, d)", "shape ()", "Reshape your data"]),
    (np.zeros((4, 2, 2)), ["(4, 2, 2)", "X.reshape(len(X), -1)"]),
    (np.array([["a", "b"], ["c", "d"]]), ["real numbers", "<U1", "X.astype(float)"]),
    (np.ones((2, 2), dtype=complex), ["complex128", "Complex data not supported",
                                      "np.hstack([X.real, X.imag])"]),
    (np.ones((2, 2), dtype=bool), ["bool"]),
    (np.array([[None, 1], [2, 3]], dtype=object), ["object", "None at [0, 0]", "np.nan"]),
    (np.array([[1.0, "2.5"], [2, 3]], dtype=object), ["object", "text ('2.5') at [0, 1]",
                                                     "X.astype(float)"]),
    (np.ones((1, 3)), ["needs at least 2 rows, got 1", "got 1 sample"]),
    (np.ones((0, 3)), ["needs at least 2 rows, got 0 samples"]),
    (np.ones((3, 0)), ["no columns", "(3, 0)",
                       "0 feature(s) (shape=(3, 0)) while a minimum of 1 is required"]),
    ([[1.0, 2.0], [3.0]], ["not a rectangular array"]),
])
def test_check_array_rejects(bad, parts):
    one_line_error(parts, data.check_array, bad)


def test_check_array_min_rows_one_says_row_and_samples():
    one_line_error("X needs at least 1 row, got 0 samples", data.check_array, np.ones((0, 2)),
                   min_rows=1)
    assert data.check_array(np.ones((1, 2)), min_rows=1).shape == (1, 2)


def test_check_array_converts_object_arrays_of_numbers():
    x = np.array([[1, 2.5], [np.float32(3), True], [np.int8(-4), 1e300]], dtype=object)
    out = data.check_array(x)
    assert out.dtype == np.float64 and out.shape == (3, 2)
    np.testing.assert_array_equal(out, [[1.0, 2.5], [3.0, 1.0], [-4.0, 1e300]])
    x[1, 0] = np.nan  # NaN in an object array is found by the same single scan
    one_line_error("X has 1 row with NaN or infinity (first: row 1)", data.check_array, x)
    np.testing.assert_array_equal(data.check_array(x, drop_nonfinite=True), [[1, 2.5], [-4, 1e300]])


@pytest.mark.parametrize("entry, parts", [
    ({"foo": "bar"}, ["{'foo': 'bar'} at [1, 0]", "float() argument must be a string or a real "
                      "number, not 'dict'"]),
    ([1.0, 2.0], ["[1.0, 2.0] at [1, 0]", "sequence"]),
    (10 ** 400, ["at [1, 0]", "too large"]),
    (1 + 2j, ["(1+2j) at [1, 0]", "complex"]),
])
def test_check_array_object_entry_that_is_no_number_is_a_type_error(entry, parts):
    x = np.ones((3, 2), dtype=object)
    x[1, 0] = entry
    with pytest.raises(TypeError):  # as NumPy and scikit-learn raise; also a DataError
        data.check_array(x)
    message = one_line_error(["X is an object array", "not a real number", *parts,
                              "X.astype(float)"], data.check_array, x)
    assert len(message) < 400


class SparseStandIn:
    """The two attributes of a scipy.sparse matrix or array that check_array looks at."""

    format = "csr"
    shape = (200_000, 1_000)

    def toarray(self):
        raise AssertionError("check_array must not densify a sparse matrix")


def test_check_array_refuses_sparse_input_and_says_toarray():
    with pytest.raises(TypeError):
        data.check_array(SparseStandIn())
    one_line_error(["X is sparse (csr format, shape (200000, 1000))", "sparse input is not "
                    "supported", "X.toarray() if it fits in memory", "1.5 GiB as float64"],
                   data.check_array, SparseStandIn())
    small = SparseStandIn()
    small.shape = (3, 4)
    one_line_error(["under 1 MiB"], data.check_array, small, "rows")
    one_line_error(["--data 'x.csv' is sparse", "x.toarray()"], data.check_array, small,
                   "--data 'x.csv'")


def test_check_array_with_scipy_sparse_matrices():
    sparse = pytest.importorskip("scipy.sparse")
    for matrix in (sparse.csr_matrix(np.eye(3)), sparse.coo_array(np.eye(3))):
        one_line_error(["is sparse", matrix.format, "X.toarray()"], data.check_array, matrix)


def test_check_array_nonfinite_names_count_and_first_row(small_chunks):
    x = np.zeros((30, 2))
    x[17, 1], x[20, 0], x[25, 1] = np.nan, np.inf, -np.inf
    message = one_line_error(["X has 3 rows with NaN or infinity (first: row 17)",
                              "set drop_nonfinite to drop them"], data.check_array, x)
    assert "--drop-nonfinite" not in message  # each face spells the option once, its own way
    with pytest.raises(data.DataOptionError) as info:
        data.check_array(x)
    assert info.value.spell(_flag, "") == ("X has 3 rows with NaN or infinity (first: row 17); "
                                           "set --drop-nonfinite to drop them")
    kept = data.check_array(x, drop_nonfinite=True)
    np.testing.assert_array_equal(kept, np.delete(x, [17, 20, 25], axis=0))


def test_check_array_min_rows_counts_after_dropping():
    x = np.array([[1.0], [np.nan], [np.nan]])
    one_line_error(["needs at least 2 rows, got 1", "after dropping 2 rows"],
                   data.check_array, x, drop_nonfinite=True)


def test_check_array_on_memmap_matches_in_memory(tmp_path, small_chunks):
    x = np.random.default_rng(0).standard_normal((41, 3))
    x[[5, 33], 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    one_line_error("2 rows with NaN or infinity (first: row 5)", data.check_array, mm)
    np.testing.assert_array_equal(data.check_array(mm, drop_nonfinite=True),
                                  data.check_array(x, drop_nonfinite=True))


def test_memmap_npy_is_never_loaded_whole(tmp_path, monkeypatch):
    """Checking and loading a 16 MB .npy allocates a small fraction of it (tracemalloc)."""
    monkeypatch.setattr(data, "CHUNK_ELEMENTS", 2 ** 14)
    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float64,
                                  shape=(250_000, 8))
    x[:] = 3.0
    x.flush()
    del x
    tracemalloc.start()
    try:
        ds = data.load(tmp_path / "big.npy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(ds.x, np.memmap) and not ds.x.flags.writeable
    assert ds.integer_valued and ds.n == 250_000 and ds.dim == 8
    assert peak < 16_000_000 / 10


def test_dataset_from_arrays_drops_labels_with_rows():
    x = np.array([[1, 2], [3, np.nan], [5, 6], [7, 8]])
    ds = data.Dataset.from_arrays(x, [0, 1, 2, 3], drop_nonfinite=True)
    np.testing.assert_array_equal(ds.x, x[[0, 2, 3]])
    np.testing.assert_array_equal(ds.y, [0, 2, 3])
    assert ds.source == "array" and ds.columns is None and ds.integer_valued
    assert (ds.n, ds.dim) == (3, 2)
    one_line_error("row 1", data.Dataset.from_arrays, x)
    one_line_error(["y has 2 entries", "4 rows"], data.Dataset.from_arrays, x, [0, 1],
                   drop_nonfinite=True)
    assert not data.Dataset.from_arrays(x[[0, 2]] + 0.5).integer_valued


# --- check_labels ----------------------------------------------------------------------------

def test_check_labels_accepts_integral_floats_and_columns():
    np.testing.assert_array_equal(data.check_labels([0.0, 3.0, 1.0], 3), [0, 3, 1])
    out = data.check_labels(np.array([[2], [0]]), 2)
    assert out.dtype == np.int64 and out.shape == (2,)


def test_check_labels_converts_object_arrays_of_integers():
    out = data.check_labels(np.array([2, 0, 1.0], dtype=object), 3)
    assert out.dtype == np.int64 and out.tolist() == [2, 0, 1]


@pytest.mark.parametrize("y, parts", [
    ([0, 1, 2], ["labels has 3 entries", "4 rows"]),
    (np.array([0, "cat", 1, 2], dtype=object), ["text ('cat') at [1]", "np.unique(labels, "
                                                "return_inverse=True)[1]"]),
    (np.array([0, 1, None, 2], dtype=object), ["None at [2]", "integer class labels"]),
    ([0, 1, 2.5, 3], ["row 2 is 2.5", "integer"]),
    ([0, -1, 1, 1], ["row 1 is -1", ">= 0"]),
    ([0, 1, np.nan, 1], ["row 2 is nan", "1 row with NaN"]),
    ([0, np.inf, 1, 1], ["row 1 is inf"]),
    (np.zeros((4, 2)), ["1-D", "(4, 2)"]),
    (["a", "b", "c", "d"], ["integer class labels", "<U1"]),
])
def test_check_labels_rejects(y, parts):
    one_line_error(parts, data.check_labels, y, 4)


# --- load: files that are not data -----------------------------------------------------------

def test_load_missing_folder_empty_and_unknown(tmp_path):
    one_line_error(["--data", "does not exist"], data.load, tmp_path / "nope.csv")
    one_line_error("is a folder", data.load, tmp_path)
    one_line_error("is empty", data.load, write(tmp_path / "e.csv", ""))
    message = one_line_error("unknown extension", data.load, write(tmp_path / "x.xlsx", "1"))
    for ext in (".npy", ".npz", ".csv", ".tsv", ".txt", "idx3-ubyte"):
        assert ext in message


def test_load_options_for_the_wrong_format(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    one_line_error("key applies to .npz", data.load, tmp_path / "x.npy", key="x")
    one_line_error(["label_column applies to text files", "give labels of other files with "
                    "labels"], data.load, tmp_path / "x.npy", label_column=0)
    message = one_line_error("delimiter and header apply to text files only, but --data is",
                             data.load, tmp_path / "x.npy", delimiter=",", header=True)
    assert "labels" not in message


# --- .npy and .npz ---------------------------------------------------------------------------

def test_load_npy_float32_kept_as_memmap(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 4
    np.save(tmp_path / "x.npy", x)
    ds = data.load(tmp_path / "x.npy")
    assert isinstance(ds.x, np.memmap) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, x)
    assert ds.y is None and ds.columns is None and not ds.integer_valued
    assert ds.source == str(tmp_path / "x.npy")


def test_load_npy_ints_become_float64_integer_valued(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(10, dtype=np.int32).reshape(5, 2))
    ds = data.load(tmp_path / "x.npy")
    assert ds.x.dtype == np.float64 and ds.integer_valued


def test_load_npy_refuses_pickles_and_non_npy(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    one_line_error(["o.npy", "Python objects", "never"], data.load, tmp_path / "o.npy")
    one_line_error("not a .npy file", data.load, write(tmp_path / "b.npy", "hello"))


def test_load_npy_1d_says_reshape(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(5.0))
    one_line_error(["--data", "x.npy", "(5,)", "x.reshape(-1, 1)"], data.load, tmp_path / "x.npy")


def test_load_npz_keys(tmp_path):
    x = np.arange(8.0).reshape(4, 2)
    np.savez(tmp_path / "one.npz", points=x)
    np.testing.assert_array_equal(data.load(tmp_path / "one.npz").x, x)
    np.savez(tmp_path / "two.npz", a=x, b=2 * x)
    np.testing.assert_array_equal(data.load(tmp_path / "two.npz", key="b").x, 2 * x)
    one_line_error(["2 arrays", "a, b", "key="], data.load, tmp_path / "two.npz")
    one_line_error(["no array 'c'", "a, b"], data.load, tmp_path / "two.npz", key="c")
    one_line_error("not a zip archive", data.load, write(tmp_path / "bad.npz", "hello"))
    np.savez(tmp_path / "obj.npz", a=np.array([None, 1], dtype=object))
    one_line_error(["'a'", "Python objects"], data.load, tmp_path / "obj.npz")


# --- text files ------------------------------------------------------------------------------

X_TEXT = np.array([[1.5, -2.0, 0.0], [3.0, 4.25, 1.0], [5.0, 6.0, 1.0]])


@pytest.mark.parametrize("fname, sep", [("x.csv", ","), ("x.tsv", "\t"), ("x.txt", "  "),
                                        ("x.csv.gz", ","), ("x.txt.gz", " \t ")])
@pytest.mark.parametrize("with_header", [False, True])
def test_load_text_formats_headers_and_gzip(tmp_path, fname, sep, with_header):
    lines = [sep.join(str(float(v)) for v in row) for row in X_TEXT]
    if with_header:
        lines.insert(0, sep.join(["a", "b", "c"]))
    ds = data.load(write(tmp_path / fname, "\n".join(lines) + "\n"))
    np.testing.assert_array_equal(ds.x, X_TEXT)
    assert ds.columns == (("a", "b", "c") if with_header else None)
    assert not ds.integer_valued


def test_load_text_bom_crlf_comments_blank_lines(tmp_path):
    text = "\ufeff# made by hand\r\nx,y\r\n\r\n1,2\r\n3,4 # note\r\n# end\r\n"
    ds = data.load(write(tmp_path / "x.csv", text))
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4]])
    assert ds.columns == ("x", "y") and ds.integer_valued


def test_load_text_forced_header(tmp_path):
    path = write(tmp_path / "x.csv", "1,2\n3,4\n5,6\n")
    np.testing.assert_array_equal(data.load(path, header=True).x, [[3, 4], [5, 6]])
    assert data.load(path, header=True).columns == ("1", "2")
    path = write(tmp_path / "h.csv", "a,b\n1,2\n")
    one_line_error(["line 1, column 1", "'a'", "if line 1 is a header, set header"], data.load,
                   path, header=False)
    with pytest.raises(data.DataOptionError) as info:
        data.load(path, header=False)
    assert info.value.spell(_flag, "").endswith("set --header")


def test_load_text_given_delimiter(tmp_path):
    path = write(tmp_path / "x.txt", "1;2\n3;4\n")
    np.testing.assert_array_equal(data.load(path, delimiter=";").x, [[1, 2], [3, 4]])
    one_line_error("single character", data.load, path, delimiter=";;")
    with pytest.raises(TypeError, match="header"):
        data.load(path, header=1)


def test_load_text_header_only_and_comments_only(tmp_path):
    one_line_error("header line but no data rows", data.load, write(tmp_path / "h.csv", "a,b\n"))
    one_line_error("header line but no data rows", data.load,
                   write(tmp_path / "h2.csv", "1,2\n"), header=True)
    one_line_error("is empty", data.load, write(tmp_path / "c.csv", "# nothing\n\n"))


def test_load_text_ragged_row_names_line_and_width(tmp_path):
    path = write(tmp_path / "x.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n")
    one_line_error(["line 4 has 2 columns", "expected 3"], data.load, path)
    path = write(tmp_path / "y.txt", "1 2\n\n3 4 5\n")
    one_line_error(["line 3 has 3 columns", "expected 2 (as on line 1)"], data.load, path)
    path = write(tmp_path / "z.csv", "a,b,c\n1,2\n3,4\n")
    one_line_error(["header on line 1 names 3 columns", "data rows have 2"], data.load, path)


def test_load_text_bad_cell_names_line_column_and_header(tmp_path):
    path = write(tmp_path / "x.csv", "a,b,c\n1,2,3\n4,five,6\n")
    one_line_error(["line 3, column 2 ('b') holds 'five'", "expected a number"], data.load, path)
    path = write(tmp_path / "y.csv", "1,2\n3,\n")
    one_line_error(["line 2, column 2 is empty"], data.load, path)
    path = write(tmp_path / "z.csv.gz", "1,2\n3,4\nx,5\n")
    one_line_error(["z.csv.gz", "line 3, column 1 holds 'x'"], data.load, path)


def test_load_text_nonfinite_and_drop(tmp_path):
    path = write(tmp_path / "x.csv", "a,b\n1,2\nnan,3\n4,inf\n5,6\n")
    one_line_error(["--data", "x.csv", "2 rows with NaN or infinity (first: row 1)"],
                   data.load, path)
    np.testing.assert_array_equal(data.load(path, drop_nonfinite=True).x, [[1, 2], [5, 6]])


def test_load_text_not_utf8(tmp_path):
    path = write(tmp_path / "x.csv", b"1,2\n\xff\xfe,3\n", mode="wb")
    one_line_error(["x.csv", "could not be read"], data.load, path)


def test_load_text_one_row_is_too_few(tmp_path):
    one_line_error("needs at least 2 rows, got 1", data.load, write(tmp_path / "x.csv", "1,2\n"))


# --- label columns ---------------------------------------------------------------------------

def test_label_column_by_name_and_index(tmp_path):
    path = write(tmp_path / "x.csv", "u,label,v\n1,0,2\n3,2,4\n5,1,6\n")
    for column in ("label", 1, -2):
        ds = data.load(path, label_column=column)
        np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4], [5, 6]])
        np.testing.assert_array_equal(ds.y, [0, 2, 1])
        assert ds.y.dtype == np.int64 and ds.columns == ("u", "v")


def test_label_column_drop_nonfinite_drops_the_labels_too(tmp_path):
    path = write(tmp_path / "x.txt", "1 0\n2 nan\nnan 1\n4 1\n")
    ds = data.load(path, label_column=-1, drop_nonfinite=True)
    np.testing.assert_array_equal(ds.x, [[1], [4]])
    np.testing.assert_array_equal(ds.y, [0, 1])


def test_label_column_errors(tmp_path):
    path = write(tmp_path / "x.csv", "u,label\n1,0\n3,2.5\n")
    one_line_error(["label column 'label'", "row 1 is 2.5"], data.load, path, label_column="label")
    one_line_error(["'z' is not a column", "u, label"], data.load, path, label_column="z")
    one_line_error(["out of range", "2 columns", "0..1", "-2..-1"], data.load, path,
                   label_column=2)
    bare = write(tmp_path / "bare.csv", "1,0\n3,1\n")
    one_line_error(["no header line", "column index"], data.load, bare, label_column="label")
    one_column = write(tmp_path / "one.csv", "0\n1\n")
    one_line_error("only the label column", data.load, one_column, label_column=0)
    with pytest.raises(TypeError, match="label_column"):
        data.load(bare, label_column=1.0)


# --- IDX -------------------------------------------------------------------------------------

def test_read_idx_every_type_plain_and_gzipped(tmp_path):
    rng = np.random.default_rng(0)
    cases = [(0x08, rng.integers(0, 256, (3, 2, 4))), (0x09, rng.integers(-128, 128, (5,))),
             (0x0B, rng.integers(-999, 999, (2, 3))), (0x0C, rng.integers(-10**6, 10**6, (4,))),
             (0x0D, rng.standard_normal((2, 2))), (0x0E, rng.standard_normal((3, 1, 2)))]
    for code, values in cases:
        raw = idx_bytes(values, code)
        for name in ("a.idx", "a.idx.gz"):
            out = data.read_idx(write(tmp_path / name, raw, mode="wb"))
            assert out.shape == values.shape and out.dtype.isnative
            np.testing.assert_allclose(out, values, rtol=1e-6)


def test_load_idx_images_flattened_uint8(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (4, 3, 2)).astype(np.uint8)
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        ds = data.load(write(tmp_path / name, idx_bytes(images), mode="wb"))
        assert ds.x.shape == (4, 6) and ds.x.dtype == np.float64 and ds.integer_valued
        np.testing.assert_array_equal(ds.x, images.reshape(4, 6))


def test_load_idx_labels_file_as_data_says_labels(tmp_path):
    path = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(5)), mode="wb")
    one_line_error(["1-D IDX file of 5 labels", "give it as labels"], data.load, path)
    with pytest.raises(data.DataOptionError) as info:
        data.load(path)
    assert info.value.spell(_flag, "").endswith("not data; give it as --labels")


@pytest.mark.parametrize("raw, parts", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", ["IDX magic"]),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x07", ["unknown type code 0x07", "0x08"]),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", ["truncated"]),
    (idx_bytes(np.zeros((2, 3)))[:-1], ["5 data bytes", "(2, 3)", "need 6"]),
    (idx_bytes(np.zeros((2, 3))) + b"\x00", ["7 data bytes", "need 6"]),
    (idx_bytes(np.zeros((2, 3)), 0x0C)[:-4], ["20 data bytes", "int32", "need 24"]),
])
def test_read_idx_malformed(tmp_path, raw, parts):
    one_line_error(parts, data.read_idx, write(tmp_path / "x.idx", raw, mode="wb"))


def test_read_idx_damaged_gzip(tmp_path):
    raw = gzip.compress(idx_bytes(np.zeros((20, 3))))[:-10]
    one_line_error(["damaged gzip"], data.read_idx, write(tmp_path / "x.idx", raw, mode="wb"))


# --- load_labels -----------------------------------------------------------------------------

def test_load_labels_every_format(tmp_path):
    y = np.array([3, 0, 1, 1])
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "y.npz", labels=y)
    files = [tmp_path / "y.npy", tmp_path / "y.npz",
             write(tmp_path / "y.csv", "label\n3\n0\n1\n1\n"),
             write(tmp_path / "y.txt", "3.0\n0\n1\n1\n"),
             write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(y), mode="wb")]
    for path in files:
        out = data.load_labels(path, 4)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, y)


def test_load_labels_errors(tmp_path):
    path = write(tmp_path / "y.csv", "0\n1\n2\n")
    one_line_error(["--labels", "y.csv", "3 entries", "4 rows"], data.load_labels, path, 4)
    path = write(tmp_path / "z.csv", "0,1\n1,1\n")
    one_line_error(["--labels", "(2, 2)"], data.load_labels, path, 2)
    one_line_error(["--labels", "does not exist"], data.load_labels, tmp_path / "n.npy", 2)


# --- train/validation split ------------------------------------------------------------------

@given(n=st.integers(1, 300), val_fraction=st.floats(0.0, 0.999), seed=st.integers(0, 2**32 - 1))
def test_split_partitions_rows(n, val_fraction, seed):
    if n == 1 and val_fraction > 0:
        with pytest.raises(ValueError, match="val_fraction"):
            data.train_val_split(n, val_fraction, np.random.default_rng(seed))
        return
    split = data.train_val_split(n, val_fraction, np.random.default_rng(seed))
    both = np.concatenate([split.train, split.val])
    np.testing.assert_array_equal(np.sort(both), np.arange(n))
    assert split.train.dtype == split.val.dtype == np.int64
    assert np.all(np.diff(split.train) > 0) and np.all(np.diff(split.val) > 0)
    assert len(split.train) >= 1
    assert (len(split.val) >= 1) == (val_fraction > 0)
    if val_fraction > 0:
        assert len(split.val) == min(max(round(val_fraction * n), 1), n - 1)


def test_split_is_seeded_and_random():
    a = data.train_val_split(100, 0.2, np.random.default_rng(5))
    b = data.train_val_split(100, 0.2, np.random.default_rng(5))
    c = data.train_val_split(100, 0.2, np.random.default_rng(6))
    np.testing.assert_array_equal(a.val, b.val)
    assert len(a.val) == 20 and not np.array_equal(a.val, c.val)
    assert not np.array_equal(a.val, np.arange(80, 100))


def test_split_rejects_bad_fraction():
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="val_fraction"):
            data.train_val_split(10, bad, np.random.default_rng(0))


# --- epoch sampler ---------------------------------------------------------------------------

@given(n=st.integers(1, 40), batch_size=st.integers(1, 90), seed=st.integers(0, 2**32 - 1))
def test_sampler_uses_every_row_once_per_epoch(n, batch_size, seed):
    sampler = data.EpochSampler(n, batch_size, np.random.default_rng(seed))
    epochs = 3
    stream = np.concatenate([sampler.next_batch() for _ in range(-(-epochs * n // batch_size))])
    assert stream.dtype == np.int64
    for e in range(epochs):
        np.testing.assert_array_equal(np.sort(stream[e * n:(e + 1) * n]), np.arange(n))
    assert sampler.epoch * n + sampler.position == len(stream)


def test_sampler_reshuffles_each_epoch():
    sampler = data.EpochSampler(50, 50, np.random.default_rng(0))
    first, second = sampler.next_batch(), sampler.next_batch()
    assert sampler.epoch == 2 and sampler.position == 0
    assert not np.array_equal(first, second)


@given(n=st.integers(1, 40), batch_size=st.integers(1, 90), before=st.integers(0, 25),
       after=st.integers(1, 15), seed=st.integers(0, 2**32 - 1))
def test_sampler_resume_is_bit_identical(n, batch_size, before, after, seed):
    reference = data.EpochSampler(n, batch_size, np.random.default_rng(seed))
    expected = [reference.next_batch() for _ in range(before + after)]
    sampler = data.EpochSampler(n, batch_size, np.random.default_rng(seed))
    for _ in range(before):
        sampler.next_batch()
    state = json.loads(json.dumps(sampler.state()))  # through a checkpoint's JSON
    resumed = data.EpochSampler.from_state(n, batch_size, state)
    assert (resumed.epoch, resumed.position) == (sampler.epoch, sampler.position)
    for want in expected[before:]:
        np.testing.assert_array_equal(resumed.next_batch(), want)


def test_sampler_state_is_validated():
    state = data.EpochSampler(10, 3, np.random.default_rng(0)).state()
    with pytest.raises(ValueError, match="n = 10"):
        data.EpochSampler.from_state(11, 3, state)
    with pytest.raises(ValueError, match="position"):
        data.EpochSampler.from_state(10, 3, {**state, "position": 10})
    with pytest.raises(ValueError, match="not an EpochSampler state"):
        data.EpochSampler.from_state(10, 3, {"epoch": 0})
    with pytest.raises(TypeError, match="rng"):
        data.EpochSampler(10, 3, 0)


def test_arrays_of_images_keep_their_shape_as_flat_rows(tmp_path):
    images = np.arange(5 * 2 * 3 * 4, dtype=np.float32).reshape(5, 2, 3, 4)
    np.save(tmp_path / "c.npy", images)
    np.save(tmp_path / "g.npy", images[:, 0])
    color, gray = data.load(tmp_path / "c.npy"), data.load(tmp_path / "g.npy")
    assert color.image_shape == (2, 3, 4) and color.x.shape == (5, 24)
    np.testing.assert_array_equal(color.x, images.reshape(5, -1))
    assert gray.image_shape == (1, 3, 4) and gray.x.shape == (5, 12)
    np.savetxt(tmp_path / "p.csv", images.reshape(5, -1)[:, :12], delimiter=",")
    assert data.load(tmp_path / "p.csv", image_shape=(3, 4)).image_shape == (1, 3, 4)
    with pytest.raises(ValueError, match=r"image_shape \(1, 5, 4\) must be .* = 12"):
        data.load(tmp_path / "p.csv", image_shape=(5, 4))
    with pytest.raises(ValueError, match="holds images of shape"):
        data.load(tmp_path / "g.npy", image_shape=(3, 4))
    assert data.load(tmp_path / "p.csv").image_shape is None


def test_training_files_take_column_kinds_as_pairs_each_name_once(tmp_path):
    files = TrainingFiles(str(tmp_path / "t.csv"), column_kinds=[("year", "categorical"),
                                                                  ("id", "ignore")])
    assert files.column_kinds == {"year": "categorical", "id": "ignore"}
    with pytest.raises(OptionError, match="column_kinds gives column 'id' two kinds") as info:
        TrainingFiles(str(tmp_path / "t.csv"), column_kinds=[("id", "ignore"), ("id", "integer")])
    assert info.value.names == ("column_kinds",)
