"""npflow against SDV (GaussianCopula, CTGAN, TVAE) and ForestFlow on real tables with gaps.

Three tables with categorical and integer columns (``data/PROVENANCE.md``): the Palmer penguins
(npflow's own, gaps), the vega_datasets ``cars`` (gaps) and ``seattle-weather`` (no gaps). Per
table, a seeded 80/20 split; every model is fitted on the training rows (fit time: wall and CPU
of this process) and draws as many rows as there are training rows. Each synthetic table is
scored against the held-out rows by SDMetrics' ``QualityReport`` (the ``sdmetrics`` package),
by :func:`npflow.report.quality_report` with the same thresholds (0.5, 0.3) for comparison, and by
machine-learning efficiency: scikit-learn's ``HistGradientBoostingClassifier`` of the table's
class column trained on the synthetic rows and tested on the held-out rows, beside the same
classifier trained on the real training rows.

The optional packages live in a scratch virtualenv, never in npflow's requirements::

    python3 -m venv /tmp/venv-tab && /tmp/venv-tab/bin/pip install torch==2.13.0
    /tmp/venv-tab/bin/pip install sdv sdmetrics forestdiffusion==1.0.6 scikit-learn vega_datasets
    export PYTHONPATH=. OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    nice /tmp/venv-tab/bin/python demos/experiments/bench_tables.py generate
    /tmp/venv-tab/bin/python demos/experiments/bench_tables.py score

``generate`` fits and samples, one table and model at a time, and keeps each synthetic table in
``--work`` (a gzipped CSV and its timings), so that runs can be split (``--tables``,
``--models``) and a model is not refitted when it is already there (``--force`` refits).
``score`` scores whatever is in ``--work`` and writes ``figures/bench_tables.json``. ``search``
picks npflow's options for a table on a validation split of its training rows (the held-out
rows are not seen). The imputation benchmark is ``bench_tables_impute.py``.

Models: npflow with :data:`NPFLOW_OPTIONS` (chosen by ``search``); SDV 2.0's
``GaussianCopulaSynthesizer``, ``CTGANSynthesizer`` and ``TVAESynthesizer`` at their defaults
(300 epochs for the last two); ForestFlow (``ForestDiffusionModel(..., diffusion_type='flow')``,
forestdiffusion 1.0.6) at its defaults (``n_t=50`` noise levels, XGBoost of 100 trees of depth
7) but with ``duplicate_K=20`` noise draws per row instead of 100 (``--duplicate-k``: its trees
are fitted on K copies of the training rows, so 100 makes every tree's data five times larger)
and ``n_jobs=1`` (its models one after the other in this process, so that
their CPU time is counted). SDV and ForestFlow draw from NumPy's and torch's global generators,
seeded here (they take no generator). Every model runs on one thread
(``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1``): on this shared machine two threads of torch or
of OpenBLAS spin against the other processes (CTGAN on penguins took 416 s wall and 177 s CPU
with two threads, on cars 26 s and 13 s with one).

The npflow side reads the CSV files with :func:`npflow.tables.read_csv` and needs no pandas; the
other models get the same cells as a pandas DataFrame.
"""
import argparse
import json
import os
import resource
import sys
import time
import warnings

import numpy as np

from npflow import Flow, report, tables

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
TABLES = {  # name -> (file, class column for machine-learning efficiency)
    "penguins": (tables.PENGUINS, "species"),
    "cars": (os.path.join(DATA, "cars.csv.gz"), "Origin"),
    "seattle_weather": (os.path.join(DATA, "seattle_weather.csv.gz"), "weather"),
}
MODELS = ("npflow", "gaussian_copula", "ctgan", "tvae", "forestflow")
THRESHOLDS = (0.5, 0.3)  # SDMetrics 0.32's QualityReport: real |r| and Cramer's V to score a pair
HELD_OUT = 0.2
VALIDATION = 0.2  # share of the training rows that ``search`` scores its candidates on

