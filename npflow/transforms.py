"""The explicit, invertible, stored map between data units ``x`` and the network's space ``z``.

The flow is trained on standardized points ``z = (x - mean) / scale`` (per feature), so its
density lives in ``z``. Densities in data units follow from the change of variables

    log p_x(x) = log p_z(z) + log |det dz/dx| = log p_z(z) - sum_j log scale_j,

which :meth:`Standardize.log_abs_det` supplies. The transform is stored with the model
(:meth:`Standardize.to_dict`), so samples and likelihoods are always reported in data units.

Integer-valued data (pixel intensities, counts) have no density; they are *dequantized*:
``x + u``, ``u ~ U[0, 1)^d``. The continuous log-likelihood of ``x + u`` is a lower bound on the
discrete log-likelihood of ``x`` (Theis, van den Oord and Bethge 2016, "A note on the evaluation
of generative models", Sec. 3.1), and :func:`bits_per_dim` turns it into the usual figure.
"""
import math
from dataclasses import dataclass

import numpy as np

from . import _checks
from .data import DataError, check_array, row_chunks

DEQUANTIZE_MEAN = 0.5  # E[u] for u ~ U[0, 1)
DEQUANTIZE_VAR = 1.0 / 12.0  # Var[u] for u ~ U[0, 1)


