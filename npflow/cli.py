"""The ``npflow`` command line: ``npflow train | datasets | sample | evaluate | log-prob |
encode | impute | reflow | plot | animate`` (also ``python -m npflow``).

A face over the library: each command parses its options and calls
:class:`~npflow.train.Trainer` (training) or :class:`~npflow.trained.TrainedFlow` (everything
a trained model does), whose checks are the only rules; this module adds none but parsing.

Every error a user can cause (a bad option value, options that do not go together, a missing or
invalid model or data file, a request too large for the machine) ends with a one-line message
on standard error and exit code 2; a failure at run time (a diverging loss, a solver that blew
up) with one line and exit code 1; never a traceback. ``npflow COMMAND --help`` shows examples.
"""
import argparse
import dataclasses
import json
import shlex
import sys

import numpy as np

from . import _checks, data, datasets, imputation, likelihood, solvers, tables, train, viz
from .train import DATA_DEFAULTS, UNET_DATA_DEFAULTS, TrainConfig, TrainingDiverged
from .trained import LIKELIHOOD_STEPS, TrainedFlow


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exits with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# --- argument types: parsing only; the library checks every value (npflow._checks) ----------
def _widths(text):
    """``256,256`` -> (256, 256): hidden widths, U-Net multipliers, an image shape."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,256, "
                                         f"got {text!r}") from None


def _label(text):
    """An index (of a class, of a column), else a name (a table's level, a column's header)."""
    return int(text) if text.lstrip("+-").isdigit() else text


def _column_kind(text):
    """``NAME=KIND`` -> (name, kind)."""
    name, _, kind = text.rpartition("=")
    if not name or kind not in tables.KINDS:
        raise argparse.ArgumentTypeError(f"expected NAME=KIND with KIND one of "
                                         f"{', '.join(tables.KINDS)}, got {text!r}")
    return name, kind


# The options that stand for the library's arguments of another name.
_FLAGS = {"method": "--solver", "n_probes": "--probes", "held_out": "--data",
          "source_rows": "--source-data", "n_pairs": "--pairs", "x": "--data", "rows": "--data",
          "return_trajectory": "--trajectory", "table": "--data", "column_kinds": "--column-kind",
          "best": "--last"}


def _flag(name, args):
    """How this command names the library's argument ``name``: its option of that name, else the
    option _FLAGS gives, else ``name`` itself."""
    if name in vars(args) or args.command == "train" and name in _TRAIN_HELP:
        return "--" + name.replace("_", "-")
    return _FLAGS.get(name, name)


# --- the options shared by several commands, each defined once ----------------------------------
_SHARED = {
    "--model": dict(required=True, help="checkpoint written by npflow train"),
    "--seed": dict(type=int, default=0, help="random seed (default: 0)"),
    "--raw": dict(action="store_true", help="use the raw weights instead of the EMA"),
    "--last": dict(action="store_true", help="a model trained on rows: the last EMA weights "
                                             "instead of those of the lowest validation loss"),
    "--solver": dict(choices=solvers.METHODS, default="rk4", help="ODE solver (default: rk4)"),
    "--rtol": dict(type=float, default=solvers.RTOL, help="dopri5 relative tolerance"),
    "--atol": dict(type=float, default=solvers.ATOL, help="dopri5 absolute tolerance"),
    "--quiet": dict(action="store_true", help="no progress line or summary"),
    "--guidance": dict(type=float, default=None, help="classifier-free guidance weight w: "
                                                      "0 unconditional, 1 conditional (default), "
                                                      "> 1 sharper"),
    "--source-data": dict(default=None, help="a data-to-data model: the source rows to map "
                                             "(all of them, whatever the count asked)"),
    "--delimiter": dict(default=None,
                        help="column separator of a text file (default: by extension)"),
    "--header": dict(action=argparse.BooleanOptionalAction, default=None,
                     help="a text file's first line names the columns, or not (default: detected)"),
    "--key": dict(default=None, help="array name inside an .npz file"),
    "--drop-nonfinite": dict(action="store_true",
                             help="drop rows holding NaN or infinity instead of refusing the file"),
    "--image-shape": dict(type=_widths, default=None,
                          help="each row is an image of shape C,H,W or H,W (IDX files and arrays "
                               "of images carry their own)"),
    "--divergence": dict(choices=likelihood.DIVERGENCES, default="auto",
                         help=f"div v for the likelihood (default auto: exact up to d = "
                              f"{likelihood.EXACT_MAX_DIM}, Hutchinson's estimate above)"),
    "--probes": dict(type=int, default=None,
                     help=f"Hutchinson probes per row (default: {likelihood.DEFAULT_PROBES})"),
}


def _add(p, *flags):
    """Add the shared options ``flags`` to the parser ``p``."""
    for flag in flags:
        p.add_argument(flag, **_SHARED[flag])


def _command(sub, name, help_text, description, examples=None, run=None):
    """A subcommand's parser, its examples shown after the options by ``--help``."""
    p = sub.add_parser(name, help=help_text, description=description, epilog=examples,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=run)
    return p


