"""Image layers with hand-written backprop: convolution, group norm, SiLU, up-sampling, residual
block.

Every layer keeps its forward rule and its backward rule side by side:

* ``forward(x, work) -> (y, cache)`` -- the value ``y = f(x)`` and what the backward rule needs;
* ``backward(cache, dy, work) -> dx`` -- the vector-Jacobian product ``dx = (df/dx)^T dy``,
  after *writing* (not accumulating) the gradients of the layer's parameters.

Parameters follow :class:`npflow.nn.Linear`: ``shapes()`` names them, ``bind(params, grads)``
takes views of the owning network's flat parameter and gradient buffers, ``init(rng)`` draws
them. ``work`` is an :class:`npflow.nn.Workspace` (arrays reused from call to call, named after
the layer), or None for fresh arrays. Caches are returned, never kept in the layer.

Layout: channels last
---------------------
Images are kept as ``(n, h, w, c)`` arrays, channels last, so that a pixel's channels are
contiguous. Then a 1x1 convolution is one matrix product of the (n h w, c) rows with a (c_in,
c_out) matrix, a per-channel bias or embedding broadcasts over the last axis, concatenating
skip connections joins last axes, and the column matrix of a 3x3 convolution (im2col) is filled
by copying shifted *blocks* of ``x_pad`` rather than by gathering single numbers. The network's
input rows ``(n, c h w)`` are reshaped to ``(n, c, h, w)`` and transposed once at the entrance
(and back at the exit); see :mod:`npflow.networks.unet`.

Which convolution, by measurement
---------------------------------
``demos/experiments/bench_conv.py`` times ways to compute a 3x3 convolution and its backward
pass in float32 (32-64 channels, sides 14-28, batch 64-128) against torch's oneDNN, each checked
against the defining sum first; one OpenBLAS thread, CPU time of the calling thread::

    PYTHONPATH=. nice python demos/experiments/bench_conv.py --methods numpy-ml im2col-cl \
        shift9 flat9 im2col-cl-chunk-col2im im2col-cl-chunk cnhw-chunk npflow

GFLOP/s forward / backward, side 28, batch 128, in one run on a 2-core machine shared with
other jobs (its 1024x1024 float32 matmul: 55 GFLOP/s; single runs move by up to 1.5x with the
load, so only large ratios within a run are worth reading)::

    method                    c = 32         c = 64
    numpy-ml                  5.1 /  4.8     10.0 /  8.8   (im2col by fancy indexing, np.add.at)
    im2col-cl (whole batch)  12.0 / 13.5     22.1 / 25.5
    shift9                   15.6 / 17.6     18.9 / 24.1   (nine shifted channels-last matmuls)
    flat9                    17.5 / 20.4     20.2 / 24.7   (nine row-offset matmuls, no copies)
    im2col-cl-chunk          16.9 / 18.5     34.5 / 27.7
    cnhw-chunk               27.5 / 21.1     30.9 / 25.4   (channels first, batch second)
    npflow (this Conv2d)     14.9 / 17.0     29.4 / 26.7
    torch (oneDNN)           44.9 / 30.3     33.7 / 48.6

:class:`Conv2d` computes im2col in the channels-last layout, one GEMM with K = 9 c_in, on
chunks of the batch whose column matrix (:data:`COLS_BYTES`, 1 MB) stays in a core's 2 MB L2
cache between being written by the copies and read by the GEMM: the whole-batch column matrix
is 9x the input (231 MB for c = 64, 28x28, batch 128), and writing it out to memory and reading
it back costs as much as the GEMM (``im2col-cl`` against ``im2col-cl-chunk``: 1.1-1.6x).
numpy-ml's fancy indexing and ``np.add.at`` are 3-4x slower still. A later run of the chunked
methods, one thread, load average 6-8 (``--methods im2col-cl-chunk flat9 npflow --channels 32
64 --sides 28 --batches 128``; the 1024 x 1024 matmul at 186 GFLOP/s)::

    method                      c = 32          c = 64
    im2col-cl-chunk (4 MB)     54.0 /  55.9    91.3 /  92.6
    flat9                      39.8 /  40.7    53.6 /  58.0
    npflow (this Conv2d)       79.6 /  81.6    98.2 /  97.8
    torch (oneDNN)            133.7 /  82.7   126.0 / 118.1

(flat9 there is the whole batch at once.) What is left is the GEMM itself and the copies
feeding it: the product of a 4-image chunk, (3136 x 288) @ (288 x 32), ran alone at 135
GFLOP/s in that run, so it takes about 60% of the forward pass at c = 32 (79.6 / 135), the
three window copies of :meth:`Conv2d._im2col` (0.27 ms for four images) and the padding most
of the rest.
The channels-first layout (c, n, h, w) hands OpenBLAS the same product transposed, which it ran
at 43-48 GFLOP/s against 34-42 in another run; there a channels-first convolution's forward
pass was 1.1-1.5x faster than :class:`Conv2d`'s with 4 MB chunks, its backward pass (with
col2im) 0.9-1.2x (``--methods npflow cnhw-chunk npflow cnhw-chunk --channels 32 64 --batches 64
--repeats 5``), so channels last, whose per-channel operations are simpler, stays.
"""
from dataclasses import dataclass

