"""Tests for npflow.train: configuration, the CFM step, learning known fields, exact resume,
Ctrl-C and divergence handling.

Known fields (linear path ``xt = (1 - t) x0 + t x1``, ``ut = x1 - x0``, ``x0 ~ N(0, I)``):

* pairs ``x1 = x0 + c``: every conditional velocity is ``c``, so the marginal field is ``c``;
* independent ``x1 = x0' + c`` with ``x0'`` a second N(0, I) draw: ``xt - t c`` is Gaussian with
  variance ``s2 = (1 - t)^2 + t^2`` and ``Cov(x0' - x0, xt) = (2t - 1) I``, so
  ``v(x, t) = E[ut | xt = x] = c + (2t - 1) / s2 (x - t c)``.
"""
import dataclasses
import json
import math
import os
import re
import signal

import numpy as np
import pytest

from npflow import checkpoint, data, datasets, networks
from npflow.nn import MLP
from npflow.train import (TIME_SAMPLINGS, Batch, RunResult, TrainConfig, Trainer,
                          TrainingDiverged, data_config, sample_t, start, start_or_resume,
                          train)
from npflow.data import TrainingFiles
from npflow._checks import OptionError, out_path

C = np.array([1.5, -1.0])


def tiny(**overrides):
    """A small, fast configuration (2-D, one or two narrow layers)."""
    base = dict(steps=20, batch_size=64, hidden=(16,), warmup_steps=0, lr=1e-2)
    return TrainConfig(**{**base, **overrides})


# --- TrainConfig --------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("source", "bogus"), ("target", "mnist"), ("path", "straight"), ("coupling", "greedy"),
    ("schedule", "step"), ("activation", "gelu"), ("time_embedding", "fourier"),
    ("time_sampling", "beta"), ("dtype", "float16"),
    ("steps", 0), ("steps", -5), ("batch_size", 0), ("embed_dim", 0),
    ("warmup_steps", -1), ("seed", -1),
    ("lr", 0.0), ("lr", -1e-3), ("lr", float("nan")), ("lr", float("inf")),
    ("sigma", float("nan")), ("sigma", -0.1),
    ("weight_decay", -1.0), ("grad_clip", -1.0), ("grad_clip", float("inf")),
    ("ema_decay", 1.5), ("ema_decay", -0.1), ("ema_decay", float("nan")),
    ("time_scale", 0.0),
    ("hidden", ()), ("hidden", (16, 0)), ("hidden", (-3,)), ("hidden", "abc"),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field) as info:
        TrainConfig(**{field: value})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("field, value", [
    ("target", "mnist"), ("dtype", "f{0}"), ("steps", 0), ("seed", -1), ("lr", float("nan")),
    ("ema_decay", 1.5), ("hidden", (16, 0)),
])
def test_config_bad_values_name_the_option_for_every_front_end(field, value):
    """A bad value is an OptionError: a front end spells the option its own way."""
    with pytest.raises(OptionError) as info:
        TrainConfig(**{field: value})
    assert info.value.names == (field,)
    flag = "--" + field.replace("_", "-")
    spelled = info.value.spell(lambda name: "--" + name.replace("_", "-"), "this command")
    assert spelled == flag + str(info.value)[len(field):]
    assert repr(value) in spelled or str(value) in spelled


@pytest.mark.parametrize("field, value", [
    ("steps", 1.5), ("batch_size", "64"), ("lr", "0.1"), ("hidden", (16, 2.5)), ("steps", True),
])
def test_config_rejects_wrong_types_naming_the_field(field, value):
    with pytest.raises((TypeError, ValueError), match=field):
        TrainConfig(**{field: value})


def test_config_residual_is_a_bool_and_reaches_the_model():
    with pytest.raises(TypeError, match="residual must be True or False"):
        tiny(hidden=(16, 16), residual=1)
    assert Trainer(tiny(hidden=(16, 16, 8), residual=True)).model.shortcuts == (False, True, False)


def test_config_defaults_are_valid_and_json_round_trip():
    for cfg in (TrainConfig(), tiny(hidden=[8, 4], path="icfm", coupling="ot", dtype="float64")):
        values = json.loads(json.dumps(cfg.to_dict()))  # what a checkpoint stores
        back = TrainConfig.from_dict(values)
        assert back == cfg and isinstance(back.hidden, tuple)
    assert tiny(hidden=[8, 4]).hidden == (8, 4)


def test_config_from_dict_rejects_unknown_keys():
    values = {**tiny().to_dict(), "learning_rate": 1.0, "layers": 3}
    with pytest.raises(ValueError, match="learning_rate.*layers|layers.*learning_rate"):
        TrainConfig.from_dict(values)


