"""Smoke tests of demos/experiments/ablation.py: a tiny grid writes the figure and the JSON it
prints, caches every panel, and trains again only what a changed configuration needs."""
import json
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL.Image")

from _helpers import assert_png, load_demo  # noqa: E402
from npflow import checkpoint, datasets, sampling  # noqa: E402
from npflow.train import TrainConfig  # noqa: E402


def test_ablation_quick_writes_the_figure_the_json_it_prints_and_reuses_its_cache(tmp_path,
                                                                                  capsys):
    demo = load_demo("experiments/ablation")
    args = ["--quick", "--out", str(tmp_path / "ablation.png"), "--cache", str(tmp_path / "c")]
    result = demo.main(args)
    assert_png(tmp_path / "ablation.png")
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved == result
    out = capsys.readouterr().out
    assert json.dumps(result["precision"], indent=1) in out  # the JSON written is what is printed
    names = {panel.name for panel in demo.PANELS}
    assert set(result["precision"]) == names and len(names) == 7  # the base panel is shared
    base = TrainConfig(**{**result["base"], "hidden": tuple(result["base"]["hidden"])})
    assert (base.steps, base.batch_size, result["n"], result["sample_steps"]) == (3, 32, 200, 2)
    for panel in demo.PANELS:
        record = json.loads((tmp_path / "c" / f"{panel.name}.json").read_text())
        samples = np.load(tmp_path / "c" / f"{panel.name}.npy")
        assert samples.shape == (200, 2)
        assert record["precision"] == result["precision"][panel.name]
        assert record["precision"] == datasets.checkerboard_precision(samples)
        changed = {k: v for k, v in record["config"].items() if v != result["base"][k]}
        assert changed == {k: list(v) if isinstance(v, tuple) else v
                           for k, v in panel.changes.items()}
    # EMA off samples the raw weights of the base run itself: same model file, other weights.
    ckpt = checkpoint.load(str(tmp_path / "c" / "base.npz"))
    x0 = datasets.sample("gaussian", 200, np.random.default_rng(1))
    raw = sampling.sample_flow(ckpt.model(ema=False), x0.astype(np.float32), "rk4", 2).x
    np.testing.assert_array_equal(np.load(tmp_path / "c" / "base-raw.npy"), raw)
    assert not np.array_equal(np.load(tmp_path / "c" / "base.npy"), raw)
    # A second call trains nothing: every panel is read back from the cache.
    again = demo.main(args)
    assert again["precision"] == result["precision"]
    assert capsys.readouterr().out.count("cached") == len(demo.PANELS)


def test_ablation_trains_again_when_the_configuration_changes(tmp_path, capsys):
    demo = load_demo("experiments/ablation")
    args = ["--quick", "--out", str(tmp_path / "a.png"), "--cache", str(tmp_path / "c")]
    repeats = len(demo.PANELS) - len({panel.name for panel in demo.PANELS})  # the base panel
    model = tmp_path / "c" / "base.npz"
    demo.main(args + ["--n", "50"])
    trained = os.stat(model).st_mtime_ns
    capsys.readouterr()
    demo.main(args + ["--n", "60"])  # same models, other samples: sampled again, not trained
    assert capsys.readouterr().out.count("cached") == repeats
    assert json.loads((tmp_path / "c" / "base.json").read_text())["n"] == 60
    assert os.stat(model).st_mtime_ns == trained
    demo.main(args + ["--n", "60", "--seed", "1"])  # another seed: every model trained again
    assert capsys.readouterr().out.count("cached") == repeats
    assert checkpoint.load(str(model)).train_config["seed"] == 1
