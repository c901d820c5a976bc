"""The density a flow-matching model learned, next to the true checkerboard density.

A flow carries densities along (Chen et al. 2018, Thm. 1; Lipman et al. 2023, eq. 3):

    log p_1(x1) = log p_0(x0) - int_0^1 div v_theta(x_t, t) dt,   x_t solving dx/dt = v_theta

integrated from t = 1 back to t = 0 by :func:`npflow.log_likelihood`. The checkerboard is
uniform on 8 squares of area 4, so its density is 1/32 there and 0 elsewhere, and no model can
reach an NLL below its entropy, log 32 = 3.466 nats. The demo draws

* density.png: the model's p_1 on a grid beside the true density;
* slice.png: both densities along two horizontal lines, where the true density is a step;

and prints the NLL of fresh data with the exact divergence for several rk4 step counts, and with
Hutchinson's one-probe estimate ``eps^T (dv/dx) eps`` (Grathwohl et al. 2019, eq. 7), unbiased
but noisy point by point.

    python demos/likelihood.py --model demos/output/checkerboard/model.npz
"""
import argparse
import dataclasses
import os

import numpy as np

import _common
from npflow import datasets, likelihood, metrics, viz
from npflow.train import TrainConfig

SLICES = (-3.0, -1.0)  # y of the horizontal lines of slice.png: through the two kinds of rows
NLL_STEPS = (5, 10, 20, 50)  # rk4 steps of the exact-divergence NLL


def parse_args(argv=None):
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description="Learned vs true checkerboard density; NLL.")
    p.add_argument("--out", default=None, help="output folder (default: demos/output/likelihood)")
    p.add_argument("--model", default=None, help="checkerboard checkpoint instead of training one")
    p.add_argument("--steps", type=int, default=defaults.steps,
                   help=f"training steps when no --model (default: {defaults.steps})")
    p.add_argument("--n", type=int, default=2000, help="held-out points of the NLL")
    p.add_argument("--grid", type=int, default=64, help="density picture: grid x grid cells")
    p.add_argument("--ode-steps", type=int, default=20,
                   help="rk4 steps of the pictures and of the Hutchinson estimate")
    p.add_argument("--nll-steps", type=int, nargs="+", default=list(NLL_STEPS),
                   help="rk4 step counts of the exact NLL")
    p.add_argument("--seed", type=int, default=0, help="seed of training and evaluation")
    args = p.parse_args(argv)
    for name in ("steps", "n", "grid", "ode_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.nll_steps) < 1:
        p.error("--nll-steps must be >= 1")
    return args


def draw_slices(model, steps, limits):
    """Model and true density along the lines y = y0 of :data:`SLICES`."""
    plt = _common.pyplot()
    xs = np.linspace(*limits, 400)  # (400,)
    fig, axes = plt.subplots(len(SLICES), 1, figsize=(7, 2.3 * len(SLICES)), sharex=True)
    for ax, y0 in zip(axes, SLICES):
        points = np.stack([xs, np.full_like(xs, y0)], axis=1)  # (400, 2)
        ll = likelihood.log_likelihood(model, points.astype(model.dtype), "rk4", steps)
        true = np.exp(datasets.log_density("checkerboard", points))
        ax.fill_between(xs, true, step="mid", color=viz.TARGET_COLOR, alpha=0.25,
                        label="true $p_1$ (1/32 on the squares)")
        ax.plot(xs, np.exp(ll.log_prob.astype(np.float64)), color=viz.GENERATED_COLOR,
                linewidth=1.5, label="model $p_1$")
        ax.set_ylim(0.0, 1.4 * max(float(np.max(np.exp(ll.log_prob))), float(true.max())))
        ax.set_ylabel("density")
        ax.set_title(f"along y = {y0:g}", fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)
    axes[-1].set_xlabel("x")
    axes[-1].set_xlim(*limits)
    fig.tight_layout()
    return fig


def nll_table(model, x1, ode_steps, nll_steps, rng):
    """Exact NLL for each rk4 step count, and the one-probe Hutchinson estimate."""
    rows, exact = [], {}
    for steps in nll_steps:
        with _common.Timer() as timer:
            ll = likelihood.log_likelihood(model, x1, "rk4", steps)
        exact[steps] = ll.log_prob.astype(np.float64)
        rows.append((f"exact divergence, rk4 {steps:>3} steps",
                     metrics.negative_log_likelihood(exact[steps]), ll.nfe, timer.seconds, None))
    with _common.Timer() as timer:
        ll = likelihood.log_likelihood(model, x1, "rk4", ode_steps, divergence="hutchinson",
                                       n_probes=1, rng=rng)
    hutch = ll.log_prob.astype(np.float64)
    reference = exact[ode_steps] if ode_steps in exact else \
        likelihood.log_likelihood(model, x1, "rk4", ode_steps).log_prob.astype(np.float64)
    spread = float(np.std(hutch - reference))
    rows.append((f"Hutchinson, 1 probe, rk4 {ode_steps:>3} steps",
                 metrics.negative_log_likelihood(hutch), ll.nfe, timer.seconds, spread))
    return rows


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "likelihood")
    can_draw = _common.pictures()
    if args.model is None:
        config = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed)
        run = _common.train(config, os.path.join(folder, "model.npz"))
    else:
        run = _common.load(args.model)
    if (run.train_config["source"], run.train_config["target"]) != ("gaussian", "checkerboard"):
        raise SystemExit("likelihood.py needs a gaussian -> checkerboard model")
    model = run.model

    rng = np.random.default_rng(args.seed + 1)
    x1 = datasets.sample("checkerboard", args.n, rng).astype(model.dtype)  # (n, 2) held out
    rows = nll_table(model, x1, args.ode_steps, args.nll_steps, rng)

    if can_draw:
        print("pictures:")
        limits = (-4.5, 4.5)
        fig = viz.density(model, limits=limits, grid=args.grid, steps=args.ode_steps,
                          true_log_density=lambda x: datasets.log_density("checkerboard", x))
        _common.save(fig, folder, "density.png")
        _common.save(draw_slices(model, args.ode_steps, limits), folder, "slice.png")

    print(f"NLL of {args.n} fresh checkerboard points, in nats (floor: log 32 = "
          f"{_common.LOG_32:.4f})")
    print(f"  {'estimate':<36}{'NLL':>8}{'NFE':>6}{'seconds':>9}  per-point std vs exact")
    for name, nll, nfe, seconds, spread in rows:
        extra = "" if spread is None else f"  {spread:.3f}"
        print(f"  {name:<36}{nll:8.4f}{nfe:>6}{seconds:9.1f}{extra}")
    return {name: nll for name, nll, *_ in rows}


if __name__ == "__main__":
    main()
