"""Tables end to end: a table's schema (npflow.tabular), training on its coordinates, resume,
TrainedFlow and Flow on tables, and the command line on the penguins file as distributed
(train, sample, evaluate, impute, the one-line refusals)."""
import csv
import gzip
import json
import shutil

import numpy as np
import pytest

from npflow import Flow, data, tables, tabular, train
from npflow.cli import main
from npflow.tables import Table
from npflow.train import Trainer
from npflow.trained import TrainedFlow

TINY = ["--steps", "60", "--batch-size", "128", "--hidden", "32,32", "--eval-every", "30",
        "--quiet"]
PENGUIN_NAMES = ("species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                 "body_mass_g", "sex", "year")


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, out, err, *names):
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """penguins.csv as distributed, and a split of it: train.csv (4 of 5 rows), held.csv."""
    folder = tmp_path_factory.mktemp("penguins")
    with gzip.open(tables.PENGUINS, "rb") as f, open(folder / "penguins.csv", "wb") as g:
        shutil.copyfileobj(f, g)
    lines = open(folder / "penguins.csv").read().splitlines()
    header, body = lines[0], lines[1:]
    for name, rows in (("train", [r for i, r in enumerate(body) if i % 5]),
                       ("held", [r for i, r in enumerate(body) if not i % 5])):
        (folder / f"{name}.csv").write_text("\n".join([header] + rows) + "\n")
    return {name: str(folder / f"{name}.csv") for name in ("penguins", "train", "held")}


@pytest.fixture(scope="module")
def model(files, tmp_path_factory):
    """A tiny model of train.csv conditioned on species (npflow train)."""
    path = str(tmp_path_factory.mktemp("model") / "p.npz")
    assert main(["train", "--data", files["train"], "--label-column", "species", *TINY,
                 "--out", path]) == 0
    return path


# --- the schema -----------------------------------------------------------------------------------

def test_schema_takes_the_label_out_of_the_coordinates():
    real = tables.load_penguins()
    schema = tabular.TableSchema.fit(real, label="species")
    assert schema.names == PENGUIN_NAMES and schema.levels == ("Adelie", "Chinstrap", "Gentoo")
    assert schema.label_counts == (152, 68, 124) and schema.dim == 15
    assert "species" not in {c.name for c in schema.features.columns_}
    z, y = schema.coordinates(real)
    assert z.shape == (344, 15) and np.array_equal(np.bincount(y), schema.label_counts)
    back = schema.rows(z, y)
    assert back.names == real.names and np.array_equal(back.cells, real.cells)
    again = tabular.TableSchema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again.to_dict() == schema.to_dict()


def test_known_holds_observed_cells_and_every_indicator_at_observed():
    real = tables.load_penguins()
    schema = tabular.TableSchema.fit(real)
    z, known = schema.known(real)
    indicators = schema.features.indicators()
    assert indicators.sum() == 5  # four numbers and sex have gaps
    assert np.all(known[:, indicators]) and np.all(z[:, indicators] == 0.0)
    gaps = real.missing()[:, list(real.names).index("sex")]  # sex: coordinates 11, 12 of 2 levels
    sex = schema.features.feature_columns_ == list(real.names).index("sex")
    assert np.all(~known[gaps][:, sex & ~indicators]) and np.all(known[~gaps][:, sex])


def test_complete_decoding_has_no_missing_cell():
    real = tables.load_penguins()
    schema = tabular.TableSchema.fit(real)
    z, _ = schema.coordinates(real)
    gone = schema.rows(z)
    filled = schema.rows(z, complete=True)
    assert gone.missing().sum() == real.missing().sum() > 0
    assert filled.missing().sum() == 0
    kept = ~real.missing()
    assert np.array_equal(filled.cells[kept], real.cells[kept])


@pytest.mark.parametrize("kwargs, match", [
    (dict(label="sex"), "label column 'sex' has 11 missing cells"),
    (dict(label="nope"), "not a column"),
    (dict(label="year", types={"year": "integer"}), "categorical"),
    (dict(types={"nope": "integer"}), "column_kinds names columns not in the table: nope"),
])
def test_schema_refusals(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tabular.TableSchema.fit(tables.load_penguins(), **kwargs)


# --- training and resuming ------------------------------------------------------------------------

def test_a_table_run_resumes_bit_identically(files, tmp_path):
    read = data.TrainingFiles(files["train"], label_column="species")
    options = {"steps": 20, "batch_size": 64, "hidden": (16,), "eval_every": 5,
               "conditional": True}
    straight = train.start(options, read)
    straight.run(quiet=True)
    first = train.start(options, read)
    for _ in range(7):
        first.train_step()
        if first.step % 5 == 0:
            first.evaluate()
    path = str(tmp_path / "half.npz")
    first.save(path)
    resumed = Trainer.resume(path, options)
    resumed.run(quiet=True)
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)
    np.testing.assert_array_equal(resumed.best_params, straight.best_params)
    assert resumed.val_losses == straight.val_losses and resumed.losses == straight.losses


