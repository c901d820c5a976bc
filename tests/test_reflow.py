"""Tests for npflow.reflow and metrics.straightness: pairs are the flow's exact image of x0,
training on fixed pairs, warm starts, refusal to resume, and straightness against closed forms
(0 for constant velocities, |a|^2 / 12 for constant acceleration)."""
import numpy as np
import pytest

from npflow import checkpoint, metrics, sampling
from npflow.nn import MLP
from npflow.reflow import reflow_pairs, reflow_trainer
from npflow.paths import LinearPath
from npflow.train import TrainConfig, Trainer, sample_t

C = np.array([1.5, -1.0])


class Field:
    """v(x, t) = c + a t: x(t) = x0 + c t + a t^2 / 2, chord c + a / 2."""

    dtype = np.float64

    def __init__(self, c, a=(0.0, 0.0)):
        self.c, self.a = np.asarray(c, float), np.asarray(a, float)

    def __call__(self, x, t):
        return np.broadcast_to(self.c + self.a * t, np.shape(x)).copy()


def tiny(**overrides):
    base = dict(target="moons", steps=10, batch_size=32, hidden=(16,), warmup_steps=0, lr=1e-2)
    return TrainConfig(**{**base, **overrides})


def test_pairs_are_the_flow_image_of_x0_and_deterministic():
    x0 = np.random.default_rng(0).standard_normal((20, 2))
    a, b = reflow_pairs(Field(C, (0.4, 2.0)), x0, "rk4", 10)
    np.testing.assert_array_equal(a, x0)
    np.testing.assert_allclose(b, x0 + C + np.array([0.4, 2.0]) / 2, rtol=0, atol=1e-12)
    net = MLP(2, (8,), rng=np.random.default_rng(1))
    first, second = reflow_pairs(net, x0), reflow_pairs(net, x0)
    np.testing.assert_array_equal(first[1], second[1])
    with pytest.raises(ValueError, match=r"method must be a fixed-step solver"):
        reflow_pairs(net, x0, "dopri5")


def test_straight_constant_speed_paths_have_straightness_zero():
    field = Field(C)
    x0 = np.random.default_rng(2).standard_normal((30, 2))
    sol = sampling.sample_flow(field, x0, "euler", 7, return_trajectory=True)
    assert metrics.straightness(field, sol.trajectory, sol.times) == pytest.approx(0, abs=1e-24)


def test_straightness_of_constant_acceleration_is_a_squared_over_12():
    """v - chord = a (t - 1/2), so S = |a|^2 int_0^1 (t - 1/2)^2 dt = |a|^2 / 12."""
    a = np.array([0.6, -1.2])
    field = Field(C, a)
    x0 = np.random.default_rng(3).standard_normal((10, 2))
    sol = sampling.sample_flow(field, x0, "rk4", 400, return_trajectory=True)
    expected = a @ a / 12
    # The trapezoid rule with step h overestimates int_0^1 f by h^2 f'' / 12 = h^2 / 6 here.
    assert metrics.straightness(field, sol.trajectory, sol.times) == pytest.approx(
        a @ a * (1 / 12 + 1 / (6 * 400 ** 2)), rel=1e-9)
    assert metrics.straightness(field, sol.trajectory, sol.times) == pytest.approx(expected,
                                                                                  rel=1e-4)


def test_straightness_rejects_bad_grids():
    traj = np.zeros((3, 4, 2))
    with pytest.raises(ValueError, match=r"trajectory must have shape"):
        metrics.straightness(Field(C), np.zeros((1, 4, 2)), [0.0])
    with pytest.raises(ValueError, match=r"times must be 3 increasing values"):
        metrics.straightness(Field(C), traj, [0.0, 0.5])
    with pytest.raises(ValueError, match=r"times must be 3 increasing values"):
        metrics.straightness(Field(C), traj, [0.0, 0.5, 0.5])


def test_training_on_pairs_uses_only_those_pairs():
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((50, 2))
    trainer = Trainer(tiny(reflow=1, time_sampling="uniform"), pairs=(x0, x0 + C))
    batch = trainer.draw_batch()
    np.testing.assert_allclose(batch.ut, np.broadcast_to(C, batch.ut.shape), atol=1e-6)
    start = batch.xt - batch.t * batch.ut  # recovers x0 of each drawn pair
    assert np.all(np.min(np.abs(start[:, None, :] - x0[None]).sum(axis=2), axis=1) < 1e-5)
    trainer.run(quiet=True)
    assert len(trainer.losses) == 10 and trainer.losses[-1] < trainer.losses[0]


