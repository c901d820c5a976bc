"""Smoke tests of the demo scripts: each ``main([...])`` runs with tiny step counts into a
temporary folder and must write valid pictures (PNG magic bytes; a GIF with several frames).

The demos are scripts, not a package, so each one is loaded from its path
(``_helpers.load_demo``), with ``demos/`` on ``sys.path`` for their shared ``_common`` module.
"""
import json
import math

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
Image = pytest.importorskip("PIL.Image")

import matplotlib.pyplot as plt  # noqa: E402

from _helpers import DEMOS, assert_png, load_demo  # noqa: E402
from npflow import checkpoint, datasets, solvers  # noqa: E402
from npflow.train import TrainConfig, Trainer  # noqa: E402


@pytest.fixture(autouse=True)
def _demos_on_path(monkeypatch):
    monkeypatch.syspath_prepend(DEMOS)
    yield
    plt.close("all")


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
    ckpt = checkpoint.load(str(tmp_path / "model.npz"))
    assert ckpt.step == 3 and len(ckpt.losses) == 3
    # The precision is that of the saved EMA model's RK4 samples of the demo's noise draw.
    model = ckpt.model(ema=True)
    x0 = datasets.sample("gaussian", 300, np.random.default_rng(TrainConfig().seed + 1))
    samples = solvers.solve(model, x0.astype(model.dtype), "rk4", 2).x.astype(np.float64)
    assert result["precision"] == datasets.checkerboard_precision(samples)
    # Three training steps leave the model near its start: far from the data's entropy log 32.
    assert result["nll"] > math.log(32) and result["w2"] > result["w2_floor"] > 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out
    for name, fmt in (("precision", ".4f"), ("w2", ".4f"), ("w2_floor", ".4f"), ("nll", ".4f")):
        assert format(result[name], fmt) in out, name  # what is printed is what is returned


def test_checkerboard_uses_the_default_training_config():
    args = load_demo("checkerboard").parse_args([])
    assert (args.steps, args.seed) == (TrainConfig().steps, TrainConfig().seed)


def test_paths_and_couplings(tmp_path):
    demo = load_demo("paths_and_couplings")
    result = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "40", "--paths", "10"])
    assert_png(tmp_path / "couplings_paths.png")
    assert_png(tmp_path / "couplings_w2.png")
    assert set(result) == {f"{t}/{m}" for t in demo.TARGETS for m in demo.METHODS}
    for scores in result.values():
        assert set(scores["w2"]) == set(demo.EULER_STEPS)
        assert scores["S"] >= 0 and all(w > 0 for w in scores["w2"].values())


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
                      "--reference-steps", "2", "--max-steps", "2"])
    assert_png(tmp_path / "solvers.png")
    assert {r["method"] for r in rows} == {"euler", "midpoint", "heun", "rk4", "dopri5"}
    stages = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
    for r in rows:
        if r["method"] in stages:
            assert r["nfe"] == stages[r["method"]] * r["steps"]
    # The reference is RK4 with 2 steps, so the RK4 row with 2 steps is the reference itself.
    rk4 = {r["steps"]: r["error"] for r in rows if r["method"] == "rk4"}
    assert set(rk4) == {1, 2} and rk4[2] == 0.0 < rk4[1]
    dopri5 = [r for r in rows if r["method"] == "dopri5"]
    assert [r["tol"] for r in dopri5] == list(demo.TOLERANCES)
    assert all(r["nfe"] >= 6 for r in dopri5)  # at least one step of six new evaluations


def test_likelihood_loads_a_model(tmp_path, tiny_model, capsys):
    demo = load_demo("likelihood")
    result = demo.main(["--out", str(tmp_path), "--model", tiny_model, "--n", "50",
                        "--grid", "6", "--ode-steps", "2", "--nll-steps", "1", "2"])
    assert_png(tmp_path / "density.png")
    assert_png(tmp_path / "slice.png")
    assert len(result) == 3
    # Cross-entropy is at least the entropy log 32; a 5-step model is far above it.
    assert all(v > math.log(32) for v in result.values())
    out = capsys.readouterr().out
    assert "log 32" in out and all(f"{v:8.4f}" in out for v in result.values())


