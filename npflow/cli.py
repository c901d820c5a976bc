"""The ``npflow`` command line: ``npflow train | datasets | sample | evaluate | log-prob |
encode | reflow | plot | animate | bench`` (also ``python -m npflow``).

Every error a user can cause (a bad option value, a missing or invalid model or data file, a
request too large for the machine) ends with a one-line message on standard error and exit code
2; a failure at run time (a diverging loss, a solver that blew up) with one line and exit code 1;
never a traceback. ``npflow COMMAND --help`` shows examples.
"""
import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time

import numpy as np

from . import (_checks, checkpoint, couplings, data, datasets, flow, likelihood, metrics, paths,
               reflow, sampling, solvers)
from .guidance import GuidedField
from .nn import ACTIVATIONS, TIME_EMBEDDINGS
from ._progress import Progress
from .optim import SCHEDULES
from .transforms import Standardize, bits_per_dim
from .train import DATA, DATA_DEFAULTS, TIME_SAMPLINGS, TrainConfig, Trainer, TrainingDiverged


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


def _float_in(low=None, high=None, low_open=False, high_open=False):
    def check(text):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return _checks.finite_float(value, "value", low=low, high=high, low_open=low_open,
                                    high_open=high_open)
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


_TRAIN_EXAMPLES = """examples:
  npflow train --out model.npz                          # noise -> checkerboard, ~1 minute
  npflow train --target moons --coupling ot --out moons.npz
  npflow train --data my.csv --out my.npz               # your own rows, any number of columns
  npflow train --data digits.csv --label-column label --dequantize --out digits.npz
  npflow train --out model.npz --resume                 # continue a stopped run exactly
"""

# Options for reading rows from a file (npflow train / evaluate / log-prob / encode --data).
_DATA_HELP = ("rows to train on: .npy (memory-mapped), .npz, .csv, .tsv, .txt (or .gz), or an "
              "IDX file (MNIST's format); one row per point, any number of columns")


def _add_data_reading(p, data_help, label_help=False):
    p.add_argument("--data", default=None, help=data_help)
    p.add_argument("--key", default=None, help="array name inside an .npz file")
    p.add_argument("--delimiter", default=None,
                   help="column separator of a text file (default: by extension)")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto",
                   help="whether a text file's first line names the columns (default: auto)")
    p.add_argument("--drop-nonfinite", action="store_true",
                   help="drop rows holding NaN or infinity instead of refusing the file")
    p.add_argument("--label-column", default=None,
                   help="the column (index from 0, or header name) that holds class labels: "
                        "taken out of the rows" + (" and learned (a conditional flow)"
                                                   if label_help else
                                                   "; the model's unconditional field is used"))


def _add_train(sub):
    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a flow-matching model and save a checkpoint",
                       description="Train a velocity field by conditional flow matching, on a "
                                   "built-in 2-D dataset (--target) or on your own rows "
                                   "(--data; then the defaults for data apply).",
                       epilog=_TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, (field, kind, text) in _TRAIN_OPTIONS.items():
        default = getattr(defaults, field)
        if field in DATA_DEFAULTS:
            data_default = DATA_DEFAULTS[field]
            shown = ",".join(map(str, data_default)) if isinstance(data_default, tuple) \
                else data_default
            text = f"{text} (with --data: {shown})"
        if isinstance(kind, list):
            p.add_argument(option, choices=kind, default=argparse.SUPPRESS,
                           help=f"{text} (default: {default})")
        else:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            p.add_argument(option, type=kind, default=argparse.SUPPRESS,
                           help=f"{text} (default: {shown})")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help=f"shortcuts a_i = a_(i-1) + act(z_i) around each hidden layer as wide "
                        f"as the one before (default: {defaults.residual}, with --data: "
                        f"{DATA_DEFAULTS['residual']})")
    p.add_argument("--conditional", action="store_true", default=argparse.SUPPRESS,
                   help="learn v(x, t, y) for the target's class labels y (for npflow sample "
                        "--label and --guidance); implied by --labels and --label-column")
    _add_data_reading(p, _DATA_HELP, label_help=True)
    p.add_argument("--labels", default=None,
                   help="with --data: a file of class labels 0 .. K-1, one per row")
    p.add_argument("--source-data", default=None,
                   help="with --data: rows of the source distribution (a data-to-data flow); "
                        "default: a standard Gaussian of the data's dimension")
    for option, (field, kind, text) in _DATA_TRAIN_OPTIONS.items():
        p.add_argument(option, type=kind, default=argparse.SUPPRESS,
                       help=f"{text} (default: {getattr(defaults, field)})")
    p.add_argument("--dequantize", action="store_true", default=argparse.SUPPRESS,
                   help="with --data: integer data (counts, pixels); train on x + u, u ~ U[0, 1), "
                        "and report bits per dimension")
    p.add_argument("--no-standardize", action="store_true", default=argparse.SUPPRESS,
                   help="with --data: train on the raw values instead of (x - mean) / std")
    p.add_argument("--out", default="model.npz", help="checkpoint file (default: model.npz)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out (only --steps may change)")
    p.add_argument("--checkpoint-every", type=POSITIVE_INT, default=1000,
                   help="save every N steps (default: 1000)")
    p.add_argument("--quiet", action="store_true", help="no progress line or summary")
    p.set_defaults(run=_cmd_train)


