"""Tests for npflow.nn: gradients against central finite differences (every block, every
activation, both time embeddings), jvp against finite differences and against backward, the
flat parameter buffer, initialization, the sinusoidal embedding, an optional PyTorch comparison
and input validation.

Finite-difference budget (the CI profile must stay fast): for every named parameter block we
check (a) ``COORDS_PER_BLOCK`` individual coordinates drawn at random (all of them when the block
is smaller), which localizes a failure, and (b) ``DIRECTIONS_PER_BLOCK`` directional derivatives
along random unit directions spanning the *whole* block, so every parameter of every block enters
the check.  The input gradient is checked on every coordinate of x (rows are independent, so one
perturbation of column c checks all n rows at once).
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from npflow import nn

H = 1e-6  # central-difference step (float64)
# |fd - analytic| <= RTOL * scale + floor, where scale is the max-abs of the block's gradient and
# floor = FLOOR * (1 + sum_ji |l_ji|) bounds the rounding error of L = sum_ji l_ji divided by H:
# FLOOR = 2e-9 ~ 10 eps / H (measured worst case over 400 random nets: ~1.2 eps (1 + ...) / H).
# Measured |fd - analytic| / scale stays below ~5e-8, twenty times under RTOL.
RTOL = 1e-6
FLOOR = 2e-9
COORDS_PER_BLOCK = 24
DIRECTIONS_PER_BLOCK = 4
KINKED = ("relu", "selu")  # activations whose derivative jumps at z = 0

ACTIVATIONS = sorted(nn.ACTIVATIONS)
EMBEDDINGS = list(nn.TIME_EMBEDDINGS)


def make_net(dim=2, hidden=(8, 8), activation="tanh", time_embedding="concat", embed_dim=4,
             dtype=np.float64, seed=0, **kwargs):
    return nn.MLP(dim, hidden, activation, time_embedding, embed_dim, dtype=dtype,
                  rng=np.random.default_rng(seed), **kwargs)


def make_batch(rng, n, d):
    x = rng.standard_normal((n, d))
    t = rng.uniform(0.0, 1.0, size=n)
    return x, t


def lin_size(fan_in, fan_out):
    """Number of parameters of Linear(fan_in, fan_out): weight plus bias."""
    return fan_in * fan_out + fan_out


# --- finite-difference machinery -------------------------------------------------------------

def row_losses(net, x, t, loss):
    """Per-row losses l_j = sum_i l_ji (n,) and the sign pattern of every pre-activation."""
    v, cache = net.forward_train(x, t)
    masks = np.concatenate([(z > 0).ravel() for z in cache.z])
    return loss(v).sum(axis=1), masks


def analytic(net, x, t, dloss):
    """Gradients of L = sum_j l_j from forward_train + backward: (copy of named grads, dL/dx)."""
    v, cache = net.forward_train(x, t)
    dx = net.backward(cache, dloss(v))
    return {name: g.copy() for name, g in net.named_grads.items()}, dx


def fd_along(net, x, t, loss, block, direction, mask0):
    """Central difference of L along ``direction`` in parameter ``block``.

    Returns None when ``mask0`` (the sign pattern at the unperturbed parameters, given only for
    ReLU/SELU) changes at either end: the difference then straddles a kink.
    """
    p = net.named_params[block]
    p0 = p.copy()
    p[...] = p0 + H * direction
    lp, mp = row_losses(net, x, t, loss)
    p[...] = p0 - H * direction
    lm, mm = row_losses(net, x, t, loss)
    p[...] = p0
    if mask0 is not None and not (np.array_equal(mp, mask0) and np.array_equal(mm, mask0)):
        return None
    return (lp.sum() - lm.sum()) / (2 * H)


def check_gradients(net, x, t, loss, dloss, rng, label=""):
    """Compare every parameter block and dL/dx with central differences; return #skipped checks.

    ``loss(v)`` returns the terms l_ji (n, d) of L = sum_ji l_ji; ``dloss(v)`` returns dL/dv.
    """
    kinked = net.activation.name in KINKED
    params0 = net.params.copy()
    grads, dx = analytic(net, x, t, dloss)
    floor = FLOOR * (1 + np.abs(loss(net.forward(x, t))).sum())
    mask0 = row_losses(net, x, t, loss)[1] if kinked else None
    skipped = total = 0
    for block, g in grads.items():
        scale = np.abs(g).max()
        coords = [np.unravel_index(i, g.shape) for i in
                  rng.permutation(g.size)[:COORDS_PER_BLOCK]]
        for idx in coords:
            e = np.zeros(g.shape)
            e[idx] = 1.0
            fd = fd_along(net, x, t, loss, block, e, mask0)
            total += 1
            if fd is None:
                skipped += 1
                continue
            assert abs(fd - g[idx]) <= RTOL * scale + floor, (
                f"{label} d L / d {block}{list(map(int, idx))}: analytic {g[idx]:.10g}, "
                f"finite difference {fd:.10g} (block max-abs {scale:.3g})")
        for _ in range(DIRECTIONS_PER_BLOCK):
            u = rng.standard_normal(g.shape)
            u /= np.linalg.norm(u)
            fd = fd_along(net, x, t, loss, block, u, mask0)
            total += 1
            if fd is None:
                skipped += 1
                continue
            # |<g, u>| <= ||g||_2 for a unit u: the tolerance is relative to the 2-norm here.
            an = float(np.sum(g * u))
            assert abs(fd - an) <= RTOL * np.linalg.norm(g) + floor, (
                f"{label} directional derivative of L along all of {block}: analytic {an:.10g}, "
                f"finite difference {fd:.10g} (block 2-norm {np.linalg.norm(g):.3g})")
    # Every coordinate c of x at once: row j's loss depends on x[j] only.
    scale = np.abs(dx).max()
    for c in range(x.shape[1]):
        xp, xm = x.copy(), x.copy()
        xp[:, c] += H
        xm[:, c] -= H
        lp, mp = row_losses(net, xp, t, loss)
        lm, mm = row_losses(net, xm, t, loss)
        fd = (lp - lm) / (2 * H)  # (n,)
        ok = np.ones(x.shape[0], bool)
        if kinked:  # rows whose sign pattern changed straddle a kink
            ok = _rows_unchanged(net, mp, mask0) & _rows_unchanged(net, mm, mask0)
        total += x.shape[0]
        skipped += int((~ok).sum())
        err = np.abs(fd - dx[:, c])[ok]
        assert np.all(err <= RTOL * scale + floor), (
            f"{label} d L / d x[:, {c}]: max |fd - analytic| = {err.max():.3g} "
            f"(max-abs {scale:.3g})")
    np.testing.assert_array_equal(net.params, params0)  # every perturbation was undone
    return skipped, total


def _rows_unchanged(net, mask, mask0):
    """Per row (n,): True when no pre-activation of that row has a sign differing from mask0."""
    changed = mask != mask0  # layer after layer, each an (n, h_i) block raveled row-major
    offsets = np.cumsum([0] + [h for h in net.hidden])
    n = changed.size // offsets[-1]
    return ~np.column_stack([changed[n * lo:n * hi].reshape(n, hi - lo).any(axis=1)
                             for lo, hi in zip(offsets[:-1], offsets[1:])]).any(axis=1)


class Labelled:
    """A conditional net with its labels y (n,) bound: ``forward(x, t)`` is ``net(x, t, y)``.

    Lets the finite-difference machinery above, written for ``v(x, t)``, check ``v(x, t, y)``.
    """

    def __init__(self, net, y):
        self.net, self.y = net, y

    def __getattr__(self, name):
        return getattr(self.net, name)

    def forward(self, x, t):
        return self.net.forward(x, t, self.y)

    def forward_train(self, x, t):
        return self.net.forward_train(x, t, self.y)


def weighted_sum(w):
    """Terms of L = sum_ji w_ji v_ji, and dL/dv = w."""
    return (lambda v: w * v), (lambda v: w)


# --- gradients: Hypothesis property test -----------------------------------------------------

@given(
    hidden=st.lists(st.integers(1, 64), min_size=1, max_size=4),
    n=st.integers(1, 32),
    dim=st.integers(1, 4),
    activation=st.sampled_from(ACTIVATIONS),
    time_embedding=st.sampled_from(EMBEDDINGS),
    embed_dim=st.sampled_from([2, 4, 6, 8]),
    n_classes=st.sampled_from([0, 0, 1, 3, 5]),
    residual=st.booleans(),
    seed=st.integers(0, 2 ** 32 - 1),
)
def test_gradients_match_finite_differences(hidden, n, dim, activation, time_embedding,
                                            embed_dim, n_classes, residual, seed):
    """Every block, the label embedding E included (n_classes > 0: labels 0 .. n_classes, null
    included, so some rows of E are used by several points and some by none), with and without
    residual shortcuts (where consecutive widths match)."""
    rng = np.random.default_rng(seed)
    if residual and len(hidden) > 2:  # at least one shortcut (where widths match)
        hidden = hidden[:2] + [hidden[1]] + hidden[3:]
    net = nn.MLP(dim, hidden, activation, time_embedding, embed_dim, dtype=np.float64, rng=rng,
                 n_classes=n_classes, residual=residual)
    if n_classes:
        net = Labelled(net, rng.integers(0, n_classes + 1, size=n))
    x, t = make_batch(rng, n, dim)
    x *= 2.0  # reach the saturated parts of tanh / SELU as well
    loss, dloss = weighted_sum(rng.standard_normal((n, dim)))
    label = (f"[{activation}, {time_embedding}, hidden={tuple(hidden)}, n={n}, d={dim}, "
             f"classes={n_classes}, residual={residual}]")
    skipped, total = check_gradients(net, x, t, loss, dloss, rng, label)
    note(f"skipped {skipped} of {total} checks at ReLU/SELU kinks")
    assert skipped <= total // 2  # the kink guard must not hollow the test out


def test_kink_guard_skips_differences_across_a_relu_kink():
    """A pre-activation exactly at 0: the central difference straddles the kink and is skipped."""
    net = make_net(dim=2, hidden=(3, 3), activation="relu")
    x, t = np.zeros((2, 2)), np.zeros(2)
    x[1] = [0.5, -0.7]
    net.layers["in"].b[0] = 0.0  # z_0[0, 0] = [0, 0, 0] W[:, 0] + b[0] = 0 exactly
    rng = np.random.default_rng(0)
    loss, dloss = weighted_sum(rng.standard_normal((2, 2)))
    mask0 = row_losses(net, x, t, loss)[1]
    e = np.zeros(3)
    e[0] = 1.0
    assert fd_along(net, x, t, loss, "in.b", e, mask0) is None
    grads, _ = analytic(net, x, t, dloss)
    unguarded = fd_along(net, x, t, loss, "in.b", e, None)  # the mean of the one-sided slopes
    assert abs(unguarded - grads["in.b"][0]) > 1e-3 * abs(unguarded)
    skipped, total = check_gradients(net, x, t, loss, dloss, rng)
    assert 0 < skipped < total


def test_mse_loss_gradient():
    """The training loss L = (1/n) sum_j ||v_j - u_j||^2 has dL/dv = 2 (v - u) / n."""
    rng = np.random.default_rng(7)
    for activation in ACTIVATIONS:
        net = make_net(dim=3, hidden=(16, 12, 8), activation=activation,
                       time_embedding="sinusoidal", embed_dim=6, seed=3)
        n = 10
        x, t = make_batch(rng, n, 3)
        u = rng.standard_normal((n, 3))
        skipped, _ = check_gradients(
            net, x, t, lambda v: (v - u) ** 2 / n,
            lambda v: 2 * (v - u) / n, rng, f"[MSE, {activation}]")
        assert skipped == 0


# --- jvp -------------------------------------------------------------------------------------

@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jvp_matches_finite_differences(activation, time_embedding, residual):
    rng = np.random.default_rng(11)
    hidden = (16, 16, 16) if residual else (20, 16, 12)
    net = make_net(dim=3, hidden=hidden, activation=activation,
                   time_embedding=time_embedding, seed=5, residual=residual)
    n, k = 9, 4
    x, t = make_batch(rng, n, 3)
    dx = rng.standard_normal((k, n, 3))
    v, dv = net.jvp(x, t, dx=dx)
    assert dv.shape == (k, n, 3)
    np.testing.assert_allclose(v, net.forward(x, t), rtol=1e-14, atol=1e-14)
    _, cache0 = net.forward_train(x, t)
    for j in range(k):
        vp, cp = net.forward_train(x + H * dx[j], t)
        vm, cm = net.forward_train(x - H * dx[j], t)
        for zp, zm, z0 in zip(cp.z, cm.z, cache0.z):  # the fixed seed keeps clear of kinks
            assert np.array_equal(zp > 0, z0 > 0) and np.array_equal(zm > 0, z0 > 0)
        fd = (vp - vm) / (2 * H)
        np.testing.assert_allclose(dv[j], fd, rtol=0, atol=1e-7 * np.abs(fd).max() + 1e-9)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_jvp_jacobian_equals_backward_jacobian(activation, time_embedding, residual):
    """Columns of J from forward mode (identity tangents) = rows of J from reverse mode."""
    rng = np.random.default_rng(12)
    d, n = 3, 6
    net = make_net(dim=d, hidden=(10, 10, 10) if residual else (10, 7), activation=activation,
                   time_embedding=time_embedding, residual=residual)
    x, t = make_batch(rng, n, d)
    eye = np.broadcast_to(np.eye(d)[:, None, :], (d, n, d))  # tangent k = e_k at every point
    _, dv = net.jvp(x, t, dx=eye)
    jac_fwd = np.transpose(dv, (1, 2, 0))  # (n, i, k) = d v_i / d x_k
    jac_bwd = np.empty((n, d, d))
    _, cache = net.forward_train(x, t)
    for i in range(d):
        onehot = np.zeros((n, d))
        onehot[:, i] = 1.0
        jac_bwd[:, i, :] = net.backward(cache, onehot)  # row i of J at every point
    np.testing.assert_allclose(jac_fwd, jac_bwd, rtol=1e-12, atol=1e-14)


# --- forward / forward_train / backward bookkeeping ------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_forward_equals_forward_train(dtype, time_embedding):
    rng = np.random.default_rng(1)
    net = make_net(hidden=(16, 16, 16), activation="silu", time_embedding=time_embedding,
                   dtype=dtype)
    x, t = make_batch(rng, 13, 2)
    v = net.forward(x, t)
    v_train, _ = net.forward_train(x, t)
    assert v.dtype == dtype and v.shape == (13, 2)
    np.testing.assert_array_equal(v, v_train)
    np.testing.assert_array_equal(net(x, t), v)


def test_scalar_t_broadcasts():
    rng = np.random.default_rng(2)
    net = make_net(time_embedding="sinusoidal")
    x, _ = make_batch(rng, 5, 2)
    np.testing.assert_array_equal(net.forward(x, 0.3), net.forward(x, np.full(5, 0.3)))


def test_forward_caches_nothing():
    rng = np.random.default_rng(3)
    net = make_net(hidden=(12, 12), activation="tanh")
    x1, t1 = make_batch(rng, 7, 2)
    x2, t2 = make_batch(rng, 11, 2)
    w = rng.standard_normal((7, 2))
    _, cache = net.forward_train(x1, t1)
    dx_ref = net.backward(cache, w)
    grads_ref = net.grads.copy()

    _, cache = net.forward_train(x1, t1)
    net.forward(x2, t2)  # inference in between must not disturb the pending backward
    dx = net.backward(cache, w)
    np.testing.assert_array_equal(net.grads, grads_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_backward_uses_the_cache_it_is_given():
    rng = np.random.default_rng(4)
    net = make_net(hidden=(12, 12), activation="silu")
    x1, t1 = make_batch(rng, 7, 2)
    x2, t2 = make_batch(rng, 7, 2)
    w = rng.standard_normal((7, 2))
    _, cache1 = net.forward_train(x1, t1)
    net.backward(cache1, w)
    grads1 = net.grads.copy()
    _, cache2 = net.forward_train(x2, t2)
    net.backward(cache2, w)
    grads2 = net.grads.copy()
    assert not np.allclose(grads1, grads2)  # the two batches really differ

    _, cache1 = net.forward_train(x1, t1)
    net.forward_train(x2, t2)
    net.backward(cache1, w)
    np.testing.assert_array_equal(net.grads, grads1)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_workspace_reuse_gives_the_fresh_results(activation, time_embedding, residual):
    rng = np.random.default_rng(6)
    net = make_net(hidden=(12, 12, 12) if residual else (12, 10, 12), activation=activation,
                   time_embedding=time_embedding, residual=residual)
    work = nn.Workspace(net.dtype)
    previous_v = None
    for n in (7, 7, 5):  # same batch size twice (arrays reused), then a new size
        x, t = make_batch(rng, n, 2)
        w = rng.standard_normal((n, 2))
        v_ref, cache = net.forward_train(x, t)
        dx_ref = net.backward(cache, w)
        grads_ref = net.grads.copy()
        v, cache = net.forward_train(x, t, work=work)
        if previous_v is not None and n == previous_v.shape[0]:
            assert v is previous_v  # the same array, refilled
        previous_v = v
        np.testing.assert_array_equal(v, v_ref)
        np.testing.assert_array_equal(net.backward(cache, w, work=work), dx_ref)
        np.testing.assert_array_equal(net.grads, grads_ref)


def test_fresh_workspace_never_reuses():
    work = nn.Workspace(np.float32, reuse=False)
    a, b = work.get("z0", (3, 4)), work.get("z0", (3, 4))
    assert a is not b and a.dtype == np.float32 and a.shape == (3, 4)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_forward_may_overwrite_its_input(activation):
    f = nn.ACTIVATIONS[activation]
    z = np.random.default_rng(7).standard_normal((6, 5))
    expected = f.forward(z.copy())
    np.testing.assert_array_equal(f.forward(z, out=z), expected)
    np.testing.assert_array_equal(z, expected)


@pytest.mark.parametrize("activation", ["relu", "selu"])
def test_activations_past_the_zeros_cache_limit(activation, monkeypatch):
    """Above ZEROS_CACHED_MAX entries ReLU and SELU compare against a zero row: same values."""
    f = nn.ACTIVATIONS[activation]
    z = np.random.default_rng(8).standard_normal((40, 7))
    small = f.forward(z)
    monkeypatch.setattr(nn, "ZEROS_CACHED_MAX", 10)
    np.testing.assert_array_equal(f.forward(z), small)
    expected = np.maximum(z, 0) if activation == "relu" else \
        f.lam * np.where(z > 0, z, f.alpha * np.expm1(np.minimum(z, 0)))
    np.testing.assert_allclose(small, expected, rtol=1e-15, atol=0)


def test_backward_writes_not_accumulates():
    rng = np.random.default_rng(5)
    net = make_net()
    x, t = make_batch(rng, 6, 2)
    w = rng.standard_normal((6, 2))
    _, cache = net.forward_train(x, t)
    net.backward(cache, w)
    once = net.grads.copy()
    net.backward(cache, w)
    np.testing.assert_array_equal(net.grads, once)


# --- flat buffer -----------------------------------------------------------------------------

@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_named_params_and_grads_are_views_of_the_flat_buffers(time_embedding):
    net = make_net(dim=3, hidden=(5, 4, 6), time_embedding=time_embedding, embed_dim=8)
    sizes = [p.size for p in net.named_params.values()]
    assert sum(sizes) == net.num_params == net.params.size == net.grads.size
    np.testing.assert_array_equal(
        np.concatenate([p.ravel() for p in net.named_params.values()]), net.params)
    for name, p in net.named_params.items():
        assert np.shares_memory(p, net.params), name
        assert np.shares_memory(net.named_grads[name], net.grads), name
    for name, layer in net.layers.items():
        assert layer.W is net.named_params[f"{name}.W"]
        assert layer.dW is net.named_grads[f"{name}.W"]

    net.params[:] = np.arange(net.num_params)  # writing the buffer moves the layer weights
    offset = 0
    for name, p in net.named_params.items():
        np.testing.assert_array_equal(p.ravel(), np.arange(offset, offset + p.size))
        offset += p.size
    net.layers["out"].b[...] = -1.0  # and writing a layer moves the buffer
    np.testing.assert_array_equal(net.params[-net.dim:], -1.0)

    rng = np.random.default_rng(0)
    x, t = make_batch(rng, 4, 3)
    _, cache = net.forward_train(x, t)
    net.backward(cache, rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(
        np.concatenate([g.ravel() for g in net.named_grads.values()]), net.grads)
    assert np.any(net.grads != 0)


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_num_params(time_embedding):
    d, hidden, embed_dim = 3, (7, 5, 9), 6
    net = make_net(dim=d, hidden=hidden, time_embedding=time_embedding, embed_dim=embed_dim)
    if time_embedding == "concat":
        expected = lin_size(d + 1, 7)
    else:
        expected = lin_size(d, 7) + lin_size(embed_dim, 7)
    expected += lin_size(7, 5) + lin_size(5, 9) + lin_size(9, d)
    assert net.num_params == expected


def test_starting_demo_parameter_count():
    net = nn.MLP(2, hidden=(512, 512, 512), activation="relu", time_embedding="sinusoidal",
                 embed_dim=512, rng=np.random.default_rng(0))
    expected = (lin_size(2, 512) + lin_size(512, 512)  # input layer + time projection
                + 2 * lin_size(512, 512) + lin_size(512, 2))
    assert expected == 790_530
    assert net.num_params == expected


def test_dtypes():
    rng = np.random.default_rng(0)
    x, t = make_batch(rng, 3, 2)
    net32 = nn.MLP(2, (8,), rng=np.random.default_rng(0))
    assert net32.params.dtype == np.float32 and net32.grads.dtype == np.float32
    v, cache = net32.forward_train(x, t)  # float64 input is cast to the net's dtype
    assert v.dtype == np.float32
    assert net32.backward(cache, np.ones((3, 2))).dtype == np.float32
    assert net32.jvp(x, t, dx=np.ones((1, 3, 2)))[1].dtype == np.float32
    net64 = nn.MLP(2, (8,), dtype=np.float64, rng=np.random.default_rng(0))
    assert net64.params.dtype == np.float64 and net64.forward(x, t).dtype == np.float64
    # Same seed, same draws: float32 weights are the rounded float64 ones.
    np.testing.assert_array_equal(net32.params, net64.params.astype(np.float32))


# --- initialization --------------------------------------------------------------------------

def test_init_within_bounds_and_uniform():
    net = nn.MLP(3, (512, 256), time_embedding="sinusoidal", embed_dim=64, dtype=np.float64,
                 rng=np.random.default_rng(0))
    for name, layer in net.layers.items():
        bound = 1 / np.sqrt(layer.fan_in)
        for p in (layer.W, layer.b):
            assert np.all(np.abs(p) <= bound), name
    W = net.layers["hidden1"].W  # 512 x 256 = 131072 draws from U(-b, b)
    bound = 1 / np.sqrt(512)
    u = W.ravel() / bound  # should be U(-1, 1): mean 0, variance 1/3, flat histogram
    assert abs(u.mean()) < 0.02  # std of the mean: sqrt(1/3 / 131072) = 0.0016
    assert abs(u.var() - 1 / 3) < 0.01  # std of the variance: ~0.0008
    counts, _ = np.histogram(u, bins=10, range=(-1, 1))
    np.testing.assert_allclose(counts / u.size, 0.1, atol=0.005)  # std per bin ~0.0008
    assert u.max() > 0.999 and u.min() < -0.999  # fills the interval


def test_same_seed_same_params():
    a = make_net(hidden=(16, 16), seed=42)
    b = make_net(hidden=(16, 16), seed=42)
    c = make_net(hidden=(16, 16), seed=43)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    assert not np.shares_memory(a.params, b.params)


# --- sinusoidal time embedding ---------------------------------------------------------------

def reference_embedding(t, dim, time_scale):
    """e(t) = [sin(s t w_k), cos(s t w_k)], w_k = 10000^(-k / (E/2)), written out directly."""
    half = dim // 2
    out = np.empty(dim)
    for k in range(half):
        w = 10000.0 ** (-k / half)
        out[k] = np.sin(time_scale * t * w)
        out[half + k] = np.cos(time_scale * t * w)
    return out


def test_sinusoidal_embedding_closed_form():
    net = make_net(time_embedding="sinusoidal", embed_dim=16, time_scale=250.0)
    for t in (0.0, 0.1, 0.37, 1.0):
        e = net.embed(np.array([[t]]))
        np.testing.assert_allclose(e[0], reference_embedding(t, 16, 250.0), atol=1e-12)


def test_sinusoidal_embedding_varies_over_unit_time():
    E = 512

    def change(time_scale):
        emb = nn.SinusoidalEmbedding(E, time_scale=time_scale)
        e1, e2 = emb(np.array([[0.1]])), emb(np.array([[0.2]]))
        return np.abs(e2 - e1)[0]

    default = change(nn.SinusoidalEmbedding(E).time_scale)  # 1000
    assert np.mean(default > 0.1) > 0.5  # most features move substantially
    assert np.linalg.norm(default) > 0.5 * np.sqrt(E / 2)
    demo = change(1.0)  # dome272/Flow-Matching's scale: every angle t w_k is at most 1 radian
    assert np.mean(demo < 0.01) > 0.75  # most features are nearly constant
    assert demo.max() <= 0.1 + 1e-12  # |d sin(t w)/dt| <= w <= 1 and dt = 0.1
    assert np.linalg.norm(demo) < 0.1 * np.linalg.norm(default)
    assert make_net(time_embedding="sinusoidal").embed.time_scale == 1000.0


# --- optional comparison with PyTorch --------------------------------------------------------

@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_torch(activation, time_embedding, residual):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    act = {"relu": torch.relu, "silu": tnn.functional.silu, "tanh": torch.tanh,
           "selu": tnn.functional.selu}[activation]
    d, hidden, E = 3, (12, 12, 12) if residual else (16, 12, 8), 8
    net = make_net(dim=d, hidden=hidden, activation=activation, time_embedding=time_embedding,
                   embed_dim=E, seed=9, residual=residual)

    class TorchMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.sinusoidal = time_embedding == "sinusoidal"
            self.add_module("in", tnn.Linear(d + (0 if self.sinusoidal else 1), hidden[0]))
            if self.sinusoidal:
                self.add_module("time", tnn.Linear(E, hidden[0]))
            self.hidden_layers = [f"hidden{i}" for i in range(1, len(hidden))]
            for i, name in enumerate(self.hidden_layers, start=1):
                self.add_module(name, tnn.Linear(hidden[i - 1], hidden[i]))
            self.add_module("out", tnn.Linear(hidden[-1], d))

        def forward(self, x, t):
            t = t[:, None]
            if self.sinusoidal:
                freqs = 10000.0 ** (-torch.arange(E // 2, dtype=x.dtype) / (E // 2))
                ang = 1000.0 * t * freqs
                z = getattr(self, "in")(x) + self.time(torch.cat([ang.sin(), ang.cos()], 1))
            else:
                z = getattr(self, "in")(torch.cat([x, t], 1))
            a = act(z)
            for name in self.hidden_layers:
                f = act(getattr(self, name)(a))
                a = a + f if residual else f
            return self.out(a)

    model = TorchMLP().double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in net.torch_state().items()})

    rng = np.random.default_rng(10)
    n = 17
    x, t = make_batch(rng, n, d)
    w = rng.standard_normal((n, d))
    xt = torch.tensor(x, requires_grad=True)
    vt = model(xt, torch.tensor(t))
    (vt * torch.tensor(w)).sum().backward()

    v, cache = net.forward_train(x, t)
    dx = net.backward(cache, w)
    np.testing.assert_allclose(v, vt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-11, atol=1e-13)
    for name, layer in net.layers.items():
        tl = getattr(model, name)
        np.testing.assert_allclose(layer.dW, tl.weight.grad.numpy().T, rtol=1e-11, atol=1e-13,
                                   err_msg=f"{name}.W")
        np.testing.assert_allclose(layer.db, tl.bias.grad.numpy(), rtol=1e-11, atol=1e-13,
                                   err_msg=f"{name}.b")


# --- input validation ------------------------------------------------------------------------

ENTRY_POINTS = {
    "forward": lambda net, x, t: net.forward(x, t),
    "forward_train": lambda net, x, t: net.forward_train(x, t),
    "jvp": lambda net, x, t: net.jvp(x, t, dx=np.zeros((1,) + np.shape(x))),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("x, t, error, match", [
    (np.zeros(4), 0.5, ValueError, r"x must have shape \(n, 2\)"),
    (np.zeros((4, 3)), 0.5, ValueError, r"x must have shape \(n, 2\)"),
    (np.zeros((4, 2, 1)), 0.5, ValueError, r"x must have shape"),
    (np.zeros((0, 2)), 0.5, ValueError, r"x must hold at least one point"),
    (np.array([[0.0, np.nan]] * 4), 0.5, ValueError, r"x must be finite"),
    (np.array([[0.0, np.inf]] * 4), 0.5, ValueError, r"x must be finite"),
    (np.array([["a", "b"]] * 4), 0.5, TypeError, r"x must be a real numeric array"),
    (np.zeros((4, 2), dtype=complex), 0.5, TypeError, r"x must be a real numeric array"),
    (np.zeros((4, 2)), np.zeros(3), ValueError, r"t must be a scalar or have shape \(4,\)"),
    (np.zeros((4, 2)), np.zeros((4, 2)), ValueError, r"t must be a scalar or have shape"),
    (np.zeros((4, 2)), np.nan, ValueError, r"t must be finite"),
    (np.zeros((4, 2)), np.array([0.1, 0.2, np.inf, 0.3]), ValueError, r"t must be finite"),
])
def test_bad_inputs(entry, x, t, error, match):
    for time_embedding in EMBEDDINGS:
        net = make_net(time_embedding=time_embedding)
        with pytest.raises(error, match=match):
            ENTRY_POINTS[entry](net, x, t)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"activation": "gelu"}, ValueError, r"activation must be one of .*relu"),
    ({"time_embedding": "fourier"}, ValueError, r"time_embedding must be one of"),
    ({"hidden": ()}, ValueError, r"hidden must name at least one"),
    ({"hidden": (8, 0)}, ValueError, r"hidden must hold widths >= 1"),
    ({"hidden": (8, -3)}, ValueError, r"hidden must hold widths >= 1"),
    ({"hidden": (8, 2.5)}, TypeError, r"hidden must hold integer widths"),
    ({"hidden": (8, True)}, TypeError, r"hidden must hold integer widths"),
    ({"hidden": 8}, TypeError, r"hidden must be a sequence"),
    ({"time_embedding": "sinusoidal", "embed_dim": 5}, ValueError, r"embed_dim must be even"),
    ({"embed_dim": 0}, ValueError, r"embed_dim must be an integer >= 1"),
    ({"dtype": np.float16}, TypeError, r"dtype must be float32 or float64"),
    ({"dtype": np.int64}, TypeError, r"dtype must be float32 or float64"),
    ({"dtype": int}, TypeError, r"dtype must be float32 or float64"),
    ({"dim": 0}, ValueError, r"dim must be an integer >= 1"),
    ({"time_scale": 0.0}, ValueError, r"time_scale must be in"),
    ({"time_scale": np.inf}, ValueError, r"time_scale must be a finite number"),
    ({"residual": 1}, TypeError, r"residual must be True or False"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"dim": 2, "hidden": (8, 8), "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(error, match=match):
        nn.MLP(**args)


@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)])
def test_rng_must_be_a_generator(rng):
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator"):
        nn.MLP(2, (8,), rng=rng)


def test_rng_is_required():
    with pytest.raises(TypeError, match=r"rng"):
        nn.MLP(2, (8,))


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_bad_dv_shape(time_embedding):
    net = make_net(time_embedding=time_embedding)
    _, cache = net.forward_train(np.zeros((4, 2)), 0.5)
    for dv in (np.zeros((4, 3)), np.zeros((3, 2)), np.zeros(8), np.zeros((1, 4, 2))):
        with pytest.raises(ValueError, match=r"dv must have shape \(4, 2\)"):
            net.backward(cache, dv)


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_bad_jvp_tangents(time_embedding):
    net = make_net(time_embedding=time_embedding)
    x = np.zeros((4, 2))
    for dx in (np.zeros((4, 2)), np.zeros((1, 4, 3)), np.zeros((2, 5, 2)), np.zeros((1, 1, 4, 2))):
        with pytest.raises(ValueError, match=r"dx must have shape \(k, 4, 2\)"):
            net.jvp(x, 0.5, dx=dx)


# --- class-conditional networks ----------------------------------------------------------------

def test_label_embedding_gradient_is_the_scatter_sum_of_dz0():
    """dE[k] = sum of dL/dz0 over the points labelled k (a one-hot matmul as the reference)."""
    rng = np.random.default_rng(3)
    net = make_net(dim=2, hidden=(6, 5), n_classes=3)
    x, t = make_batch(rng, 7, 2)
    y = np.array([0, 3, 3, 1, 0, 3, 1])  # class 2 unused, null (3) used three times
    v, cache = net.forward_train(x, t, y)
    dv = rng.standard_normal(v.shape)
    net.backward(cache, dv)
    dz0 = (dv @ net.layers["out"].W.T) * net.activation.derivative(cache.z[1], cache.a[1])
    dz0 = (dz0 @ net.layers["hidden1"].W.T) * net.activation.derivative(cache.z[0], cache.a[0])
    onehot = np.eye(4)[y]  # (n, 4)
    np.testing.assert_allclose(net.named_grads["label.E"], onehot.T @ dz0, rtol=1e-12, atol=1e-14)
    assert np.all(net.named_grads["label.E"][2] == 0)


def test_labels_shift_the_first_layer_by_their_embedding_row():
    """v(x, t, y) = the unconditional MLP with b_in replaced by b_in + E[y]."""
    rng = np.random.default_rng(4)
    net = make_net(dim=2, hidden=(8, 8), n_classes=4, seed=1)
    x, t = make_batch(rng, 5, 2)
    plain = make_net(dim=2, hidden=(8, 8))
    for name in ("in.W", "hidden1.W", "hidden1.b", "out.W", "out.b"):
        plain.named_params[name][...] = net.named_params[name]
    for k in range(5):
        plain.named_params["in.b"][...] = net.named_params["in.b"] + net.named_params["label.E"][k]
        np.testing.assert_allclose(net.forward(x, t, np.full(5, k)), plain.forward(x, t),
                                   rtol=1e-13, atol=1e-14)


def test_no_labels_means_the_null_label():
    rng = np.random.default_rng(5)
    net = make_net(n_classes=3)
    x, t = make_batch(rng, 6, 2)
    null = np.full(6, 3)
    np.testing.assert_array_equal(net.forward(x, t), net.forward(x, t, null))
    assert not np.allclose(net.forward(x, t, np.zeros(6, dtype=int)), net.forward(x, t))


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_conditional_jvp_matches_finite_differences(time_embedding):
    """Labels are held fixed: the JVP in x of v(., t, y) against central differences."""
    rng = np.random.default_rng(6)
    net = make_net(dim=2, hidden=(12, 10), time_embedding=time_embedding, n_classes=3, seed=2)
    x, t = make_batch(rng, 8, 2)
    y = rng.integers(0, 4, size=8)
    dx = rng.standard_normal((3, 8, 2))
    v, dv = net.jvp(x, t, y, dx=dx)
    np.testing.assert_allclose(v, net.forward(x, t, y), rtol=1e-14, atol=1e-14)
    for j in range(3):
        fd = (net.forward(x + H * dx[j], t, y) - net.forward(x - H * dx[j], t, y)) / (2 * H)
        np.testing.assert_allclose(dv[j], fd, rtol=0, atol=1e-7 * np.abs(fd).max() + 1e-9)


def test_forward_forward_train_and_jvp_take_x_t_y_in_one_order():
    """x, t, y are the same first three positional parameters everywhere; jvp's dx is keyword-only
    (so a tangent can never be passed where the labels go)."""
    net = make_net(n_classes=3)
    for method in (net.forward, net.forward_train, net.jvp):
        params = list(inspect.signature(method).parameters.values())
        assert [p.name for p in params[:3]] == ["x", "t", "y"], method.__name__
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:3])
    assert inspect.signature(net.jvp).parameters["dx"].kind is inspect.Parameter.KEYWORD_ONLY
    rng = np.random.default_rng(7)
    x, t = make_batch(rng, 4, 2)
    y = np.array([0, 3, 1, 2])
    v, _ = net.jvp(x, t, y, dx=np.ones((1, 4, 2)))
    np.testing.assert_array_equal(v, net.forward(x, t, y))
    with pytest.raises(TypeError):
        net.jvp(x, t, y, np.ones((1, 4, 2)))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_residual_net_with_silent_hidden_layers_is_the_one_layer_net(activation):
    """With W_i = 0, b_i = 0 every branch is act(0) = 0, so a_i = a_0 and v = out(act(z_0)); a
    plain net of the same weights gives out(act(0)) = out.b instead."""
    rng = np.random.default_rng(4)
    residual = make_net(dim=3, hidden=(9, 9, 9), activation=activation, residual=True, seed=2)
    for i in (1, 2):
        residual.layers[f"hidden{i}"].W[...] = 0.0
        residual.layers[f"hidden{i}"].b[...] = 0.0
    one_layer = make_net(dim=3, hidden=(9,), activation=activation, seed=0)
    for name in ("in", "out"):
        one_layer.layers[name].W[...] = residual.layers[name].W
        one_layer.layers[name].b[...] = residual.layers[name].b
    x, t = make_batch(rng, 11, 3)
    np.testing.assert_allclose(residual.forward(x, t), one_layer.forward(x, t), rtol=1e-14,
                               atol=1e-14)
    plain = make_net(dim=3, hidden=(9, 9, 9), activation=activation, seed=0)
    plain.params[...] = residual.params
    np.testing.assert_allclose(plain.forward(x, t), np.broadcast_to(plain.layers["out"].b, (11, 3)),
                               rtol=1e-14, atol=1e-14)


def test_residual_config_round_trip_and_old_configs_load():
    net = make_net(hidden=(8, 8, 8), residual=True)
    assert net.config()["residual"] is True
    assert nn.MLP(**{**net.config(), "dtype": np.float64}, rng=np.random.default_rng(0)).residual
    old = {k: v for k, v in make_net().config().items() if k != "residual"}
    assert not nn.MLP(**{**old, "dtype": np.float64}, rng=np.random.default_rng(0)).residual
    assert net.num_params == make_net(hidden=(8, 8, 8)).num_params  # shortcuts add no weights


def test_shortcuts_only_where_consecutive_widths_match():
    """hidden (6, 6, 4, 4): shortcuts around layers 1 and 3; layer 2 (6 -> 4) has none. Zeroing
    layer 3 then leaves v = out(a_2) with a_2 the plain output of layer 2."""
    net = make_net(dim=2, hidden=(6, 6, 4, 4), activation="silu", residual=True)
    assert net.shortcuts == (False, True, False, True)
    assert make_net(hidden=(6, 6, 4, 4)).shortcuts == (False,) * 4
    rng = np.random.default_rng(1)
    x, t = make_batch(rng, 5, 2)
    net.layers["hidden3"].W[...] = 0.0
    net.layers["hidden3"].b[...] = 0.0
    _, cache = net.forward_train(x, t)
    silu = nn.ACTIVATIONS["silu"].forward
    a1 = cache.a[0] + silu(cache.a[0] @ net.layers["hidden1"].W + net.layers["hidden1"].b)
    a2 = silu(a1 @ net.layers["hidden2"].W + net.layers["hidden2"].b)
    np.testing.assert_allclose(cache.a[1], a1, rtol=1e-13)
    np.testing.assert_allclose(cache.a[3], a2, rtol=1e-13)
    np.testing.assert_allclose(net.forward(x, t), net.layers["out"].forward(a2), rtol=1e-13)


def test_conditional_config_round_trip_and_old_configs_load():
    net = make_net(n_classes=5, seed=3)
    cfg = net.config()
    assert cfg["n_classes"] == 5
    rebuilt = nn.MLP(**{**cfg, "dtype": np.float64}, rng=np.random.default_rng(0))
    assert rebuilt.num_params == net.num_params
    old = {k: v for k, v in make_net().config().items() if k != "n_classes"}
    assert nn.MLP(**{**old, "dtype": np.float64}, rng=np.random.default_rng(0)).n_classes == 0
    assert net.num_params == make_net().num_params + 6 * 8  # (n_classes + 1) x h0
    assert "label.weight" in net.torch_state()


@pytest.mark.parametrize("entry", ["forward", "forward_train", "jvp"])
@pytest.mark.parametrize("y, error, match", [
    (np.array([0, 1, 4, 0]), ValueError, r"y must hold classes in 0 \.\. 3 \(3 = null\)"),
    (np.array([0, -1, 2, 0]), ValueError, r"y must hold classes in 0 \.\. 3 \(3 = null\)"),
    (np.array([0, 1, 2]), ValueError, r"y must have shape \(4,\)"),
    (np.zeros((4, 1), dtype=int), ValueError, r"y must have shape \(4,\)"),
    (2, ValueError, r"y must have shape \(4,\)"),
    (np.array([0.0, 1.0, 2.0, 0.0]), TypeError, r"y must hold integer class labels"),
    (np.array([True, False, True, True]), TypeError, r"y must hold integer class labels"),
])
def test_bad_labels(entry, y, error, match):
    net = make_net(n_classes=3)
    x = np.zeros((4, 2))
    call = {"forward": lambda: net.forward(x, 0.5, y),
            "forward_train": lambda: net.forward_train(x, 0.5, y),
            "jvp": lambda: net.jvp(x, 0.5, y, dx=np.zeros((1, 4, 2)))}[entry]
    with pytest.raises(error, match=match):
        call()


def test_labels_for_an_unconditional_net_are_refused():
    net = make_net()
    with pytest.raises(ValueError, match=r"y must be None: this network is unconditional"):
        net.forward(np.zeros((2, 2)), 0.5, np.zeros(2, dtype=int))


@pytest.mark.parametrize("n_classes, error",
                         [(-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_n_classes(n_classes, error):
    with pytest.raises(error, match=r"n_classes must be an integer >= 0"):
        make_net(n_classes=n_classes)
