"""Noise into 28x28 MNIST digits with the U-Net, on a laptop CPU, with honest numbers.

1. Split the 5,000 bundled MNIST images (:func:`npflow.datasets.load_mnist_sample`), or your own
   MNIST / Fashion-MNIST IDX files (``--images``, ``--labels``), with a fixed seed: 1,000 held
   out, the rest for training.
2. Train npflow's classifier (:mod:`npflow.classifier`; random shifts of up to 2 pixels) on the
   training split: it judges every sample below.
3. Fit a class-conditional U-Net (:mod:`npflow.networks.unet`; label dropout, so that one
   network is both ``v(x, t, y)`` and the unconditional ``v(x, t, null)``) to the dequantized
   training images (``x + u``, ``u ~ U[0, 1)``; Theis et al. 2016), and an MLP with the data
   defaults (:data:`npflow.train.DATA_DEFAULTS`, fewer steps) beside it.
4. Judge them on the held-out images: negative log-likelihood in bits per dimension
   (Hutchinson's estimator, with its standard error over the images; Grathwohl et al. 2019)
   beside one full-covariance Gaussian (:mod:`npflow.baselines`); the Frechet distance of
   unguided samples to held-out images in the classifier's features (Heusel et al. 2017), beside
   its floor (training vs held-out images); the share of guided samples
   (``v_w = (1 - w) v(x, t, null) + w v(x, t, y)``, Ho and Salimans 2022) classified as the
   class asked for, for several w; each sample's distance to its nearest training image beside
   the held-out images' (memorization would show as samples much closer than held-out images).
5. Pictures (when matplotlib is installed): a 10 x 10 grid (one row per class), a guidance
   sweep, a GIF of digits forming from noise, samples above their nearest training images.
   Samples and labels are saved as .npy, every number in results.json.

    python demos/mnist.py                                # the full demo (make mnist)
    python demos/mnist.py --quick --out /tmp/mnist       # a smoke test of every stage
    python demos/mnist.py --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz

Measured (2026-12-02, ``make mnist`` in a fresh clone on two idle cores): classifier held-out
accuracy 0.976; the U-Net 0.942 +- 0.036 held-out bits/dim (the MLP 5.580, one Gaussian 5.781),
a Frechet distance of 434.3 for 1,000 unguided samples (the MLP 1512.3, the floor 46.9), guided
samples classified as asked 0.915 / 0.990 / 0.995 / 1.000 at w = 1 / 2 / 3 / 4; 832 s in all
(923 CPU-seconds), 522 of them the U-Net's training (0.44 s a step).
"""
import argparse
import json
import math
import os
import time

import numpy as np

import _common
from npflow import Flow, baselines, couplings, data, datasets, metrics, solvers, viz
from npflow.classifier import Classifier
from npflow.guidance import GuidedField
from npflow.train import DATA_DEFAULTS

SHAPE = datasets.MNIST_SHAPE
D = SHAPE[0] * SHAPE[1]
PIXEL_MAX = datasets.MNIST_MAX
N_HELD_OUT = 1000
N_LIKELIHOOD = 250  # held-out images whose log-likelihood is estimated (each costs 24 vjp's)
SOLVER_STEPS = 6  # rk4 steps (24 evaluations) of the likelihoods and samples
GUIDANCE = (1.0, 2.0, 3.0, 4.0)
QS = (0.05, 0.25, 0.5, 0.75, 0.95)  # quantiles of the nearest-training distances

# The judge: an MLP on globally standardized pixels, trained on images moved by up to 2 pixels
# (npflow.classifier's docstring has the measured recipe).
CLASSIFIER = dict(hidden=(512, 512))
CLASSIFIER_FIT = dict(epochs=60, standardize="global", shift=2, image_shape=SHAPE)
# The U-Net, sized so that the whole demo fits in 20 minutes of two cores (measured: 832 s in
# all, 522 s of them this training, 0.44 s a step; 739 s at 0.62 s a step before the
# convolution's speed-ups).
UNET_OPTIONS = dict(arch="unet", image_shape=(1,) + SHAPE, channels=16, multipliers=(1, 2, 2),
                    groups=8, steps=1200, batch_size=64, lr=2e-3, warmup_steps=50,
                    ema_decay=0.995, time_sampling="uniform", dequantize=True, val_fraction=0.0,
                    divergence="hutchinson", n_probes=1, label_dropout=0.2)
