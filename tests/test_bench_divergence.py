"""Smoke test of demos/experiments/bench_divergence.py: tiny sizes, every row and key, the
crossover rule."""
import json

import numpy as np
import pytest

from _helpers import load_demo
from npflow import likelihood

def load():
    return load_demo("experiments/bench_divergence")


def test_main_writes_one_row_per_dimension(tmp_path, capsys):
    out = tmp_path / "div.json"
    demo = load()
    assert demo.main(["--dims", "3", "2", "--probes", "1", "16", "--n", "20", "--width", "8",
                      "--layers", "1", "--repeats", "1", "--std-points", "5", "--std-steps", "2",
                      "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["d"] for row in rows] == [2, 3]
    for row in rows:
        assert set(row) == {"d", "exact_ms", "hutchinson_1_ms", "hutchinson_16_ms",
                            "one_probe_std", "default_probes_stderr"}
        assert all(row[key] > 0 for key in row)  # times, and Hutchinson's noise for d >= 2
        # the stderr of the default probe count is one probe's std over sqrt(count)
        assert row["default_probes_stderr"] == pytest.approx(
            row["one_probe_std"] / np.sqrt(likelihood.DEFAULT_PROBES), rel=1e-12)
    out = capsys.readouterr().out
    assert "EXACT_MAX_DIM" in out
    for row in rows:  # what is printed is what is written
        assert f"{row['d']:>3} {row['exact_ms']:>10.2f}" in out
        assert f"{row['one_probe_std']:>11.4f}   {row['default_probes_stderr']:>10.4f}" in out


def test_crossover_is_the_first_dimension_where_exact_costs_more():
    demo = load()
    rows = [{"d": 2, "exact_ms": 1.0, "hutchinson_16_ms": 5.0},
            {"d": 20, "exact_ms": 6.0, "hutchinson_16_ms": 5.0},
            {"d": 64, "exact_ms": 9.0, "hutchinson_16_ms": 5.0}]
    assert demo.crossover(rows, 16) == 20
    assert demo.crossover(rows[:1], 16) is None