def test_trainer_needs_a_config():
    with pytest.raises(TypeError, match="config"):
        Trainer({"steps": 3})


# --- the CFM step ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", TIME_SAMPLINGS)
def test_sample_t_has_the_documented_density(kind):
    t = sample_t(np.random.default_rng(0), 100000, kind)
    assert t.shape == (100000,) and np.all((t >= 0) & (t <= 1))
    if kind == "uniform":
        assert abs(t.mean() - 0.5) < 0.005 and abs(t.var() - 1 / 12) < 0.002
    else:
        z = np.log(t / (1 - t))  # logit(t) ~ N(0, 1)
        assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.02


def test_draw_batch_follows_the_linear_path_between_source_and_target():
    """Recover the pair from the path: x1 = xt + (1 - t) ut must lie on the checkerboard,
    x0 = xt - t ut must look standard normal."""
    trainer = Trainer(tiny(batch_size=4096, dtype="float64", time_sampling="uniform"))
    batch = trainer.draw_batch()
    assert isinstance(batch, Batch) and batch.t.shape == (4096, 1)
    x1 = batch.xt + (1 - batch.t) * batch.ut
    x0 = batch.xt - batch.t * batch.ut
    assert datasets.checkerboard_precision(x1) == 1.0
    assert np.all(np.abs(x0.mean(axis=0)) < 0.06)
    np.testing.assert_allclose(np.cov(x0.T), np.eye(2), atol=0.08)


def test_ot_coupling_pairs_the_batch_optimally():
    """No swap of two partners can lower the squared cost (a necessary optimality condition)."""
    trainer = Trainer(tiny(batch_size=64, coupling="ot", dtype="float64"))
    batch = trainer.draw_batch()
    x0 = batch.xt - batch.t * batch.ut
    x1 = batch.xt + (1 - batch.t) * batch.ut
    cost = np.sum((x0[:, None] - x1[None]) ** 2, axis=2)  # (n, n)
    d = np.diag(cost)
    swap_gain = d[:, None] + d[None, :] - cost - cost.T
    assert np.all(swap_gain <= 1e-9)


def test_train_step_returns_the_cfm_loss_and_its_exact_gradient():
    trainer = Trainer(tiny(batch_size=16, hidden=(8, 8), activation="tanh", dtype="float64",
                           grad_clip=0.0))
    state = trainer.rng.bit_generator.state
    batch = trainer.draw_batch()  # the batch the next step will draw
    trainer.rng.bit_generator.state = state
    theta = trainer.model.params.copy()
    loss = trainer.train_step()

    net = MLP(2, (8, 8), "tanh", dtype=np.float64, rng=np.random.default_rng(0))

    def cfm_loss(params):
        net.params[...] = params
        return np.mean((net.forward(batch.xt, batch.t) - batch.ut) ** 2)

    assert loss == pytest.approx(cfm_loss(theta), rel=1e-12)
    grads = trainer.model.grads  # unclipped (grad_clip 0): dL/dtheta at theta
    h = 1e-6
    for i in np.random.default_rng(1).choice(theta.size, 25, replace=False):
        e = np.zeros_like(theta)
        e[i] = h
        fd = (cfm_loss(theta + e) - cfm_loss(theta - e)) / (2 * h)
        assert grads[i] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    assert not np.array_equal(trainer.model.params, theta)  # and the step moved the weights


@pytest.mark.parametrize("schedule, warmup, first_lr", [
    ("cosine", 4, 0.01 / 4),     # warm-up: lr_k = lr (k + 1) / W, k = 0
    ("linear", 5, 0.01 / 5),
    ("cosine", 0, 0.01),
    ("constant", 3, 0.01),       # no warm-up
])
def test_first_step_is_an_adam_step_at_the_schedules_first_rate(schedule, warmup, first_lr):
    """Adam's first update is ``-lr_0 g / (|g| + eps)`` (m_hat = g, v_hat = g^2)."""
    trainer = Trainer(tiny(schedule=schedule, warmup_steps=warmup, dtype="float64",
                           grad_clip=0.0, hidden=(8,)))
    theta = trainer.model.params.copy()
    trainer.train_step()
    g = trainer.model.grads
    np.testing.assert_allclose(trainer.model.params, theta - first_lr * g / (np.abs(g) + 1e-8),
                               rtol=1e-10, atol=1e-15)
    ema = trainer.config.ema_decay
    np.testing.assert_allclose(trainer.ema.shadow, ema * theta + (1 - ema) * trainer.model.params,
                               rtol=1e-12)