# npflow's options per table: the best candidate of ``search`` (its validation overall score, the
# held-out rows unseen; demos/experiments/README.md has the search's table).
NPFLOW_OPTIONS = {
    "penguins": {"hidden": (256, 256, 256), "residual": False, "steps": 3000, "batch_size": 256,
                 "ema_decay": 0.999},  # "3x256" 0.8422
    "cars": {"hidden": (256, 256, 256), "residual": False, "steps": 8000, "batch_size": 256,
             "ema_decay": 0.999, "label_column": "Origin"},  # "3x256 label 8000" 0.8890
    "seattle_weather": {"hidden": (256, 256, 256), "residual": False, "steps": 3000,
                        "batch_size": 256, "ema_decay": 0.999},  # "3x256" 0.9117
}
# The candidates ``search`` tries on every table (its label column is the table's class column).
SEARCH = {
    "3x256": {"hidden": (256, 256, 256), "residual": False, "steps": 3000, "batch_size": 256,
              "ema_decay": 0.999},
    "3x256 label": {"hidden": (256, 256, 256), "residual": False, "steps": 3000,
                    "batch_size": 256, "ema_decay": 0.999, "label_column": True},
    "3x256 label 8000": {"hidden": (256, 256, 256), "residual": False, "steps": 8000,
                         "batch_size": 256, "ema_decay": 0.999, "label_column": True},
    "10x128 residual label": {"hidden": (128,) * 10, "residual": True, "steps": 5000,
                              "batch_size": 512, "ema_decay": 0.999, "label_column": True},
}


# --- the tables ---------------------------------------------------------------------------------
def load(name):
    """The table as a :class:`npflow.tables.Table` (text cells, None where missing)."""
    return tables.read_csv(TABLES[name][0], header=True)


def split(table, fraction, seed):
    """A seeded split of the rows: (kept, held out) Tables."""
    order = np.random.default_rng(seed).permutation(len(table))  # (n,)
    cut = len(table) - int(round(fraction * len(table)))
    return rows(table, order[:cut]), rows(table, order[cut:])


def rows(table, index):
    return tables.Table(table.names, table.cells[index])


def scoring_encoder(table):
    """The encoder that reads every model's cells for :mod:`npflow.report`: integer columns read
    as numbers (a model may write ``181.4`` in one), kinds as npflow infers them otherwise."""
    kinds = tables.TableEncoder().fit(table).columns_
    types = {c.name: "numeric" for c in kinds if c.kind == "integer"}
    return tables.TableEncoder(types=types).fit(table)


def kinds(table):
    """Column name -> npflow's inferred kind."""
    return {c.name: c.kind for c in tables.TableEncoder().fit(table).columns_}


def to_frame(table, kind):
    """A Table as a pandas DataFrame: numbers as float64 (int64 for an integer column without
    gaps), categories as str, NaN where missing (for the other libraries only)."""
    import pandas as pd
    columns = {}
    for j, name in enumerate(table.names):
        cells = table.cells[:, j]
        if kind[name] == "categorical":
            columns[name] = pd.Series([np.nan if c is None else c for c in cells], dtype=object)
        else:
            v = np.array([np.nan if c is None else float(c) for c in cells])
            gaps = np.isnan(v).any()
            columns[name] = v.astype(np.int64) if kind[name] == "integer" and not gaps else v
    return pd.DataFrame(columns)


def from_frame(frame, names):
    """A DataFrame of generated rows as a Table of text cells (None where missing)."""
    cells = np.empty((len(frame), len(names)), dtype=object)
    for j, name in enumerate(names):
        for i, value in enumerate(frame[name].tolist()):
            cells[i, j] = _text(value)
    return tables.Table(tuple(names), cells)


