"""The ``npflow`` command line: ``npflow train | datasets | ...`` (also ``python -m npflow``).

Every error a user can cause (a bad option value, a missing or corrupt model file) ends with a
one-line message on standard error and exit code 2, never a traceback.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from . import (_checks, checkpoint, couplings, datasets, likelihood, metrics, paths, reflow,
               sampling, solvers)
from .guidance import GuidedField
from .nn import ACTIVATIONS, TIME_EMBEDDINGS
from .optim import SCHEDULES
from .train import TIME_SAMPLINGS, TrainConfig, Trainer, TrainingDiverged, resolve_out


class UsageError(Exception):
    """A user error found after parsing; reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exits with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# --- argument types: each raises ArgumentTypeError with a message naming what was expected ---
def _typed(check):
    def parse(text):
        try:
            return check(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err).replace("value ", "")) from None
    return parse


def _int_ge(low):
    def check(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise ValueError(f"expected an integer >= {low}, got {value}")
        return value
    return _typed(check)


def _float_in(low=None, high=None, low_open=False):
    def check(text):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return _checks.finite_float(value, "value", low=low, high=high, low_open=low_open)
    return _typed(check)


def _widths(text):
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive widths such as 256,256,256, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


POSITIVE_INT = _int_ge(1)
NONNEG_INT = _int_ge(0)
POSITIVE_FLOAT = _float_in(low=0, low_open=True)
NONNEG_FLOAT = _float_in(low=0)
UNIT_FLOAT = _float_in(low=0, high=1)


# --- npflow train -------------------------------------------------------------------------------
_TRAIN_OPTIONS = {
    # option: (field, type or choices, help)
    "--source": ("source", sorted(datasets.DATASETS), "source distribution p0 (x0)"),
    "--target": ("target", sorted(datasets.DATASETS), "target distribution p1 (x1)"),
    "--path": ("path", list(paths.PATHS), "probability path"),
    "--sigma": ("sigma", NONNEG_FLOAT, "noise of icfm / sigma_min of lipman"),
    "--coupling": ("coupling", sorted(couplings.COUPLINGS), "pairing of x0 and x1 in a batch"),
    "--steps": ("steps", POSITIVE_INT, "training steps"),
    "--batch-size": ("batch_size", POSITIVE_INT, "points per batch"),
    "--lr": ("lr", POSITIVE_FLOAT, "peak learning rate"),
    "--schedule": ("schedule", list(SCHEDULES), "learning-rate schedule"),
    "--warmup-steps": ("warmup_steps", NONNEG_INT, "linear warm-up steps"),
    "--weight-decay": ("weight_decay", NONNEG_FLOAT, "AdamW decoupled weight decay"),
    "--grad-clip": ("grad_clip", NONNEG_FLOAT, "clip the gradient's global norm (0: off)"),
    "--ema-decay": ("ema_decay", UNIT_FLOAT, "decay of the weights' moving average"),
    "--hidden": ("hidden", _widths, "hidden widths, comma-separated"),
    "--activation": ("activation", sorted(ACTIVATIONS), "hidden activation"),
    "--time-embedding": ("time_embedding", list(TIME_EMBEDDINGS), "how t enters the network"),
    "--embed-dim": ("embed_dim", POSITIVE_INT, "size of the sinusoidal time embedding"),
    "--time-sampling": ("time_sampling", list(TIME_SAMPLINGS), "density of training times t"),
    "--seed": ("seed", NONNEG_INT, "random seed of the whole run"),
    "--label-dropout": ("label_dropout", UNIT_FLOAT, "with --conditional: P(label -> null label)"),
    "--dtype": ("dtype", ["float32", "float64"], "floating-point precision"),
}


def _add_train(sub):
    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a flow-matching model and save a checkpoint",
                       description="Train a velocity field by conditional flow matching.")
    for option, (field, kind, text) in _TRAIN_OPTIONS.items():
        default = getattr(defaults, field)
        if isinstance(kind, list):
            p.add_argument(option, choices=kind, default=argparse.SUPPRESS,
                           help=f"{text} (default: {default})")
        else:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            p.add_argument(option, type=kind, default=argparse.SUPPRESS,
                           help=f"{text} (default: {shown})")
    p.add_argument("--conditional", action="store_true", default=argparse.SUPPRESS,
                   help="learn v(x, t, y) for the target's class labels y (for npflow sample "
                        "--label and --guidance)")
    p.add_argument("--out", default="model.npz", help="checkpoint file (default: model.npz)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out (only --steps may change)")
    p.add_argument("--checkpoint-every", type=POSITIVE_INT, default=1000,
                   help="save every N steps (default: 1000)")
    p.add_argument("--quiet", action="store_true", help="no progress line or summary")
    p.set_defaults(run=_cmd_train)


