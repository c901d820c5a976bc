"""Imputation on real tables: npflow's ``Flow.impute`` against mean/mode, kNN and IterativeImputer.

The tables and the 80/20 split of ``bench_tables.py``. In the held-out rows, 20% of the observed
cells are hidden at random (seeded; ``--masks`` such masks, 5 by default, their hidden cells
pooled); every method fills them in from the training rows and the cells left in the row, and
is scored on the hidden cells: the standardised RMSE over numeric and integer cells (each error
divided by its column's standard deviation in the training rows) and the accuracy over
categorical cells.

- ``mean/mode``: the training rows' mean of a numeric column, the most frequent level of a
  categorical one.
- ``kNN``: scikit-learn's ``KNNImputer`` (5 neighbours) on standardised numbers and one-hot
  categories (a hidden category: its whole one-hot block NaN), fitted on the training rows; a
  category is read back as the largest coordinate of its block.
- ``IterativeImputer``: scikit-learn's (``BayesianRidge`` per coordinate, 10 rounds) on the same
  coordinates, fitted on the training and the masked rows together (fitted on the training rows
  alone it would fill a column complete there with its mean: it models only columns with gaps
  in what it is fitted on).
- ``npflow``: ``Flow(**IMPUTE_OPTIONS[table]).fit(train)``, then ``impute(rows,
  n_imputations=K)``: a number is the mean of its K draws, a category the most frequent of its K
  draws (K = 1: one draw).
- ForestFlow is not run: ``ForestDiffusionModel.impute`` (forestdiffusion 1.0.6) asserts
  ``diffusion_type != 'flow'``; only its VP diffusion imputes.

    PYTHONPATH=. nice /tmp/venv-tab/bin/python demos/experiments/bench_tables_impute.py
"""
import argparse
import json
import os
import time

import numpy as np

from bench_tables import (HELD_OUT, HERE, NPFLOW_OPTIONS, TABLES, VALIDATION, _load, kinds,
                          load, split)
from npflow import Flow, tables

MASKED = 0.2
# npflow's options for imputation: those of bench_tables.py without the label column (a hidden
# cell may be the label, and a conditional flow needs every row's label), with 8000 steps: on
# the validation rows (--validation) 8000 steps beat 3000 on penguins and seattle_weather, and
# 3 x 512 did not (demos/experiments/README.md has the table).
IMPUTE_OPTIONS = {name: {**{k: v for k, v in options.items() if k != "label_column"},
                         "steps": 8000}
                  for name, options in NPFLOW_OPTIONS.items()}


def hide(table, fraction, rng):
    """The table with ``fraction`` of its observed cells made missing, and the (n, d) mask."""
    observed = np.flatnonzero(~table.missing().ravel())
    chosen = rng.choice(observed, size=int(round(fraction * observed.size)), replace=False)
    mask = np.zeros(table.cells.size, dtype=bool)
    mask[chosen] = True
    mask = mask.reshape(table.cells.shape)
    cells = table.cells.copy()
    cells[mask] = None
    return tables.Table(table.names, cells), mask


class Coordinates:
    """Numbers standardised by the training rows, categories one-hot; NaN where missing."""

    def __init__(self, train, kind):
        self.kind, self.names = kind, train.names
        self.stats, self.levels = {}, {}
        for name in train.names:
            cells = train.column(name)
            if kind[name] == "categorical":
                self.levels[name] = sorted({c for c in cells if c is not None})
            else:
                v = np.array([float(c) for c in cells if c is not None])
                self.stats[name] = (v.mean(), v.std())

    def encode(self, table):
        blocks = []
        for name in self.names:
            cells = table.column(name)
            if name in self.levels:
                block = np.array([[np.nan] * len(self.levels[name]) if c is None else
                                  [float(c == level) for level in self.levels[name]]
                                  for c in cells])
            else:
                mean, std = self.stats[name]
                block = np.array([[np.nan if c is None else (float(c) - mean) / std]
                                  for c in cells])
            blocks.append(block)
        return np.concatenate(blocks, axis=1)

    def decode(self, x):
        """Coordinates back to values: float arrays for numbers, str arrays for categories."""
        out, start = {}, 0
        for name in self.names:
            if name in self.levels:
                width = len(self.levels[name])
                j = np.argmax(x[:, start:start + width], axis=1)
                out[name] = np.array(self.levels[name], dtype=object)[j]
            else:
                mean, std = self.stats[name]
                width = 1
                out[name] = x[:, start] * std + mean
            start += width
        return out


def errors(truth, filled, mask, coords):
    """The hidden cells' squared standardised errors (numbers) and hits (categories)."""
    squares, hits = [], []
    for j, name in enumerate(truth.names):
        rows = np.flatnonzero(mask[:, j])
        if not rows.size:
            continue
        true = truth.cells[rows, j]
        got = filled[name][rows]
        if name in coords.levels:
            hits.extend(np.asarray(got, dtype=object) == true)
        else:
            std = coords.stats[name][1]
            squares.extend(((np.asarray(got, dtype=float) - true.astype(float)) / std) ** 2)
    return squares, hits


