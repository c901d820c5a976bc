"""Smoke test of demos/experiments/gmm_torch_reference.py (skipped without torch): the copied
npflow model gives the torch net's velocity, the batches are epochs without replacement, the rows
are gmm_benchmark's, and ``--quick`` writes a JSON with a finite KL."""
import json

import numpy as np
import pytest

from _helpers import load_demo

torch = pytest.importorskip("torch")

@pytest.fixture(scope="module")
def ref():
    return load_demo("experiments/gmm_torch_reference")  # it imports benchmark and gmm_benchmark


def test_npflow_copy_gives_the_torch_velocity(ref):
    d, hidden = 3, (16, 8, 16)
    net = ref.torch_net(d, hidden, seed=1)
    model = ref.npflow_copy(net, d, hidden)
    rng = np.random.default_rng(2)
    x = (2 * rng.standard_normal((64, d))).astype(np.float32)
    t = rng.random(64).astype(np.float32)
    with torch.no_grad():
        v_torch = net(torch.from_numpy(x), torch.from_numpy(t)).numpy()
    v = model.forward(x, t)
    assert np.abs(v).max() > 1e-2  # a non-trivial field
    np.testing.assert_allclose(v, v_torch, rtol=1e-5, atol=1e-6 * np.abs(v_torch).max())


def test_torch_init_is_seeded_and_not_npflows(ref):
    a = ref.torch_net(3, (8, 8, 8), seed=1).state_dict()
    b = ref.torch_net(3, (8, 8, 8), seed=1).state_dict()
    c = ref.torch_net(3, (8, 8, 8), seed=2).state_dict()
    layout = ref.npflow_layout(3, (8, 8, 8)).torch_state()
    for name in a:
        assert torch.equal(a[name], b[name]), name
        assert not torch.equal(a[name], c[name]), name
        assert not np.allclose(a[name].numpy(), layout[name]), name


def test_epoch_batches_cover_the_rows_once_per_epoch(ref):
    batches = ref.epoch_batches(10, 3, torch.Generator().manual_seed(0))
    for _ in range(2):  # two epochs of 3 batches; the last partial batch is skipped
        epoch = torch.cat([next(batches) for _ in range(3)]).numpy()
        assert len(np.unique(epoch)) == 9 and epoch.min() >= 0 and epoch.max() < 10


def test_rows_are_gmm_benchmarks(ref):
    gb = ref.gmm_benchmark
    gmm, train_rows, heldout_rows = ref.benchmark_rows(2, seed=3)
    truth = gb.make_gmm(2, np.random.default_rng([gb.GMM_SEED, 2]))
    rng = np.random.default_rng([3, 2])  # run_dim's stream: the training rows, then held-out
    np.testing.assert_array_equal(gmm.means, truth.means)
    np.testing.assert_array_equal(train_rows, gb.sample_gmm(truth, 20000, rng))
    np.testing.assert_array_equal(heldout_rows, gb.sample_gmm(truth, 10000, rng))


def test_quick_run_writes_a_finite_kl(ref, tmp_path):
    out = tmp_path / "ref.json"
    ref.main(["--quick", "--d", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert {"d", "kl_paired", "kl_paired_stderr", "n_eval", "train_wall_seconds",
            "train_cpu_seconds", "agreement", "options"} <= set(result)
    assert result["d"] == 2 and result["n_eval"] == ref.QUICK["n_eval"]
    assert np.isfinite(result["kl_paired"]) and result["kl_paired_stderr"] > 0
    assert result["agreement"] <= 1e-4
    assert result["options"]["steps"] == ref.QUICK["steps"] and result["options"]["quick"]
    assert result["train_cpu_seconds"] > 0


def test_invalid_options_are_refused(ref):
    for argv in (["--n-eval", "1"], ["--hidden", "a,b"], ["--batch-size", "0"], ["--lr", "0"]):
        with pytest.raises(SystemExit):
            ref.parse_args(argv)