def _cmd_train(args):
    out = resolve_out(args.out)
    given = {field: getattr(args, field) for field, *_ in _TRAIN_OPTIONS.values()
             if hasattr(args, field)}
    if hasattr(args, "conditional"):
        given["conditional"] = True
    elif "label_dropout" in given and not args.resume:
        raise UsageError("--label-dropout needs --conditional")
    if args.resume:
        extra = sorted(set(given) - {"steps"})
        if extra:
            raise UsageError(f"--resume continues the run stored in {out}; it cannot change "
                             f"{', '.join('--' + f.replace('_', '-') for f in extra)}")
        if not os.path.isfile(out):
            raise UsageError(f"--resume: there is no checkpoint {out} to continue "
                             f"(name it with --out, or train without --resume)")
        trainer = Trainer.from_checkpoint(out, steps=given.get("steps"))
        if trainer.step > trainer.config.steps:
            raise UsageError(f"--steps {trainer.config.steps} is fewer than the {trainer.step} "
                             f"steps already done in {out}")
    else:
        trainer = Trainer(dataclasses.replace(TrainConfig(), **given))
    start_step, t_start = trainer.step, time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported in one line
        result = trainer.run(out=out, checkpoint_every=args.checkpoint_every, quiet=args.quiet)
    seconds = time.perf_counter() - t_start
    done = trainer.step - start_step
    if result.interrupted:
        print(f"interrupted at step {trainer.step}; saved {out} (continue with --resume)",
              file=sys.stderr)
        return 130
    if not args.quiet:
        loss = trainer.losses[-1] if trainer.losses else float("nan")
        print(f"trained {done} steps in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} steps/s), "
              f"final loss {loss:.4f}; saved {out}")
    return 0


# --- npflow datasets ----------------------------------------------------------------------------
def _add_datasets(sub):
    p = sub.add_parser("datasets", help="list the built-in 2-D datasets")
    p.set_defaults(run=_cmd_datasets)


def _cmd_datasets(args):
    width = max(map(len, datasets.DATASETS))
    for name, text in datasets.DATASETS.items():
        print(f"{name:<{width}}  {text}")
    return 0


# --- npflow sample / evaluate ---------------------------------------------------------------------
def _add_solver_options(p, steps_default=100):
    p.add_argument("--model", required=True, help="checkpoint written by npflow train")
    p.add_argument("--solver", choices=solvers.METHODS, default="rk4",
                   help="ODE solver (default: rk4)")
    p.add_argument("--steps", type=POSITIVE_INT, default=steps_default,
                   help=f"uniform steps of the fixed-step solvers (default: {steps_default})")
    p.add_argument("--rtol", type=POSITIVE_FLOAT, default=1e-5, help="dopri5 relative tolerance")
    p.add_argument("--atol", type=POSITIVE_FLOAT, default=1e-5, help="dopri5 absolute tolerance")
    p.add_argument("--seed", type=NONNEG_INT, default=0, help="random seed (default: 0)")
    p.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA")


def _solver_kwargs(args):
    steps = None if args.solver == "dopri5" else args.steps
    return {"method": args.solver, "steps": steps, "rtol": args.rtol, "atol": args.atol}


def _check_out(path, extensions, option="--out"):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option}: folder {folder!r} does not exist")
    if not path.endswith(extensions):
        raise UsageError(f"{option} must end with {' or '.join(extensions)}, got {path!r}")
    return path