def test_data_to_data(tmp_path):
    demo = load_demo("data_to_data")
    result = demo.main(["--out", str(tmp_path), "--steps", "3", "--n", "40", "--ode-steps", "1",
                        "--frames", "2", "--paths", "10"])
    assert_png(tmp_path / "data_to_data.png")
    assert_png(tmp_path / "data_to_data_samples.png")
    assert_gif(tmp_path / "data_to_data.gif", min_frames=2)
    assert set(result) == {"floor", "ot_cost", "I-CFM", "OT-CFM"}
    for method in ("I-CFM", "OT-CFM"):  # with one Euler step the sampler is the one-step map
        assert result[method]["w2"] == result[method]["w2_one_step"] > 0
    # ot_cost is W2^2 between the demo's source and target draws: no pairing costs less.
    rng = np.random.default_rng(1)  # the demo's evaluation generator, seed + 1
    x0, x1 = datasets.sample("moons", 40, rng), datasets.sample("8gaussians", 40, rng)
    pairings = [np.arange(40)] + [rng.permutation(40) for _ in range(20)]
    costs = [np.mean(np.sum((x0 - x1[p]) ** 2, axis=1)) for p in pairings]
    assert result["ot_cost"] == pytest.approx(min(costs + [result["ot_cost"]]), rel=1e-12)
    assert result["ot_cost"] < min(costs)


def test_digits_quick_runs_every_stage_and_writes_what_it_reports(tmp_path, capsys):
    results = load_demo("digits").main(["--quick", "--out", str(tmp_path)])
    for prefix in ("digits", "digits_unet"):
        for name in ("grid.png", "guidance.png", "interpolation.png", "nearest.png"):
            assert_png(tmp_path / f"{prefix}_{name}")
        assert_gif(tmp_path / f"{prefix}_flow.gif", min_frames=10)
        labels = np.load(tmp_path / f"{prefix}_conditional_labels.npy")
        samples = np.load(tmp_path / f"{prefix}_conditional_samples.npy")
        assert samples.shape == (labels.size, 64) and samples.min() >= 0 and samples.max() <= 16
    with open(tmp_path / "digits.json") as f:
        saved = json.load(f)
    mlp, unet = saved["networks"]["mlp"], saved["networks"]["unet"]
    assert mlp["bits_per_dim"] == results["networks"]["mlp"]["bits_per_dim"]
    assert saved["n_train"] == 1437 and saved["n_held_out"] == 360
    assert mlp["options"]["divergence"] == "exact"
    assert unet["options"]["arch"] == "unet" and unet["options"]["divergence"] == "hutchinson"
    assert 0 <= unet["best_share_classified_as_asked"] <= 1 and unet["frechet_samples_vs_held_out"] > 0
    # the baselines' bits/dim are those of the same fitted densities: a Gaussian is worse than
    # the uniform bound log2(17) = 4.09 only if something is broken
    assert 0 < saved["gaussian_bits_per_dim"] < math.log2(17)
    out = capsys.readouterr().out
    assert f"mlp: held-out bits/dim {mlp['bits_per_dim']:.3f}" in out
    assert f"unet: held-out bits/dim {unet['bits_per_dim']:.3f}" in out


MNIST_KEYS = {"classifier_held_out_accuracy", "gaussian_bits_per_dim",
              "frechet_training_vs_held_out_floor", "held_out_nearest_training_distance_quantiles",
              "networks", "total_seconds", "total_cpu_seconds"}
MNIST_NETWORK_KEYS = {"bits_per_dim", "bits_per_dim_stderr", "frechet_samples_vs_held_out",
                      "nearest_training_distance_quantiles", "train_seconds",
                      "train_cpu_seconds"}