# --- npflow train -------------------------------------------------------------------------------
_TRAIN_HELP = {  # TrainConfig field: help (its type, choices and defaults are TrainConfig's)
    "source": "source distribution p0 (x0)",
    "target": "target distribution p1 (x1)",
    "path": "probability path",
    "sigma": "noise of icfm / sigma_min of lipman",
    "coupling": "pairing of x0 and x1 in a batch",
    "steps": "training steps",
    "batch_size": "points per batch",
    "lr": "peak learning rate",
    "schedule": "learning-rate schedule",
    "warmup_steps": "linear warm-up steps",
    "weight_decay": "AdamW decoupled weight decay",
    "grad_clip": "clip the gradient's global norm (0: off)",
    "ema_decay": "decay of the weights' moving average",
    "hidden": "hidden widths, comma-separated",
    "activation": "hidden activation",
    "residual": "shortcuts a_i = a_(i-1) + act(z_i) around each hidden layer as wide as the "
                "one before",
    "time_embedding": "how t enters the network",
    "embed_dim": "size of the sinusoidal time embedding",
    "time_sampling": "density of training times t",
    "seed": "random seed of the whole run",
    "conditional": "learn v(x, t, y) for the target's class labels y (for npflow sample --label "
                   "and --guidance); implied by --labels and --label-column",
    "label_dropout": "with --conditional: P(label -> null label)",
    "dtype": "floating-point precision",
    "val_fraction": "with --data: fraction of rows held out for the validation loss",
    "eval_every": "with --data: steps between validation losses",
    "patience": "with --data: stop after this many evaluations without a better validation "
                "loss (0: never)",
    "dequantize": "with --data: integer data (counts, pixels); train on x + u, u ~ U[0, 1), and "
                  "report bits per dimension",
    "standardize": "with --data: train on (x - mean) / std; --no-standardize: on the raw values",
    "arch": "the network: an MLP, or a U-Net for images",
    "channels": "--arch unet: base width C",
    "multipliers": "--arch unet: C_i = C m_i per level",
    "blocks": "--arch unet: residual blocks per level",
    "groups": "--arch unet: groups of each group norm",
}

_TRAIN_EXAMPLES = """examples:
  npflow train --out model.npz                          # noise -> checkerboard, ~1 minute
  npflow train --target moons --coupling ot --out moons.npz
  npflow train --data my.csv --out my.npz               # your own rows, any number of columns
  npflow train --data digits.csv --label-column label --dequantize --out digits.npz
  npflow train --data penguins.csv --out p.npz          # a table: strings, integers, NA cells
  npflow train --data penguins.csv --label-column species --column-kind year=categorical
  npflow train --steps 3000 --out m.npz --resume        # the same command again continues it
  npflow train --steps 3000 --out m.npz --resume auto   # a job script: continue, or start
"""

_DATA_HELP = ("rows to train on: .npy (memory-mapped), .npz, .csv, .tsv, .txt (or .gz), or an "
              "IDX file (MNIST's format); one row per point, any number of columns")


