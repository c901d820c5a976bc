"""How fast npflow trains and samples on this machine, next to the machine's own limit.

Every figure is a median over *interleaved* blocks: when a reference implementation is given
(PyTorch, SciPy; see ``benchmark.py`` beside this file), its blocks alternate with npflow's
(npflow first in even rounds, the reference first in odd ones), so both see the same machine
load. The ratio of the two medians from one run is the figure that counts on a shared, noisy
machine.

The figures:

* training steps/s of :meth:`npflow.train.Trainer.train_step` (fresh batch, path, forward,
  backward, Adam, EMA) for the network of a plain PyTorch flow-matching demo (:data:`DEMO`) and
  for a small one, and with minibatch OT pairing (OT-CFM);
* training steps/s of the digits network (:class:`DigitsNet`: the class-conditional flow of
  ``demos/digits.py``, read from that script) on the bundled 8x8 digits (64-D rows, dequantized,
  standardized, class-conditional);
* the time of the exact held-out log-likelihood of 360 digits images
  (:func:`npflow.likelihood.log_likelihood`, exact divergence, RK4), with the digits network's
  weights after the training figure's steps (tens to hundreds): a timing, not a likelihood;
* RK4 sampling time, 10,000 points and 100 steps (:func:`npflow.sampling.sample_flow`);
* the training step's matrix-multiply GFLOP/s, next to a large float32 matrix product's
  (the machine's practical limit), measured in the same run;
* the exact OT assignment at n = 256 (:func:`npflow.couplings.solve_assignment`);
* the time of ``import npflow`` in a fresh interpreter.

This module imports only NumPy, the standard library, npflow and ``demos/digits.py``; the
references are passed in.
"""
import cProfile
import dataclasses
import json
import os
import platform
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from npflow import Flow, _checks, couplings, datasets, likelihood, sampling
from npflow.nn import Linear
from npflow.train import TrainConfig, Trainer

DEMOS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if DEMOS not in sys.path:
    sys.path.insert(0, DEMOS)  # the teaching demos' folder: the digits network is digits.py's
import digits  # noqa: E402

# The network of a plain PyTorch flow-matching demo (an MLP with a sinusoidal time embedding,
# 512 wide, Adam 4e-4, batch 64): 2 -> 512 input layer plus a projected 512-d sinusoidal time
# embedding, two 512x512 ReLU layers, 512 -> 2; independent pairs, straight paths, t ~ U[0, 1];
# no clipping and a constant rate, as in that demo.
DEMO = TrainConfig(hidden=(512, 512, 512), activation="relu", time_embedding="sinusoidal",
                   embed_dim=512, batch_size=64, lr=4e-4, schedule="constant", warmup_steps=0,
                   grad_clip=0.0, time_sampling="uniform", coupling="independent", path="linear",
                   steps=10 ** 9)
# A small field in TorchCFM's 2-D style: three SELU layers of 64, t concatenated to x.
SMALL = dataclasses.replace(DEMO, hidden=(64, 64, 64), activation="selu",
                            time_embedding="concat", embed_dim=TrainConfig.embed_dim,
                            batch_size=256, lr=1e-3)
SMALL_OT = dataclasses.replace(SMALL, coupling="ot")
CONFIGS = {"demo": DEMO, "small": SMALL, "small_ot": SMALL_OT}


CONDITIONAL_OPTIONS = dict(digits.FLOW_OPTIONS, label_dropout=digits.LABEL_DROPOUT)  # the demo's