def test_mnist_quick_runs_every_stage_and_writes_what_it_reports(tmp_path, capsys):
    results = load_demo("mnist").main(["--quick", "--out", str(tmp_path)])
    for name in ("grid", "guidance", "nearest"):
        assert_png(tmp_path / f"mnist_{name}.png")
    assert_gif(tmp_path / "mnist_flow.gif", min_frames=5)
    labels = np.load(tmp_path / "conditional_labels.npy")
    samples = np.load(tmp_path / "conditional_samples.npy")
    assert samples.shape == (labels.size, 784) and samples.dtype == np.uint8
    assert np.bincount(labels).tolist() == [2] * 10
    assert np.load(tmp_path / "samples.npy").shape == (20, 784)
    assert np.load(tmp_path / "mlp_samples.npy").shape == (20, 784)
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    assert MNIST_KEYS <= set(saved) and saved == json.loads(json.dumps(results))
    assert (saved["n_train"], saved["n_held_out"]) == (4000, 1000)
    for net in ("unet", "mlp"):
        assert MNIST_NETWORK_KEYS <= set(saved["networks"][net])
    unet = saved["networks"]["unet"]
    assert unet["options"]["arch"] == "unet" and unet["options"]["divergence"] == "hutchinson"
    assert set(unet["share_classified_as_asked"]) == {"1.0", "2.0", "3.0", "4.0"}
    assert unet["best_guidance"] in (1.0, 2.0, 3.0, 4.0)
    # a Gaussian fitted to dequantized pixels is worse than uniform on 0 .. 256 only if broken
    assert 0 < saved["gaussian_bits_per_dim"] < 8
    out = capsys.readouterr().out
    assert f"U-Net: held-out bits/dim {unet['bits_per_dim']:.3f}" in out
    assert f"classifier held-out accuracy {saved['classifier_held_out_accuracy']:.4f}" in out


def write_idx(path, array):
    """``array`` (uint8) as a gzipped IDX file: magic, type 0x08, ndim, big-endian sizes, data."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_mnist_reads_idx_files(tmp_path):
    images, labels = datasets.load_mnist_sample()
    keep = np.arange(0, 5000, 4)  # 1,250 images, every class
    write_idx(tmp_path / "images-idx3-ubyte.gz", images[keep])
    write_idx(tmp_path / "labels-idx1-ubyte.gz", labels[keep].astype(np.uint8))
    demo = load_demo("mnist")
    args = demo.parse_args(["--quick", "--skip-mlp", "--images",
                            str(tmp_path / "images-idx3-ubyte.gz"), "--labels",
                            str(tmp_path / "labels-idx1-ubyte.gz")])
    X, y = demo.load(args)
    np.testing.assert_array_equal(X, images[keep].reshape(-1, 784))
    np.testing.assert_array_equal(y, labels[keep])
    train, test = demo.split(len(X), seed=0)
    assert (len(train), len(test)) == (250, 1000)
    assert np.intersect1d(train, test).size == 0
    with pytest.raises(SystemExit):
        demo.parse_args(["--images", "x.gz"])  # without --labels
    write_idx(tmp_path / "few-idx3-ubyte.gz", images[:10])
    write_idx(tmp_path / "few-idx1-ubyte.gz", labels[:10].astype(np.uint8))
    with pytest.raises(SystemExit, match="more than 1000 images"):
        demo.load(demo.parse_args(["--images", str(tmp_path / "few-idx3-ubyte.gz"),
                                   "--labels", str(tmp_path / "few-idx1-ubyte.gz")]))


def test_tables_quick_writes_the_synthetic_table_the_numbers_and_the_pictures(tmp_path, capsys):
    from npflow import tables

    demo = load_demo("tables")
    results = demo.main(["--quick", "--out", str(tmp_path)])
    for name in ("columns", "correlations", "pairplot", "imputations"):
        assert_png(tmp_path / f"tables_{name}.png")
    synthetic = tables.read_csv(tmp_path / "synthetic.csv", header=True)
    penguins = tables.load_penguins()
    assert synthetic.names == penguins.names and len(synthetic) == results["n_train"] == 275
    assert set(synthetic.column("species")) <= {"Adelie", "Chinstrap", "Gentoo"}
    imputed = tables.read_csv(tmp_path / "imputed.csv", header=True)
    assert imputed.names == (".imp",) + penguins.names and len(imputed) == 2 * 69
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    assert saved["evaluation"] == results["evaluation"] and saved["n_held_out"] == 69
    imp = saved["imputation"]
    # 20 % of the held-out rows' observed cells outside species, every one scored once
    observed = ~demo.split(penguins, 0)[1].missing()[:, 1:]
    hidden = imp["numeric_cells"] + imp["categorical_cells"]
    assert hidden == sum(s["cells"] for s in imp["columns"].values())
    assert hidden == round(demo.MASK_SHARE * observed.sum())
    assert imp["truth_within_draws_expected"] == pytest.approx(1 / 3)  # K = 2
    out = capsys.readouterr().out
    ev = saved["evaluation"]
    assert f"Overall             {100 * ev['overall']:6.2f}%" in out
    assert f"RMSE/sd flow {imp['rmse_flow']:.3f}" in out and f"mean {imp['rmse_mean']:.3f}" in out
