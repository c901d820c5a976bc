"""Smoke tests of demos/conditional.py and demos/reflow.py with tiny step counts: they run end to
end, return their metrics in range and write their pictures."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")
sys.path.insert(0, DEMOS)

import conditional  # noqa: E402
import reflow  # noqa: E402


def test_conditional_demo_runs(tmp_path):
    prec = conditional.main(["--steps", "30", "--n", "20", "--sample-steps", "3",
                             "--out", str(tmp_path)])
    assert set(prec) == set(conditional.GUIDANCE)
    assert all(p.shape == (8,) and np.all((0 <= p) & (p <= 1)) for p in prec.values())
    for name in ("conditional_classes.png", "conditional_guidance.png"):
        assert os.path.getsize(tmp_path / name) > 0


def test_reflow_demo_runs(tmp_path):
    results = reflow.main(["--steps", "20", "--reflow-steps", "10", "--pairs", "100",
                           "--n", "50", "--out", str(tmp_path)])
    assert list(results) == ["flow", "reflow 1", "reflow 2"]
    for r in results.values():
        assert r["straightness"] >= 0 and set(r["w2"]) == {1, 2, 4, "rk4"}
    assert os.path.getsize(tmp_path / "reflow_trajectories.png") > 0