def _add_sample(sub):
    p = sub.add_parser("sample", help="generate points by integrating the learned flow",
                       description="Draw x0 from the source and integrate dx/dt = v(x, t) to t=1.")
    _add_solver_options(p)
    p.add_argument("--n", type=POSITIVE_INT, default=2000, help="number of points (default: 2000)")
    p.add_argument("--out", default="samples.npy", help="output .npy file (default: samples.npy)")
    p.add_argument("--trajectory", default=None, help="also save the (steps+1, n, d) trajectory")
    p.add_argument("--chunk-size", type=POSITIVE_INT, default=20000,
                   help="points integrated at once, bounding memory (default: 20000)")
    p.add_argument("--label", type=NONNEG_INT, default=None,
                   help="class to generate (a model trained with --conditional)")
    p.add_argument("--guidance", type=_float_in(), default=None,
                   help="classifier-free guidance weight w with --label: 0 unconditional, "
                        "1 conditional, > 1 sharper (default: 1)")
    p.set_defaults(run=_cmd_sample)


def _guided(ckpt, model, label, guidance):
    """The field to sample: the model itself, or its guided field for class ``label``."""
    if label is None:
        if guidance is not None:
            raise UsageError("--guidance needs --label")
        return model
    if not model.n_classes:
        raise UsageError("--label needs a class-conditional model (npflow train --conditional); "
                         "this model is unconditional")
    if label >= model.n_classes:
        raise UsageError(f"--label must be a class in 0 .. {model.n_classes - 1} of "
                         f"{ckpt.train_config['target']}, got {label}")
    return GuidedField(model, label, 1.0 if guidance is None else guidance)


