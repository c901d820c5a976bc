"""Ways to compute a 3x3 convolution (stride 1, padding 1) in NumPy, forward and backward, timed.

A 3x3 convolution of x (n, c_in, h, w) with weights W (c_out, c_in, 3, 3) is

    y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] x_pad[n, c, i + p, j + q],

2 * 9 * c_in * c_out * n * h * w floating-point operations (FLOPs) forward; the backward pass
(``dW = sum x_pad dy``, ``dx = conv(dy, W flipped and transposed)``) costs twice that. Every
method below turns the sum into matrix products (GEMMs), which OpenBLAS does at 150-200 GFLOP/s
on this machine; they differ in how much memory they copy to get there:

``numpy-ml``
    im2col in the NCHW layout by fancy indexing (``x_pad[:, k, i, j]`` with precomputed index
    arrays), one GEMM, and ``col2im`` by ``np.add.at`` for dx: the shape of numpy-ml's
    ``Conv2D``.
``im2col-cl``
    channels-last (n, h, w, c): the column matrix (n h w, 9 c_in) is filled by nine copies of
    shifted views ``x_pad[:, p:p+h, q:q+w, :]`` (each a strided block copy, no index arrays);
    one GEMM with K = 9 c_in. Backward: ``dW = cols^T dy`` (cols kept from the forward pass),
    ``dcols = dy W^T`` and col2im by nine shifted adds.
``shift9``
    channels-last, nine shifted matmuls: ``y += x_pad[:, p:p+h, q:q+w, :] @ W[p, q]``, each
    shifted view first copied to a contiguous buffer (BLAS needs a plain 2-D matrix).
``flat9``
    channels-last, padded image flattened to rows: a shift by (p, q) is a shift by
    ``p (w + 2) + q`` *rows*, so each of the nine products reads a contiguous slice of rows of
    x_pad, no copy at all; the outputs are computed on the padded grid (the ring is discarded)
    and summed.
``im2col-cl-chunk``
    ``im2col-cl`` on chunks of the batch small enough that the chunk's column matrix (about
    ``--chunk-mb`` MB) stays in the cache between being written and being read by the GEMM.
    Backward: dW chunk by chunk; dx as the forward convolution of dy with the kernel flipped
    in space and transposed in channels (for stride 1 the adjoint of the convolution is one).
``im2col-cl-chunk-col2im``
    the same forward; backward dx by ``dcols = dy W^T`` and col2im (nine shifted adds) chunk by
    chunk, which works for any stride.
``cnhw-chunk``
    channels first, batch second, (c, n, h, w): the columns (9 c_in, n h w) and ``y = W cols``,
    the orientation in which OpenBLAS runs these narrow products fastest, at the price of
    im2col copies whose contiguous runs are one image row (w numbers) long.
``npflow``
    :class:`npflow.networks.layers.Conv2d` itself (``im2col-cl-chunk`` with the im2col done by
    three copies of overlapping windows, and dx as the convolution of dy with the flipped
    kernel), through a reused workspace.
``torch``
    ``torch.nn.functional.conv2d`` and its autograd backward (oneDNN), when torch is installed,
    in the same process for a ratio measured under the same load.

Every method is checked against a float64 direct sum first. Times are the best of ``--repeats``
runs, reported as GFLOP/s. By default OpenBLAS (through :mod:`npflow._blas`) and torch run on
one thread and the time is the CPU time of the calling thread (``time.thread_time``): on a
machine shared with other jobs, wall time with two BLAS threads measures the other jobs more
than the convolution (two threads that spin-wait for each other on two busy cores ran the
1024x1024 matmul at 7-19 GFLOP/s instead of 180). ``--threads 2`` measures wall time with two
threads instead.

    PYTHONPATH=. nice python demos/experiments/bench_conv.py
    PYTHONPATH=. nice python demos/experiments/bench_conv.py --channels 64 --sides 28 --batches 128
"""
import argparse
import contextlib
import time

import numpy as np

from npflow import _blas, nn
from npflow.networks import layers

CHUNK_BYTES = 4 << 20  # the column matrix of one chunk of im2col-cl-chunk (--chunk-mb)


