"""Smoke test of demos/experiments/paper_2d_table.py: a tiny run writes the markdown table and
the JSON with every key, runs FM only from a Gaussian source, and a second call resumes instead
of retraining."""
import json
import math

import pytest

from _helpers import load_demo

@pytest.fixture(scope="module")
def demo():
    return load_demo("experiments/paper_2d_table")


ARGS = ["--quick", "--steps", "40", "--n-eval", "64", "--tasks", "N-8gaussians",
        "moons-8gaussians"]
RUN_KEYS = {"task", "method", "seed", "train_seconds", "eval_seconds", "final_loss", "w2",
            "dopri5_nfe", "path_energy", "w2_squared_source_target", "npe", "w2_floor"}


def test_quick_run_writes_table_and_json_and_resumes(demo, tmp_path, capsys):
    runs = demo.main(ARGS + ["--out", str(tmp_path)])
    md = (tmp_path / demo.MD_NAME).read_text()
    data = json.loads((tmp_path / demo.JSON_NAME).read_text())
    assert set(data) == {"settings", "runs", "summary"}
    assert data["settings"]["steps"] == 40 and data["settings"]["n_eval"] == 64
    assert data["settings"]["train_config"]["batch_size"] == 256
    # FM needs a Gaussian source: 3 methods on N->8gaussians, 2 on moons->8gaussians
    pairs = sorted((r["task"], r["method"]) for r in data["runs"])
    assert pairs == sorted([("N->8gaussians", "I-CFM"), ("N->8gaussians", "OT-CFM"),
                            ("N->8gaussians", "FM"), ("moons->8gaussians", "I-CFM"),
                            ("moons->8gaussians", "OT-CFM")])
    for run in data["runs"]:
        assert set(run) == RUN_KEYS
        assert set(run["w2"]) == {"euler-1", "euler-2", "euler-5", "euler-10", "euler-100",
                                  "dopri5"}
        assert all(math.isfinite(w) and w >= 0 for w in run["w2"].values())
        assert run["dopri5_nfe"] >= 7 and run["seed"] == 0
        gap = abs(run["path_energy"] - run["w2_squared_source_target"])
        assert run["npe"] == pytest.approx(gap / run["w2_squared_source_target"])
    # every method of a task is scored on the same held-out points, so the W2 noise floor and
    # the source-target W2^2 are one number per task
    for task in ("N->8gaussians", "moons->8gaussians"):
        mine = [r for r in data["runs"] if r["task"] == task]
        assert len({r["w2_floor"] for r in mine}) == 1
        assert len({r["w2_squared_source_target"] for r in mine}) == 1
        assert all(r["path_energy"] > 0 and r["w2_floor"] > 0 for r in mine)
    assert set(data["summary"]) == {"N->8gaussians", "moons->8gaussians"}
    assert "FM" not in data["summary"]["moons->8gaussians"]
    for row in ("| N->8gaussians | OT-CFM | 1 |", "| moons->8gaussians | I-CFM | 1 |",
                "| N->8gaussians | FM |", "W2 dopri5", "NPE", "Euler 1 |", "W2 noise floor"):
        assert row in md
    assert "| moons->8gaussians | FM |" not in md
    # the signed gap is the NPE up to its sign
    gaps = data["summary"]["N->8gaussians"]["OT-CFM"]["energy_gap"]
    assert abs(gaps[0]) == pytest.approx(data["summary"]["N->8gaussians"]["OT-CFM"]["npe"][0])
    assert md in capsys.readouterr().out
    # a second call finds every run done and trains nothing
    again = demo.main(ARGS + ["--out", str(tmp_path)])
    assert again == runs
    assert "5 runs found" in capsys.readouterr().out


def test_other_settings_in_the_same_folder_are_refused(demo, tmp_path):
    demo.main(ARGS[:-1] + ["--out", str(tmp_path)])  # N->8gaussians only
    with pytest.raises(SystemExit, match="other settings"):
        demo.main(["--quick", "--steps", "41", "--n-eval", "64", "--tasks", "N->8gaussians",
                   "--out", str(tmp_path)])  # the task's name is accepted too


def test_unknown_task_is_an_argparse_error(demo, capsys):
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--tasks", "N-checkerboard"])
    assert "unknown task 'N-checkerboard'" in capsys.readouterr().err
