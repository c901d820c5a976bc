"""Velocity fields ``v(x, t, y)``: every network npflow trains offers the same few methods.

Where networks live: the MLP is :class:`npflow.nn.MLP` (:mod:`npflow.nn`); the convolutional
U-Net for images is :class:`npflow.networks.unet.UNet`, built from the image layers of
:mod:`npflow.networks.layers` (convolution, group norm, SiLU, up-sampling, residual block), each
with its forward and backward rule side by side. :data:`ARCHITECTURES` maps a name to its class,
and that name is the ``"arch"`` of a checkpoint's model description. Adding an architecture is one module that offers the interface
below and one line in :data:`ARCHITECTURES`; the trainer, checkpoints, sampling, the likelihood,
guidance, reflow, :class:`npflow.Flow` and the command line then take it as they take the MLP.

The interface (nothing else is used; callers ask whether an optional method exists, never
which class a field is):

==============================================  ================================================
``dim``, ``dtype``, ``n_classes``               rows of ``d`` numbers (an image is flattened),
                                                float32 or float64, classes (0: unconditional;
                                                label ``n_classes`` is the learned null class)
``params``, ``grads``                           one flat buffer each, (P,): Adam, the EMA and
                                                checkpoints see nothing else
``forward(x, t, y=None, work=None)``            ``v`` (n, d); ``work`` a reused workspace
``forward_train(x, t, y=None, work=None)``      ``(v, cache)`` for ``backward``
``backward(cache, dv, work=None)``              writes ``grads``, returns ``dL/dx`` (n, d)
``workspace()``                                 a fresh workspace of reused arrays (sampling)
``vjp(x, t, y=None, *, dv)``                    ``(v, dv_k^T dv/dx)``: the likelihood's reverse
                                                mode (``dv`` (k, n, d))
``jvp(x, t, y=None, *, dx)`` (optional)         ``(v, (dv/dx) dx_k)``: forward mode, preferred
                                                by the likelihood where it exists (the MLP;
                                                the U-Net has only ``vjp``)
``config()``                                    the constructor's arguments, JSON
``count_params(description)`` (classmethod)     checks a description, returns P without
                                                allocating anything (checkpoint validation)
``memory(batch_size)``                          bytes a training step needs
==============================================  ================================================
"""
import numpy as np

from ..nn import MLP
from .unet import UNet

ARCHITECTURES = {"mlp": MLP, "unet": UNet}


def architecture(description):
    """The class of a model description (``"arch"``; descriptions before it are MLPs)."""
    name = description.get("arch", "mlp")
    if name not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(sorted(ARCHITECTURES))}, got {name!r}")
    return ARCHITECTURES[name]


def arguments(description):
    """The constructor's keyword arguments of a description (without ``"arch"``)."""
    kwargs = {key: value for key, value in description.items() if key != "arch"}
    kwargs["dtype"] = np.dtype(kwargs.get("dtype", "float32")).type
    return kwargs


def describe(net):
    """A network's description: ``{"arch": name, **net.config()}`` (stored in checkpoints)."""
    return {"arch": net.arch, **net.config()}


def build(description, rng):
    """The network of ``description`` (from :func:`describe`), its weights drawn from ``rng``."""
    return architecture(description)(**arguments(description), rng=rng)


def count_params(description):
    """Check ``description`` and return its number of parameters, allocating nothing."""
    return architecture(description).count_params(arguments(description))