def _text(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


# --- the models ---------------------------------------------------------------------------------
def fit_sample(model, name, train, seed, args):
    """Fit ``model`` on the training rows and draw ``len(train)`` rows: (Table, info)."""
    kind = kinds(train)
    cpu, wall = _cpu(), time.perf_counter()
    if model == "npflow":
        options = dict(NPFLOW_OPTIONS[name])
        flow = Flow(seed=seed, **options).fit(train)
        fitted = _cpu() - cpu, time.perf_counter() - wall
        wall = time.perf_counter()
        synthetic = flow.sample(len(train), rng=np.random.default_rng(seed + 1))
        info = {"options": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in options.items()}}
    elif model == "forestflow":
        fitted, wall, synthetic, info = _forestflow(train, kind, seed, args, cpu, wall)
    else:
        fitted, wall, synthetic, info = _sdv(model, train, kind, seed, args, cpu, wall)
    info.update(fit_wall=fitted[1], fit_cpu=fitted[0], sample_wall=time.perf_counter() - wall,
                n_train=len(train))
    return synthetic, info


def _cpu():
    """CPU seconds of this process, every thread (and finished children) counted."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _sdv(model, train, kind, seed, args, cpu, wall):
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import (CTGANSynthesizer, GaussianCopulaSynthesizer,
                                  TVAESynthesizer)
    np.random.seed(seed)  # SDV draws from the global generators
    torch.manual_seed(seed)
    columns = {n: {"sdtype": "categorical" if k == "categorical" else "numerical"}
               for n, k in kind.items()}
    metadata = Metadata.load_from_dict({"tables": {"table": {"columns": columns}}})
    frame = to_frame(train, kind)
    if model == "gaussian_copula":
        synthesizer, info = GaussianCopulaSynthesizer(metadata), {}
    else:
        cls = CTGANSynthesizer if model == "ctgan" else TVAESynthesizer
        synthesizer = cls(metadata, epochs=args.epochs)
        info = {"epochs": args.epochs}
    synthesizer.fit({"table": frame})  # SDV 2.0 takes a dict of tables
    fitted = _cpu() - cpu, time.perf_counter() - wall
    wall = time.perf_counter()
    drawn = synthesizer.sample(num_rows=len(train))
    synthetic = from_frame(drawn["table"] if isinstance(drawn, dict) else drawn, train.names)
    return fitted, wall, synthetic, info


def _forestflow(train, kind, seed, args, cpu, wall):
    """ForestFlow on numbers: categories as integer codes (``cat_indexes`` for 3 or more levels,
    ``bin_indexes`` for two), integers in ``int_indexes``, NaN where missing."""
    from ForestDiffusion import ForestDiffusionModel
    np.random.seed(seed)
    levels, x = {}, np.empty((len(train), len(train.names)))
    for j, name in enumerate(train.names):
        cells = train.cells[:, j]
        if kind[name] == "categorical":
            levels[name] = sorted({c for c in cells if c is not None})
            code = {level: i for i, level in enumerate(levels[name])}
            x[:, j] = [np.nan if c is None else code[c] for c in cells]
        else:
            x[:, j] = [np.nan if c is None else float(c) for c in cells]
    names = train.names
    cat = [j for j, n in enumerate(names) if n in levels and len(levels[n]) > 2]
    binary = [j for j, n in enumerate(names) if n in levels and len(levels[n]) == 2]
    integer = [j for j, n in enumerate(names) if kind[n] == "integer"]
    model = ForestDiffusionModel(x, n_t=50, duplicate_K=args.duplicate_k, bin_indexes=binary,
                                 cat_indexes=cat, int_indexes=integer, diffusion_type="flow",
                                 n_jobs=args.n_jobs, seed=seed)
    fitted = _cpu() - cpu, time.perf_counter() - wall
    wall = time.perf_counter()
    z = model.generate(batch_size=len(train))  # (n, d)
    cells = np.empty(z.shape, dtype=object)
    for j, name in enumerate(names):
        for i, v in enumerate(z[:, j]):
            if np.isnan(v):
                cells[i, j] = None
            elif name in levels:
                cells[i, j] = levels[name][int(np.clip(np.round(v), 0, len(levels[name]) - 1))]
            else:
                cells[i, j] = repr(float(v))
    return fitted, wall, tables.Table(names, cells), {"n_t": 50, "duplicate_K": args.duplicate_k,
                                                       "n_jobs": args.n_jobs}


# --- the scores ---------------------------------------------------------------------------------
def sdmetrics_quality(held_out, synthetic, kind):
    """SDMetrics' QualityReport of the synthetic rows against the held-out ones: (overall,
    column shapes, column pair trends)."""
    from sdmetrics.reports.single_table import QualityReport
    metadata = {"columns": {n: {"sdtype": "categorical" if k == "categorical" else "numerical"}
                            for n, k in kind.items()}}
    quality = QualityReport()
    quality.generate(to_frame(held_out, kind), to_frame(synthetic, _as_numeric(kind)), metadata,
                     verbose=False)
    properties = quality.get_properties().set_index("Property")["Score"]
    return (float(quality.get_score()), float(properties["Column Shapes"]),
            float(properties["Column Pair Trends"]))


def _as_numeric(kind):
    return {n: "numeric" if k == "integer" else k for n, k in kind.items()}


def efficiency(train, held_out, synthetic, target, kind):
    """Held-out accuracy of scikit-learn's HistGradientBoostingClassifier of ``target`` trained
    on ``train`` rows; categories as ordinal codes with ``categorical_features``, gaps as NaN."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    names = [n for n in train.names if n != target]
    cats = {n: sorted({c for c in train.column(n) if c is not None})
            for n in names if kind[n] == "categorical"}

    def features(table):
        x = np.empty((len(table), len(names)))
        for j, name in enumerate(names):
            cells = table.column(name)
            if name in cats:
                code = {level: i for i, level in enumerate(cats[name])}
                x[:, j] = [np.nan if c is None or c not in code else code[c] for c in cells]
            else:
                x[:, j] = [np.nan if c is None else float(c) for c in cells]
        y = np.array([c for c in table.column(target)], dtype=object)
        keep = np.array([c is not None for c in y])
        return x[keep], y[keep].astype(str)

    x_test, y_test = features(held_out)
    x, y = features(synthetic)
    model = HistGradientBoostingClassifier(categorical_features=[n in cats for n in names],
                                           random_state=0).fit(x, y)
    return float(np.mean(model.predict(x_test) == y_test))