_DATA_TRAIN_OPTIONS = {
    "--val-fraction": ("val_fraction", _float_in(low=0, high=1, high_open=True),
                       "with --data: fraction of rows held out for the validation loss"),
    "--patience": ("patience", NONNEG_INT,
                   "with --data: stop after this many evaluations without a better validation "
                   "loss (0: never)"),
    "--eval-every": ("eval_every", POSITIVE_INT, "with --data: steps between validation losses"),
}


def _given_options(args):
    """The TrainConfig fields set on the command line."""
    options = {**_TRAIN_OPTIONS, **_DATA_TRAIN_OPTIONS}
    given = {field: getattr(args, field) for field, *_ in options.values()
             if hasattr(args, field)}
    if hasattr(args, "residual"):
        given["residual"] = args.residual
    for flag, field, value in (("conditional", "conditional", True),
                               ("dequantize", "dequantize", True),
                               ("no_standardize", "standardize", False)):
        if hasattr(args, flag):
            given[field] = value
    if args.labels is not None or args.label_column is not None:
        given["conditional"] = True
    return given


def _cmd_train(args):
    out = _check_out(args.out, (".npz",))
    given = _given_options(args)
    _check_data_options(args, given)
    if args.resume:
        trainer = _resume(args, out, given)
    else:
        rows = _read_training_rows(args) if args.data is not None else None
        trainer = _new_trainer(given, rows)
    start_step, t_start = trainer.step, time.perf_counter()
    result = trainer.run(out=out, checkpoint_every=args.checkpoint_every, quiet=args.quiet)
    seconds = time.perf_counter() - t_start
    done = trainer.step - start_step
    if result.interrupted:
        print(f"stopped by {result.signal} at step {trainer.step}; saved {out} (continue with: "
              f"npflow train --out {out} --resume)", file=sys.stderr)
        return _SIGNAL_EXIT[result.signal]
    if not args.quiet:
        print(_summary(trainer, result, done, seconds, out))
    return 0


_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal number, as shells report


def _summary(trainer, result, done, seconds, out):
    loss = trainer.losses[-1] if trainer.losses else float("nan")
    line = (f"trained {done} steps in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} steps/s), "
            f"final loss {loss:.4f}")
    if trainer.rows is not None:
        line += f", {trainer.rows.sampler.epoch} epochs"
        if trainer.val_losses:
            best = min(v for _, v in trainer.val_losses)
            line += f", best validation loss {best:.4f} at step {trainer.best_step}"
        if result.stopped_early:
            line += " (stopped early: no improvement in --patience evaluations)"
    return f"{line}; saved {out}"


def _check_data_options(args, given):
    """Options that only make sense with --data, and --data against --target."""
    if args.data is None and not args.resume:
        needs = [o for o, used in (("--labels", args.labels), ("--label-column", args.label_column),
                                   ("--source-data", args.source_data), ("--key", args.key),
                                   ("--delimiter", args.delimiter),
                                   ("--header", args.header != "auto"),
                                   ("--drop-nonfinite", args.drop_nonfinite)) if used]
        needs += ["--" + f.replace("_", "-") for f in ("val_fraction", "patience", "eval_every",
                                                       "dequantize") if f in given]
        needs += ["--no-standardize"] if "standardize" in given else []
        if needs:
            raise UsageError(f"{', '.join(needs)} need --data (rows of your own)")
    if args.data is not None and ("target" in given or "source" in given):
        raise UsageError("--data replaces --target and --source (use --source-data for rows of a "
                         "source distribution)")
    if args.labels is not None and args.label_column is not None:
        raise UsageError("give class labels either with --labels or with --label-column, not both")
    if args.labels is not None and args.drop_nonfinite:
        raise UsageError("--drop-nonfinite cannot keep a separate --labels file aligned with the "
                         "rows it drops: put the labels in a column (--label-column) instead")
    if "label_dropout" in given and not given.get("conditional") and not args.resume:
        raise UsageError("--label-dropout needs --conditional (or labels with --data)")


