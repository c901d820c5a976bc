"""Optimizers over one flat parameter array: Adam, AdamW, clipping, schedules, EMA.

Every function here updates a flat ``params`` array in place (``MLP.params``) from a matching
flat ``grads`` array, so a whole network is updated with a few vectorized operations.
"""
import math
from dataclasses import dataclass

import numpy as np

from . import _checks


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1), with PyTorch's defaults and conventions.

    At step ``k = 1, 2, ...`` with gradient ``g_k`` (plus ``weight_decay * theta`` when the decay
    is coupled, as in ``torch.optim.Adam``)::

        m_k     = b1 m_{k-1} + (1 - b1) g_k
        v_k     = b2 v_{k-1} + (1 - b2) g_k^2
        mhat_k  = m_k / (1 - b1^k),   vhat_k = v_k / (1 - b2^k)        (bias correction)
        theta_k = theta_{k-1} - lr mhat_k / (sqrt(vhat_k) + eps)

    Parameters
    ----------
    params : (P,) float ndarray
        The flat parameter array, updated in place.
    lr : float
        Learning rate (overridable per step, for schedules).
    betas : (float, float)
        ``(b1, b2)``, the decay rates of the first and second moment estimates.
    eps : float
        Added to ``sqrt(vhat)`` for numerical stability.
    weight_decay : float
        L2 penalty added to the gradient (coupled; see :class:`AdamW` for the decoupled form).
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not isinstance(params, np.ndarray) or params.ndim != 1:
            raise TypeError("params must be a flat 1-D ndarray (e.g. MLP.params)")
        self.params = params
        self.lr = _checks.finite_float(lr, "lr", low=0)
        b1, b2 = betas
        self.b1 = _checks.finite_float(b1, "betas[0]", low=0, high=1, high_open=True)
        self.b2 = _checks.finite_float(b2, "betas[1]", low=0, high=1, high_open=True)
        self.eps = _checks.finite_float(eps, "eps", low=0)
        self.weight_decay = _checks.finite_float(weight_decay, "weight_decay", low=0)
        self.step_count = 0
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self._tmp = np.empty_like(params)

    def step(self, grads, lr=None):
        """Apply one update to ``params`` in place from ``grads`` (P,); returns nothing."""
        if grads.shape != self.params.shape:
            raise ValueError(f"grads must have shape {self.params.shape} like params, "
                             f"got {grads.shape}")
        lr = self.lr if lr is None else lr
        self.step_count += 1
        k, b1, b2, tmp = self.step_count, self.b1, self.b2, self._tmp
        if self.weight_decay and self.decoupled:
            self.params *= 1 - lr * self.weight_decay  # theta <- theta (1 - lr lambda)
        elif self.weight_decay:
            grads = grads + self.weight_decay * self.params  # g <- g + lambda theta
        # Each line below is one in-place pass over the P entries, with no temporary arrays:
        # on a large net the cost of a step is the number of passes.
        self.m *= b1  # m <- b1 m + (1 - b1) g
        np.multiply(grads, 1 - b1, out=tmp)
        self.m += tmp
        self.v *= b2  # v <- b2 v + (1 - b2) g^2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1 - b2
        self.v += tmp
        # theta <- theta - lr mhat / (sqrt(vhat) + eps) with mhat = m / c1, vhat = v / c2^2,
        # c1 = 1 - b1^k, c2 = sqrt(1 - b2^k); written [lr c2 / c1] m / (sqrt(v) + eps c2) so the
        # bias corrections cost two scalars instead of a pass.
        c1, c2 = 1 - b1 ** k, math.sqrt(1 - b2 ** k)
        np.sqrt(self.v, out=tmp)
        tmp += self.eps * c2
        np.divide(self.m, tmp, out=tmp)
        tmp *= lr * c2 / c1
        self.params -= tmp

    def state_dict(self):
        """The optimizer state as arrays (checkpoint-friendly, no pickle)."""
        return {"m": self.m.copy(), "v": self.v.copy(), "step_count": np.int64(self.step_count)}

    def load_state_dict(self, state):
        """Restore a state produced by :meth:`state_dict`."""
        for key in ("m", "v"):
            if np.shape(state[key]) != self.params.shape:
                raise ValueError(f"optimizer state {key!r} must have shape {self.params.shape}, "
                                 f"got {np.shape(state[key])}")
        self.m[...] = state["m"]
        self.v[...] = state["v"]
        self.step_count = int(state["step_count"])


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019, Algorithm 2): Adam with *decoupled* weight decay.

    Before the Adam update, ``theta <- theta (1 - lr lambda)``; the decay never enters ``m`` or
    ``v``. Default ``weight_decay = 0.01`` as in ``torch.optim.AdamW``.
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm(grads, max_norm):
    """Rescale ``grads`` in place so that its global 2-norm is at most ``max_norm``.

    ``g <- g * min(1, max_norm / (||g|| + 1e-6))`` (as ``torch.nn.utils.clip_grad_norm_``).

    Returns
    -------
    float
        The norm before clipping (useful to log).
    """
    max_norm = _checks.finite_float(max_norm, "max_norm", low=0, low_open=True)
    if not isinstance(grads, np.ndarray) or grads.ndim != 1:
        raise TypeError("grads must be a flat 1-D ndarray (e.g. MLP.grads)")
    norm = float(np.sqrt(np.dot(grads, grads)))
    if norm > max_norm:
        grads *= max_norm / (norm + 1e-6)
    return norm


