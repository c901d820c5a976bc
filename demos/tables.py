"""Synthetic rows of a table, scored and pictured: the Palmer penguins.

1. Split the 344 penguins (:func:`npflow.tables.load_penguins`: three string columns, integers,
   NA cells) with a fixed seed: 275 training rows, 69 held out.
2. Fit ``npflow.Flow`` to the training rows, conditional on ``species`` (FLOW_OPTIONS), and draw
   a synthetic table as large as the training one: each row's species in the training
   proportions, then the row given its species.
3. Score it (:mod:`npflow.report`, SDMetrics' definitions): column shapes, column pair trends,
   overall score and each column's missing share against the held-out rows, beside the same
   scores of the training rows themselves (real against real: what 69 held-out rows allow); the
   distance of synthetic and held-out rows to their closest training row (copies would sit
   nearer); a species classifier trained on synthetic rows and on real ones, tested on the
   held-out rows (machine-learning efficiency).
4. Impute: hide MASK_SHARE of the observed cells of the held-out rows at random (the species,
   the condition, stays), draw them K times given the rest of their row (:meth:`Flow.impute`),
   and score numeric cells by their RMSE in units of the column's standard deviation and
   categorical cells by accuracy, beside mean / mode imputation; the spread of the K draws, and
   how often the truth lies within their range (``(K - 1) / (K + 1)`` for draws from the right
   conditional law: K + 1 exchangeable values, the truth equally likely at each rank).
5. Write the synthetic table (``synthetic.csv``), the K imputations (``imputed.csv``, mice's
   long format), every number (``results.json``) and, with matplotlib, the pictures: each
   column real beside synthetic, the correlation matrices and their difference, a pair plot by
   species, the K imputations of the hidden numeric cells against their true values.

    python demos/tables.py                          # the full demo (make tables)
    python demos/tables.py --quick --out /tmp/tables   # a smoke test of every stage

Measured (2026-12-02) is in README.md's tables section, with the command and the machine's load.
"""
import argparse
import json
import os
import time

# One BLAS thread unless told otherwise, set before NumPy loads its BLAS: the 128-wide layers
# are too small for a second thread to pay (see README.md's tables section for the timings).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import _common  # noqa: E402
from npflow import Flow, report, tables, tabular, viz  # noqa: E402
from npflow.tables import Table  # noqa: E402

HELD_OUT = 0.2  # share of the rows held out: 69 of 344
MASK_SHARE = 0.2  # share of the held-out rows' observed cells hidden for imputation
LABEL = "species"
PAIR_COLUMNS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
SOLVER_STEPS = 20  # rk4 steps of sampling and imputation

