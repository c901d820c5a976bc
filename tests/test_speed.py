"""Tests of demos/experiments/speed.py (the benchmark's measurements) and of benchmark.py's run.

The benchmark itself runs once with tiny sizes (``Options.quick``) and a stand-in reference
built from npflow's own functions, so every code path runs: the JSON keys, the ratios and the
markdown table are checked, never a timing. The FLOP count is checked against the layer sizes
written out by hand and the interleaving against its documented order; the digits rows against
the demo's split and network and the likelihood's own evaluation count.
"""
import copy
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _helpers import DEMOS, load_demo
from npflow import couplings, datasets, likelihood, sampling
from npflow.nn import MLP

speed = load_demo("experiments/speed")

FIGURES = {"train_demo", "train_small", "train_small_ot", "train_digits", "sample_demo",
           "sample_small", "nll_digits", "assignment"}
REFERENCED = FIGURES - {"nll_digits"}  # the held-out likelihood has no reference


def stand_in_reference():
    """A "reference" made of npflow itself: exercises every reference path of speed.run."""
    def trainer(npflow_trainer):
        return speed.npflow_trainer_run(copy.deepcopy(npflow_trainer)), 0.0

    def sampler(model, x0, steps):
        return lambda: sampling.sample_flow(model, x0, "rk4", steps).x

    return speed.Reference(name="stand-in 1.0", trainer=trainer, sampler=sampler,
                           assignment=couplings.solve_assignment, matmul=lambda size: 1.0)


@pytest.fixture(scope="module")
def result():
    reference = stand_in_reference()
    return speed.run(speed.Options.quick(), reference, reference)


def test_result_has_every_figure_with_medians_and_ratios(result):
    assert set(result["figures"]) == FIGURES
    for key in REFERENCED:
        figure = result["figures"][key]
        assert figure["npflow"] == pytest.approx(np.median(figure["npflow_blocks"])), key
        assert figure["reference"] == pytest.approx(np.median(figure["reference_blocks"])), key
        assert figure["ratio"] == pytest.approx(figure["npflow"] / figure["reference"]), key
        assert len(figure["npflow_blocks"]) == len(figure["reference_blocks"]) >= 1
    for key in ("sample_demo", "sample_small", "assignment"):
        figure = result["figures"][key]
        assert figure["npflow_seconds"] == pytest.approx(np.median(
            [1 / r for r in figure["npflow_blocks"]]))
        assert figure["deviation"] == 0.0  # the stand-in computes exactly what npflow does
    assert result["figures"]["train_digits"]["deviation"] == 0.0
    assert result["figures"]["train_digits"]["npflow"] > 0


def test_digits_rows_train_the_demo_network_and_time_its_held_out_likelihood(result):
    quick = speed.DigitsNet.quick()
    config = result["configs"]["digits"]
    assert config["target"] == "data" and config["dequantize"] and config["conditional"]
    assert (tuple(config["hidden"]), config["batch_size"]) == (quick.options["hidden"],
                                                              quick.options["batch_size"])
    nll = result["figures"]["nll_digits"]
    assert "reference" not in nll and nll["unit"] == "runs/s"
    assert nll["npflow_seconds"] > 0
    assert nll["npflow_seconds"] == pytest.approx(np.median([1 / r for r in nll["npflow_blocks"]]))
    assert len(nll["npflow_blocks"]) == speed.Options.quick().nll_rounds
    assert (nll["images"], nll["dim"], nll["solver"]) == (quick.held_out, 64, "rk4")
    assert nll["nfe"] == 4 * quick.solver_steps  # four evaluations per RK4 step
    model = speed.digits_trainer(quick, seed=0)[0].model  # the same layout as the timed one
    assert nll["gflop"] == pytest.approx(nll["nfe"] * speed.jvp_flops(model, 16, 64) / 1e9)
    assert nll["gflops"] == pytest.approx(nll["gflop"] / nll["npflow_seconds"])
    assert nll["finite"]
    # The likelihood is timed after the training figure's steps (calibration, warm-up, blocks).
    assert nll["trained_steps"] > int(result["figures"]["train_digits"]["block"].split()[0])