def _cmd_sample(args):
    out = _check_out(args.out, (".npy",))
    traj_out = None if args.trajectory is None else _check_out(args.trajectory, (".npy",),
                                                               "--trajectory")
    ckpt = checkpoint.load(args.model)
    model = ckpt.model(ema=not args.raw)
    field = _guided(ckpt, model, args.label, args.guidance)
    rng = np.random.default_rng(args.seed)
    x0 = datasets.sample(ckpt.train_config["source"], args.n, rng).astype(model.dtype)
    t_start = time.perf_counter()
    sol = sampling.sample_flow(field, x0, chunk_size=args.chunk_size,
                              return_trajectory=traj_out is not None, **_solver_kwargs(args))
    seconds = time.perf_counter() - t_start
    np.save(out, sol.x)
    if traj_out is not None:
        np.save(traj_out, sol.trajectory)
    print(f"sampled {args.n} points with {args.solver}: {sol.nfe} velocity evaluations, "
          f"{seconds:.2f} s; saved {out}" + (f" and {traj_out}" if traj_out else ""))
    return 0


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="measure a model: W2, MMD, energy distance, NLL",
                       description="Compare n generated points with n fresh target points, and "
                                   "compute the NLL of n fresh target points (exact divergence).")
    _add_solver_options(p)
    p.add_argument("--n", type=POSITIVE_INT, default=2000, help="points per set (default: 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_evaluate)


def _source_log_density(name):
    if not datasets.has_density(name):
        return None
    return lambda x: datasets.log_density(name, x)


def evaluate(ckpt, n, seed, solver_kwargs, ema=True):
    """The metrics of ``npflow evaluate`` as a dict (see the command's help)."""
    model = ckpt.model(ema=ema)
    source, target = ckpt.train_config["source"], ckpt.train_config["target"]
    rng = np.random.default_rng(seed)
    x0 = datasets.sample(source, n, rng).astype(model.dtype)
    sol = sampling.sample_flow(model, x0, **solver_kwargs)
    generated = sol.x.astype(np.float64)
    reference = datasets.sample(target, n, rng)
    held_out = datasets.sample(target, n, rng)
    log_p0 = _source_log_density(source)
    nll = None
    if log_p0 is not None:
        ll = likelihood.log_likelihood(model, held_out.astype(model.dtype), log_p0=log_p0,
                                       **solver_kwargs)
        nll = metrics.negative_log_likelihood(ll.log_prob.astype(np.float64))
    return {
        "w2": metrics.wasserstein2(generated, reference),
        "mmd": metrics.mmd_rbf(generated, reference),
        "energy": metrics.energy_distance(generated, reference),
        "nll": nll,
        "nfe": sol.nfe,
        "precision": datasets.checkerboard_precision(generated) if target == "checkerboard"
        else None,
    }


def _cmd_evaluate(args):
    ckpt = checkpoint.load(args.model)
    result = evaluate(ckpt, args.n, args.seed, _solver_kwargs(args), ema=not args.raw)
    if args.json:
        print(json.dumps(result))
        return 0
    target = ckpt.train_config["target"]
    print(f"{args.model}: {ckpt.train_config['source']} -> {target}, {args.n} points, "
          f"{args.solver}, {result['nfe']} evaluations")
    print(f"  W2 (exact)        {result['w2']:.4f}")
    print(f"  MMD^2 (RBF)       {result['mmd']:.5f}")
    print(f"  energy distance   {result['energy']:.5f}")
    if result["nll"] is not None:
        floor = f"   (true entropy {np.log(32):.3f})" if target == "checkerboard" else ""
        print(f"  NLL (nats)        {result['nll']:.4f}{floor}")
    if result["precision"] is not None:
        print(f"  precision         {result['precision']:.4f}")
    return 0


# --- npflow reflow ------------------------------------------------------------------------------
def _add_reflow(sub):
    p = sub.add_parser("reflow", help="straighten a model: retrain it on its own (x0, x1) pairs",
                       description="Rectified flow's reflow (Liu et al. 2023, Alg. 1): draw x0, "
                                   "push it through the model to x1, and fine-tune a copy of the "
                                   "model on these fixed pairs. Not resumable.")
    p.add_argument("--model", required=True, help="parent checkpoint (npflow train or reflow)")
    p.add_argument("--pairs", type=POSITIVE_INT, default=20000,
                   help="number of (x0, x1) pairs (default: 20000)")
    p.add_argument("--steps", type=POSITIVE_INT, default=2000,
                   help="training steps on the pairs (default: 2000)")
    p.add_argument("--out", required=True, help="checkpoint of the rectified model")
    p.add_argument("--solver", choices=[m for m in solvers.METHODS if m != "dopri5"],
                   default="rk4", help="solver that makes the pairs (default: rk4)")
    p.add_argument("--sample-steps", type=POSITIVE_INT, default=100,
                   help="solver steps that make the pairs (default: 100)")
    p.add_argument("--seed", type=NONNEG_INT, default=0,
                   help="seed of the x0 draws and of the run (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress line or summary")
    p.set_defaults(run=_cmd_reflow)


def _cmd_reflow(args):
    out = _check_out(args.out, (".npz",))
    ckpt = checkpoint.load(args.model)
    parent = TrainConfig.from_dict(ckpt.train_config)
    if parent.conditional:
        raise UsageError("--model: reflow of a conditional model is not supported")
    model = ckpt.model(ema=True)
    x0 = datasets.sample(parent.source, args.pairs, np.random.default_rng(args.seed))
    t_start = time.perf_counter()
    pairs = reflow.reflow_pairs(model, x0, method=args.solver, steps=args.sample_steps)
    trainer = reflow.reflow_trainer(model, parent, pairs, steps=args.steps, seed=args.seed)
    with np.errstate(over="ignore", invalid="ignore"):
        result = trainer.run(out=out, quiet=args.quiet)
    if result.interrupted:
        print(f"interrupted at step {trainer.step}; saved {out} (a reflow run cannot be resumed)",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"reflow {trainer.config.reflow}: {args.pairs} pairs, {args.steps} steps in "
              f"{time.perf_counter() - t_start:.1f} s, final loss {trainer.losses[-1]:.4f}; "
              f"saved {out}")
    return 0


# --- npflow plot / animate (need matplotlib) -----------------------------------------------------
_PLOT_N = {"samples": 2000, "trajectories": 300}  # default --n: points / paths drawn
_PLOT_STEPS = {"density": 16}  # default --steps of the kinds that do not use 100


def _viz():
    """:mod:`npflow.viz` with the file-only Agg backend; a UsageError when matplotlib is missing."""
    from . import viz
    try:
        viz.pyplot(for_files=True)
    except ImportError:
        raise UsageError("pictures need matplotlib: pip install 'npflow[viz]'") from None
    return viz


def _add_picture_options(p, n_help):
    p.add_argument("--model", required=True, help="checkpoint written by npflow train")
    p.add_argument("--n", type=POSITIVE_INT, default=None, help=n_help)
    p.add_argument("--seed", type=NONNEG_INT, default=0, help="random seed (default: 0)")
    p.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA")


def _flow(ckpt, model, n, steps, seed, trajectory=False):
    """x0 ~ source (n, 2), x1 ~ target (n, 2) and the rk4 solution from x0."""
    rng = np.random.default_rng(seed)
    x0 = datasets.sample(ckpt.train_config["source"], n, rng)
    x1 = datasets.sample(ckpt.train_config["target"], n, rng)
    sol = solvers.solve(model, x0.astype(model.dtype), "rk4", steps,
                        return_trajectory=trajectory)
    return x0, x1, sol


def _window(viz, ckpt, seed):
    """Plot limits that hold 2000 source and 2000 target points."""
    rng = np.random.default_rng(seed)
    return viz.limits_of(datasets.sample(ckpt.train_config["source"], 2000, rng),
                         datasets.sample(ckpt.train_config["target"], 2000, rng))


def _add_plot(sub):
    p = sub.add_parser("plot", help="draw a picture of a model (samples, paths, field, density, "
                                    "loss)",
                       description="Draw one picture of a trained model with matplotlib.")
    _add_picture_options(p, "points (default: 2000; trajectories: 300 paths)")
    p.add_argument("--out", required=True, help="image file: .png, .pdf or .svg")
    p.add_argument("--kind", choices=list(_PLOTS), default="samples",
                   help="samples: noise | generated | target; trajectories: paths x0 -> x1; "
                        "field: v(x, t) at 5 times; density: model (and true) p1; "
                        "loss: training loss (default: samples)")
    p.add_argument("--steps", type=POSITIVE_INT, default=None,
                   help="rk4 steps (default: 100; density: 16)")
    p.set_defaults(run=_cmd_plot)


def _plot_samples(viz, ckpt, model, n, steps, seed):
    x0, x1, sol = _flow(ckpt, model, n, steps, seed)
    return viz.panels(x0, sol.x, x1)


def _plot_trajectories(viz, ckpt, model, n, steps, seed):
    x0, x1, sol = _flow(ckpt, model, n, steps, seed, trajectory=True)
    return viz.trajectories(sol.trajectory, n_paths=n, limits=viz.limits_of(x0, x1))


def _plot_field(viz, ckpt, model, n, steps, seed):
    return viz.vector_field(model, limits=_window(viz, ckpt, seed))


def _plot_density(viz, ckpt, model, n, steps, seed):
    source, target = ckpt.train_config["source"], ckpt.train_config["target"]
    log_p0 = _source_log_density(source)
    if log_p0 is None:
        raise UsageError(f"--kind density needs the density of the source, and {source!r} has "
                         f"no closed form")
    return viz.density(model, limits=_window(viz, ckpt, seed), log_p0=log_p0, steps=steps,
                       true_log_density=_source_log_density(target))


def _plot_loss(viz, ckpt, model, n, steps, seed):
    if len(ckpt.losses) == 0:
        raise UsageError("the model holds no training losses")
    return viz.loss_curve(ckpt.losses)


_PLOTS = {"samples": _plot_samples, "trajectories": _plot_trajectories, "field": _plot_field,
          "density": _plot_density, "loss": _plot_loss}


def _cmd_plot(args):
    out = _check_out(args.out, (".png", ".pdf", ".svg"))
    viz = _viz()
    ckpt = checkpoint.load(args.model)
    n = _PLOT_N.get(args.kind, 2000) if args.n is None else args.n
    steps = _PLOT_STEPS.get(args.kind, 100) if args.steps is None else args.steps
    fig = _PLOTS[args.kind](viz, ckpt, ckpt.model(ema=not args.raw), n, steps, args.seed)
    viz.save_figure(fig, out)
    viz.pyplot().close(fig)
    print(f"saved {out} ({args.kind})")
    return 0


def _add_animate(sub):
    p = sub.add_parser("animate", help="write an animated GIF of the points flowing to the data",
                       description="Integrate the flow with rk4 and write one GIF frame per "
                                   "evenly spaced time.")
    _add_picture_options(p, "points (default: 600)")
    p.add_argument("--out", required=True, help="output .gif file")
    p.add_argument("--frames", type=_int_ge(2), default=41, help="frames (default: 41)")
    p.add_argument("--fps", type=POSITIVE_INT, default=20, help="frames per second (default: 20)")
    p.add_argument("--steps", type=POSITIVE_INT, default=100,
                   help="rk4 steps; at least --frames - 1 (default: 100)")
    p.set_defaults(run=_cmd_animate)


def _cmd_animate(args):
    out = _check_out(args.out, (".gif",))
    if args.frames > args.steps + 1:
        raise UsageError(f"--frames ({args.frames}) must be at most --steps + 1 "
                         f"({args.steps + 1})")
    viz = _viz()
    ckpt = checkpoint.load(args.model)
    n = 600 if args.n is None else args.n
    x0, x1, sol = _flow(ckpt, ckpt.model(ema=not args.raw), n, args.steps, args.seed,
                        trajectory=True)
    rows = np.round(np.linspace(0, args.steps, args.frames)).astype(int)  # (frames,)
    fig = viz.animate(sol.trajectory[rows], out, times=sol.times[rows], fps=args.fps,
                      limits=viz.limits_of(x0, x1))
    viz.pyplot().close(fig)
    print(f"saved {out} ({args.frames} frames at {args.fps} fps)")
    return 0


# --- npflow bench -----------------------------------------------------------------------------
def _add_bench(sub):
    p = sub.add_parser("bench", help="measure training and sampling speed on this machine",
                       description="Time npflow's training steps, RK4 sampling, the exact OT "
                                   "assignment and its import, next to the machine's float32 "
                                   "matrix-multiply GFLOP/s (demos/benchmark.py adds PyTorch "
                                   "and SciPy).")
    p.add_argument("--out", default=None, help="also write every number to this .json file")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    p.add_argument("--rounds", type=POSITIVE_INT, default=None,
                   help="timed blocks per training figure (default: 7)")
    p.add_argument("--sample-points", type=POSITIVE_INT, default=None,
                   help="points per sampling run (default: 10000)")
    p.add_argument("--sample-steps", type=POSITIVE_INT, default=None,
                   help="RK4 steps per sampling run (default: 100)")
    p.set_defaults(run=_cmd_bench)


def _cmd_bench(args):
    from . import bench  # imported on use: the other commands never pay for it
    out = None if args.out is None else _check_out(args.out, (".json",))
    options = bench.Options.quick() if args.quick else bench.Options()
    given = {name: getattr(args, name) for name in ("rounds", "sample_points", "sample_steps")
             if getattr(args, name) is not None}
    result = bench.run(dataclasses.replace(options, **given),
                       log=lambda text: print(text, file=sys.stderr, flush=True))
    print(bench.machine_line(result))
    print(bench.table(result))
    if out is not None:
        bench.save(result, out)
        print(f"saved {out}")
    return 0


# --- entry point --------------------------------------------------------------------------------
def build_parser():
    parser = _Parser(prog="npflow", description="Flow matching in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_train, _add_datasets, _add_sample, _add_evaluate, _add_reflow, _add_plot,
                _add_animate, _add_bench):
        add(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code (0 ok, 2 usage error, 1 training failure)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, checkpoint.CheckpointError, ValueError, TypeError) as err:
        print(f"npflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"npflow {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"npflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
