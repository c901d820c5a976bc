"""Gaussian noise -> checkerboard by conditional flow matching, end to end.

1. Train ``v_theta(x, t)`` with the default :class:`npflow.TrainConfig` (straight paths
   ``xt = (1 - t) x0 + t x1``, target ``ut = x1 - x0``; Lipman et al. 2023, eq. 9 and 23).
2. Sample by integrating ``dx/dt = v_theta(x, t)`` from t = 0 to 1 with RK4 (eq. 1).
3. Measure: precision (fraction of samples on the 8 filled squares), exact W2 to fresh data,
   and the NLL of fresh data with the exact divergence (Chen et al. 2018, Thm. 1), whose floor is
   the checkerboard's entropy log 32 = 3.466 nats.
4. Draw noise.png, samples.png, trajectories.png, field.png, density.png, loss.png and flow.gif
   (with matplotlib; without it the numbers are still printed).

    python demos/checkerboard.py                   # 45-70 s on two cores
    python demos/checkerboard.py --steps 200 --out /tmp/cb   # a quick look

``make demo`` runs it into demos/output/checkerboard.
"""
import argparse
import dataclasses
import os

import numpy as np

import _common
from npflow import datasets, metrics, solvers, viz
from npflow.train import TrainConfig


def parse_args(argv=None):
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description="Train Gaussian noise -> checkerboard and draw it.")
    p.add_argument("--out", default=None,
                   help="output folder (default: demos/output/checkerboard)")
    p.add_argument("--steps", type=int, default=defaults.steps,
                   help=f"training steps (default: TrainConfig().steps = {defaults.steps})")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of training and sampling")
    p.add_argument("--n", type=int, default=8000, help="generated points drawn and scored")
    p.add_argument("--sample-steps", type=int, default=20,
                   help="rk4 steps of the sampler (20 give the precision of 100)")
    p.add_argument("--eval-n", type=int, default=2000, help="points for W2 and the NLL")
    p.add_argument("--nll-steps", type=int, default=10,
                   help="rk4 steps of the likelihood integration (NLL and density.png)")
    p.add_argument("--grid", type=int, default=64, help="density picture: grid x grid cells")
    p.add_argument("--path-points", type=int, default=1500,
                   help="points whose paths are drawn (300 of them) and animated")
    p.add_argument("--path-steps", type=int, default=50, help="rk4 steps of the drawn paths")
    p.add_argument("--frames", type=int, default=26, help="frames of flow.gif")
    args = p.parse_args(argv)
    for name in ("steps", "n", "sample_steps", "eval_n", "nll_steps", "grid", "path_points",
                 "path_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.frames < 2 or args.frames > args.path_steps + 1:
        p.error("--frames must be between 2 and --path-steps + 1")
    if args.eval_n > args.n or args.path_points > args.n:
        p.error("--eval-n and --path-points must be at most --n")
    return args


def _pictures(args, folder, run, x0, x1, generated, paths):
    """noise.png, samples.png, trajectories.png, field.png, density.png, loss.png, flow.gif."""
    print("pictures:")
    model, limits = run.model, viz.limits_of(x0, x1)
    fig = viz.scatter(x0, limits=limits, color=viz.NOISE_COLOR,
                      title=r"noise $x_0 \sim \mathcal{N}(0, I)$")
    _common.save(fig, folder, "noise.png")
    _common.save(viz.panels(x0, generated, x1, limits=limits), folder, "samples.png")
    fig = viz.trajectories(paths.trajectory, n_paths=300, times=paths.times, limits=limits)
    _common.save(fig, folder, "trajectories.png")
    _common.save(viz.vector_field(model, limits=limits), folder, "field.png")
    fig = viz.density(model, limits=limits, grid=args.grid, steps=args.nll_steps,
                      true_log_density=lambda x: datasets.log_density("checkerboard", x))
    _common.save(fig, folder, "density.png")
    _common.save(viz.loss_curve(run.losses), folder, "loss.png")
    rows = np.round(np.linspace(0, args.path_steps, args.frames)).astype(int)  # (frames,)
    gif = os.path.join(folder, "flow.gif")
    fig = viz.animate(paths.trajectory[rows], gif, times=paths.times[rows], fps=12,
                      limits=limits)
    _common.close(fig, gif)


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "checkerboard")
    can_draw = _common.pictures()
    config = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed)
    run = _common.train(config, os.path.join(folder, "model.npz"))
    model = run.model

    # Sampling: x0 ~ N(0, I), then dx/dt = v(x, t) from 0 to 1 with rk4.
    rng = np.random.default_rng(args.seed + 1)  # evaluation draws, apart from training's
    x0 = datasets.sample("gaussian", args.n, rng)  # (n, 2)
    x1 = datasets.sample("checkerboard", args.n, rng)  # (n, 2) data, for the pictures and W2
    with _common.Timer() as sampling:
        sol = solvers.solve(model, x0.astype(model.dtype), "rk4", args.sample_steps)
        paths = solvers.solve(model, x0[:args.path_points].astype(model.dtype), "rk4",
                              args.path_steps, return_trajectory=True)
    generated = sol.x.astype(np.float64)  # (n, 2)

    with _common.Timer() as scoring:
        precision = datasets.checkerboard_precision(generated)
        w2 = metrics.wasserstein2(generated[:args.eval_n], x1[:args.eval_n])
        w2_floor = _common.w2_floor("checkerboard", x1[:args.eval_n], rng, draws=3)
        nll = _common.checkerboard_nll(model, args.eval_n, args.nll_steps, rng)

    with _common.Timer() as drawing:
        if can_draw:
            _pictures(args, folder, run, x0, x1, generated, paths)

    _common.report(f"checkerboard, {args.n} samples (rk4, {args.sample_steps} steps, "
                   f"{sol.nfe} evaluations):", [
        ("precision", f"{precision:.4f}   (fraction on the 8 filled squares; data: 1)"),
        ("W2", f"{w2:.4f}   ({args.eval_n} vs {args.eval_n} points; data vs data: "
               f"{w2_floor:.4f}, mean of 3)"),
        ("NLL", f"{nll:.4f} nats   (exact divergence, rk4 {args.nll_steps} steps; "
                f"floor log 32 = {_common.LOG_32:.3f})"),
        ("time", f"training {run.seconds:.1f} s, sampling {sampling.seconds:.1f} s, "
                 f"metrics {scoring.seconds:.1f} s, pictures {drawing.seconds:.1f} s"),
    ])
    return {"precision": precision, "w2": w2, "w2_floor": w2_floor, "nll": nll}


if __name__ == "__main__":
    main()