def _add_data_reading(p, data_help, label_help=False, required=False):
    p.add_argument("--data", default=None, required=required, help=data_help)
    _add(p, "--key", "--delimiter", "--header", "--drop-nonfinite", "--image-shape")
    p.add_argument("--label-column", type=_label, default=None,
                   help="the column (index from 0, or header name) that holds class labels: "
                        "taken out of the rows" + (" and learned (a conditional flow)"
                                                   if label_help else
                                                   "; the model's unconditional field is used"))


def _add_train(sub):
    p = _command(sub, "train", "train a flow-matching model and save a checkpoint",
                 "Train a velocity field by conditional flow matching, on a built-in 2-D dataset "
                 "(--target) or on your own rows (--data; then the defaults for data apply).",
                 _TRAIN_EXAMPLES, _cmd_train)
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    for field in map(fields.get, _TRAIN_HELP):
        text = f"{_TRAIN_HELP[field.name]} (default: {_checks.shown(field.default)}"
        for where, defaults in (("with --data", DATA_DEFAULTS),
                                ("--arch unet", UNET_DATA_DEFAULTS)):
            if field.name in defaults:
                text += f"; {where}: {_checks.shown(defaults[field.name])}"
        how = {"choices": train.CHOICES[field.name]} if field.name in train.CHOICES else \
            {"action": argparse.BooleanOptionalAction} if field.type is bool else \
            {"type": _widths if field.type is tuple else field.type}
        p.add_argument("--" + field.name.replace("_", "-"), default=argparse.SUPPRESS,
                       help=text + ")", **how)
    _add_data_reading(p, _DATA_HELP, label_help=True)
    p.add_argument("--table", action=argparse.BooleanOptionalAction, default=None,
                   help="with --data: read the text file as a table (strings, integers, missing "
                        "cells; default: when a cell is missing or not a number)")
    p.add_argument("--column-kind", action="append", type=_column_kind, default=None,
                   metavar="NAME=KIND",
                   help=f"a table column's kind, over the inferred one: {', '.join(tables.KINDS)}"
                        f" (repeatable)")
    p.add_argument("--ignore", action="append", dest="column_kind", metavar="NAME",
                   type=lambda name: (name, "ignore"),
                   help="a table column to leave out of the model (repeatable)")
    p.add_argument("--labels", default=None,
                   help="with --data: a file of class labels 0 .. K-1, one per row")
    p.add_argument("--source-data", default=None,
                   help="with --data: rows of the source distribution (a data-to-data flow); "
                        "default: a standard Gaussian of the data's dimension")
    p.add_argument("--out", default="model.npz", help="checkpoint file (default: model.npz)")
    p.add_argument("--resume", nargs="?", const="yes", choices=train.RESUME, default="no",
                   help="continue the run saved in --out, repeating the command that started it "
                        "(a changed option is refused; --steps re-plans). 'auto': continue if "
                        "--out exists, else start (one command for a job and its requeues)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="save every N steps (default: 1000)")
    _add(p, "--quiet")


def _training_files(args):
    """The TrainingFiles of --data and its options (None when no file is named)."""
    options = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(data.TrainingFiles)}
    files = data.TrainingFiles(**{**options, "column_kinds": getattr(args, "column_kind", None)})
    return None if files.data is None else files


def _cmd_train(args):
    out = _checks.out_path(args.out, (".npz",))
    given = {field: getattr(args, field) for field in _TRAIN_HELP if hasattr(args, field)}
    trainer = train.start_or_resume(out, given, _training_files(args), args.resume)
    if trainer.replanned is not None:
        print(f"npflow train: {trainer.replanned.describe()}", file=sys.stderr)
    if trainer.rows is not None and trainer.rows.table is not None and not args.quiet:
        print(trainer.rows.table.summary())
    result = trainer.run(out=out, checkpoint_every=args.checkpoint_every, quiet=args.quiet)
    again = "continue with: npflow " + shlex.join(args.argv + ([] if args.resume != "no" else
                                                               ["--resume"]))
    return _finished(args, result, out, again)


