"""The demos compute and print their numbers without matplotlib: each runs at tiny size in a fresh
interpreter where ``import matplotlib`` fails (a meta-path finder raises ModuleNotFoundError, as
an interpreter without it does), prints its measurements, says in ONE line why the pictures are
skipped, and writes no picture."""
import os
import subprocess
import sys

import pytest

from _helpers import DEMOS, load_demo

from npflow.train import TrainConfig, Trainer

ROOT = os.path.dirname(DEMOS)
SKIPPED = "pictures skipped: matplotlib is not installed (pip install 'npflow[viz]')"
# Run a demo as `python demos/<name>.py ARGS` would, with matplotlib unimportable.
RUN_WITHOUT_MATPLOTLIB = """
import os, runpy, sys

class NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMatplotlib())
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
assert "matplotlib" not in sys.modules
"""
DEMO_RUNS = {  # demo: (tiny arguments, what the printed numbers must include)
    "checkerboard": (["--steps", "3", "--n", "300", "--sample-steps", "2", "--eval-n", "100",
                      "--nll-steps", "2", "--path-points", "50", "--path-steps", "4",
                      "--frames", "3"], ("precision", "W2", "NLL", "floor log 32")),
    "paths_and_couplings": (["--steps", "3", "--n", "40", "--paths", "10"],
                            ("W2 to 40 data points", "OT-CFM", "I-CFM")),
    "minimal": (["--steps", "3", "--n", "50"], ("step", "loss")),
    "mnist": (["--quick", "--skip-mlp"], ("classifier held-out accuracy", "U-Net: held-out "
                                          "bits/dim", "Frechet distance", "classified as asked")),
    "tables": (["--quick"], ("Overall", "distance to closest training row", "RMSE/sd flow")),
    "conditional": (["--steps", "30", "--n", "20", "--sample-steps", "3"],
                    ("precision per class", "w = 4")),
    "reflow": (["--steps", "20", "--reflow-steps", "10", "--pairs", "100", "--n", "50"],
               ("straightness", "reflow 2")),
    "solvers": (["--steps", "3", "--n", "40", "--reference-steps", "2", "--max-steps", "2"],
                ("dopri5", "rk4")),
    "data_to_data": (["--steps", "3", "--n", "40", "--ode-steps", "1", "--frames", "2",
                      "--paths", "10"], ("W2 data vs data", "OT-CFM")),
    "digits": (["--quick", "--networks", "mlp"], ("classifier held-out accuracy",
                                                  "held-out bits/dim")),
    "likelihood": (["--model", "{model}", "--n", "50", "--grid", "6", "--ode-steps", "2",
                    "--nll-steps", "1", "2"], ("log 32",)),
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A gaussian -> checkerboard checkpoint after 5 steps (the likelihood demo reads one)."""
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    Trainer(TrainConfig(steps=5, batch_size=64, hidden=(16,))).run(out=str(path), quiet=True)
    return str(path)


def test_every_demo_is_run_without_matplotlib():
    names = {name[:-3] for name in os.listdir(DEMOS) if name.endswith(".py")}
    assert names - {"_common"} == set(DEMO_RUNS)


@pytest.mark.parametrize("demo", sorted(DEMO_RUNS))
def test_demo_prints_its_numbers_and_one_skip_line_without_matplotlib(demo, tmp_path,
                                                                       tiny_model):
    args, expected = DEMO_RUNS[demo]
    args = [a.format(model=tiny_model) for a in args]
    script = os.path.join(DEMOS, f"{demo}.py")
    env = {**os.environ, "PYTHONPATH": ROOT}  # this checkout's npflow
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_MATPLOTLIB, script, *args,
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count(SKIPPED) == 1, done.stdout
    assert not any(line.startswith("pictures:") for line in lines)
    for text in expected:
        assert text in done.stdout, text
    pictures = [name for name in os.listdir(tmp_path) if name.endswith((".png", ".gif"))]
    assert pictures == []


def test_pictures_says_once_why_it_cannot_draw(monkeypatch, capsys):
    common = load_demo("_common", "_common_without_matplotlib")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    assert common.pictures() is False
    assert capsys.readouterr().out == SKIPPED + "\n"
