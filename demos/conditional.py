"""Class-conditional flow matching with classifier-free guidance on the 8 Gaussians.

1. Train one network ``v(x, t, y)`` on (point, component) pairs of ``8gaussians``, replacing the
   label by the null label with probability 0.1 so that it also learns ``v(x, t, null)``
   (Ho and Salimans 2022, Alg. 1; ``TrainConfig(conditional=True)``).
2. Sample each class on demand with the guided field
   ``v_w = (1 - w) v(x, t, null) + w v(x, t, y)`` (:class:`npflow.guidance.GuidedField`).
3. Measure, for w in (0, 1, 2, 4), the per-class precision: the fraction of samples whose
   nearest centre is the requested component (w = 0 is unconditional: about 1/8).
4. Draw conditional_classes.png (every class at w = 1) and conditional_guidance.png (a few
   classes across w).

    python demos/conditional.py                    # about 20 s on two cores
    python demos/conditional.py --steps 50 --n 50 --out /tmp/cond   # a smoke run
"""
import argparse

import numpy as np

import _common
from npflow import datasets, sampling
from npflow.guidance import GuidedField
from npflow.train import TrainConfig

GUIDANCE = (0.0, 1.0, 2.0, 4.0)
SHOWN_CLASSES = (0, 3, 6)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Class-conditional 8 Gaussians with guidance.")
    p.add_argument("--out", default=None,
                   help="output folder (default: demos/output/conditional)")
    p.add_argument("--steps", type=int, default=4000, help="training steps (default: 4000)")
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling")
    p.add_argument("--n", type=int, default=1000, help="samples per class and w (default: 1000)")
    p.add_argument("--sample-steps", type=int, default=50, help="rk4 steps (default: 50)")
    args = p.parse_args(argv)
    for name in ("steps", "n", "sample_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def config(args):
    """A small fast network: 3 x 64 SiLU, batch 256, independent pairs, uniform t."""
    return TrainConfig(target="8gaussians", conditional=True, label_dropout=0.1,
                       steps=args.steps, batch_size=256, hidden=(64, 64, 64), activation="silu",
                       lr=3e-3, warmup_steps=min(100, args.steps), time_sampling="uniform",
                       seed=args.seed)


def sample_class(model, label, w, n, steps, rng):
    """n samples (n, 2) of class ``label`` with guidance ``w`` (rk4)."""
    x0 = rng.standard_normal((n, 2)).astype(model.dtype)
    return sampling.sample_flow(GuidedField(model, label, w), x0, "rk4", steps).x


def precisions(samples):
    """{w: (8,) fraction of each class's samples nearest to the requested centre}."""
    return {w: np.array([np.mean(datasets.nearest_center_8gaussians(x) == k)
                         for k, x in enumerate(xs)]) for w, xs in samples.items()}


def draw_classes(samples, folder):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    colors = plt.get_cmap("tab10")
    for k, x in enumerate(samples):
        ax.scatter(x[:, 0], x[:, 1], s=2, color=colors(k), alpha=0.5, linewidths=0,
                   rasterized=True, label=str(k))
    ax.set_xlim(-8, 8), ax.set_ylim(-8, 8), ax.set_aspect("equal")
    ax.set_title("each class on demand (w = 1)")
    ax.legend(loc="center", fontsize=7, markerscale=4, ncol=2, title="label", framealpha=0.8)
    return _common.save(fig, folder, "conditional_classes.png")


def draw_guidance(samples, folder):
    plt = _common.pyplot()
    centres = datasets.CENTERS_8GAUSSIANS
    fig, axes = plt.subplots(len(SHOWN_CLASSES), len(GUIDANCE),
                             figsize=(2.3 * len(GUIDANCE), 2.3 * len(SHOWN_CLASSES)))
    for i, k in enumerate(SHOWN_CLASSES):
        for j, w in enumerate(GUIDANCE):
            ax = axes[i, j]
            x = samples[w][k]
            ax.scatter(centres[:, 0], centres[:, 1], s=30, c="#bbbbbb", marker="x")
            ax.scatter(x[:, 0], x[:, 1], s=1.5, c="#2166ac", alpha=0.4, linewidths=0,
                       rasterized=True)
            ax.scatter(*centres[k], s=60, c="#d6604d", marker="x")
            ax.set_xlim(-8, 8), ax.set_ylim(-8, 8), ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"w = {w:g}")
            if j == 0:
                ax.set_ylabel(f"class {k}")
    fig.suptitle(r"$v_w = (1 - w)\,v(x, t, \varnothing) + w\,v(x, t, y)$", y=1.0)
    fig.tight_layout()
    return _common.save(fig, folder, "conditional_guidance.png")


def main(argv=None):
    args = parse_args(argv)
    folder = _common.output_folder(args.out, "conditional")
    model = _common.train(config(args), label="conditional").model
    rng = np.random.default_rng(args.seed + 1)
    with _common.Timer() as timer:
        samples = {w: [sample_class(model, k, w, args.n, args.sample_steps, rng)
                       for k in range(8)] for w in GUIDANCE}
    prec = precisions(samples)
    _common.report(f"precision per class (nearest centre = requested class), {args.n} samples "
                   f"per class, rk4 {args.sample_steps} steps, sampled in {timer.seconds:.1f} s",
                   [(f"w = {w:g}", " ".join(f"{p:.3f}" for p in prec[w])
                     + f"   overall {prec[w].mean():.4f}  min {prec[w].min():.3f}")
                    for w in GUIDANCE])
    if _common.pictures():
        draw_classes(samples[1.0], folder)
        draw_guidance(samples, folder)
    return prec


if __name__ == "__main__":
    main()
