"""Velocity-field networks for images.

:mod:`npflow.networks.unet` holds the convolutional U-Net ``v(x, t, y)`` and
:mod:`npflow.networks.layers` the image layers it is built from (convolution, group norm, SiLU,
up-sampling, residual block), each with its forward and backward rule side by side. The MLP
velocity field is :class:`npflow.nn.MLP`. Both take and return flat rows ``(n, d)`` and offer
the same methods (``forward``, ``forward_train``, ``backward``, ``config``, ``params``,
``grads``).
"""
