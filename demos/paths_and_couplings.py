"""Why minibatch OT pairing straightens the paths: linear vs I-CFM vs OT-CFM.

Three ways to build the regression target, each trained from Gaussian noise to 8gaussians and to
moons with the same small network (3 hidden layers of 64, SELU, batch 256; TorchCFM's 2-D set-up):

==========  ========================================================  =====================
method      path (Tong et al. 2024, Table 1)                          pairing of (x0, x1)
==========  ========================================================  =====================
linear      ``xt = (1 - t) x0 + t x1``, ``ut = x1 - x0``               independent
I-CFM       ``xt = (1 - t) x0 + t x1 + sigma eps``, ``ut = x1 - x0``   independent
OT-CFM      same as I-CFM                                             exact minibatch OT
==========  ========================================================  =====================

With independent pairs, the paths of different pairs cross; the learned field averages them
(``v(x, t) = E[x1 - x0 | xt = x]``), so its trajectories bend, and a one-step Euler sampler sends
every point to the data mean. OT pairs (the permutation minimising ``sum |x0_i - x1_perm(i)|^2``,
Tong et al. 2024, Sec. 3) barely cross, so the learned trajectories are nearly straight and a few
Euler steps suffice. The demo prints and plots W2 to the data after 1, 2, 4, 8, 16 and 100 Euler
steps, and the straightness ``S = E int_0^1 |v(x_t, t) - (x_1 - x_0)|^2 dt`` of the sampled
paths (Liu et al. 2023, Sec. 2.2; 0 for straight lines travelled at constant speed).

    python demos/paths_and_couplings.py            # about 1-2 minutes on two cores
"""
import argparse
import dataclasses

import numpy as np

import _common
from npflow import datasets, metrics, solvers, viz
from npflow.train import TrainConfig

