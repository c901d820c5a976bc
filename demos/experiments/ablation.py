"""What each training choice does: one figure of checkerboard samples, one change at a time.

Every panel trains Gaussian noise -> checkerboard with a base configuration and ONE field changed
(coupling, time sampling, activation, width, EMA), draws 10,000 samples with RK4 from the same
noise, and writes their precision (the fraction on the 8 filled squares,
:func:`npflow.datasets.checkerboard_precision`) under the panel. Each row varies one choice; the
base panel appears in every row so that a row compares against it.

The base is cheaper than ``TrainConfig()`` (batch 2048, 8500 steps): exact OT costs a
``solve_assignment`` on every batch, which grows like n^3, so the base uses batch 256 and 3000
steps. The whole grid (six trainings, the EMA-off panel reuses the base run) took 24 minutes on
two cores shared with other jobs (load average 10-19); each panel's seconds are in its cache
JSON. Its precisions are below the defaults' 0.955; the differences are what the figure shows.

    python demos/experiments/ablation.py     # demos/experiments/figures/ablation.png and .json
    python demos/experiments/ablation.py --quick --out /tmp/a.png --cache /tmp/a   # seconds

Each panel is cached in ``--cache`` (its samples ``.npy`` and a JSON of its configuration and
precision; each trained model as ``.npz``): a rerun skips every finished panel, and a panel whose
configuration changed is trained again.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from npflow import checkpoint, datasets, sampling, viz
from npflow.train import TrainConfig, Trainer

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))  # the teaching demos' folder, for _common
import _common  # noqa: E402

FIGURES = os.path.join(HERE, "figures")
# Cheaper than TrainConfig(): exact OT at batch 2048 would take most of an hour.
BASE = dict(batch_size=256, steps=3000, hidden=(128, 128, 128), activation="relu",
            coupling="independent", time_sampling="logit-normal")
QUICK = dict(batch_size=32, steps=3)


@dataclasses.dataclass(frozen=True)
class Panel:
    """One panel: the row's choice, its label, the fields changed from the base, EMA or raw."""

    row: str
    label: str
    changes: dict
    ema: bool = True

    @property
    def name(self):
        """File name of the panel's cache: ``base``, ``coupling-ot``, ``base-raw``, ..."""
        parts = [f"{k}-{'x'.join(map(str, v)) if isinstance(v, tuple) else v}"
                 for k, v in sorted(self.changes.items())]
        return "-".join(parts or ["base"]) + ("" if self.ema else "-raw")

    @property
    def model_name(self):
        """File name of the trained model (the EMA-off panel reuses the base run)."""
        return self.name.removesuffix("-raw")