@dataclass(frozen=True)
class DigitsNet:
    """The class-conditional flow of ``demos/digits.py`` on the 8x8 digits, as it is timed.

    Attributes
    ----------
    options : dict
        Keyword arguments of :class:`npflow.Flow`: by default the demo's own conditional MLP
        (:data:`CONDITIONAL_OPTIONS`), so the benchmark times the network the demo trains
        (:data:`npflow.train.DATA_DEFAULTS`, then TrainConfig's defaults fill the rest, as in the
        demo).
    held_out : int
        Images held out of training and scored by the likelihood figure (the demo's 360).
    solver_steps : int
        RK4 steps of the held-out likelihood (the demo's default).
    """

    options: dict = dataclasses.field(default_factory=lambda: dict(CONDITIONAL_OPTIONS))
    held_out: int = digits.N_HELD_OUT
    solver_steps: int = digits.SOLVER_STEPS

    @classmethod
    def quick(cls):
        """The demo's ``--quick`` network (two layers of 32, batch 64): the same code paths."""
        return cls({**CONDITIONAL_OPTIONS, **digits.QUICK_OPTIONS["mlp"]}, held_out=16,
                   solver_steps=2)

    def train_config(self, seed):
        """The :class:`TrainConfig` that ``Flow(**options).fit(X, y)`` trains, without an end.

        ``steps`` is set to 10**9: the benchmark runs as many steps as it times, and the
        learning rate stays at its peak after the warm-up instead of decaying over the demo's
        few thousand steps.
        """
        config = Flow(**self.options, seed=seed).train_config(conditional=True)
        return dataclasses.replace(config, steps=10 ** 9)


PROFILED = ("demo", "small", "digits")  # configurations with a step profile and GFLOP/s


@dataclass(frozen=True)
class Options:
    """Sizes of one benchmark run; the defaults are the full run of ``make bench``."""

    rounds: int = 7               # interleaved blocks per training figure
    block_seconds: float = 0.5    # length of one training block (calibrated on npflow)
    sample_points: int = 10_000
    sample_steps: int = 100
    sample_rounds: int = 3        # one block = one whole sampling run (~30 s for the demo
                                  # net); 0 skips the sampling figures
    matmul_size: int = 2048
    assignment_n: int = 256
    assignment_repeats: int = 20
    import_repeats: int = 7
    profile_steps: int = 200      # cProfile'd training steps per configuration
    nll_rounds: int = 1           # held-out likelihood runs of the digits network (the
                                  # longest figure); 0 skips it
    digits: DigitsNet = dataclasses.field(default_factory=DigitsNet)
    seed: int = 0

    @classmethod
    def quick(cls):
        """Tiny sizes for tests: every code path, meaningless numbers."""
        return cls(rounds=1, block_seconds=0.01, sample_points=64, sample_steps=2,
                   sample_rounds=1, matmul_size=64, assignment_n=16, assignment_repeats=2,
                   import_repeats=1, profile_steps=2, nll_rounds=1, digits=DigitsNet.quick())


@dataclass(frozen=True)
class Reference:
    """Another library's version of the workloads (built by ``benchmark.py``).

    Attributes
    ----------
    name : str
        Library and version, e.g. ``"torch 2.13.0"``.
    trainer : callable or None
        ``trainer(npflow_trainer) -> (run, deviation)``: ``run(count)`` performs ``count``
        training steps of the same configuration, starting from the npflow trainer's current
        weights; ``deviation`` is the largest |v_ref - v_npflow| / max |v_npflow| of the two
        networks on one batch before training (float32 agreement).
    sampler : callable or None
        ``sampler(model, x0, steps) -> run``: ``run()`` integrates the same network (same
        weights) with RK4 from x0 (n, d) and returns the samples (n, d) as a NumPy array.
    assignment : callable or None
        ``assignment(cost) -> cols``: an exact assignment solver on a square cost matrix.
    matmul : callable or None
        ``matmul(size) -> GFLOP/s`` of a float32 ``size x size`` matrix product.
    """

    name: str
    trainer: object = None
    sampler: object = None
    assignment: object = None
    matmul: object = None


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def interleaved(runs, count, rounds, pause=0.2):
    """Time ``runs`` (name -> ``run(count)``) in alternating order; returns name -> rates.

    Round r runs the workloads in the given order when r is even and reversed when r is odd.
    A rate is ``count`` divided by the block's wall time. Each block starts after ``pause``
    seconds, long enough for the previous block's idle BLAS / OpenMP threads, which spin for a
    while before they sleep, to stop competing for the cores.
    """
    names = list(runs)
    rates = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(pause)
            start = time.perf_counter()
            runs[name](count)
            rates[name].append(count / (time.perf_counter() - start))
    return rates


