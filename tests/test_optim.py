"""Tests for npflow.optim: Adam and AdamW against the update equations written out here (and
against torch.optim when torch is installed), gradient clipping, learning-rate schedules, EMA,
optimizer state round trips and input validation."""
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from npflow import optim

seeds = st.integers(0, 2 ** 32 - 1)


def gradient_sequence(seed, steps=5, size=50):
    """A fixed sequence of gradients (steps, size) spanning several orders of magnitude."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-4, 2, size=size)
    return rng.standard_normal((steps, size)) * scales


def initial_params(seed, size=50):
    return np.random.default_rng(seed + 1).standard_normal(size)


def adam_reference(theta, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   decoupled=False):
    """Kingma & Ba (2015), Algorithm 1, element by element, PyTorch's eps placement.

    Coupled decay (torch.optim.Adam) adds lambda theta to g; decoupled decay (Loshchilov &
    Hutter 2019, Algorithm 2, torch.optim.AdamW) multiplies theta by (1 - lr lambda) first.
    Returns the parameters after every step (steps, size) and the final m, v.
    """
    b1, b2 = betas
    theta = [float(p) for p in theta]
    m = [0.0] * len(theta)
    v = [0.0] * len(theta)
    history = []
    for k, g_k in enumerate(grads, start=1):
        for i, g in enumerate(g_k):
            g = float(g)
            if decoupled:
                theta[i] = theta[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            mhat = m[i] / (1 - b1 ** k)
            vhat = v[i] / (1 - b2 ** k)
            theta[i] = theta[i] - lr * mhat / (math.sqrt(vhat) + eps)
        history.append(list(theta))
    return np.array(history), np.array(m), np.array(v)


def run(opt_cls, theta0, grads, **kwargs):
    params = theta0.copy()
    opt = opt_cls(params, **kwargs)
    history = []
    for g in grads:
        opt.step(g.copy())
        history.append(params.copy())
    return np.array(history), opt


# --- Adam ------------------------------------------------------------------------------------

@given(seed=seeds, lr=st.sampled_from([1e-4, 1e-3, 3e-2]),
       betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.95, 0.0)]),
       eps=st.sampled_from([1e-8, 1e-3]))
def test_adam_matches_algorithm_1(seed, lr, betas, eps):
    grads = gradient_sequence(seed)
    theta0 = initial_params(seed)
    history, opt = run(optim.Adam, theta0, grads, lr=lr, betas=betas, eps=eps)
    ref, m, v = adam_reference(theta0, grads, lr, betas, eps)
    np.testing.assert_allclose(history, ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(opt.m, m, rtol=1e-12)
    np.testing.assert_allclose(opt.v, v, rtol=1e-12)
    assert opt.step_count == len(grads)


@given(seed=seeds)
def test_adam_first_step_is_lr_times_sign(seed):
    """After one step mhat = g and vhat = g^2, so theta moves by lr g / (|g| + eps) ~ lr sign(g)."""
    g = gradient_sequence(seed, steps=1)[0]
    theta0 = initial_params(seed)
    lr = 1e-2
    history, _ = run(optim.Adam, theta0, [g], lr=lr)
    delta = history[0] - theta0
    np.testing.assert_allclose(delta, -lr * g / (np.abs(g) + 1e-8), rtol=1e-9)
    large = np.abs(g) > 1e-5  # |g| / (|g| + eps) > 1 - 1e-3
    np.testing.assert_allclose(delta[large], -lr * np.sign(g[large]), rtol=1e-3)


@given(seed=seeds, weight_decay=st.sampled_from([1e-3, 0.1, 1.0]))
def test_adam_weight_decay_is_l2_in_the_gradient(seed, weight_decay):
    """Coupled decay: Adam(wd) on g equals Adam(0) on g + wd theta (theta: the current params)."""
    grads = gradient_sequence(seed)
    theta0 = initial_params(seed)
    history, _ = run(optim.Adam, theta0, grads, lr=1e-2, weight_decay=weight_decay)
    params = theta0.copy()
    plain = optim.Adam(params, lr=1e-2)
    for g, expected in zip(grads, history):
        plain.step(g + weight_decay * params)
        np.testing.assert_allclose(params, expected, rtol=1e-13, atol=1e-15)
    ref, _, _ = adam_reference(theta0, grads, 1e-2, weight_decay=weight_decay)
    np.testing.assert_allclose(history, ref, rtol=1e-12, atol=1e-15)


def test_per_step_lr_overrides_the_default():
    grads = gradient_sequence(3)
    theta0 = initial_params(3)
    params = theta0.copy()
    opt = optim.Adam(params, lr=123.0)
    for g in grads:
        opt.step(g, lr=1e-3)
    ref, _, _ = adam_reference(theta0, grads, 1e-3)
    np.testing.assert_allclose(params, ref[-1], rtol=1e-12)


def test_adam_float32_params_stay_float32():
    params = initial_params(0).astype(np.float32)
    opt = optim.Adam(params, lr=1e-2)
    opt.step(gradient_sequence(0, steps=1)[0].astype(np.float32))
    assert params.dtype == opt.m.dtype == opt.v.dtype == np.float32
    ref, _, _ = adam_reference(initial_params(0).astype(np.float32),
                               gradient_sequence(0, steps=1).astype(np.float32), 1e-2)
    np.testing.assert_allclose(params, ref[0], rtol=1e-5, atol=1e-6)


# --- AdamW -----------------------------------------------------------------------------------

def test_adamw_default_weight_decay():
    params = np.ones(3)
    assert optim.AdamW(params).weight_decay == 0.01
    assert optim.Adam(params).weight_decay == 0.0


@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_adamw_zero_gradients_only_shrink(weight_decay):
    """With g = 0 the Adam step is 0 / (0 + eps) = 0: theta_k = (1 - lr wd)^k theta_0, m = v = 0."""
    theta0 = initial_params(0)
    params = theta0.copy()
    kwargs = {} if weight_decay is None else {"weight_decay": weight_decay}
    opt = optim.AdamW(params, lr=0.05, **kwargs)
    wd = 0.01 if weight_decay is None else weight_decay
    for k in range(1, 8):
        opt.step(np.zeros_like(params))
        np.testing.assert_allclose(params, theta0 * (1 - 0.05 * wd) ** k, rtol=1e-14)
        np.testing.assert_array_equal(opt.m, 0.0)
        np.testing.assert_array_equal(opt.v, 0.0)


@given(seed=seeds, weight_decay=st.sampled_from([0.01, 0.1, 1.0]))
def test_adamw_decay_is_decoupled(seed, weight_decay):
    """theta_k = (1 - lr wd) theta_{k-1} - [Adam step on g alone]; m, v never see the decay."""
    grads = gradient_sequence(seed)
    theta0 = initial_params(seed)
    lr = 1e-2
    history, opt = run(optim.AdamW, theta0, grads, lr=lr, weight_decay=weight_decay)
    # The same gradients without decay: same moments, and the same per-step Adam update.
    plain_history, plain = run(optim.Adam, theta0, grads, lr=lr)
    np.testing.assert_array_equal(opt.m, plain.m)
    np.testing.assert_array_equal(opt.v, plain.v)
    adam_steps = np.diff(np.vstack([theta0, plain_history]), axis=0)  # (steps, size)
    prev = theta0
    for step, expected in zip(adam_steps, history):
        np.testing.assert_allclose(expected, (1 - lr * weight_decay) * prev + step,
                                   rtol=1e-12, atol=1e-15)
        prev = expected
    ref, _, _ = adam_reference(theta0, grads, lr, weight_decay=weight_decay, decoupled=True)
    np.testing.assert_allclose(history, ref, rtol=1e-12, atol=1e-15)
    coupled, _ = run(optim.Adam, theta0, grads, lr=lr, weight_decay=weight_decay)
    assert not np.allclose(history, coupled)  # coupled and decoupled decay really differ


# --- against torch.optim ---------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs", [
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.5}),
])
def test_matches_torch_optim(name, kwargs):
    torch = pytest.importorskip("torch")
    grads = gradient_sequence(5, steps=10, size=40)
    theta0 = initial_params(5, size=40)
    history, _ = run(getattr(optim, name), theta0, grads, **kwargs)
    p = torch.tensor(theta0, requires_grad=True)
    opt = getattr(torch.optim, name)([p], **kwargs)
    for g, expected in zip(grads, history):
        p.grad = torch.tensor(g)
        opt.step()
        np.testing.assert_allclose(expected, p.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_clip_matches_torch():
    torch = pytest.importorskip("torch")
    g = gradient_sequence(0, steps=1)[0]
    ours = g.copy()
    norm = optim.clip_grad_norm(ours, 1.0)
    p = torch.zeros(g.size, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(g)
    tnorm = torch.nn.utils.clip_grad_norm_([p], 1.0)
    assert norm == pytest.approx(float(tnorm), rel=1e-14)
    np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-14)


# --- gradient clipping -----------------------------------------------------------------------

@given(seed=seeds, log_scale=st.floats(-3, 3), max_norm=st.floats(1e-2, 1e2))
def test_clip_grad_norm(seed, log_scale, max_norm):
    g = np.random.default_rng(seed).standard_normal(37) * 10.0 ** log_scale
    g0 = g.copy()
    norm0 = math.sqrt(sum(float(x) ** 2 for x in g0))
    returned = optim.clip_grad_norm(g, max_norm)
    assert returned == pytest.approx(norm0, rel=1e-12)  # the norm before clipping
    norm = np.linalg.norm(g)
    if norm0 <= max_norm:
        np.testing.assert_array_equal(g, g0)  # untouched below the threshold
    else:
        assert norm <= max_norm
        # torch's factor max_norm / (||g|| + 1e-6) lands a hair under max_norm
        assert norm == pytest.approx(max_norm * norm0 / (norm0 + 1e-6), rel=1e-12)
        assert norm == pytest.approx(max_norm, rel=2e-6 / norm0)
        cosine = np.dot(g, g0) / (norm * norm0)  # direction preserved
        assert cosine == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(g / norm, g0 / norm0, rtol=1e-10, atol=1e-15)


def test_clip_rejects_bad_max_norm():
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="max_norm"):
            optim.clip_grad_norm(np.ones(3), bad)
    with pytest.raises(TypeError, match="max_norm"):
        optim.clip_grad_norm(np.ones(3), "1")


# --- schedules -------------------------------------------------------------------------------

def test_constant_schedule():
    schedule = optim.make_schedule("constant", 3e-4, total_steps=100, warmup_steps=10)
    assert all(schedule(k) == 3e-4 for k in range(0, 300, 7))


@given(name=st.sampled_from(["cosine", "linear"]), lr=st.floats(1e-5, 1.0),
       total=st.integers(1, 400), warmup_fraction=st.floats(0, 1),
       final_fraction=st.floats(0, 0.999))
@example(name="cosine", lr=1.0, total=10, warmup_fraction=0.5, final_fraction=0.0)
@example(name="linear", lr=1.0, total=10, warmup_fraction=1.0, final_fraction=0.5)
@example(name="cosine", lr=1.0, total=1, warmup_fraction=0.0, final_fraction=0.0)
def test_warmup_decay_schedules(name, lr, total, warmup_fraction, final_fraction):
    warmup = int(warmup_fraction * total)
    final_lr = final_fraction * lr
    schedule = optim.make_schedule(name, lr, total, warmup_steps=warmup, final_lr=final_lr)
    lrs = np.array([schedule(k) for k in range(total + 20)])
    tol = 1e-12 * lr
    peak = max(warmup - 1, 0)  # the last warm-up step, or step 0 without warm-up
    # warm-up: lr (k + 1) / W, strictly rising, reaching lr at step W - 1
    np.testing.assert_allclose(lrs[:warmup], lr * np.arange(1, warmup + 1) / max(warmup, 1),
                               rtol=1e-12)
    assert np.all(np.diff(lrs[:peak + 1]) > 0)
    # the peak exactly once, over the whole run (steps 0 .. total - 1)
    assert lrs[peak] == pytest.approx(lr, rel=1e-12)
    assert np.all(lrs[:peak] < lr) and np.all(lrs[peak + 1:total] < lr)
    # then a strict decay that has not reached final_lr by the last step, and final_lr after it
    assert np.all(np.diff(lrs[peak:total + 1]) < 0)
    assert lrs[total - 1] > final_lr
    np.testing.assert_allclose(lrs[total:], final_lr, rtol=1e-12, atol=tol)
    # the shape of the decay, written out: p = (k - P) / (K - P)
    k = np.arange(peak, total + 1)
    decay = lrs[peak:total + 1]
    p = (k - peak) / (total - peak)
    if name == "cosine":
        expected = final_lr + (lr - final_lr) * (1 + np.cos(np.pi * p)) / 2
    else:
        expected = lr - (lr - final_lr) * p
    np.testing.assert_allclose(decay, expected, rtol=1e-12, atol=tol)


def test_cosine_midpoint_and_linear_steps():
    # W = 10: warm-up 0.1, 0.2, .., 1.0 at steps 0 .. 9, the peak at step 9; K - P = 109 - 9 = 100
    cosine = optim.make_schedule("cosine", 1.0, total_steps=109, warmup_steps=10, final_lr=0.2)
    assert [cosine(k) for k in (0, 8, 9)] == pytest.approx([0.1, 0.9, 1.0], rel=1e-12)
    assert cosine(10) < 1.0  # no second peak
    assert cosine(59) == pytest.approx(0.6, rel=1e-12)  # half way: (lr + final_lr) / 2
    assert cosine(34) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-12)
    assert cosine(108) == pytest.approx(0.2 + 0.4 * (1 + math.cos(math.pi * 0.99)), rel=1e-12)
    linear = optim.make_schedule("linear", 1.0, total_steps=109, warmup_steps=10, final_lr=0.2)
    steps = np.diff([linear(k) for k in range(9, 110)])
    np.testing.assert_allclose(steps, -0.8 / 100, rtol=1e-9)  # constant decrement from the peak
    warm = np.diff([linear(k) for k in range(10)])
    np.testing.assert_allclose(warm, 0.1, rtol=1e-9)  # constant increment lr / W
    assert linear(108) == pytest.approx(0.208, rel=1e-12)  # the last step: above final_lr
    # without warm-up the peak is step 0 and p = k / K
    plain = optim.make_schedule("linear", 1.0, total_steps=4, final_lr=0.0)
    assert [plain(k) for k in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


@pytest.mark.parametrize("args, kwargs, error, match", [
    (("step", 1e-3, 10), {}, ValueError, "schedule must be one of"),
    (("cosine", 0.0, 10), {}, ValueError, "lr must be in"),
    (("cosine", -1e-3, 10), {}, ValueError, "lr must be in"),
    (("cosine", np.nan, 10), {}, ValueError, "lr must be a finite"),
    (("cosine", 1e-3, 0), {}, ValueError, "total_steps must be an integer >= 1"),
    (("cosine", 1e-3, 10.0), {}, TypeError, "total_steps must be an integer"),
    (("cosine", 1e-3, 10), {"warmup_steps": -1}, ValueError, "warmup_steps must be an integer"),
    (("cosine", 1e-3, 10), {"warmup_steps": 2.5}, ValueError, "warmup_steps must be an integer"),
    (("cosine", 1e-3, 10), {"warmup_steps": 11}, ValueError, r"warmup_steps must be <= total"),
    (("linear", 1e-3, 10), {"warmup_steps": 11}, ValueError, r"warmup_steps must be <= total"),
    (("linear", 1e-3, 10), {"final_lr": -1e-4}, ValueError, "final_lr must be in"),
])
def test_make_schedule_rejects_bad_values(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        optim.make_schedule(*args, **kwargs)


# --- EMA -------------------------------------------------------------------------------------

@given(seed=seeds, decay=st.floats(0.0, 1.0), k=st.integers(0, 50))
def test_ema_closed_form(seed, decay, k):
    """With constant params p: shadow_k = p + decay^k (p0 - p)."""
    rng = np.random.default_rng(seed)
    p0, p = rng.standard_normal(20), rng.standard_normal(20)
    ema = optim.EMA(p0, decay=decay)
    p0_copy = p0.copy()
    for _ in range(k):
        ema.update(p)
    np.testing.assert_allclose(ema.shadow, p + decay ** k * (p0_copy - p), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_array_equal(p0, p0_copy)  # the shadow is a copy, not a view


def test_ema_decay_0_tracks_and_decay_1_freezes():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(10)
    tracker, frozen = optim.EMA(p0, decay=0.0), optim.EMA(p0, decay=1.0)
    for _ in range(5):
        p = rng.standard_normal(10)
        tracker.update(p)
        frozen.update(p)
        # shadow - 1 * (shadow - p) is p up to one rounding of the difference
        np.testing.assert_allclose(tracker.shadow, p, rtol=0, atol=4 * np.spacing(np.abs(p).max()))
        np.testing.assert_array_equal(frozen.shadow, p0)


def test_ema_default_decay_and_bad_decay():
    assert optim.EMA(np.zeros(2)).decay == 0.999
    for bad in (-0.1, 1.1, np.nan):
        with pytest.raises(ValueError, match="decay"):
            optim.EMA(np.zeros(2), decay=bad)


# --- state round trip ------------------------------------------------------------------------

@pytest.mark.parametrize("opt_cls", [optim.Adam, optim.AdamW])
def test_state_dict_round_trip_continues_identically(opt_cls):
    grads = gradient_sequence(8, steps=10)
    theta0 = initial_params(8)
    full, _ = run(opt_cls, theta0, grads, lr=1e-2)

    params = theta0.copy()
    first = opt_cls(params, lr=1e-2)
    for g in grads[:5]:
        first.step(g)
    state = first.state_dict()
    saved = params.copy()
    first.m[...] = np.nan  # the state dict holds copies, not views
    first.step_count = 999

    resumed_params = saved.copy()
    resumed = opt_cls(resumed_params, lr=1e-2)
    resumed.load_state_dict(state)
    assert resumed.step_count == 5
    for g in grads[5:]:
        resumed.step(g)
    np.testing.assert_array_equal(resumed_params, full[-1])


def test_load_state_dict_rejects_wrong_shapes():
    opt = optim.Adam(np.zeros(6))
    good = opt.state_dict()
    for key in ("m", "v"):
        bad = dict(good, **{key: np.zeros(5)})
        with pytest.raises(ValueError, match=f"optimizer state '{key}' must have shape"):
            opt.load_state_dict(bad)


# --- input validation ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"lr": -1e-3}, ValueError, "lr must be in"),
    ({"lr": np.inf}, ValueError, "lr must be a finite"),
    ({"betas": (1.0, 0.999)}, ValueError, r"betas\[0\] must be in"),
    ({"betas": (-0.1, 0.999)}, ValueError, r"betas\[0\] must be in"),
    ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\] must be in"),
    ({"betas": (0.9, 1.5)}, ValueError, r"betas\[1\] must be in"),
    ({"eps": -1e-8}, ValueError, "eps must be in"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay must be in"),
])
@pytest.mark.parametrize("opt_cls", [optim.Adam, optim.AdamW])
def test_optimizer_rejects_bad_hyperparameters(opt_cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        opt_cls(np.zeros(4), **kwargs)


@pytest.mark.parametrize("params", [np.zeros((2, 3)), np.float64(1.0), [0.0, 1.0]])
def test_optimizer_rejects_non_flat_params(params):
    with pytest.raises(TypeError, match="params must be a flat 1-D ndarray"):
        optim.Adam(params)


def test_step_rejects_grads_of_the_wrong_shape():
    params = np.zeros(4)
    opt = optim.Adam(params)
    for grads in (np.zeros(3), np.zeros((4, 1)), np.zeros((2, 2))):
        with pytest.raises(ValueError, match=r"grads must have shape \(4,\)"):
            opt.step(grads)
    np.testing.assert_array_equal(params, 0.0)
    assert opt.step_count == 0  # a rejected step changes nothing