def test_digits_trainer_uses_the_demos_split_and_network():
    net = speed.DigitsNet()
    trainer, held = speed.digits_trainer(net, seed=0)
    X, y = datasets.load_digits()
    perm = np.random.default_rng(0).permutation(1797)  # demos/digits.py's split
    np.testing.assert_array_equal(held, X[perm[:360]])
    np.testing.assert_array_equal(trainer.rows.x, X[perm[360:]])
    np.testing.assert_array_equal(trainer.rows.y, y[perm[360:]])
    model = trainer.model
    assert (model.dim, model.hidden, model.activation.name) == (64, net.options["hidden"], "silu")
    assert (model.time_embedding, model.n_classes, model.dtype) == ("concat", 10, np.float32)
    assert trainer.config.batch_size == 256 and trainer.rows.transform.dequantize
    batch = trainer.draw_batch()
    assert batch.xt.shape == (256, 64) and set(np.unique(batch.y)) <= set(range(11))


def test_nll_figure_times_the_exact_likelihood_of_the_held_out_images():
    options = speed.Options.quick()
    trainer, held = speed.digits_trainer(options.digits, options.seed)
    figure = speed.nll_figure(options, trainer, held)
    # The computation written out (one dequantization, standardization, rk4, exact div.).
    transform, model = trainer.rows.transform, trainer.ema_model()
    x = held + np.random.default_rng(options.seed + 2).random(held.shape)
    z = ((x - transform.mean) / transform.scale).astype(np.float32)
    ll = likelihood.log_likelihood(model, z, "rk4", options.digits.solver_steps,
                                   divergence="exact")
    assert np.all(np.isfinite(ll.log_prob)) and figure["finite"]
    assert figure["nfe"] == ll.nfe == 4 * options.digits.solver_steps
    assert figure["trained_steps"] == 0 and figure["npflow_seconds"] > 0


def test_result_records_machine_gflops_import_and_profile_and_no_verdicts(result):
    machine = result["machine"]
    for key in ("cpu", "cores", "usable_cores", "python", "numpy", "blas", "load_average"):
        assert key in machine
    gflops = result["gflops"]
    assert gflops["matmul_numpy"] > 0 and gflops["matmul_reference"] == 1.0
    for key in speed.PROFILED:
        rate = result["figures"][f"train_{key}"]["npflow"]
        step = gflops[f"train_{key}"]
        assert step["npflow"] == pytest.approx(step["mflop_per_step"] * 1e6 * rate / 1e9)
    assert 0 < result["import"]["numpy_seconds"] and 0 < result["import"]["npflow_seconds"]
    assert result["import"]["slowest"][0][0] == "npflow"  # the outermost import is the slowest
    assert set(result["profile"]) == set(speed.PROFILED)
    for key in speed.PROFILED:
        profile = result["profile"][key]
        assert set(profile) == {"draw_batch", "forward", "backward", "adam", "ema", "total",
                                "other"}
        assert all(profile[k] > 0 for k in ("draw_batch", "forward", "backward", "adam", "ema"))
    assert "targets" not in result and "target_seconds" not in result["import"]  # measurements only
    saved = json.loads(json.dumps(result))  # plain JSON all the way down
    assert saved["figures"] == result["figures"]
    assert speed.table(saved) == speed.table(result)  # the table reads a saved result too


