"""A flow between two data sets: moons -> 8gaussians, with independent and with OT pairs.

Flow matching needs samples of the source, not its density, so x0 can come from data as well
(Tong et al. 2024, Sec. 3-4, the "moons -> 8gaussians" task): ``x0 ~ moons``, ``x1 ~ 8gaussians``,
``xt = (1 - t) x0 + t x1 + sigma eps``, ``ut = x1 - x0``. With independent pairs (I-CFM) the
learned map is *a* transport from moons to 8gaussians; with exact minibatch OT pairs (OT-CFM)
it approaches the optimal one, so the paths are straight and the transport cost
``E |phi_1(x0) - x0|^2`` approaches ``W2^2(moons, 8gaussians)`` (Tong et al. 2024, Prop. 3.4).

Writes data_to_data.png (source and target, then the learned paths of both methods),
data_to_data_samples.png (moons | generated | 8gaussians for OT-CFM) and data_to_data.gif.

    python demos/data_to_data.py        # about a minute on two cores
"""
import argparse
import dataclasses
import os

import numpy as np

import _common
from npflow import datasets, metrics, solvers, viz
from npflow.train import TrainConfig

SOURCE, TARGET = "moons", "8gaussians"
METHODS = {  # name: the TrainConfig fields that define it
    "I-CFM": {"path": "icfm", "sigma": 0.1, "coupling": "independent"},
    "OT-CFM": {"path": "icfm", "sigma": 0.1, "coupling": "ot"},
}
SMALL_NET = {"hidden": (64, 64, 64), "activation": "selu", "batch_size": 256}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="moons -> 8gaussians with I-CFM and OT-CFM.")
    p.add_argument("--out", default=None,
                   help="output folder (default: demos/output/data_to_data)")
    p.add_argument("--steps", type=int, default=2000, help="training steps of each model")
    p.add_argument("--n", type=int, default=1000, help="points sampled and scored per model")
    p.add_argument("--ode-steps", type=int, default=100, help="Euler steps of the sampler")
    p.add_argument("--paths", type=int, default=250, help="trajectories drawn per panel")
    p.add_argument("--frames", type=int, default=26, help="frames of the GIF")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling")
    args = p.parse_args(argv)
    for name in ("steps", "n", "ode_steps", "paths"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.frames < 2 or args.frames > args.ode_steps + 1:
        p.error("--frames must be between 2 and --ode-steps + 1")
    return args


def draw(x0, x1, trajectories, scores, n_paths):
    """Source and target, then one panel of learned paths per method."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 1 + len(trajectories), figsize=(4.2 * (1 + len(trajectories)),
                                                                 4.1))
    limits = viz.limits_of(x0, x1)
    viz.scatter(x0, ax=axes[0], limits=limits, color=viz.NOISE_COLOR, size=3)
    viz.scatter(x1, ax=axes[0], limits=limits, color=viz.TARGET_COLOR, size=3,
                title=f"source {SOURCE} (grey), target {TARGET} (red)")
    axes[0].title.set_fontsize(10)
    for ax, (method, traj) in zip(axes[1:], trajectories.items()):
        viz.trajectories(traj, n_paths=n_paths, limits=limits, ax=ax)
        s = scores[method]
        ax.set_title(f"{method}: W2 {s['w2']:.2f}, 1-step W2 {s['w2_one_step']:.2f}\n"
                     f"cost $E|\\phi_1(x_0) - x_0|^2$ = {s['cost']:.2f}", fontsize=10)
    for cb in fig.axes[len(axes):-1]:  # keep one colour bar of t
        cb.remove()
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "data_to_data")
    can_draw = _common.pictures()
    rng = np.random.default_rng(args.seed + 1)  # evaluation draws, apart from training's
    x0 = datasets.sample(SOURCE, args.n, rng)  # (n, 2)
    x1 = datasets.sample(TARGET, args.n, rng)  # (n, 2)
    floor = _common.w2_floor(TARGET, x1, rng)
    ot_cost = metrics.wasserstein2(x0, x1) ** 2  # W2^2(moons, 8gaussians), n points each
    trajectories, scores, generated = {}, {}, {}
    for method, fields in METHODS.items():
        config = dataclasses.replace(TrainConfig(), source=SOURCE, target=TARGET,
                                     steps=args.steps, seed=args.seed, **SMALL_NET, **fields)
        run = _common.train(config, label=f"{method:>6}", quiet=True)
        model = run.model
        sol = solvers.solve(model, x0.astype(model.dtype), "euler", args.ode_steps,
                            return_trajectory=True)
        one_step = solvers.solve(model, x0.astype(model.dtype), "euler", 1).x
        generated[method] = sol.x.astype(np.float64)
        trajectories[method] = sol.trajectory.astype(np.float64)
        scores[method] = {
            "w2": metrics.wasserstein2(generated[method], x1),
            "w2_one_step": metrics.wasserstein2(one_step.astype(np.float64), x1),
            "cost": float(np.mean(np.sum((generated[method] - x0) ** 2, axis=1))),
            "seconds": run.seconds,
        }

    if can_draw:
        print("pictures:")
        _common.save(draw(x0, x1, trajectories, scores, args.paths), folder, "data_to_data.png")
        fig = viz.panels(x0, generated["OT-CFM"], x1,
                         titles=(f"source $x_0 \\sim$ {SOURCE}", r"OT-CFM  $\phi_1(x_0)$",
                                 f"target $x_1 \\sim$ {TARGET}"))
        _common.save(fig, folder, "data_to_data_samples.png")
        rows = np.round(np.linspace(0, args.ode_steps, args.frames)).astype(int)  # (frames,)
        gif = os.path.join(folder, "data_to_data.gif")
        traj = trajectories["OT-CFM"]
        fig = viz.animate(traj[rows], gif, times=rows / args.ode_steps, fps=12,
                          limits=viz.limits_of(x0, x1))
        _common.close(fig, gif)

    print(f"{SOURCE} -> {TARGET}, {args.n} points, Euler {args.ode_steps} steps; "
          f"W2 data vs data {floor:.3f} (mean of 5); W2^2(source, target) = {ot_cost:.2f}")
    print(f"  {'method':<8}{'W2':>8}{'W2 1 step':>11}{'E|x1-x0|^2':>12}{'train s':>9}")
    for method, s in scores.items():
        print(f"  {method:<8}{s['w2']:8.3f}{s['w2_one_step']:11.3f}{s['cost']:12.2f}"
              f"{s['seconds']:9.1f}")
    return {"floor": floor, "ot_cost": ot_cost, **scores}


if __name__ == "__main__":
    main()