# --------------------------------------------------------------------------------------------
# Reference: the defining sum, in float64
# --------------------------------------------------------------------------------------------
def reference(x, W):
    """Direct sum. x (n, h, w, ci), W (3, 3, ci, co) -> y (n, h, w, co), float64."""
    n, h, w, _ = x.shape
    x_pad = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))  # (n, h+2, w+2, ci)
    y = np.zeros((n, h, w, W.shape[3]))  # (n, h, w, co)
    for p in range(3):
        for q in range(3):
            y += x_pad[:, p:p + h, q:q + w, :] @ W[p, q].astype(np.float64)
    return y


def pad(x):
    """x (n, h, w, c) -> x_pad (n, h+2, w+2, c) with a ring of zeros."""
    n, h, w, c = x.shape
    x_pad = np.zeros((n, h + 2, w + 2, c), x.dtype)  # (n, h+2, w+2, c)
    x_pad[:, 1:-1, 1:-1, :] = x
    return x_pad


# --------------------------------------------------------------------------------------------
# numpy-ml: NCHW im2col by fancy indexing, col2im by np.add.at
# --------------------------------------------------------------------------------------------
def _indices(c, h, w):
    """Index arrays (k, i, j) of numpy-ml's ``_im2col_indices`` for a 3x3 kernel, padding 1."""
    i0 = np.tile(np.repeat(np.arange(3), 3), c)  # (9 c,)
    j0 = np.tile(np.arange(3), 3 * c)  # (9 c,)
    i1 = np.repeat(np.arange(h), w)  # (h w,)
    j1 = np.tile(np.arange(w), h)  # (h w,)
    i = i0[:, None] + i1[None, :]  # (9 c, h w)
    j = j0[:, None] + j1[None, :]  # (9 c, h w)
    k = np.repeat(np.arange(c), 9)[:, None]  # (9 c, 1)
    return k, i, j


def numpyml_forward(x, W):
    """x (n, ci, h, w), W (co, ci, 3, 3) -> y (n, co, h, w), cols."""
    n, c, h, w = x.shape
    k, i, j = _indices(c, h, w)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # (n, ci, h+2, w+2)
    cols = x_pad[:, k, i, j].transpose(1, 2, 0).reshape(9 * c, -1)  # (9 ci, h w n)
    y = W.reshape(W.shape[0], -1) @ cols  # (co, h w n)
    return y.reshape(-1, h, w, n).transpose(3, 0, 1, 2), cols  # (n, co, h, w)


def numpyml_backward(saved, W, dy):
    """dy (n, co, h, w) -> dx (n, ci, h, w), dW (co, ci, 3, 3)."""
    cols = saved
    n, co, h, w = dy.shape
    c = W.shape[1]
    dy_mat = dy.transpose(1, 2, 3, 0).reshape(co, -1)  # (co, h w n)
    dW = (dy_mat @ cols.T).reshape(W.shape)  # (co, ci, 3, 3)
    dcols = W.reshape(co, -1).T @ dy_mat  # (9 ci, h w n)
    k, i, j = _indices(c, h, w)
    dx_pad = np.zeros((n, c, h + 2, w + 2), dy.dtype)  # (n, ci, h+2, w+2)
    np.add.at(dx_pad, (slice(None), k, i, j), dcols.reshape(9 * c, h * w, n).transpose(2, 0, 1))
    return dx_pad[:, :, 1:-1, 1:-1], dW


# --------------------------------------------------------------------------------------------
# Channels-last im2col, one GEMM
# --------------------------------------------------------------------------------------------
def im2col_cl(x_pad, h, w, out=None):
    """x_pad (n, h+2, w+2, c) -> cols (n, h, w, 3, 3, c) by nine shifted block copies."""
    n, c = x_pad.shape[0], x_pad.shape[3]
    cols = np.empty((n, h, w, 3, 3, c), x_pad.dtype) if out is None else out
    for p in range(3):
        for q in range(3):
            cols[:, :, :, p, q, :] = x_pad[:, p:p + h, q:q + w, :]
    return cols


def col2im_cl(dcols, h, w):
    """Adjoint of im2col_cl: dcols (n, h, w, 3, 3, c) -> dx (n, h, w, c) by nine shifted adds."""
    n, c = dcols.shape[0], dcols.shape[5]
    dx_pad = np.zeros((n, h + 2, w + 2, c), dcols.dtype)  # (n, h+2, w+2, c)
    for p in range(3):
        for q in range(3):
            dx_pad[:, p:p + h, q:q + w, :] += dcols[:, :, :, p, q, :]
    return dx_pad[:, 1:-1, 1:-1, :]