def test_table_has_one_row_per_figure_and_no_verdicts(result):
    text = speed.table(result)
    lines = text.splitlines()
    assert lines[0] == "| figure | npflow | stand-in 1.0 | speed ratio |"
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert lines[1] == "|---|---|---|---|"
    # header, figures, training and likelihood GFLOP/s, matmul, import
    assert len(lines) == 2 + len(FIGURES) + len(speed.PROFILED) + 1 + 1 + 1
    nll = result["figures"]["nll_digits"]
    names = {"train_demo": "PyTorch demo's network", "train_small": "small (64x3 SELU",
             "train_small_ot": "OT-CFM", "sample_demo": "sampling, demo network",
             "sample_small": "sampling, small network", "assignment": "OT assignment, n = 16",
             "train_digits": "training, digits (32,32 silu, t concat, 10 classes, float32, "
                             "batch 64, 64-D rows)",
             "nll_digits": f"exact held-out NLL, digits network (16 images, RK4 2 steps, exact "
                           f"divergence; weights after {nll['trained_steps']} steps"}
    for key, name in names.items():
        assert sum(name in line for line in lines) == 1, key
    row = next(line for line in lines if "training, digits" in line).split("|")
    assert row[2].strip() == f"{result['figures']['train_digits']['npflow']:,.0f} steps/s"
    row = next(line for line in lines if "held-out NLL" in line).split("|")
    assert row[2].strip() == f"{nll['npflow_seconds'] * 1e3:.2f} ms"  # quick: well under 1 s
    assert row[3].strip() == "-" and row[4].strip() == "-"
    assert "training step GFLOP/s, digits" in text
    assert f"exact held-out NLL GFLOP/s, digits ({nll['gflop']:,.1f} GFLOP/run)" in text
    assert not any("met" in line.split() or "target" in line for line in lines)  # no verdicts
    assert "import npflow" in lines[-1]
    assert "stand-in 1.0" in speed.machine_line(result)


