"""Which classifier judges ``demos/mnist.py``: held-out accuracy of npflow's MLP classifier on the
demo's split of the bundled MNIST sample (4,000 training images, 1,000 held out, seed 0), with and
without random shifts of the training images and with per-pixel or one global standardization.

Prints one line per recipe: hidden widths, epochs, shift, standardization, held-out accuracy, CPU
seconds of the fit.

    PYTHONPATH=. nice python demos/experiments/mnist_classifier.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mnist as demo  # noqa: E402
from npflow import datasets  # noqa: E402
from npflow.classifier import Classifier  # noqa: E402

RECIPES = [  # (hidden, epochs, shift, standardize)
    ((256,), 40, 0, "feature"),
    ((512, 512), 60, 0, "feature"),
    ((256,), 40, 2, "feature"),
    ((256,), 40, 2, "global"),
    ((512, 512), 60, 1, "global"),
    ((512, 512), 60, 2, "global"),
]


def main():
    images, labels = datasets.load_mnist_sample()
    X = images.reshape(len(images), -1).astype(np.float64)
    train, test = demo.split(len(X), seed=0)
    print(f"{'hidden':>12s} {'epochs':>6s} {'shift':>5s} {'standardize':>11s} "
          f"{'accuracy':>8s} {'CPU s':>6s}")
    for hidden, epochs, shift, standardize in RECIPES:
        cpu = time.process_time()
        clf = Classifier(X.shape[1], 10, hidden=hidden, rng=np.random.default_rng(0))
        clf.fit(X[train], labels[train], np.random.default_rng(0), epochs=epochs, shift=shift,
                standardize=standardize, image_shape=demo.SHAPE)
        accuracy = clf.accuracy(X[test], labels[test])
        print(f"{str(hidden):>12s} {epochs:6d} {shift:5d} {standardize:>11s} {accuracy:8.4f} "
              f"{time.process_time() - cpu:6.1f}", flush=True)


if __name__ == "__main__":
    main()
