"""Tests for npflow.networks.unet: the whole U-Net's gradients against float64 central
differences (every parameter block, and every coordinate of the input: backward's dL/dx is the
vector-Jacobian product the likelihood needs), its interface (flat rows, t shapes, labels,
config round trip, reused workspaces, the memory estimate), input validation, and, when torch is
installed, agreement with the same architecture and weights in torch.

Finite-difference budget: a tiny U-Net has ~10^4 parameters, so every parameter *block* is
checked on ``COORDS`` random coordinates and along ``DIRECTIONS`` random unit directions spanning
the whole block (every parameter enters); the input on ``X_COLUMNS`` random columns (rows are
independent: one perturbation of column c checks all n rows) and along ``X_DIRECTIONS`` random
directions over all of x. Tolerance as in ``test_networks_layers``:
``|fd - analytic| <= RTOL * scale + FLOOR * (1 + sum |w v|)``, scale the block's max-abs
gradient (2-norm for directions). Everything is smooth (SiLU, group norm), so no kinks.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _helpers import load_demo
from npflow import _blas, nn
from npflow.networks import layers
from npflow.networks.unet import UNet

H = 1e-6
RTOL = 1e-6
FLOOR = 2e-9
COORDS = 2
DIRECTIONS = 1
X_COLUMNS = 12  # columns of x checked one by one, besides X_DIRECTIONS directions over all of x
X_DIRECTIONS = 2


def tiny(image_shape=(1, 8, 8), n_classes=0, blocks=1, seed=0, dtype=np.float64, **kwargs):
    """Image 1x8x8, channels (4, 8), groups 2: two levels, 8 -> 4 pixels."""
    net = UNet(image_shape, channels=4, multipliers=(1, 2), blocks=blocks, groups=2,
               embed_dim=8, n_classes=n_classes, dtype=dtype, rng=np.random.default_rng(seed),
               **kwargs)
    return net


def loss_of(net, x, t, y, weight):
    return float(np.sum(weight * net.forward(x, t, y)))


def check_unet_gradients(net, x, t, y, weight, rng):
    v, cache = net.forward_train(x, t, y)
    dx = net.backward(cache, weight).copy()
    grads = {k: g.copy() for k, g in net.named_grads.items()}
    floor = FLOOR * (1 + np.abs(weight * v).sum())
    for block, g in grads.items():
        p = net.named_params[block]
        p0 = p.copy()
        directions = []
        for i in rng.permutation(g.size)[:COORDS]:
            e = np.zeros(g.shape)
            e.flat[i] = 1
            directions.append((e, np.abs(g).max()))
        for _ in range(DIRECTIONS):
            u = rng.standard_normal(g.shape)
            directions.append((u / np.linalg.norm(u), np.linalg.norm(g)))
        for u, scale in directions:
            p[...] = p0 + H * u
            up = loss_of(net, x, t, y, weight)
            p[...] = p0 - H * u
            down = loss_of(net, x, t, y, weight)
            p[...] = p0
            fd, an = (up - down) / (2 * H), float(np.sum(g * u))
            assert abs(fd - an) <= RTOL * scale + floor, (
                f"d L / d {block} along a direction: analytic {an:.10g}, fd {fd:.10g} "
                f"(scale {scale:.3g})")
    row_loss = lambda x_: np.sum(weight * net.forward(x_, t, y), axis=1)  # (n,)
    scale = np.abs(dx).max()
    for c in rng.permutation(x.shape[1])[:X_COLUMNS]:
        u = np.zeros_like(x)
        u[:, c] = 1
        fd = (row_loss(x + H * u) - row_loss(x - H * u)) / (2 * H)  # (n,)
        err = np.abs(fd - dx[:, c]).max()
        assert err <= RTOL * scale + floor, (
            f"d L / d x[:, {c}]: max error {err:.3g} (scale {scale:.3g})")
    for _ in range(X_DIRECTIONS):
        u = rng.standard_normal(x.shape)
        u /= np.linalg.norm(u, axis=1, keepdims=True)  # (n, d), a unit direction per row
        fd = (row_loss(x + H * u) - row_loss(x - H * u)) / (2 * H)  # (n,)
        err = np.abs(fd - np.sum(dx * u, axis=1)).max()
        assert err <= RTOL * np.linalg.norm(dx, axis=1).max() + floor, (
            f"d L / d x along a direction: max error {err:.3g}")


@settings(max_examples=5)
@given(n=st.integers(1, 3), channels_in=st.integers(1, 2), side=st.sampled_from([4, 8]),
       blocks=st.integers(1, 2), n_classes=st.sampled_from([0, 3]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_gradients_match_finite_differences(n, channels_in, side, blocks, n_classes, seed):
    """Every parameter block (time MLP, label table, every convolution, norm and projection)
    and dL/dx, with random weights (gamma != 1, beta != 0)."""
    rng = np.random.default_rng(seed)
    net = tiny((channels_in, side, side + 4), n_classes, blocks, seed)
    net.params += 0.3 * rng.standard_normal(net.params.size)
    x = rng.standard_normal((n, net.dim))
    t = rng.uniform(size=n)
    y = rng.integers(0, n_classes + 1, size=n) if n_classes else None
    weight = rng.standard_normal((n, net.dim))
    check_unet_gradients(net, x, t, y, weight, rng)


def test_backward_is_a_vector_jacobian_product_of_forward():
    """dL/dx = J^T w: <J^T w, u> equals the directional derivative (v(x + h u) - v(x - h u)) / 2h
    dotted with w, for a direction u over all of x (the identity Hutchinson's estimator uses)."""
    rng = np.random.default_rng(3)
    net = tiny()
    x, t = rng.standard_normal((2, net.dim)), np.array([0.2, 0.9])
    w, u = rng.standard_normal((2, net.dim)), rng.standard_normal((2, net.dim))
    v, cache = net.forward_train(x, t)
    vjp = net.backward(cache, w)
    jvp = (net.forward(x + H * u, t) - net.forward(x - H * u, t)) / (2 * H)
    np.testing.assert_allclose(np.sum(vjp * u, axis=1), np.sum(w * jvp, axis=1), rtol=1e-7)


def test_vjp_for_several_cotangents_leaves_the_gradients():
    """vjp's k products through one forward pass equal k separate backward passes, v equals
    forward, and grads keep the last backward's values."""
    rng = np.random.default_rng(4)
    net = tiny(n_classes=2)
    x, t, y = rng.standard_normal((3, 64)), rng.uniform(size=3), np.array([0, 2, 1])
    dv = rng.standard_normal((2, 3, 64))
    net.backward(net.forward_train(x, t, y)[1], np.ones((3, 64)))
    grads = net.grads.copy()
    v, dx = net.vjp(x, t, y, dv=dv, work=nn.Workspace(np.float64))
    np.testing.assert_array_equal(net.grads, grads)
    np.testing.assert_allclose(v, net.forward(x, t, y), rtol=1e-13, atol=1e-15)
    for k in range(2):
        want = net.backward(net.forward_train(x, t, y)[1], dv[k])
        np.testing.assert_allclose(dx[k], want, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="dv must have shape"):
        net.vjp(x, t, y, dv=dv[0])


# --- interface ------------------------------------------------------------------------------

def test_interface_like_the_mlp():
    net = tiny(n_classes=2)
    assert net.dim == 64 and net.n_classes == 2 and net.dtype is np.float64
    assert net.params.shape == net.grads.shape == (net.num_params,)
    assert sum(p.size for p in net.named_params.values()) == net.num_params
    assert net.config()["arch"] == "unet"
    x = np.random.default_rng(0).standard_normal((3, 64))
    v = net.forward(x, 0.5)
    assert v.shape == (3, 64) and v.dtype == np.float64


def test_time_as_scalar_row_or_column():
    net = tiny()
    x = np.random.default_rng(0).standard_normal((3, 64))
    t = np.array([0.1, 0.5, 0.9])
    v = net.forward(x, t)
    np.testing.assert_array_equal(net.forward(x, t[:, None]), v)
    np.testing.assert_allclose(net.forward(x, 0.5)[1], net.forward(x[1:2], 0.5)[0], rtol=1e-12,
                               atol=1e-14)
    assert not np.allclose(net.forward(x, 0.1), net.forward(x, 0.9))  # t matters
    with pytest.raises(ValueError, match="t must"):
        net.forward(x, np.zeros(2))


def test_rows_are_independent_images():
    """The image of row j does not depend on the other rows (group norm is per image)."""
    net = tiny()
    x = np.random.default_rng(0).standard_normal((4, 64))
    v = net.forward(x, 0.3)
    np.testing.assert_allclose(net.forward(x[2:3], 0.3), v[2:3], rtol=1e-12, atol=1e-14)


def test_labels_and_the_null_label():
    net = tiny(n_classes=3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 64))
    np.testing.assert_array_equal(net.forward(x, 0.5), net.forward(x, 0.5, np.array([3, 3])))
    assert not np.allclose(net.forward(x, 0.5, np.array([0, 1])), net.forward(x, 0.5))
    with pytest.raises(ValueError, match=r"classes in 0 \.\. 3 \(3 = null\)"):
        net.forward(x, 0.5, np.array([0, 4]))
    with pytest.raises(TypeError, match="integer"):
        net.forward(x, 0.5, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="unconditional"):
        tiny().forward(x, 0.5, np.array([0, 1]))