import numpy as np

from .. import nn

COLS_BYTES = 1 << 20  # one chunk's column matrix: stays in a core's 2 MB L2 cache
SCRATCH = "scratch."  # workspace names of the chunk buffers, whose size does not grow with n


def _work(work, dtype):
    """``work``, or a workspace handing out fresh arrays."""
    return nn.Workspace(dtype, reuse=False) if work is None else work


# ----------------------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------------------
class Conv2d:
    """2-D convolution: ``k x k`` kernel (k = 1 or 3), stride 1 or 2, zero padding ``k // 2``.

    ``y[n, i, j, o] = b[o] + sum_{p, q, c} x_pad[n, s i + p, s j + q, c] W[p, q, c, o]``

    (LeCun et al. 1998; the cross-correlation every deep-learning library calls convolution).
    With stride ``s = 2`` it halves the sides (the U-Net's down-sampling, Ho et al. 2020,
    App. B). ``W`` is stored ``(k, k, c_in, c_out)``; PyTorch's ``nn.Conv2d`` stores
    ``(c_out, c_in, k, k)`` (see :meth:`torch_state`).

    Forward, im2col: ``cols[n, i, j, p, q, c] = x_pad[n, s i + p, s j + q, c]`` turns the sum into
    one matrix product ``y = cols W + b`` of the (n h' w', k k c_in) column matrix with the
    (k k c_in, c_out) weights. Backward: ``dW = cols^T dy``, ``db = sum dy`` and
    ``dcols = dy W^T``, which col2im, the adjoint of im2col, adds back into the pixels each
    column entry was copied from: ``dx_pad[n, s i + p, s j + q, c] += dcols[n, i, j, p, q, c]``
    (for stride 1, the same dx is computed faster as a convolution of dy, see :meth:`backward`).
    Both run chunk by chunk over the batch (see the module docstring); the column matrix is
    rebuilt in the backward pass rather than kept (9x the input).
    """

    def __init__(self, c_in, c_out, kernel=3, stride=1, name="conv"):
        if kernel not in (1, 3):
            raise ValueError(f"kernel must be 1 or 3, got {kernel!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.c_in, self.c_out, self.kernel, self.stride = c_in, c_out, kernel, stride
        self.name = name
        self.pad = kernel // 2
        self.W = self.b = self.dW = self.db = None

    def shapes(self):
        k = self.kernel
        return (("W", (k, k, self.c_in, self.c_out)), ("b", (self.c_out,)))

    def bind(self, params, grads):
        self.W, self.b = params["W"], params["b"]
        self.dW, self.db = grads["W"], grads["b"]

    def init(self, rng):
        """PyTorch's default: ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, fan_in = k k c_in."""
        bound = 1.0 / np.sqrt(self.kernel * self.kernel * self.c_in)
        self.W[...] = rng.uniform(-bound, bound, size=self.W.shape)
        self.b[...] = rng.uniform(-bound, bound, size=self.b.shape)

    def out_size(self, h, w):
        """Output sides ``floor((h + 2 pad - k) / s) + 1``."""
        k, s, p = self.kernel, self.stride, self.pad
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def _chunk(self, h, w, itemsize):
        """Images per chunk: as many as fit a column matrix of COLS_BYTES (at least one)."""
        ho, wo = self.out_size(h, w)
        c = max(self.c_in, self.c_out) if self.stride == 1 else self.c_in
        return max(1, COLS_BYTES // (ho * wo * self.kernel ** 2 * c * itemsize))

    def _buffers(self, work, role, b, h, w, c):
        """Chunk buffers for the im2col of a (b, h, w, c) input: the padded input
        (b, h+2p, w+2p, c) and the columns (b, h', w', k, k, c), shared by every convolution
        with the same column size."""
        ho, wo = self.out_size(h, w)
        k, p = self.kernel, self.pad
        size = b * ho * wo * k * k * c
        cols = work.get(f"{SCRATCH}cols{size}", (size,))  # (b h' w' k k c,)
        cols = cols.reshape(b, ho, wo, k, k, c)  # (b, h', w', k, k, c)
        padded = work.get(f"{SCRATCH}{self.name}.{role}_pad",
                          (b, h + 2 * p, w + 2 * p, c))  # (b, h+2p, w+2p, c)
        return padded, cols

    def _padded(self, x, x_pad):
        """Copy x (b, h, w, c) into the middle of x_pad (b, h+2p, w+2p, c), zero its ring."""
        p = self.pad
        x_pad[:, :p], x_pad[:, -p:], x_pad[:, :, :p], x_pad[:, :, -p:] = 0, 0, 0, 0
        x_pad[:, p:-p, p:-p] = x
        return x_pad

    def _im2col(self, x_pad, cols):
        """cols[n, i, j, p, q, :] = x_pad[n, s i + p, s j + q, :], in k block copies.

        For fixed (n, row, j), the k pixels ``s j + q`` (q < k) of a padded row are adjacent in
        memory, so their k c values form one contiguous run: ``windows`` views x_pad as
        (b, h+2p, w', k c) with overlapping runs (a read-only strided view, no copy), and the
        k taps q of one row offset p are copied at once, in runs of k c numbers rather than c:
        0.20-0.22 ms for 4 x 28 x 28 x 32 against 0.32-0.63 ms for k^2 copies (the third line
        ``demos/experiments/bench_conv.py`` prints, three runs).
        """
        ho, wo, s, k = cols.shape[1], cols.shape[2], self.stride, self.kernel
        sb, sh, sw, sc = x_pad.strides
        windows = np.lib.stride_tricks.as_strided(
            x_pad, shape=x_pad.shape[:2] + (wo, k * x_pad.shape[3]), strides=(sb, sh, s * sw, sc),
            writeable=False)  # (b, h+2p, w', k c)
        flat = cols.reshape(cols.shape[:3] + (k, -1))  # (b, h', w', k, k c)
        for p in range(k):
            flat[:, :, :, p] = windows[:, p:p + s * ho:s]
        return cols

    def _col2im(self, dcols, dx_pad):
        """The adjoint of :meth:`_im2col`:
        ``dx_pad[n, s i + p, s j + q, :] += dcols[n, i, j, p, q, :]``."""
        ho, wo, s = dcols.shape[1], dcols.shape[2], self.stride
        dx_pad[...] = 0
        for p in range(self.kernel):
            for q in range(self.kernel):
                dx_pad[:, p:p + s * ho:s, q:q + s * wo:s, :] += dcols[:, :, :, p, q, :]
        return dx_pad

    def forward(self, x, work=None):
        """x (n, h, w, c_in) -> y (n, h', w', c_out); the cache is x itself."""
        work = _work(work, x.dtype)
        n, h, w, _ = x.shape
        ho, wo = self.out_size(h, w)
        y = work.get(f"{self.name}.y", (n, ho, wo, self.c_out))  # (n, h', w', c_out)
        if self.kernel == 1:  # a 1x1 convolution is a linear map of each pixel's channels
            np.matmul(x.reshape(-1, self.c_in), self.W[0, 0], out=y.reshape(-1, self.c_out))
            y += self.b
            return y, x
        W2 = self.W.reshape(-1, self.c_out)  # (k k c_in, c_out)
        b = min(n, self._chunk(h, w, x.itemsize))
        x_pad, cols = self._buffers(work, "x", b, h, w, self.c_in)
        for i in range(0, n, b):
            j = min(i + b, n)
            x_part = self._padded(x[i:j], x_pad[:j - i])  # (b, h+2p, w+2p, c_in)
            part = self._im2col(x_part, cols[:j - i])  # (b, h', w', k, k, c_in)
            y_part = y[i:j].reshape(-1, self.c_out)  # (b h' w', c_out)
            np.matmul(part.reshape(y_part.shape[0], -1), W2, out=y_part)
            y_part += self.b
        return y, x

    def backward(self, cache, dy, work=None, need_dx=True):
        """dy (n, h', w', c_out) -> dx (n, h, w, c_in) (None if not ``need_dx``); writes dW, db.

        ``dW = cols^T dy`` summed over the chunks, ``db = sum_{n, i, j} dy``. The input gradient:

        * stride 2: ``dx = col2im(dy W^T)``;
        * stride 1: the same numbers computed as a forward convolution,
          ``dx = conv(dy, W')`` with ``W'[p, q, o, c] = W[k-1-p, k-1-q, c, o]`` (the kernel
          flipped in space, its channel axes swapped): substituting ``p -> k-1-p`` in
          ``dx[a, b, c] = sum_{p, q, o} dy[a - p + pad, b - q + pad, o] W[p, q, c, o]`` gives a
          convolution of dy padded by ``pad = (k-1)/2``. This im2col of dy and a GEMM with
          K = k k c_out write dx directly; col2im's k^2 strided additions and its GEMM with
          K = c_out measured slower (30% of the backward pass went to col2im).
        """
        x = cache  # (n, h, w, c_in)
        work = _work(work, dy.dtype)
        n, h, w, _ = x.shape
        np.einsum("rc->c", dy.reshape(-1, self.c_out), out=self.db)  # (c_out,), sum over rows
        if self.kernel == 1:
            dy2 = dy.reshape(-1, self.c_out)  # (n h w, c_out)
            np.matmul(x.reshape(-1, self.c_in).T, dy2, out=self.dW[0, 0])  # (c_in, c_out)
            if not need_dx:
                return None
            dx = work.get(f"{self.name}.dx", x.shape)  # (n, h, w, c_in)
            np.matmul(dy2, self.W[0, 0].T, out=dx.reshape(-1, self.c_in))
            return dx
        k, p = self.kernel, self.pad
        W2 = self.W.reshape(-1, self.c_out)  # (k k c_in, c_out)
        dW2 = self.dW.reshape(W2.shape)  # (k k c_in, c_out)
        dW_part = work.get(f"{self.name}.dW_part", W2.shape)  # (k k c_in, c_out)
        dx = work.get(f"{self.name}.dx", x.shape) if need_dx else None  # (n, h, w, c_in)
        flip = self.stride == 1
        if need_dx and flip:
            W_flip = self.W[::-1, ::-1].transpose(0, 1, 3, 2)  # (k, k, c_out, c_in)
            W_flip = W_flip.reshape(-1, self.c_in)  # (k k c_out, c_in), a copy
        b = min(n, self._chunk(h, w, x.itemsize))
        x_pad, cols = self._buffers(work, "x", b, h, w, self.c_in)
        if need_dx and flip:
            dy_pad, dcols = self._buffers(work, "dy", b, h, w, self.c_out)
        for i in range(0, n, b):
            j = min(i + b, n)
            x_part = self._padded(x[i:j], x_pad[:j - i])  # (b, h+2p, w+2p, c_in)
            part = self._im2col(x_part, cols[:j - i])  # (b, h', w', k, k, c_in)
            part2 = part.reshape(-1, W2.shape[0])  # (b h' w', k k c_in)
            dy2 = dy[i:j].reshape(-1, self.c_out)  # (b h' w', c_out)
            if i == 0:
                np.matmul(part2.T, dy2, out=dW2)
            else:
                dW2 += np.matmul(part2.T, dy2, out=dW_part)
            if need_dx and flip:  # cols is free again: dcols may share its buffer
                dy_part = self._padded(dy[i:j], dy_pad[:j - i])  # (b, h+2p, w+2p, c_out)
                dpart = self._im2col(dy_part, dcols[:j - i])  # (b, h, w, k, k, c_out)
                np.matmul(dpart.reshape(-1, k * k * self.c_out), W_flip,
                          out=dx[i:j].reshape(-1, self.c_in))
            elif need_dx:
                np.matmul(dy2, W2.T, out=part2)  # dcols (b h' w', k k c_in), over the columns
                dx_pad = self._col2im(part, x_pad[:j - i])  # (b, h+2p, w+2p, c_in)
                dx[i:j] = dx_pad[:, p:p + h, p:p + w]
        return dx

    def torch_state(self):
        """``weight`` (c_out, c_in, k, k) and ``bias`` as PyTorch's ``nn.Conv2d`` holds them."""
        return {"weight": self.W.transpose(3, 2, 0, 1).copy(), "bias": self.b.copy()}


# ----------------------------------------------------------------------------------------------
# Group normalization
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupNormCache:
    """xc (n, h w, c): the input minus its group mean; rstd (n, 1, c): ``1 / sqrt(var + eps)`` of
    each channel's group."""

    xc: np.ndarray
    rstd: np.ndarray


class GroupNorm:
    """Group normalization (Wu and He 2018, eq. 1-2 and Sec. 3.1).

    The c channels are split into G groups of ``m = c / G``; each image's group ``g`` is
    normalized by the mean and variance over its pixels and channels, ``S_g`` (h w m values):

    ``mu = mean_{S_g} x``, ``var = mean_{S_g} (x - mu)^2``,
    ``xhat = (x - mu) / sqrt(var + eps)`` (eq. 1-2), ``y = gamma xhat + beta`` (per channel).

    Backward, with ``g = gamma dy`` (the gradient of xhat) and means over ``S_g``:

    ``dx = (g - mean(g) - xhat mean(g xhat)) / sqrt(var + eps)``,
    ``dgamma = sum_{n, i, j} dy xhat``, ``dbeta = sum_{n, i, j} dy``.

    (Differentiate ``xhat`` through ``mu`` and ``var``: the two means are the projections of g
    onto the constants and onto xhat that the normalization removes.) ``eps = 1e-5`` as in
    PyTorch's ``nn.GroupNorm``.

    Every sum over pixels is a per-image, per-channel ``einsum`` (one pass, no temporary), and
    every per-group number is spread over its m channels before it multiplies an image, so the
    full-size operations broadcast a (n, 1, c) row over contiguous channels: with (n, 1, G, 1)
    factors, whose innermost loop is one number long, and sums by ``ndarray.sum``, the layer's
    forward and backward rules took 458 ms of a batch-128 step against 289-303 ms
    (``demos/experiments/bench_unet.py``'s profile, load 4-8).
    """

    def __init__(self, groups, channels, eps=1e-5, name="norm"):
        if channels % groups:
            raise ValueError(f"channels ({channels}) must be a multiple of groups ({groups})")
        self.groups, self.channels, self.eps, self.name = groups, channels, eps, name
        self.gamma = self.beta = self.dgamma = self.dbeta = None

    def shapes(self):
        return (("gamma", (self.channels,)), ("beta", (self.channels,)))

    def bind(self, params, grads):
        self.gamma, self.beta = params["gamma"], params["beta"]
        self.dgamma, self.dbeta = grads["gamma"], grads["beta"]

    def init(self, rng):
        """``gamma = 1``, ``beta = 0``: the identity after normalization (PyTorch's default)."""
        self.gamma[...] = 1
        self.beta[...] = 0

    def _group_mean(self, per_channel, count):
        """Per-channel sums (n, c) -> each group's mean ``sum / count``, repeated over its m
        channels, (n, 1, c)."""
        n = per_channel.shape[0]
        sums = per_channel.reshape(n, self.groups, -1).sum(axis=2, keepdims=True)  # (n, G, 1)
        means = np.repeat(sums / count, self.channels // self.groups, axis=2)  # (n, G, m)
        return means.reshape(n, 1, self.channels)

    def forward(self, x, work=None):
        """x (n, h, w, c) -> y (n, h, w, c), :class:`GroupNormCache`."""
        work = _work(work, x.dtype)
        x3 = x.reshape(x.shape[0], -1, self.channels)  # (n, h w, c)
        count = x3.shape[1] * self.channels // self.groups  # |S_g| = h w m
        mu = self._group_mean(np.einsum("npc->nc", x3), count)  # (n, 1, c)
        xc = np.subtract(x3, mu, out=work.get(f"{self.name}.xc", x3.shape))  # (n, h w, c)
        var = self._group_mean(np.einsum("npc,npc->nc", xc, xc), count)  # (n, 1, c)
        rstd = 1.0 / np.sqrt(var + self.eps)  # (n, 1, c)
        y = np.multiply(xc, rstd * self.gamma, out=work.get(f"{self.name}.y", x3.shape))
        y += self.beta  # (n, h w, c)
        return y.reshape(x.shape), GroupNormCache(xc, rstd)

    def backward(self, cache, dy, work=None):
        """dy (n, h, w, c) -> dx (n, h, w, c); writes dgamma, dbeta.

        Per image and channel, the pixel sums ``S0 = sum_{i, j} dy`` and
        ``S1 = sum_{i, j} dy xhat`` give everything else: ``dbeta = sum_n S0``,
        ``dgamma = sum_n S1``, and per group ``mean(g) = sum_{c in g} gamma_c S0_c / |S_g|``,
        ``mean(g xhat) = sum_{c in g} gamma_c S1_c / |S_g|``; then
        ``dx = (rstd gamma) dy - rstd^2 mean(g xhat) xc - rstd mean(g)``, with
        ``xc = xhat / rstd``: four passes over the image after the two sums.
        """
        work = _work(work, dy.dtype)
        xc, rstd = cache.xc, cache.rstd  # (n, h w, c), (n, 1, c)
        dy3 = dy.reshape(xc.shape)  # (n, h w, c)
        count = xc.shape[1] * self.channels // self.groups  # |S_g| = h w m
        S0 = np.einsum("npc->nc", dy3)  # (n, c)
        S1 = np.einsum("npc,npc->nc", dy3, xc) * rstd[:, 0]  # (n, c)
        np.sum(S0, axis=0, out=self.dbeta)  # (c,)
        np.sum(S1, axis=0, out=self.dgamma)  # (c,)
        mean_g = self._group_mean(self.gamma * S0, count)  # (n, 1, c)
        mean_gx = self._group_mean(self.gamma * S1, count)  # (n, 1, c)
        dx = np.multiply(dy3, rstd * self.gamma, out=work.get(f"{self.name}.dx", xc.shape))
        dx += np.multiply(xc, -rstd * rstd * mean_gx, out=work.get(f"{self.name}.xc_term",
                                                                   xc.shape))
        dx -= rstd * mean_g
        return dx.reshape(dy.shape)

    def torch_state(self):
        return {"weight": self.gamma.copy(), "bias": self.beta.copy()}


# ----------------------------------------------------------------------------------------------
# SiLU
# ----------------------------------------------------------------------------------------------
class SiLU:
    """SiLU (Elfwing et al. 2018; Hendrycks and Gimpel 2016), ``a = z s(z)``, ``s`` the sigmoid.

    Forward: ``s = (1 + tanh(z / 2)) / 2`` (never overflows), ``a = z s``.
    Backward: ``dz = da s (1 + z (1 - s)) = da (s + a (1 - s))``.

    The same rules as :class:`npflow.nn.SiLU`, but the cache keeps ``s`` next to ``a``, so the
    backward rule does not evaluate the tanh again (four passes over the array instead of eight).
    """

    def __init__(self, name="silu"):
        self.name = name

    @staticmethod
    def shapes():
        return ()

    def bind(self, params, grads):
        pass

    def init(self, rng):
        pass

    def forward(self, z, work=None):
        """z (n, ...) -> a (n, ...); the cache is (s, a)."""
        work = _work(work, z.dtype)
        s = np.multiply(z, 0.5, out=work.get(f"{self.name}.s", z.shape))  # (n, h, w, c)
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        a = np.multiply(z, s, out=work.get(f"{self.name}.a", z.shape))  # (n, h, w, c)
        return a, (s, a)

    def backward(self, cache, da, work=None):
        """da (n, ...) -> dz = (s + a (1 - s)) da (n, ...)."""
        s, a = cache
        work = _work(work, da.dtype)
        dz = np.subtract(1, s, out=work.get(f"{self.name}.dz", da.shape))  # (n, h, w, c)
        dz *= a
        dz += s
        dz *= da
        return dz


# ----------------------------------------------------------------------------------------------
# Nearest-neighbour up-sampling followed by a 3x3 convolution
# ----------------------------------------------------------------------------------------------
# TAPS[a][r, p] = 1 when, at output row parity a, the 3x3 kernel's row p reads the input row
# i - 1 + r of the low-resolution image (r = 0, 1, 2): row 2i + a + p - 1 of the up-sampled image
# is input row i + floor((a + p - 1) / 2).
TAPS = np.array([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],
                 [[0, 0, 0], [1, 1, 0], [0, 0, 1]]])  # (2, 3, 3): parity a, row r, kernel row p
# FOLD[(r, s, a, b), (p, q)] = TAPS[a][r, p] TAPS[b][s, q]: W4 = FOLD W is one small product
# (an einsum over the three factors would search its contraction path at every call)
FOLD = np.einsum("arp,bsq->rsabpq", TAPS, TAPS).reshape(36, 9)  # (r s a b, p q)


@dataclass(frozen=True)
class UpConvCache:
    """conv: the cache of the low-resolution convolution; shape: (n, h, w, c_in) of x."""

    conv: np.ndarray
    shape: tuple


class UpConv:
    """Nearest-neighbour up-sampling by 2, then a 3x3 convolution: the U-Net's up-sampling step
    (Ho et al. 2020, App. B; a transposed convolution leaves checkerboard artifacts, Odena et al.
    2016), computed at the *low* resolution.

    The up-sampled image is ``u[n, 2 i + a, 2 j + b, c] = x[n, i, j, c]`` (a, b in {0, 1}), and
    ``y = Conv3x3(u; W, bias)``. An output pixel ``(2 i + a, 2 j + b)`` reads only the 3x3
    neighbourhood of ``x[n, i, j]``: its kernel row p lands on input row ``i - 1 + r`` with
    ``TAPS[a][r, p] = 1``. So all four outputs of an input pixel are one 3x3 convolution of x
    with ``4 c_out`` output channels,

    ``y[n, 2 i + a, 2 j + b, o] = Conv3x3(x; W4)[n, i, j, a, b, o] + bias[o]``,
    ``W4[r, s, c, a, b, o] = sum_{p, q} TAPS[a][r, p] TAPS[b][s, q] W[p, q, c, o]``:

    the same FLOPs as convolving u, but an im2col a quarter the size, no up-sampled copy of x, and
    a matrix product with ``4 c_out`` columns, which OpenBLAS runs faster than one with c_out.
    Backward: ``dy`` is regrouped into ``dy4[n, i, j, a, b, o]``, the low-resolution
    convolution's backward rule gives dx and ``dW4``, and ``dW[p, q, c, o] = sum_{r, s, a, b}
    TAPS[a][r, p] TAPS[b][s, q] dW4[r, s, c, a, b, o]`` (the transpose of the fold above),
    ``dbias = sum_{a, b} dbias4[a, b]``. ``W`` and ``bias`` are those of the 3x3 convolution
    of u, as PyTorch's ``Conv2d`` after ``interpolate(scale_factor=2)`` holds them.
    """

    def __init__(self, c_in, c_out, name="upconv"):
        self.c_in, self.c_out, self.name = c_in, c_out, name
        self.conv = Conv2d(c_in, 4 * c_out, 3, name=f"{name}.low")  # bound to W4 at each call
        self.W = self.b = self.dW = self.db = None

    def shapes(self):
        return (("W", (3, 3, self.c_in, self.c_out)), ("b", (self.c_out,)))

    def bind(self, params, grads):
        self.W, self.b = params["W"], params["b"]
        self.dW, self.db = grads["W"], grads["b"]

    def init(self, rng):
        """PyTorch's default for the 3x3 convolution: ``U(-1/sqrt(9 c_in), 1/sqrt(9 c_in))``."""
        bound = 1.0 / np.sqrt(9 * self.c_in)
        self.W[...] = rng.uniform(-bound, bound, size=self.W.shape)
        self.b[...] = rng.uniform(-bound, bound, size=self.b.shape)

    def _bind_low(self, work):
        """Bind the low-resolution convolution to ``W4`` and ``bias`` tiled four times."""
        c_in, c_out = self.c_in, self.c_out
        W4 = work.get(f"{self.name}.W4", (3, 3, c_in, 4 * c_out))  # (3, 3, c_in, 4 c_out)
        folded = FOLD.astype(self.W.dtype) @ self.W.reshape(9, -1)  # (r s a b, c_in c_out)
        W4.reshape(3, 3, c_in, 2, 2, c_out)[...] = (
            folded.reshape(3, 3, 2, 2, c_in, c_out).transpose(0, 1, 4, 2, 3, 5))
        b4 = work.get(f"{self.name}.b4", (4 * c_out,))  # (4 c_out,)
        b4.reshape(4, c_out)[...] = self.b
        dW4 = work.get(f"{self.name}.dW4", W4.shape)  # (3, 3, c_in, 4 c_out)
        db4 = work.get(f"{self.name}.db4", b4.shape)  # (4 c_out,)
        self.conv.bind({"W": W4, "b": b4}, {"W": dW4, "b": db4})

    def forward(self, x, work=None):
        """x (n, h, w, c_in) -> y (n, 2h, 2w, c_out)."""
        work = _work(work, x.dtype)
        n, h, w, _ = x.shape
        self._bind_low(work)
        y4, cache = self.conv.forward(x, work)  # (n, h, w, 4 c_out): (a, b, o) per pixel
        y = work.get(f"{self.name}.y", (n, 2 * h, 2 * w, self.c_out))  # (n, 2h, 2w, c_out)
        y.reshape(n, h, 2, w, 2, self.c_out)[...] = (
            y4.reshape(n, h, w, 2, 2, self.c_out).transpose(0, 1, 3, 2, 4, 5))
        return y, UpConvCache(cache, x.shape)

    def backward(self, cache, dy, work=None):
        """dy (n, 2h, 2w, c_out) -> dx (n, h, w, c_in); writes dW, db."""
        work = _work(work, dy.dtype)
        n, h, w, _ = cache.shape
        self._bind_low(work)
        dy4 = work.get(f"{self.name}.dy4", (n, h, w, 4 * self.c_out))  # (n, h, w, 4 c_out)
        dy4.reshape(n, h, w, 2, 2, self.c_out)[...] = (
            dy.reshape(n, h, 2, w, 2, self.c_out).transpose(0, 1, 3, 2, 4, 5))
        dx = self.conv.backward(cache.conv, dy4, work)  # (n, h, w, c_in)
        dW4 = self.conv.dW.reshape(3, 3, self.c_in, 2, 2, self.c_out)  # (r, s, c, a, b, o)
        dW4 = dW4.transpose(0, 1, 3, 4, 2, 5).reshape(36, -1)  # (r s a b, c o), a copy
        np.matmul(FOLD.T.astype(self.W.dtype), dW4, out=self.dW.reshape(9, -1))  # FOLD^T dW4
        np.sum(self.conv.db.reshape(4, self.c_out), axis=0, out=self.db)
        return dx

    def torch_state(self):
        """``weight`` (c_out, c_in, 3, 3) and ``bias``: PyTorch's ``Conv2d`` after up-sampling."""
        return {"weight": self.W.transpose(3, 2, 0, 1).copy(), "bias": self.b.copy()}


# ----------------------------------------------------------------------------------------------
# Residual block
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResBlockCache:
    """The caches of a :class:`ResBlock`'s layers, in forward order; ``semb`` (n, E) its input."""

    norm1: GroupNormCache
    act1: tuple
    conv1: np.ndarray
    norm2: GroupNormCache
    act2: tuple
    conv2: np.ndarray
    skip: np.ndarray
    semb: np.ndarray


class ResBlock:
    """Residual block with an embedding added per channel (Ho et al. 2020, App. B; Dhariwal and
    Nichol 2021, Sec. 3), the building block of the U-Net::

        u   = Conv1(SiLU(GroupNorm1(x))) + (semb W_e + b_e)[:, None, None, :]
        out = Conv2(SiLU(GroupNorm2(u))) + skip(x)

    ``semb = SiLU(emb)`` (n, E) is the network's time (and class) embedding after its SiLU,
    projected to c_out numbers per image and added to every pixel. ``skip`` is the identity when
    c_in = c_out, else a 1x1 :class:`Conv2d` (He et al. 2016, eq. 2). Ho et al. add dropout
    before Conv2; this block has none.

    Backward, the chain rule through the same lines in reverse: ``du`` comes back through Conv2,
    SiLU and GroupNorm2; the projection receives ``de = sum_{i, j} du`` (each image's per-channel
    total: it was added to every pixel), which gives ``dsemb = de W_e^T``; ``dx`` comes back
    through Conv1, SiLU and GroupNorm1 and adds the skip's ``dout`` (identity) or its 1x1
    convolution's input gradient.
    """

    def __init__(self, c_in, c_out, embed_dim, groups, name="res"):
        self.c_in, self.c_out, self.name = c_in, c_out, name
        self.norm1 = GroupNorm(groups, c_in, name=f"{name}.norm1")
        self.act1 = SiLU(f"{name}.act1")
        self.conv1 = Conv2d(c_in, c_out, 3, name=f"{name}.conv1")
        self.emb = nn.Linear(embed_dim, c_out)
        self.norm2 = GroupNorm(groups, c_out, name=f"{name}.norm2")
        self.act2 = SiLU(f"{name}.act2")
        self.conv2 = Conv2d(c_out, c_out, 3, name=f"{name}.conv2")
        self.skip = Conv2d(c_in, c_out, 1, name=f"{name}.skip") if c_in != c_out else None
        self.layers = {"norm1": self.norm1, "conv1": self.conv1, "emb": self.emb,
                       "norm2": self.norm2, "conv2": self.conv2}
        if self.skip is not None:
            self.layers["skip"] = self.skip

    def shapes(self):
        return tuple((f"{key}.{p}", shape) for key, layer in self.layers.items()
                     for p, shape in layer.shapes())

    def bind(self, params, grads):
        for key, layer in self.layers.items():
            names = [p for p, _ in layer.shapes()]
            layer.bind({p: params[f"{key}.{p}"] for p in names},
                       {p: grads[f"{key}.{p}"] for p in names})

    def init(self, rng):
        for layer in self.layers.values():
            layer.init(rng)

    def forward(self, x, semb, work=None):
        """x (n, h, w, c_in), semb (n, E) -> out (n, h, w, c_out), :class:`ResBlockCache`."""
        work = _work(work, x.dtype)
        h, c_norm1 = self.norm1.forward(x, work)  # (n, h, w, c_in)
        h, c_act1 = self.act1.forward(h, work)  # (n, h, w, c_in)
        u, c_conv1 = self.conv1.forward(h, work)  # (n, h, w, c_out)
        e = work.get(f"{self.name}.e", (x.shape[0], self.c_out))  # (n, c_out)
        e = self.emb.forward(semb, out=e)  # (n, c_out)
        u += e[:, None, None, :]
        h, c_norm2 = self.norm2.forward(u, work)  # (n, h, w, c_out)
        h, c_act2 = self.act2.forward(h, work)  # (n, h, w, c_out)
        out, c_conv2 = self.conv2.forward(h, work)  # (n, h, w, c_out)
        c_skip = None
        if self.skip is None:
            out += x
        else:
            s, c_skip = self.skip.forward(x, work)  # (n, h, w, c_out)
            out += s
        return out, ResBlockCache(c_norm1, c_act1, c_conv1, c_norm2, c_act2, c_conv2, c_skip, semb)

    def backward(self, cache, dout, work=None):
        """dout (n, h, w, c_out) -> dx (n, h, w, c_in), dsemb (n, E); writes every gradient."""
        work = _work(work, dout.dtype)
        dh = self.conv2.backward(cache.conv2, dout, work)  # (n, h, w, c_out)
        dh = self.act2.backward(cache.act2, dh, work)  # (n, h, w, c_out)
        du = self.norm2.backward(cache.norm2, dh, work)  # (n, h, w, c_out)
        de = np.einsum("nhwc->nc", du)  # (n, c_out): sum over pixels
        dsemb = work.get(f"{self.name}.dsemb", cache.semb.shape)  # (n, E)
        dsemb = self.emb.backward(cache.semb, de, out=dsemb)  # (n, E)
        dh = self.conv1.backward(cache.conv1, du, work)  # (n, h, w, c_in)
        dh = self.act1.backward(cache.act1, dh, work)  # (n, h, w, c_in)
        dx = self.norm1.backward(cache.norm1, dh, work)  # (n, h, w, c_in)
        if self.skip is None:
            dx += dout
        else:
            dx += self.skip.backward(cache.skip, dout, work)
        return dx, dsemb

    def torch_state(self):
        """PyTorch names: ``norm1.weight``, ``conv1.weight``, ``emb.weight`` (W_e^T), ..."""
        state = {}
        for key, layer in self.layers.items():
            if isinstance(layer, nn.Linear):
                state.update({f"{key}.weight": layer.W.T.copy(), f"{key}.bias": layer.b.copy()})
            else:
                state.update({f"{key}.{p}": v for p, v in layer.torch_state().items()})
        return state
