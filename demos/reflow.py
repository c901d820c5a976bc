"""Reflow (Liu et al. 2023, Alg. 1): straighter paths, so a single Euler step suffices.

1. Train a flow N(0, I) -> moons with independent pairs (1-rectified flow): its paths bend,
   because independent pairs cross and the learned field averages them.
2. Reflow twice: push 10,000 fresh x0 through the current flow with rk4 (``reflow_pairs``), then
   fine-tune a copy of it on these fixed pairs (``reflow_trainer``, warm start).
3. Measure for each flow its straightness ``S = mean int_0^1 |v(x_t, t) - (x1 - x0)|^2 dt``
   (``metrics.straightness``, 0 for straight paths) and the exact W2 to fresh moons of samples
   made with 1, 2 and 4 Euler steps (and rk4 with 100 steps as the reference).
4. Draw reflow_trajectories.png: the paths and the one-step samples of each flow side by side.

    python demos/reflow.py                          # about 30 s on two cores
    python demos/reflow.py --steps 30 --reflow-steps 20 --pairs 200 --n 100 --out /tmp/rf
"""
import argparse

import numpy as np

import _common
from npflow import datasets, metrics, reflow, sampling, viz
from npflow.train import TrainConfig

EULER_STEPS = (1, 2, 4)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Reflow N(0, I) -> moons and measure straightness.")
    p.add_argument("--out", default=None, help="output folder (default: demos/output/reflow)")
    p.add_argument("--steps", type=int, default=3000, help="training steps of the first flow")
    p.add_argument("--reflow-steps", type=int, default=1500, help="training steps per reflow")
    p.add_argument("--reflows", type=int, default=2, help="number of reflows (default: 2)")
    p.add_argument("--pairs", type=int, default=10000, help="(x0, x1) pairs per reflow")
    p.add_argument("--n", type=int, default=1000, help="points for W2 and straightness")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling")
    args = p.parse_args(argv)
    for name in ("steps", "reflow_steps", "pairs", "n"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.reflows < 0:
        p.error("--reflows must be >= 0")
    return args


def config(args):
    """A small fast network: 3 x 64 SiLU, batch 256, independent pairs, uniform t."""
    return TrainConfig(target="moons", coupling="independent", steps=args.steps, batch_size=256,
                       hidden=(64, 64, 64), activation="silu", lr=3e-3,
                       warmup_steps=min(100, args.steps), time_sampling="uniform", seed=args.seed)


def evaluate(model, x0, reference):
    """Straightness, W2 with 1/2/4 Euler steps and with rk4 100, and the rk4 trajectory."""
    x0 = x0.astype(model.dtype)
    sol = sampling.sample_flow(model, x0, "rk4", 100, return_trajectory=True)
    one_step = sampling.sample_flow(model, x0, "euler", 1).x
    w2 = {k: metrics.wasserstein2(sampling.sample_flow(model, x0, "euler", k).x, reference)
          for k in EULER_STEPS}
    w2["rk4"] = metrics.wasserstein2(sol.x, reference)
    return {"straightness": metrics.straightness(model, sol.trajectory, sol.times), "w2": w2,
            "trajectory": sol.trajectory, "times": sol.times, "one_step": one_step}


def draw(results, reference, folder):
    plt = _common.pyplot()
    names = list(results)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7.6), squeeze=False)
    limits = viz.limits_of(reference)
    for j, name in enumerate(names):
        r = results[name]
        viz.trajectories(r["trajectory"][::5], n_paths=150, times=r["times"][::5], limits=limits,
                         ax=axes[0, j])
        axes[0, j].set_title(f"{name}: S = {r['straightness']:.3f}")
        viz.scatter(reference, ax=axes[1, j], limits=limits, color=viz.TARGET_COLOR, size=2,
                    alpha=0.25)
        viz.scatter(r["one_step"], ax=axes[1, j], limits=limits, size=2,
                    title=f"1 Euler step: W2 = {r['w2'][1]:.3f}")
    fig.tight_layout()
    return _common.save(fig, folder, "reflow_trajectories.png")


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "reflow")
    cfg = config(args)
    model = _common.train(cfg, label="1-rectified flow").model
    rng = np.random.default_rng(args.seed + 1)
    x0 = rng.standard_normal((args.n, 2))  # the same evaluation noise for every flow
    reference = datasets.sample("moons", args.n, rng)
    results = {"flow": evaluate(model, x0, reference)}
    for k in range(1, args.reflows + 1):
        with _common.Timer() as timer:
            pairs = reflow.reflow_pairs(model, rng.standard_normal((args.pairs, 2)), "rk4", 100)
            trainer = reflow.reflow_trainer(model, cfg, pairs, steps=args.reflow_steps, lr=1e-3,
                                            warmup_steps=0, seed=args.seed + k)
            trainer.run(quiet=True)
        print(f"reflow {k}: {args.pairs} pairs, {args.reflow_steps} steps in "
              f"{timer.seconds:.1f} s, final loss {np.mean(trainer.losses[-50:]):.4f}")
        cfg, model = trainer.config, trainer.to_checkpoint().model(ema=True)
        results[f"reflow {k}"] = evaluate(model, x0, reference)
    _common.report(f"N(0, I) -> moons, {args.n} points: straightness S and W2 to fresh moons",
                   [(name, f"S = {r['straightness']:.4f}   W2 euler 1/2/4 = "
                     + " / ".join(f"{r['w2'][k]:.3f}" for k in EULER_STEPS)
                     + f"   rk4 100 = {r['w2']['rk4']:.3f}") for name, r in results.items()])
    if _common.pictures():
        draw(results, reference, folder)
    return {name: {"straightness": r["straightness"], "w2": r["w2"]}
            for name, r in results.items()}


if __name__ == "__main__":
    main()