PANELS = (
    Panel("coupling", "independent (base)", {}),
    Panel("coupling", "ot", {"coupling": "ot"}),
    Panel("time sampling", "logit-normal (base)", {}),
    Panel("time sampling", "uniform", {"time_sampling": "uniform"}),
    Panel("activation", "relu (base)", {}),
    Panel("activation", "silu", {"activation": "silu"}),
    Panel("width", "64", {"hidden": (64, 64, 64)}),
    Panel("width", "128 (base)", {}),
    Panel("width", "256", {"hidden": (256, 256, 256)}),
    Panel("EMA", "on (base)", {}),
    Panel("EMA", "off: raw weights", {}, ema=False),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="One-change-at-a-time grid of checkerboard samples.")
    p.add_argument("--out", default=os.path.join(FIGURES, "ablation.png"),
                   help="the figure; its precisions go to the same name with .json")
    p.add_argument("--cache", default=None,
                   help="folder of finished panels (default: demos/output/ablation[_quick])")
    p.add_argument("--n", type=int, default=10000, help="samples per panel")
    p.add_argument("--sample-steps", type=int, default=100, help="RK4 steps of the sampler")
    p.add_argument("--seed", type=int, default=0, help="training seed (the same for all panels)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (3 steps, batch 32, 200 samples, 2 RK4 steps): a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.sample_steps = min(args.n, 200), min(args.sample_steps, 2)
    for name in ("n", "sample_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.cache is None:
        args.cache = os.path.join(_common.HERE, "output", "ablation_quick" if args.quick
                                  else "ablation")
    return args


def base_config(quick, seed):
    return TrainConfig(**{**BASE, **(QUICK if quick else {}), "seed": seed})


def run_panel(panel, base, x0, args):
    """Train (or load) the panel's model, sample ``x0`` with RK4; returns the panel's record."""
    config = dataclasses.replace(base, **panel.changes)
    record_path = os.path.join(args.cache, panel.name + ".json")
    record = {"name": panel.name, "ema": panel.ema, "config": config.to_dict(), "n": len(x0),
              "sample_steps": args.sample_steps}
    shown = {"row": panel.row, "label": panel.label}
    if os.path.exists(record_path):
        with open(record_path) as f:
            done = json.load(f)
        if {k: done.get(k) for k in record} == record:
            print(f"  {panel.name:<28} cached: precision {done['precision']:.4f}")
            return {**done, **shown}
    model_path = os.path.join(args.cache, panel.model_name + ".npz")
    start = time.perf_counter()
    ckpt = checkpoint.load(model_path) if os.path.exists(model_path) else None
    if ckpt is None or ckpt.train_config != config.to_dict():
        trainer = Trainer(config)
        trainer.run(quiet=True)
        trainer.save(model_path)
        ckpt = trainer.to_checkpoint()
    train_seconds = time.perf_counter() - start
    model = ckpt.model(ema=panel.ema)
    samples = sampling.sample_flow(model, x0.astype(model.dtype), "rk4", args.sample_steps).x
    samples = samples.astype(np.float64)  # (n, 2)
    np.save(os.path.join(args.cache, panel.name + ".npy"), samples)
    record.update(precision=datasets.checkerboard_precision(samples),
                  seconds=round(time.perf_counter() - start, 2),
                  train_seconds=round(train_seconds, 2))
    with open(record_path, "w") as f:
        json.dump(record, f, indent=1)
    print(f"  {panel.name:<28} precision {record['precision']:.4f} ({record['seconds']:.0f} s)")
    return {**record, **shown}


def draw(records, args, base, minutes):
    """The grid: one row per choice, one column per option, the precision under each panel."""
    plt = _common.pyplot()
    rows = list(dict.fromkeys(r["row"] for r in records))
    cols = max(sum(r["row"] == row for r in records) for row in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.7 * cols, 2.95 * len(rows)),
                             squeeze=False)
    for i, row in enumerate(rows):
        mine = [r for r in records if r["row"] == row]
        for j, ax in enumerate(axes[i]):
            if j >= len(mine):
                ax.axis("off")
                continue
            r = mine[j]
            samples = np.load(os.path.join(args.cache, r["name"] + ".npy"))
            viz.scatter(samples, ax=ax, limits=(-4.5, 4.5), size=0.6, alpha=0.35)
            ax.set_title(f"{row}: {r['label']}", fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(f"precision {r['precision']:.3f}", fontsize=10,
                          fontweight="bold" if "base" in r["label"] else "normal")
    hidden = "x".join(map(str, base.hidden))
    fig.suptitle(f"One change at a time from the base: {hidden} {base.activation}, "
                 f"{base.coupling} pairs, {base.time_sampling} t, EMA {base.ema_decay},\n"
                 f"batch {base.batch_size}, {base.steps} steps (cheaper than TrainConfig(): "
                 f"exact OT is slow). {args.n} RK4 samples ({args.sample_steps} steps) per "
                 f"panel; whole grid {minutes:.1f} min on 2 shared cores", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    folder, name = os.path.split(os.path.abspath(args.out))
    _common.save(fig, folder, name)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.cache, exist_ok=True)
    base = base_config(args.quick, args.seed)
    x0 = datasets.sample("gaussian", args.n, np.random.default_rng(args.seed + 1))  # (n, 2)
    start = time.perf_counter()
    print(f"{len(PANELS)} panels, cache {os.path.abspath(args.cache)}")
    records = [run_panel(panel, base, x0, args) for panel in PANELS]
    total = sum(r["seconds"] for r in {r["name"]: r for r in records}.values())
    result = {"base": base.to_dict(), "n": args.n, "sample_steps": args.sample_steps,
              "grid_seconds": round(total, 1),
              "precision": {r["name"]: r["precision"] for r in records}}
    if _common.pictures():
        draw(records, args, base, total / 60)
    json_path = os.path.splitext(args.out)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["precision"], indent=1))
    print(f"grid {total:.0f} s ({time.perf_counter() - start:.0f} s in this call); "
          f"wrote {json_path}")
    return result


if __name__ == "__main__":
    main()