def test_integer_columns_are_dequantized_afresh_every_batch(files):
    trainer = train.start({"steps": 2, "batch_size": 8, "hidden": (8,)},
                          data.TrainingFiles(files["train"]))
    rows, features = trainer.rows, trainer.rows.table.features
    x = rows.x[:8]  # encoder coordinates, integers at v + 1/2
    a, b = (rows.transform.inverse(rows.to_model(x, np.random.default_rng(s))) for s in (0, 1))
    names = list(features.get_feature_names_out())
    integer = np.isin(names, ["flipper_length_mm", "body_mass_g", "year"])
    np.testing.assert_allclose(a[:, ~integer], x[:, ~integer], atol=1e-12)  # the rest as is
    year = features.columns_[-1]
    assert year.name == "year" and names[-1] == "year"
    v = np.floor(x[:, -1] * year.scale + year.mean)  # the years themselves
    for z in (a, b):  # v + u, u in [0, 1): the same year, a fresh point of its unit interval
        np.testing.assert_array_equal(np.floor(z[:, -1] * year.scale + year.mean + 1e-9), v)
    assert np.all(a[:, -1] != b[:, -1]) and np.all(a[:, -1] != x[:, -1])


def test_generated_rows_keep_each_columns_missing_share(tmp_path):
    """A column with 30% gaps and one with 20%: a small flow generates about as many (seeds
    0, 1, 2 of this run, 3,000 rows: within 0.016, 0.057, 0.005 of the data's shares)."""
    rng = np.random.default_rng(0)
    n = 600
    a = np.round(rng.standard_normal(n), 2).astype(str).astype(object)
    b = rng.choice(["x", "y", "z"], size=n).astype(object)
    a[rng.random(n) < 0.3] = None
    b[rng.random(n) < 0.2] = None
    table = Table(("a", "b"), np.stack([a, b], axis=1))
    flow = Flow(steps=200, hidden=(32, 32), batch_size=256, seed=0).fit(table)
    generated = flow.sample(3000, rng=np.random.default_rng(1))
    share_real, share_generated = table.missing().mean(0), generated.missing().mean(0)
    assert np.all(np.abs(share_generated - share_real) < 0.08), (share_real, share_generated)
    assert flow.sample(500, complete=True).missing().sum() == 0


# --- TrainedFlow and Flow -------------------------------------------------------------------------

def test_trained_flow_of_a_table(model, files):
    flow = TrainedFlow.load(model)
    rng = np.random.default_rng(0)
    rows = flow.sample(200, rng)
    assert isinstance(rows, Table) and rows.names == PENGUIN_NAMES
    schema = flow.table
    for j, column in enumerate(schema.encoder.columns_):
        cells = [c for c in rows.cells[:, j] if c is not None]
        if column.kind == "categorical":
            assert set(cells) <= set(column.levels)
        if column.kind == "integer":
            values = np.array(cells, dtype=float)
            assert np.all(values == np.round(values))
            assert values.min() >= column.low and values.max() <= column.high
    gentoo = flow.sample(20, rng, label="Gentoo", complete=True)
    assert set(gentoo.column("species")) == {"Gentoo"} and gentoo.missing().sum() == 0
    with pytest.raises(ValueError, match="log_prob: this model is of a table"):
        flow.log_prob(np.zeros((2, flow.dim)))
    with pytest.raises(ValueError, match="Emperor"):
        flow.sample(2, rng, label="Emperor")
    train_rows = flow.training_table()
    assert train_rows is not None and len(train_rows) == flow.checkpoint.data.info["n"] - len(
        flow.checkpoint.data.val_index)
    result = flow.evaluate(300, rng, held_out=tables.read_csv(files["held"]), train=train_rows)
    assert 0 < result.quality.score <= 1 and result.closest is not None
    assert result.efficiency.target == "species" and 0 <= result.efficiency.synthetic <= 1


