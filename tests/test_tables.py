"""Tests for npflow.tables: reading, kinds, refusals, the encoding and its round trips."""
import gzip
import hashlib
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npflow import tables
from npflow.data import DataError
from npflow.tables import Table, TableEncoder


def _table(names, rows):
    return Table(tuple(names), np.array(rows, dtype=object).reshape(len(rows), len(names)))


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the shipped penguins table -------------------------------------------------------------

def test_penguins_file_is_the_distributed_text():
    with gzip.open(tables.PENGUINS, "rb") as file:
        raw = file.read()
    assert hashlib.sha256(raw).hexdigest() == (
        "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93")


def test_penguins_reads_as_distributed():
    t = tables.load_penguins()
    assert len(t) == 344
    assert t.names == ("species", "island", "bill_length_mm", "bill_depth_mm",
                       "flipper_length_mm", "body_mass_g", "sex", "year")
    missing = dict(zip(t.names, t.missing().sum(axis=0)))
    assert missing == {"species": 0, "island": 0, "bill_length_mm": 2, "bill_depth_mm": 2,
                       "flipper_length_mm": 2, "body_mass_g": 2, "sex": 11, "year": 0}
    assert tuple(t.cells[0]) == ("Adelie", "Torgersen", "39.1", "18.7", "181", "3750", "male",
                                 "2007")


