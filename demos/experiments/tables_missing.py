"""Missing cells: missing-indicator coordinates against a masked loss, on the penguins table.

npflow encodes a column with gaps as its value coordinate, filled with the column's mean (0)
where the cell is missing, beside a 0/1 indicator coordinate (the missing-indicator method; Van
Ness, Bosschieter, Halpin-Gregorio and Udell 2023, KDD), and regresses every coordinate:

    L = (1 / (n k)) sum_i || v(xt_i, t_i) - ut_i ||^2

The other way is the masked loss of MissDiff (Ouyang, Xie, Li, Ermon and Wu 2023, "MissDiff:
Training Diffusion Models on Tabular Data with Missing Values"): regress only the coordinates
that were observed, so that the fill value is never a target,

    L = sum_i || m_i * (v(xt_i, t_i) - ut_i) ||^2 / sum_i |m_i|

``m_i`` is 0 on the value coordinates of row i's missing cells (for a categorical column, its
level coordinates) and 1 elsewhere. The indicators stay coordinates, and regressed, in both
variants: without them a generated table would have no missing cells at all.

Both variants train the same flow on the same rows (the penguins demo's FLOW_OPTIONS) on two
tables: the penguins as distributed (their own gaps: 2 rows without measurements, 11 without
sex) and a copy with ``--remove`` of its cells (outside species) removed at random. Each is
split as the demo splits it (275 training rows, 69 held out), and measured on the held-out rows:

- ``overall``: SDMetrics' overall quality score of ``--n`` synthetic rows against the held-out
  rows (:func:`npflow.report.quality_report`);
- ``missing_error``: the mean over columns of ``|synthetic share - real share|`` of missing
  cells, the real share that of the whole table (training and held-out rows);
- ``rmse`` and ``accuracy``: imputation of 20% of the held-out rows' observed cells (species
  kept), RMSE in units of the column's standard deviation over numeric cells, accuracy over
  categorical ones (the demo's :func:`imputation_scores`, one draw).

    PYTHONPATH=. python demos/experiments/tables_missing.py --seeds 0 1 2

The measured table and the choice are in demos/experiments/README.md ("Missing cells").
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # demos/
import tables as demo  # noqa: E402  (demos/tables.py)
from npflow import report, tabular  # noqa: E402
from npflow import tables as npt  # noqa: E402
from npflow.tables import Table  # noqa: E402
from npflow.optim import clip_grad_norm  # noqa: E402
from npflow.train import Batch, Trainer, data_config, path_batch  # noqa: E402
from npflow.trained import TrainedFlow  # noqa: E402

VARIANTS = ("indicator", "masked")


class MaskedTrainer(Trainer):
    """A :class:`~npflow.train.Trainer` whose loss leaves out the value coordinates of missing
    cells (MissDiff's masked loss; see the module docstring)."""

    def draw_batch(self):
        """The batch, and ``self.mask`` (n, k): 0 on the value coordinates of missing cells."""
        x0, x1, y = self._draw_pairs(self.config.batch_size)
        self.mask = observed_coordinates(self.rows.table.features,
                                         self.rows.transform.inverse(x1))
        ps = path_batch(self.path, x0, x1, self.rng, self.config.time_sampling, self.model.dtype)
        return Batch(ps.xt, ps.t, ps.ut, y)

    def train_step(self):
        """One step of the masked CFM loss; otherwise :meth:`Trainer.train_step`."""
        batch = self.draw_batch()
        v, cache = self.model.forward_train(batch.xt, batch.t, batch.y, self.work)  # (n, k)
        loss, grad_v = masked_loss(v, batch.ut, self.mask)
        self.model.backward(cache, grad_v, self.work)
        grads = self.model.grads
        norm = clip_grad_norm(grads, self.config.grad_clip) if self.config.grad_clip > 0 \
            else float(np.sqrt(np.dot(grads, grads)))
        if not (np.isfinite(loss) and np.isfinite(norm)):
            raise RuntimeError(f"the masked loss became {loss} at step {self.step + 1}")
        self.optimizer.step(grads, lr=self.schedule(self.step))
        self.ema.update(self.model.params)
        self.step += 1
        self.losses.append(loss)
        return loss


def masked_loss(v, ut, m):
    """``L = sum(m (v - ut)^2) / sum(m)`` and ``dL/dv = 2 m (v - ut) / sum(m)``, both (n, k)
    arrays ``v``, ``ut`` and the bool mask ``m``; with every ``m`` 1, the CFM loss."""
    m = m.astype(v.dtype)
    diff = (v - ut) * m  # (n, k)
    total = m.sum()
    return float(np.sum(diff * diff) / total), diff * (2.0 / total)


def observed_coordinates(encoder, z):
    """``(n, k)`` bool: False on the value coordinates of the missing cells of the encoded rows
    ``z`` (n, k) (a cell is missing where its indicator is above 1/2), True elsewhere."""
    mask = np.ones(z.shape, dtype=bool)
    start = 0
    for column in encoder.columns_:
        if column.has_gaps:
            indicator = start + column.width - 1
            mask[:, start:indicator] = (z[:, indicator] <= 0.5)[:, None]
        start += column.width
    return mask


def remove_cells(table, share, rng, keep=(demo.LABEL,)):
    """A copy of ``table`` with ``share`` of its observed cells outside ``keep`` removed."""
    return demo.hide_cells(table, share, rng, keep)[0]


def fit(variant, train, options, label):
    """A :class:`~npflow.trained.TrainedFlow` of the training rows, trained with ``variant``."""
    rows = tabular.dataset(train, label=label)
    config = data_config(**options, conditional=label is not None)
    trainer = (MaskedTrainer if variant == "masked" else Trainer)(config, data=rows,
                                                                  labels=rows.y)
    trainer.run(quiet=True)
    return TrainedFlow(trainer.to_checkpoint())


def missing_error(schema, whole, synthetic):
    """Mean over columns of |synthetic share - whole table's share| of missing cells."""
    real = whole.missing().mean(axis=0)
    syn = synthetic.missing().mean(axis=0)
    return float(np.mean(np.abs(real - syn))), dict(zip(whole.names, syn.tolist()))


def run(variant, table_name, seed, args):
    """One fit and its measurements."""
    whole = npt.load_penguins()
    if table_name == "removed":
        whole = remove_cells(whole, args.remove, np.random.default_rng(1000 + seed))
    train, held = demo.split(whole, seed)
    options = dict(demo.FLOW_OPTIONS, **(demo.QUICK_OPTIONS if args.quick else {}), seed=seed)
    start = time.process_time()
    flow = fit(variant, train, options, demo.LABEL)
    cpu = time.process_time() - start
    rng = np.random.default_rng(seed + 1)
    synthetic = flow.sample_table(args.n, rng, steps=demo.SOLVER_STEPS)
    quality = report.quality_report(held, synthetic, flow.table.encoder)
    error, shares = missing_error(flow.table, whole, synthetic)
    masked, hidden = demo.hide_cells(held, demo.MASK_SHARE, rng, keep=(demo.LABEL,))
    filled = flow.impute(masked, rng, 1, steps=demo.SOLVER_STEPS)
    scores = demo.imputation_scores(held, filled, hidden, flow.table.encoder, train)
    return {"variant": variant, "table": table_name, "seed": seed, "overall": quality.score,
            "shapes": quality.column_shapes_score, "pair_trends": quality.column_pair_trends_score,
            "missing_error": error, "synthetic_missing": shares,
            "real_missing": dict(zip(whole.names, whole.missing().mean(axis=0).tolist())),
            "rmse": scores["rmse_flow"], "rmse_mean": scores["rmse_mean"],
            "accuracy": scores["accuracy_flow"], "accuracy_mode": scores["accuracy_mode"],
            "cpu_seconds": cpu}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--remove", type=float, default=0.15,
                        help="share of cells removed at random in the second table")
    parser.add_argument("--n", type=int, default=1000, help="synthetic rows scored")
    parser.add_argument("--out", default=None, help="write every run's numbers to this JSON")
    parser.add_argument("--quick", action="store_true",
                        help="the demo's tiny network: a smoke test")
    args = parser.parse_args(argv)
    runs = []
    print("table    variant    seed  overall  missing_error  rmse   accuracy  cpu_s")
    for table_name in ("own", "removed"):
        for seed in args.seeds:
            for variant in VARIANTS:
                r = run(variant, table_name, seed, args)
                runs.append(r)
                print(f"{table_name:8s} {variant:10s} {seed:4d}  {r['overall']:.4f}   "
                      f"{r['missing_error']:.4f}         {r['rmse']:.3f}  {r['accuracy']:.3f}"
                      f"     {r['cpu_seconds']:.0f}", flush=True)
    print("means over seeds:")
    for table_name in ("own", "removed"):
        for variant in VARIANTS:
            rs = [r for r in runs if r["table"] == table_name and r["variant"] == variant]
            print(f"{table_name:8s} {variant:10s}       "
                  + "  ".join(f"{k} {np.mean([r[k] for r in rs]):.4f}"
                              for k in ("overall", "missing_error", "rmse", "accuracy")))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(runs, f, indent=2)
    return runs


if __name__ == "__main__":
    main()
