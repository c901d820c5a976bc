"""Conditional probability paths: where a pair ``(x0, x1)`` is at time ``t`` and how fast it moves.

A path turns a source point ``x0`` (noise), a target point ``x1`` (data) and a time ``t`` into a
point ``xt`` on the way and the conditional velocity ``ut = d xt / dt`` that flow matching
regresses on. Paths draw no randomness: the times ``t`` and, for ``icfm``, the Gaussian noise
``eps`` are passed in by the caller, so every result is a deterministic function of the inputs.

Every path here is affine in ``(x0, x1)``::

    xt = alpha_t x1 + sigma_t x0,        ut = d_alpha_t x1 + d_sigma_t x0

(Lipman et al. 2024, "Flow Matching Guide and Code", Sec. 4.8, eqs. 4.50 and 4.53), where the
pair ``(alpha_t, sigma_t)`` is a *scheduler*. One class, :class:`AffinePath`, computes this;
each named path is it with one scheduler, as in the Guide's ``flow_matching`` library (whose
``CondOTProbPath`` is its affine path with the conditional-OT scheduler)::

    name     class                    scheduler            alpha_t          sigma_t
    linear   LinearPath(AffinePath)   LinearScheduler      t                1 - t
    lipman   LipmanPath(AffinePath)   LipmanScheduler      t                1 - (1 - sigma_min) t
    vp       AffinePath               CosineScheduler      sin(pi t / 2)    cos(pi t / 2)

``icfm`` (:class:`ICFMPath`) is the linear path plus ``sigma * eps`` with a constant ``sigma``,
which moves ``xt`` but not ``ut``.

References
----------
Lipman, Chen, Ben-Hamu, Nickel, Le (2023). Flow Matching for Generative Modeling. ICLR.
Liu, Gong, Liu (2023). Flow Straight and Fast: Learning to Generate and Transfer Data with
    Rectified Flow. ICLR.
Tong, Fatras, Malkin, Huguet, Zhang, Rector-Brooks, Wolf, Bengio (2024). Improving and
    generalizing flow-based generative models with minibatch optimal transport. TMLR
    (arXiv 2302.00482).
Lipman, Havasi, Holderrieth, Shaul, Le, Karrer, Chen, Lopez-Paz, Ben-Hamu, Gat (2024). Flow
    Matching Guide and Code. arXiv 2412.06264.
"""
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from . import _checks

PATHS = ("linear", "lipman", "icfm", "vp")
DEFAULT_SIGMA = 0.1  # sigma_min for lipman, noise level for icfm


@dataclass(frozen=True)
class PathSample:
    """One batch of points on a conditional path.

    Attributes
    ----------
    x0 : (n, d) ndarray
        Source points (time 0).
    x1 : (n, d) ndarray
        Target points (time 1).
    t : (n, 1) ndarray
        Times in ``[0, 1]``.
    xt : (n, d) ndarray
        Points on the path at time ``t``.
    ut : (n, d) ndarray
        Conditional velocity ``d xt / dt`` at time ``t`` (the regression target).
    """

    x0: np.ndarray
    x1: np.ndarray
    t: np.ndarray
    xt: np.ndarray
    ut: np.ndarray


# --- schedulers: alpha_t, sigma_t and their time derivatives -------------------------------
# Each scheduler has four methods alpha(t), sigma(t), d_alpha(t), d_sigma(t). They take times
# ``t`` of any shape (in practice (n, 1)) and return an array of the same shape and floating
# dtype. They satisfy the boundary conditions of Guide eq. 4.51: alpha_0 = 0, alpha_1 = 1,
# sigma_0 = 1, sigma_1 = 0 (sigma_min for LipmanScheduler), d_alpha_t > 0 > d_sigma_t.

def _float_time(t):
    """``t`` as a floating array, keeping its dtype when it already is one (float32 stays)."""
    t = np.asarray(t)
    return t if np.issubdtype(t.dtype, np.floating) else t.astype(np.float64)


@dataclass(frozen=True)
class LinearScheduler:
    """Conditional-OT scheduler ``alpha_t = t``, ``sigma_t = 1 - t`` (Guide eq. 4.48).

    The straight line ``xt = t x1 + (1 - t) x0`` of rectified flow (Liu et al. 2023, Sec. 2) and
    of I-CFM with ``sigma = 0`` (Tong et al. 2024, Table 1); ``d_alpha_t = 1``, ``d_sigma_t = -1``.
    """

    def alpha(self, t):
        return np.array(_float_time(t))  # a copy

    def sigma(self, t):
        return 1 - _float_time(t)

    def d_alpha(self, t):
        return np.ones_like(_float_time(t))

    def d_sigma(self, t):
        return -np.ones_like(_float_time(t))