def test_config_rebuilds_the_same_network():
    net = tiny(n_classes=2, blocks=2)
    config = net.config()
    assert config == __import__("json").loads(__import__("json").dumps(config))
    kwargs = {k: v for k, v in config.items() if k != "arch"}
    twin = UNet(**kwargs, rng=np.random.default_rng(99))
    assert twin.num_params == net.num_params
    twin.params[...] = net.params
    x = np.random.default_rng(0).standard_normal((2, 64))
    np.testing.assert_array_equal(twin.forward(x, 0.4, np.array([0, 2])),
                                  net.forward(x, 0.4, np.array([0, 2])))


def test_float32_agrees_with_float64():
    net64 = tiny()
    net32 = tiny(dtype=np.float32)
    net32.params[...] = net64.params
    x = np.random.default_rng(0).standard_normal((3, 64))
    v64, v32 = net64.forward(x, 0.7), net32.forward(x, 0.7)
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-4, atol=1e-5 * np.abs(v64).max())


def test_reused_workspace_gives_what_fresh_arrays_give():
    """Two steps with different batches through one workspace (chunked convolutions: one image
    per chunk) equal the same steps with fresh arrays."""
    net = tiny(n_classes=2)
    rng = np.random.default_rng(5)
    work = nn.Workspace(np.float64)
    old, layers.COLS_BYTES = layers.COLS_BYTES, 1
    try:
        for _ in range(2):
            x, t = rng.standard_normal((3, 64)), rng.uniform(size=3)
            y, w = rng.integers(0, 3, size=3), rng.standard_normal((3, 64))
            v, cache = net.forward_train(x, t, y, work)
            dx = net.backward(cache, w, work).copy()
            grads = net.grads.copy()
            v0, cache0 = net.forward_train(x, t, y)
            np.testing.assert_array_equal(v, v0)
            np.testing.assert_array_equal(dx, net.backward(cache0, w))
            np.testing.assert_array_equal(grads, net.grads)
    finally:
        layers.COLS_BYTES = old