def test_impute_fills_only_the_gaps(model, files):
    flow = TrainedFlow.load(model)
    real = tables.read_csv(files["penguins"])
    filled = flow.impute(real, np.random.default_rng(0), n_imputations=3)
    gaps = real.missing()
    rows_with_gaps = gaps.any(axis=1)
    assert len(filled) == 3 and rows_with_gaps.sum() == 11
    for table in filled:
        assert table.missing().sum() == 0
        assert np.array_equal(table.cells[~gaps], real.cells[~gaps])
    drawn = [t.cells[gaps] for t in filled]
    assert not all(np.array_equal(drawn[0], d) for d in drawn[1:])  # the imputations differ


def test_impute_fills_a_cell_of_a_column_that_had_no_gaps(model, files):
    flow = TrainedFlow.load(model)
    real = tables.read_csv(files["held"])
    island = real.names.index("island")
    assert flow.table.encoder.columns_[island].missing == 0  # no indicator for island
    cells = real.cells[:4].copy()
    cells[0, island] = cells[1, 2] = None  # a gap where fit saw none, and an ordinary one
    filled = flow.impute(Table(real.names, cells), np.random.default_rng(0), n_imputations=2)
    for table in filled:
        assert table.cells[0, island] in ("Biscoe", "Dream", "Torgersen")
        assert table.cells[1, 2] is not None
        kept = np.not_equal(cells, None)  # the observed cells come back as they were
        assert np.array_equal(table.cells[kept], cells[kept])


def test_flow_fits_an_object_array_and_returns_the_same_kind():
    real = tables.load_penguins()
    cells = real.cells[:, 2:6].copy()  # four numeric columns, with NA cells
    flow = Flow(steps=30, hidden=(16,), batch_size=64).fit(cells)
    out = flow.sample(5)
    assert out.dtype == object and out.shape == (5, 4)
    assert all(isinstance(c, float) for c in out[:, 0] if c is not None)
    assert all(isinstance(c, int) for c in out[:, 2] if c is not None)
    filled = flow.impute(cells[:6])
    assert filled.shape == (6, 4) and not any(c is None for c in filled.flat)
    assert np.array_equal(filled[0], cells[0])  # a complete row comes back as given
    with pytest.raises(ValueError, match="score_samples"):
        flow.score_samples(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="label_column"):
        Flow(steps=5).fit(cells, y=np.zeros(len(cells)))


# --- the command line -----------------------------------------------------------------------------

def test_cli_trains_on_the_file_as_distributed(files, tmp_path, capsys):
    code, out, err = run(capsys, "train", "--data", files["penguins"], *TINY[:-1], "--out",
                         tmp_path / "m.npz")
    assert code == 0, err
    for name in PENGUIN_NAMES:
        assert name in out
    assert "8 columns -> 18 coordinates" in out and "trained 60 steps" in out


def test_cli_sample_writes_the_tables_header_and_levels(model, tmp_path, capsys):
    out = tmp_path / "syn.csv"
    code, text, err = run(capsys, "sample", "--model", model, "--n", 300, "--out", out)
    assert code == 0, err
    rows = read_rows(out)
    assert tuple(rows[0]) == PENGUIN_NAMES and len(rows) == 301
    assert {r[0] for r in rows[1:]} <= {"Adelie", "Chinstrap", "Gentoo"}
    assert {r[6] for r in rows[1:]} <= {"female", "male", "NA"}
    complete = tmp_path / "complete.csv"
    assert run(capsys, "sample", "--model", model, "--n", 50, "--complete", "--out",
               complete)[0] == 0
    assert not any("NA" in r for r in read_rows(complete)[1:])


def test_cli_evaluate_prints_the_report(model, files, capsys):
    code, out, err = run(capsys, "evaluate", "--model", model, "--data", files["held"], "--n",
                         300)
    assert code == 0, err
    for text in ("Column Shapes", "Column Pair Trends", "Overall", "sex  TVComplement",
                 "distance to closest training row", "classifier of species"):
        assert text in out, text
    code, out, err = run(capsys, "evaluate", "--model", model, "--data", files["held"], "--n",
                         100, "--json")
    result = json.loads(out)
    assert set(result["columns"]) == set(PENGUIN_NAMES) and 0 < result["overall"] <= 1


