"""Classifier-free guidance for a class-conditional velocity field (Ho and Salimans 2022).

One network learns both the conditional field ``v(x, t, y)`` and the unconditional one
``v(x, t, null)``: during training each label is replaced by the null label with probability
``label_dropout`` (:class:`~npflow.train.TrainConfig`). At sampling time the two are mixed::

    v_w(x, t) = (1 - w) v(x, t, null) + w v(x, t, y)
              = v(x, t, null) + w (v(x, t, y) - v(x, t, null))

``w = 0`` is the unconditional field, ``w = 1`` the purely conditional one, ``w > 1`` extrapolates
away from the unconditional field and sharpens the class (fewer samples between classes, less
diversity inside one).

Ho and Salimans (2022, eq. 6) write the same mix as ``(1 + w') v_cond - w' v_uncond``, i.e.
``w' = w - 1``: their ``w' = 0`` is our ``w = 1``. For flow matching the velocity plays the role
of their noise prediction (both are affine in the score for Gaussian paths); Zheng et al. (2023,
"Guided Flows") apply the same mix to flow matching.

References
----------
Ho, Salimans. Classifier-free diffusion guidance. arXiv 2207.12598, 2022.
Zheng, Lipman, Shaul, Chen, Nickel, Le. Guided flows for generative modeling and decision
making. arXiv 2312.13927, 2023.
"""
import numbers

import numpy as np

from . import _checks


class GuidedField:
    """The guided velocity ``v_w(x, t) = (1 - w) v(x, t, null) + w v(x, t, y)``, a plain field.

    It has the ``__call__(x, t)`` and ``jvp(x, t, *, dx)`` of an :class:`~npflow.nn.MLP`, so it goes
    to :func:`npflow.sampling.sample_flow` and :func:`npflow.likelihood.log_likelihood` unchanged.
    For ``w = 0`` or ``w = 1`` only the one field needed is evaluated.

    Parameters
    ----------
    model : MLP
        A class-conditional network (``model.n_classes >= 1``).
    label : int or (n,) array of int
        The requested class, in ``0 .. n_classes - 1``, for all points or one per point.
    guidance : float
        The weight ``w`` (finite; any sign, though ``w >= 0`` is the useful range).
    """

    def __init__(self, model, label, guidance=1.0):
        self.n_classes = getattr(model, "n_classes", 0)
        if not self.n_classes:
            raise ValueError("model must be class-conditional (trained with conditional=True), "
                             "got an unconditional network")
        self.model = model
        self.dim, self.dtype = model.dim, model.dtype
        self.label = _check_label(label, self.n_classes)
        self.guidance = _checks.finite_float(guidance, "guidance")
        # What the network can do, the guided field can do: a capability it lacks stays None.
        for name in ("workspace", "jvp", "vjp"):
            setattr(self, name, getattr(self, "_" + name) if getattr(model, name, None) else None)

    def _labels(self, n):
        """(conditional labels (n,), null labels (n,)) for a batch of n points."""
        if np.ndim(self.label) == 0:
            y = np.full(n, self.label, dtype=np.int64)
        elif self.label.shape != (n,):
            raise ValueError(f"label must have shape ({n},) to match x, got shape "
                             f"{self.label.shape}")
        else:
            y = self.label
        return y, np.full(n, self.n_classes, dtype=np.int64)

    def _mix(self, f, x):
        """``(1 - w) f(null, 1) + w f(y, 0)`` for ``f(labels, k)`` returning an array or a tuple
        of them (``k``: which of the two evaluations, so each can keep its own buffers)."""
        w = self.guidance
        y, null = self._labels(np.shape(x)[0])
        if w == 1.0:
            return f(y, 0)
        if w == 0.0:
            return f(null, 1)
        cond, uncond = f(y, 0), f(null, 1)
        if isinstance(cond, tuple):
            return tuple(u + w * (c - u) for c, u in zip(cond, uncond))
        return uncond + w * (cond - uncond)

    def __call__(self, x, t):
        """``v_w(x, t)``; x (n, d), t scalar or (n,) -> (n, d)."""
        return self.forward(x, t)

    def _workspace(self):
        """Two workspaces of the network: the conditional and the null evaluation each write into
        their own arrays, so the first survives the second (see :func:`npflow.sample_flow`)."""
        return self.model.workspace(), self.model.workspace()

    def forward(self, x, t, work=None):
        """``v_w(x, t)`` with the network's arrays in ``work`` (from :meth:`workspace`)."""
        if work is None:
            return self._mix(lambda labels, k: self.model.forward(x, t, labels), x)
        return self._mix(lambda labels, k: self.model.forward(x, t, labels, work=work[k]), x)

    def _jvp(self, x, t, *, dx):
        """``v_w`` and ``(dv_w/dx) dx_k``: the mix is linear, so its JVP is the mix of the JVPs.

        x (n, d), t scalar or (n,), dx (k, n, d) -> v (n, d), dv (k, n, d).
        """
        return self._mix(lambda labels, k: self.model.jvp(x, t, labels, dx=dx), x)

    def _vjp(self, x, t, *, dv):
        """``v_w`` and ``dv_k^T (dv_w/dx)``: the mix of the network's vector-Jacobian products.

        x (n, d), t scalar or (n,), dv (k, n, d) -> v (n, d), dx (k, n, d).
        """
        return self._mix(lambda labels, k: self.model.vjp(x, t, labels, dv=dv), x)


def _check_label(label, n_classes):
    """An int or an (n,) int array with values in 0 .. n_classes - 1 (the null label excluded)."""
    if isinstance(label, bool):
        raise TypeError(f"label must be an integer class or an array of them, got {label!r}")
    if isinstance(label, numbers.Integral):
        return int(_checks.classes([int(label)], n_classes, "label")[0])
    arr = np.asarray(label)
    if arr.dtype.kind in "US":  # a class name: only a model of a table has named classes
        raise _checks.OptionError(f"{{0}} must be a class in 0 .. {n_classes - 1} (this "
                                  f"model's classes have no names), got {_short(arr)}", "label")
    return _checks.classes(arr, n_classes, "label").astype(np.int64)


def _short(arr):
    """A label array as a short text: its one value, or its first values."""
    values = arr.ravel().tolist()
    if len(values) == 1:
        return repr(values[0])
    return repr(values) if len(values) <= 3 else f"{values[:3]}..."
