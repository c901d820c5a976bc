"""Helpers shared by the demo scripts: the output folder, training or loading a model, saving
pictures and printing what was measured.

The demos are scripts, not a package: each one does ``import _common``, which works because
Python puts the script's own folder first on ``sys.path``. Every demo computes and prints its
numbers with NumPy and npflow alone; matplotlib and Pillow (``pip install 'npflow[viz]'``) are
imported only to draw, and :func:`pictures` says whether they can be.
"""
import dataclasses
import importlib
import os
import time

import numpy as np

from npflow import checkpoint, datasets, likelihood, metrics, viz
from npflow.train import Trainer

HERE = os.path.dirname(os.path.abspath(__file__))
LOG_32 = float(np.log(32.0))  # entropy of the checkerboard: the best possible NLL, in nats


def output_folder(out, name):
    """Create and return the output folder: ``out``, or ``demos/output/<name>`` when None."""
    folder = os.path.join(HERE, "output", name) if out is None else out
    os.makedirs(folder, exist_ok=True)
    print(f"output folder: {os.path.abspath(folder)}")
    return folder


PICTURE_PACKAGES = {"matplotlib": "matplotlib", "PIL": "Pillow"}  # module -> what to install


def pictures():
    """True when matplotlib and Pillow import; otherwise print ONE line saying why, and False.

    A demo calls it once, at the start, and draws only when it returned True. When it does,
    pyplot is imported with the file-only Agg backend.
    """
    for module, package in PICTURE_PACKAGES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            print(f"pictures skipped: {package} is not installed (pip install 'npflow[viz]')")
            return False
    pyplot()
    return True


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend (the demos only write files)."""
    return viz.pyplot(for_files=True)


def save(fig, folder, name):
    """Write ``fig`` to the PNG ``folder/name``, close it, print its size; return the path.

    The PNG is stored with a 256-colour palette: about a third of the size of matplotlib's RGBA
    file and indistinguishable for these plots, which keeps the committed gallery small.
    """
    from PIL import Image  # only to draw: see pictures()

    path = os.path.join(folder, name)
    viz.save_figure(fig, path)
    pyplot().close(fig)
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MAXCOVERAGE)
    palette.save(path, optimize=True)
    print(f"  wrote {name:<28} {os.path.getsize(path) / 1024:7.1f} KB")
    return path


def close(fig, path):
    """Close a figure already written to ``path`` (an animation) and print the file's size."""
    pyplot().close(fig)
    print(f"  wrote {os.path.basename(path):<28} {os.path.getsize(path) / 1024:7.1f} KB")
    return path


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained (or loaded) model: EMA network, training losses, its config as a dict."""

    model: object
    losses: np.ndarray
    train_config: dict
    seconds: float


def train(config, out_file=None, label="", quiet=False):
    """Train ``config`` (a TrainConfig), optionally save the checkpoint; return a :class:`Run`."""
    start = time.perf_counter()
    trainer = Trainer(config)
    trainer.run(quiet=quiet)
    seconds = time.perf_counter() - start
    if out_file is not None:
        trainer.save(out_file)
    ckpt = trainer.to_checkpoint()
    name = f"{label}: " if label else ""
    print(f"{name}trained {config.source} -> {config.target} ({config.path}, {config.coupling} "
          f"coupling) for {config.steps} steps in {seconds:.1f} s, "
          f"final loss {np.mean(trainer.losses[-50:]):.4f}"
          + (f"; saved {out_file}" if out_file else ""))
    return Run(ckpt.model(ema=True), np.asarray(trainer.losses), ckpt.train_config, seconds)


def load(path):
    """Load a checkpoint written by ``npflow train`` or a demo; return a :class:`Run`."""
    ckpt = checkpoint.load(path)
    cfg = ckpt.train_config
    print(f"loaded {path}: {cfg['source']} -> {cfg['target']}, {ckpt.step} steps")
    return Run(ckpt.model(ema=True), np.asarray(ckpt.losses), cfg, 0.0)


def checkerboard_nll(model, n, steps, rng):
    """NLL in nats of ``n`` fresh checkerboard points, exact divergence, rk4 with ``steps`` steps.

    ``log p_1(x1) = log p_0(x0) - int_0^1 div v(x_t, t) dt`` (Chen et al. 2018, Thm. 1).
    """
    x1 = datasets.sample("checkerboard", n, rng).astype(model.dtype)
    ll = likelihood.log_likelihood(model, x1, method="rk4", steps=steps)
    return metrics.negative_log_likelihood(ll.log_prob.astype(np.float64))


def w2_floor(target, x1, rng, draws=5):
    """Mean W2 between ``draws`` fresh data sets and ``x1`` (n, 2): the score of a perfect model.

    W2 between two finite samples is far from 0 and noisy (mode counts differ between draws),
    so one draw can land well above or below its mean.
    """
    return float(np.mean([metrics.wasserstein2(datasets.sample(target, len(x1), rng), x1)
                          for _ in range(draws)]))


def report(title, rows):
    """Print ``title`` and aligned ``name  value`` lines; ``rows`` is a list of (name, text)."""
    print(title)
    width = max(len(name) for name, _ in rows)
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")


LOG_TICKS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1, 1.5, 2, 3, 4, 5, 7, 10)


def label_log_axis(ax):
    """Plain-number ticks (0.3, 0.5, 1, 2, ...) on a log y axis spanning one or two decades."""
    from matplotlib.ticker import FormatStrFormatter  # only to draw: see pictures()

    ax.minorticks_off()
    low, high = ax.get_ylim()
    ax.set_yticks([y for y in LOG_TICKS if low <= y <= high])
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