def test_cli_impute_fills_the_gaps_and_keeps_complete_rows(model, files, tmp_path, capsys):
    out = tmp_path / "filled.csv"
    code, text, err = run(capsys, "impute", "--model", model, "--data", files["penguins"],
                          "--out", out)
    assert code == 0, err
    assert "imputed 19 missing cells in 11 of 344 rows" in text
    given, filled = read_rows(files["penguins"]), read_rows(out)
    assert filled[0] == given[0] and len(filled) == len(given)
    for a, b in zip(given[1:], filled[1:]):
        assert "NA" not in b
        assert all(x == y for x, y in zip(a, b) if x != "NA")
    several = tmp_path / "three.csv"
    assert run(capsys, "impute", "--model", model, "--data", files["penguins"],
               "--n-imputations", 3, "--out", several)[0] == 0
    rows = read_rows(several)
    assert rows[0] == [".imp"] + given[0] and len(rows) == 1 + 3 * 344
    assert [r[0] for r in rows[1::344]] == ["1", "2", "3"]


@pytest.mark.parametrize("argv, names", [
    (["log-prob", "--model", "{model}", "--data", "{held}", "--out", "{tmp}/lp.npy"],
     ["log-prob: this model is of a table"]),
    (["encode", "--model", "{model}", "--data", "{held}", "--out", "{tmp}/z.npy"],
     ["encode: this model is of a table"]),
    (["sample", "--model", "{model}", "--out", "{tmp}/s.npy"], ["--out", ".csv"]),
    (["sample", "--model", "{model}", "--label", "Emperor", "--out", "{tmp}/s.csv"],
     ["--label 'Emperor'", "Adelie"]),
    (["train", "--data", "{train}", "--column-kind", "year=date", "--out", "{tmp}/m.npz"],
     ["--column-kind", "year=date"]),
    (["train", "--data", "{train}", "--column-kind", "nope=integer", "--out", "{tmp}/m.npz"],
     ["--column-kind names columns not in the table: nope"]),
    (["train", "--data", "{train}", "--ignore", "year", "--column-kind", "year=integer",
      "--out", "{tmp}/m.npz"], ["'year'", "two kinds"]),
    (["train", "--data", "{train}", "--label-column", "sex", "--out", "{tmp}/m.npz"],
     ["label column 'sex'", "missing"]),
    (["train", "--data", "{train}", "--dequantize", "--out", "{tmp}/m.npz"], ["--dequantize"]),
    (["train", "--data", "{train}", "--drop-nonfinite", "--out", "{tmp}/m.npz"],
     ["--drop-nonfinite", "table"]),
    (["train", "--data", "{train}", "--no-table", "--out", "{tmp}/m.npz"], ["'species'"]),
    (["impute", "--model", "{model}", "--data", "{held}", "--solver", "dopri5", "--out",
      "{tmp}/f.csv"], ["--solver"]),
    (["impute", "--model", "{model}", "--data", "{numbers}", "--out", "{tmp}/f.csv"],
     ["--data", "columns"]),
    (["evaluate", "--model", "{model}", "--data", "{held}", "--label-column", "species"],
     ["--label-column does not apply", "knows its label column"]),
    (["evaluate", "--model", "{model}", "--data", "{held}", "--drop-nonfinite"],
     ["--drop-nonfinite applies to rows of numbers"]),
    (["log-prob", "--model", "{model}", "--data", "{held}", "--out", "{tmp}/s.npy"],
     ["this model is of a table"]),
])
def test_cli_refusals_are_one_line(model, files, tmp_path, capsys, argv, names):
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n1,2\n3,4\n")
    where = {"model": model, "tmp": tmp_path, "numbers": numbers, **files}
    argv = [a.format(**where) for a in argv]
    assert_usage_error(*run(capsys, *argv), *names)


def test_cli_impute_and_complete_refuse_a_model_of_numbers(files, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "\n".join(f"{i},{i % 3}" for i in range(20)) + "\n")
    path = tmp_path / "n.npz"
    assert run(capsys, "train", "--data", rows, "--steps", 3, "--hidden", 8, "--quiet",
               "--out", path)[0] == 0
    assert_usage_error(*run(capsys, "impute", "--model", path, "--data", rows, "--out",
                            tmp_path / "f.csv"), "impute needs a model of a table")
    assert_usage_error(*run(capsys, "sample", "--model", path, "--complete", "--out",
                            tmp_path / "s.npy"), "--complete")


def test_resume_names_a_table_option_left_out_of_the_command(files, tmp_path, capsys):
    out = tmp_path / "p.npz"
    first = ["train", "--data", files["train"], "--column-kind", "year=categorical", *TINY]
    assert run(capsys, *first, "--out", out)[0] == 0
    assert_usage_error(*run(capsys, "train", "--data", files["train"], *TINY, "--steps", "90",
                            "--out", out, "--resume"),
                       f"--column-kind: the run stored in {out} used year=categorical, this "
                       f"command leaves it out")