def calibrate(run, seconds, most=1 << 16):
    """How many units of ``run`` (at most ``most``) take about ``seconds``, after a warm-up."""
    run(1)
    count, elapsed = 1, 0.0
    while elapsed < seconds / 4 and count < most:
        count *= 2
        start = time.perf_counter()
        run(count)
        elapsed = time.perf_counter() - start
    return max(1, min(most, round(count * seconds / max(elapsed, 1e-9))))


def matmul_gflops(size, repeats=3, dtype=np.float32):
    """Best GFLOP/s of ``A @ B`` with A, B (size, size): ``2 size^3`` flops per product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = a @ b  # warm-up: BLAS threads start, pages are touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def train_step_flops(model, batch_size):
    """Matrix-multiply flops of one forward + backward pass at ``batch_size`` rows.

    Each Linear (fan_in, fan_out) costs ``2 n fan_in fan_out`` for ``x W``, as much for
    ``dW = x^T dy`` and as much again for ``dx = dy W^T``, which every layer computes except the
    time projection (its input e(t) needs no gradient). Element-wise work is not counted.
    """
    flops = 0
    for name, layer in model.layers.items():
        if isinstance(layer, Linear):
            products = 2 if name == "time" else 3
            flops += products * 2 * batch_size * layer.fan_in * layer.fan_out
    return flops


def jvp_flops(model, n, k):
    """Matrix-multiply flops of ``model.jvp`` at ``n`` points with ``k`` tangents.

    The forward pass costs ``2 n fan_in fan_out`` per Linear; every tangent as much again,
    except in the input layer, where only the d rows of ``W`` that multiply x carry one
    (``2 k n d h_0``; t does not move), and in the time projection (no tangent at all).
    Element-wise work (activations and their derivatives) is not counted.
    """
    flops = 0
    for name, layer in model.layers.items():
        if isinstance(layer, Linear):
            moving = {"in": model.dim, "time": 0}.get(name, layer.fan_in)  # rows of W
            flops += 2 * n * layer.fan_in * layer.fan_out + 2 * k * n * moving * layer.fan_out
    return flops


def import_seconds(module, repeats):
    """Best wall time of ``import module`` in a fresh interpreter (``repeats`` processes)."""
    code = (f"import time; start = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - start)")
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        times.append(float(out.stdout))
    return min(times)


def import_profile(module, top=8):
    """The ``top`` slowest imports under ``import module`` (``python -X importtime``).

    Returns a list of (module name, cumulative microseconds), slowest first.
    """
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         capture_output=True, text=True, check=True)
    rows = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[1])))
    return sorted(rows, key=lambda row: -row[1])[:top]


def step_profile(trainer, steps):
    """Where a training step's time goes: seconds per step by phase (cProfile, ``steps`` steps).

    Phases: drawing the batch (samplers, coupling, path), forward, backward, Adam, EMA; "other"
    is the loss, the gradient norm and the bookkeeping of ``train_step``. cProfile slows Python
    code down a little, so the shares matter more than the absolute times.
    """
    functions = {"draw_batch": type(trainer).draw_batch,
                 "forward": type(trainer.model).forward_train,
                 "backward": type(trainer.model).backward,
                 "adam": type(trainer.optimizer).step, "ema": type(trainer.ema).update,
                 "total": type(trainer).train_step}
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        trainer.train_step()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, cumulative, callers)
    seconds = {}
    for phase, function in functions.items():
        code = function.__code__
        row = stats.get((code.co_filename, code.co_firstlineno, code.co_name))
        seconds[phase] = 0.0 if row is None else row[3] / steps
    seconds["other"] = seconds["total"] - sum(v for k, v in seconds.items() if k != "total")
    return seconds


# ----------------------------------------------------------------------------------------------
# Workloads
# ----------------------------------------------------------------------------------------------
def npflow_trainer_run(trainer):
    """``run(count)``: ``count`` calls of ``trainer.train_step()``."""
    def run(count):
        for _ in range(count):
            trainer.train_step()
    return run


def source_points(config, n, seed, dtype):
    """x0 (n, d): n points of the configuration's source distribution."""
    rng = np.random.default_rng(seed)
    return datasets.sample(config.source, n, rng).astype(dtype)