def test_benchmark_script_quick_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    script = load_demo("experiments/benchmark")
    assert script.main(["--quick", "--no-torch", "--no-scipy", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert set(saved["figures"]) == FIGURES
    assert saved["reference"] is None
    assert all("reference" not in figure for figure in saved["figures"].values())
    assert "targets" not in saved
    assert "| figure | npflow |" in stdout and "met" not in stdout.split()


# --- pieces -----------------------------------------------------------------------------------

def test_train_step_flops_of_the_starting_demo():
    model = MLP(2, (512, 512, 512), "relu", "sinusoidal", 512, rng=np.random.default_rng(0))
    n = 64
    by_hand = (3 * 2 * n * 2 * 512      # input layer: x W, dW, dx
               + 2 * 2 * n * 512 * 512  # time projection: e(t) W, dW (no gradient for e(t))
               + 2 * 3 * 2 * n * 512 * 512  # two hidden layers
               + 3 * 2 * n * 512 * 2)   # output layer
    assert speed.train_step_flops(model, n) == by_hand


def test_interleaved_alternates_the_order_and_counts_blocks():
    calls = []
    runs = {name: (lambda count, name=name: calls.append((name, count))) for name in "ab"}
    rates = speed.interleaved(runs, 3, rounds=4, pause=0)
    assert calls == [("a", 3), ("b", 3), ("b", 3), ("a", 3)] * 2
    assert {name: len(r) for name, r in rates.items()} == {"a": 4, "b": 4}
    assert all(r > 0 for values in rates.values() for r in values)


def test_calibrate_stays_within_bounds():
    assert 1 <= speed.calibrate(lambda count: None, 1e-4, most=64) <= 64


def test_options_reject_a_non_options_object():
    with pytest.raises(TypeError, match="options"):
        speed.run(options={"rounds": 1})


def usable_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("openblas, omp, expected", [
    ("1", None, 1),  # OPENBLAS_NUM_THREADS wins
    ("1", "7", 1),  # ... over OMP_NUM_THREADS
    (None, "1", 1),  # OMP_NUM_THREADS when OPENBLAS_NUM_THREADS is unset
    ("0", "1", 1),  # a value below 1 is ignored
    ("two", None, "cores"),  # so is one that is not a number
    ("4096", None, "cores"),  # never more threads than usable cores
    (None, None, "cores"),  # unset: the usable cores
])
def test_blas_threads_follow_the_environment(monkeypatch, openblas, omp, expected):
    for name, value in (("OPENBLAS_NUM_THREADS", openblas), ("OMP_NUM_THREADS", omp)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert speed.blas_threads() == (usable_cores() if expected == "cores" else expected)


def test_blas_threads_agree_with_what_openblas_reports():
    """In a fresh interpreter with OPENBLAS_NUM_THREADS=1, OpenBLAS itself runs one thread."""
    code = (f"import sys; sys.path[:0] = [{os.path.dirname(speed.__file__)!r}, {DEMOS!r}]; "
            "import speed; from npflow import _blas; print(_blas.threads(), speed.blas_threads())")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] == "None":
        pytest.skip("no OpenBLAS found")
    assert out == ["1", "1"]


def test_options_quick_is_smaller_than_the_default():
    quick, full = dataclasses.asdict(speed.Options.quick()), dataclasses.asdict(speed.Options())
    digits_quick, digits_full = quick.pop("digits"), full.pop("digits")
    assert all(quick[k] <= full[k] for k in full)
    assert any(quick[k] < full[k] for k in full)
    for key in ("held_out", "solver_steps"):
        assert digits_quick[key] < digits_full[key]
    quick_net, full_net = digits_quick["options"], digits_full["options"]
    assert quick_net["batch_size"] < full_net["batch_size"]
    assert max(quick_net["hidden"]) < min(full_net["hidden"])


def test_digits_net_defaults_are_the_demos_network():
    demo = load_demo("digits", "digits_demo")
    net, flow = speed.DigitsNet(), dict(demo.FLOW_OPTIONS, label_dropout=demo.LABEL_DROPOUT)
    config = net.train_config(seed=0)
    for field in ("hidden", "activation", "batch_size", "lr", "warmup_steps", "ema_decay",
                  "label_dropout"):
        assert getattr(config, field) == flow[field], field
    assert (config.conditional, net.held_out) == (True, demo.N_HELD_OUT)
    assert net.solver_steps == demo.parse_args([]).solver_steps


def wide_digits_net():
    """The demo's digits network with three hidden layers of 512, whatever the demo's width."""
    return speed.DigitsNet(dict(speed.DigitsNet().options, hidden=(512, 512, 512)))


def test_train_step_flops_of_the_digits_network():
    net = wide_digits_net()
    trainer, _ = speed.digits_trainer(net, seed=0)
    n = net.options["batch_size"]
    by_hand = (3 * 2 * n * 65 * 512        # input layer [x, t]: x W, dW, dx
               + 2 * 3 * 2 * n * 512 * 512  # two hidden layers
               + 3 * 2 * n * 512 * 64)      # output layer; the label table is a lookup
    assert speed.train_step_flops(trainer.model, n) == by_hand


def test_jvp_flops_of_the_digits_network_with_its_64_tangents():
    trainer, _ = speed.digits_trainer(wide_digits_net(), seed=0)
    n, k = 360, 64
    forward = 2 * n * (65 * 512 + 2 * 512 * 512 + 512 * 64)
    tangents = 2 * k * n * (64 * 512 + 2 * 512 * 512 + 512 * 64)  # t's row of W_in does not move
    assert speed.jvp_flops(trainer.model, n, k) == forward + tangents


def test_jvp_flops_give_the_time_projection_no_tangent():
    model = MLP(2, (8, 4), "relu", "sinusoidal", 6, rng=np.random.default_rng(0))
    n, k = 5, 3
    by_hand = (2 * n * (2 * 8 + 6 * 8 + 8 * 4 + 4 * 2)  # in, time, hidden1, out
               + 2 * k * n * (2 * 8 + 8 * 4 + 4 * 2))  # no tangent through e(t)
    assert speed.jvp_flops(model, n, k) == by_hand


def test_options_reject_a_digits_net_of_the_wrong_type():
    with pytest.raises(TypeError, match="options.digits"):
        speed.run(options=dataclasses.replace(speed.Options.quick(), digits={"hidden": (8,)}))