METHODS = {  # name: the TrainConfig fields that define it
    "linear": {"path": "linear", "coupling": "independent"},
    "I-CFM": {"path": "icfm", "sigma": 0.1, "coupling": "independent"},
    "OT-CFM": {"path": "icfm", "sigma": 0.1, "coupling": "ot"},
}
TARGETS = ("8gaussians", "moons")
EULER_STEPS = (1, 2, 4, 8, 16, 100)
COLORS = {"linear": "#7f7f7f", "I-CFM": "#2166ac", "OT-CFM": "#d6604d"}
SMALL_NET = {"hidden": (64, 64, 64), "activation": "selu", "batch_size": 256}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="linear vs I-CFM vs OT-CFM: straightness and W2.")
    p.add_argument("--out", default=None,
                   help="output folder (default: demos/output/paths_and_couplings)")
    p.add_argument("--steps", type=int, default=2000, help="training steps of each model")
    p.add_argument("--n", type=int, default=1000, help="points sampled and scored per model")
    p.add_argument("--paths", type=int, default=200, help="trajectories drawn per panel")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling")
    args = p.parse_args(argv)
    for name in ("steps", "n", "paths"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    return args


def straightness(trajectory):
    """``S = mean_i (1/N) sum_k |N (x_{k+1} - x_k) - (x_N - x_0)|^2`` for (N + 1, n, d) Euler paths.

    The Euler increments times N are the velocities used; 0 means straight, constant speed
    (Liu et al. 2023, "Flow straight and fast", Sec. 2.2).
    """
    n_steps = trajectory.shape[0] - 1
    v = n_steps * np.diff(trajectory, axis=0)  # (N, n, d)
    chord = trajectory[-1] - trajectory[0]  # (n, d)
    return float(np.mean(np.sum((v - chord) ** 2, axis=2)))


def evaluate(model, x0, x1):
    """W2 to the data after each number of Euler steps, and the 100-step trajectory."""
    w2, trajectory = {}, None
    for steps in EULER_STEPS:
        sol = solvers.solve(model, x0.astype(model.dtype), "euler", steps,
                            return_trajectory=steps == max(EULER_STEPS))
        w2[steps] = metrics.wasserstein2(sol.x.astype(np.float64), x1)
        if sol.trajectory is not None:
            trajectory = sol.trajectory.astype(np.float64)
    return w2, trajectory


def draw_paths(results, data, n_paths):
    """2 x 3 grid of trajectories: rows are targets, columns are methods."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(len(TARGETS), len(METHODS), figsize=(4.1 * len(METHODS),
                                                                   3.7 * len(TARGETS)),
                             squeeze=False)
    for row, target in enumerate(TARGETS):
        low, high = _box(*data[target])
        for col, method in enumerate(METHODS):
            ax = axes[row, col]
            res = results[target, method]
            viz.trajectories(res["trajectory"], n_paths=n_paths, ax=ax)
            ax.set_xlim(low[0], high[0])
            ax.set_ylim(low[1], high[1])
            ax.set_title(f"{method}: N(0, I) -> {target}\n"
                         f"W2 after 1 Euler step {res['w2'][1]:.2f}, S = {res['S']:.2f}",
                         fontsize=10)
    colorbars = fig.axes[axes.size:]  # viz.trajectories adds one colour bar of t per panel
    for cb in colorbars[:-1]:
        cb.remove()
    fig.suptitle("learned trajectories (Euler, 100 steps): OT pairing straightens the paths",
                 fontsize=12)
    fig.tight_layout()
    return fig


def _box(*arrays, margin=0.08):
    """Lower and upper corners (2,) holding 99.8 % of each coordinate of every array, padded."""
    points = np.concatenate(arrays)  # (n, 2)
    low, high = np.quantile(points, 0.001, axis=0), np.quantile(points, 0.999, axis=0)
    pad = margin * np.max(high - low)
    return low - pad, high + pad


def draw_w2(results, floors):
    """W2 to the data against the number of Euler steps, one panel per target."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(5.2 * len(TARGETS), 3.8), squeeze=False)
    for ax, target in zip(axes[0], TARGETS):
        for method in METHODS:
            w2 = results[target, method]["w2"]
            ax.plot(EULER_STEPS, [w2[s] for s in EULER_STEPS], "o-", color=COLORS[method],
                    label=method)
        ax.axhline(floors[target], color="black", linestyle=":", linewidth=1,
                   label="data vs data (mean of 5)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(EULER_STEPS)
        ax.set_xticklabels([str(s) for s in EULER_STEPS])
        _common.label_log_axis(ax)
        ax.set_xlabel("Euler steps (= network evaluations)")
        ax.set_ylabel("W2 to the data")
        ax.set_title(f"N(0, I) -> {target}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "paths_and_couplings")
    can_draw = _common.pictures()
    rng = np.random.default_rng(args.seed + 1)  # evaluation draws, apart from training's
    results, data, floors = {}, {}, {}
    for target in TARGETS:
        x0 = datasets.sample("gaussian", args.n, rng)  # (n, 2), shared by the three methods
        x1 = datasets.sample(target, args.n, rng)  # (n, 2)
        data[target] = (x0, x1)
        floors[target] = _common.w2_floor(target, x1, rng)
        for method, fields in METHODS.items():
            config = dataclasses.replace(TrainConfig(), target=target, steps=args.steps,
                                         seed=args.seed, **SMALL_NET, **fields)
            run = _common.train(config, label=f"{method:>6} {target}", quiet=True)
            w2, trajectory = evaluate(run.model, x0, x1)
            results[target, method] = {"w2": w2, "trajectory": trajectory,
                                       "S": straightness(trajectory), "seconds": run.seconds}

    if can_draw:
        print("pictures:")
        _common.save(draw_paths(results, data, args.paths), folder, "couplings_paths.png")
        _common.save(draw_w2(results, floors), folder, "couplings_w2.png")

    header = "".join(f"{s:>8}" for s in EULER_STEPS)
    print(f"W2 to {args.n} data points after k Euler steps; S = straightness (0: straight)")
    print(f"  {'target':<11}{'method':<8}{header}{'S':>8}{'train s':>9}")
    for (target, method), res in results.items():
        row = "".join(f"{res['w2'][s]:8.3f}" for s in EULER_STEPS)
        print(f"  {target:<11}{method:<8}{row}{res['S']:8.3f}{res['seconds']:9.1f}")
    for target in TARGETS:
        print(f"  {target:<11}{'data':<8}{'':>{8 * (len(EULER_STEPS) - 1)}}{floors[target]:8.3f}"
              "   (mean W2 between 5 fresh data sets and the same data)")
    return {f"{t}/{m}": {"w2": r["w2"], "S": r["S"]} for (t, m), r in results.items()}


if __name__ == "__main__":
    main()
