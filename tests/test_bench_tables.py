"""Smoke test of demos/experiments/bench_tables.py and bench_tables_impute.py, their npflow-only
path (the other models need SDV, ForestFlow and scikit-learn): the tables, the split, a tiny
npflow fit scored by npflow.report, the hidden cells of the imputation benchmark."""
import numpy as np

from _helpers import load_demo
from npflow import report


def test_tables_split_and_a_tiny_npflow_fit(monkeypatch):
    bench = load_demo("experiments/bench_tables")
    sizes = {name: len(bench.load(name)) for name in bench.TABLES}
    assert sizes == {"penguins": 344, "cars": 406, "seattle_weather": 1461}
    train, held_out = bench.split(bench.load("cars"), bench.HELD_OUT, 0)
    assert (len(train), len(held_out)) == (325, 81)
    assert bench.kinds(train)["Origin"] == "categorical" and bench.kinds(train)["Year"] == \
        "integer"
    monkeypatch.setitem(bench.NPFLOW_OPTIONS, "cars", {"hidden": (16,), "steps": 20,
                                                       "batch_size": 64, "label_column": "Origin"})
    synthetic, info = bench.fit_sample("npflow", "cars", train, 0, None)
    assert len(synthetic) == len(train) and synthetic.names == train.names
    assert info["n_train"] == 325 and info["fit_cpu"] > 0
    q = report.quality_report(held_out, synthetic, bench.scoring_encoder(train), *bench.THRESHOLDS)
    assert 0 < q.score <= 1


def test_imputation_hides_a_fifth_of_the_observed_cells():
    impute = load_demo("experiments/bench_tables_impute")
    table = impute.load("penguins")
    hidden, mask = impute.hide(table, impute.MASKED, np.random.default_rng(0))
    observed = ~table.missing()
    assert mask.sum() == round(0.2 * observed.sum()) and not (mask & ~observed).any()
    assert hidden.missing().sum() == table.missing().sum() + mask.sum()
    draws = [hidden, hidden]  # two identical "imputations": the mean and the mode are theirs
    values = impute.npflow_values(draws, impute.kinds(table))
    j = table.names.index("bill_length_mm")
    rows = ~hidden.missing()[:, j]
    np.testing.assert_allclose(values["bill_length_mm"][rows],
                               hidden.cells[rows, j].astype(float))
