"""demos/experiments/tables_missing.py: the masked loss and its mask, and a tiny run of both
variants on both tables."""
import json

import numpy as np
import pytest

from _helpers import load_demo
from npflow.tables import Table, TableEncoder


@pytest.fixture(scope="module")
def experiment():
    return load_demo("experiments/tables_missing")


def test_the_mask_drops_the_value_coordinates_of_missing_cells_only(experiment):
    table = Table(("x", "c", "k"), np.array([["1.5", "a", "1"], [None, "b", "2"],
                                             ["2.5", None, "3"]], dtype=object))
    encoder = TableEncoder().fit(table)  # x, ind_x | c_a, c_b, ind_c | k
    mask = experiment.observed_coordinates(encoder, encoder.transform(table))
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 1, 1],
                                         [0, 1, 1, 1, 1, 1],
                                         [1, 1, 0, 0, 1, 1]])


def test_masked_loss_is_the_mean_over_observed_coordinates_and_its_gradient(experiment):
    rng = np.random.default_rng(0)
    v, ut = rng.standard_normal((2, 5, 3))
    full, grad = experiment.masked_loss(v, ut, np.ones((5, 3), dtype=bool))
    assert full == pytest.approx(np.mean((v - ut) ** 2))  # every m = 1: the CFM loss
    np.testing.assert_allclose(grad, 2 * (v - ut) / 15)
    m = rng.random((5, 3)) < 0.6
    loss, grad = experiment.masked_loss(v, ut, m)
    assert loss == pytest.approx(np.mean((v - ut)[m] ** 2))
    v2 = v.copy()
    v2[~m] += 10.0  # masked outputs do not count
    assert experiment.masked_loss(v2, ut, m)[0] == pytest.approx(loss)
    h = 1e-6
    bump = np.zeros_like(v)
    bump[m.nonzero()[0][0], m.nonzero()[1][0]] = h
    numeric = (experiment.masked_loss(v + bump, ut, m)[0] -
               experiment.masked_loss(v - bump, ut, m)[0]) / (2 * h)
    assert numeric == pytest.approx(grad[bump != 0][0], rel=1e-6)
    assert np.all(grad[~m] == 0)


def test_quick_run_measures_both_variants_on_both_tables(experiment, tmp_path, capsys):
    runs = experiment.main(["--quick", "--seeds", "0", "--n", "60", "--out",
                            str(tmp_path / "runs.json")])
    assert [(r["table"], r["variant"]) for r in runs] == [
        ("own", "indicator"), ("own", "masked"), ("removed", "indicator"),
        ("removed", "masked")]
    assert json.loads((tmp_path / "runs.json").read_text()) == runs
    own, removed = runs[0]["real_missing"], runs[2]["real_missing"]
    assert own["species"] == removed["species"] == 0  # the label keeps every cell
    assert np.mean([removed[c] - own[c] for c in own if c != "species"]) == pytest.approx(
        0.15 * (1 - np.mean([own[c] for c in own if c != "species"])), abs=0.01)
    for r in runs:
        assert 0 < r["overall"] <= 1 and r["missing_error"] >= 0 and r["rmse"] > 0
    assert "means over seeds:" in capsys.readouterr().out