@dataclass(frozen=True)
class LipmanScheduler:
    """OT path with a floor: ``alpha_t = t``, ``sigma_t = 1 - (1 - sigma_min) t``.

    Lipman et al. 2023, eq. 20 (``mu_t = t x1``, ``sigma_t = 1 - (1 - sigma_min) t``);
    ``d_alpha_t = 1``, ``d_sigma_t = -(1 - sigma_min)``. ``sigma_1 = sigma_min``, so at ``t = 1``
    the path sits at ``x1 + sigma_min x0``, not at ``x1``.

    Parameters
    ----------
    sigma_min : float in [0, 1)
    """

    sigma_min: float = DEFAULT_SIGMA

    def __post_init__(self):
        value = _checks.finite_float(self.sigma_min, "sigma_min", low=0, high=1, high_open=True)
        object.__setattr__(self, "sigma_min", value)

    def alpha(self, t):
        return np.array(_float_time(t))  # a copy

    def sigma(self, t):
        return 1 - (1 - self.sigma_min) * _float_time(t)

    def d_alpha(self, t):
        return np.ones_like(_float_time(t))

    def d_sigma(self, t):
        return np.full_like(_float_time(t), -(1 - self.sigma_min))


@dataclass(frozen=True)
class CosineScheduler:
    """Variance-preserving cosine scheduler (the "vp" path).

    ``alpha_t = sin(pi t / 2)``, ``sigma_t = cos(pi t / 2)``, so ``alpha_t^2 + sigma_t^2 = 1``
    (Guide Sec. 4.8, the ``CosineScheduler`` of its Code 5); ``d_alpha_t = (pi / 2) sigma_t``,
    ``d_sigma_t = -(pi / 2) alpha_t``.
    """

    def alpha(self, t):
        return np.sin(0.5 * np.pi * _float_time(t))

    def sigma(self, t):
        return np.cos(0.5 * np.pi * _float_time(t))

    def d_alpha(self, t):
        return 0.5 * np.pi * np.cos(0.5 * np.pi * _float_time(t))

    def d_sigma(self, t):
        return -0.5 * np.pi * np.sin(0.5 * np.pi * _float_time(t))


# --- input checks shared by every path ---------------------------------------------------

def _inputs(x0, x1, t):
    """Validate ``x0, x1`` (n, d) and ``t``; return them in one floating dtype, ``t`` as (n, 1)."""
    x0 = _checks.points(x0, "x0")
    x1 = _checks.points(x1, "x1")
    if x1.shape != x0.shape:
        raise ValueError(f"x1 must have the same shape as x0 {x0.shape}, got shape {x1.shape}")
    dtype = np.result_type(x0.dtype, x1.dtype)
    t = _checks.times(t, x0.shape[0], name="t", dtype=dtype)
    if np.any(t < 0) or np.any(t > 1):
        raise ValueError(f"t must lie in [0, 1], got values in [{t.min()}, {t.max()}]")
    return x0.astype(dtype, copy=False), x1.astype(dtype, copy=False), t


def _no_noise(eps, name):
    if eps is not None:
        raise ValueError(f"eps must be None: the {name!r} path uses no noise "
                         "(needs_noise is False)")


# --- paths --------------------------------------------------------------------------------

def _affine(scheduler, x0, x1, t):
    """``xt = alpha_t x1 + sigma_t x0`` and ``ut = d_alpha_t x1 + d_sigma_t x0`` (Guide eqs. 4.50
    and 4.53) for checked ``x0, x1`` (n, d) and ``t`` (n, 1); returns a :class:`PathSample`."""
    xt = scheduler.alpha(t) * x1 + scheduler.sigma(t) * x0  # (n, d)
    ut = scheduler.d_alpha(t) * x1 + scheduler.d_sigma(t) * x0  # (n, d)
    return PathSample(x0=x0, x1=x1, t=t, xt=xt, ut=ut)


@dataclass(frozen=True)
class AffinePath:
    """General affine path ``xt = alpha_t x1 + sigma_t x0``, ``ut = d_alpha_t x1 + d_sigma_t x0``.

    Guide eqs. 4.50 (the conditional flow) and 4.53 (its velocity, the CFM target).

    Parameters
    ----------
    scheduler : object with ``alpha(t), sigma(t), d_alpha(t), d_sigma(t)``
        e.g. :class:`LinearScheduler`, :class:`LipmanScheduler`, :class:`CosineScheduler`.
    name : str
        Label used in logs and by :func:`make_path` (``"vp"`` for the cosine scheduler).
    """

    scheduler: object
    name: str = "affine"
    needs_noise: ClassVar[bool] = False

    def sample(self, x0, x1, t, eps=None):
        """Point and velocity on the path.

        Parameters
        ----------
        x0, x1 : (n, d) array_like
            Source and target points.
        t : float or (n,) or (n, 1) array_like
            Times in [0, 1].
        eps : None
            This path uses no noise.

        Returns
        -------
        PathSample
        """
        _no_noise(eps, self.name)
        return _affine(self.scheduler, *_inputs(x0, x1, t))


