"""How the penguins demo's flow was chosen: a few networks and step counts, conditional on species
or not, scored as the demo scores them (SDMetrics' overall quality of as many synthetic rows as
training rows, against the 69 held-out rows of the demo's split), beside the score of the
training rows themselves (real vs real).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python demos/experiments/tables_tune.py \\
        --configs 3x128-4k 3x128-8k default-4k --labels species none --seeds 0 1 2

Each configuration is the demo's ``Flow`` options (val_fraction 0: every training row is
trained on; rk4 with 20 steps); ``--labels none`` models species as one more column. The
measured table and the choice are in demos/experiments/README.md.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # demos/
import tables as demo  # noqa: E402  (demos/tables.py)
from npflow import Flow, report, tables  # noqa: E402

BASE = dict(val_fraction=0.0, solver_steps=20)
CONFIGS = {  # name: Flow options over DATA_DEFAULTS (residual SiLU, 10 x 128, batch 512, lr 3e-3)
    "3x128-4k": dict(hidden=(128,) * 3, steps=4000, batch_size=256),
    "3x128-8k": dict(hidden=(128,) * 3, steps=8000, batch_size=256),
    "3x256-4k": dict(hidden=(256,) * 3, steps=4000, batch_size=256),
    "default-4k": dict(steps=4000),
    "default-10k": dict(steps=10000),
    "quick": dict(demo.QUICK_OPTIONS),
}


def run(name, label, seed):
    """Fit one configuration on the demo's split; its scores and seconds."""
    train, held = demo.split(tables.load_penguins(), seed)
    start, cpu = time.perf_counter(), time.process_time()
    flow = Flow(seed=seed, label_column=label, **BASE, **CONFIGS[name]).fit(train)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    synthetic = flow.sample(len(train), rng=np.random.default_rng(seed + 1))
    encoder = flow.table_.encoder
    q = report.quality_report(held, synthetic, encoder)
    return {"shapes": q.column_shapes_score, "pair_trends": q.column_pair_trends_score,
            "overall": q.score, "real_vs_real": report.quality_report(held, train, encoder).score,
            "seconds": seconds, "cpu_seconds": cpu}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=["3x128-4k"])
    parser.add_argument("--labels", nargs="+", choices=(demo.LABEL, "none"), default=[demo.LABEL])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    print("config        label    seed  shapes  pair_trends  overall  real_vs_real  wall_s  cpu_s")
    rows = []
    for seed in args.seeds:
        for label in args.labels:
            for name in args.configs:
                r = run(name, None if label == "none" else label, seed)
                rows.append({"config": name, "label": label, "seed": seed, **r})
                print(f"{name:12s}  {label:7s}  {seed:4d}  {r['shapes']:.4f}  "
                      f"{r['pair_trends']:.4f}       {r['overall']:.4f}   "
                      f"{r['real_vs_real']:.4f}        {r['seconds']:5.1f}  "
                      f"{r['cpu_seconds']:5.1f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