def digits_trainer(net, seed):
    """A Trainer of ``net`` (a :class:`DigitsNet`) on the training split of the bundled digits.

    Returns the trainer and the held-out images (held_out, 64) in pixel units.
    """
    X, y = datasets.load_digits()  # (1797, 64) uint8, (1797,)
    X = X.astype(np.float64)
    train, held = digits.split(X, seed, net.held_out)  # the demo's seeded split
    return Trainer(net.train_config(seed), data=X[train], labels=y[train]), X[held]


def make_trainers(options):
    """Fresh trainers of CONFIGS and of the digits network; also the held-out digits images."""
    trainers = {key: Trainer(dataclasses.replace(config, seed=options.seed))
                for key, config in CONFIGS.items()}
    trainers["digits"], held_out = digits_trainer(options.digits, options.seed)
    return trainers, held_out


def training_figures(options, trainers, reference):
    """Steps/s of every trainer (name -> Trainer) and of the reference, interleaved."""
    figures = {}
    for key, trainer in trainers.items():
        runs = {"npflow": npflow_trainer_run(trainer)}
        deviation = None
        if reference is not None and reference.trainer is not None:
            built = reference.trainer(trainer)
            if built is not None:
                runs["reference"], deviation = built
        count = calibrate(runs["npflow"], options.block_seconds)
        for run in runs.values():
            run(max(1, count // 4))  # warm-up
        rates = interleaved(runs, count, options.rounds)
        figures[f"train_{key}"] = _figure(rates, "steps/s", block=f"{count} steps",
                                          deviation=deviation)
    return figures


def sampling_figures(options, trainers, reference):
    """RK4 sampling seconds of the demo and small networks (and of the reference).

    Both integrate the same network (same weights) from the same x0; the figure records the
    largest difference of their samples relative to the largest sample.
    """
    figures = {}
    steps = options.sample_steps
    for key in ("demo", "small"):
        model = trainers[key].model
        x0 = source_points(trainers[key].config, options.sample_points, options.seed + 1,
                           model.dtype)
        warm = x0[:64]
        samplers = {"npflow": lambda model=model, x0=x0: sampling.sample_flow(model, x0, "rk4",
                                                                         steps).x}
        sampling.sample_flow(model, warm, "rk4", 1)  # first calls pay for allocations
        if reference is not None and reference.sampler is not None:
            samplers["reference"] = reference.sampler(model, x0, steps)
            reference.sampler(model, warm, 1)()
        outputs = {}
        runs = {name: _keeping(sample, outputs, name) for name, sample in samplers.items()}
        rates = interleaved(runs, 1, options.sample_rounds)  # runs per second
        seconds = {name: [1 / r for r in rate] for name, rate in rates.items()}
        gap = None
        if "reference" in outputs:
            scale = float(np.abs(outputs["npflow"]).max())
            gap = float(np.abs(outputs["npflow"] - outputs["reference"]).max()) / scale
        figures[f"sample_{key}"] = _figure(rates, "runs/s", seconds=seconds, deviation=gap)
    return figures


def _keeping(sample, outputs, name):
    """``run(count)``: one call of ``sample()``, its result kept in ``outputs[name]``."""
    def run(count):
        outputs[name] = sample()
    return run


def nll_figure(options, trainer, x_held):
    """Seconds of the exact held-out log-likelihood of the digits network (npflow only).

    ``log p(x) = log p_0(x_0) - integral_0^1 div v dt`` (Chen et al. 2018, Thm. 1) for the
    held-out images ``x_held`` (m, 64), each dequantized once (``x + u``) and standardized as
    in training, integrated back with RK4 (``options.digits.solver_steps`` steps) and the exact
    divergence (64 Jacobian-vector products per evaluation). The weights are the trainer's EMA
    after the training figure's steps: the timing does not depend on them, the likelihood does
    (it is not reported).
    """
    model, transform = trainer.ema_model(), trainer.rows.transform
    steps = options.digits.solver_steps
    x = transform.dequantized(x_held, np.random.default_rng(options.seed + 2))  # (m, 64)
    z = transform.forward(x).astype(model.dtype)  # (m, 64) in the network's space

    def nll():
        return likelihood.log_likelihood(model, z, "rk4", steps, divergence="exact")

    likelihood.log_likelihood(model, z[:8], "rk4", 1, divergence="exact")  # warm-up
    outputs = {}
    rates = interleaved({"npflow": _keeping(nll, outputs, "npflow")}, 1, options.nll_rounds)
    seconds = {"npflow": [1 / r for r in rates["npflow"]]}
    figure = _figure(rates, "runs/s", seconds=seconds)
    nfe = int(outputs["npflow"].nfe)
    gflop = nfe * jvp_flops(model, z.shape[0], z.shape[1]) / 1e9  # d tangents per evaluation
    figure.update(images=int(z.shape[0]), dim=int(z.shape[1]), solver="rk4", steps=steps,
                  nfe=nfe, gflop=gflop, gflops=gflop * figure["npflow"],
                  trained_steps=int(trainer.step),
                  finite=bool(np.all(np.isfinite(outputs["npflow"].log_prob))))
    return figure


def assignment_figure(options, reference):
    """Median seconds of the exact assignment on squared-distance costs, n x n."""
    rng = np.random.default_rng(options.seed)
    solvers_ = {"npflow": couplings.solve_assignment}
    if reference is not None and reference.assignment is not None:
        solvers_["reference"] = reference.assignment
    warm = couplings.squared_distances(rng.standard_normal((8, 2)), rng.standard_normal((8, 2)))
    for solve in solvers_.values():
        solve(warm)
    seconds = {name: [] for name in solvers_}
    worst_gap = 0.0
    for r in range(options.assignment_repeats):
        x0 = datasets.sample("gaussian", options.assignment_n, rng)  # (n, 2)
        x1 = datasets.sample("8gaussians", options.assignment_n, rng)  # (n, 2)
        cost = couplings.squared_distances(x0, x1)  # (n, n)
        totals = {}
        for name in list(solvers_) if r % 2 == 0 else list(solvers_)[::-1]:
            start = time.perf_counter()
            cols = solvers_[name](cost)
            seconds[name].append(time.perf_counter() - start)
            totals[name] = float(cost[np.arange(cost.shape[0]), cols].sum())
        if "reference" in totals:
            gap = abs(totals["npflow"] - totals["reference"]) / max(abs(totals["reference"]),
                                                                      1e-300)
            worst_gap = max(worst_gap, gap)
    rates = {name: [1 / s for s in values] for name, values in seconds.items()}
    return _figure(rates, "solves/s", seconds=seconds,
                   deviation=worst_gap if "reference" in seconds else None)


def _figure(rates, unit, seconds=None, block=None, deviation=None):
    """One figure as a JSON-ready dict: medians, every block, and the speed ratio."""
    figure = {"unit": unit, "npflow": float(np.median(rates["npflow"])),
              "npflow_blocks": [float(r) for r in rates["npflow"]]}
    if seconds is not None:
        figure["npflow_seconds"] = float(np.median(seconds["npflow"]))
    if "reference" in rates:
        figure["reference"] = float(np.median(rates["reference"]))
        figure["reference_blocks"] = [float(r) for r in rates["reference"]]
        figure["ratio"] = figure["npflow"] / figure["reference"]
        if seconds is not None:
            figure["reference_seconds"] = float(np.median(seconds["reference"]))
    if block is not None:
        figure["block"] = block
    if deviation is not None:
        figure["deviation"] = deviation
    return figure


# ----------------------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------------------
def machine():
    """CPU, cores, NumPy and BLAS, thread settings and load: what the numbers depend on."""
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "blas": _blas(),
            "blas_threads": blas_threads(),
            "env": {name: os.environ.get(name) for name in
                    ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    return info


def blas_threads():
    """Threads of NumPy's BLAS: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else the usable cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) >= 1:
            return min(int(value), cores or 1)
    return cores or 1


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas():
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy < 1.25 has no mode="dicts"
        return "unknown"
    return config.get("openblas configuration") or f"{config.get('name')} {config.get('version')}"


# ----------------------------------------------------------------------------------------------
# The whole run
# ----------------------------------------------------------------------------------------------
def run(options=None, reference=None, assignment_reference=None, log=None):
    """Measure every figure; returns a JSON-ready dict (see :func:`table` for a summary).

    Parameters
    ----------
    options : Options, optional
    reference : Reference, optional
        The training and sampling reference (PyTorch in ``benchmark.py``).
    assignment_reference : Reference, optional
        The assignment reference (SciPy's ``linear_sum_assignment``).
    log : callable, optional
        ``log(text)`` receives one line per finished stage (progress).
    """
    options = options or Options()
    if not isinstance(options, Options):
        raise TypeError(f"options must be a speed.Options, got {type(options).__name__}")
    _checks.positive_int(options.rounds, "options.rounds")
    _checks.nonnegative_int(options.nll_rounds, "options.nll_rounds")
    if not isinstance(options.digits, DigitsNet):
        raise TypeError(f"options.digits must be a speed.DigitsNet, got "
                        f"{type(options.digits).__name__}")
    log = log or (lambda text: None)
    trainers, held_out = make_trainers(options)
    result = {"machine": machine(), "options": dataclasses.asdict(options),
              "configs": {key: trainer.config.to_dict() for key, trainer in trainers.items()},
              "reference": None if reference is None else reference.name,
              "assignment_reference": None if assignment_reference is None
              else assignment_reference.name}
    # The profile runs first, in a process where no reference has run yet: a reference's idle
    # threads can slow npflow down for a while after it ran. Its trainers are fresh copies.
    result["profile"] = {}
    profiled, _ = make_trainers(options)
    for key in PROFILED:
        npflow_trainer_run(profiled[key])(max(1, options.profile_steps // 10))  # warm-up
        result["profile"][key] = step_profile(profiled[key], options.profile_steps)
    del profiled
    log("profile done")
    figures = training_figures(options, trainers, reference)
    log(f"training done: {_medians(figures)}")
    if options.sample_rounds > 0:
        sampled = sampling_figures(options, trainers, reference)
        figures.update(sampled)
        log(f"sampling done: {_medians(sampled)}")
    if options.nll_rounds > 0:
        figures["nll_digits"] = nll_figure(options, trainers["digits"], held_out)
        log(f"held-out likelihood done: {_medians({'nll_digits': figures['nll_digits']})}")
    figures["assignment"] = assignment_figure(options, assignment_reference)
    log("assignment done")
    result["figures"] = figures
    result["gflops"] = _gflops(options, figures, trainers, reference)
    result["import"] = {"npflow_seconds": import_seconds("npflow", options.import_repeats),
                        "numpy_seconds": import_seconds("numpy", options.import_repeats),
                        "slowest": import_profile("npflow")}
    log("import done")
    result["machine"]["load_average_end"] = list(os.getloadavg()) \
        if hasattr(os, "getloadavg") else None
    return result


def _medians(figures):
    """``"train_demo 229 / 233 steps/s, ..."``: npflow's (and the reference's) medians, for logs."""
    parts = []
    for key, figure in figures.items():
        values = [f"{figure[who]:.4g}" for who in ("npflow", "reference") if who in figure]
        parts.append(f"{key} {' / '.join(values)} {figure['unit']}")
    return ", ".join(parts)


def _gflops(options, figures, trainers, reference):
    """Achieved matmul GFLOP/s of the training steps next to a large matrix product's."""
    out = {"matmul_size": options.matmul_size,
           "matmul_numpy": matmul_gflops(options.matmul_size)}
    if reference is not None and reference.matmul is not None:
        out["matmul_reference"] = reference.matmul(options.matmul_size)
    for key in PROFILED:
        figure = figures[f"train_{key}"]
        flops = train_step_flops(trainers[key].model, trainers[key].config.batch_size)
        out[f"train_{key}"] = {"mflop_per_step": flops / 1e6,
                               "npflow": flops * figure["npflow"] / 1e9}
        if "reference" in figure:
            out[f"train_{key}"]["reference"] = flops * figure["reference"] / 1e9
    return out


# ----------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------
_LABELS = {
    "train_demo": "training, PyTorch demo's network (512x3 ReLU, sinusoidal t, batch 64)",
    "train_small": "training, small (64x3 SELU, t concatenated, batch 256)",
    "train_small_ot": "training, small with OT-CFM pairs (batch 256)",
    "sample_demo": "RK4 sampling, demo network ({points} points, {steps} steps)",
    "sample_small": "RK4 sampling, small network ({points} points, {steps} steps)",
    "assignment": "exact OT assignment, n = {n}",
    "train_digits": "training, digits ({net}, batch {batch}, 64-D rows)",
    "nll_digits": "exact held-out NLL, digits network ({images} images, RK4 {nll_steps} steps, "
                  "exact divergence; weights after {trained} steps: a timing only)",
}


def _digits_net(config):
    """``"512,512,512 silu, t concat, 10 classes, float32"``: the digits network in a label."""
    classes = ", 10 classes" if config["conditional"] else ""
    return (f"{','.join(map(str, config['hidden']))} {config['activation']}, "
            f"t {config['time_embedding']}{classes}, {config['dtype']}")


def _value(figure, who):
    if who not in figure:
        return "-"
    if figure["unit"] == "steps/s":
        return f"{figure[who]:,.0f} steps/s"
    seconds = figure[f"{who}_seconds"]
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.2f} ms"


def table(result):
    """A markdown table of the figures and the GFLOP/s: what was measured, with no verdicts."""
    options, digits_config = result["options"], result["configs"]["digits"]
    ref = result["reference"] or "reference"
    lines = [f"| figure | npflow | {ref} | speed ratio |", "|---|---|---|---|"]
    for key, figure in result["figures"].items():
        label = _LABELS[key].format(points=f"{options['sample_points']:,}",
                                    steps=options["sample_steps"], n=options["assignment_n"],
                                    net=_digits_net(digits_config),
                                    batch=digits_config["batch_size"],
                                    images=figure.get("images"), nll_steps=figure.get("steps"),
                                    trained=figure.get("trained_steps"))
        ratio = f"{figure['ratio']:.2f}" if "ratio" in figure else "-"
        if key == "assignment" and "reference" in figure:
            label += f" (vs {result['assignment_reference'] or 'reference'})"
        lines.append(f"| {label} | {_value(figure, 'npflow')} | {_value(figure, 'reference')} "
                     f"| {ratio} |")
    gflops = result["gflops"]
    for key in PROFILED:
        g = gflops[f"train_{key}"]
        reference = f"{g['reference']:.1f}" if "reference" in g else "-"
        lines.append(f"| training step GFLOP/s, {key} ({g['mflop_per_step']:.1f} MFLOP/step) "
                     f"| {g['npflow']:.1f} | {reference} | |")
    nll = result["figures"].get("nll_digits")
    if nll is not None:
        lines.append(f"| exact held-out NLL GFLOP/s, digits ({nll['gflop']:,.1f} GFLOP/run) "
                     f"| {nll['gflops']:.1f} | - | |")
    size = gflops["matmul_size"]
    reference = f"{gflops['matmul_reference']:.1f}" if "matmul_reference" in gflops else "-"
    lines.append(f"| float32 matmul {size}x{size} GFLOP/s (machine limit) "
                 f"| {gflops['matmul_numpy']:.1f} | {reference} | |")
    imp = result["import"]
    lines.append(f"| import npflow (fresh interpreter, best of {options['import_repeats']}; "
                 f"numpy alone {imp['numpy_seconds']:.3f} s) | {imp['npflow_seconds']:.3f} s "
                 f"| | |")
    return "\n".join(lines)


def machine_line(result):
    """One line describing the machine the numbers come from."""
    m = result["machine"]
    load = ", ".join(f"{x:.2f}" for x in m.get("load_average", []))
    return (f"{m['cpu']}, {m['usable_cores']} cores; Python {m['python']}, NumPy {m['numpy']} "
            f"({m['blas']}); reference: {result['reference'] or 'none'}; "
            f"load average at start: {load}")


def save(result, path):
    """Write ``result`` as indented JSON."""
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
