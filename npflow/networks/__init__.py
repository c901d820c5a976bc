"""Velocity-field networks for images.

:mod:`npflow.networks.unet` holds the convolutional U-Net ``v(x, t, y)`` and
:mod:`npflow.networks.layers` the image layers it is built from (convolution, group norm, SiLU,
up-sampling, residual block), each with its forward and backward rule side by side. The MLP
velocity field is :class:`npflow.nn.MLP`, in :mod:`npflow.nn`. Both take and return flat rows
``(n, d)`` and offer ``dim``, ``dtype``, ``n_classes``, ``params``, ``grads``, ``num_params``,
``config()``, ``forward``, ``forward_train``, ``backward`` (which returns ``dL/dx``) and
``torch_state()``; for the likelihood's divergence the MLP offers Jacobian-vector products
(``MLP.jvp``), the U-Net vector-Jacobian products (``UNet.vjp``).
"""