def im2col_forward(x, W):
    n, h, w, c = x.shape
    cols = im2col_cl(pad(x), h, w).reshape(n * h * w, 9 * c)  # (n h w, 9 ci)
    y = cols @ W.reshape(9 * c, -1)  # (n h w, co)
    return y.reshape(n, h, w, -1), cols


def im2col_backward(cols, W, dy):
    n, h, w, co = dy.shape
    dy2 = dy.reshape(-1, co)  # (n h w, co)
    dW = (cols.T @ dy2).reshape(W.shape)  # (3, 3, ci, co)
    dcols = dy2 @ W.reshape(-1, co).T  # (n h w, 9 ci)
    return col2im_cl(dcols.reshape(n, h, w, 3, 3, -1), h, w), dW


# --------------------------------------------------------------------------------------------
# Nine shifted matmuls (each shifted view copied to a contiguous buffer)
# --------------------------------------------------------------------------------------------
def shift9_forward(x, W):
    n, h, w, c = x.shape
    x_pad = pad(x)
    shifted = np.empty_like(x)  # (n, h, w, ci)
    y = np.zeros((n * h * w, W.shape[3]), x.dtype)  # (n h w, co)
    for p in range(3):
        for q in range(3):
            shifted[...] = x_pad[:, p:p + h, q:q + w, :]
            y += shifted.reshape(-1, c) @ W[p, q]
    return y.reshape(n, h, w, -1), x_pad


def shift9_backward(x_pad, W, dy):
    n, h, w, co = dy.shape
    c = W.shape[2]
    dy2 = dy.reshape(-1, co)  # (n h w, co)
    shifted = np.empty((n, h, w, c), dy.dtype)  # (n, h, w, ci)
    dW = np.empty_like(W)  # (3, 3, ci, co)
    dx_pad = np.zeros_like(x_pad)  # (n, h+2, w+2, ci)
    for p in range(3):
        for q in range(3):
            shifted[...] = x_pad[:, p:p + h, q:q + w, :]
            np.matmul(shifted.reshape(-1, c).T, dy2, out=dW[p, q])
            dx_pad[:, p:p + h, q:q + w, :] += (dy2 @ W[p, q].T).reshape(n, h, w, c)
    return dx_pad[:, 1:-1, 1:-1, :], dW


# --------------------------------------------------------------------------------------------
# Flat padded rows: a shift is a row offset, nine GEMMs on contiguous slices, no copies
# --------------------------------------------------------------------------------------------
def flat_pad(x):
    """x (n, h, w, c) -> rows (m + 2 s, c): the padded image's rows with s = w + 3 zero rows
    before and after, so that every shift ``p (w + 2) + q - s`` stays inside; m = n (h+2)(w+2)."""
    n, h, w, c = x.shape
    s = w + 3
    m = n * (h + 2) * (w + 2)
    rows = np.zeros((m + 2 * s, c), x.dtype)  # (m + 2 s, c)
    rows[s:s + m].reshape(n, h + 2, w + 2, c)[:, 1:-1, 1:-1, :] = x
    return rows


def _offsets(w):
    return [(p - 1) * (w + 2) + (q - 1) for p in range(3) for q in range(3)]


def flat9_forward(x, W):
    n, h, w, c = x.shape
    s, m = w + 3, n * (h + 2) * (w + 2)
    rows = flat_pad(x)
    Wk = W.reshape(9, c, -1)
    y = np.zeros((m, W.shape[3]), x.dtype)  # (m, co) on the padded grid
    buf = np.empty_like(y)  # (m, co)
    for k, off in enumerate(_offsets(w)):
        y += np.matmul(rows[s + off:s + off + m], Wk[k], out=buf)
    return y.reshape(n, h + 2, w + 2, -1)[:, 1:-1, 1:-1, :], rows