def _read_kwargs(args):
    """The options of :func:`npflow.data.load` given on the command line."""
    header = {"auto": None, "yes": True, "no": False}[args.header]
    return {"key": args.key, "delimiter": args.delimiter, "header": header,
            "drop_nonfinite": args.drop_nonfinite, "label_column": _column(args.label_column)}


def _column(text):
    """A label column: an index (``3``, ``-1``) or a header name."""
    return int(text) if text is not None and text.lstrip("-").isdigit() else text


def _read_training_rows(args, files=None):
    """(rows, labels, source rows, files) from --data and its options (or the stored ``files``)."""
    if files is None:
        files = {"data": os.path.abspath(args.data), "read": _read_kwargs(args),
                 "labels": None if args.labels is None else os.path.abspath(args.labels),
                 "source_data": None if args.source_data is None
                 else os.path.abspath(args.source_data)}
    table = data.load(files["data"], name="--data", **files["read"])
    labels = table.y
    if files["labels"] is not None:
        labels = data.load_labels(files["labels"], table.n, name="--labels")
    source = None
    if files["source_data"] is not None:
        read = {**files["read"], "label_column": None}
        source = data.load(files["source_data"], name="--source-data", **read).x
    return table.x, labels, source, files


def _new_trainer(given, rows):
    """A Trainer for the options given: TrainConfig's defaults, or DATA_DEFAULTS with --data."""
    try:
        if rows is None:
            return Trainer(dataclasses.replace(TrainConfig(), **given))
        x, labels, source, files = rows
        config = flow.data_config(**given, **({"source": DATA} if source is not None else {}))
        return Trainer(config, data=x, labels=labels, source_data=source, data_files=files)
    except data.DataError:
        raise
    except (ValueError, TypeError) as err:  # an option value TrainConfig or Trainer refused
        raise UsageError(str(err)) from None


def _resume(args, out, given):
    """The Trainer of the run stored in ``out``, continued (only --steps may change)."""
    extra = sorted(set(given) - {"steps"})
    if extra:
        raise UsageError(f"--resume continues the run stored in {out}; it cannot change "
                         f"{', '.join('--' + f.replace('_', '-') for f in extra)}")
    if not os.path.isfile(out):
        raise UsageError(f"--resume: there is no checkpoint {out} to continue "
                         f"(name it with --out, or train without --resume)")
    ckpt = checkpoint.load(out)
    if given.get("steps", ckpt.step) < ckpt.step:
        raise UsageError(f"--steps {given['steps']} is fewer than the {ckpt.step} steps already "
                         f"done in {out}")
    rows = {}
    if ckpt.data is not None:
        files = None if args.data is not None else ckpt.data.info.get("files")
        if args.data is None and files is None:
            raise UsageError(f"--resume: {out} was trained on rows given as an array; name them "
                             f"with --data")
        x, labels, source, files = _read_training_rows(args, files)
        rows = {"data": x, "labels": labels, "source_data": source, "data_files": files}
    trainer = Trainer.from_checkpoint(out, steps=given.get("steps"), **rows)
    if trainer.replanned is not None:
        print(f"npflow train: {trainer.replanned.describe()}", file=sys.stderr)
    return trainer


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
# Likelihood commands integrate d + 1 tangents per row, so they default to fewer rk4 steps: 10
# steps give the held-out NLL within 5e-4 nats of 20 steps on the Gaussian-mixture benchmark
# (d = 10; 13.7580 against 13.7585) and within 1e-4 bits/dim of dopri5 on the digits, and
# npflow evaluate on 10,000 rows of 10-D data takes 28 s instead of 56 s with 20 steps.
LIKELIHOOD_STEPS = 10


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
    p.add_argument("--last", action="store_true",
                   help="a model trained on rows: the last EMA weights instead of those of the "
                        "lowest validation loss")


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


_SAMPLE_EXAMPLES = """examples:
  npflow sample --model model.npz --n 100000 --out samples.npy
  npflow sample --model my.npz --n 500 --out samples.csv       # a model of your rows: data units
  npflow sample --model digits.npz --label 3 --guidance 2 --out threes.npy
  npflow sample --model model.npz --n 100000000 --solver euler --steps 1 --out big.npy
"""