# The MLP of Flow()'s data defaults, for fewer steps: 3,000 of 512 are 384 epochs of the
# 4,000 training images.
MLP_OPTIONS = dict(steps=3000, dequantize=True, val_fraction=0.0, divergence="hutchinson",
                   n_probes=1)
QUICK = {"unet": dict(channels=4, groups=2, steps=3, batch_size=8, warmup_steps=1),
         "mlp": dict(hidden=(16, 16), steps=3, batch_size=32, warmup_steps=1),
         "classifier": dict(hidden=(32,)), "classifier_fit": dict(epochs=1)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Flow matching on MNIST with the U-Net.")
    p.add_argument("--out", default=None, help="output folder (default: demos/output/mnist)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, training, sampling")
    p.add_argument("--images", default=None,
                   help="an IDX images file (MNIST or Fashion-MNIST, e.g. "
                        "train-images-idx3-ubyte.gz) instead of the bundled 5,000 images")
    p.add_argument("--labels", default=None, help="the IDX labels file that goes with --images")
    p.add_argument("--quick", action="store_true",
                   help="tiny networks, few steps and samples: a smoke test of every stage")
    p.add_argument("--skip-mlp", action="store_true", help="do not fit the MLP beside the U-Net")
    p.add_argument("--unet-steps", type=int, default=None,
                   help=f"training steps of the U-Net (default: {UNET_OPTIONS['steps']})")
    p.add_argument("--n-samples", type=int, default=None,
                   help="unguided samples for the Frechet distance (default: 1000, 20 quick)")
    p.add_argument("--n-per-class", type=int, default=None,
                   help="guided samples per class and weight (default: 20, 2 quick)")
    p.add_argument("--n-likelihood", type=int, default=None,
                   help=f"held-out images whose bits/dim are estimated (default: {N_LIKELIHOOD}, "
                        f"10 quick)")
    p.add_argument("--solver-steps", type=int, default=None,
                   help=f"rk4 steps of likelihoods and samples (default: {SOLVER_STEPS}, 2 quick)")
    args = p.parse_args(argv)
    if (args.images is None) != (args.labels is None):
        p.error("--images and --labels go together (the images and their class labels)")
    defaults = {"n_samples": (1000, 20), "n_per_class": (20, 2),
                "n_likelihood": (N_LIKELIHOOD, 10), "solver_steps": (SOLVER_STEPS, 2),
                "unet_steps": (UNET_OPTIONS["steps"], QUICK["unet"]["steps"])}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def load(args):
    """Images (n, 784) float64 and labels (n,): the bundled sample or the user's IDX files."""
    if args.images is None:
        images, labels = datasets.load_mnist_sample()
    else:
        images = data.read_idx(args.images)
        if images.shape[1:] != SHAPE:
            raise SystemExit(f"--images must hold 28 x 28 images, got shape {images.shape}")
        labels = data.load_labels(args.labels, images.shape[0])
    if images.shape[0] <= N_HELD_OUT:
        raise SystemExit(f"--images must hold more than {N_HELD_OUT} images (that many are held "
                         f"out), got {images.shape[0]}")
    return images.reshape(images.shape[0], D).astype(np.float64), labels


def split(n, seed, held_out=N_HELD_OUT):
    """Seeded split of rows 0 .. n-1: (training rows, held-out rows) as index arrays."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[held_out:], perm[:held_out]


def bits(log_prob):
    """Mean negative log-likelihood in bits per dimension, ``-mean log p / (d ln 2)``, and the
    standard error of that mean over the images (Hutchinson's probe noise included)."""
    scale = D * math.log(2)
    return (float(-np.mean(log_prob) / scale),
            float(np.std(log_prob, ddof=1) / np.sqrt(log_prob.size) / scale))


def quantize(x):
    """Data-unit samples of ``x + u`` back to integer pixels: ``clip(floor(x), 0, 255)``."""
    return np.clip(np.floor(x), 0, PIXEL_MAX)


class Clock:
    """Wall and CPU seconds of a stage, printed and stored under ``key`` in ``out``."""

    def __init__(self, out, key):
        self.out, self.key = out, key

    def __enter__(self):
        print(f"  [{self.key} ...]", flush=True)  # a stage of minutes says when it starts
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.out[f"{self.key}_seconds"], self.out[f"{self.key}_cpu_seconds"] = wall, cpu
        print(f"  [{self.key}: {wall:.0f} s wall, {cpu:.0f} s CPU]", flush=True)


def judge_samples(samples, clf, Xtr, Xte, out):
    """Frechet distance to the held-out images and nearest-training distances of ``samples``."""
    out["frechet_samples_vs_held_out"] = metrics.frechet_distance(clf.features(samples),
                                                                  clf.features(Xte))
    out["nearest_training_distance_quantiles"] = np.quantile(
        metrics.nearest_distances(samples, Xtr), QS).tolist()


def likelihood(flow, x, u_seed, out):
    """Held-out bits/dim (Hutchinson, one probe per image) and its standard error."""
    with Clock(out, "likelihood"):
        out["bits_per_dim"], out["bits_per_dim_stderr"] = bits(
            flow.log_prob(x, rng=np.random.default_rng(u_seed)))


def fit_unet(args, Xtr, ytr, Xte_nll, u_seed, clf, Xte, rng):
    """The class-conditional U-Net: training, likelihood, unguided and guided samples."""
    options = dict(UNET_OPTIONS, solver_steps=args.solver_steps, seed=args.seed, quiet=False)
    options.update(QUICK["unet"] if args.quick else {}, steps=args.unet_steps)
    out = {"options": _jsonable(options)}
    print(f"U-Net: {options['steps']} steps of {options['batch_size']} ...", flush=True)
    with Clock(out, "train"):
        flow = Flow(**options).fit(Xtr, ytr)
    out["parameters"] = int(flow.model_.num_params)
    likelihood(flow, Xte_nll, u_seed, out)
    print(f"U-Net: held-out bits/dim {out['bits_per_dim']:.3f} +- "
          f"{out['bits_per_dim_stderr']:.3f}", flush=True)
    with Clock(out, "sample"):
        samples = quantize(flow.sample(args.n_samples, rng=rng))  # unguided: the null label
    judge_samples(samples, clf, Xtr, Xte, out)
    print(f"U-Net: Frechet distance of {args.n_samples} unguided samples "
          f"{out['frechet_samples_vs_held_out']:.1f}", flush=True)
    by_w, shares = {}, {}
    with Clock(out, "guided_sample"):
        labels = np.repeat(np.arange(10), args.n_per_class)
        for w in GUIDANCE:
            x = quantize(flow.sample(labels.size, rng=rng, y=labels, guidance=w))
            correct = clf.predict(x) == labels
            by_w[w] = x
            shares[w] = [float(np.mean(correct[labels == k])) for k in range(10)]
            print(f"  U-Net, w = {w:g}: classified as asked {np.mean(correct):.3f}", flush=True)
    out["share_classified_as_asked"] = {
        str(w): {"per_class": s, "mean": float(np.mean(s))} for w, s in shares.items()}
    best_w = max(shares, key=lambda w: np.mean(shares[w]))
    out["best_guidance"] = best_w
    out["best_share_classified_as_asked"] = float(np.mean(shares[best_w]))
    return flow, samples, by_w, labels, out


def fit_mlp(args, Xtr, Xte_nll, u_seed, clf, Xte, rng):
    """The unconditional MLP of the data defaults: training, likelihood, samples."""
    options = dict(MLP_OPTIONS, solver_steps=args.solver_steps, seed=args.seed, quiet=False)
    options.update(QUICK["mlp"] if args.quick else {})
    out = {"options": _jsonable({**DATA_DEFAULTS, **options})}
    print(f"MLP: {options['steps']} steps of "
          f"{options.get('batch_size', DATA_DEFAULTS['batch_size'])} ...", flush=True)
    with Clock(out, "train"):
        flow = Flow(**options).fit(Xtr)
    out["parameters"] = int(flow.model_.num_params)
    likelihood(flow, Xte_nll, u_seed, out)
    with Clock(out, "sample"):
        samples = quantize(flow.sample(args.n_samples, rng=rng))
    judge_samples(samples, clf, Xtr, Xte, out)
    print(f"MLP: held-out bits/dim {out['bits_per_dim']:.3f} +- {out['bits_per_dim_stderr']:.3f}, "
          f"Frechet distance {out['frechet_samples_vs_held_out']:.1f}", flush=True)
    return samples, out


def print_table(results):
    """The networks side by side, with the baselines."""
    nets = results["networks"]
    names = [n for n in ("unet", "mlp") if n in nets]
    rows = [("held-out bits/dim", "bits_per_dim", "{:.3f}"),
            ("  its standard error", "bits_per_dim_stderr", "{:.3f}"),
            ("Frechet distance, samples vs held out", "frechet_samples_vs_held_out", "{:.1f}"),
            ("nearest-training distance, median", None, "{:.0f}"),
            ("training wall s", "train_seconds", "{:.0f}"),
            ("training CPU s", "train_cpu_seconds", "{:.0f}")]
    print(f"{'':40s}" + "".join(f"{n:>10s}" for n in names))
    for label, key, fmt in rows:
        cells = [nets[n]["nearest_training_distance_quantiles"][2] if key is None
                 else nets[n][key] for n in names]
        print(f"{label:40s}" + "".join(f"{fmt.format(c):>10s}" for c in cells))
    unet = nets["unet"]
    print(f"U-Net guided samples classified as asked: {unet['best_share_classified_as_asked']:.3f} "
          f"at w = {unet['best_guidance']:g}")
    print(f"classifier held-out accuracy {results['classifier_held_out_accuracy']:.4f}; "
          f"one Gaussian {results['gaussian_bits_per_dim']:.3f} bits/dim; Frechet floor "
          f"(training vs held out) {results['frechet_training_vs_held_out_floor']:.1f}; "
          f"held-out images' median nearest-training distance "
          f"{results['held_out_nearest_training_distance_quantiles'][2]:.0f}")


def main(argv=None):
    args = parse_args(argv)
    args.folder = _common.output_folder(args.out, "mnist")
    draw = _common.pictures()
    rng = np.random.default_rng(args.seed)
    total = {}
    start = time.perf_counter(), time.process_time()

    X, y = load(args)
    train, test = split(X.shape[0], args.seed)
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    results = {"data": args.images or "npflow.datasets.load_mnist_sample()",
               "n_train": int(len(train)), "n_held_out": int(len(test)),
               "n_likelihood": min(args.n_likelihood, len(test)),
               "solver": f"rk4, {args.solver_steps} steps", "guidance_weights": list(GUIDANCE)}
    u_seed = args.seed + 1  # one fixed dequantization of the held-out images for every model
    Xte_nll = Xte[:results["n_likelihood"]]

    # --- the classifier that judges samples ---
    net_options = dict(CLASSIFIER, **(QUICK["classifier"] if args.quick else {}))
    fit_options = dict(CLASSIFIER_FIT, **(QUICK["classifier_fit"] if args.quick else {}))
    # as many steps as 4,000 images take (fewer epochs of a larger file), at least 2 epochs
    fit_options["epochs"] = max(2, fit_options["epochs"] * 4000 // len(train))
    with Clock(results, "classifier"):
        clf = Classifier(D, 10, **net_options, rng=np.random.default_rng(args.seed))
        clf.fit(Xtr, ytr, rng, **fit_options)
    results["classifier"] = _jsonable(dict(net_options, **fit_options))
    results["classifier_held_out_accuracy"] = clf.accuracy(Xte, yte)
    print(f"classifier held-out accuracy {results['classifier_held_out_accuracy']:.4f}")

    # --- baselines: one Gaussian's likelihood; the Frechet distance's floor; nearest images ---
    gauss = baselines.GaussianDensity().fit(Xtr + rng.random(Xtr.shape))
    x_nll_u = Xte_nll + np.random.default_rng(u_seed).random(Xte_nll.shape)
    results["gaussian_bits_per_dim"], results["gaussian_bits_per_dim_stderr"] = bits(
        gauss.log_prob(x_nll_u))
    results["frechet_training_vs_held_out_floor"] = metrics.frechet_distance(
        clf.features(Xtr), clf.features(Xte))
    results["held_out_nearest_training_distance_quantiles"] = np.quantile(
        metrics.nearest_distances(Xte, Xtr), QS).tolist()
    results["nearest_training_distance_quantile_levels"] = list(QS)
    print(f"one Gaussian: held-out bits/dim {results['gaussian_bits_per_dim']:.3f}; Frechet floor "
          f"{results['frechet_training_vs_held_out_floor']:.1f}", flush=True)

    # --- the networks ---
    nets = results["networks"] = {}
    flow, samples, by_w, labels, nets["unet"] = fit_unet(args, Xtr, ytr, Xte_nll, u_seed, clf,
                                                         Xte, rng)
    best_w = nets["unet"]["best_guidance"]
    np.save(os.path.join(args.folder, "samples.npy"), samples.astype(np.uint8))
    np.save(os.path.join(args.folder, "conditional_samples.npy"), by_w[best_w].astype(np.uint8))
    np.save(os.path.join(args.folder, "conditional_labels.npy"), labels)
    if not args.skip_mlp:
        mlp_samples, nets["mlp"] = fit_mlp(args, Xtr, Xte_nll, u_seed, clf, Xte, rng)
        np.save(os.path.join(args.folder, "mlp_samples.npy"), mlp_samples.astype(np.uint8))
        results["frechet_ratio_unet_to_mlp"] = (nets["unet"]["frechet_samples_vs_held_out"]
                                                / nets["mlp"]["frechet_samples_vs_held_out"])
    if draw:
        with Clock(total, "pictures"):
            _pictures(flow, by_w, labels, best_w, samples, Xtr, args, rng)
    results["pictures_seconds"] = total.get("pictures_seconds", 0.0)
    results["total_seconds"] = time.perf_counter() - start[0]
    results["total_cpu_seconds"] = time.process_time() - start[1]
    print_table(results)
    with open(os.path.join(args.folder, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"done in {results['total_seconds']:.0f} s wall, "
          f"{results['total_cpu_seconds']:.0f} s CPU")
    return results


def _pictures(flow, by_w, labels, best_w, samples, Xtr, args, rng):
    """The class grid, the guidance sweep, the GIF, the samples above their nearest images."""
    grid = dict(shape=SHAPE, vmin=0, vmax=PIXEL_MAX)
    take = np.concatenate([np.flatnonzero(labels == k)[:10] for k in range(10)])
    fig = viz.image_grid(by_w[best_w][take], ncols=min(10, args.n_per_class),
                         row_labels=[str(k) for k in range(10)],
                         title=f"class-conditional samples, w = {best_w:g}", **grid)
    _common.save(fig, args.folder, "mnist_grid.png")
    two = min(2, args.n_per_class)
    sweep = np.concatenate([by_w[w][labels == k][:two] for w in GUIDANCE for k in range(10)])
    fig = viz.image_grid(sweep, ncols=10 * two, row_labels=[f"w={w:g}" for w in GUIDANCE],
                         title=f"guidance sweep: {two} samples of every class per row", **grid)
    _common.save(fig, args.folder, "mnist_guidance.png")
    _gif(flow, best_w, args, rng)
    nearest = np.argmin(couplings.squared_distances(samples[:10], Xtr), axis=1)  # (10,)
    shown = np.concatenate([samples[:10], Xtr[nearest]])
    fig = viz.image_grid(shown, ncols=min(10, len(samples)), row_labels=["sample", "nearest"],
                         title="unguided samples above their nearest training images", **grid)
    _common.save(fig, args.folder, "mnist_nearest.png")


def _gif(flow, w, args, rng):
    """Frames of 20 digits (two of each class) forming from noise: the guided field's rk4
    states mapped to data units."""
    field = GuidedField(flow.model_, np.tile(np.arange(10), 2), w)
    z0 = rng.standard_normal((20, D)).astype(flow.model_.dtype)
    sol = solvers.solve(field, z0, "rk4", 2 * args.solver_steps, return_trajectory=True)
    frames = np.stack([flow.transform_.inverse(z.astype(np.float64)) for z in sol.trajectory])
    path = os.path.join(args.folder, "mnist_flow.gif")
    _common.close(viz.animate_images(np.clip(frames, 0, PIXEL_MAX + 1), path, shape=SHAPE,
                                     ncols=10, times=sol.times, vmin=0, vmax=PIXEL_MAX + 1), path)


def _jsonable(options):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


if __name__ == "__main__":
    main()