def _finished(args, result, out, again, what=""):
    """Report a finished or stopped run; the exit code (128 + a stopping signal's number)."""
    if result.interrupted:
        print(f"stopped by {result.signal} at step {result.trainer.step}; saved {out} ({again})",
              file=sys.stderr)
        return {"SIGINT": 130, "SIGTERM": 143}[result.signal]
    if not args.quiet:
        print(f"{what}{result.summary()}; saved {out}")
    return 0


# --- npflow datasets ----------------------------------------------------------------------------
def _cmd_datasets(args):
    width = max(map(len, datasets.DATASETS))
    for name, text in datasets.DATASETS.items():
        print(f"{name:<{width}}  {text}")
    return 0


# --- the commands that use a model --------------------------------------------------------------
def _add_solver_options(p, steps_default=solvers.DEFAULT_STEPS, tolerances=True):
    _add(p, "--model", "--solver")
    p.add_argument("--steps", type=int, default=argparse.SUPPRESS,
                   help=f"uniform steps of the fixed-step solvers; dopri5 picks its own "
                        f"(default: {steps_default})")
    _add(p, *(("--rtol", "--atol") if tolerances else ()), "--seed", "--raw", "--last")


def _solver(args):
    """The solver keyword arguments (steps None: the library's default for the work)."""
    return {"method": args.solver, "steps": getattr(args, "steps", None), "rtol": args.rtol,
            "atol": args.atol}


def _rng(args):
    return np.random.default_rng(_checks.nonnegative_int(args.seed, "seed"))


def _flow(args):
    return TrainedFlow.load(args.model, ema=not args.raw, best=not getattr(args, "last", False))


def _read_rows(args):
    """The rows of numbers of --data (and its reading options), float64."""
    rows, _, _ = dataclasses.replace(_training_files(args), table=False).load()
    return np.asarray(rows.x, dtype=np.float64)


def _source_rows(args):
    """The rows of --source-data (a data-to-data model's), or None."""
    return None if args.source_data is None else \
        data.load(args.source_data, name="--source-data").x


def _read_table(args):
    """The table of --data (a text file, read with --delimiter and --header)."""
    return _training_files(args).read_table()


# --- npflow sample ------------------------------------------------------------------------------
_SAMPLE_EXAMPLES = """examples:
  npflow sample --model model.npz --n 100000 --out samples.npy
  npflow sample --model my.npz --n 500 --out samples.csv       # a model of your rows: data units
  npflow sample --model digits.npz --label 3 --guidance 2 --out threes.npy
  npflow sample --model p.npz --n 344 --out synthetic.csv      # a table: its header, NA cells
  npflow sample --model p.npz --label Gentoo --complete --out gentoo.csv
  npflow sample --model model.npz --n 100000000 --solver euler --steps 1 --out big.npy
"""


def _add_sample(sub):
    p = _command(sub, "sample", "generate points by integrating the learned flow",
                 "Draw x0 from the source and integrate dx/dt = v(x, t) to t=1; points are "
                 "written chunk by chunk, so any --n that fits on disk runs in bounded memory. A "
                 "model trained on your rows writes them in data units; a model of a table "
                 "writes a CSV as the table was.", _SAMPLE_EXAMPLES, _cmd_sample)
    _add_solver_options(p)
    p.add_argument("--n", type=int, default=2000, help="number of points (default: 2000)")
    p.add_argument("--out", default="samples.npy",
                   help="output .npy or .csv file (a table: .csv, .csv.gz) (default: samples.npy)")
    p.add_argument("--trajectory", default=None, help="also save the (steps+1, n, d) trajectory")
    p.add_argument("--chunk-size", type=int, default=20000,
                   help="points integrated at once, bounding memory (default: 20000)")
    p.add_argument("--label", type=_label, default=None,
                   help="class to generate (a model trained with --conditional or labels; a "
                        "level of a table's label column)")
    _add(p, "--guidance", "--source-data")
    p.add_argument("--complete", action="store_true",
                   help="a model of a table: rows without missing cells")
    _add(p, "--quiet")


def _cmd_sample(args):
    message = _flow(args).save_samples(
        args.out, args.n, _rng(args), trajectory=args.trajectory,
        progress=False if args.quiet else None, label=args.label, guidance=args.guidance,
        source_rows=_source_rows(args), chunk_size=args.chunk_size, complete=args.complete,
        **_solver(args))
    if not args.quiet:
        print(message)
    return 0


