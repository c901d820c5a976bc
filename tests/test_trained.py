"""Tests for npflow.trained: a checkpoint's flow used in data units, for every kind of run."""
import dataclasses

import numpy as np
import pytest

from npflow import checkpoint, likelihood
from npflow.train import TrainConfig, Trainer, data_config
from npflow.trained import LIKELIHOOD_STEPS, TrainedFlow

ROWS = np.random.default_rng(0).standard_normal((300, 3)) * [1.0, 10.0, 0.1] + [5.0, -50.0, 2.0]


def tiny_rows_run(**options):
    config = data_config(steps=30, batch_size=32, hidden=(16, 16), warmup_steps=0,
                         eval_every=10, **options)
    trainer = Trainer(config, data=ROWS)
    trainer.run(quiet=True)
    return trainer.to_checkpoint()


@pytest.fixture(scope="module")
def rows_ckpt():
    return tiny_rows_run()


@pytest.fixture(scope="module")
def moons_ckpt():
    trainer = Trainer(TrainConfig(target="moons", steps=20, batch_size=64, hidden=(16,),
                                  warmup_steps=0))
    trainer.run(quiet=True)
    return trainer.to_checkpoint()


def zero_field(ckpt):
    """The checkpoint with every weight 0: v(x, t) = 0, so the flow is the identity."""
    zeros = np.zeros_like(ckpt.params)
    data = None if ckpt.data is None else dataclasses.replace(ckpt.data, best_params=zeros)
    return dataclasses.replace(ckpt, params=zeros, ema_params=zeros, data=data)


def test_a_zero_field_gives_the_closed_form_density_of_the_standardized_rows(rows_ckpt):
    """log p(x) = sum_j log N((x_j - m_j) / s_j; 0, 1) - sum_j log s_j when v = 0."""
    flow = TrainedFlow(zero_field(rows_ckpt))
    x = ROWS[:7]
    z = (x - flow.transform.mean) / flow.transform.scale
    expected = likelihood.standard_normal_log_density(z) - np.sum(np.log(flow.transform.scale))
    log_p, _ = flow.log_prob(x)
    np.testing.assert_allclose(log_p, expected, rtol=1e-5)
    np.testing.assert_allclose(flow.encode(x), z, rtol=1e-5, atol=1e-5)


def test_rows_come_back_in_data_units(rows_ckpt):
    flow = TrainedFlow(rows_ckpt)
    assert flow.on_rows and flow.dim == 3 and not flow.source_is_data and flow.has_density
    drawn = flow.sample(2000, np.random.default_rng(1), steps=20)
    assert drawn.shape == (2000, 3)
    assert np.all(np.abs(drawn.mean(axis=0) - ROWS.mean(axis=0)) < ROWS.std(axis=0))
    z = flow.encode(ROWS[:20], steps=20)
    back = (flow.decode(z, steps=20) - ROWS[:20]) / ROWS.std(axis=0)  # (20, 3) in units of std
    assert np.max(np.abs(back)) < 1e-3


def test_chunks_give_the_rows_one_chunk_gives(moons_ckpt):
    flow = TrainedFlow(moons_ckpt)
    whole = flow.sample(50, np.random.default_rng(3), steps=8)
    parts = [rows for rows, _ in flow.sample_chunks(50, np.random.default_rng(3), chunk_size=7,
                                                    steps=8)]
    assert [len(p) for p in parts] == [7] * 7 + [1]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6, atol=1e-6)


def test_arguments_are_checked_before_any_work(moons_ckpt, rows_ckpt):
    flow = TrainedFlow(moons_ckpt)
    with pytest.raises(ValueError, match="label needs a class-conditional model"):
        flow.sample_chunks(5, np.random.default_rng(0), label=1)  # no next(): checked at once
    with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
        flow.sample_chunks(5, np.random.default_rng(0), guidance=2.0)
    with pytest.raises(ValueError, match="source_rows applies to a data-to-data model only"):
        flow.sample_chunks(source_rows=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="steps must be None for method 'dopri5'"):
        flow.sample_chunks(5, np.random.default_rng(0), method="dopri5", steps=4)
    with pytest.raises(ValueError, match="return_trajectory holds every step"):
        flow.sample_chunks(50, np.random.default_rng(0), chunk_size=10, return_trajectory=True)
    with pytest.raises(ValueError, match="n_probes goes with Hutchinson"):
        flow.log_prob(np.zeros((2, 2)), divergence="exact", n_probes=3)
    with pytest.raises(ValueError, match="x has 3 columns, but the model was trained in d = 2"):
        flow.log_prob(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="held_out scores a model trained on rows"):
        flow.evaluate(10, held_out=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="score it on held-out rows"):
        TrainedFlow(rows_ckpt).evaluate(10)


def test_evaluate_gives_every_metric_beside_its_floor(moons_ckpt, rows_ckpt):
    result = TrainedFlow(moons_ckpt).evaluate(200, np.random.default_rng(0), steps=4)
    for name in ("w2", "mmd", "energy"):
        assert np.isfinite(result[name]) and np.isfinite(result[f"{name}_floor"])
    assert np.isfinite(result["nll"]) and result["precision"] is None and result["n"] == 200
    rows = TrainedFlow(rows_ckpt).evaluate(500, np.random.default_rng(0), held_out=ROWS[:100])
    assert rows["n"] == 50 and rows["nll_rows"] == 100 and "bits_per_dim" not in rows
    assert rows["nfe"] == 4 * LIKELIHOOD_STEPS  # rk4, the likelihood's default steps


def test_a_dequantized_flow_reports_bits_per_dim():
    ckpt = tiny_rows_run(dequantize=True)
    result = TrainedFlow(ckpt).evaluate(50, np.random.default_rng(0), held_out=np.floor(ROWS))
    assert result["bits_per_dim"] == pytest.approx(result["nll"] / (3 * np.log(2)))


def test_reflow_of_a_flow_of_rows_keeps_its_transform(rows_ckpt):
    trainer = TrainedFlow(rows_ckpt).reflow_trainer(n_pairs=100, steps=5, seed=2,
                                                    sample_steps=4)
    trainer.run(quiet=True)
    child = trainer.to_checkpoint()
    assert child.train_config["reflow"] == 1 and child.train_config["path"] == "linear"
    assert child.data.transform == rows_ckpt.data.transform
    np.testing.assert_array_equal(child.data.best_params, child.ema_params)
    assert TrainedFlow(child).sample(10, np.random.default_rng(0), steps=4).shape == (10, 3)


def test_last_weights_are_refused_where_they_are_the_only_ones(moons_ckpt):
    with pytest.raises(ValueError, match="best picks between the best and the last weights of a "
                                         "model trained on rows"):
        TrainedFlow(moons_ckpt, best=False)


def test_load_reads_a_checkpoint_file(tmp_path, rows_ckpt):
    path = tmp_path / "m.npz"
    checkpoint.save(path, rows_ckpt)
    flow = TrainedFlow.load(path, best=False)
    np.testing.assert_array_equal(flow.model.params, rows_ckpt.ema_params)
    assert flow.describe() == "rows (d = 3)"