def test_losses_decrease_and_history_has_one_entry_per_step():
    trainer = Trainer(tiny(target="8gaussians", steps=200, batch_size=128, hidden=(32, 32),
                           schedule="constant"))
    returned = [trainer.train_step() for _ in range(200)]
    assert trainer.step == 200 and len(trainer.losses) == 200
    assert trainer.losses == returned
    losses = np.array(trainer.losses)
    assert losses[-50:].mean() < 0.6 * losses[:10].mean()


def test_run_trains_to_config_steps_and_train_helper(tmp_path):
    out = str(tmp_path / "m.npz")
    trainer = train(tiny(steps=12), out=out)
    assert trainer.step == 12 and len(trainer.losses) == 12
    ckpt = checkpoint.load(out)
    assert ckpt.step == 12 and len(ckpt.losses) == 12
    np.testing.assert_array_equal(ckpt.params, trainer.model.params)
    np.testing.assert_array_equal(ckpt.ema_params, trainer.ema.shadow)
    assert train(tiny(steps=12), steps=3).step == 3  # keyword overrides


def test_run_reports_the_steps_it_did_and_their_time():
    trainer = Trainer(tiny(steps=7))
    first = trainer.run(quiet=True)
    assert (first.steps, trainer.step) == (7, 7) and first.seconds > 0
    assert first.summary().startswith("trained 7 steps in ")
    with pytest.raises(OptionError, match="checkpoint_every must be an integer >= 1"):
        trainer.run(checkpoint_every=0)


def test_start_checks_the_options_before_reading_the_files(tmp_path):
    files = TrainingFiles(str(tmp_path / "absent.csv"))
    with pytest.raises(OptionError, match="val_fraction"):
        start({"val_fraction": 1.0}, files)
    with pytest.raises(ValueError, match="absent.csv"):
        start({}, files)


def test_start_or_resume_as_a_job_script_uses_it(tmp_path):
    out, options = str(tmp_path / "run.npz"), {"steps": 6, "batch_size": 32, "hidden": (8,)}
    with pytest.raises(OptionError, match="resume: there is no checkpoint") as info:
        start_or_resume(out, options, resume="yes")
    assert info.value.names == ("resume", "out")
    first = start_or_resume(out, {**options, "steps": 3}, resume="auto")  # nothing there: new
    assert first.step == 0
    first.run(out=out, quiet=True)
    again = start_or_resume(out, options, resume="auto")  # continued, re-planned to 6 steps
    assert again.step == 3 and again.config.steps == 6
    assert start_or_resume(out, options).step == 0  # "no": a new run over the old file
    with pytest.raises(OptionError, match="resume must be one of"):
        start_or_resume(out, options, resume="maybe")


def test_start_makes_a_run_with_labels_conditional(tmp_path):
    rows, labels = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(rows, np.random.default_rng(0).normal(size=(40, 2)))
    np.save(labels, np.arange(40) % 2)
    options = {"steps": 2, "batch_size": 8, "hidden": (8,), "eval_every": 1}
    trainer = start(options, TrainingFiles(str(rows), str(labels)))
    assert trainer.config.conditional and trainer.n_classes == 2
    with pytest.raises(ValueError, match="class labels were given, but conditional is off"):
        start({**options, "conditional": False}, TrainingFiles(str(rows), str(labels)))


# --- learning known fields ----------------------------------------------------------------------

def learned_field(monkeypatch_coupling, **overrides):
    cfg = tiny(source="gaussian", target="gaussian", activation="silu", dtype="float64",
               time_sampling="uniform", schedule="cosine", grad_clip=0.0, **overrides)
    trainer = Trainer(cfg)
    trainer.coupling = monkeypatch_coupling
    result = trainer.run(quiet=True)
    assert isinstance(result, RunResult) and not result.interrupted
    model = trainer.model
    model.params[...] = trainer.ema.shadow
    return model


def test_learns_the_constant_field_of_shifted_pairs():
    model = learned_field(lambda x0, x1, rng, y1=None: (x0, x0 + C, None),
                          steps=600, hidden=(32,), ema_decay=0.9)
    rng = np.random.default_rng(1)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = rng.uniform(-2, 2, (100, 2)) + t * C
        np.testing.assert_allclose(model.forward(x, t), np.broadcast_to(C, x.shape), atol=0.1)


def test_learns_the_marginal_field_of_independent_pairs():
    """The network must learn E[x1 - x0 | xt], not the conditional target of any one pair."""
    model = learned_field(lambda x0, x1, rng, y1=None: (x0, x1 + C, None),
                          steps=3000, batch_size=256, hidden=(32, 32), ema_decay=0.99)
    rng = np.random.default_rng(1)
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        s2 = (1 - t) ** 2 + t**2
        x = rng.uniform(-1.5, 1.5, (200, 2)) * np.sqrt(s2) + t * C  # within 1.5 std of xt
        exact = C + (2 * t - 1) / s2 * (x - t * C)
        err = model.forward(x, t) - exact
        assert np.sqrt(np.mean(err**2)) < 0.1, t
        assert np.max(np.abs(err)) < 0.3, t
        if t != 0.5:  # the field is not the constant c: the tolerance tells them apart
            assert np.sqrt(np.mean((exact - C) ** 2)) > 0.4