# --- npflow evaluate -----------------------------------------------------------------------------
_EVALUATE_EXAMPLES = """examples:
  npflow evaluate --model model.npz                 # a built-in target: fresh data as reference
  npflow evaluate --model my.npz --data held_out.csv --json
  npflow evaluate --model p.npz --data held_out.csv   # a table: quality report, DCR, classifier
"""


def _add_evaluate(sub):
    p = _command(sub, "evaluate", "measure a model (NLL, W2, MMD, energy) beside data's floors",
                 "Compare n generated points with n reference points (fresh target points, or "
                 "held-out rows of --data) and give the same metric between two reference sets "
                 "of the same law (the floor: what a perfect model would score); and the NLL of "
                 "held-out points. A model of a table gets SDMetrics' quality report, the "
                 "distance to the closest training record and a classifier's score.",
                 _EVALUATE_EXAMPLES, _cmd_evaluate)
    _add_solver_options(p, steps_default=LIKELIHOOD_STEPS)
    p.add_argument("--n", type=int, default=2000,
                   help="points per set for W2, MMD and energy (default: 2000)")
    _add_data_reading(p, "held-out rows to score (a model trained with --data)")
    _add(p, "--divergence", "--probes")
    p.add_argument("--target-column", default=None,
                   help="a model of a table: the categorical column that a classifier trained "
                        "on synthetic rows predicts on --data (default: the label column)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_evaluate(args):
    flow, files = _flow(args), _training_files(args)  # refuses reading options without --data
    held_out = None if files is None else \
        (_read_table if flow.table is not None else _read_rows)(args)
    result = flow.evaluate(args.n, _rng(args), held_out, args.divergence, args.probes,
                           train=flow.training_table(), target_column=args.target_column,
                           **_solver(args))
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    against = "fresh target points" if held_out is None else \
        f"{args.data} ({len(held_out)} held-out rows)"
    print(f"{args.model}: {flow.describe()}; against {against}")
    print(result.summary())
    return 0


# --- npflow log-prob / encode ---------------------------------------------------------------------
def _add_rows_command(sub, name, help_text, description, example):
    p = _command(sub, name, help_text, description, example, _cmd_rows)
    _add_solver_options(p, steps_default=LIKELIHOOD_STEPS)
    _add_data_reading(p, "rows to map (the model's dimension)", required=True)
    p.add_argument("--out", required=True, help="output .npy or .csv file")
    return p


def _add_log_prob(sub):
    p = _add_rows_command(
        sub, "log-prob", "write the model's log-density of every row (e.g. anomaly scores)",
        "One log p(x) per row of --data, in nats and data units: low values are rows the model "
        "finds unlikely. A dequantized model scores x + u, u ~ U[0, 1).",
        "example:\n  npflow log-prob --model my.npz --data new_rows.csv --out scores.npy\n")
    _add(p, "--divergence", "--probes")


def _add_encode(sub):
    _add_rows_command(
        sub, "encode", "map rows of data to noise (the flow run backwards)",
        "Integrate the flow from t = 1 back to t = 0: each row of --data becomes the noise "
        "point z that npflow sample would carry to it.",
        "example:\n  npflow encode --model my.npz --data rows.csv --out z.npy\n")


def _cmd_rows(args):
    out = _checks.out_path(args.out, (".npy", ".csv"))
    flow = _flow(args)
    flow.refuse_table(args.command)
    rows, solver = _read_rows(args), _solver(args)
    if args.command == "encode":
        data.save_rows(out, flow.encode(rows, **solver))
        to = "the source's coordinates" if flow.source_is_data else "noise"
        print(f"encoded {len(rows)} rows to {to}; saved {out}")
    else:
        scores, _ = flow.log_prob(rows, _rng(args), args.divergence, args.probes, **solver)
        data.save_rows(out, scores[:, None])
        print(f"wrote {len(scores)} log-densities (nats; mean {scores.mean():.4f}) to {out}")
    return 0


# --- npflow impute ------------------------------------------------------------------------------
_IMPUTE_EXAMPLES = """examples:
  npflow impute --model p.npz --data gaps.csv --out filled.csv
  npflow impute --model p.npz --data gaps.csv --n-imputations 5 --out five.csv
"""


def _add_impute(sub):
    p = _command(sub, "impute", "fill in the missing cells of a table's rows",
                 "Draw every missing cell of --data given its row's observed cells (a model of a "
                 "table): the flow runs from noise while the observed cells are put back on the "
                 "path after each step (RePaint). Rows without gaps stay as they are. With "
                 "--n-imputations K > 1, the K tables follow one another, numbered 1 .. K in a "
                 "first column '.imp'.",
                 _IMPUTE_EXAMPLES, _cmd_impute)
    _add_solver_options(p, tolerances=False)  # fixed steps only
    p.add_argument("--data", required=True, help="the table's rows with missing cells (.csv)")
    _add(p, "--delimiter", "--header")
    p.add_argument("--out", required=True, help="output .csv (or .csv.gz) file")
    p.add_argument("--n-imputations", type=int, default=1,
                   help="independent imputations K (default: 1)")
    p.add_argument("--resample", type=int, default=imputation.RESAMPLE,
                   help=f"passes U per solver step, RePaint's resampling: more lean the drawn "
                        f"cells further towards the observed ones (default: {imputation.RESAMPLE})")
    _add(p, "--guidance", "--quiet")


def _cmd_impute(args):
    message = _flow(args).save_imputations(
        _read_table(args), args.out, _rng(args), args.n_imputations, guidance=args.guidance,
        method=args.solver, steps=getattr(args, "steps", None), resample=args.resample)
    if not args.quiet:
        print(message)
    return 0


# --- npflow reflow ------------------------------------------------------------------------------
def _add_reflow(sub):
    p = _command(sub, "reflow", "straighten a model: retrain it on its own (x0, x1) pairs",
                 "Rectified flow's reflow (Liu et al. 2023, Alg. 1): draw x0, push it through "
                 "the model to x1, and fine-tune a copy of the model on these fixed pairs. Works "
                 "for a built-in target and for a model of your rows. Not resumable.",
                 run=_cmd_reflow)
    p.add_argument("--model", required=True, help="parent checkpoint (npflow train or reflow)")
    p.add_argument("--pairs", type=int, default=20000,
                   help="number of (x0, x1) pairs (default: 20000)")
    p.add_argument("--steps", type=int, default=2000,
                   help="training steps on the pairs (default: 2000)")
    p.add_argument("--out", required=True, help="checkpoint of the rectified model")
    p.add_argument("--solver", choices=solvers.METHODS, default="rk4",
                   help="fixed-step solver that makes the pairs (default: rk4)")
    p.add_argument("--sample-steps", type=int, default=100,
                   help="solver steps that make the pairs (default: 100)")
    _add(p, "--source-data", "--seed", "--quiet")


def _cmd_reflow(args):
    out = _checks.out_path(args.out, (".npz",))
    trainer = TrainedFlow.load(args.model).reflow_trainer(
        args.pairs, args.steps, args.seed, args.solver, args.sample_steps, _source_rows(args))
    return _finished(args, trainer.run(out=out, quiet=args.quiet), out,
                     "a reflow run cannot be resumed",
                     f"reflow {trainer.config.reflow}: {len(trainer.pairs[0])} pairs, ")


# --- npflow plot / animate (need matplotlib; npflow.viz imports it when it draws) ---------------
def _add_picture_options(p, n_help, n_default=None):
    _add(p, "--model")
    p.add_argument("--n", type=int, default=n_default, help=n_help)
    _add(p, "--seed", "--raw")


def _add_plot(sub):
    p = _command(sub, "plot", "draw a picture of a model (samples, paths, field, density, loss)",
                 "Draw one picture of a trained model with matplotlib.", run=_cmd_plot)
    _add_picture_options(p, "points (default: 2000; trajectories: 300 paths)")
    p.add_argument("--out", required=True, help="image file: .png, .pdf or .svg")
    p.add_argument("--kind", choices=viz.PLOT_KINDS, default="samples",
                   help="samples: noise | generated | target; trajectories: paths x0 -> x1; "
                        "field: v(x, t) at 5 times; density: model (and true) p1; "
                        "loss: training loss (default: samples)")
    p.add_argument("--steps", type=int, default=None,
                   help="rk4 steps (default: 100; density: 16)")
    _add_data_reading(p, "a model of your rows: rows to draw beside its samples (--kind samples: "
                         "side by side in 2-D, pairwise scatter plots of a few coordinates above; "
                         "a model of grey images draws a grid of samples without --data)")


def _cmd_plot(args):
    out = _checks.out_path(args.out, (".png", ".pdf", ".svg"))
    plt = viz.pyplot(for_files=True)  # an ImportError without matplotlib
    rows = None if args.data is None else _read_rows(args)
    fig = viz.plot_flow(_flow(args), args.kind, args.n, args.steps, _rng(args), rows=rows)
    viz.save_figure(fig, out)
    plt.close(fig)
    print(f"saved {out} ({args.kind})")
    return 0


def _add_animate(sub):
    p = _command(sub, "animate", "write an animated GIF of the points flowing to the data",
                 "Integrate the flow with rk4 and write one GIF frame per evenly spaced time (a "
                 "model of a built-in 2-D target).", run=_cmd_animate)
    _add_picture_options(p, "points (default: 600)", 600)
    p.add_argument("--out", required=True, help="output .gif file")
    p.add_argument("--frames", type=int, default=41, help="frames (default: 41)")
    p.add_argument("--fps", type=int, default=20, help="frames per second (default: 20)")
    p.add_argument("--steps", type=int, default=100,
                   help="rk4 steps; at least --frames - 1 (default: 100)")


def _cmd_animate(args):
    out = _checks.out_path(args.out, (".gif",))
    plt = viz.pyplot(for_files=True)
    fig = viz.animate_flow(_flow(args), out, args.n, args.frames, args.fps, args.steps, _rng(args))
    plt.close(fig)
    print(f"saved {out} ({args.frames} frames at {args.fps} fps)")
    return 0


# --- entry point --------------------------------------------------------------------------------
def build_parser():
    parser = _Parser(prog="npflow", description="Flow matching in NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_train, _add_sample, _add_evaluate, _add_log_prob, _add_encode, _add_impute,
                _add_reflow, _add_plot, _add_animate):
        add(sub)
    _command(sub, "datasets", "list the built-in 2-D datasets", None, run=_cmd_datasets)
    return parser


# Failures at run time: the computation itself went wrong (exit 1). Every other ValueError or
# TypeError is a usage error: the library checks its arguments before it works (exit 2).
RUN_TIME_FAILURES = (TrainingDiverged, solvers.SolverDiverged, RuntimeError, ArithmeticError,
                     MemoryError, OSError)
USAGE_ERRORS = (ValueError, TypeError, ImportError, _checks.InsufficientMemory)


def main(argv=None):
    """Run the command line; returns the exit code: 0 done, 2 a usage error, 1 a failure at
    run time (the module's docstring), 130 / 143 stopped by SIGINT / SIGTERM (training saves
    first and says how to resume)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NaN is checked
            return args.run(args)
    except _checks.InsufficientMemory as err:
        return _fail(args, "error", err, 2)
    except RUN_TIME_FAILURES as err:
        return _fail(args, "out of memory" if isinstance(err, MemoryError) else "failed", err, 1)
    except USAGE_ERRORS as err:
        return _fail(args, "error", err, 2)
    except KeyboardInterrupt:
        print(f"npflow {args.command}: interrupted", file=sys.stderr)
        return 130


def _fail(args, what, err, code):
    """Print the one line of ``err`` (options spelled as flags) and return ``code``."""
    text = err.spell(lambda name: _flag(name, args), "this command") \
        if isinstance(err, _checks.OptionError) else str(err)
    text = text.splitlines()[0] if text else type(err).__name__
    print(f"npflow {args.command}: {what}: {text}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
