"""Smoke tests of the demo scripts: each ``main([...])`` runs with tiny step counts into a
temporary folder and must write valid pictures (PNG magic bytes; a GIF with several frames).

The demos are scripts, not a package, so each one is loaded from its path with importlib, with
``demos/`` on ``sys.path`` for their shared ``_common`` module.
"""
import importlib.util
import math
import os

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
Image = pytest.importorskip("PIL.Image")

import matplotlib.pyplot as plt  # noqa: E402

from npflow.train import TrainConfig, Trainer  # noqa: E402

DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _demos_on_path(monkeypatch):
    monkeypatch.syspath_prepend(DEMOS)
    yield
    plt.close("all")


def load_demo(name):
    """Import ``demos/<name>.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", os.path.join(DEMOS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path):
    assert os.path.getsize(path) > 1000, path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, path


def assert_gif(path, min_frames=2):
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames >= min_frames


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A gaussian -> checkerboard checkpoint with one hidden layer of 16, after 5 steps."""
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    Trainer(TrainConfig(steps=5, batch_size=64, hidden=(16,))).run(out=str(path), quiet=True)
    return str(path)


def test_checkerboard(tmp_path, capsys):
    demo = load_demo("checkerboard")
    result = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "300", "--sample-steps",
                        "2", "--eval-n", "100", "--nll-steps", "2", "--grid", "8",
                        "--path-points", "50", "--path-steps", "4", "--frames", "3"])
    for name in ("noise", "samples", "trajectories", "field", "density", "loss"):
        assert_png(tmp_path / f"{name}.png")
    assert_gif(tmp_path / "flow.gif", min_frames=3)
    assert (tmp_path / "model.npz").is_file()
    assert 0.0 <= result["precision"] <= 1.0
    assert math.isfinite(result["nll"]) and result["w2"] > 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "precision" in out and "NLL" in out


def test_checkerboard_uses_the_default_training_config():
    args = load_demo("checkerboard").parse_args([])
    assert (args.steps, args.seed) == (TrainConfig().steps, TrainConfig().seed)


def test_paths_and_couplings(tmp_path):
    demo = load_demo("paths_and_couplings")
    result = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "40", "--paths", "10"])
    assert_png(tmp_path / "couplings_paths.png")
    assert_png(tmp_path / "couplings_w2.png")
    assert len(result) == len(demo.TARGETS) * len(demo.METHODS)
    for scores in result.values():
        assert set(scores["w2"]) == set(demo.EULER_STEPS)


def test_straightness_closed_forms():
    straightness = load_demo("paths_and_couplings").straightness
    t = np.linspace(0.0, 1.0, 11)[:, None, None]  # (11, 1, 1)
    x0, x1 = np.array([[1.0, -2.0]]), np.array([[3.0, 5.0]])  # (1, 2)
    line = (1 - t) * x0 + t * x1  # (11, 1, 2): straight, constant speed
    assert straightness(line) == pytest.approx(0.0, abs=1e-12)
    # Two Euler steps (0, 0) -> (1, 0) -> (1, 1): velocities (2, 0), (0, 2), chord (1, 1):
    # each |v - chord|^2 = 1 + 1, so S = 2.
    bent = np.array([[[0.0, 0.0]], [[1.0, 0.0]], [[1.0, 1.0]]])
    assert straightness(bent) == pytest.approx(2.0)


def test_solvers_trains_a_model(tmp_path):
    demo = load_demo("solvers")
    rows = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "40",
                      "--reference-steps", "8", "--max-steps", "2"])
    assert_png(tmp_path / "solvers.png")
    assert {r["method"] for r in rows} == {"euler", "midpoint", "heun", "rk4", "dopri5"}
    stages = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
    for r in rows:
        if r["method"] in stages:
            assert r["nfe"] == stages[r["method"]] * r["steps"]


def test_likelihood_loads_a_model(tmp_path, tiny_model, capsys):
    demo = load_demo("likelihood")
    result = demo.main(["--out", str(tmp_path), "--model", tiny_model, "--n", "50",
                        "--grid", "6", "--ode-steps", "2", "--nll-steps", "1", "2"])
    assert_png(tmp_path / "density.png")
    assert_png(tmp_path / "slice.png")
    assert len(result) == 3 and all(math.isfinite(v) for v in result.values())
    assert "log 32" in capsys.readouterr().out


def test_data_to_data(tmp_path):
    demo = load_demo("data_to_data")
    result = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "40", "--ode-steps", "4",
                        "--frames", "3", "--paths", "10"])
    assert_png(tmp_path / "data_to_data.png")
    assert_png(tmp_path / "data_to_data_samples.png")
    assert_gif(tmp_path / "data_to_data.gif", min_frames=3)
    assert set(result) >= {"I-CFM", "OT-CFM"}