def test_reflow_trainer_warm_starts_from_the_parent(tmp_path):
    parent = Trainer(tiny())
    parent.run(quiet=True)
    pairs = reflow_pairs(parent.model, np.random.default_rng(5).standard_normal((40, 2)), steps=5)
    child = reflow_trainer(parent.model, parent.config, pairs, steps=4, lr=1e-3)
    assert child.config.reflow == 1 and child.config.steps == 4 and child.config.lr == 1e-3
    np.testing.assert_array_equal(child.model.params, parent.model.params)
    np.testing.assert_array_equal(child.ema.shadow, parent.model.params)
    grandchild = reflow_trainer(child.model, child.config, pairs)
    assert grandchild.config.reflow == 2
    with pytest.raises(ValueError, match=r"model must have the architecture"):
        reflow_trainer(parent.model, parent.config, pairs, hidden=(8,))


def test_a_reflow_checkpoint_refuses_to_resume(tmp_path):
    path = str(tmp_path / "r.npz")
    x0 = np.random.default_rng(6).standard_normal((40, 2))
    trainer = Trainer(tiny(reflow=1), pairs=(x0, x0 + C))
    trainer.run(out=path, quiet=True)
    loaded = checkpoint.load_model(path)  # it samples like any model: the EMA weights, exactly
    np.testing.assert_array_equal(loaded.params, trainer.ema.shadow)
    np.testing.assert_array_equal(loaded(x0, 0.5), trainer.ema_model()(x0, 0.5))
    with pytest.raises(checkpoint.CheckpointError, match=r"reflow run, which cannot be resumed"):
        Trainer.from_checkpoint(path)


def test_pairs_must_go_with_reflow():
    x0 = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"pairs must be None when config.reflow is 0"):
        Trainer(tiny(), pairs=(x0, x0))
    with pytest.raises(ValueError, match=r"pairs must be given when reflow > 0"):
        Trainer(tiny(reflow=1))
    with pytest.raises(ValueError, match=r"pairs\[1\] must have shape \(5, 2\)"):
        Trainer(tiny(reflow=1), pairs=(x0, np.zeros((4, 2))))
    with pytest.raises(ValueError, match=r"pairs\[1\] must have shape \(n, 3\)"):
        Trainer(tiny(reflow=1), pairs=(np.zeros((5, 3)), x0))
    with pytest.raises(TypeError, match=r"pairs must be a pair"):
        Trainer(tiny(reflow=1), pairs=(x0,))
    with pytest.raises(ValueError, match=r"config must be unconditional"):
        reflow_trainer(None, tiny(conditional=True), (x0, x0))


@pytest.mark.parametrize("parent", [dict(path="lipman", sigma=0.1), dict(path="icfm", sigma=0.3),
                                    dict(path="vp", coupling="ot")])
def test_reflow_trains_on_straight_lines_whatever_the_parent_path(parent):
    """Liu et al. 2023, Alg. 1: xt = (1 - t) x0 + t x1 and ut = x1 - x0 on the fixed pairs."""
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((50, 2))
    pairs = (x0, x0 + C + 0.1 * rng.standard_normal((50, 2)))
    config = tiny(**parent)
    trainer = reflow_trainer(MLP(2, (16,), "relu", rng=rng), config, pairs)
    assert trainer.config.path == "linear" and isinstance(trainer.path, LinearPath)
    replay = np.random.default_rng()
    replay.bit_generator.state = trainer.rng.bit_generator.state
    batch = trainer.draw_batch()
    idx = replay.integers(0, 50, size=config.batch_size)  # the draws of draw_batch, replayed
    t = sample_t(replay, config.batch_size, config.time_sampling)[:, None]
    a, b = pairs[0][idx], pairs[1][idx]
    np.testing.assert_allclose(batch.ut, b - a, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch.xt, (1 - t) * a + t * b, rtol=1e-6, atol=1e-6)