def test_forward_and_backward_hold_openblas_to_blas_threads(monkeypatch):
    """The convolutions run with OpenBLAS at ``blas_threads`` (1) threads, the count is restored
    afterwards, and ``blas_threads = None`` leaves it as it was."""
    before = _blas.threads()
    if before is None or before == 1:
        pytest.skip("needs an OpenBLAS running more than one thread")
    seen = []
    original = layers.Conv2d.forward

    def recording(self, x, work=None):
        seen.append(_blas.threads())
        return original(self, x, work)
    monkeypatch.setattr(layers.Conv2d, "forward", recording)
    net = tiny()
    x = np.random.default_rng(0).standard_normal((2, 64))
    v, cache = net.forward_train(x, 0.5)
    net.backward(cache, np.ones_like(v))
    assert set(seen) == {1} and _blas.threads() == before
    seen.clear()
    net.blas_threads = None
    net.forward(x, 0.5)
    assert set(seen) == {before}


def test_memory_bounds_the_workspace():
    """memory(n) covers 7 parameter arrays and the workspace a step at batch n fills, and exceeds
    them by no more than the stated allowances (four activations per image for temporaries, the
    bound on the chunk buffers); it leaves the gradients alone."""
    net = UNet((1, 16, 16), channels=8, multipliers=(1, 2), groups=4, rng=np.random.default_rng(0))
    n = 6
    work = nn.Workspace(np.float32)
    v, cache = net.forward_train(np.ones((n, net.dim)), 0.5, work=work)
    net.backward(cache, np.ones_like(v), work)
    grads = net.grads.copy()
    used = sum(a.nbytes for a in work._arrays.values()) + 7 * net.params.nbytes
    largest = max(a.nbytes for a in work._arrays.values()) / n
    scratch = sum(a.nbytes for name, a in work._arrays.items() if name.startswith(layers.SCRATCH))
    estimate = net.memory(n)
    assert used <= estimate <= used + n * 4 * largest + 2 * scratch
    assert net.memory(2 * n) > estimate
    np.testing.assert_array_equal(net.grads, grads)