def npflow_values(draws, kind):
    """K imputed tables to one value per cell: the mean of numbers, the mode of categories."""
    out = {}
    for j, name in enumerate(draws[0].names):
        cells = np.stack([t.cells[:, j] for t in draws])  # (K, n)
        if kind[name] == "categorical":
            out[name] = np.array([max(set(column), key=list(column).count)
                                  for column in cells.T], dtype=object)
        else:
            out[name] = np.array([[np.nan if c is None else float(c) for c in row]
                                  for row in cells]).mean(axis=0)
    return out


def run(name, args):
    """Every method on one table, over ``args.masks`` random masks (their hidden cells pooled)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401 (registers it)
    from sklearn.impute import IterativeImputer, KNNImputer
    train, held_out = split(load(name), HELD_OUT, args.seed)
    if args.validation:  # choosing options: the training rows split again, held-out rows unseen
        train, held_out = split(train, VALIDATION, args.seed + 1)
    kind = kinds(train)
    coords = Coordinates(train, kind)
    x_train = coords.encode(train)
    start = time.perf_counter()
    options = {**IMPUTE_OPTIONS[name], **args.set}
    flow = Flow(seed=args.seed, **options).fit(train)
    result = {"n_held_out": len(held_out), "npflow_fit_seconds": time.perf_counter() - start,
              "npflow_options": {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in options.items()},
              "n_hidden": 0, "methods": {}}
    knn = KNNImputer(n_neighbors=5).fit(x_train)
    pooled = {}
    for r in range(args.masks):
        hidden, mask = hide(held_out, MASKED, np.random.default_rng(args.seed + 2 + r))
        x_hidden = coords.encode(hidden)
        result["n_hidden"] += int(mask.sum())
        filled = {"mean/mode": np.where(np.isnan(x_hidden), np.nanmean(x_train, axis=0),
                                        x_hidden),
                  "kNN (5)": knn.transform(x_hidden),
                  "IterativeImputer": IterativeImputer(max_iter=10, random_state=0).fit_transform(
                      np.concatenate([x_train, x_hidden]))[len(x_train):]}
        values = {method: coords.decode(x) for method, x in filled.items()}
        for k in args.imputations:
            for u in args.resample:
                draws = flow.impute(hidden, rng=np.random.default_rng(args.seed + 3 + r),
                                    n_imputations=k, resample=u)
                values[f"npflow (K={k}, U={u})"] = npflow_values(draws, kind)
        for method, v in values.items():
            squares, hits = errors(held_out, v, mask, coords)
            pooled.setdefault(method, ([], []))
            pooled[method][0].extend(squares)
            pooled[method][1].extend(hits)
    for method, (squares, hits) in pooled.items():
        rmse, accuracy = float(np.sqrt(np.mean(squares))), float(np.mean(hits))
        result["methods"][method] = {"rmse": rmse, "accuracy": accuracy,
                                     "n_numeric": len(squares), "n_categorical": len(hits)}
        print(f"{name:16s} {method:24s} {rmse:8.4f} {accuracy:8.4f} {len(squares):6d} "
              f"{len(hits):6d}", flush=True)
    return result


def _option(text):
    """``name=value`` of ``--set``: a tuple of ints for ``hidden``, else an int, a float or a
    word."""
    name, value = text.split("=", 1)
    if name == "hidden":
        return name, tuple(int(v) for v in value.split(","))
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, {"true": True, "false": False}.get(value, value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--imputations", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--masks", type=int, default=5, help="random masks, hidden cells pooled")
    parser.add_argument("--resample", type=int, nargs="+", default=[1],
                        help="RePaint's passes per solver step U of Flow.impute")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation", action="store_true",
                        help="score on 20%% of the training rows (to choose options)")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                        help="npflow options over IMPUTE_OPTIONS, e.g. steps=8000 hidden=128,128")
    parser.add_argument("--out", default=os.path.join(HERE, "figures", "bench_tables_impute.json"))
    args = parser.parse_args(argv)
    args.set = dict(_option(text) for text in args.set)
    print(f"{'table':16s} {'method':24s} {'std RMSE':>8s} {'accuracy':>8s} {'cells':>6s} "
          f"{'cats':>6s}  ({_load()})")
    results = {"seed": args.seed, "masked": MASKED, "masks": args.masks,
               "options": {n: {k: list(v) if isinstance(v, tuple) else v for k, v in o.items()}
                           for n, o in IMPUTE_OPTIONS.items()},
               "tables": {name: run(name, args) for name in args.tables}}
    with open(args.out, "w") as file:
        json.dump(results, file, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
