"""The U-Net velocity field ``v_theta(x, t, y)`` for images, with hand-written backprop.

A U-Net (Ronneberger et al. 2015) as diffusion and flow-matching models use it (Ho et al. 2020,
App. B; Dhariwal and Nichol 2021): an encoder of residual blocks that halves the image sides
level by level, a middle at the coarsest level, and a decoder that doubles them back, each of its
blocks reading the encoder's activation of the same size concatenated to its input (the skip
connections). Time enters every residual block as a per-channel offset computed from a
sinusoidal embedding of t; a class label, optionally, as a learned vector added to that
embedding, with a learned *null* label for classifier-free guidance (Ho and Salimans 2022).

The network takes and returns *flat rows* ``(n, c h w)`` like :class:`npflow.nn.MLP`, so the ODE
solvers, the loss and the likelihood, written for ``(n, d)`` points, use it unchanged; it
reshapes them to images ``(n, c, h, w)`` and to channels-last ``(n, h, w, c)`` inside (the
layout :mod:`npflow.networks.layers` computes in).
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from .. import _blas, _checks, nn
from . import layers


def _check_image_shape(image_shape, levels):
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"image_shape must be (channels, height, width), got {image_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be three positive sizes (channels, height, width), "
                         f"got {image_shape!r}")
    factor = 2 ** (levels - 1)
    if shape[1] % factor or shape[2] % factor:
        raise _checks.OptionError(f"{{0}} {shape}: height and width must be multiples of "
                                  f"{factor} for a U-Net of {levels} levels (one per entry of "
                                  f"{{1}}), which halves them {levels - 1} times", "image_shape",
                                  "multipliers")
    return shape


def _check_multipliers(multipliers):
    try:
        mult = tuple(multipliers)
    except TypeError:
        raise TypeError(
            f"multipliers must be a sequence of positive integers, got {multipliers!r}") from None
    if not mult:
        raise ValueError("multipliers must name at least one level, got an empty sequence")
    return tuple(_checks.positive_int(m, "multipliers entry") for m in mult)


def _held_blas_threads(method):
    """Run ``method`` with NumPy's OpenBLAS held to ``self.blas_threads`` threads (None: as it
    is); see :class:`UNet`."""
    @functools.wraps(method)
    def held(self, *args, **kwargs):
        if self.blas_threads is None:
            return method(self, *args, **kwargs)
        with _blas.limit(self.blas_threads):
            return method(self, *args, **kwargs)
    return held


@dataclass(frozen=True)
class UNetCache:
    """What :meth:`UNet.backward` needs from :meth:`UNet.forward_train`.

    Attributes
    ----------
    e : (n, C) sinusoidal time features.
    time : caches of the time MLP: ``z1`` (n, E), ``a1 = SiLU(z1)`` (n, E), ``emb`` (n, E) (with
        the label vector added), ``semb = SiLU(emb)`` (n, E).
    labels : (n,) int labels (``n_classes`` = null), or None.
    layers : dict layer name -> that layer's cache.
    """

    e: np.ndarray
    time: dict
    labels: np.ndarray
    layers: dict


class UNet:
    """Velocity field ``v_theta(x, t[, y])`` on images: a U-Net on flat rows ``(n, c h w)``.

    Layout, for ``L = len(multipliers)`` levels with ``C_i = channels * multipliers[i]`` channels
    and sides ``H / 2^i`` (every block below is a :class:`~npflow.networks.layers.ResBlock` that
    also reads ``semb``; ``[a, b]`` concatenates channels)::

        semb = SiLU(Linear2(SiLU(Linear1(sin/cos(t)))) [+ label_embedding(y)])   (n, E)
        h = conv_in(x)                           C = channels;  push h
        level i = 0 .. L-1:   `blocks` times:  h = Res(h) -> C_i;  push h
                              if i < L-1:      h = Conv3x3 stride 2 (h);  push h  (sides / 2)
        middle:               h = Res(h), h = Res(h)
        level i = L-1 .. 0:   `blocks + 1` times:  h = Res([h, pop]) -> C_i
                              if i > 0:        h = Conv3x3(Upsample(h))  (sides x 2; UpConv)
        v = conv_out(SiLU(GroupNorm(h)))         c channels

    This is the DDPM U-Net of Ho et al. (2020, App. B) without dropout and without
    self-attention, with a learned class embedding as in Dhariwal and Nichol (2021).

    Cost, for 28x28 images with the defaults (``demos/experiments/bench_unet.py``): 1.11 GFLOP
    of convolutions per image for a training step (forward and backward), a workspace of
    2019 MiB at batch 128; one float32 step at batch 128 took 2.1-2.2 s on one thread,
    1.56-1.57x the time of torch eager on the same weights (1.54-1.57x at batch 64).

    Threads: ``forward_train`` and ``backward`` (so ``forward`` and ``vjp`` too) hold NumPy's
    OpenBLAS to ``blas_threads`` = 1 thread (:mod:`npflow._blas`; None leaves it as set). The
    convolutions are hundreds of small products per step, and at each one OpenBLAS's threads
    wait for one another: on a 2-core machine shared with other jobs the 8x8 digits U-Net's
    step took 1139 ms of wall time with two threads against 120 ms with one at load 7-8, 106
    against 41 ms at load 2-3 (``bench_unet.py --compare-blas-threads``, its docstring).

    Parameters
    ----------
    image_shape : (c, h, w)
        Shape of one image; ``dim = c h w``. h and w must be multiples of ``2^(L-1)``.
    channels : int
        Base width C (the stem's output and the size of the sinusoidal features).
    multipliers : sequence of int
        ``C_i = channels * multipliers[i]`` per level; ``(1, 2, 2)`` with ``channels=32`` gives
        (32, 64, 64) on sides 28, 14, 7 for 28x28 images.
    blocks : int
        Residual blocks per level in the encoder (the decoder has one more).
    groups : int
        Groups of every :class:`~npflow.networks.layers.GroupNorm`; each ``C_i`` and C must be
        multiples of it.
    embed_dim : int, optional
        Width E of the time embedding; default ``4 * channels`` (Ho et al. 2020).
    time_scale : float
        Scale of t inside the sinusoidal features (see :class:`npflow.nn.SinusoidalEmbedding`).
    n_classes : int
        0 for ``v(x, t)``; K >= 1 for ``v(x, t, y)`` with labels 0 .. K, K the learned null.
    dtype : {np.float32, np.float64}
    rng : np.random.Generator
        Draws the initial weights (PyTorch's defaults for every layer).
    """

    arch = "unet"
    blas_threads = 1  # OpenBLAS threads in forward_train and backward; None leaves them as set

    def __init__(self, image_shape, channels=32, multipliers=(1, 2, 2), blocks=1, groups=8,
                 embed_dim=None, time_scale=1000.0, n_classes=0, dtype=np.float32, *, rng):
        _checks.generator(rng)
        self._configure(image_shape, channels, multipliers, blocks, groups, embed_dim,
                        time_scale, n_classes, dtype)
        self._allocate()
        for layer in self.layers.values():
            layer.init(rng)

    @classmethod
    def count_params(cls, description):
        """Check a description (``config()``'s keys) and return its number of parameters: the
        layers are laid out (:meth:`_build`), no weight is allocated."""
        net = cls.__new__(cls)
        net._configure(**description)
        return sum(math.prod(shape) for layer in net.layers.values() for _, shape in layer.shapes())

    def workspace(self):
        """A fresh :class:`npflow.nn.Workspace` for ``forward(..., work=...)`` (sampling)."""
        return nn.Workspace(self.dtype)

    def _configure(self, image_shape, channels=32, multipliers=(1, 2, 2), blocks=1, groups=8,
                   embed_dim=None, time_scale=1000.0, n_classes=0, dtype=np.float32):
        """Check the arguments and lay the layers out (:meth:`_build`), allocating nothing."""
        self.multipliers = _check_multipliers(multipliers)
        self.image_shape = _check_image_shape(image_shape, len(self.multipliers))
        self.channels = _checks.positive_int(channels, "channels")
        self.blocks = _checks.positive_int(blocks, "blocks")
        self.groups = _checks.positive_int(groups, "groups")
        self.embed_dim = (4 * self.channels if embed_dim is None
                          else _checks.positive_int(embed_dim, "embed_dim"))
        self.time_scale = _checks.finite_float(time_scale, "time_scale", low=0, low_open=True)
        self.n_classes = nn._check_n_classes(n_classes)
        self.dtype = nn.check_dtype(dtype)
        widths = [self.channels] + [self.channels * m for m in self.multipliers]
        if any(c % self.groups for c in widths):
            raise ValueError(f"groups ({self.groups}) must divide channels ({self.channels}) "
                             f"and every level's width {widths[1:]}")
        self.dim = math.prod(self.image_shape)
        self._build()

    # --- construction -------------------------------------------------------------------------
    def _build(self):
        """Create the layers in forward order: ``self.down``, ``self.mid``, ``self.up`` list the
        (kind, name) steps of the three paths; ``self.layers`` maps names to layers."""
        c_img, E, G = self.image_shape[0], self.embed_dim, self.groups
        self.embed = nn.SinusoidalEmbedding(self.channels, self.time_scale)
        self.layers = {"time1": nn.Linear(self.channels, E), "time2": nn.Linear(E, E)}
        if self.n_classes:
            self.layers["label"] = nn.Embedding(self.n_classes + 1, E)  # + the null label
        self.layers["conv_in"] = layers.Conv2d(c_img, self.channels, name="conv_in")
        skips, c = [self.channels], self.channels
        self.down, self.mid, self.up = [], [], []
        last = len(self.multipliers) - 1
        for i, m in enumerate(self.multipliers):
            for b in range(self.blocks):
                name = f"down{i}_res{b}"
                self.layers[name] = layers.ResBlock(c, self.channels * m, E, G, name=name)
                c = self.channels * m
                self.down.append(("res", name))
                skips.append(c)
            if i < last:
                name = f"down{i}_down"
                self.layers[name] = layers.Conv2d(c, c, 3, stride=2, name=name)
                self.down.append(("down", name))
                skips.append(c)
        for b in range(2):
            name = f"mid_res{b}"
            self.layers[name] = layers.ResBlock(c, c, E, G, name=name)
            self.mid.append(("res", name))
        for i in range(last, -1, -1):
            for b in range(self.blocks + 1):
                name = f"up{i}_res{b}"
                c_skip = skips.pop()
                self.layers[name] = layers.ResBlock(c + c_skip, self.channels * self.multipliers[i],
                                                    E, G, name=name)
                c = self.channels * self.multipliers[i]
                self.up.append(("res", name, c_skip))
            if i > 0:
                name = f"up{i}_up"
                self.layers[name] = layers.UpConv(c, c, name=name)
                self.up.append(("up", name, 0))
        self.layers["norm_out"] = layers.GroupNorm(G, c, name="norm_out")
        self.act_out = layers.SiLU("act_out")
        self.layers["conv_out"] = layers.Conv2d(c, c_img, name="conv_out")

    def _allocate(self):
        """Lay every parameter out in one flat buffer and bind the layers to views of it."""
        self.params, self.grads, self.named_params, self.named_grads = nn.flat_buffers(
            self.layers, self.dtype)

    @property
    def num_params(self):
        return self.params.size

    def config(self):
        """Constructor arguments as a JSON-serializable dict (``UNet(**config, rng=rng)`` once
        ``"arch"`` is removed)."""
        return {"arch": self.arch, "image_shape": list(self.image_shape),
                "channels": self.channels, "multipliers": list(self.multipliers),
                "blocks": self.blocks, "groups": self.groups, "embed_dim": self.embed_dim,
                "time_scale": self.time_scale, "n_classes": self.n_classes,
                "dtype": np.dtype(self.dtype).name}

    # --- inputs -------------------------------------------------------------------------------
    def _image(self, x, work):
        """Flat rows x (n, c h w) -> channels-last images (n, h, w, c)."""
        x = _checks.points(x, "x", dim=self.dim, dtype=self.dtype)
        n = x.shape[0]
        c, h, w = self.image_shape
        img = work.get("x_image", (n, h, w, c))  # (n, h, w, c)
        img[...] = x.reshape(n, c, h, w).transpose(0, 2, 3, 1)
        return img

    def _time_embedding(self, t, labels, n, work):
        """``semb = SiLU(Linear2(SiLU(Linear1(e(t)))) [+ E[y]])`` (n, E) and the caches."""
        t = _checks.times(t, n, "t", dtype=self.dtype)  # (n, 1)
        e = self.embed(t)  # (n, C)
        E = self.embed_dim
        z1 = self.layers["time1"].forward(e, out=work.get("time.z1", (n, E)))  # (n, E)
        a1 = nn.SiLU.forward(z1, out=work.get("time.a1", (n, E)))  # (n, E)
        emb = self.layers["time2"].forward(a1, out=work.get("time.emb", (n, E)))  # (n, E)
        if labels is not None:
            emb += self.layers["label"].forward(labels)  # (n, E)
        semb = nn.SiLU.forward(emb, out=work.get("time.semb", (n, E)))  # (n, E)
        return semb, e, {"z1": z1, "a1": a1, "emb": emb, "semb": semb}

    # --- forward, backward --------------------------------------------------------------------
    def forward(self, x, t, y=None, work=None):
        """``v_theta(x, t[, y])``: x (n, d), t scalar, (n,) or (n, 1), y (n,) or None -> v (n, d).

        ``work``: an :class:`npflow.nn.Workspace` whose arrays are reused from call to call (v
        is overwritten by the next call), or None for fresh arrays.
        """
        return self.forward_train(x, t, y, work)[0]

    __call__ = forward

    @_held_blas_threads
    def forward_train(self, x, t, y=None, work=None):
        """Forward pass that also returns the :class:`UNetCache` that :meth:`backward` needs.

        Returns
        -------
        v : (n, d) ndarray
        cache : UNetCache
        """
        work = layers._work(work, self.dtype)
        h = self._image(x, work)  # (n, H, W, c)
        n = h.shape[0]
        labels = nn.network_labels(y, n, self.n_classes)
        semb, e, time = self._time_embedding(t, labels, n, work)
        caches = {}
        h, caches["conv_in"] = self.layers["conv_in"].forward(h, work)  # (n, H, W, C)
        skips = [h]
        for kind, name in self.down:
            layer = self.layers[name]
            if kind == "res":
                h, caches[name] = layer.forward(h, semb, work)  # (n, H_i, W_i, C_i)
            else:
                h, caches[name] = layer.forward(h, work)  # (n, H_i / 2, W_i / 2, C_i)
            skips.append(h)  # (n, H_i, W_i, C_i)
        for _, name in self.mid:
            h, caches[name] = self.layers[name].forward(h, semb, work)  # (n, H_L, W_L, C_L)
        for kind, name, _ in self.up:
            if kind == "res":
                skip = skips.pop()  # (n, H_i, W_i, C_skip)
                shape = h.shape[:3] + (h.shape[3] + skip.shape[3],)  # (n, H_i, W_i, C + C_skip)
                cat = work.get(f"{name}.cat", shape)
                np.concatenate([h, skip], axis=3, out=cat)  # (n, H_i, W_i, C + C_skip)
                h, caches[name] = self.layers[name].forward(cat, semb, work)  # (n, H_i, W_i, C_i)
            else:
                h, caches[name] = self.layers[name].forward(h, work)  # (n, 2 H_i, 2 W_i, C_i)
        h, caches["norm_out"] = self.layers["norm_out"].forward(h, work)  # (n, H, W, C_0)
        h, caches["act_out"] = self.act_out.forward(h, work)  # (n, H, W, C_0)
        out, caches["conv_out"] = self.layers["conv_out"].forward(h, work)  # (n, H, W, c)
        v = work.get("v", (n, self.dim))  # (n, c H W)
        v.reshape(n, *self.image_shape)[...] = out.transpose(0, 3, 1, 2)
        return v, UNetCache(e, time, labels, caches)

    @_held_blas_threads
    def backward(self, cache, dv, work=None):
        """Backpropagate ``dv = dL/dv`` (n, d); write ``self.grads``; return ``dL/dx`` (n, d).

        Each layer's backward rule in reverse order (see :mod:`npflow.networks.layers`). A skip
        connection's gradient is the tail of its decoder block's input gradient (the channels
        it was concatenated into), added to the gradient reaching the encoder activation it
        copied; the time embedding's gradient ``dsemb`` is the sum over all residual blocks.
        The returned ``dL/dx`` is the vector-Jacobian product ``J^T dv`` of the velocity
        field: ``u^T J u`` with ``dv = u`` is Hutchinson's divergence estimate.
        ``work``: a :class:`npflow.nn.Workspace`, or None.
        """
        work = layers._work(work, self.dtype)
        c, H, W = self.image_shape
        dv = np.asarray(dv, dtype=self.dtype)
        n = cache.e.shape[0]
        if dv.shape != (n, self.dim):
            raise ValueError(f"dv must have shape ({n}, {self.dim}) like v, got shape {dv.shape}")
        L = cache.layers
        dh = work.get("dv_image", (n, H, W, c))  # (n, H, W, c)
        dh[...] = dv.reshape(n, c, H, W).transpose(0, 2, 3, 1)
        dh = self.layers["conv_out"].backward(L["conv_out"], dh, work)  # (n, H, W, C_0)
        dh = self.act_out.backward(L["act_out"], dh, work)  # (n, H, W, C_0)
        dh = self.layers["norm_out"].backward(L["norm_out"], dh, work)  # (n, H, W, C_0)
        dsemb = work.get("time.dsemb", cache.time["semb"].shape)  # (n, E)
        dsemb[...] = 0
        dskips = []
        for kind, name, c_skip in reversed(self.up):
            if kind == "res":
                dcat, ds = self.layers[name].backward(L[name], dh, work)  # (n, H_i, W_i, C + C_s)
                dsemb += ds
                dh, dskip = dcat[..., :-c_skip], dcat[..., -c_skip:]  # views
                dskips.append(dskip)
            else:
                dh = self.layers[name].backward(L[name], dh, work)  # (n, H_i, W_i, C_i)
        for _, name in reversed(self.mid):
            dh, ds = self.layers[name].backward(L[name], dh, work)  # (n, H_L, W_L, C_L)
            dsemb += ds
        for kind, name in reversed(self.down):
            # the output's gradient: from the next layer and from the skip connection
            dout = work.get(f"{name}.dout", dh.shape)  # (n, H_i, W_i, C_i)
            dh = np.add(dh, dskips.pop(), out=dout)
            if kind == "res":
                dh, ds = self.layers[name].backward(L[name], dh, work)  # (n, H_i, W_i, C_in)
                dsemb += ds
            else:
                dh = self.layers[name].backward(L[name], dh, work)  # (n, 2 H_i, 2 W_i, C_i)
        dh = np.add(dh, dskips.pop(), out=work.get("conv_in.dout", dh.shape))  # (n, H, W, C)
        dimg = self.layers["conv_in"].backward(L["conv_in"], dh, work)  # (n, H, W, c)
        self._time_backward(cache, dsemb)
        dx = work.get("dx", (n, self.dim))  # (n, c H W)
        dx.reshape(n, c, H, W)[...] = dimg.transpose(0, 3, 1, 2)
        return dx

    def vjp(self, x, t, y=None, *, dv, work=None):
        """Vector-Jacobian products ``J(x_j)^T dv_{k, j}`` for k cotangents at once (reverse mode).

        The reverse-mode counterpart of :meth:`npflow.nn.MLP.jvp`: one forward pass, then one
        :meth:`backward` per cotangent through the same cache (backward reads caches, never
        writes them). Hutchinson's divergence estimate is ``eps^T J eps = (J^T eps) . eps``.
        ``self.grads`` is left as it was.

        Parameters
        ----------
        x : (n, d) points; t : scalar, (n,) or (n, 1) times; y : (n,) labels or None: the same
            arguments as :meth:`forward`.
        dv : (k, n, d), keyword-only: cotangents (t and y are held fixed).
        work : an :class:`npflow.nn.Workspace`, or None.

        Returns
        -------
        v : (n, d) the velocity ``v_theta(x, t)``.
        dx : (k, n, d) ``J(x_j)^T dv_{k, j}`` for every cotangent k and point j.
        """
        work = layers._work(work, self.dtype)
        v, cache = self.forward_train(x, t, y, work)
        dv = np.asarray(dv, dtype=self.dtype)
        if dv.ndim != 3 or dv.shape[1:] != v.shape:
            raise ValueError(f"dv must have shape (k, {v.shape[0]}, {self.dim}), got {dv.shape}")
        grads = self.grads.copy()
        dx = np.empty_like(dv)  # (k, n, d)
        for k in range(dv.shape[0]):
            dx[k] = self.backward(cache, dv[k], work)
        self.grads[...] = grads
        return v.copy(), dx

    def _time_backward(self, cache, dsemb):
        """dsemb (n, E) back through SiLU, Linear2, the label table, SiLU and Linear1."""
        time = cache.time
        demb = dsemb * nn.SiLU.derivative(time["emb"], time["semb"])  # (n, E)
        if cache.labels is not None:
            self.layers["label"].backward(cache.labels, demb)
        da1 = self.layers["time2"].backward(time["a1"], demb)  # (n, E)
        dz1 = da1 * nn.SiLU.derivative(time["z1"], time["a1"])  # (n, E)
        self.layers["time1"].backward(cache.e, dz1, need_dx=False)

    # --- memory, torch ------------------------------------------------------------------------
    def memory(self, batch_size):
        """Bytes that training at ``batch_size`` needs, estimated before allocating anything.

        ``7 P`` parameter-sized arrays (weights, gradients, two Adam moments, the EMA, two
        scratch buffers, as :func:`npflow.train.training_memory` counts them), plus the
        :class:`npflow.nn.Workspace` of one ``forward_train`` and ``backward``, measured by
        running them on one and on two images (``self.grads`` is restored afterwards): the
        growth from one image to two is the per-image part (activations, caches, gradients),
        exact times ``batch_size``; what does not grow (per-layer copies of weights) is added
        once; each convolution chunk buffer is bounded by ``min(batch_size x its one-image
        size, max(COLS_BYTES, its one-image size))``. Four of the largest per-image arrays are
        added per image for the temporaries NumPy allocates inside group norm and SiLU.
        """
        batch_size = _checks.positive_int(batch_size, "batch_size")
        grads = self.grads.copy()
        one, two = (self._workspace_bytes(n) for n in (1, 2))
        self.grads[...] = grads
        per_image = {name: two[name] - one[name] for name in one
                     if not name.startswith(layers.SCRATCH)}
        fixed = sum(one[name] - per_image[name] for name in per_image)
        scratch = sum(min(batch_size * b, max(layers.COLS_BYTES, b)) for name, b in one.items()
                      if name.startswith(layers.SCRATCH))
        rows = sum(per_image.values()) + 4 * max(per_image.values())
        itemsize = np.dtype(self.dtype).itemsize
        return 7 * self.num_params * itemsize + batch_size * rows + fixed + scratch

    def _workspace_bytes(self, n):
        """Bytes per workspace name of one ``forward_train`` and ``backward`` on n images."""
        work = _Recording(self.dtype)
        v, cache = self.forward_train(np.zeros((n, self.dim), self.dtype), 0.5, work=work)
        self.backward(cache, np.zeros_like(v), work)
        return work.nbytes

    def torch_state(self):
        """Weights named as the modules of ``demos/experiments/bench_unet.py``'s torch U-Net.

        Convolution weights become ``(c_out, c_in, k, k)``, linear weights ``W^T``.
        """
        state = {}
        for name, layer in self.layers.items():
            if isinstance(layer, nn.Embedding):
                state[f"{name}.weight"] = layer.E.copy()
            elif isinstance(layer, nn.Linear):
                state.update({f"{name}.weight": layer.W.T.copy(), f"{name}.bias": layer.b.copy()})
            else:
                state.update({f"{name}.{p}": value for p, value in layer.torch_state().items()})
        return state


class _Recording(nn.Workspace):
    """A fresh-array workspace that records the bytes it hands out under each name."""

    def __init__(self, dtype):
        super().__init__(dtype, reuse=False)
        self.nbytes = {}

    def get(self, name, shape):
        array = super().get(name, shape)
        self.nbytes[name] = array.nbytes
        return array