# Chosen by measurement (demos/experiments/tables_tune.py, seeds 0-2 of this split; the table is
# in demos/experiments/README.md): 3 x 128 residual SiLU for 8000 steps of 256 rows (7,400
# epochs of the 275 rows, 12 CPU-seconds) scored overall 0.852 on average, 4000 steps 0.850, the
# ten layers of DATA_DEFAULTS for 4000 steps 0.851 at three times the cost; the real training
# rows score 0.855 against the same held-out rows. Conditioning on species scored as well as
# modelling it as a column (0.852 against 0.854; per seed -0.0025, -0.0112, +0.0097), and it
# draws each row's species from the training shares, which no network has to learn.
# val_fraction 0: every training row is trained on.
FLOW_OPTIONS = dict(hidden=(128, 128, 128), steps=8000, batch_size=256, val_fraction=0.0)
QUICK_OPTIONS = dict(hidden=(16, 16), steps=20, batch_size=64, warmup_steps=5)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Synthetic penguins: a flow of a table, scored.")
    p.add_argument("--out", default=None, help="output folder (default: demos/output/tables)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, training, draws")
    p.add_argument("--quick", action="store_true",
                   help="a tiny network and few steps: a smoke test of every stage")
    p.add_argument("--unconditional", action="store_true",
                   help=f"model {LABEL} as one more column instead of conditioning on it")
    p.add_argument("--imputations", type=int, default=None,
                   help="K imputations of the hidden cells (default: 5, 2 with --quick)")
    p.add_argument("--solver-steps", type=int, default=None,
                   help=f"rk4 steps (default: {SOLVER_STEPS}, 4 with --quick)")
    args = p.parse_args(argv)
    if args.imputations is None:
        args.imputations = 2 if args.quick else 5
    if args.solver_steps is None:
        args.solver_steps = 4 if args.quick else SOLVER_STEPS
    for name in ("imputations", "solver_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def split(table, seed, held_out=HELD_OUT):
    """(training rows, held-out rows) of ``table``, by a permutation seeded with ``seed``."""
    perm = np.random.default_rng(seed).permutation(len(table))
    h = int(round(held_out * len(table)))
    return (Table(table.names, table.cells[perm[h:]]), Table(table.names, table.cells[perm[:h]]))


def fit(options, train, label):
    """The fitted Flow, its wall and CPU seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    flow = Flow(label_column=label, **options).fit(train)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"trained {options['steps']} steps of {options['batch_size']} rows, "
          f"{'x'.join(map(str, options['hidden']))} network, in {seconds:.1f} s "
          f"(CPU {cpu:.1f} s)")
    return flow, seconds, cpu


def evaluate(flow, synthetic, train, held, rng):
    """The synthetic table's :class:`~npflow.tabular.TableEvaluation` against the held-out rows,
    and the quality report of the training rows against them (real vs real)."""
    encoder = flow.table_.encoder
    quality = report.quality_report(held, synthetic, encoder)
    closest = report.closest_records(synthetic, held, train, encoder)
    efficiency = tabular.efficiency(flow.table_, LABEL, synthetic, held, train, rng)
    evaluation = tabular.TableEvaluation(len(synthetic), quality, closest, efficiency)
    return evaluation, report.quality_report(held, train, encoder)


def hide_cells(table, share, rng, keep=()):
    """``table`` with ``share`` of its observed cells (outside the columns ``keep``) made
    missing, chosen uniformly at random; and the ``(n, d)`` bool mask of the hidden cells."""
    candidates = ~table.missing()  # (n, d)
    for name in keep:
        candidates[:, table.names.index(name)] = False
    where = np.flatnonzero(candidates.ravel())
    chosen = rng.choice(where, size=int(round(share * where.size)), replace=False)
    hidden = np.zeros(table.cells.size, dtype=bool)
    hidden[chosen] = True
    hidden = hidden.reshape(table.cells.shape)
    return Table(table.names, np.where(hidden, None, table.cells)), hidden


def mean_mode(train, encoder):
    """Each column's fill value of mean / mode imputation, from the training rows' observed
    cells: the mean of a numeric or integer column, the most frequent level of a categorical
    one (ties to the first level in sorted order)."""
    fills = []
    for column, values in zip(encoder.columns_, encoder.values(train)):
        if column.kind in ("numeric", "integer"):
            fills.append(float(np.nanmean(values)))
        else:
            counts = [int(np.sum(values == level)) for level in column.levels]
            fills.append(column.levels[int(np.argmax(counts))])
    return fills


def imputation_scores(truth, draws, hidden, encoder, train):
    """Scores of K imputations of the hidden cells, per column and overall, beside mean / mode.

    Numeric and integer cells: RMSE in units of the column's training standard deviation, of
    the first draw, of the mean of the K draws and of the mean; the K draws' standard deviation
    in the same units; the share of cells whose true value lies within the draws' range.
    Categorical cells: accuracy of the first draw, of the K draws' most frequent level (a tie
    to the first in sorted order) and of the mode; the share of cells where the K draws
    disagree.
    """
    fills = mean_mode(train, encoder)
    true_values = encoder.values(truth)
    drawn = [encoder.values(d) for d in draws]  # K lists of per-column values
    train_values = encoder.values(train)
    columns, numeric_z, categorical = {}, [], []
    for j, column in enumerate(encoder.columns_):
        rows = np.flatnonzero(hidden[:, j])
        if rows.size == 0:
            continue
        truth_j = true_values[j][rows]
        draws_j = np.stack([d[j][rows] for d in drawn])  # (K, m)
        if column.kind in ("numeric", "integer"):
            scale = float(np.nanstd(train_values[j]))
            z = (draws_j - truth_j) / scale  # (K, m) standardised errors
            low, high = draws_j.min(axis=0), draws_j.max(axis=0)
            columns[column.name] = {
                "kind": column.kind, "cells": int(rows.size),
                "rmse_flow": _rms(z[0]), "rmse_flow_mean_of_k": _rms(z.mean(axis=0)),
                "rmse_mean": _rms((fills[j] - truth_j) / scale),
                "spread": float(np.mean(np.std(z, axis=0))),
                "truth_within_draws": float(np.mean((truth_j >= low) & (truth_j <= high)))}
            numeric_z.append((z, (fills[j] - truth_j) / scale, truth_j, low, high))
        else:
            vote = [max(sorted(set(c)), key=c.count) for c in draws_j.T.tolist()]  # ties: first
            columns[column.name] = {
                "kind": column.kind, "cells": int(rows.size),
                "accuracy_flow": float(np.mean(draws_j[0] == truth_j)),
                "accuracy_flow_vote_of_k": float(np.mean(np.array(vote, dtype=object) == truth_j)),
                "accuracy_mode": float(np.mean(truth_j == fills[j])),
                "draws_disagree": float(np.mean([len(set(c)) > 1 for c in draws_j.T.tolist()]))}
            categorical.append((draws_j, truth_j, fills[j]))
    return {"k": len(draws), "columns": columns, **_overall(numeric_z, categorical, len(draws))}


def _overall(numeric_z, categorical, k):
    """The scores of :func:`imputation_scores` over every numeric and every categorical cell."""
    z = np.concatenate([n[0] for n in numeric_z], axis=1)  # (K, cells)
    base = np.concatenate([n[1] for n in numeric_z])
    within = np.concatenate([(n[2] >= n[3]) & (n[2] <= n[4]) for n in numeric_z])
    draws = np.concatenate([c[0] for c in categorical], axis=1)  # (K, cells)
    truth = np.concatenate([c[1] for c in categorical])
    mode = np.concatenate([np.full(len(c[1]), c[2], dtype=object) for c in categorical])
    return {"numeric_cells": int(z.shape[1]), "rmse_flow": _rms(z[0]),
            "rmse_flow_mean_of_k": _rms(z.mean(axis=0)), "rmse_mean": _rms(base),
            "spread": float(np.mean(np.std(z, axis=0))),
            "truth_within_draws": float(np.mean(within)),
            "truth_within_draws_expected": (k - 1) / (k + 1),
            "categorical_cells": int(truth.size),
            "accuracy_flow": float(np.mean(draws[0] == truth)),
            "accuracy_mode": float(np.mean(truth == mode))}


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def print_imputation(scores):
    rows = []
    for name, s in scores["columns"].items():
        if "rmse_flow" in s:
            rows.append((name, f"{s['cells']:3d} cells  RMSE/sd flow {s['rmse_flow']:.3f} "
                               f"(mean of K {s['rmse_flow_mean_of_k']:.3f}), mean "
                               f"{s['rmse_mean']:.3f}; spread {s['spread']:.3f}, truth within "
                               f"the K draws {s['truth_within_draws']:.2f}"))
        else:
            rows.append((name, f"{s['cells']:3d} cells  accuracy flow {s['accuracy_flow']:.3f} "
                               f"(vote of K {s['accuracy_flow_vote_of_k']:.3f}), mode "
                               f"{s['accuracy_mode']:.3f}; the K draws disagree on "
                               f"{s['draws_disagree']:.2f}"))
    rows.append(("numeric cells", f"{scores['numeric_cells']:3d} cells  RMSE/sd flow "
                                  f"{scores['rmse_flow']:.3f} (mean of K "
                                  f"{scores['rmse_flow_mean_of_k']:.3f}), mean "
                                  f"{scores['rmse_mean']:.3f}; truth within the K draws "
                                  f"{scores['truth_within_draws']:.2f} (calibrated: "
                                  f"{scores['truth_within_draws_expected']:.2f})"))
    rows.append(("categorical cells", f"{scores['categorical_cells']:3d} cells  accuracy flow "
                                      f"{scores['accuracy_flow']:.3f}, mode "
                                      f"{scores['accuracy_mode']:.3f}"))
    _common.report(f"imputation of {scores['k']} draws per hidden cell:", rows)


def print_evaluation(evaluation, floor):
    print("synthetic rows against the held-out rows (SDMetrics' quality report):")
    print(evaluation.summary())
    print(f"the training rows against the held-out rows (real vs real): column shapes "
          f"{100 * floor.column_shapes_score:.2f}%, pair trends "
          f"{100 * floor.column_pair_trends_score:.2f}%, overall {100 * floor.score:.2f}%")


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "tables")
    total = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    penguins = tables.load_penguins()
    train, held = split(penguins, args.seed)
    print(f"{len(penguins)} penguins: {len(train)} training rows, {len(held)} held out")

    options = dict(FLOW_OPTIONS, **(QUICK_OPTIONS if args.quick else {}), seed=args.seed,
                   solver_steps=args.solver_steps)
    label = None if args.unconditional else LABEL
    flow, seconds, cpu = fit(options, train, label)
    print(flow.table_.summary())
    synthetic = flow.sample(len(train), rng=rng)
    tables.write_csv(synthetic, os.path.join(folder, "synthetic.csv"))

    evaluation, floor = evaluate(flow, synthetic, train, held, rng)
    print_evaluation(evaluation, floor)

    masked, hidden = hide_cells(held, MASK_SHARE, rng, keep=() if label is None else (label,))
    draws = flow.impute(masked, rng=rng, n_imputations=args.imputations)
    tables.write_csv(tables.stack_imputations(draws), os.path.join(folder, "imputed.csv"))
    scores = imputation_scores(held, draws, hidden, flow.table_.encoder, train)
    print_imputation(scores)

    encoder = flow.table_.encoder
    numeric = [c.name for c in encoder.columns_ if c.kind in ("numeric", "integer")]
    values = [np.stack([v for v, c in zip(encoder.values(t), encoder.columns_)
                        if c.kind in ("numeric", "integer")], axis=1) for t in (train, synthetic)]
    r_train, r_syn = (report.correlation_matrix(v) for v in values)
    results = {"n_train": len(train), "n_held_out": len(held), "label_column": label,
               "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
               "train_seconds": seconds, "train_cpu_seconds": cpu,
               "load_average": list(os.getloadavg()),
               "evaluation": evaluation.to_dict(),
               "real_vs_real": {"column_shapes": floor.column_shapes_score,
                                "column_pair_trends": floor.column_pair_trends_score,
                                "overall": floor.score},
               "correlations": {"columns": numeric, "training": r_train.tolist(),
                                "synthetic": r_syn.tolist(),
                                "max_abs_difference": float(np.nanmax(np.abs(r_train - r_syn)))},
               "imputation": scores}
    if _common.pictures():
        _pictures(train, synthetic, encoder, folder)
        fig = viz.table_imputations(held, draws, hidden, encoder, fills=mean_mode(train, encoder),
                                    columns=PAIR_COLUMNS)
        _common.save(fig, folder, "tables_imputations.png")
    results["total_seconds"] = time.perf_counter() - total
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"done in {results['total_seconds']:.0f} s")
    return results


def _pictures(train, synthetic, encoder, folder):
    """Each column, the correlations, the pair plot: training rows beside synthetic ones."""
    labels = (f"real ({len(train)} training rows)", f"synthetic ({len(synthetic)} rows)")
    _common.save(viz.table_columns(train, synthetic, encoder, labels=labels), folder,
                 "tables_columns.png")
    _common.save(viz.table_correlations(train, synthetic, encoder, labels=("real", "synthetic")),
                 folder, "tables_correlations.png")
    _common.save(viz.table_pairplot(train, synthetic, encoder, LABEL, PAIR_COLUMNS,
                                    labels=labels), folder, "tables_pairplot.png")


if __name__ == "__main__":
    main()