def _add_sample(sub):
    p = sub.add_parser("sample", help="generate points by integrating the learned flow",
                       description="Draw x0 from the source and integrate dx/dt = v(x, t) to t=1; "
                                   "points are written chunk by chunk, so any --n that fits on "
                                   "disk runs in bounded memory. A model trained on your rows "
                                   "writes them in data units.",
                       epilog=_SAMPLE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_solver_options(p)
    p.add_argument("--n", type=POSITIVE_INT, default=2000, help="number of points (default: 2000)")
    p.add_argument("--out", default="samples.npy",
                   help="output .npy or .csv file (default: samples.npy)")
    p.add_argument("--trajectory", default=None, help="also save the (steps+1, n, d) trajectory")
    p.add_argument("--chunk-size", type=POSITIVE_INT, default=20000,
                   help="points integrated at once, bounding memory (default: 20000)")
    p.add_argument("--label", type=NONNEG_INT, default=None,
                   help="class to generate (a model trained with --conditional or labels)")
    p.add_argument("--guidance", type=_float_in(), default=None,
                   help="classifier-free guidance weight w with --label: 0 unconditional, "
                        "1 conditional, > 1 sharper (default: 1)")
    p.add_argument("--source-data", default=None,
                   help="a data-to-data model: the source rows to map (all of them; --n is unused)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=_cmd_sample)


def _guided(model, label, guidance):
    """The field to sample: the model itself, or its guided field for class ``label``."""
    if label is None:
        if guidance is not None:
            raise UsageError("--guidance needs --label")
        return model
    if not model.n_classes:
        raise UsageError("--label needs a class-conditional model (npflow train --conditional, "
                         "or --labels with --data); this model is unconditional")
    if label >= model.n_classes:
        raise UsageError(f"--label must be a class in 0 .. {model.n_classes - 1}, got {label}")
    return GuidedField(model, label, 1.0 if guidance is None else guidance)


class _Space:
    """Where a checkpoint's network lives: the source it starts from and the map to data units.

    Built-in 2-D targets: the network works in data coordinates and starts from its named
    source. Runs on rows: the network works in standardized coordinates
    (:mod:`npflow.transforms`) and starts from N(0, I_d) or from source rows.
    """

    def __init__(self, ckpt):
        self.ckpt, self.config = ckpt, ckpt.train_config
        self.dim = ckpt.model_config["dim"]
        self.rows = ckpt.data is not None
        if self.rows:
            self.transform = Standardize.from_dict(ckpt.data.transform)
            source = ckpt.data.source_transform
            self.source_transform = None if source is None else Standardize.from_dict(source)

    @property
    def source_is_data(self):
        return self.rows and self.source_transform is not None

    def draw_source(self, n, rng):
        """n points of the source, in the network's coordinates."""
        if self.rows:
            return rng.standard_normal((n, self.dim))
        return datasets.sample(self.config["source"], n, rng)

    def to_network(self, x, transform=None):
        if not self.rows:
            return np.asarray(x, dtype=np.float64)
        return (transform or self.transform).forward(np.asarray(x, dtype=np.float64))

    def to_data(self, z):
        return self.transform.inverse(np.asarray(z, dtype=np.float64)) if self.rows else z

    def has_density(self):
        """Whether the source has a density, so that the model's rows have one."""
        if self.rows:
            return not self.source_is_data
        return datasets.has_density(self.config["source"])

    def log_prob(self, model, x, rng, divergence="auto", n_probes=None, **solver_kwargs):
        """``log p(x)`` (n,) in data units (``x + u`` when dequantized), and the LogLikelihood.

        ``log p_x(x) = log p_z(z) + log|det dz/dx|`` with ``log p_z`` from
        :func:`npflow.likelihood.log_likelihood` (the source density of a built-in target).
        ``rng`` draws ``u`` and Hutchinson's probes ("auto" ignores them up to
        ``likelihood.EXACT_MAX_DIM`` dimensions; "exact" takes none).
        """
        transform, log_p0 = self.transform if self.rows else None, None
        if not self.rows:
            log_p0 = _source_log_density(self.config["source"])
        with _stage("integrating the likelihood failed"):
            return likelihood.log_likelihood_of_rows(model, x, rng, transform, divergence,
                                                     n_probes, log_p0=log_p0, **solver_kwargs)

    def check_rows(self, x, option):
        if x.shape[1] != self.dim:
            raise UsageError(f"{option} has {x.shape[1]} columns, but the model was trained in "
                             f"d = {self.dim}")
        return x


class _RowWriter:
    """Rows written chunk by chunk to a temporary ``.npy`` or ``.csv`` file, renamed over
    ``path`` only when complete.

    The ``.npy`` header is written first (its shape is known), then each chunk's bytes in turn:
    nothing is kept in memory but the chunk, so any number of rows that fits on disk can be
    written.
    """

    def __init__(self, path, n, d, dtype):
        folder = os.path.dirname(os.path.abspath(path))
        self.path, self.csv, self.dtype = path, path.endswith(".csv"), np.dtype(dtype)
        need = n * d * (24 if self.csv else self.dtype.itemsize)
        free = shutil.disk_usage(folder).free
        if need > free:
            raise UsageError(f"{n} points of dimension {d} need about {_checks.gib(need)} on disk "
                             f"for {path}; its folder has {_checks.gib(free)} free")
        self.tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.partial")
        if self.csv:
            self.file = open(self.tmp, "w", encoding="ascii")
        else:
            self.file = open(self.tmp, "wb")
            np.lib.format.write_array_header_1_0(self.file, {
                "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                "shape": (n, d)})

    def write(self, rows):
        """Append the next rows (m, d)."""
        if self.csv:
            np.savetxt(self.file, rows, delimiter=",", fmt="%.9g")
        else:
            self.file.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def close(self, complete=True):
        """Close, and rename over the target when ``complete`` (else delete)."""
        self.file.close()
        if complete:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


@contextlib.contextmanager
def _stage(what):
    """Report a ValueError raised inside the block as a failure of ``what`` (exit 1).

    The inputs were checked before; a ValueError here comes from the computation itself (a
    state that became NaN, a network that overflowed).
    """
    try:
        yield
    except ValueError as err:
        raise RuntimeError(f"{what}: {err}") from None


def _cmd_sample(args):
    out = _check_out(args.out, (".npy", ".csv"))
    traj_out = None if args.trajectory is None else _check_out(args.trajectory, (".npy",),
                                                               "--trajectory")
    ckpt = checkpoint.load(args.model)
    space = _Space(ckpt)
    model = ckpt.model(ema=not args.raw, best=not args.last)
    field = _guided(model, args.label, args.guidance)
    rows = _source_rows(args, space)
    n = args.n if rows is None else len(rows)
    if traj_out is not None and n > args.chunk_size:
        raise UsageError(f"--trajectory holds every step of every point in memory: use --n <= "
                         f"--chunk-size ({args.chunk_size})")
    rng = np.random.default_rng(args.seed)
    writer = _RowWriter(out, n, space.dim, model.dtype)
    progress = Progress(n, enabled=False if args.quiet else None, label="point")
    t_start, nfe, complete = time.perf_counter(), 0, False
    try:
        for start in range(0, n, args.chunk_size):
            m = min(args.chunk_size, n - start)
            x0 = space.draw_source(m, rng) if rows is None else \
                space.to_network(rows[start:start + m], space.source_transform)
            with _stage("integrating the flow failed"):
                sol = sampling.sample_flow(field, x0.astype(model.dtype),
                                          return_trajectory=traj_out is not None,
                                          **_solver_kwargs(args))
            writer.write(space.to_data(sol.x))
            nfe = max(nfe, sol.nfe)
            progress.update(start + m)
        complete = True
    finally:
        progress.close()
        writer.close(complete)
    seconds = time.perf_counter() - t_start
    if traj_out is not None:
        np.save(traj_out, sol.trajectory if not space.rows else
                space.to_data(sol.trajectory.reshape(-1, space.dim)).reshape(sol.trajectory.shape))
    if not args.quiet:
        print(f"sampled {n} points with {args.solver}: {nfe} velocity evaluations, "
              f"{seconds:.2f} s; saved {out}" + (f" and {traj_out}" if traj_out else ""))
    return 0


def _source_rows(args, space):
    """The rows of --source-data for a data-to-data model, or None for a noise source."""
    if space.source_is_data != (args.source_data is not None):
        raise UsageError("--source-data goes with a data-to-data model (npflow train --data ... "
                         "--source-data ...): this model " +
                         ("maps source rows: name them with --source-data" if space.source_is_data
                          else "starts from noise"))
    if args.source_data is None:
        return None
    return space.check_rows(data.load(args.source_data, name="--source-data").x, "--source-data")


# --- npflow evaluate -----------------------------------------------------------------------------
_EVALUATE_EXAMPLES = """examples:
  npflow evaluate --model model.npz                 # a built-in target: fresh data as reference
  npflow evaluate --model my.npz --data held_out.csv --json
"""


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="measure a model: NLL, W2, MMD, energy distance, with "
                                        "their data-vs-data floors",
                       description="Compare n generated points with n reference points (fresh "
                                   "target points, or held-out rows of --data) and give the "
                                   "same metric between two reference sets of the same law "
                                   "(the floor: what a perfect model would score); and the NLL "
                                   "(exact divergence) of held-out points.",
                       epilog=_EVALUATE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_solver_options(p, steps_default=LIKELIHOOD_STEPS)
    p.add_argument("--n", type=POSITIVE_INT, default=2000,
                   help="points per set for W2, MMD and energy (default: 2000)")
    _add_data_reading(p, "held-out rows to score (a model trained with --data)")
    _add_divergence_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_evaluate)


def _add_divergence_options(p):
    p.add_argument("--divergence", choices=likelihood.DIVERGENCES, default="auto",
                   help=f"div v for the likelihood: exact (d tangents) up to d = "
                        f"{likelihood.EXACT_MAX_DIM}, Hutchinson's estimate above, unless forced "
                        f"(default: auto)")
    p.add_argument("--probes", type=POSITIVE_INT, default=None,
                   help=f"Hutchinson probes per row (default: {likelihood.DEFAULT_PROBES})")


def _likelihood_kwargs(divergence, n_probes):
    """The divergence options of :meth:`_Space.log_prob`, checked."""
    if divergence == "exact" and n_probes is not None:
        raise UsageError("--probes goes with a Hutchinson divergence, not --divergence exact")
    return {"divergence": divergence, "n_probes": n_probes}


def _source_log_density(name):
    if not datasets.has_density(name):
        return None
    return lambda x: datasets.log_density(name, x)


def evaluate(ckpt, n, seed, solver_kwargs, ema=True, held_out=None, best=True,
             divergence="auto", n_probes=None):
    """The metrics of ``npflow evaluate`` as a dict (see the command's help).

    ``held_out`` (m, d): rows of a model trained on data (data units); None draws fresh points
    of a built-in target. Every sample metric comes with its floor: the same metric between two
    reference sets (``*_floor``). MMD uses one bandwidth, the median heuristic of the reference.
    """
    likelihood_kwargs = _likelihood_kwargs(divergence, n_probes)  # checked before any work
    space = _Space(ckpt)
    model = ckpt.model(ema=ema, best=best)
    rng = np.random.default_rng(seed)
    if held_out is not None:
        if not space.rows:
            raise UsageError("--data scores a model trained on rows (npflow train --data); this "
                             "model has a built-in target, scored on fresh points without --data")
        held_out = np.asarray(space.check_rows(held_out, "--data"), dtype=np.float64)
        if len(held_out) < 4:
            raise UsageError(f"--data needs at least 4 rows, got {len(held_out)}")
        n = min(n, len(held_out) // 2)
    elif space.rows:
        raise UsageError("this model was trained on rows of data: score it with --data "
                         "(held-out rows)")
    x0 = space.draw_source(n, rng).astype(model.dtype)  # first, as npflow sample draws it
    with _stage("integrating the flow failed"):
        sol = sampling.sample_flow(model, x0, **solver_kwargs)
    generated = space.to_data(sol.x.astype(np.float64))
    if held_out is None:
        target = ckpt.train_config["target"]
        reference, nll_rows, floor_set = (datasets.sample(target, n, rng) for _ in range(3))
    else:
        shuffled = held_out[rng.permutation(len(held_out))]
        reference, floor_set, nll_rows = shuffled[:n], shuffled[n:2 * n], held_out
    result = {"n": n, "nfe": sol.nfe, **_sample_metrics(generated, reference, floor_set)}
    result.update(_nll(space, model, nll_rows, rng, {**solver_kwargs, **likelihood_kwargs}))
    target = ckpt.train_config["target"]
    result["precision"] = datasets.checkerboard_precision(generated) \
        if target == "checkerboard" else None
    return result


def _sample_metrics(generated, reference, floor_set):
    """W2, MMD^2 and energy distance of generated vs reference, and reference-vs-floor_set."""
    width = metrics.median_distance(reference)  # one MMD bandwidth for the model and the floor
    out = {}
    for name, metric in (("w2", metrics.wasserstein2),
                         ("mmd", lambda a, b: metrics.mmd_rbf(a, b, bandwidth=width)),
                         ("energy", metrics.energy_distance)):
        out[name] = metric(generated, reference)
        out[f"{name}_floor"] = metric(floor_set, reference)
    return out


def _nll(space, model, rows, rng, solver_kwargs):
    """Mean negative log-likelihood of ``rows`` in nats (and bits/dim when dequantized)."""
    if not space.has_density():
        return {"nll": None}
    log_prob, ll = space.log_prob(model, rows, rng, **solver_kwargs)
    result = {"nll": metrics.negative_log_likelihood(log_prob)}
    if not space.rows:
        return result
    result["nll_rows"] = len(rows)
    if ll.stderr is not None:  # Hutchinson: the probes' noise in the mean
        result["nll_probe_stderr"] = float(np.sqrt(np.sum(ll.stderr ** 2)) / len(rows))
    if space.transform.dequantize:
        result["bits_per_dim"] = bits_per_dim(result["nll"], space.dim)
    return result


def _cmd_evaluate(args):
    ckpt = checkpoint.load(args.model)
    held_out = None
    if args.data is not None:
        held_out = data.load(args.data, name="--data", **_read_kwargs(args)).x
    result = evaluate(ckpt, args.n, args.seed, _solver_kwargs(args), ema=not args.raw,
                      held_out=held_out, best=not args.last, divergence=args.divergence,
                      n_probes=args.probes)
    if args.json:
        print(json.dumps(result))
        return 0
    config = ckpt.train_config
    what = f"{args.data} ({len(held_out)} held-out rows)" if held_out is not None else \
        f"{config['source']} -> {config['target']}"
    print(f"{args.model}: {what}, {result['n']} points per set, {args.solver}, "
          f"{result['nfe']} evaluations")
    print(f"  {'':18}{'model':>10}{'floor':>10}   (floor: two reference sets of the same law)")
    for key, label, fmt in (("w2", "W2 (exact)", ".4f"), ("mmd", "MMD^2 (RBF)", ".5f"),
                            ("energy", "energy distance", ".5f")):
        print(f"  {label:<18}{result[key]:>10{fmt}}{result[key + '_floor']:>10{fmt}}")
    if result["nll"] is not None:
        floor = f"   (true entropy {np.log(32):.3f})" if config["target"] == "checkerboard" else ""
        print(f"  {'NLL (nats)':<18}{result['nll']:>10.4f}{floor}")
    if result.get("bits_per_dim") is not None:
        print(f"  {'bits per dim':<18}{result['bits_per_dim']:>10.4f}   (dequantized: a bound "
              f"on the discrete NLL)")
    if result["precision"] is not None:
        print(f"  {'precision':<18}{result['precision']:>10.4f}")
    return 0


# --- npflow log-prob / encode ---------------------------------------------------------------------
def _add_rows_command(sub, name, help_text, description, example, run):
    p = sub.add_parser(name, help=help_text, description=description, epilog=example,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_solver_options(p, steps_default=LIKELIHOOD_STEPS)
    _add_data_reading(p, "rows to map (the model's dimension)")
    p.add_argument("--out", required=True, help="output .npy or .csv file")
    p.set_defaults(run=run)
    return p


def _add_log_prob(sub):
    p = _add_rows_command(
        sub, "log-prob", "write the model's log-density of every row (e.g. anomaly scores)",
        "One log p(x) per row of --data, in nats and data units (exact divergence): low values "
        "are rows the model finds unlikely. A dequantized model scores x + u, u ~ U[0, 1).",
        "example:\n  npflow log-prob --model my.npz --data new_rows.csv --out scores.npy\n",
        _cmd_log_prob)
    _add_divergence_options(p)


def _add_encode(sub):
    _add_rows_command(
        sub, "encode", "map rows of data to noise (the flow run backwards)",
        "Integrate the flow from t = 1 back to t = 0: each row of --data becomes the noise "
        "point z that npflow sample would carry to it.",
        "example:\n  npflow encode --model my.npz --data rows.csv --out z.npy\n", _cmd_encode)


def _rows_for(args, space):
    if args.data is None:
        raise UsageError("--data is required: the rows to map")
    return np.asarray(space.check_rows(
        data.load(args.data, name="--data", **_read_kwargs(args)).x, "--data"), dtype=np.float64)


def _cmd_log_prob(args):
    out = _check_out(args.out, (".npy", ".csv"))
    ckpt = checkpoint.load(args.model)
    space = _Space(ckpt)
    if not space.has_density():
        raise UsageError("this model's source has no density, so its rows have none either")
    model = ckpt.model(ema=not args.raw, best=not args.last)
    rng = np.random.default_rng(args.seed)
    kwargs = {**_solver_kwargs(args), **_likelihood_kwargs(args.divergence, args.probes)}
    scores, _ = space.log_prob(model, _rows_for(args, space), rng, **kwargs)
    _save_rows(out, scores[:, None])
    print(f"wrote {len(scores)} log-densities (nats; mean {scores.mean():.4f}) to {out}")
    return 0


def _cmd_encode(args):
    out = _check_out(args.out, (".npy", ".csv"))
    ckpt = checkpoint.load(args.model)
    space = _Space(ckpt)
    model = ckpt.model(ema=not args.raw, best=not args.last)
    z1 = space.to_network(_rows_for(args, space)).astype(model.dtype)
    kwargs = _solver_kwargs(args)
    with _stage("integrating the flow backwards failed"):
        z0 = solvers.solve(model, z1, kwargs.pop("method"), kwargs.pop("steps"), t0=1.0, t1=0.0,
                           **kwargs).x
    _save_rows(out, z0.astype(np.float64))
    print(f"encoded {len(z0)} rows to noise; saved {out}")
    return 0


def _save_rows(path, rows):
    """Write (n, k) rows to ``path`` (.npy or .csv) through a temporary file and a rename."""
    writer = _RowWriter(path, rows.shape[0], rows.shape[1], rows.dtype)
    writer.write(rows)
    writer.close()


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
    if ckpt.data is not None:
        raise UsageError("--model: reflow from the command line takes a model of a built-in "
                         "target; for a model of your rows use npflow.reflow in Python")
    model = ckpt.model(ema=True)
    # The x0 draws get a stream of their own, spawned from the seed; the run's generator is
    # default_rng(seed) itself (SeedSequence.spawn: independent children of one seed).
    pairs_seed, = np.random.SeedSequence(args.seed).spawn(1)
    x0 = datasets.sample(parent.source, args.pairs, np.random.default_rng(pairs_seed))
    t_start = time.perf_counter()
    pairs = reflow.reflow_pairs(model, x0, method=args.solver, steps=args.sample_steps)
    trainer = reflow.reflow_trainer(model, parent, pairs, steps=args.steps, seed=args.seed)
    result = trainer.run(out=out, quiet=args.quiet)
    if result.interrupted:
        print(f"stopped by {result.signal} at step {trainer.step}; saved {out} (a reflow run "
              f"cannot be resumed)", file=sys.stderr)
        return _SIGNAL_EXIT[result.signal]
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
    _add_data_reading(p, "a model of your rows: rows to draw beside its samples (--kind samples: "
                         "side by side in 2-D, pairwise scatter plots of a few coordinates above)")
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


def _plot_rows(viz, ckpt, model, n, steps, seed, rows):
    """A model of rows: its samples beside ``rows`` (panels in 2-D, pairwise plots above)."""
    space = _Space(ckpt)
    rows = space.check_rows(rows, "--data")
    if space.source_is_data:
        raise UsageError("--kind samples of a data-to-data model: use npflow sample "
                         "--source-data, then plot the rows yourself")
    rng = np.random.default_rng(seed)
    z0 = space.draw_source(n, rng)
    generated = space.to_data(solvers.solve(model, z0.astype(model.dtype), "rk4", steps).x)
    if space.dim == 2:
        return viz.panels(space.to_data(z0), generated, rows,
                          titles=("noise (in data units)", "generated", "data"))
    return viz.pairplot(rows, generated)


def _cmd_plot(args):
    out = _check_out(args.out, (".png", ".pdf", ".svg"))
    viz = _viz()
    ckpt = checkpoint.load(args.model)
    n = _PLOT_N.get(args.kind, 2000) if args.n is None else args.n
    steps = _PLOT_STEPS.get(args.kind, 100) if args.steps is None else args.steps
    model = ckpt.model(ema=not args.raw)
    if ckpt.data is not None and args.kind != "loss":
        if args.kind != "samples":
            raise UsageError(f"--kind {args.kind} draws a model of a built-in 2-D target; for a "
                             f"model of your rows use --kind samples (with --data) or loss")
        if args.data is None:
            raise UsageError("--kind samples of a model of your rows needs --data (rows to draw "
                             "beside the samples)")
        rows = data.load(args.data, name="--data", **_read_kwargs(args)).x
        fig = _plot_rows(viz, ckpt, model, n, steps, args.seed, np.asarray(rows, np.float64))
    elif args.data is not None:
        raise UsageError("--data goes with a model of your rows; this one has a built-in target")
    else:
        fig = _PLOTS[args.kind](viz, ckpt, model, n, steps, args.seed)
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
    for add in (_add_train, _add_datasets, _add_sample, _add_evaluate, _add_log_prob,
                _add_encode, _add_reflow, _add_plot, _add_animate, _add_bench):
        add(sub)
    return parser


# Errors the user caused: bad options, files that are not what they should be, requests found
# (before any work) to need more memory than there is. Everything else that fails is a failure
# at run time: exit 1, still one line.
USAGE_ERRORS = (UsageError, checkpoint.CheckpointError, data.DataError,
                _checks.InsufficientMemory)


def main(argv=None):
    """Run the command line; returns the exit code.

    0: done. 2: a usage error (a bad option, a missing or invalid file, a request too large
    for this machine), reported in one line. 1: a failure at run time (a diverging loss, a
    solver that blew up, the machine running out of memory or disk), in one line. 130 / 143:
    stopped by SIGINT / SIGTERM (training saves first and says how to resume).
    """
    args = build_parser().parse_args(argv)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NaN is checked
            return args.run(args)
    except USAGE_ERRORS as err:
        print(f"npflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (TrainingDiverged, ValueError, TypeError, RuntimeError, ArithmeticError,
            MemoryError, OSError) as err:
        what = "out of memory" if isinstance(err, MemoryError) else "failed"
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"npflow {args.command}: {what}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"npflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