@dataclass(frozen=True, eq=False)
class Standardize:
    """Per-feature affine map ``z = (x - mean) / scale`` between data and network space.

    Attributes
    ----------
    mean : (d,) float64 ndarray
    scale : (d,) float64 ndarray, every entry finite and > 0
    dequantize : bool
        Whether the statistics are those of ``x + u``, ``u ~ U[0, 1)``, and training points are
        to be dequantized with :meth:`dequantized`.
    """

    mean: np.ndarray
    scale: np.ndarray
    dequantize: bool = False

    def __post_init__(self):
        mean = np.array(self.mean, dtype=np.float64)
        scale = np.array(self.scale, dtype=np.float64)
        if mean.ndim != 1 or mean.size == 0 or scale.shape != mean.shape:
            raise ValueError(f"mean and scale must both have shape (d,) with d >= 1, got shapes "
                             f"{mean.shape} and {scale.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("mean must be finite and scale finite and > 0 in every feature")
        object.__setattr__(self, "dequantize", _checks.boolean(self.dequantize, "dequantize"))
        mean.setflags(write=False)
        scale.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "dequantize", bool(self.dequantize))

    @property
    def dim(self):
        """Number of features ``d``."""
        return self.mean.shape[0]

    @classmethod
    def fit(cls, x, dequantize=False, rows=None, pooled=False):
        """Per-feature mean and standard deviation of ``x``, in float64, one chunk at a time.

        The pass streams over row chunks (Chan, Golub and LeVeque's pairwise update of the sum of
        squared deviations), so it works on a memory-mapped array larger than memory. The standard
        deviation is the population one (``ddof=0``). A constant column (all values equal) gets
        scale 1, so it is only shifted.

        With ``dequantize=True`` the statistics are those of ``x + u``, ``u ~ U[0, 1)``
        independent of ``x``, in closed form (nothing is drawn): mean + 1/2, variance + 1/12.

        Parameters
        ----------
        x : (n, d) array_like
            Finite data, ``n >= 1``.
        dequantize : bool
        rows : (m,) int array, optional
            Fit on these rows of ``x`` only (a training split), read block by block.
        pooled : bool
            One mean and one scale for every feature, those of all entries together (the pixels
            of images: one global affine map keeps an image an image, where per-pixel scales
            would blow up the nearly constant border pixels).
        """
        x = check_array(x, "x", min_rows=1, finite=False)  # this pass finds NaN and infinity
        d = x.shape[1]
        chunks = row_chunks(x, None if rows is None else _check_rows(rows))
        count, mean, m2 = 0, np.zeros(d), np.zeros(d)  # running n, mean (d,), sum of squares (d,)
        low, high = np.full(d, np.inf), np.full(d, -np.inf)  # (d,) running min and max
        for chunk in chunks:
            chunk = chunk.astype(np.float64)  # (m, d)
            m, chunk_mean = len(chunk), chunk.mean(axis=0)
            delta = chunk_mean - mean
            m2 += ((chunk - chunk_mean) ** 2).sum(axis=0) + delta ** 2 * count * m / (count + m)
            mean += delta * m / (count + m)
            count += m
            low, high = np.minimum(low, chunk.min(axis=0)), np.maximum(high, chunk.max(axis=0))
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(m2))):
            raise DataError("x must be finite, found NaN or infinity (or values too large to "
                            "square in float64)")
        var = m2 / count
        if pooled:  # the mean and variance of all n d entries, from the per-feature ones
            var = np.full(d, np.mean(var + (mean - mean.mean()) ** 2))
            mean = np.full(d, mean.mean())
            low, high = np.full(d, low.min()), np.full(d, high.max())
        if dequantize:
            return cls(mean + DEQUANTIZE_MEAN, np.sqrt(var + DEQUANTIZE_VAR), True)
        return cls(mean, np.where(low == high, 1.0, np.sqrt(var)), False)

    @classmethod
    def identity(cls, d, dequantize=False):
        """The map ``z = x`` in ``d`` dimensions (mean 0, scale 1), dequantizing or not."""
        d = _checks.positive_int(d, "d")
        return cls(np.zeros(d), np.ones(d), dequantize)

    def forward(self, x):
        """Data to network space: ``z = (x - mean) / scale``; (n, d) -> (n, d), same float dtype."""
        x = _checks.points(x, "x", dim=self.dim)
        return (x - self.mean.astype(x.dtype, copy=False)) / self.scale.astype(x.dtype, copy=False)

    def inverse(self, z):
        """Network space to data: ``x = z * scale + mean``; (n, d) -> (n, d), same float dtype."""
        z = _checks.points(z, "z", dim=self.dim)
        return z * self.scale.astype(z.dtype, copy=False) + self.mean.astype(z.dtype, copy=False)

    def log_abs_det(self):
        """``log |det dz/dx| = -sum_j log scale_j``: ``log p_x(x) = log p_z(z) + log_abs_det()``."""
        return float(-np.sum(np.log(self.scale)))

    def dequantized(self, x, rng):
        """Return ``x + u`` with fresh ``u ~ U[0, 1)`` of the same shape and float dtype.

        Theis, van den Oord and Bethge (2016), Sec. 3.1: a density fitted to ``x + u`` gives a
        lower bound on the discrete log-likelihood of the integer data ``x``.

        Parameters
        ----------
        x : (n, d) array_like
            Data in data units (integer-valued).
        rng : numpy.random.Generator
        """
        if not self.dequantize:
            raise ValueError("dequantized() needs a transform fitted with dequantize=True "
                             "(--dequantize); this one was not")
        x = _checks.points(x, "x", dim=self.dim)
        rng = _checks.generator(rng)
        return x + rng.random(x.shape, dtype=x.dtype)  # (n, d)

    def to_dict(self):
        """JSON-safe description: ``{"mean": [...], "scale": [...], "dequantize": bool}``."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "dequantize": self.dequantize}

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict`; raises ``ValueError`` (one line) on a malformed dict."""
        if not isinstance(d, dict) or set(d) != {"mean", "scale", "dequantize"}:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"a Standardize dict has exactly the keys dequantize, mean, scale; "
                             f"got {keys}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            scale = np.asarray(d["scale"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"Standardize mean and scale must be lists of numbers "
                             f"({err})") from None
        try:
            return cls(mean, scale, d["dequantize"])
        except TypeError as err:
            raise ValueError(str(err)) from None


def bits_per_dim(nll_nats, d):
    """Negative log-likelihood per dimension in bits: ``nll / (d ln 2)``.

    Parameters
    ----------
    nll_nats : float
        Mean negative log-likelihood of one point, in nats, in data units (for dequantized
        8-bit data, of ``x + u`` with ``x`` in ``0 .. 255``: the usual bits/dim figure).
    d : int
        Dimension of a point.
    """
    nll_nats = _checks.finite_float(nll_nats, "nll_nats")
    d = _checks.positive_int(d, "d")
    return nll_nats / (d * math.log(2.0))


def _check_rows(rows):
    """Row indices as a non-empty 1-D int64 array."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or rows.size == 0:
        raise ValueError(f"rows must be a non-empty 1-D array of row indices, got shape "
                         f"{rows.shape}")
    return rows
