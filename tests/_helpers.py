"""Helpers shared by the test files: loading a demo script, checking a PNG, and central
differences.

Pytest puts this folder on ``sys.path`` (the tests are not a package), so a test file does
``from _helpers import load_demo``.
"""
import importlib.util
import os
import sys

import numpy as np

DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_demo(name, module_name=None):
    """Import ``demos/<name>.py`` as a fresh module (named ``module_name``, default the file's).

    ``name`` may name a script in a subfolder: ``load_demo("experiments/ablation")``. The
    script's folder and ``demos/`` are on ``sys.path`` while it is imported, for the siblings it
    imports (``_common``, ``digits``, ``speed``, ``gmm_benchmark``), and ``sys.path`` is restored
    afterwards, also when the script added a folder itself.
    """
    path = os.path.join(DEMOS, *name.split("/")) + ".py"
    spec = importlib.util.spec_from_file_location(module_name or os.path.basename(name), path)
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    sys.path[:0] = list(dict.fromkeys([os.path.dirname(path), DEMOS]))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def assert_png(path):
    """``path`` is a PNG file (its magic bytes) of more than 1000 bytes: a picture was drawn."""
    assert os.path.getsize(path) > 1000, path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, path


def central_difference(f, array, step=1e-6):
    """d f / d array by central differences, perturbing ``array`` in place entry by entry."""
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + step
        up = f()
        array[idx] = old - step
        down = f()
        array[idx] = old
        grad[idx] = (up - down) / (2 * step)
    return grad