def score(name, synthetic, train, held_out):
    """Every score of one synthetic table (a dict of floats)."""
    kind = kinds(train)
    encoder = scoring_encoder(train)
    overall, shapes, trends = sdmetrics_quality(held_out, synthetic, kind)
    ours = report.quality_report(held_out, synthetic, encoder, *THRESHOLDS)
    return {"sdmetrics_overall": overall, "sdmetrics_shapes": shapes, "sdmetrics_trends": trends,
            "npflow_report_overall": ours.score,
            "efficiency": efficiency(train, held_out, synthetic, TABLES[name][1], kind)}


# --- the commands -------------------------------------------------------------------------------
def generate(args):
    os.makedirs(args.work, exist_ok=True)
    for name in args.tables:
        train, _ = split(load(name), HELD_OUT, args.seed)
        for model in args.models:
            path = os.path.join(args.work, f"{name}.{model}")
            if os.path.exists(path + ".json") and not args.force:
                print(f"{name} {model}: already in {args.work}")
                continue
            print(f"{name} {model}: fitting on {len(train)} rows ({_load()})", flush=True)
            synthetic, info = fit_sample(model, name, train, args.seed, args)
            info["load_after"] = _load()  # when the fit and the sampling ended
            info["threads"] = os.environ.get("OMP_NUM_THREADS", "all")
            tables.write_csv(synthetic, path + ".csv.gz")
            with open(path + ".json", "w") as file:
                json.dump(info, file, indent=1)
            print(f"  fit {info['fit_wall']:.1f} s wall, {info['fit_cpu']:.1f} s CPU; sample "
                  f"{info['sample_wall']:.1f} s", flush=True)


