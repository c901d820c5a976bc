"""The PyTorch reference of demos/experiments/benchmark.py on the digits network (skipped
without torch).

torch is never a requirement of npflow: these tests run only where it is installed. They check
that the reference computes what npflow computes before anything is timed: the same velocity
from the same weights (with the class-label table), and batches made of the same training rows,
dequantized and standardized as npflow's ``RowBatches`` makes them.
"""
import dataclasses

import numpy as np
import pytest

from _helpers import load_demo
from npflow.train import Trainer

torch = pytest.importorskip("torch")

@pytest.fixture(scope="module")
def benchmark():
    return load_demo("experiments/benchmark")


@pytest.fixture(scope="module")
def digits(benchmark):
    speed = benchmark.speed  # the measurements module the script imported
    return speed.digits_trainer(speed.DigitsNet.quick(), seed=0)


def test_torch_net_with_labels_agrees_with_npflow(benchmark, digits):
    trainer, _ = digits
    model = trainer.model
    net = benchmark.TorchMLP(model)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 64)).astype(np.float32)
    t = rng.random(50).astype(np.float32)
    y = rng.integers(0, 11, 50)  # 10 = the null label
    with torch.no_grad():
        v = net(torch.from_numpy(x), torch.from_numpy(t), torch.from_numpy(y)).numpy()
        v_null = net(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(v, model.forward(x, t, y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v_null, model.forward(x, t), rtol=1e-5, atol=1e-5)
    assert np.abs(v - v_null).max() > 1e-3  # the labels do change the field
    assert benchmark.agreement(net, model) < benchmark.AGREEMENT


def _pixels(trainer, x1):
    """Network-space rows (n, 64) back in data units with the trainer's transform."""
    transform = trainer.rows.transform
    return x1.numpy().astype(np.float64) * transform.scale + transform.mean


def test_torch_row_batches_read_each_training_row_once_per_epoch(benchmark, digits):
    trainer, _ = digits
    config = dataclasses.replace(trainer.config, dequantize=False)
    rows = trainer.rows
    plain = Trainer(config, data=rows.x, labels=rows.y)  # the same rows, not dequantized
    n = 64
    draw = benchmark.torch_row_batches(plain, torch.Generator().manual_seed(0))
    train_x, train_y = plain.rows.x[plain.rows.split.train], plain.rows.y[plain.rows.split.train]
    seen, dropped = [], 0
    for _ in range(len(train_x) // n):
        x0, x1, y = draw(n)
        assert x0.shape == x1.shape == (n, 64) and y.shape == (n,)
        pixels = _pixels(plain, x1)
        np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)  # integer pixels
        # Each batch row is a training row; a duplicated image may match several.
        match = np.all(np.round(pixels)[:, None, :] == train_x[None, :, :], axis=2)  # (n, N)
        assert np.all(match.any(axis=1))
        found = [int(np.flatnonzero(m)[0]) for m in match]
        kept = y.numpy() != plain.n_classes
        np.testing.assert_array_equal(y.numpy()[kept], train_y[found][kept])
        dropped += int(np.sum(~kept))
        seen.extend(np.round(pixels).tolist())
    distinct_rows = len({tuple(row) for row in train_x.tolist()})
    assert len({tuple(row) for row in seen}) >= len(seen) - (len(train_x) - distinct_rows)
    share = dropped / len(seen)
    assert abs(share - config.label_dropout) < 0.05  # ~1,400 draws, sd ~0.008


def test_torch_row_batches_dequantize_with_uniform_noise(benchmark, digits):
    trainer, _ = digits
    rows = trainer.rows
    plain = Trainer(dataclasses.replace(trainer.config, dequantize=False), data=rows.x,
                    labels=rows.y)
    # Same seed: the first epoch's order, hence the first batch's rows, are the same.
    _, x1, _ = benchmark.torch_row_batches(trainer, torch.Generator().manual_seed(0))(64)
    _, r1, _ = benchmark.torch_row_batches(plain, torch.Generator().manual_seed(0))(64)
    u = _pixels(trainer, x1) - np.round(_pixels(plain, r1))  # (64, 64) the added noise
    assert u.min() > -1e-4 and u.max() < 1 + 1e-4
    assert abs(u.mean() - 0.5) < 0.03 and abs(u.var() - 1 / 12) < 0.01  # U[0, 1): 1/2, 1/12


def test_torch_trainer_trains_the_digits_network(benchmark, digits):
    trainer, _ = digits
    run, deviation = benchmark.torch_trainer(trainer)
    assert deviation < benchmark.AGREEMENT
    run(3)  # three finite steps with clipping and the schedule's rates