# --- resume is bit-identical ----------------------------------------------------------------------

def assert_same_run(a, b):
    np.testing.assert_array_equal(a.model.params, b.model.params)
    np.testing.assert_array_equal(a.ema.shadow, b.ema.shadow)
    np.testing.assert_array_equal(a.optimizer.m, b.optimizer.m)
    np.testing.assert_array_equal(a.optimizer.v, b.optimizer.v)
    assert a.optimizer.step_count == b.optimizer.step_count
    assert a.step == b.step
    np.testing.assert_array_equal(np.asarray(a.losses), np.asarray(b.losses))
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert a.model.params.dtype == b.model.params.dtype


RESUME_CASES = [
    dict(coupling="independent"),
    dict(coupling="ot"),
    dict(path="icfm", sigma=0.2),
    dict(path="icfm", coupling="ot", time_sampling="uniform"),
    dict(path="lipman", weight_decay=0.01, time_embedding="sinusoidal", dtype="float64"),
    dict(path="vp", coupling="sinkhorn", schedule="linear", warmup_steps=5),
    dict(target="8gaussians", conditional=True, coupling="ot", label_dropout=0.3),
]


@pytest.mark.parametrize("overrides", RESUME_CASES, ids=lambda o: "-".join(map(str, o.values())))
def test_resume_is_bit_identical(tmp_path, overrides):
    cfg = tiny(steps=16, batch_size=32, hidden=(16, 16), **overrides)
    straight = Trainer(cfg)
    straight.run(quiet=True)

    first = Trainer(cfg)
    for _ in range(8):
        first.train_step()
    path = str(tmp_path / "half.npz")
    first.save(path)
    resumed = Trainer.from_checkpoint(path)
    assert resumed.step == 8 and resumed.config == cfg
    resumed.run(quiet=True)
    assert_same_run(straight, resumed)


def test_resume_with_more_steps_continues_a_constant_schedule_exactly(tmp_path):
    path = str(tmp_path / "m.npz")
    Trainer(tiny(steps=6, schedule="constant")).run(out=path, quiet=True)
    extended = Trainer.from_checkpoint(path, steps=14)
    assert extended.config.steps == 14 and extended.step == 6
    extended.run(out=path, quiet=True)
    straight = Trainer(tiny(steps=14, schedule="constant"))
    straight.run(quiet=True)
    assert_same_run(straight, extended)
    assert checkpoint.load(path).step == 14