def _load():
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def score_all(args):
    results = {"seed": args.seed, "held_out": HELD_OUT, "versions": versions(), "tables": {}}
    header = (f"{'table':16s} {'model':16s} {'SDMetrics':>9s} {'shapes':>7s} {'trends':>7s} "
              f"{'npflow.report':>13s} {'ML eff.':>7s} {'fit wall s':>10s} {'fit CPU s':>9s}")
    print(header)
    for name in args.tables:
        table = load(name)
        train, held_out = split(table, HELD_OUT, args.seed)
        entry = {"n_train": len(train), "n_held_out": len(held_out), "target": TABLES[name][1],
                 "models": {}}
        real = score(name, train, train, held_out)  # the training rows themselves: the ceiling
        entry["real_train_rows"] = real
        _print_row(name, "real (train)", real, {})
        for model in MODELS:
            path = os.path.join(args.work, f"{name}.{model}")
            if not os.path.exists(path + ".json"):
                continue
            with open(path + ".json") as file:
                info = json.load(file)
            synthetic = tables.read_csv(path + ".csv.gz", header=True)
            scores = score(name, synthetic, train, held_out)
            entry["models"][model] = {**scores, **info}
            _print_row(name, model, scores, info)
        results["tables"][name] = entry
    with open(args.out, "w") as file:
        json.dump(results, file, indent=1)
    print(f"wrote {args.out}")


def _print_row(name, model, s, info):
    fit = (f"{info['fit_wall']:10.1f} {info['fit_cpu']:9.1f}" if info else f"{'':10s} {'':9s}")
    print(f"{name:16s} {model:16s} {s['sdmetrics_overall']:9.4f} {s['sdmetrics_shapes']:7.4f} "
          f"{s['sdmetrics_trends']:7.4f} {s['npflow_report_overall']:13.4f} "
          f"{s['efficiency']:7.4f} {fit}")


def versions():
    import importlib.metadata as md
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for package in ("sdv", "sdmetrics", "ctgan", "rdt", "copulas", "ForestDiffusion", "xgboost",
                    "torch", "scikit-learn", "pandas"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return out


def search(args):
    """Fit each candidate of :data:`SEARCH` on 80% of the training rows and score its samples
    against the other 20% by :func:`npflow.report.quality_report` (held-out rows unseen)."""
    for name in args.tables:
        train, _ = split(load(name), HELD_OUT, args.seed)
        fit_rows, val_rows = split(train, VALIDATION, args.seed + 1)
        encoder = scoring_encoder(train)
        print(f"{name}: {len(fit_rows)} rows to fit, {len(val_rows)} to score ({_load()})")
        chosen = [c for c in SEARCH if not args.candidates or c in args.candidates]
        for label in chosen:
            options = dict(SEARCH[label])
            if options.get("label_column"):
                options["label_column"] = TABLES[name][1]
            wall = time.perf_counter()
            flow = Flow(seed=args.seed, **options).fit(fit_rows)
            seconds = time.perf_counter() - wall
            synthetic = flow.sample(len(fit_rows), rng=np.random.default_rng(args.seed + 1))
            q = report.quality_report(val_rows, synthetic, encoder, *THRESHOLDS)
            print(f"  {label:24s} overall {q.score:.4f} shapes {q.column_shapes_score:.4f} "
                  f"trends {q.column_pair_trends_score:.4f}  fit {seconds:.0f} s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("generate", "score", "search"))
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--candidates", nargs="+", default=None, choices=list(SEARCH))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300, help="CTGAN and TVAE (SDV's 300)")
    parser.add_argument("--duplicate-k", type=int, default=20, help="ForestFlow's duplicate_K")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="ForestFlow's n_jobs (1: its models one after the other, each "
                        "XGBoost on every core, and their CPU time counted)")
    parser.add_argument("--work", default="/tmp/bench_tables")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "figures", "bench_tables.json"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # SDMetrics' deprecation notices
    {"generate": generate, "score": score_all, "search": search}[args.command](args)


if __name__ == "__main__":
    main()
