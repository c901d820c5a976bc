"""Which ODE solver to sample with: euler, midpoint, heun, rk4 and dopri5 against their cost.

Sampling integrates ``dx/dt = v_theta(x, t)`` from t = 0 to 1 (Lipman et al. 2023, eq. 1); the
cost is the number of network evaluations (NFE). For each solver and step count (for dopri5: each
tolerance) the demo draws the same noise x0 and measures

* W2 to fresh data: what a user sees; it stops improving once the solver error is below the
  model's own error and the sampling noise of W2 (the "data vs data" line);
* the RMS distance to a reference solution (rk4 with many steps) from the same x0: the solver
  error alone. For a smooth field its slope on log-log axes would be the order of the method
  (1, 2, 2, 4, 5); the default network is a ReLU MLP, whose field has kinks and turns sharply
  near t = 1 where points snap into the squares, so the measured slopes are lower (about 0.5
  for euler, 1.6 for midpoint, 2.8 for rk4 at 32-128 NFE) and the cheap midpoint rule does as
  well as rk4 per evaluation.

It trains the default checkerboard model first (:class:`npflow.TrainConfig`), or loads one:

    python demos/solvers.py --model demos/output/checkerboard/model.npz
"""
import argparse
import dataclasses
import os

import numpy as np

import _common
from npflow import datasets, metrics, solvers
from npflow.train import TrainConfig

STEPS = {  # fixed-step methods: numbers of steps (NFE = stages x steps)
    "euler": (1, 2, 4, 8, 16, 32, 64, 128),
    "midpoint": (1, 2, 4, 8, 16, 32, 64),
    "heun": (1, 2, 4, 8, 16, 32, 64),
    "rk4": (1, 2, 4, 8, 16, 32),
}
TOLERANCES = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)  # dopri5: rtol = atol
STYLE = {"euler": ("#7f7f7f", "o"), "midpoint": ("#4393c3", "s"), "heun": ("#2166ac", "^"),
         "rk4": ("#d6604d", "D"), "dopri5": ("#1b7837", "v")}


def parse_args(argv=None):
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description="Solvers compared: W2 and solver error against NFE.")
    p.add_argument("--out", default=None, help="output folder (default: demos/output/solvers)")
    p.add_argument("--model", default=None, help="checkpoint to use instead of training one")
    p.add_argument("--steps", type=int, default=defaults.steps,
                   help=f"training steps when no --model (default: {defaults.steps})")
    p.add_argument("--n", type=int, default=1000, help="points per solver run")
    p.add_argument("--reference-steps", type=int, default=200, help="rk4 steps of the reference")
    p.add_argument("--max-steps", type=int, default=None,
                   help="skip step counts above this (a quick look)")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling")
    args = p.parse_args(argv)
    for name in ("steps", "n", "reference_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_steps is not None and args.max_steps < 1:
        p.error("--max-steps must be >= 1")
    return args


def runs(max_steps=None):
    """(method, steps, rtol) of every solver run, cheapest first within each method."""
    fixed = [(m, s, None) for m, counts in STEPS.items() for s in counts
             if max_steps is None or s <= max_steps]
    return fixed + [("dopri5", None, tol) for tol in TOLERANCES]


def measure(model, x0, x1, reference, plan):
    """Solve from x0 with every (method, steps, rtol) of ``plan``; return a list of dicts."""
    rows = []
    for method, steps, tol in plan:
        kwargs = {"rtol": tol, "atol": tol} if method == "dopri5" else {}
        sol = solvers.solve(model, x0, method, steps, **kwargs)
        x = sol.x.astype(np.float64)
        rows.append({
            "method": method, "steps": steps, "tol": tol, "nfe": sol.nfe,
            "w2": metrics.wasserstein2(x, x1),
            "error": float(np.sqrt(np.mean(np.sum((x - reference) ** 2, axis=1)))),
        })
    return rows


def draw(rows, floor, title):
    from matplotlib.ticker import FormatStrFormatter  # only to draw: see _common.pictures

    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, (color, marker) in STYLE.items():
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        nfe = [r["nfe"] for r in mine]
        for ax, key in zip(axes, ("w2", "error")):
            ax.plot(nfe, [r[key] for r in mine], marker=marker, color=color, label=method,
                    markersize=5)
    axes[0].axhline(floor, color="black", linestyle=":", linewidth=1,
                    label="data vs data (mean of 5)")
    axes[0].set_ylabel("W2 to the data")
    axes[0].set_title("what you see: W2 to fresh data")
    axes[1].set_ylabel("RMS distance to the reference")
    axes[1].set_title("solver error alone: distance to the reference")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.set_xlabel("network evaluations (NFE)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    _common.label_log_axis(axes[0])
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "solvers")
    can_draw = _common.pictures()
    if args.model is None:
        config = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed)
        run = _common.train(config, os.path.join(folder, "model.npz"))
    else:
        run = _common.load(args.model)
    model, source, target = run.model, run.train_config["source"], run.train_config["target"]

    rng = np.random.default_rng(args.seed + 1)
    x0 = datasets.sample(source, args.n, rng).astype(model.dtype)  # (n, 2)
    x1 = datasets.sample(target, args.n, rng)  # (n, 2)
    floor = _common.w2_floor(target, x1, rng)
    with _common.Timer() as timer:
        reference = solvers.solve(model, x0, "rk4", args.reference_steps).x.astype(np.float64)
        rows = measure(model, x0, x1, reference, runs(args.max_steps))

    if can_draw:
        print("pictures:")
        title = (f"{source} -> {target}: {args.n} points; reference rk4 with "
                 f"{args.reference_steps} steps")
        _common.save(draw(rows, floor, title), folder, "solvers.png")

    print(f"{source} -> {target}, {args.n} points; W2 to fresh data (data vs data: {floor:.4f}), "
          f"RMS distance to rk4 with {args.reference_steps} steps; {timer.seconds:.1f} s")
    print(f"  {'method':<9}{'steps/tol':>10}{'NFE':>6}{'W2':>9}{'RMS error':>12}")
    for r in rows:
        setting = f"{r['tol']:g}" if r["method"] == "dopri5" else str(r["steps"])
        print(f"  {r['method']:<9}{setting:>10}{r['nfe']:>6}{r['w2']:9.4f}{r['error']:12.2e}")
    return rows


if __name__ == "__main__":
    main()