def test_from_checkpoint_rejects_unresumable_files(tmp_path):
    path = str(tmp_path / "m.npz")
    Trainer(tiny(steps=2)).run(out=path, quiet=True)
    with pytest.raises(checkpoint.CheckpointError, match="steps"):
        Trainer.from_checkpoint(path, steps=0)
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["train"]["learning_rate"] = 1.0
    arrays["meta"] = np.array(json.dumps(meta))
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="learning_rate") as info:
        Trainer.from_checkpoint(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        Trainer.from_checkpoint(str(tmp_path / "none.npz"))


# --- signals: a step is all or nothing ---------------------------------------------------------

def signal_during_step(monkeypatch, trainer, k, signum=signal.SIGINT):
    """Deliver ``signum`` at the start of step ``k + 1`` (the step itself still runs)."""
    original = trainer.train_step

    def step():
        if trainer.step == k:
            signal.raise_signal(signum)
        return original()

    monkeypatch.setattr(trainer, "train_step", step)


def signal_inside(monkeypatch, obj, method, k, trainer, signum=signal.SIGINT):
    """Deliver ``signum`` from inside ``obj.method`` during step ``k + 1``, after its first half.

    For the optimizer: after the update, before the step counter moves. For the EMA: after
    ``shadow *= decay``, before ``shadow += (1 - decay) params``.
    """
    if method == "update":  # EMA: split the update in two halves around the signal
        def update(params):
            obj.shadow *= obj.decay
            if trainer.step == k:
                signal.raise_signal(signum)
            np.multiply(params, 1 - obj.decay, out=obj._tmp)
            obj.shadow += obj._tmp
        monkeypatch.setattr(obj, "update", update)
        return
    original = getattr(obj, method)

    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        if trainer.step == k:
            signal.raise_signal(signum)

    monkeypatch.setattr(obj, method, wrapped)


def straight_run(cfg):
    straight = Trainer(cfg)
    straight.run(quiet=True)
    return straight


@pytest.mark.parametrize("where", ["between steps", "optimizer", "ema"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_step_saves_a_run_that_resumes_exactly(tmp_path, monkeypatch, where,
                                                                  signum):
    cfg = tiny(steps=15, coupling="ot", path="icfm")
    path = str(tmp_path / "m.npz")
    trainer = Trainer(cfg)
    if where == "between steps":
        signal_during_step(monkeypatch, trainer, 5, signum)
    else:
        obj, method = (trainer.optimizer, "step") if where == "optimizer" else (trainer.ema,
                                                                                 "update")
        signal_inside(monkeypatch, obj, method, 5, trainer, signum)
    result = trainer.run(out=path, checkpoint_every=4, quiet=True)
    assert result.interrupted and result.signal == signal.Signals(signum).name
    assert trainer.step == 6  # the step in progress finished before the run stopped
    ckpt = checkpoint.load(path)
    assert ckpt.step == ckpt.adam_step == 6 and len(ckpt.losses) == 6
    resumed = Trainer.from_checkpoint(path)
    monkeypatch.undo()
    assert not resumed.run(out=path, quiet=True).interrupted
    assert_same_run(straight_run(cfg), resumed)


def test_signal_handlers_are_restored_after_a_run():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    Trainer(tiny(steps=2)).run(quiet=True)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_signal_without_out_just_returns(monkeypatch):
    trainer = Trainer(tiny(steps=10))
    signal_during_step(monkeypatch, trainer, 3)
    result = trainer.run(quiet=True)
    assert result.interrupted and result.signal == "SIGINT" and trainer.step == 4


# --- resume semantics -----------------------------------------------------------------------------

def test_resume_to_the_same_total_under_the_default_cosine_schedule_is_bit_identical(tmp_path):
    cfg = tiny(steps=12, warmup_steps=3)
    assert cfg.schedule == TrainConfig().schedule == "cosine"
    path = str(tmp_path / "m.npz")
    first = Trainer(cfg)
    for _ in range(5):
        first.train_step()
    first.save(path)
    resumed = Trainer.from_checkpoint(path, steps=12)
    assert resumed.replanned is None
    resumed.run(quiet=True)
    assert_same_run(straight_run(cfg), resumed)


def test_extending_a_decaying_run_is_named_a_warm_restart(tmp_path):
    path = str(tmp_path / "m.npz")
    Trainer(tiny(steps=6, warmup_steps=0)).run(out=path, quiet=True)
    extended = Trainer.from_checkpoint(path, steps=12)
    plan = extended.replanned
    assert (plan.planned_steps, plan.steps) == (6, 12)
    assert plan.lr_before == pytest.approx(tiny().lr * 0.5 * (1 + math.cos(math.pi * 1.0)))
    assert plan.lr_after == pytest.approx(tiny().lr * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert "warm restart" in plan.describe() and "from scratch" in plan.describe()


def test_extending_a_constant_schedule_says_it_continues_unchanged(tmp_path):
    path = str(tmp_path / "m.npz")
    Trainer(tiny(steps=6, schedule="constant")).run(out=path, quiet=True)
    plan = Trainer.from_checkpoint(path, steps=9).replanned
    assert plan.lr_before == plan.lr_after and "unchanged" in plan.describe()


# --- divergence -----------------------------------------------------------------------------------

def test_nan_loss_raises_and_keeps_the_last_periodic_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(steps=20)
    path = str(tmp_path / "m.npz")
    trainer = Trainer(cfg)
    original = trainer.draw_batch

    def poisoned():
        batch = original()
        if trainer.step == 6:  # the 7th step
            return dataclasses.replace(batch, ut=np.full_like(batch.ut, np.nan))
        return batch

    monkeypatch.setattr(trainer, "draw_batch", poisoned)
    with pytest.raises(TrainingDiverged, match="step 7") as info:
        trainer.run(out=path, checkpoint_every=5, quiet=True)
    message = str(info.value)
    assert "\n" not in message and "learning rate" in message and "nan" in message
    ckpt = checkpoint.load(path)  # the step-5 save, intact
    assert ckpt.step == 5
    reference = Trainer(cfg)
    for _ in range(5):
        reference.train_step()
    np.testing.assert_array_equal(ckpt.params, reference.model.params)
    np.testing.assert_array_equal(ckpt.ema_params, reference.ema.shadow)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_cleanly(tmp_path):
    path = str(tmp_path / "m.npz")
    trainer = Trainer(tiny(steps=50, lr=1e6, grad_clip=0.0, hidden=(16, 16),
                           schedule="constant"))
    with pytest.raises(TrainingDiverged, match="lower learning rate") as info, \
            np.errstate(over="ignore", invalid="ignore"):
        trainer.run(out=path, checkpoint_every=1, quiet=True)
    diverged_at = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    assert 1 <= diverged_at <= 50 and trainer.step == diverged_at - 1
    if diverged_at > 1:
        ckpt = checkpoint.load(path)  # finite by construction of load; check it anyway
        assert ckpt.step == diverged_at - 1
        assert np.all(np.isfinite(ckpt.params)) and np.all(np.isfinite(ckpt.losses))
    else:
        assert not os.path.exists(path)


def test_out_path_needs_an_existing_folder(tmp_path):
    assert out_path(str(tmp_path / "m.npz"), (".npz",)) == str(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="out: folder .*missing.* does not exist"):
        out_path(str(tmp_path / "missing" / "m.npz"), (".npz",))
    with pytest.raises(ValueError, match="out must end with .npz or .npy"):
        out_path(str(tmp_path / "m.csv"), (".npz", ".npy"))


# --- class-conditional runs -------------------------------------------------------------------

@pytest.mark.parametrize("field, value, error", [
    ("label_dropout", -0.1, ValueError), ("label_dropout", 1.5, ValueError),
    ("label_dropout", float("nan"), ValueError), ("conditional", 1, TypeError),
    ("reflow", -1, ValueError), ("reflow", 1.0, TypeError), ("reflow", True, TypeError),
    ("warmup_steps", True, TypeError), ("seed", False, TypeError), ("patience", True, TypeError),
    ("dequantize", 1, TypeError), ("standardize", "yes", TypeError),
    ("val_fraction", 1.0, ValueError), ("val_fraction", -0.1, ValueError),
    ("eval_every", 0, ValueError),
])
def test_config_rejects_bad_conditional_and_reflow_values(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


def test_conditional_batches_keep_labels_with_points_and_drop_them_at_the_rate():
    """Labels follow their points through the OT pairing; P(null) = label_dropout."""
    cfg = tiny(target="8gaussians", conditional=True, coupling="ot", label_dropout=0.25,
               batch_size=400, time_sampling="uniform")
    trainer = Trainer(cfg)
    assert trainer.model.n_classes == 8
    dropped = 0
    for _ in range(5):
        batch = trainer.draw_batch()
        x1 = batch.xt + (1 - batch.t) * batch.ut  # the linear path: x1 = xt + (1 - t) ut
        kept = batch.y < 8
        # the 8 components barely overlap (P(nearest centre != own) ~ 1e-3)
        assert np.mean(datasets.nearest_center_8gaussians(x1)[kept] == batch.y[kept]) > 0.98
        dropped += int(np.sum(~kept))
    assert abs(dropped / 2000 - 0.25) < 0.04  # binomial sd 0.0097
    trainer.train_step()


def test_label_dropout_zero_never_uses_the_null_label():
    trainer = Trainer(tiny(target="moons", conditional=True, label_dropout=0.0, batch_size=256))
    batch = trainer.draw_batch()
    assert batch.y.min() >= 0 and batch.y.max() <= 1 and trainer.model.n_classes == 2


def test_unconditional_runs_refuse_the_options_they_would_ignore():
    """conditional=False would ignore label_dropout: setting it is an error, not a no-op."""
    with pytest.raises(ValueError, match="label_dropout needs conditional"):
        tiny(steps=5, label_dropout=0.5)
    assert Trainer(tiny(steps=5)).draw_batch().y is None


@pytest.mark.parametrize("options, names", [
    (dict(target="data", source="moons"), "source of a run on rows"),
    (dict(val_fraction=0.2), "val_fraction applies to a run on rows of data"),
    (dict(patience=3), "patience applies"), (dict(dequantize=True), "dequantize applies"),
    (dict(standardize=False), "standardize applies"), (dict(eval_every=7), "eval_every"),
    (dict(sigma=0.3), "sigma is used by the icfm and lipman paths, not by path 'linear'"),
    (dict(embed_dim=32), "embed_dim sets the sinusoidal time embedding"),
    (dict(time_scale=10.0), "time_scale sets the sinusoidal time embedding"),
    (dict(target="data", val_fraction=0.0, patience=3),
     r"patience needs validation rows, but val_fraction is 0 \(none held out\)"),
    (dict(target="data", val_fraction=0.0, eval_every=7), "eval_every needs validation rows"),
])
def test_config_refuses_options_the_run_would_silently_ignore(options, names):
    with pytest.raises(ValueError, match=names) as info:
        TrainConfig(**options)
    assert "\n" not in str(info.value)


def test_config_accepts_the_same_options_where_they_are_used():
    TrainConfig(target="data", source="data", val_fraction=0.2, patience=3, dequantize=True)
    TrainConfig(target="data", val_fraction=0.0)  # eval_every and patience at their defaults
    TrainConfig(path="icfm", sigma=0.3, conditional=True, label_dropout=0.5)
    TrainConfig(time_embedding="sinusoidal", embed_dim=32, time_scale=10.0)


# --- runs on a finite dataset (target "data") ------------------------------------------------------

def rows_of(n=200, d=3, seed=5, integer=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.arange(1, d + 1) + 10.0 * np.arange(d)  # (n, d)
    return np.floor(x) if integer else x


def data_cfg(**overrides):
    base = dict(target="data", steps=30, batch_size=32, hidden=(16,), warmup_steps=0, lr=1e-2)
    if overrides.get("val_fraction", 0.1) > 0:  # nothing to evaluate without validation rows
        base["eval_every"] = 10
    return TrainConfig(**{**base, **overrides})


def test_data_batches_cover_every_training_row_once_per_epoch_and_never_a_validation_row():
    x = rows_of(n=100)
    trainer = Trainer(data_cfg(batch_size=10, val_fraction=0.2), data=x)
    rows = trainer.rows
    assert len(rows.split.val) == 20 and not set(rows.split.val) & set(rows.split.train)
    seen = []
    for _ in range(8):  # exactly one epoch of the 80 training rows
        x1 = rows.next_pairs(trainer.rng)[1]
        seen.append(rows.transform.inverse(x1))
    seen = np.concatenate(seen)
    order = np.lexsort(seen.T)
    np.testing.assert_allclose(seen[order], x[np.sort(rows.split.train)][
        np.lexsort(x[np.sort(rows.split.train)].T)], rtol=1e-12, atol=1e-9)
    assert rows.sampler.epoch == 1


def test_the_network_sees_standardized_rows():
    x = rows_of(n=500)
    trainer = Trainer(data_cfg(batch_size=50, val_fraction=0.0), data=x)
    z = np.concatenate([trainer.rows.next_pairs(trainer.rng)[1] for _ in range(10)])  # one epoch
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)


def test_dequantized_batches_add_fresh_uniform_noise():
    x = rows_of(n=64, integer=True)
    trainer = Trainer(data_cfg(batch_size=64, val_fraction=0.0, dequantize=True), data=x)
    u1, u2 = (trainer.rows.transform.inverse(trainer.rows.next_pairs(trainer.rng)[1])
              - x[np.sort(trainer.rows.split.train)] for _ in range(2))
    for u in (u1, u2):
        assert u.min() >= -1e-9 and u.max() < 1.0
    assert not np.allclose(u1, u2)


DATA_RESUME_CASES = [
    dict(),
    dict(dequantize=True, coupling="ot"),
    dict(conditional=True, coupling="ot", label_dropout=0.2),
    dict(source="data", val_fraction=0.0),
]


@pytest.mark.parametrize("overrides", DATA_RESUME_CASES, ids=lambda o: "-".join(map(str, o)))
def test_a_run_on_data_resumes_bit_identically_mid_epoch(tmp_path, overrides):
    x = rows_of(n=90, integer=overrides.get("dequantize", False))
    kwargs = {"data": x}
    if overrides.get("conditional"):
        kwargs["labels"] = np.arange(90) % 3
    if overrides.get("source") == "data":
        kwargs["source_data"] = rows_of(n=70, seed=9)
    cfg = data_cfg(steps=25, **overrides)
    straight = Trainer(cfg, **kwargs)
    straight.run(quiet=True)
    first = Trainer(cfg, **kwargs)
    for _ in range(13):  # 13 batches of 32 from 81 training rows: inside the 6th epoch
        first.train_step()
        if first.step % cfg.eval_every == 0:
            first.evaluate()
    path = str(tmp_path / "half.npz")
    first.save(path)
    resumed = Trainer.from_checkpoint(path, **kwargs)
    assert resumed.rows.sampler.epoch == first.rows.sampler.epoch
    resumed.run(quiet=True)
    assert_same_run(straight, resumed)
    assert resumed.val_losses == straight.val_losses
    np.testing.assert_array_equal(resumed.best_params, straight.best_params)


def test_the_best_weights_are_the_ema_at_the_lowest_validation_loss(monkeypatch):
    trainer = Trainer(data_cfg(steps=40), data=rows_of())
    losses = iter([5.0, 3.0, 4.0, 6.0])
    monkeypatch.setattr(trainer.rows, "validation_loss", lambda *a: next(losses))
    snapshots = {}
    original = trainer.evaluate

    def evaluate():
        snapshots[trainer.step] = trainer.ema.shadow.copy()
        return original()

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    trainer.run(quiet=True)
    assert trainer.val_losses == [(10, 5.0), (20, 3.0), (30, 4.0), (40, 6.0)]
    assert trainer.best_step == 20
    np.testing.assert_array_equal(trainer.best_params, snapshots[20])
    np.testing.assert_array_equal(trainer.ema_model(best=True).params, snapshots[20])


def test_patience_stops_a_run_whose_validation_loss_stopped_improving(monkeypatch):
    trainer = Trainer(data_cfg(steps=200, patience=2), data=rows_of())
    losses = iter([5.0, 3.0, 3.5, 3.0, 9.0, 1.0])
    monkeypatch.setattr(trainer.rows, "validation_loss", lambda *a: next(losses))
    result = trainer.run(quiet=True)
    assert result.stopped_early and not result.interrupted
    assert trainer.step == 40 and trainer.best_step == 20  # 3.5 and 3.0 do not beat 3.0


def test_the_validation_loss_is_a_fixed_number_for_fixed_weights():
    trainer = Trainer(data_cfg(val_fraction=0.3), data=rows_of())
    net = trainer.ema_model()
    first = trainer.rows.validation_loss(net, trainer.path, trainer.coupling)
    trainer.train_step()
    assert trainer.rows.validation_loss(net, trainer.path, trainer.coupling) == first
    v = net.forward(*trainer.rows._val[:2])
    assert first == pytest.approx(float(np.mean((v - trainer.rows._val[2]) ** 2)))


def test_resume_refuses_other_data(tmp_path):
    path = str(tmp_path / "m.npz")
    Trainer(data_cfg(steps=5), data=rows_of()).run(out=path, quiet=True)
    with pytest.raises(checkpoint.CheckpointError, match="other data"):
        Trainer.from_checkpoint(path, data=rows_of(seed=6))
    with pytest.raises(checkpoint.CheckpointError, match="data must be given"):
        Trainer.from_checkpoint(path)


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "data must be given"),
    (dict(data=rows_of(), labels=np.arange(199)), "labels"),
    (dict(data=rows_of(), labels=np.arange(200)), "conditional"),
    (dict(data=rows_of()[:, 0]), "reshape"),
])
def test_bad_data_arguments_get_one_line(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        Trainer(data_cfg(), **kwargs)
    assert "\n" not in str(info.value)


def test_data_needs_target_data():
    with pytest.raises(ValueError, match="target 'data'"):
        Trainer(tiny(), data=rows_of())


@pytest.mark.parametrize("overrides, what", [
    (dict(batch_size=100_000_000), "batches of 100000000 rows"),
    (dict(hidden=(100_000_000,)), "hidden layers 100000000"),
    (dict(batch_size=2_000_000, coupling="ot"), "batches of 2000000 rows"),
])
def test_runs_too_large_for_memory_fail_before_allocating(overrides, what):
    with pytest.raises(MemoryError, match=what) as info:
        Trainer(tiny(**overrides))
    assert "GiB" in str(info.value) and "\n" not in str(info.value)


def test_ema_model_is_a_copy_with_the_moving_average():
    trainer = Trainer(tiny(steps=3))
    for _ in range(3):
        trainer.train_step()
    net = trainer.ema_model()
    np.testing.assert_array_equal(net.params, trainer.ema.shadow)
    assert net.params is not trainer.ema.shadow and net.config() == trainer.model.config()


def test_images_get_one_pooled_map_and_the_unet_needs_images(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 1, 4, 4)).astype(np.float32)
    images[:, :, 0, :] = 0.0  # a constant border row: per-pixel scales would blow it up
    np.save(tmp_path / "i.npy", images)
    rows = data.load(tmp_path / "i.npy")
    trainer = Trainer(data_config(steps=1, batch_size=8, hidden=(8,), dequantize=True),
                      data=rows)
    transform = trainer.rows.transform
    assert np.all(transform.mean == transform.mean[0]) and np.all(transform.scale == transform.scale[0])
    np.testing.assert_allclose(transform.mean[0], images[trainer.rows.split.train].mean() + 0.5)
    with pytest.raises(ValueError, match="channels is an option of another network than arch 'mlp'"):
        data_config(channels=24)
    unet = data_config(arch="unet", channels=4, multipliers=(1, 2), groups=2, steps=1)
    assert unet.hidden == TrainConfig.hidden  # the MLP's data defaults stay out
    assert (unet.batch_size, unet.lr, unet.ema_decay) == (64, 2e-3, 0.995)  # the U-Net's in
    with pytest.raises(ValueError, match="arch 'unet' needs rows that are images"):
        Trainer(unet, data=rows.x)
    trainer = Trainer(unet, data=rows)
    assert networks.describe(trainer.model)["image_shape"] == [1, 4, 4]