@dataclass(frozen=True)
class LinearPath(AffinePath):
    """Straight line from ``x0`` to ``x1`` (conditional OT, rectified flow, I-CFM with sigma 0).

    The affine path with :class:`LinearScheduler`: ``xt = (1 - t) x0 + t x1``, ``ut = x1 - x0``
    (Liu et al. 2023 Sec. 2, rectified flow; Guide eq. 4.48; Lipman et al. 2023 eq. 22-23 with
    ``sigma_min = 0``). Takes no arguments.
    """

    scheduler: LinearScheduler = field(default_factory=LinearScheduler, init=False, repr=False)
    name: str = field(default="linear", init=False, repr=False)


@dataclass(frozen=True)
class LipmanPath(AffinePath):
    """Lipman et al.'s OT conditional path with ``sigma_min``.

    The affine path with :class:`LipmanScheduler`: ``xt = (1 - (1 - sigma_min) t) x0 + t x1``
    (Lipman et al. 2023 eq. 22, the flow ``psi_t(x0)``) and ``ut = x1 - (1 - sigma_min) x0``
    (the target in eq. 23; eq. 21 evaluated at ``xt``). At ``t = 1``: ``xt = x1 + sigma_min x0``.

    Parameters
    ----------
    sigma_min : float in [0, 1)
    """

    sigma_min: float = DEFAULT_SIGMA
    scheduler: LipmanScheduler = field(init=False, repr=False)
    name: str = field(default="lipman", init=False, repr=False)

    def __post_init__(self):
        scheduler = LipmanScheduler(self.sigma_min)  # checks sigma_min
        object.__setattr__(self, "sigma_min", scheduler.sigma_min)
        object.__setattr__(self, "scheduler", scheduler)


@dataclass(frozen=True)
class ICFMPath:
    """Independent CFM: the straight line blurred by a constant Gaussian of std ``sigma``.

    ``xt = (1 - t) x0 + t x1 + sigma eps`` with ``eps ~ N(0, I)`` and ``ut = x1 - x0``
    (Tong et al. 2024, Table 1, I-CFM row: ``mu_t = t x1 + (1 - t) x0``, ``sigma_t = sigma``):
    the affine path with :class:`LinearScheduler` plus ``sigma eps``, which moves ``xt`` but not
    ``ut``. ``eps`` is drawn by the caller and must always be given.

    Parameters
    ----------
    sigma : float >= 0
    """

    sigma: float = DEFAULT_SIGMA
    name: ClassVar[str] = "icfm"
    needs_noise: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "sigma", _checks.finite_float(self.sigma, "sigma", low=0))

    def sample(self, x0, x1, t, eps=None):
        """Point and velocity on the path; ``x0, x1, t`` as in :meth:`AffinePath.sample`.

        Parameters
        ----------
        eps : (n, d) array_like
            Standard normal noise, drawn by the caller (e.g. ``rng.standard_normal(x0.shape)``).

        Returns
        -------
        PathSample
        """
        if eps is None:
            raise ValueError("eps is required by the 'icfm' path: pass standard normal noise "
                             "of shape (n, d), e.g. rng.standard_normal(x0.shape)")
        x0, x1, t = _inputs(x0, x1, t)
        eps = _checks.points(eps, "eps", dtype=x0.dtype)
        if eps.shape != x0.shape:
            raise ValueError(f"eps must have the same shape as x0 {x0.shape}, "
                             f"got shape {eps.shape}")
        mean = _affine(LinearScheduler(), x0, x1, t)  # mu_t and its velocity
        return PathSample(x0=x0, x1=x1, t=t, xt=mean.xt + self.sigma * eps, ut=mean.ut)


def make_path(name, sigma=DEFAULT_SIGMA):
    """Build the path called ``name``, one of ``PATHS``.

    Parameters
    ----------
    name : {"linear", "lipman", "icfm", "vp"}
        ``vp`` is the affine path with :class:`CosineScheduler`.
    sigma : float
        ``sigma_min`` for ``lipman``, the noise std for ``icfm`` (default 0.1 for both); not used
        by ``linear`` and ``vp``.
    """
    _checks.choice(name, "name", PATHS)
    if name == "linear":
        return LinearPath()
    if name == "lipman":
        return LipmanPath(sigma_min=sigma)
    if name == "icfm":
        return ICFMPath(sigma=sigma)
    return AffinePath(CosineScheduler(), name="vp")