# --- validation -----------------------------------------------------------------------------

def test_rejects_sides_it_cannot_halve():
    with pytest.raises(ValueError, match="image_shape"):
        UNet((1, 28, 28), multipliers=(1, 2, 2, 2), rng=np.random.default_rng(0))  # 28 -> 7 -> 3.5
    with pytest.raises(ValueError, match="image_shape"):
        UNet((1, 8, 6), channels=4, multipliers=(1, 1, 1), groups=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="image_shape"):
        UNet((1, 8), rng=np.random.default_rng(0))


def test_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="groups"):
        UNet((1, 8, 8), channels=6, groups=4, rng=rng)
    with pytest.raises(ValueError, match="multipliers"):
        UNet((1, 8, 8), multipliers=(), rng=rng)
    with pytest.raises(TypeError, match="rng"):
        UNet((1, 8, 8), rng=0)
    with pytest.raises(TypeError, match="dtype"):
        UNet((1, 8, 8), dtype=np.float16, rng=rng)
    net = tiny()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 64\)"):
        net.forward(np.zeros((2, 63)), 0.5)
    v, cache = net.forward_train(np.zeros((2, 64)), 0.5)
    with pytest.raises(ValueError, match="dv must have shape"):
        net.backward(cache, np.zeros((2, 63)))


# --- torch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [0, 3])
def test_same_outputs_and_gradients_as_torch(n_classes):
    """The same weights in torch's own Conv2d, GroupNorm, Linear, Embedding and interpolate:
    the same velocity, dL/dx and parameter gradients (float64)."""
    torch = pytest.importorskip("torch")
    bench = load_demo("experiments/bench_unet", "bench_unet")
    torch.set_default_dtype(torch.float64)
    try:
        net = tiny((2, 8, 12), n_classes, blocks=2)
        rng = np.random.default_rng(7)
        net.params += 0.3 * rng.standard_normal(net.params.size)
        module = bench.torch_unet(net)
        n = 3
        x, t = rng.standard_normal((n, net.dim)), rng.uniform(size=n)
        y = rng.integers(0, n_classes + 1, size=n) if n_classes else None
        w = rng.standard_normal((n, net.dim))
        v, cache = net.forward_train(x, t, y)
        dx = net.backward(cache, w)
        v_t, dx_t, grads_t = bench.torch_grads(module, x, t, y, w)
        np.testing.assert_allclose(v, v_t, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, dx_t, rtol=1e-10, atol=1e-12)
        grads = bench.grads_in_torch_layout(net)
        assert set(grads) == set(grads_t)
        for name, g in grads_t.items():
            np.testing.assert_allclose(grads[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
    finally:
        torch.set_default_dtype(torch.float32)
