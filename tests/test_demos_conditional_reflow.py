"""Smoke tests of demos/conditional.py (class-conditional flow with guidance) and demos/reflow.py
(rectified flows) with tiny step counts: they run end to end, print what they return, and their
metrics obey what holds for any model (fractions of the samples drawn, positive distances)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from _helpers import assert_png, load_demo  # noqa: E402

conditional = load_demo("conditional")
reflow = load_demo("reflow")

def test_conditional_demo_prints_the_precisions_it_returns(tmp_path, capsys):
    prec = conditional.main(["--steps", "30", "--n", "20", "--sample-steps", "3",
                             "--out", str(tmp_path)])
    assert list(prec) == list(conditional.GUIDANCE)
    out = capsys.readouterr().out
    for w, p in prec.items():
        assert p.shape == (8,)
        counts = p * 20  # the fraction of each class's 20 samples near the requested centre
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
        assert 0 <= counts.min() and counts.max() <= 20
        line = f"w = {w:g}"
        assert line in out
        assert " ".join(f"{x:.3f}" for x in p) in out
        assert f"overall {p.mean():.4f}  min {p.min():.3f}" in out
    for name in ("conditional_classes.png", "conditional_guidance.png"):
        assert_png(tmp_path / name)


def test_reflow_demo_prints_what_it_returns(tmp_path, capsys):
    results = reflow.main(["--steps", "20", "--reflow-steps", "10", "--pairs", "100",
                           "--n", "50", "--out", str(tmp_path)])
    assert list(results) == ["flow", "reflow 1", "reflow 2"]
    out = capsys.readouterr().out
    for name, r in results.items():
        assert set(r["w2"]) == {1, 2, 4, "rk4"}
        assert r["straightness"] >= 0 and all(w > 0 for w in r["w2"].values())
        w2 = " / ".join(f"{r['w2'][k]:.3f}" for k in reflow.EULER_STEPS)
        assert f"S = {r['straightness']:.4f}   W2 euler 1/2/4 = {w2}" in out, name
    assert out.count("reflow 1: 100 pairs, 10 steps") == 1
    assert out.count("reflow 2: 100 pairs, 10 steps") == 1
    assert_png(tmp_path / "reflow_trajectories.png")


def test_reflow_demo_without_reflows_evaluates_the_first_flow_only(tmp_path):
    results = reflow.main(["--steps", "5", "--reflows", "0", "--n", "30", "--out",
                           str(tmp_path)])
    assert list(results) == ["flow"]