# ----------------------------------------------------------------------------------------------
# Learning-rate schedules: callables step (0-based) -> learning rate.
#
# Steps are k = 0 .. K - 1 with K = total_steps and W = warmup_steps. Warm-up rises strictly,
# lr (k + 1) / W, and reaches the peak lr at step P = W - 1 (P = 0 without warm-up); the decay
# starts from that same step, p = (k - P) / (K - P), so the peak is taken exactly once and the last
# step K - 1 still has p < 1 (a rate above final_lr); final_lr is reached at k = K.
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConstantLR:
    """``lr_k = lr``."""

    lr: float

    def __call__(self, step):
        return self.lr


@dataclass(frozen=True)
class WarmupCosineLR:
    """Linear warm-up, then cosine decay (Loshchilov & Hutter 2017, SGDR eq. 5, one cycle).

    ``lr_k = lr (k + 1) / W`` for ``k < P = max(W - 1, 0)``; then with ``p = (k - P) / (K - P)``
    clipped to [0, 1]: ``lr_k = lr_min + (lr - lr_min) (1 + cos(pi p)) / 2``, so ``lr_P = lr`` is
    the only peak. ``K = total_steps``, ``W = warmup_steps``, ``lr_min = final_lr``.
    """

    lr: float
    total_steps: int
    warmup_steps: int = 0
    final_lr: float = 0.0

    def __call__(self, step):
        p = _decay_progress(self, step)
        if p is None:
            return self.lr * (step + 1) / self.warmup_steps
        return self.final_lr + (self.lr - self.final_lr) * 0.5 * (1 + math.cos(math.pi * p))


@dataclass(frozen=True)
class WarmupLinearLR:
    """Linear warm-up to ``lr`` over ``W`` steps, then linear decay to ``final_lr`` at step ``K``.

    ``lr_k = lr (k + 1) / W`` for ``k < P = max(W - 1, 0)``; then ``lr_k = lr + (final_lr - lr) p``
    with ``p = (k - P) / (K - P)`` clipped to [0, 1]: the warm-up's last step is the one peak.
    """

    lr: float
    total_steps: int
    warmup_steps: int = 0
    final_lr: float = 0.0

    def __call__(self, step):
        p = _decay_progress(self, step)
        if p is None:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr + (self.final_lr - self.lr) * p


def _decay_progress(schedule, step):
    """None before the peak step ``P = max(W - 1, 0)``, else ``p = (k - P) / (K - P)`` in [0, 1]."""
    peak = max(schedule.warmup_steps - 1, 0)
    if step < peak:
        return None
    return min(1.0, (step - peak) / max(1, schedule.total_steps - peak))


SCHEDULES = ("constant", "cosine", "linear")


def make_schedule(name, lr, total_steps, warmup_steps=0, final_lr=0.0):
    """Build a schedule by name: ``"constant"``, ``"cosine"`` (warm-up + cosine) or ``"linear"``.

    ``"constant"`` has no warm-up (``warmup_steps`` is only checked).
    """
    _checks.choice(name, "schedule", SCHEDULES)
    lr = _checks.finite_float(lr, "lr", low=0, low_open=True)
    total_steps = _checks.positive_int(total_steps, "total_steps")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if warmup_steps > total_steps:
        raise ValueError(f"warmup_steps must be <= total_steps ({total_steps}), got {warmup_steps}")
    final_lr = _checks.finite_float(final_lr, "final_lr", low=0)
    if name == "constant":
        return ConstantLR(lr)
    cls = WarmupCosineLR if name == "cosine" else WarmupLinearLR
    return cls(lr, total_steps, warmup_steps, final_lr)


class EMA:
    """Exponential moving average of the parameters (Polyak averaging).

    ``theta_ema <- decay theta_ema + (1 - decay) theta`` after every optimizer step, starting from
    the initial parameters. Sampling with ``theta_ema`` averages out the last steps' noise, which
    sharpens the learned field.
    """

    def __init__(self, params, decay=0.999):
        self.decay = _checks.finite_float(decay, "decay", low=0, high=1)
        self.shadow = params.copy()
        self._tmp = np.empty_like(params)

    def update(self, params):
        """``shadow <- decay shadow + (1 - decay) params``, in place."""
        self.shadow *= self.decay
        np.multiply(params, 1 - self.decay, out=self._tmp)
        self.shadow += self._tmp