def flat9_backward(rows, W, dy):
    n, h, w, co = dy.shape
    c = W.shape[2]
    s, m = w + 3, n * (h + 2) * (w + 2)
    dy_rows = flat_pad(dy)  # (m + 2 s, co), zero on the ring
    Wk = W.reshape(9, c, co)
    dW = np.empty((9, c, co), dy.dtype)
    dx = np.zeros((m, c), dy.dtype)  # (m, ci) on the padded grid
    buf = np.empty_like(dx)
    for k, off in enumerate(_offsets(w)):
        # y[r] = sum_k rows[r + off_k] W_k: dW_k = sum_r rows[r + off_k]^T dy[r],
        # dx[r] = sum_k dy[r - off_k] W_k^T
        np.matmul(rows[s + off:s + off + m].T, dy_rows[s:s + m], out=dW[k])
        dx += np.matmul(dy_rows[s - off:s - off + m], Wk[k].T, out=buf)
    return dx.reshape(n, h + 2, w + 2, c)[:, 1:-1, 1:-1, :], dW.reshape(W.shape)


# --------------------------------------------------------------------------------------------
# im2col-cl on cache-sized chunks of the batch
# --------------------------------------------------------------------------------------------
def _chunk(n, h, w, c):
    return max(1, min(n, CHUNK_BYTES // (h * w * 9 * c * 4)))


def chunk_forward(x, W):
    n, h, w, c = x.shape
    x_pad = pad(x)
    b = _chunk(n, h, w, c)
    W2 = W.reshape(9 * c, -1)
    y = np.empty((n, h, w, W.shape[3]), x.dtype)  # (n, h, w, co)
    cols = np.empty((b, h, w, 3, 3, c), x.dtype)  # (b, h, w, 3, 3, ci)
    for i in range(0, n, b):
        j = min(i + b, n)
        part = im2col_cl(x_pad[i:j], h, w, out=cols[:j - i])
        np.matmul(part.reshape(-1, 9 * c), W2, out=y[i:j].reshape(-1, W.shape[3]))
    return y, x_pad


def chunk_backward(x_pad, W, dy):
    """dW chunk by chunk; dx = conv(dy, W flipped in space and transposed in channels)."""
    n, h, w, co = dy.shape
    c = W.shape[2]
    b = _chunk(n, h, w, max(c, co))
    dW = np.zeros((9 * c, co), dy.dtype)
    dW_part = np.empty_like(dW)
    dy_pad = pad(dy)  # (n, h+2, w+2, co)
    Wflip = W[::-1, ::-1].transpose(0, 1, 3, 2).reshape(9 * co, c)  # (9 co, ci)
    dx = np.empty((n, h, w, c), dy.dtype)  # (n, h, w, ci)
    cols = np.empty((b, h, w, 3, 3, c), dy.dtype)
    dcols = np.empty((b, h, w, 3, 3, co), dy.dtype)
    for i in range(0, n, b):
        j = min(i + b, n)
        part = im2col_cl(x_pad[i:j], h, w, out=cols[:j - i]).reshape(-1, 9 * c)
        dW += np.matmul(part.T, dy[i:j].reshape(-1, co), out=dW_part)
        dpart = im2col_cl(dy_pad[i:j], h, w, out=dcols[:j - i]).reshape(-1, 9 * co)
        np.matmul(dpart, Wflip, out=dx[i:j].reshape(-1, c))
    return dx, dW.reshape(W.shape)


def chunk_col2im_backward(x_pad, W, dy):
    """dW chunk by chunk; dx = col2im(dy W^T) chunk by chunk (the adjoint of im2col)."""
    n, h, w, co = dy.shape
    c = W.shape[2]
    b = _chunk(n, h, w, c)
    dW = np.zeros((9 * c, co), dy.dtype)
    dW_part = np.empty_like(dW)
    W2t = W.reshape(9 * c, co).T  # (co, 9 ci)
    dx = np.empty((n, h, w, c), dy.dtype)  # (n, h, w, ci)
    cols = np.empty((b, h, w, 3, 3, c), dy.dtype)  # (b, h, w, 3, 3, ci)
    dx_pad = np.empty((b, h + 2, w + 2, c), dy.dtype)  # (b, h+2, w+2, ci)
    for i in range(0, n, b):
        j = min(i + b, n)
        part = im2col_cl(x_pad[i:j], h, w, out=cols[:j - i]).reshape(-1, 9 * c)
        dy2 = dy[i:j].reshape(-1, co)
        dW += np.matmul(part.T, dy2, out=dW_part)
        dcols = np.matmul(dy2, W2t, out=part).reshape(j - i, h, w, 3, 3, c)
        dxp = dx_pad[:j - i]
        dxp[...] = 0
        for p in range(3):
            for q in range(3):
                dxp[:, p:p + h, q:q + w, :] += dcols[:, :, :, p, q, :]
        dx[i:j] = dxp[:, 1:-1, 1:-1, :]
    return dx, dW.reshape(W.shape)


# --------------------------------------------------------------------------------------------
# Channels first, batch second: (c, n, h, w), columns (9 c_in, n h w), y = W cols
# --------------------------------------------------------------------------------------------
def _chunk_cf(n, h, w, c):
    return max(1, min(n, CHUNK_BYTES // (h * w * 9 * c * 4)))


def im2col_cf(x_pad, h, w, out):
    """x_pad (c, b, h+2, w+2) -> cols (c, 3, 3, b, h, w) by nine shifted block copies."""
    for p in range(3):
        for q in range(3):
            out[:, p, q] = x_pad[:, :, p:p + h, q:q + w]
    return out


def cf_forward(x, W):
    """x (ci, n, h, w), W (co, ci, 3, 3) -> y (co, n, h, w)."""
    c, n, h, w = x.shape
    co = W.shape[0]
    b = _chunk_cf(n, h, w, c)
    W2 = W.reshape(co, 9 * c)  # (co, 9 ci)
    y = np.empty((co, n, h, w), x.dtype)  # (co, n, h, w)
    x_pad = np.zeros((c, b, h + 2, w + 2), x.dtype)  # (ci, b, h+2, w+2)
    cols = np.empty((c, 3, 3, b, h, w), x.dtype)  # (ci, 3, 3, b, h, w)
    y_part = np.empty((co, b * h * w), x.dtype)
    for i in range(0, n, b):
        j = min(i + b, n)
        x_pad[:, :j - i, 1:-1, 1:-1] = x[:, i:j]
        part = im2col_cf(x_pad[:, :j - i], h, w, cols[:, :, :, :j - i]).reshape(9 * c, -1)
        np.matmul(W2, part, out=y_part[:, :part.shape[1]])
        y[:, i:j] = y_part[:, :part.shape[1]].reshape(co, j - i, h, w)
    return y, x


def cf_backward(x, W, dy):
    c, n, h, w = x.shape
    co = W.shape[0]
    b = _chunk_cf(n, h, w, c)
    W2 = W.reshape(co, 9 * c)
    dW = np.zeros((co, 9 * c), x.dtype)
    dW_part = np.empty_like(dW)
    dx = np.empty_like(x)  # (ci, n, h, w)
    x_pad = np.zeros((c, b, h + 2, w + 2), x.dtype)
    cols = np.empty((c, 3, 3, b, h, w), x.dtype)
    dy_part = np.empty((co, b, h, w), x.dtype)
    for i in range(0, n, b):
        j = min(i + b, n)
        x_pad[:, :j - i, 1:-1, 1:-1] = x[:, i:j]
        part = im2col_cf(x_pad[:, :j - i], h, w, cols[:, :, :, :j - i]).reshape(9 * c, -1)
        dy2 = dy_part[:, :j - i]
        dy2[...] = dy[:, i:j]
        dy2 = dy2.reshape(co, -1)  # (co, b h w)
        dW += np.matmul(dy2, part.T, out=dW_part)
        dcols = np.matmul(W2.T, dy2, out=part).reshape(c, 3, 3, j - i, h, w)
        dxp = x_pad[:, :j - i]
        dxp[...] = 0
        for p in range(3):
            for q in range(3):
                dxp[:, :, p:p + h, q:q + w] += dcols[:, p, q]
        dx[:, i:j] = dxp[:, :, 1:-1, 1:-1]
        x_pad[...] = 0
    return dx, dW.reshape(W.shape)


def npflow_forward(x, W):
    """npflow's ``layers.Conv2d`` (x (n, h, w, ci), W (3, 3, ci, co)), with a reused workspace."""
    conv = layers.Conv2d(W.shape[2], W.shape[3], name="bench")
    conv.bind({"W": W, "b": np.zeros(W.shape[3], W.dtype)},
              {"W": np.empty_like(W), "b": np.empty(W.shape[3], W.dtype)})
    work = _WORK.setdefault(x.shape + W.shape, nn.Workspace(x.dtype))
    y, cache = conv.forward(x, work)
    return y, (conv, cache, work)


def npflow_backward(saved, W, dy):
    conv, cache, work = saved
    dx = conv.backward(cache, dy, work)
    return dx, conv.dW


_WORK = {}


METHODS = {
    "numpy-ml": (numpyml_forward, numpyml_backward),
    "im2col-cl": (im2col_forward, im2col_backward),
    "shift9": (shift9_forward, shift9_backward),
    "flat9": (flat9_forward, flat9_backward),
    "im2col-cl-chunk": (chunk_forward, chunk_backward),
    "im2col-cl-chunk-col2im": (chunk_forward, chunk_col2im_backward),
    "cnhw-chunk": (cf_forward, cf_backward),
    "npflow": (npflow_forward, npflow_backward),
}
NCHW = {"numpy-ml"}
CNHW = {"cnhw-chunk"}


_c = np.ascontiguousarray


def _to_method(name, x, W):
    """x (n, h, w, c), W (3, 3, ci, co) in the method's layout."""
    if name in NCHW:
        return _c(x.transpose(0, 3, 1, 2)), _c(W.transpose(3, 2, 0, 1))
    if name in CNHW:
        return _c(x.transpose(3, 0, 1, 2)), _c(W.transpose(3, 2, 0, 1))
    return x, W


def _from_method(name, y):
    if name in CNHW:
        return y.transpose(1, 2, 3, 0)
    return y.transpose(0, 2, 3, 1) if name in NCHW else y


def check(rng):
    """Every method against the float64 direct sum (and its adjoint) on a small problem."""
    n, h, w, ci, co = 2, 5, 4, 3, 6
    x = rng.standard_normal((n, h, w, ci)).astype(np.float32)  # (n, h, w, ci)
    W = rng.standard_normal((3, 3, ci, co)).astype(np.float32)  # (3, 3, ci, co)
    dy = rng.standard_normal((n, h, w, co)).astype(np.float32)  # (n, h, w, co)
    y_ref = reference(x, W)
    # adjoint identities: <conv(x), dy> is linear in x and in W
    x_pad = pad(x.astype(np.float64))
    dW_ref = np.stack([[np.einsum("nhwc,nhwo->co", x_pad[:, p:p + h, q:q + w], dy)
                        for q in range(3)] for p in range(3)])
    dx_ref = col2im_cl(np.einsum("nhwo,pqco->nhwpqc", dy.astype(np.float64), W), h, w)
    for name, (forward, backward) in METHODS.items():
        xm, Wm = _to_method(name, x, W)
        y, saved = forward(xm, Wm)
        dx, dW = backward(saved, Wm, _to_method(name, dy, W)[0])
        if name in NCHW or name in CNHW:
            dW = dW.transpose(2, 3, 1, 0)
        for label, got, want in (("y", _from_method(name, y), y_ref),
                                 ("dx", _from_method(name, dx), dx_ref), ("dW", dW, dW_ref)):
            err = np.max(np.abs(got - want)) / np.max(np.abs(want))
            if err > 1e-5:
                raise RuntimeError(f"{name}: {label} differs from the direct sum by {err:.1e}")


CLOCK = time.thread_time  # time.perf_counter with --threads 2


def best_time(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def torch_times(x, W, dy, repeats):
    """Forward and backward seconds of torch's conv2d (NCHW, float32), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)
    Wt = torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))).requires_grad_(True)
    dyt = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, Wt, padding=1)

    def backward():
        xt.grad = Wt.grad = None
        torch.nn.functional.conv2d(xt, Wt, padding=1).backward(dyt)

    forward()
    fwd = best_time(forward, repeats)
    backward()
    # the backward timing includes one forward: subtract the forward time
    return fwd, best_time(backward, repeats) - fwd


def im2col_copies(repeats, images=4, side=28, c=32):
    """Seconds of a 3x3 im2col of (images, side, side, c) by nine block copies, and by three
    copies of overlapping windows of three adjacent pixels (npflow's ``Conv2d._im2col``)."""
    x_pad = np.ones((images, side + 2, side + 2, c), np.float32)
    cols = np.empty((images, side, side, 3, 3, c), np.float32)
    windows = np.lib.stride_tricks.as_strided(
        x_pad, shape=(images, side + 2, side, 3 * c), strides=x_pad.strides[:3] + (x_pad.itemsize,))
    flat = cols.reshape(images, side, side, 3, 3 * c)

    def three():
        for p in range(3):
            flat[:, :, :, p] = windows[:, p:p + side]
    return best_time(lambda: im2col_cl(x_pad, side, side, cols), repeats), best_time(three, repeats)


def narrow_gemm_gflops(repeats, m=3136, k=288, n=32):
    """GFLOP/s of a chunk's forward GEMM, (m, k) @ (k, n) (channels last: 4 images of 28x28,
    32 channels), and of the same product transposed, (n, k) @ (k, m) (channels first)."""
    rng = np.random.default_rng(0)
    cols, W = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
    cols_t, W_t = np.ascontiguousarray(cols.T), np.ascontiguousarray(W.T)
    y, y_t = np.empty((m, n), np.float32), np.empty((n, m), np.float32)
    last = best_time(lambda: np.matmul(cols, W, out=y), repeats)
    first = best_time(lambda: np.matmul(W_t, cols_t, out=y_t), repeats)
    return 2 * m * k * n / last / 1e9, 2 * m * k * n / first / 1e9


def matmul_gflops(repeats):
    a = np.ones((1024, 1024), np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    return 2 * 1024 ** 3 / best_time(lambda: np.matmul(a, a, out=out), repeats) / 1e9


THREADS = 1


def main(channels=(32, 64), sides=(14, 28), batches=(64, 128), methods=None, repeats=3,
         seed=0, threads=1):
    global CLOCK, THREADS
    THREADS = threads
    CLOCK = time.thread_time if threads == 1 else time.perf_counter
    with _blas.limit(threads) if threads == 1 else contextlib.nullcontext():
        _main(channels, sides, batches, methods, repeats, seed)


def _main(channels, sides, batches, methods, repeats, seed):
    rng = np.random.default_rng(seed)
    check(rng)
    methods = list(METHODS) if methods is None else methods
    print(f"{THREADS} thread(s), {CLOCK.__name__}; chunk of im2col-cl-chunk: "
          f"{CHUNK_BYTES / 2**20:g} MiB")
    print(f"numpy {np.__version__}; float32 1024x1024 matmul: {matmul_gflops(repeats):.0f} GFLOP/s")
    last, first = narrow_gemm_gflops(10 * repeats)
    print(f"GEMM (3136 x 288) @ (288 x 32): {last:.0f} GFLOP/s; transposed, (32 x 288) @ "
          f"(288 x 3136): {first:.0f} GFLOP/s")
    nine, three = im2col_copies(10 * repeats)
    print(f"im2col of 4 x 28 x 28 x 32: nine block copies {nine * 1e3:.3f} ms, three window "
          f"copies {three * 1e3:.3f} ms")
    print("GFLOP/s forward / backward (the backward pass does twice the forward FLOPs)")
    names = methods + ["torch"]
    print(f"{'c':>3} {'side':>4} {'batch':>5}  " + "  ".join(f"{m[-15:]:>15}" for m in names))
    for c in channels:
        for side in sides:
            for n in batches:
                x = rng.standard_normal((n, side, side, c)).astype(np.float32)
                W = (rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32)
                dy = rng.standard_normal((n, side, side, c)).astype(np.float32)
                flops = 2 * 9 * c * c * n * side * side
                cells = []
                for name in methods:
                    forward, backward = METHODS[name]
                    xm, Wm = _to_method(name, x, W)
                    dym = _to_method(name, dy, W)[0]
                    reps = 1 if name == "numpy-ml" else repeats
                    saved = forward(xm, Wm)[1]
                    fwd = best_time(lambda: forward(xm, Wm), reps)
                    bwd = best_time(lambda: backward(saved, Wm, dym), reps)
                    cells.append(f"{flops / fwd / 1e9:6.1f} / {2 * flops / bwd / 1e9:6.1f}")
                times = torch_times(x, W, dy, repeats)
                cells.append("-" if times is None else
                             f"{flops / times[0] / 1e9:6.1f} / {2 * flops / times[1] / 1e9:6.1f}")
                print(f"{c:>3} {side:>4} {n:>5}  " + "  ".join(f"{cell:>15}" for cell in cells),
                      flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--sides", type=int, nargs="+", default=[14, 28])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--chunk-mb", type=float, default=CHUNK_BYTES / 2**20,
                        help="bytes of one chunk's column matrix, in MiB (im2col-cl-chunk)")
    args = parser.parse_args()
    CHUNK_BYTES = int(args.chunk_mb * 2**20)
    main(args.channels, args.sides, args.batches, args.methods, args.repeats, args.seed,
         args.threads)
