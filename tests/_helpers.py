"""Helpers shared by the test files: loading a demo script, and central differences.

Pytest puts this folder on ``sys.path`` (the tests are not a package), so a test file does
``from _helpers import load_demo``.
"""
import importlib.util
import os
import sys

import numpy as np

DEMOS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos")


def load_demo(name, module_name=None):
    """Import ``demos/<name>.py`` as a fresh module (named ``module_name``, default ``name``).

    ``demos/`` is on ``sys.path`` while the script is imported, for the siblings it imports
    (``_common``, ``benchmark``, ``gmm_benchmark``), and taken off again afterwards.
    """
    spec = importlib.util.spec_from_file_location(module_name or name,
                                                  os.path.join(DEMOS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, DEMOS)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(DEMOS)
    return module


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