def test_penguins_kinds_are_inferred():
    encoder = TableEncoder().fit(tables.load_penguins())
    kinds = {c.name: c.kind for c in encoder.columns_}
    assert kinds == {"species": "categorical", "island": "categorical",
                     "bill_length_mm": "numeric", "bill_depth_mm": "numeric",
                     "flipper_length_mm": "integer", "body_mass_g": "integer",
                     "sex": "categorical", "year": "integer"}
    assert list(encoder.categories_[0]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert encoder.categories_[2] is None
    year = encoder.columns_[7]
    assert (year.low, year.high) == (2007.0, 2009.0)


def test_penguins_round_trip_through_csv(tmp_path):
    t = tables.load_penguins()
    encoder = TableEncoder().fit(t)
    z = encoder.transform(t)
    assert z.shape == (344, 18)
    back = encoder.inverse_transform(z)
    np.testing.assert_array_equal(back.cells, t.cells)
    tables.write_csv(back, tmp_path / "p.csv.gz")
    with gzip.open(tmp_path / "p.csv.gz", "rb") as file, gzip.open(tables.PENGUINS, "rb") as ref:
        assert file.read() == ref.read()  # the same text, byte for byte


def test_penguins_summary_names_every_column():
    text = TableEncoder().fit(tables.load_penguins()).summary()
    assert "species            categorical  3 levels: Adelie, Chinstrap, Gentoo  0.0%" in text
    assert "bill_length_mm     numeric      32.1 .. 59.6" in text
    assert "sex                categorical  2 levels: female, male               3.2%" in text
    assert text.endswith("8 columns -> 18 coordinates")


# --- reading ----------------------------------------------------------------------------------

def test_read_csv_missing_tokens_and_header(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,x,NA\n?,y,2.5\nnull,,NaN\n")
    t = tables.read_csv(path)
    assert t.names == ("a", "b", "c")
    assert t.cells.tolist() == [["1", "x", None], [None, "y", "2.5"], [None, None, None]]


def test_read_csv_custom_missing_values(tmp_path):
    t = tables.read_csv(_write(tmp_path, "a,b\n-1,x\n2,NA\n"), missing_values=("-1",))
    assert t.cells.tolist() == [[None, "x"], ["2", "NA"]]


def test_read_csv_without_header_numbers(tmp_path):
    t = tables.read_csv(_write(tmp_path, "1,2\n3,4\n"))
    assert t.names == ("x0", "x1") and len(t) == 2


def test_read_csv_without_header_strings(tmp_path):
    t = tables.read_csv(_write(tmp_path, "a,u\nb,v\na,v\nb,u\n"))  # every first field recurs
    assert t.names == ("x0", "x1") and len(t) == 4


def test_read_csv_header_over_strings(tmp_path):
    t = tables.read_csv(_write(tmp_path, "colour,size\nred,big\nblue,big\nred,small\n"))
    assert t.names == ("colour", "size") and len(t) == 3


def test_read_csv_header_forced(tmp_path):
    t = tables.read_csv(_write(tmp_path, "1,2\n3,4\n"), header=True)
    assert t.names == ("1", "2") and t.cells.tolist() == [["3", "4"]]


def test_read_csv_ragged_line_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"line 3 has 1 fields, the first line has 2"):
        tables.read_csv(_write(tmp_path, "a,b\n1,2\n3\n"))


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        tables.read_csv(tmp_path / "none.csv")


# --- kinds and refusals -----------------------------------------------------------------------

def test_infer_kind():
    assert tables.infer_kind("a", ["1", "2", None, "-3"]) == "integer"
    assert tables.infer_kind("a", ["1", "2.5", "1e3"]) == "numeric"
    assert tables.infer_kind("a", ["1.0", "2.0"]) == "integer"  # whole numbers are integers
    assert tables.infer_kind("a", ["True", "False", "True"]) == "categorical"
    assert tables.infer_kind("a", ["1", "x"]) == "categorical"


def test_refuses_entirely_missing_column():
    with pytest.raises(DataError, match=r"^column 'gone' is entirely missing; drop it or mark "
                                        r"it 'ignore'$"):
        TableEncoder().fit(_table(["gone", "b"], [[None, "1"], [None, "2"]]))


def test_refuses_identifier_column():
    rows = [[f"id{i:03d}", str(i % 3)] for i in range(40)]
    with pytest.raises(DataError, match=r"^column 'name' looks like an identifier \(40 distinct "
                                        r"values in 40 rows\); mark it 'ignore'"):
        TableEncoder().fit(_table(["name", "b"], rows))
    encoder = TableEncoder(types={"name": "ignore"}).fit(_table(["name", "b"], rows))
    assert encoder.columns_[0].kind == "ignore" and encoder.transform(
        _table(["name", "b"], rows)).shape == (40, 1)


def test_refuses_dates():
    rows = [[f"2020-01-{d:02d}"] for d in range(1, 29)]
    with pytest.raises(DataError, match=r"^column 'when' holds dates \(e.g. '2020-01-01'\); "
                                        r"convert it to a number"):
        TableEncoder().fit(_table(["when"], rows))


def test_refuses_too_many_levels():
    rows = [[f"level{i % 8}"] for i in range(80)]
    with pytest.raises(DataError, match=r"^column 'c' has 8 levels, more than max_levels=5; "
                                        r"group rare levels or mark it 'ignore'$"):
        TableEncoder(max_levels=5).fit(_table(["c"], rows))


def test_refuses_a_word_in_a_number_column():
    with pytest.raises(DataError, match=r"^column 'a' row 1: 'x' is not a number"):
        TableEncoder(types={"a": "numeric"}).fit(_table(["a"], [["1"], ["x"]]))
    with pytest.raises(DataError, match=r"^column 'a' row 0: '1.5' is not a whole number"):
        TableEncoder(types={"a": "integer"}).fit(_table(["a"], [["1.5"], ["2"]]))


def test_bad_types_are_refused():
    t = _table(["a"], [["1"], ["2"]])
    with pytest.raises(ValueError, match=r"types\['a'\] must be one of"):
        TableEncoder(types={"a": "float"}).fit(t)
    with pytest.raises(ValueError, match="types names columns not in the table: b"):
        TableEncoder(types={"b": "ignore"}).fit(t)


def test_integer_codes_marked_categorical():
    t = _table(["code"], [["1"], ["2"], ["1"], [None]])
    encoder = TableEncoder(types={"code": "categorical"}).fit(t)
    z = encoder.transform(t)
    np.testing.assert_array_equal(z, [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert list(encoder.get_feature_names_out()) == ["code_1", "code_2",
                                                     "missingindicator_code"]


# --- the encoding, by hand --------------------------------------------------------------------

def test_numeric_and_integer_coordinates_by_hand():
    t = _table(["x", "k"], [["1.5", "0"], ["2.5", "2"], [None, "1"]])
    encoder = TableEncoder().fit(t)
    x, k = encoder.columns_
    # x: observed 1.5, 2.5 -> mean 2, population std 0.5
    assert (x.mean, x.scale, x.missing) == (2.0, 0.5, pytest.approx(1 / 3))
    # k: 0, 2, 1 -> mean 1 + 1/2, variance 2/3 + 1/12 = 3/4
    assert k.mean == 1.5 and k.scale == pytest.approx(np.sqrt(0.75))
    z = encoder.transform(t)
    s = np.sqrt(0.75)
    np.testing.assert_allclose(z, [[-1, 0, -1 / s], [1, 0, 1 / s], [0, 1, 0]])
    assert list(encoder.get_feature_names_out()) == ["x", "missingindicator_x", "k"]
    np.testing.assert_array_equal(encoder.feature_columns_, [0, 0, 1])


def test_decoding_rules():
    t = _table(["x", "k", "c"], [["1.5", "0", "a"], ["2.5", "2", "b"], [None, "1", None]])
    encoder = TableEncoder().fit(t)
    s = np.sqrt(0.75)
    z = np.array([[-1.02, 0.49, 5.0, 0.2, 0.9, 0.1],   # x 1.49 -> 1.5; k clipped to 2; c b
                  [0.33, 0.51, -9.0, 0.6, 0.1, 0.7],   # x missing; k clipped to 0; c missing
                  [0.0, 0.0, 0.4 / s, -1, -2, -3]])    # x 2.0; k floor(1.9) = 1; c a
    back = encoder.inverse_transform(z)  # x was written with one decimal place: "2.0"
    assert back.cells.tolist() == [["1.5", "2", "b"], [None, "0", None], ["2.0", "1", "a"]]
    z[0, 0], z[2, 0] = -3.0, 3.0  # x 0.5 and 3.5: clipped to the observed 1.5 .. 2.5
    assert encoder.inverse_transform(z).cells[[0, 2], 0].tolist() == ["1.5", "2.5"]


def test_number_formats_follow_the_input():
    t = _table(["fixed", "free", "sci"], [["3.50", "42", "1e-05"], ["2.25", "3.5", "2e-05"]])
    encoder = TableEncoder().fit(t)
    assert [(c.decimals, c.fixed) for c in encoder.columns_] == [(2, True), (1, False),
                                                                 (None, False)]
    back = encoder.inverse_transform(encoder.transform(t))
    assert back.cells.tolist() == [["3.50", "42", "1e-05"], ["2.25", "3.5", "2e-05"]]


def test_integers_written_with_decimals_keep_them():
    t = _table(["k"], [["3.0"], ["4.0"], [None]])  # as pandas writes an integer column with gaps
    encoder = TableEncoder().fit(t)
    assert encoder.columns_[0].kind == "integer"
    z = encoder.transform(t)
    assert encoder.inverse_transform(z).cells.tolist() == [["3.0"], ["4.0"], [None]]
    z[0, 0] += 1.3 / encoder.columns_[0].scale  # 3.5 + 1.3 -> floor 4
    assert encoder.inverse_transform(z).cells[0, 0] == "4.0"


def test_dequantized_moves_integers_within_their_unit_interval():
    t = _table(["k", "x"], [["0", "1.0"], ["5", "2.5"], [None, "3.0"]] * 50)
    encoder = TableEncoder().fit(t)
    z = encoder.transform(t)
    zd = encoder.dequantized(z, np.random.default_rng(1))
    k = encoder.columns_[0]
    v = zd[:, 0] * k.scale + k.mean  # v + u for observed cells
    observed = z[:, 1] == 0
    assert np.all(v[observed] - np.floor(v[observed]) >= 0)
    assert np.unique(np.floor(v[observed])).tolist() == [0.0, 5.0]
    np.testing.assert_array_equal(zd[~observed], z[~observed])  # gaps keep their fill value
    np.testing.assert_array_equal(zd[:, 1:], z[:, 1:])  # nothing else moves
    assert np.std(v[observed] - np.floor(v[observed])) > 0.2  # u is spread over [0, 1)
    np.testing.assert_array_equal(encoder.inverse_transform(zd).cells, t.cells)


def test_handle_unknown():
    t = _table(["c"], [["a"], ["b"]])
    new = _table(["c"], [["z"]])
    with pytest.raises(DataError, match=r"^column 'c' row 0: level 'z' was not seen in fit"):
        TableEncoder().fit(t).transform(new)
    np.testing.assert_array_equal(TableEncoder(handle_unknown="ignore").fit(t).transform(new),
                                  [[0, 0]])


def test_gaps_not_seen_in_fit_are_refused():
    encoder = TableEncoder().fit(_table(["x"], [["1"], ["2"]]))
    with pytest.raises(DataError, match="had none when the encoder was fitted"):
        encoder.transform(_table(["x"], [[None]]))


def test_observed_mask():
    t = _table(["x", "c"], [["1.5", "a"], [None, "b"], ["2", None]])
    encoder = TableEncoder().fit(t)
    mask = encoder.observed(t)
    np.testing.assert_array_equal(mask, [[True, True], [False, True], [True, False]])
    np.testing.assert_array_equal(mask[:, encoder.feature_columns_][1],
                                  [False, False, True, True, True])


def test_arrays_are_accepted():
    x = np.array([[1.5, "a", None], [2.0, "b", 3], [np.nan, "a", 4]], dtype=object)
    encoder = TableEncoder().fit(x)
    assert list(encoder.feature_names_in_) == ["x0", "x1", "x2"]
    assert [c.kind for c in encoder.columns_] == ["numeric", "categorical", "integer"]
    back = encoder.inverse_transform(encoder.transform(x))
    assert back.cells.tolist() == [["1.5", "a", None], ["2.0", "b", "3"], [None, "a", "4"]]


def test_not_fitted():
    with pytest.raises(ValueError, match="not fitted yet"):
        TableEncoder().transform([[1]])


def test_to_dict_from_dict_round_trip():
    t = tables.load_penguins()
    encoder = TableEncoder(types={"year": "categorical"}).fit(t)
    d = json.loads(json.dumps(encoder.to_dict()))
    again = TableEncoder.from_dict(d)
    assert again.columns_ == encoder.columns_
    np.testing.assert_array_equal(again.transform(t), encoder.transform(t))
    np.testing.assert_array_equal(again.get_feature_names_out(), encoder.get_feature_names_out())
    assert again.summary() == encoder.summary()


def test_from_dict_refuses_malformed():
    with pytest.raises(ValueError, match="a TableEncoder dict has exactly the keys"):
        TableEncoder.from_dict({"columns": []})
    d = TableEncoder().fit(_table(["x"], [["1"], ["2"]])).to_dict()
    d["columns"][0]["scale"] = 0.0
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        TableEncoder.from_dict(d)


# --- property: random small mixed tables come back unchanged ----------------------------------

_LEVELS = st.sampled_from(["red", "green", "blue", "TRUE", "a b"])
_INTS = st.integers(-50, 3000).map(str)
_DECIMALS = st.integers(-9999, 9999).map(lambda i: f"{i / 100:.2f}")


def _column(cells):
    return st.lists(st.one_of(st.none(), cells), min_size=1, max_size=1)


@st.composite
def mixed_tables(draw):
    n = draw(st.integers(1, 12))
    makers = draw(st.lists(st.sampled_from([_LEVELS, _INTS, _DECIMALS]), min_size=1,
                           max_size=4))
    columns = []
    for cells in makers:
        column = draw(st.lists(st.one_of(st.none(), cells), min_size=n, max_size=n))
        if all(cell is None for cell in column):
            column[0] = draw(cells)
        columns.append(column)
    rows = [[column[i] for column in columns] for i in range(n)]
    return _table([f"c{j}" for j in range(len(columns))], rows)


@given(mixed_tables(), st.integers(0, 2 ** 32 - 1))
def test_round_trip_random_tables(t, seed):
    encoder = TableEncoder().fit(t)
    z = encoder.transform(t)
    assert z.shape == (len(t), len(encoder.get_feature_names_out()))
    np.testing.assert_array_equal(encoder.inverse_transform(z).cells, t.cells)
    zd = encoder.dequantized(z, np.random.default_rng(seed))
    np.testing.assert_array_equal(encoder.inverse_transform(zd).cells, t.cells)
    again = TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    np.testing.assert_array_equal(again.transform(t), z)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=20))
def test_round_trip_any_floats_to_rounding(values):
    x = np.array(values, dtype=object)[:, None]
    encoder = TableEncoder(types={"x0": "numeric"}).fit(x)
    back = encoder.inverse_transform(encoder.transform(x)).cells[:, 0]
    np.testing.assert_allclose([float(v) for v in back], values, rtol=1e-9, atol=1e-9)


def test_write_csv_then_read(tmp_path):
    t = _table(["a", "b"], [["x, y", None], ["2", "z"]])
    tables.write_csv(t, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == 'a,b\n"x, y",NA\n2,z\n'
    np.testing.assert_array_equal(tables.read_csv(tmp_path / "t.csv").cells, t.cells)
