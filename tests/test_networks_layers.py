"""Tests for npflow.networks.layers: every layer's backward rule against float64 central
differences (every parameter block and every input), the convolution against its defining sum,
group norm against its defining means, the chunked convolution against the unchunked one, and
reused workspaces against fresh arrays.

Tolerance: ``|fd - analytic| <= RTOL * max|analytic| + FLOOR * (1 + sum |w y|)`` with the loss
``L = sum w y``. The central difference with step H = 1e-6 has truncation error ~H^2 (1e-12) and
rounding error ~eps |L| / H (1e-10 |L|): the floor covers the second, RTOL = 1e-6 leaves a
margin of 100x over both for the smooth layers here (no kinks: SiLU, group norm, convolutions).
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _helpers import central_difference
from npflow import nn
from npflow.networks import layers

RTOL = 1e-6
FLOOR = 2e-9


def bind(layer, rng, scale=0.5):
    """Flat float64 buffers for ``layer``'s parameters, bound and filled with random values.

    Returns the named parameter and gradient views (dicts name -> view).
    """
    shapes = layer.shapes()
    sizes = [math.prod(shape) for _, shape in shapes]
    params, grads = np.zeros(sum(sizes)), np.zeros(sum(sizes))
    named_p, named_g, offset = {}, {}, 0
    for (name, shape), size in zip(shapes, sizes):
        named_p[name] = params[offset:offset + size].reshape(shape)
        named_g[name] = grads[offset:offset + size].reshape(shape)
        offset += size
    layer.bind(named_p, named_g)
    layer.init(rng)
    params += scale * rng.standard_normal(params.size)  # gamma != 1, beta != 0 too
    return named_p, named_g


def check(loss_terms, analytic, arrays):
    """Compare ``analytic[name]`` with central differences of ``L = sum loss_terms()`` in every
    array ``arrays[name]`` (perturbed in place, entry by entry)."""
    floor = FLOOR * (1 + np.abs(loss_terms()).sum())
    loss = lambda: float(np.sum(loss_terms()))
    for name, array in arrays.items():
        fd = central_difference(loss, array)
        an = analytic[name]
        err = np.abs(fd - an).max()
        assert err <= RTOL * np.abs(an).max() + floor, (
            f"d L / d {name}: max |fd - analytic| = {err:.3g} (max-abs {np.abs(an).max():.3g})")


class chunks:
    """Context: convolutions use chunks of ``images`` images (COLS_BYTES set to match)."""

    def __init__(self, conv, h, w, images):
        ho, wo = conv.out_size(h, w)
        self.bytes = images * ho * wo * conv.kernel ** 2 * conv.c_in * 8

    def __enter__(self):
        self.old, layers.COLS_BYTES = layers.COLS_BYTES, self.bytes

    def __exit__(self, *exc):
        layers.COLS_BYTES = self.old


def direct_conv(x, W, b, stride):
    """The defining sum y[n, i, j, o] = b[o] + sum x_pad[n, s i + p, s j + q, c] W[p, q, c, o]."""
    k = W.shape[0]
    pad = k // 2
    x_pad = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, _ = x.shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    y = np.tile(b, (n, ho, wo, 1))
    for i in range(ho):
        for j in range(wo):
            for p in range(k):
                for q in range(k):
                    y[:, i, j] += x_pad[:, stride * i + p, stride * j + q] @ W[p, q]
    return y


# --- convolution ------------------------------------------------------------------------------

conv_cases = dict(n=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6),
                  c_in=st.integers(1, 4), c_out=st.integers(1, 4),
                  kernel_stride=st.sampled_from([(3, 1), (3, 2), (1, 1)]),
                  images=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))


@given(**conv_cases)
def test_conv_matches_direct_sum(n, h, w, c_in, c_out, kernel_stride, images, seed):
    """Chunks of 1-3 images (several chunks, a short last one) give the defining sum."""
    rng = np.random.default_rng(seed)
    kernel, stride = kernel_stride
    conv = layers.Conv2d(c_in, c_out, kernel, stride)
    bind(conv, rng)
    x = rng.standard_normal((n, h, w, c_in))
    with chunks(conv, h, w, images):
        y, _ = conv.forward(x)
    np.testing.assert_allclose(y, direct_conv(x, conv.W, conv.b, stride), rtol=1e-12, atol=1e-12)


@given(**conv_cases)
def test_conv_gradients(n, h, w, c_in, c_out, kernel_stride, images, seed):
    rng = np.random.default_rng(seed)
    kernel, stride = kernel_stride
    conv = layers.Conv2d(c_in, c_out, kernel, stride)
    named_p, named_g = bind(conv, rng)
    x = rng.standard_normal((n, h, w, c_in))
    with chunks(conv, h, w, images):
        y, cache = conv.forward(x)
        weight = rng.standard_normal(y.shape)
        dx = conv.backward(cache, weight)
        analytic = {"x": dx.copy(), **{k: g.copy() for k, g in named_g.items()}}
        check(lambda: weight * conv.forward(x)[0], analytic, {"x": x, **named_p})


def test_conv_backward_without_dx_writes_the_same_parameter_gradients():
    rng = np.random.default_rng(0)
    conv = layers.Conv2d(3, 5, 3, 2)
    bind(conv, rng)
    x = rng.standard_normal((2, 6, 5, 3))
    y, cache = conv.forward(x)
    dy = rng.standard_normal(y.shape)
    conv.backward(cache, dy)
    dW, db = conv.dW.copy(), conv.db.copy()
    conv.dW[...] = conv.db[...] = 0
    assert conv.backward(cache, dy, need_dx=False) is None
    np.testing.assert_array_equal(conv.dW, dW)
    np.testing.assert_array_equal(conv.db, db)


def test_conv_sizes_and_checks():
    assert layers.Conv2d(1, 1, 3, 2).out_size(28, 7) == (14, 4)
    assert layers.Conv2d(1, 1, 3, 1).out_size(28, 7) == (28, 7)
    with pytest.raises(ValueError, match="kernel"):
        layers.Conv2d(1, 1, 5)
    with pytest.raises(ValueError, match="stride"):
        layers.Conv2d(1, 1, 3, 3)


# --- group norm -------------------------------------------------------------------------------

norm_cases = dict(n=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4),
                  groups=st.integers(1, 3), per_group=st.integers(1, 3),
                  seed=st.integers(0, 2 ** 32 - 1))


@given(**norm_cases)
def test_group_norm_matches_definition(n, h, w, groups, per_group, seed):
    """Wu and He 2018, eq. 1-2, computed on the (n, G, c/G, h, w) layout of their Fig. 3."""
    rng = np.random.default_rng(seed)
    c = groups * per_group
    norm = layers.GroupNorm(groups, c)
    bind(norm, rng)
    x = 3 + 2 * rng.standard_normal((n, h, w, c))
    y, _ = norm.forward(x)
    xg = x.transpose(0, 3, 1, 2).reshape(n, groups, per_group, h, w)
    mu = xg.mean(axis=(2, 3, 4), keepdims=True)
    var = xg.var(axis=(2, 3, 4), keepdims=True)
    want = ((xg - mu) / np.sqrt(var + 1e-5)).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, want * norm.gamma + norm.beta, rtol=1e-10, atol=1e-12)


@given(**norm_cases)
def test_group_norm_gradients(n, h, w, groups, per_group, seed):
    rng = np.random.default_rng(seed)
    norm = layers.GroupNorm(groups, groups * per_group)
    named_p, named_g = bind(norm, rng)
    x = rng.standard_normal((n, h, w, groups * per_group))
    y, cache = norm.forward(x)
    weight = rng.standard_normal(y.shape)
    analytic = {"x": norm.backward(cache, weight).copy(),
                **{k: g.copy() for k, g in named_g.items()}}
    check(lambda: weight * norm.forward(x)[0], analytic, {"x": x, **named_p})


def test_group_norm_rejects_channels_not_a_multiple_of_groups():
    with pytest.raises(ValueError, match="multiple of groups"):
        layers.GroupNorm(3, 8)


# --- SiLU and up-sampling ---------------------------------------------------------------------

@given(n=st.integers(1, 3), h=st.integers(1, 4), c=st.integers(1, 3),
       seed=st.integers(0, 2 ** 32 - 1))
def test_silu_gradients(n, h, c, seed):
    rng = np.random.default_rng(seed)
    z = 3 * rng.standard_normal((n, h, h + 1, c))
    layer = layers.SiLU()
    y, cache = layer.forward(z)
    weight = rng.standard_normal(y.shape)
    analytic = {"z": layer.backward(cache, weight).copy()}
    check(lambda: weight * layer.forward(z)[0], analytic, {"z": z})


def test_silu_values():
    z = np.array([-2.0, 0.0, 1.5]).reshape(1, 1, 3, 1)
    np.testing.assert_allclose(layers.SiLU().forward(z)[0].ravel(),
                               [-2 / (1 + np.e ** 2), 0, 1.5 / (1 + np.exp(-1.5))], rtol=1e-14)


up_cases = dict(n=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4),
                c_in=st.integers(1, 3), c_out=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))


@given(**up_cases)
def test_upconv_is_upsampling_then_convolution(n, h, w, c_in, c_out, seed):
    """UpConv (computed at the low resolution) equals its definition: every pixel repeated 2x2
    (nearest neighbour), then the direct 3x3 sum."""
    rng = np.random.default_rng(seed)
    up = layers.UpConv(c_in, c_out)
    bind(up, rng)
    x = rng.standard_normal((n, h, w, c_in))
    u = x.repeat(2, axis=1).repeat(2, axis=2)  # (n, 2h, 2w, c_in)
    np.testing.assert_allclose(up.forward(x)[0], direct_conv(u, up.W, up.b, 1), rtol=1e-12,
                               atol=1e-12)


@given(**up_cases)
def test_upconv_gradients(n, h, w, c_in, c_out, seed):
    rng = np.random.default_rng(seed)
    up = layers.UpConv(c_in, c_out)
    named_p, named_g = bind(up, rng)
    x = rng.standard_normal((n, h, w, c_in))
    y, cache = up.forward(x)
    weight = rng.standard_normal(y.shape)
    analytic = {"x": up.backward(cache, weight).copy(), **{k: g.copy() for k, g in named_g.items()}}
    check(lambda: weight * up.forward(x)[0], analytic, {"x": x, **named_p})


# --- residual block ---------------------------------------------------------------------------

@given(n=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4),
       groups=st.integers(1, 2), c_in_per=st.integers(1, 2), c_out_per=st.integers(1, 2),
       embed_dim=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_res_block_gradients(n, h, w, groups, c_in_per, c_out_per, embed_dim, seed):
    """Every block (both norms, both convolutions, the projection, the 1x1 skip when the widths
    differ), the image input x and the embedding input semb."""
    rng = np.random.default_rng(seed)
    c_in, c_out = groups * c_in_per, groups * c_out_per
    block = layers.ResBlock(c_in, c_out, embed_dim, groups)
    named_p, named_g = bind(block, rng)
    assert ("skip.W" in named_p) == (c_in != c_out)
    x = rng.standard_normal((n, h, w, c_in))
    semb = rng.standard_normal((n, embed_dim))
    y, cache = block.forward(x, semb)
    # a group of nearly equal values (std below 0.1, possible with 1-4 values per group)
    # multiplies the loss's rounding error by 1 / std, above the floor of the check
    assume(max(cache.norm1.rstd.max(), cache.norm2.rstd.max()) < 10)
    weight = rng.standard_normal(y.shape)
    dx, dsemb = block.backward(cache, weight)
    analytic = {"x": dx.copy(), "semb": dsemb.copy(), **{k: g.copy() for k, g in named_g.items()}}
    check(lambda: weight * block.forward(x, semb)[0], analytic, {"x": x, "semb": semb, **named_p})


def test_reused_workspace_gives_what_fresh_arrays_give():
    """Two passes with different inputs through one reused workspace: the second pass sees
    nothing of the first (stale padding, unzeroed col2im sums, ...)."""
    rng = np.random.default_rng(1)
    block = layers.ResBlock(2, 4, 3, 2, name="b")
    bind(block, rng)
    work = nn.Workspace(np.float64)
    for _ in range(2):
        x = rng.standard_normal((3, 5, 4, 2))
        semb = rng.standard_normal((3, 3))
        dy = rng.standard_normal((3, 5, 4, 4))
        y, cache = block.forward(x, semb, work)
        dx, dsemb = block.backward(cache, dy, work)
        blocks = (block.conv1.dW, block.norm1.dgamma, block.emb.dW, block.skip.dW)
        grads = [g.copy() for g in blocks]
        y0, cache0 = block.forward(x, semb)
        dx0, dsemb0 = block.backward(cache0, dy)
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(dx, dx0)
        np.testing.assert_array_equal(dsemb, dsemb0)
        for g, g0 in zip(grads, blocks):
            np.testing.assert_array_equal(g, g0)
