"""Tests for the npflow command line (train, datasets, sample, evaluate), run in-process through
``npflow.cli.main``, plus two subprocess checks of ``python -m npflow``.

Every user error must end with exit code 2 and exactly one line on standard error that names
the offending option; a diverged run exits with 1, also in one line.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import npflow
from npflow import checkpoint, datasets, solvers
from npflow.cli import main
from npflow.train import TrainConfig, Trainer

TINY = ["--steps", "12", "--batch-size", "64", "--hidden", "16", "--warmup-steps", "0",
        "--lr", "0.01"]


def run(capsys, *argv):
    """Run the CLI; return (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, out, err, *names):
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err  # exactly one line
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny trained models: gaussian -> checkerboard, gaussian -> moons, moons -> gaussian."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for source, target in (("gaussian", "checkerboard"), ("gaussian", "moons"),
                           ("moons", "gaussian")):
        path = str(folder / f"{source}-{target}.npz")
        assert main(["train", *TINY, "--source", source, "--target", target, "--out", path,
                     "--quiet"]) == 0
        paths[target] = path
    return paths


# --- npflow train -------------------------------------------------------------------------------

def test_train_writes_the_checkpoint_and_prints_a_summary(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    code, out, err = run(capsys, "train", *TINY, "--target", "moons", "--seed", "3",
                         "--activation", "tanh", "--out", path)
    assert code == 0 and err == ""
    ckpt = checkpoint.load(path)
    assert ckpt.step == 12 and len(ckpt.losses) == 12
    assert out.count("\n") == 1
    assert "trained 12 steps" in out and path in out
    assert f"final loss {ckpt.losses[-1]:.4f}" in out
    cfg = TrainConfig.from_dict(ckpt.train_config)
    defaults = TrainConfig()
    assert (cfg.target, cfg.seed, cfg.activation, cfg.hidden, cfg.lr, cfg.batch_size) == \
        ("moons", 3, "tanh", (16,), 0.01, 64)
    assert (cfg.source, cfg.path, cfg.coupling, cfg.ema_decay) == \
        (defaults.source, defaults.path, defaults.coupling, defaults.ema_decay)


def test_train_quiet_prints_nothing(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    assert run(capsys, "train", *TINY, "--out", path, "--quiet") == (0, "", "")
    assert checkpoint.load(path).step == 12


def test_train_default_out_is_model_npz_in_the_working_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "train", *TINY, "--steps", "2")
    assert code == 0 and "model.npz" in out
    assert os.listdir(tmp_path) == ["model.npz"]


def test_resume_continues_the_run_exactly(tmp_path, capsys):
    constant = [*TINY, "--schedule", "constant"]
    path, straight = str(tmp_path / "m.npz"), str(tmp_path / "straight.npz")
    assert run(capsys, "train", *constant, "--steps", "6", "--out", path)[0] == 0
    code, out, err = run(capsys, "train", "--resume", "--steps", "14", "--out", path)
    assert code == 0 and "trained 8 steps" in out
    assert err == ("npflow train: extended from 6 to 14 steps; the constant learning rate "
                   "continues unchanged\n")
    assert run(capsys, "train", *constant, "--steps", "14", "--out", straight, "--quiet")[0] == 0
    a, b = checkpoint.load(path), checkpoint.load(straight)
    assert a.step == 14 and len(a.losses) == 14
    for name in ("params", "ema_params", "adam_m", "adam_v", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("change", [["--lr", "0.1"], ["--hidden", "8"], ["--target", "moons"],
                                    ["--seed", "1"], ["--batch-size", "32"]])
def test_resume_refuses_to_change_other_options(tmp_path, capsys, change):
    path = str(tmp_path / "m.npz")
    assert run(capsys, "train", *TINY, "--out", path, "--quiet")[0] == 0
    before = open(path, "rb").read()
    code, out, err = run(capsys, "train", "--resume", "--steps", "20", *change, "--out", path)
    stored = dict(zip(TINY[::2], TINY[1::2]))
    stored.update({"--target": "checkerboard", "--seed": "0"})
    assert_usage_error(code, out, err, f"{change[0]}: the run stored in {path} used "
                       f"{stored[change[0]]}, this command says {change[1]}")
    assert open(path, "rb").read() == before


def test_the_same_command_with_resume_continues_exactly(tmp_path, capsys):
    """A requeue repeats the command line that started the run, plus --resume."""
    path, straight = str(tmp_path / "m.npz"), str(tmp_path / "straight.npz")
    argv = ["train", *TINY, "--seed", "3", "--target", "moons", "--out", path, "--quiet"]
    stopped = Trainer(TrainConfig(steps=12, batch_size=64, hidden=(16,), warmup_steps=0,
                                  lr=0.01, seed=3, target="moons"))
    for _ in range(6):  # a run of 12 steps, stopped after 6
        stopped.train_step()
    stopped.save(path)
    assert run(capsys, *argv, "--resume")[0] == 0
    assert run(capsys, *argv, "--resume")[0] == 0  # again, with nothing left to do
    assert run(capsys, "train", *TINY, "--seed", "3", "--target", "moons", "--out", straight,
               "--quiet")[0] == 0
    a, b = checkpoint.load(path), checkpoint.load(straight)
    assert a.step == b.step == 12
    for name in ("params", "ema_params", "adam_m", "adam_v", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_resume_auto_starts_a_missing_run_and_continues_an_existing_one(tmp_path, capsys):
    path, straight = str(tmp_path / "m.npz"), str(tmp_path / "straight.npz")
    argv = ["train", *TINY, "--out", path, "--resume", "auto"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "trained 12 steps" in out
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "trained 0 steps" in out
    assert run(capsys, "train", *TINY, "--out", straight, "--quiet")[0] == 0
    np.testing.assert_array_equal(checkpoint.load(path).params, checkpoint.load(straight).params)
    code, out, err = run(capsys, *argv[:-2], "--seed", "4", "--resume", "auto")
    assert_usage_error(code, out, err, "--seed: the run stored in", "used 0, this command says 4")


def test_train_residual_flag_reaches_the_model(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    argv = ["train", *TINY, "--hidden", "16,16", "--out", path, "--quiet"]
    assert run(capsys, *argv, "--residual")[0] == 0
    assert checkpoint.load(path).model().residual
    assert run(capsys, *argv, "--no-residual")[0] == 0
    assert not checkpoint.load(path).model().residual


def test_resume_refuses_fewer_steps_than_done(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    assert run(capsys, "train", *TINY, "--out", path, "--quiet")[0] == 0
    before = open(path, "rb").read()
    assert_usage_error(*run(capsys, "train", "--resume", "--steps", "5", "--out", path),
                       "--steps", "12")
    assert open(path, "rb").read() == before


@pytest.mark.parametrize("argv, name", [
    (["--steps", "0"], "--steps"),
    (["--steps", "ten"], "--steps"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--hidden", "3,a"], "--hidden"),
    (["--hidden", "16,0"], "--hidden"),
    (["--path", "bogus"], "--path"),
    (["--target", "mnist"], "--target"),
    (["--ema-decay", "2"], "--ema-decay"),
    (["--sigma", "inf"], "--sigma"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--bogus-option", "1"], "--bogus-option"),
])
def test_train_bad_values_exit_2_with_one_line(tmp_path, capsys, argv, name):
    assert_usage_error(*run(capsys, "train", *TINY, *argv, "--out", tmp_path / "m.npz"), name)
    assert os.listdir(tmp_path) == []


def test_train_out_in_a_missing_folder(tmp_path, capsys):
    missing = tmp_path / "nope" / "m.npz"
    assert_usage_error(*run(capsys, "train", *TINY, "--out", missing), "--out", "nope")
    assert os.listdir(tmp_path) == []


def test_resume_without_a_checkpoint(tmp_path, capsys):
    assert_usage_error(*run(capsys, "train", "--resume", "--out", tmp_path / "m.npz"),
                       "--resume", "m.npz")
    assert os.listdir(tmp_path) == []


def test_resume_from_a_corrupt_checkpoint(tmp_path, capsys):
    path = tmp_path / "m.npz"
    path.write_bytes(b"not a checkpoint")
    assert_usage_error(*run(capsys, "train", "--resume", "--out", path), "m.npz")


def test_diverged_training_exits_1_with_one_line(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # overflow warnings would print extra stderr lines
        code, out, err = run(capsys, "train", *TINY, "--lr", "1e6", "--grad-clip", "0",
                             "--hidden", "16,16", "--schedule", "constant", "--out", path)
    assert [str(w.message) for w in caught] == []
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "learning rate" in err and "step" in err


# --- npflow datasets ------------------------------------------------------------------------------

def test_datasets_lists_every_dataset(capsys):
    code, out, err = run(capsys, "datasets")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(datasets.DATASETS)
    for line, text in zip(lines, datasets.DATASETS.values()):
        assert line.endswith(text)


# --- npflow sample ------------------------------------------------------------------------------

def test_sample_writes_points_and_trajectory(models, tmp_path, capsys):
    out, traj = str(tmp_path / "s.npy"), str(tmp_path / "t.npy")
    code, stdout, err = run(capsys, "sample", "--model", models["checkerboard"], "--n", 50,
                            "--steps", 8, "--seed", 4, "--out", out, "--trajectory", traj)
    assert code == 0 and err == ""
    assert "32 velocity evaluations" in stdout  # rk4: 4 per step
    x, path = np.load(out), np.load(traj)
    assert x.shape == (50, 2) and path.shape == (9, 50, 2)
    # independent reference: x0 drawn from the source with the seed, rk4 on the EMA weights
    x0 = datasets.sample("gaussian", 50, np.random.default_rng(4)).astype(np.float32)
    model = checkpoint.load_model(models["checkerboard"])
    np.testing.assert_array_equal(path[0], x0)
    np.testing.assert_array_equal(path[-1], x)
    np.testing.assert_allclose(x, solvers.solve(model, x0, "rk4", 8).x, rtol=1e-6, atol=1e-6)


def test_sample_raw_weights_and_chunking(models, tmp_path, capsys):
    files = {name: str(tmp_path / f"{name}.npy") for name in ("ema", "raw", "chunked")}
    base = ["sample", "--model", models["moons"], "--n", 23, "--steps", 5]
    assert run(capsys, *base, "--out", files["ema"])[0] == 0
    assert run(capsys, *base, "--out", files["raw"], "--raw")[0] == 0
    assert run(capsys, *base, "--out", files["chunked"], "--chunk-size", 7)[0] == 0
    ema, raw, chunked = (np.load(files[k]) for k in ("ema", "raw", "chunked"))
    x0 = datasets.sample("gaussian", 23, np.random.default_rng(0)).astype(np.float32)
    raw_model = checkpoint.load_model(models["moons"], ema=False)
    np.testing.assert_allclose(raw, solvers.solve(raw_model, x0, "rk4", 5).x, rtol=1e-6,
                               atol=1e-6)
    assert not np.allclose(raw, ema)
    np.testing.assert_allclose(chunked, ema, rtol=1e-6, atol=1e-6)


def test_sample_with_dopri5(models, tmp_path, capsys):
    out = str(tmp_path / "s.npy")
    code, stdout, _ = run(capsys, "sample", "--model", models["moons"], "--n", 30, "--solver",
                          "dopri5", "--rtol", "1e-6", "--atol", "1e-5", "--out", out)
    assert code == 0 and "dopri5" in stdout
    x0 = datasets.sample("gaussian", 30, np.random.default_rng(0)).astype(np.float32)
    model = checkpoint.load_model(models["moons"])
    reference = solvers.solve(model, x0, "rk4", 200).x
    np.testing.assert_allclose(np.load(out), reference, atol=1e-3)
    # the tolerances reach the solver as given (each one changes the steps taken)
    for rtol, atol in ((1e-6, 1e-5), (1e-2, 1e-5), (1e-6, 1e-2)):
        sol = solvers.solve(model, x0, "dopri5", rtol=rtol, atol=atol)
        code, stdout, _ = run(capsys, "sample", "--model", models["moons"], "--n", 30,
                              "--solver", "dopri5", "--rtol", rtol, "--atol", atol, "--out", out)
        assert f" {sol.nfe} velocity evaluations" in stdout, (rtol, atol, sol.nfe, stdout)
        np.testing.assert_allclose(np.load(out), sol.x, rtol=1e-6, atol=1e-6)


# --- npflow evaluate ------------------------------------------------------------------------------

KEYS = {"n", "w2", "mmd", "energy", "w2_floor", "mmd_floor", "energy_floor", "nll", "nfe",
        "precision", "nll_floor"}


def evaluate_json(capsys, model, *extra):
    steps = [] if "dopri5" in extra else ["--steps", 6]  # dopri5 takes no --steps
    code, out, err = run(capsys, "evaluate", "--model", model, "--n", 200, *steps, "--json",
                         *extra)
    assert code == 0 and err == "" and out.count("\n") == 1
    return json.loads(out)


def test_evaluate_json_on_a_checkerboard_model(models, tmp_path, capsys):
    result = evaluate_json(capsys, models["checkerboard"])
    assert set(result) == KEYS
    assert result["nfe"] == 24
    for key in ("w2", "mmd", "energy", "nll", "precision"):
        assert isinstance(result[key], float) and np.isfinite(result[key]), key
    assert result["w2"] > 0 and result["energy"] > 0
    assert result["nll"] > np.log(32)  # a cross-entropy exceeds the target's entropy log 32
    # precision is that of the points `npflow sample` makes with the same seed, n and steps
    out = str(tmp_path / "s.npy")
    assert run(capsys, "sample", "--model", models["checkerboard"], "--n", 200, "--steps", 6,
               "--out", out)[0] == 0
    assert result["precision"] == datasets.checkerboard_precision(np.load(out))


def test_evaluate_json_precision_is_null_off_the_checkerboard(models, capsys):
    result = evaluate_json(capsys, models["moons"])
    assert set(result) == KEYS and result["precision"] is None
    assert isinstance(result["nll"], float)


def test_evaluate_json_nll_is_null_without_a_source_density(models, capsys):
    result = evaluate_json(capsys, models["gaussian"])  # trained moons -> gaussian
    assert result["nll"] is None and result["precision"] is None
    assert isinstance(result["w2"], float)


def test_evaluate_with_dopri5(models, capsys):
    result = evaluate_json(capsys, models["moons"], "--solver", "dopri5", "--rtol", "1e-4",
                           "--atol", "1e-4")
    assert set(result) == KEYS
    # the evaluations of dopri5 on the same 200 source points (seed 0), counted independently
    x0 = datasets.sample("gaussian", 200, np.random.default_rng(0)).astype(np.float32)
    sol = solvers.solve(checkpoint.load_model(models["moons"]), x0, "dopri5", rtol=1e-4,
                        atol=1e-4)
    assert result["nfe"] == sol.nfe


def test_evaluate_human_readable(models, capsys):
    code, out, err = run(capsys, "evaluate", "--model", models["checkerboard"], "--n", 100,
                         "--steps", 4)
    assert code == 0 and err == ""
    for label in ("gaussian -> checkerboard", "W2", "MMD", "energy distance", "NLL",
                  "precision", "16 evaluations"):
        assert label in out, label
    code, out, _ = run(capsys, "evaluate", "--model", models["gaussian"], "--n", 100,
                       "--steps", 4)
    assert code == 0 and "W2" in out and "NLL" not in out and "precision" not in out


# --- sample / evaluate errors -------------------------------------------------------------------

SOLVER_ERRORS = [
    (["--solver", "rk45"], "--solver"),
    (["--steps", "0"], "--steps"),
    (["--rtol", "nan"], "--rtol"),
    (["--rtol", "-1"], "--rtol"),
    (["--atol", "0"], "--atol"),
    (["--rtol", "1e-3"], "--rtol sets the step-size control of --solver 'dopri5'"),
    (["--n", "0"], "--n"),
    (["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("command", ["sample", "evaluate"])
@pytest.mark.parametrize("argv, name", SOLVER_ERRORS)
def test_solver_option_errors(models, tmp_path, capsys, command, argv, name):
    out = ["--out", str(tmp_path / "s.npy")] if command == "sample" else []
    assert_usage_error(*run(capsys, command, "--model", models["checkerboard"], *argv, *out),
                       name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_missing_model_file(tmp_path, capsys, command):
    assert_usage_error(*run(capsys, command, "--model", tmp_path / "none.npz"), "none.npz",
                       "does not exist")


@pytest.mark.parametrize("command", ["sample", "evaluate"])
@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04 truncated zip"])
def test_corrupt_model_file(tmp_path, capsys, command, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    out = ["--out", tmp_path / "s.npy"] if command == "sample" else []
    assert_usage_error(*run(capsys, command, "--model", bad, *out), "bad.npz")


@pytest.mark.parametrize("argv, names", [
    (["--label-column", "1"], ["--label-column", "--data"]),
    (["--key", "x"], ["--key", "--data"]),
])
def test_evaluate_refuses_reading_options_without_data(models, capsys, argv, names):
    assert_usage_error(*run(capsys, "evaluate", "--model", models["checkerboard"], *argv), *names)


def test_rows_of_a_model_of_numbers_are_read_as_numbers(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, np.random.default_rng(0).normal(size=(60, 2)), delimiter=",")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", rows, *TINY, "--out", model, "--quiet")[0] == 0
    text = tmp_path / "text.csv"
    text.write_text("1,2\n3,x\n4,5\n")
    assert_usage_error(*run(capsys, "log-prob", "--model", model, "--data", text, "--out",
                            tmp_path / "s.npy"), "--data", "'x'", "expected a number")


def test_model_option_is_required(capsys):
    assert_usage_error(*run(capsys, "sample"), "--model")


@pytest.mark.parametrize("argv, name", [
    (["--out", "s.txt"], "--out"),
    (["--out", os.path.join("nope", "s.npy")], "--out"),
    (["--trajectory", "t.png"], "--trajectory"),
])
def test_sample_output_file_errors(models, tmp_path, capsys, monkeypatch, argv, name):
    monkeypatch.chdir(tmp_path)
    assert_usage_error(*run(capsys, "sample", "--model", models["checkerboard"], *argv), name)
    assert os.listdir(tmp_path) == []


def test_sample_dopri5_trajectory_needs_one_chunk(models, tmp_path, capsys):
    code, out, err = run(capsys, "sample", "--model", models["checkerboard"], "--n", 10,
                         "--solver", "dopri5", "--chunk-size", 4, "--out", tmp_path / "s.npy",
                         "--trajectory", tmp_path / "t.npy")
    assert_usage_error(code, out, err, "--trajectory", "--chunk-size")


# --- python -m npflow --------------------------------------------------------------------------

def _python_m_npflow(*argv, cwd):
    root = os.path.dirname(os.path.dirname(os.path.abspath(npflow.__file__)))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "npflow", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_m_npflow_datasets(tmp_path):
    proc = _python_m_npflow("datasets", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(datasets.DATASETS)


def test_python_m_npflow_bad_option_is_one_line_without_traceback(tmp_path):
    proc = _python_m_npflow("train", "--steps", "0", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "--steps" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []


# --- class-conditional models, guidance and reflow -------------------------------------------

@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cond") / "c.npz")
    assert main(["train", *TINY, "--target", "8gaussians", "--conditional", "--label-dropout",
                 "0.2", "--out", path, "--quiet"]) == 0
    return path


def test_train_conditional_records_the_options(conditional_model):
    ckpt = checkpoint.load(conditional_model)
    assert ckpt.train_config["conditional"] is True and ckpt.train_config["label_dropout"] == 0.2
    assert ckpt.model_config["n_classes"] == 8


def test_sample_with_a_label_and_guidance(conditional_model, tmp_path, capsys):
    out = tmp_path / "s.npy"
    code, stdout, _ = run(capsys, "sample", "--model", conditional_model, "--label", 3,
                          "--guidance", 2, "--n", 40, "--steps", 5, "--out", out)
    assert code == 0 and "sampled 40 points" in stdout
    assert np.load(out).shape == (40, 2)


@pytest.mark.parametrize("argv, names", [
    (["--label", "8"], ["--label must hold classes in 0 .. 7, got 8"]),
    (["--guidance", "2"], ["--guidance needs --label"]),
    (["--label", "-1"], ["--label"]),
    (["--label", "foo"], ["--label must be a class in 0 .. 7 (this model's classes have no "
                          "names), got 'foo'"]),
])
def test_sample_bad_label_exits_2(conditional_model, tmp_path, capsys, argv, names):
    code, out, err = run(capsys, "sample", "--model", conditional_model, *argv, "--n", 5,
                         "--out", tmp_path / "s.npy")
    assert_usage_error(code, out, err, *names)


def test_options_of_other_kinds_of_model_are_named_as_flags(models, tmp_path, capsys):
    rows = tmp_path / "r.csv"
    np.savetxt(rows, np.zeros((5, 2)), delimiter=",")
    assert_usage_error(*run(capsys, "sample", "--model", models["moons"], "--source-data", rows,
                            "--out", tmp_path / "s.npy"),
                       "--source-data applies to a data-to-data model only")
    assert_usage_error(*run(capsys, "plot", "--model", models["moons"], "--data", rows,
                            "--out", tmp_path / "p.png"),
                       "--data applies to a model of rows only")


def test_sample_label_on_an_unconditional_model_exits_2(models, tmp_path, capsys):
    code, out, err = run(capsys, "sample", "--model", models["moons"], "--label", 0, "--n", 5,
                         "--out", tmp_path / "s.npy")
    assert_usage_error(code, out, err, "--label needs a class-conditional model")
    code, out, err = run(capsys, "sample", "--model", models["moons"], "--guidance", 2,
                         "--n", 5, "--out", tmp_path / "s.npy")
    assert_usage_error(code, out, err, "--guidance needs a class-conditional model")


def test_last_weights_of_a_model_of_a_built_in_target_exit_2(models, tmp_path, capsys):
    code, out, err = run(capsys, "sample", "--model", models["moons"], "--last", "--n", 5,
                         "--out", tmp_path / "s.npy")
    assert_usage_error(code, out, err, "picks between the best and the last weights")


def test_evaluate_names_only_the_table_options_given(models, capsys):
    code, out, err = run(capsys, "evaluate", "--model", models["moons"], "--target-column", "x")
    assert_usage_error(code, out, err, "--target-column applies to a model of a table only")
    assert "train" not in err  # not an option of the command


def test_impute_guidance_needs_a_model_with_a_label_column(tmp_path, capsys):
    rows = "".join(f"{i % 7},{'xy'[i % 2]},{i % 3}\n" for i in range(30))
    _write(tmp_path / "t.csv", "a,b,c\n" + rows)
    _write(tmp_path / "gaps.csv", "a,b,c\n1,,0\n,y,1\n")
    assert run(capsys, "train", *DATA_TINY, "--data", tmp_path / "t.csv", "--quiet",
               "--out", tmp_path / "m.npz")[0] == 0
    code, out, err = run(capsys, "impute", "--model", tmp_path / "m.npz", "--data",
                         tmp_path / "gaps.csv", "--guidance", 2, "--out", tmp_path / "f.csv")
    assert_usage_error(code, out, err, "--guidance needs a class-conditional model (trained with "
                                       "labels, such as a table with a label column)")


def test_label_dropout_needs_conditional(tmp_path, capsys):
    code, out, err = run(capsys, "train", *TINY, "--label-dropout", "0.2",
                         "--out", tmp_path / "m.npz")
    assert_usage_error(code, out, err, "--label-dropout needs --conditional")


def test_reflow_writes_a_rectified_model_that_refuses_resume(models, tmp_path, capsys):
    out = tmp_path / "r.npz"
    code, stdout, _ = run(capsys, "reflow", "--model", models["moons"], "--pairs", 100,
                          "--steps", 6, "--sample-steps", 4, "--out", out, "--quiet")
    assert code == 0 and stdout == ""
    ckpt = checkpoint.load(str(out))
    assert ckpt.train_config["reflow"] == 1 and ckpt.step == 6
    code, stdout, _ = run(capsys, "reflow", "--model", out, "--pairs", 100, "--steps", 3,
                          "--out", tmp_path / "r2.npz")
    assert code == 0 and stdout.startswith("reflow 2:")
    code, out_text, err = run(capsys, "train", "--resume", "--out", out, "--steps", 10)
    assert_usage_error(code, out_text, err, "cannot be resumed")


def test_reflow_of_a_conditional_model_exits_2(conditional_model, tmp_path, capsys):
    code, out, err = run(capsys, "reflow", "--model", conditional_model, "--out",
                         tmp_path / "r.npz")
    assert_usage_error(code, out, err, "conditional")


@pytest.mark.parametrize("argv, names", [
    (["--source-data", "{rows}"], ["--source-data applies to a data-to-data model only"]),
    (["--sample-steps", "0"], ["--sample-steps must be an integer >= 1"]),
    (["--solver", "dopri5"], ["--solver must be a fixed-step solver"]),
    (["--pairs", "0"], ["--pairs must be an integer >= 1"]),
])
def test_reflow_option_errors(models, tmp_path, capsys, argv, names):
    np.savetxt(tmp_path / "rows.csv", np.zeros((5, 2)), delimiter=",")
    argv = [a.format(rows=tmp_path / "rows.csv") for a in argv]
    assert_usage_error(*run(capsys, "reflow", "--model", models["moons"], *argv, "--out",
                            tmp_path / "r.npz"), *names)
    assert not os.path.exists(tmp_path / "r.npz")


# --- exit codes: usage errors (2) against failures at run time (1) ---------------------------------

def test_a_solver_that_blows_up_is_a_failure_at_run_time(models, tmp_path, capsys):
    ckpt = checkpoint.load(models["moons"])
    bad = str(tmp_path / "huge.npz")
    checkpoint.save(bad, checkpoint.Checkpoint(**{**ckpt.__dict__,
                                                  "ema_params": ckpt.ema_params * 1e18}))
    code, out, err = run(capsys, "sample", "--model", bad, "--n", 10, "--steps", 3,
                         "--out", tmp_path / "s.npy")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("npflow sample: failed: integrating the flow failed: ")
    assert "NaN or infinity" in err
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("argv, what", [
    (["--hidden", "100000000"], "hidden layers 100000000"),
    (["--batch-size", "100000000"], "batches of 100000000 rows"),
])
def test_runs_too_large_for_the_machine_exit_2_naming_the_memory(tmp_path, capsys, argv, what):
    code, out, err = run(capsys, "train", *TINY, *argv, "--out", tmp_path / "m.npz")
    assert_usage_error(code, out, err, what, "GiB")
    assert os.listdir(tmp_path) == []


def test_evaluate_checks_the_memory_of_its_metrics_before_sampling(models, capsys, monkeypatch):
    monkeypatch.setattr(npflow._checks, "available_memory", lambda: 2 ** 30)
    monkeypatch.setattr(npflow.TrainedFlow, "sample_chunks", lambda *a, **k: pytest.fail("sampled"))
    code, out, err = run(capsys, "evaluate", "--model", models["moons"], "--n", 100000)
    assert_usage_error(code, out, err, "evaluate with n = 100000", "every pair of points",
                       f"about {88 * 100000 ** 2 / 2 ** 30:.1f} GiB", "1.0 GiB available")
    assert_usage_error(*run(capsys, "evaluate", "--model", models["moons"], "--n", 1),
                       "--n must be an integer >= 2, got 1")


def test_sample_more_points_than_fit_on_disk_exits_2(models, tmp_path, capsys):
    code, out, err = run(capsys, "sample", "--model", models["moons"], "--n", 10 ** 13,
                         "--out", tmp_path / "s.npy")
    assert_usage_error(code, out, err, "on disk", "free")
    assert os.listdir(tmp_path) == []


def test_sample_writes_chunk_by_chunk_what_one_chunk_would(models, tmp_path, capsys):
    one, many, text = (str(tmp_path / f) for f in ("one.npy", "many.npy", "many.csv"))
    base = ["sample", "--model", models["checkerboard"], "--n", 50, "--steps", 4, "--quiet"]
    assert run(capsys, *base, "--out", one) == (0, "", "")
    assert run(capsys, *base, "--out", many, "--chunk-size", 7)[0] == 0
    assert run(capsys, *base, "--out", text, "--chunk-size", 7)[0] == 0
    np.testing.assert_allclose(np.load(many), np.load(one), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.loadtxt(text, delimiter=","), np.load(many), rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["many.csv", "many.npy", "one.npy"]  # no leftovers


# --- signals ------------------------------------------------------------------------------------

def test_sigterm_saves_exits_143_and_says_how_to_resume(tmp_path):
    import signal
    import time
    path = str(tmp_path / "m.npz")
    root = os.path.dirname(os.path.dirname(os.path.abspath(npflow.__file__)))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "npflow", "train", "--steps", "100000",
                             "--batch-size", "64", "--hidden", "16", "--checkpoint-every", "50",
                             "--out", path], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while not os.path.exists(path) and time.time() < deadline:  # training has started
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1].startswith("stopped by SIGTERM at step ")
    assert f"(continue with: npflow train --steps 100000 " in err
    assert err.strip().endswith(f"--out {path} --resume)")
    ckpt = checkpoint.load(path)
    assert 0 < ckpt.step < 100000 and ckpt.step == ckpt.adam_step


def test_a_killed_job_relaunched_with_the_same_command_ends_as_an_uninterrupted_run(tmp_path):
    """The requeue pattern: SIGKILL mid-run (no chance to save), then the same command again."""
    import signal
    import time
    path, straight = str(tmp_path / "m.npz"), str(tmp_path / "straight.npz")
    root = os.path.dirname(os.path.dirname(os.path.abspath(npflow.__file__)))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "npflow", "train", "--steps", "3000", "--batch-size", "64",
            "--hidden", "16", "--seed", "3", "--checkpoint-every", "100", "--quiet",
            "--resume", "auto"]
    proc = subprocess.Popen([*argv, "--out", path], cwd=tmp_path, env=env)
    deadline = time.time() + 120
    while not os.path.exists(path) and time.time() < deadline:  # a periodic checkpoint exists
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < checkpoint.load(path).step < 3000
    subprocess.run([*argv, "--out", path], cwd=tmp_path, env=env, check=True, timeout=600)
    subprocess.run([*argv, "--out", straight], cwd=tmp_path, env=env, check=True, timeout=600)
    a, b = checkpoint.load(path), checkpoint.load(straight)
    assert a.step == b.step == 3000
    for name in ("params", "ema_params", "adam_m", "adam_v", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.rng_state == b.rng_state


# --- your own rows: train --data, sample, evaluate --data, log-prob, encode --------------------------

DATA_TINY = ["--steps", "40", "--batch-size", "32", "--hidden", "16,16", "--warmup-steps", "0",
             "--eval-every", "20"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 3-column CSV with a header and a label column, its held-out part, and a model of it."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    x = rng.standard_normal((300, 3)) * [1.0, 5.0, 0.2] + np.where(y[:, None] == 1, 3.0, -3.0)
    train_csv, held_csv = str(folder / "train.csv"), str(folder / "held.csv")
    for path, rows in ((train_csv, slice(0, 250)), (held_csv, slice(250, 300))):
        with open(path, "w") as f:
            f.write("a,b,c,label\r\n")  # Windows line endings
            for xi, yi in zip(x[rows], y[rows]):
                f.write(",".join(f"{v:.6f}" for v in xi) + f",{yi}\r\n")
    model = str(folder / "m.npz")
    assert main(["train", "--data", train_csv, "--label-column", "label", *DATA_TINY,
                 "--out", model, "--quiet"]) == 0
    return {"train": train_csv, "held": held_csv, "model": model, "x": x, "y": y}


def test_train_on_a_csv_file_stores_the_data_state(table):
    ckpt = checkpoint.load(table["model"])
    assert ckpt.train_config["target"] == "data" and ckpt.train_config["conditional"] is True
    assert ckpt.model_config["dim"] == 3 and ckpt.model_config["n_classes"] == 2
    assert ckpt.data.info["n"] == 250 and ckpt.data.info["files"]["label_column"] == "label"
    assert len(ckpt.data.val_index) == 25 and ckpt.data.val_losses.shape == (2, 2)
    for field, value in npflow.DATA_DEFAULTS.items():
        if field not in ("steps", "batch_size", "hidden", "warmup_steps"):
            expected = list(value) if isinstance(value, tuple) else value
            assert ckpt.train_config[field] == expected, field


def test_sample_writes_rows_in_data_units(table, tmp_path, capsys):
    out = str(tmp_path / "s.csv")
    code, stdout, err = run(capsys, "sample", "--model", table["model"], "--n", 400, "--steps",
                            10, "--label", 1, "--out", out)
    assert code == 0 and err == "" and "sampled 400 points" in stdout
    x = np.loadtxt(out, delimiter=",")
    assert x.shape == (400, 3)
    assert abs(x[:, 1].std() - 5.0) < 2.5  # the wide column is wide in data units
    ref = npflow.Flow.load(table["model"], solver_steps=10).sample(
        400, rng=np.random.default_rng(0), y=1)
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)


def test_evaluate_data_gives_nll_and_every_metric_with_its_floor(table, capsys):
    held = ["--data", table["held"], "--label-column", "label"]
    code, out, err = run(capsys, "evaluate", "--model", table["model"], *held, "--steps", 8,
                         "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["n"] == 25 and result["nll_rows"] == 50 and result["precision"] is None
    for key in ("w2", "mmd", "energy"):
        assert np.isfinite(result[key]) and np.isfinite(result[key + "_floor"])
    flow = npflow.Flow.load(table["model"], solver_steps=8)
    assert result["nll"] == pytest.approx(-flow.score(table["x"][250:]), rel=1e-5)
    code, text, _ = run(capsys, "evaluate", "--model", table["model"], *held, "--steps", 8)
    assert code == 0 and "floor" in text and "NLL (nats)" in text and "held-out rows" in text


def test_log_prob_writes_one_log_density_per_row(table, tmp_path, capsys):
    out = str(tmp_path / "scores.npy")
    code, stdout, _ = run(capsys, "log-prob", "--model", table["model"], "--data", table["held"],
                          "--label-column", "3", "--steps", 8, "--out", out)
    assert code == 0 and "wrote 50 log-densities" in stdout
    scores = np.load(out)
    assert scores.shape == (50, 1)
    flow = npflow.Flow.load(table["model"], solver_steps=8)
    np.testing.assert_allclose(scores[:, 0], flow.log_prob(table["x"][250:]), rtol=1e-5)


def test_encode_maps_rows_to_the_noise_that_sample_carries_back(table, tmp_path, capsys):
    out = str(tmp_path / "z.npy")
    assert run(capsys, "encode", "--model", table["model"], "--data", table["held"],
               "--label-column", "-1", "--steps", 20, "--out", out)[0] == 0
    z = np.load(out)
    flow = npflow.Flow.load(table["model"], solver_steps=20)
    assert z.shape == (50, 3)
    np.testing.assert_allclose(z, flow.transform(table["x"][250:]), rtol=1e-5, atol=1e-5)


def test_train_on_data_resumes_exactly_from_the_stored_file(table, tmp_path, capsys):
    path, straight = str(tmp_path / "m.npz"), str(tmp_path / "straight.npz")
    base = ["train", "--data", table["train"], "--label-column", "label", *DATA_TINY]
    assert run(capsys, *base, "--out", straight, "--quiet")[0] == 0
    assert run(capsys, *base, "--steps", "40", "--out", path, "--quiet")[0] == 0
    half = checkpoint.load(path)
    # a run stopped at step 25: resume it from the file recorded in the checkpoint
    trainer = npflow.Trainer(npflow.TrainConfig.from_dict({**half.train_config}),
                             data=table["x"][:250].round(6), labels=table["y"][:250],
                             data_files=half.data.info["files"])
    for _ in range(25):
        trainer.train_step()
        if trainer.step % 20 == 0:
            trainer.evaluate()
    trainer.save(path)
    code, out, err = run(capsys, "train", "--resume", "--out", path)
    assert code == 0 and err == "" and "trained 15 steps" in out
    a, b = checkpoint.load(path), checkpoint.load(straight)
    for name in ("params", "ema_params", "adam_m", "adam_v", "losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.data.best_params, b.data.best_params)


@pytest.mark.parametrize("make, argv, names", [
    (lambda d: None, ["--data", "{d}/missing.csv"], ["--data", "missing.csv"]),
    (lambda d: open(f"{d}/r.csv", "w").write("1,2\n3,4,5\n"), ["--data", "{d}/r.csv"],
     ["line 2"]),
    (lambda d: open(f"{d}/t.csv", "w").write("1,2\n3,x\n"), ["--data", "{d}/t.csv",
                                                              "--no-table"],
     ["line 2", "column 2"]),
    (lambda d: np.save(f"{d}/x.npy", np.zeros((4, 2))), ["--data", "{d}/x.npy", "--table"],
     ["--data", "text file", "x.npy"]),
    (lambda d: open(f"{d}/t.csv", "w").write("a,b\n1,x\n"), ["--data", "{d}/t.csv",
                                                                "--column-kind", "a=integer",
                                                                "--no-table"],
     ["--column-kind", "so --table cannot be off"]),
    (lambda d: np.save(f"{d}/one.npy", np.arange(5.0)), ["--data", "{d}/one.npy"],
     ["reshape"]),
    (lambda d: np.save(f"{d}/nan.npy", np.array([[1.0, np.nan], [2, 3], [4, 5]])),
     ["--data", "{d}/nan.npy"], ["NaN", "--drop-nonfinite"]),
    (lambda d: None, ["--labels", "{d}/l.npy"], ["--labels needs --data"]),
    (lambda d: None, ["--labels", "{d}/l.npy", "--key", "k"], ["--labels and --key need --data"]),
    (lambda d: np.save(f"{d}/x.npy", np.zeros((4, 2))), ["--data", "{d}/x.npy", "--labels",
                                                          "{d}/x.npy", "--drop-nonfinite"],
     ["--drop-nonfinite", "--label-column"]),
    (lambda d: np.save(f"{d}/x.npy", np.zeros((4, 2))), ["--data", "{d}/x.npy", "--target",
                                                          "moons"], ["--data", "--target"]),
])
def test_bad_data_for_train_exits_2_with_one_line(tmp_path, capsys, make, argv, names):
    make(tmp_path)
    before = set(os.listdir(tmp_path))
    argv = [a.format(d=tmp_path) for a in argv]
    assert_usage_error(*run(capsys, "train", *DATA_TINY, *argv, "--out", tmp_path / "m.npz"),
                       *names)
    assert set(os.listdir(tmp_path)) == before


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


ROWS = "a,b,c\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(10))


@pytest.mark.parametrize("make, argv, says", [
    (lambda d: _write(f"{d}/r.csv", ROWS), ["--key", "foo"],
     "--key applies to .npz files only, but --data is "),
    (lambda d: _write(f"{d}/r.csv", ROWS), ["--label-column", "9"],
     "--label-column 9 is out of range for --data "),
    (lambda d: _write(f"{d}/r.csv", "1,x,0\n3,y,1\n5,x,0\n"), ["--no-table"],
     "column 2 holds 'x', expected a number; if line 1 is a header, set --header"),
    (lambda d: _write(f"{d}/r.csv", "a,b\n1,2\n3,nan\n5,6\n"), ["--no-table"],
     "has 1 row with NaN or infinity (first: row 1); set --drop-nonfinite to drop them"),
    (lambda d: _write(f"{d}/r.csv", "a,b\n1,x\n"), [],
     "--val-fraction 0.1 needs at least 2 rows (1 to train, 1 to validate), got 1; "
     "set --val-fraction to 0"),
    (lambda d: _write(f"{d}/r.csv", "a,b,c\n1,x,0\n3,y,1\n5,x,0\n"), ["--label-column", "5"],
     "--label-column 5 is out of range for a table of 3 columns"),
    (lambda d: np.save(f"{d}/r.npy", np.zeros((4, 2))), ["--header", "--label-column", "1"],
     "--header and --label-column apply to text files only, but --data is"),
    (lambda d: _write(f"{d}/r.csv", ROWS), ["--label-column", "2", "--no-conditional"],
     "class labels were given, but --conditional is off"),
    (lambda d: _write(f"{d}/r.csv", ROWS), ["--conditional"],
     "--conditional needs class labels for a run on rows: a --label-column or a --labels file"),
    (lambda d: _write(f"{d}/r.txt", "a b\n1 x\n2 y\n"), ["--table"],
     "a table needs its column separator; give it with --delimiter"),
    (lambda d: _write(f"{d}/r.csv", ROWS), ["--val-fraction", "0"],  # DATA_TINY's --eval-every
     "--eval-every needs validation rows, but --val-fraction is 0 (none held out)"),
])
def test_data_messages_name_options_as_flags(tmp_path, capsys, make, argv, says):
    make(tmp_path)
    data = str(next(tmp_path / name for name in ("r.npy", "r.txt", "r.csv")
                    if os.path.exists(tmp_path / name)))
    code, out, err = run(capsys, "train", *DATA_TINY, "--data", data, *argv,
                         "--out", tmp_path / "m.npz")
    assert_usage_error(code, out, err, says)
    for python in ("=True", "=0", "label_column", "drop_nonfinite", "val_fraction"):
        assert python not in err, err


def test_a_unet_names_the_image_shape_and_multipliers_that_do_not_fit(tmp_path, capsys):
    np.save(tmp_path / "r.npy", np.zeros((10, 2)))
    assert_usage_error(*run(capsys, "train", "--arch", "unet", "--data", tmp_path / "r.npy",
                            "--image-shape", "2,1", "--steps", 1, "--out", tmp_path / "m.npz"),
                       "--image-shape (1, 2, 1): height and width must be multiples of 4 for a "
                       "U-Net of 3 levels (one per entry of --multipliers)")


def test_a_dimension_mismatch_names_both_dimensions(table, tmp_path, capsys):
    wide = str(tmp_path / "wide.npy")
    np.save(wide, np.zeros((10, 5)))
    for command in ("evaluate", "log-prob", "encode"):
        out = [] if command == "evaluate" else ["--out", str(tmp_path / "o.npy")]
        assert_usage_error(*run(capsys, command, "--model", table["model"], "--data", wide, *out),
                           "5 columns", "d = 3")


def test_a_model_of_rows_needs_data_to_be_evaluated(table, models, tmp_path, capsys):
    assert_usage_error(*run(capsys, "evaluate", "--model", table["model"]), "--data")
    assert_usage_error(*run(capsys, "evaluate", "--model", models["moons"], "--data",
                            table["held"]), "--data", "built-in")


@pytest.mark.parametrize("command", ["train", "sample", "evaluate", "log-prob", "encode"])
def test_every_data_command_shows_an_example_in_its_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


def test_likelihood_commands_estimate_the_divergence_above_the_exact_dimension(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = str(tmp_path / "wide.npy")
    np.save(rows, rng.standard_normal((120, 20)) * 2.0 + 1.0)
    model = str(tmp_path / "m.npz")
    assert main(["train", "--data", rows, *DATA_TINY, "--out", model, "--quiet"]) == 0
    base = ["--model", model, "--data", rows, "--steps", 4]
    auto = json.loads(run(capsys, "evaluate", *base, "--json", "--n", 20)[1])
    exact = json.loads(run(capsys, "evaluate", *base, "--json", "--n", 20,
                           "--divergence", "exact")[1])
    assert "nll_probe_stderr" in auto and "nll_probe_stderr" not in exact
    assert abs(auto["nll"] - exact["nll"]) < 5 * auto["nll_probe_stderr"] + 1e-6
    out = str(tmp_path / "s.npy")
    assert run(capsys, "log-prob", *base, "--divergence", "hutchinson", "--probes", 2,
               "--out", out)[0] == 0
    assert np.load(out).shape == (120, 1)
    assert_usage_error(*run(capsys, "log-prob", *base, "--divergence", "exact", "--probes", 3,
                            "--out", out), "--probes")


def test_a_file_of_rows_is_checked_once_at_the_boundary(tmp_path, capsys, monkeypatch):
    """data.load scans a memory-mapped file for NaN once; nothing downstream scans it again."""
    from npflow import data
    path = tmp_path / "rows.npy"
    np.save(path, np.random.default_rng(0).standard_normal((300, 3)))
    scans = []
    scan = data._nonfinite_rows
    monkeypatch.setattr(data, "_nonfinite_rows", lambda x: scans.append(x.shape) or scan(x))
    assert run(capsys, "train", "--data", path, *DATA_TINY, "--out", tmp_path / "m.npz",
               "--quiet")[0] == 0
    assert scans == [(300, 3)]


def test_reflow_of_a_model_of_rows_keeps_its_data_units(tmp_path, capsys):
    """npflow reflow works on a model trained on rows, as on a built-in target (Liu et al. 2023)."""
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((400, 3)) * [1.0, 10.0, 0.1] + [5.0, -50.0, 2.0]
    path, parent, child = tmp_path / "rows.csv", tmp_path / "p.npz", tmp_path / "c.npz"
    np.savetxt(path, rows, delimiter=",")
    assert run(capsys, "train", "--data", path, *DATA_TINY, "--out", parent, "--quiet")[0] == 0
    code, out, _ = run(capsys, "reflow", "--model", parent, "--pairs", 200, "--steps", 30,
                       "--sample-steps", 8, "--out", child, "--quiet")
    assert code == 0
    ckpt = checkpoint.load(child)
    assert ckpt.train_config["reflow"] == 1 and ckpt.data is not None
    assert ckpt.data.transform == checkpoint.load(parent).data.transform
    np.testing.assert_array_equal(ckpt.data.best_params, ckpt.ema_params)
    samples = tmp_path / "s.npy"
    assert run(capsys, "sample", "--model", child, "--n", 500, "--steps", 8, "--out", samples,
               "--quiet")[0] == 0
    drawn = np.load(samples)
    assert drawn.shape == (500, 3)
    assert np.all(np.abs(drawn.mean(axis=0) - rows.mean(axis=0)) < rows.std(axis=0))
    code, out, _ = run(capsys, "evaluate", "--model", child, "--data", path, "--n", 100,
                       "--json")
    assert code == 0 and np.isfinite(json.loads(out)["nll"])


def test_reflow_of_a_data_to_data_model_pairs_the_source_rows(tmp_path, capsys):
    rng = np.random.default_rng(2)
    source, target = tmp_path / "a.csv", tmp_path / "b.csv"
    np.savetxt(source, rng.standard_normal((300, 2)), delimiter=",")
    np.savetxt(target, rng.standard_normal((300, 2)) + 4.0, delimiter=",")
    parent, child = tmp_path / "p.npz", tmp_path / "c.npz"
    assert run(capsys, "train", "--data", target, "--source-data", source, *DATA_TINY,
               "--out", parent, "--quiet")[0] == 0
    assert_usage_error(*run(capsys, "reflow", "--model", parent, "--out", child),
                       "--source-data")
    assert_usage_error(*run(capsys, "sample", "--model", parent, "--out", tmp_path / "s.npy"),
                       "this model maps rows of a source dataset: give them (--source-data)")
    assert_usage_error(*run(capsys, "plot", "--model", parent, "--data", target, "--out",
                            tmp_path / "p.png"),
                       "--kind samples of a data-to-data flow needs its source rows",
                       "map them with sample (--source-data)")
    code, out, _ = run(capsys, "reflow", "--model", parent, "--source-data", source, "--steps",
                       20, "--sample-steps", 4, "--out", child)
    assert code == 0 and "300 pairs" in out
    assert checkpoint.load(child).data.source_transform is not None


def test_a_unet_trains_on_images_and_every_command_takes_it(tmp_path, capsys):
    """--arch unet on an array of images: train, resume, sample in data units, score with
    Hutchinson's estimate through vector-Jacobian products."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 16, size=(60, 1, 8, 8)).astype(np.float64)
    path, straight = tmp_path / "i.npy", tmp_path / "u.npz"
    np.save(path, images)
    argv = ["train", "--data", path, "--arch", "unet", "--channels", "4", "--multipliers",
            "1,2", "--groups", "2", "--steps", "6", "--batch-size", "8", "--eval-every", "3",
            "--dequantize", "--quiet"]
    assert run(capsys, *argv, "--out", straight)[0] == 0
    ckpt = checkpoint.load(straight)
    assert ckpt.model_config["arch"] == "unet" and ckpt.model_config["image_shape"] == [1, 8, 8]
    stopped = npflow.Trainer.resume(straight)  # the stored files and options, read again
    assert stopped.config.arch == "unet" and stopped.step == 6
    np.testing.assert_array_equal(stopped.model.params, ckpt.params)
    code, out, _ = run(capsys, *argv[:-1], "--out", straight, "--resume")  # the same command
    assert code == 0 and "trained 0 steps" in out
    samples = tmp_path / "s.npy"
    assert run(capsys, "sample", "--model", straight, "--n", 5, "--steps", 2, "--out", samples,
               "--quiet")[0] == 0
    assert np.load(samples).shape == (5, 64)
    code, out, err = run(capsys, "evaluate", "--model", straight, "--data", path, "--n", 10,
                         "--steps", 2, "--probes", 2, "--json")
    result = json.loads(out)
    assert code == 0 and np.isfinite(result["nll"]) and result["nll_probe_stderr"] > 0
    assert np.isfinite(result["bits_per_dim"])
    assert_usage_error(*run(capsys, "train", "--data", tmp_path / "i.npy", "--arch", "unet",
                            "--hidden", "8", "--out", tmp_path / "x.npz"),
                       "--hidden is an option of another network than --arch 'unet'")
