"""Tests for npflow.checkpoint: exact round trips, atomic writes, one-line errors, no pickle."""
import json
import os

import numpy as np
import pytest

from npflow import checkpoint, networks
from npflow.checkpoint import FORMAT_VERSION, Checkpoint, CheckpointError, load, load_model, save
from npflow.nn import MLP
from npflow.train import TrainConfig


def make_checkpoint(dtype=np.float32, seed=0, step=7):
    """A checkpoint with random content (not from training, so every field is distinct)."""
    rng = np.random.default_rng(seed)
    net = MLP(2, (16, 8), "silu", "sinusoidal", embed_dim=8, dtype=dtype, rng=rng)
    P = net.num_params
    state = np.random.default_rng(seed + 1).bit_generator.state
    return Checkpoint(
        model_config=networks.describe(net),
        train_config=TrainConfig(steps=20, hidden=(16, 8)).to_dict(),
        rng_state=json.loads(json.dumps(state)),
        params=net.params.copy(),
        ema_params=rng.standard_normal(P).astype(dtype),
        adam_m=rng.standard_normal(P).astype(dtype),
        adam_v=rng.random(P).astype(dtype),
        adam_step=step, step=step, losses=rng.random(step))


@pytest.fixture
def saved(tmp_path):
    path = str(tmp_path / "model.npz")
    save(path, make_checkpoint())
    return path


def arrays_of(path):
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def assert_one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- round trip ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_every_field_and_dtype(tmp_path, dtype):
    ckpt = make_checkpoint(dtype)
    path = str(tmp_path / "a.npz")
    save(path, ckpt)
    back = load(path)
    assert back.model_config == ckpt.model_config
    assert back.train_config == ckpt.train_config
    assert back.rng_state == ckpt.rng_state
    for name in ("params", "ema_params", "adam_m", "adam_v", "losses"):
        got, want = getattr(back, name), getattr(ckpt, name)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype, name
    assert back.params.dtype == dtype and back.losses.dtype == np.float64
    assert back.adam_step == ckpt.adam_step and back.step == ckpt.step
    assert type(back.adam_step) is int and type(back.step) is int
    # the stored generator state reproduces the same draws
    g1, g2 = np.random.default_rng(), np.random.default_rng(1)
    g1.bit_generator.state = back.rng_state
    np.testing.assert_array_equal(g1.random(5), g2.random(5))


def test_file_holds_exactly_the_documented_keys_without_objects(saved):
    arrays = arrays_of(saved)  # loads with allow_pickle=False: nothing is an object array
    assert set(arrays) == {"format_version", "meta", "params", "ema_params", "adam_m", "adam_v",
                           "adam_step", "step", "losses"}
    assert int(arrays["format_version"]) == FORMAT_VERSION
    meta = json.loads(str(arrays["meta"]))
    assert set(meta) == {"model", "train", "rng", "data"} and meta["data"] is None


def test_model_is_rebuilt_with_ema_or_raw_weights(saved):
    ckpt = make_checkpoint()
    x, t = np.random.default_rng(3).standard_normal((5, 2)), 0.25
    for ema, weights in ((True, ckpt.ema_params), (False, ckpt.params)):
        net = MLP(2, (16, 8), "silu", "sinusoidal", embed_dim=8, rng=np.random.default_rng(9))
        net.params[...] = weights
        np.testing.assert_array_equal(load_model(saved, ema=ema).forward(x, t), net.forward(x, t))
    np.testing.assert_array_equal(load(saved).model().params, ckpt.ema_params)


def test_save_overwrites_an_existing_checkpoint(saved):
    save(saved, make_checkpoint(seed=5, step=3))
    back = load(saved)
    assert back.step == 3
    np.testing.assert_array_equal(back.params, make_checkpoint(seed=5, step=3).params)
    assert os.listdir(os.path.dirname(saved)) == ["model.npz"]


# --- atomic writes ------------------------------------------------------------------------------

def _failing_savez(exc):
    def savez(file, **arrays):
        file.write(b"PK\x03\x04 half of a zip archive")
        file.flush()
        raise exc
    return savez


@pytest.mark.parametrize("exc", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_previous_checkpoint_intact(saved, monkeypatch, exc):
    before = open(saved, "rb").read()
    monkeypatch.setattr(np, "savez", _failing_savez(exc))
    with pytest.raises(type(exc)):
        save(saved, make_checkpoint(seed=1))
    monkeypatch.undo()
    assert open(saved, "rb").read() == before
    assert os.listdir(os.path.dirname(saved)) == ["model.npz"]  # no temporary file left
    assert load(saved).step == 7


def test_failure_of_the_final_rename_leaves_previous_checkpoint_intact(saved, monkeypatch):
    before = open(saved, "rb").read()

    def replace(src, dst):
        raise PermissionError("cannot rename")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError):
        save(saved, make_checkpoint(seed=1))
    monkeypatch.undo()
    assert open(saved, "rb").read() == before
    assert os.listdir(os.path.dirname(saved)) == ["model.npz"]


def test_failed_first_save_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _failing_savez(OSError("disk full")))
    with pytest.raises(OSError):
        save(str(tmp_path / "new.npz"), make_checkpoint())
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(OSError):
        save(str(tmp_path / "nope" / "m.npz"), make_checkpoint())
    assert os.listdir(tmp_path) == []


# --- every broken file gives a one-line CheckpointError ----------------------------------------

def write_variant(tmp_path, saved, name="bad.npz", drop=(), **changes):
    arrays = arrays_of(saved)
    for key in drop:
        del arrays[key]
    arrays.update(changes)
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def test_missing_file(tmp_path):
    message = assert_one_line_error(str(tmp_path / "none.npz"), "does not exist")
    assert "none.npz" in message


def test_a_folder_is_not_a_checkpoint(tmp_path):
    assert_one_line_error(str(tmp_path), "does not exist")


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"\x80\x04K\x01.",
                                     b"\x93NUMPY not really"])
def test_files_that_are_not_zip_archives(tmp_path, content):
    path = str(tmp_path / "x.npz")
    with open(path, "wb") as f:
        f.write(content)
    message = assert_one_line_error(path, "not a readable .npz")
    assert "x.npz" in message


def test_an_npy_file_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / "x.npy")
    np.save(path, np.zeros(3))
    assert_one_line_error(path, "not a readable .npz")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_zip(saved, fraction):
    data = open(saved, "rb").read()
    with open(saved, "wb") as f:
        f.write(data[:int(len(data) * fraction)])
    assert_one_line_error(saved, "not a readable .npz")


def test_damaged_member_of_a_zip(saved):
    data = bytearray(open(saved, "rb").read())
    start = data.index(b"params.npy") + 200  # inside the stored params array
    data[start:start + 50] = b"\xff" * 50
    with open(saved, "wb") as f:
        f.write(bytes(data))
    assert_one_line_error(saved, "npz|CRC|params")


class _Trap:
    """Unpickling this creates a marker file: a checkpoint must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_array_is_refused_and_never_unpickled(tmp_path, saved):
    marker = str(tmp_path / "pwned")
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    path = write_variant(tmp_path, saved, params=trap)
    message = assert_one_line_error(path, "pickled")
    assert "bad.npz" in message
    assert not os.path.exists(marker)


def test_plain_object_array_is_refused(tmp_path, saved):
    path = write_variant(tmp_path, saved, losses=np.array([{"a": 1}], dtype=object))
    assert_one_line_error(path, "pickled")


@pytest.mark.parametrize("key", ["format_version", "meta", "params", "ema_params", "adam_m",
                                 "adam_v", "adam_step", "step", "losses"])
def test_missing_key(tmp_path, saved, key):
    path = write_variant(tmp_path, saved, drop=(key,))
    message = assert_one_line_error(path, "missing")
    assert key in message


@pytest.mark.parametrize("key", ["params", "ema_params", "adam_m", "adam_v"])
def test_wrong_shape(tmp_path, saved, key):
    arr = arrays_of(saved)[key]
    for bad in (arr[:-1], arr.reshape(1, -1), arr[:0]):
        path = write_variant(tmp_path, saved, **{key: bad})
        message = assert_one_line_error(path, "shape")
        assert key in message


def test_wrong_dtype_of_weights(tmp_path, saved):
    arr = arrays_of(saved)["params"]
    path = write_variant(tmp_path, saved, params=np.array(["w"] * arr.size))
    assert_one_line_error(path, "params")


def test_losses_must_have_one_entry_per_step(tmp_path, saved):
    path = write_variant(tmp_path, saved, losses=np.zeros(3))
    assert_one_line_error(path, "losses")
    path = write_variant(tmp_path, saved, losses=np.zeros((7, 1)))
    assert_one_line_error(path, "losses")


@pytest.mark.parametrize("key", ["format_version", "adam_step", "step"])
@pytest.mark.parametrize("bad", [np.array([1, 1]), np.array("abc"), np.array(1.5)])
def test_scalar_fields_must_be_single_integers(tmp_path, saved, key, bad):
    path = write_variant(tmp_path, saved, **{key: bad})
    assert_one_line_error(path, key)


def test_unknown_format_version(tmp_path, saved):
    path = write_variant(tmp_path, saved, format_version=np.int64(FORMAT_VERSION + 98))
    message = assert_one_line_error(path, "version")
    assert str(FORMAT_VERSION + 98) in message


@pytest.mark.parametrize("meta", [
    "{not json",                                                     # corrupt JSON
    "[1, 2]",                                                        # not an object
    json.dumps({"train": {}, "rng": {}}),                            # no model
    json.dumps({"model": {"dim": 2, "hidden": [16, 8], "activation": "bogus"},
                "train": {}, "rng": {}}),                            # invalid model config
    json.dumps({"model": {"dim": 2, "width": 3}, "train": {}, "rng": {}}),  # unknown key
])
def test_invalid_meta(tmp_path, saved, meta):
    path = write_variant(tmp_path, saved, meta=np.array(meta))
    assert_one_line_error(path, "model description")


def test_model_description_of_another_size(tmp_path, saved):
    meta = json.loads(str(arrays_of(saved)["meta"]))
    meta["model"]["hidden"] = [32, 8]
    path = write_variant(tmp_path, saved, meta=np.array(json.dumps(meta)))
    assert_one_line_error(path, "shape")


@pytest.mark.parametrize("key", ["params", "ema_params"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path, saved, key, value):
    arr = arrays_of(saved)[key].copy()
    arr[3] = value
    path = write_variant(tmp_path, saved, **{key: arr})
    message = assert_one_line_error(path, "NaN or infinite")
    assert key in message


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
    assert checkpoint.CheckpointError is CheckpointError


# --- sizes, steps, versions, files ------------------------------------------------------------

def test_a_description_of_a_huge_network_is_refused_before_allocating(tmp_path, saved):
    meta = json.loads(str(arrays_of(saved)["meta"]))
    meta["model"]["hidden"] = [200_000, 200_000, 200_000]  # 8e10 weights: ~300 GiB of float32
    path = write_variant(tmp_path, saved, meta=np.array(json.dumps(meta)))
    message = assert_one_line_error(path, "needs floats of shape")
    assert str(2 * 200_000 ** 2 + 16 * 200_000 + 2) in message  # in, time, 2 hidden, out


def test_optimizer_step_count_must_equal_the_step(tmp_path, saved):
    path = write_variant(tmp_path, saved, adam_step=np.int64(8))
    message = assert_one_line_error(path, "middle of a step")
    assert "8" in message and "7" in message


def test_save_refuses_a_checkpoint_whose_steps_disagree(tmp_path):
    ckpt = make_checkpoint()
    bad = Checkpoint(**{**ckpt.__dict__, "adam_step": ckpt.step + 1})
    with pytest.raises(ValueError, match="adam_step"):
        save(str(tmp_path / "m.npz"), bad)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("version", [1, 2])
def test_files_before_the_arch_key_load_as_mlps(tmp_path, saved, version):
    meta = json.loads(str(arrays_of(saved)["meta"]))
    del meta["model"]["arch"]
    path = write_variant(tmp_path, saved, format_version=np.int64(version),
                         meta=np.array(json.dumps(meta)))
    ckpt = load(path)
    assert ckpt.model_config["arch"] == "mlp" and isinstance(ckpt.model(), MLP)
    np.testing.assert_array_equal(ckpt.model().params, arrays_of(saved)["ema_params"])


def test_an_unknown_architecture_is_one_line(tmp_path, saved):
    meta = json.loads(str(arrays_of(saved)["meta"]))
    meta["model"]["arch"] = "transformer"
    path = write_variant(tmp_path, saved, meta=np.array(json.dumps(meta)))
    assert_one_line_error(path, "arch must be one of mlp.*got 'transformer'")


def test_format_1_files_still_load(tmp_path, saved):
    meta = json.loads(str(arrays_of(saved)["meta"]))
    del meta["data"]
    path = write_variant(tmp_path, saved, format_version=np.int64(1),
                         meta=np.array(json.dumps(meta)))
    ckpt = load(path)
    assert ckpt.data is None and ckpt.step == 7
    np.testing.assert_array_equal(ckpt.model().params, arrays_of(saved)["ema_params"])


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_checkpoints_get_the_usual_mode_under_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        save(str(tmp_path / "m.npz"), make_checkpoint())
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o666 & ~umask


def test_save_removes_temporaries_of_dead_processes_only(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".npflow-{dead}-abc123.tmp"
    live = tmp_path / f".npflow-{os.getpid()}-def456.tmp"  # a save in progress in this process
    other = tmp_path / "notes.tmp"
    for f in (stale, live, other):
        f.write_bytes(b"partial")
    save(str(tmp_path / "m.npz"), make_checkpoint())
    assert not stale.exists() and live.exists() and other.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "m.npz"])


def test_a_save_killed_mid_write_leaves_nothing_behind_after_the_next_save(tmp_path):
    import signal
    import subprocess
    import sys
    script = (f"import numpy as np, sys; sys.path.insert(0, {os.getcwd()!r})\n"
              "from npflow import checkpoint\n"
              "import npflow.checkpoint as c\n"
              "orig = np.savez\n"
              "def slow(f, **a):\n"
              "    f.write(b'x' * 100); f.flush(); print('writing', flush=True)\n"
              "    import time; time.sleep(60)\n"
              "c.np.savez = slow\n"
              f"from tests.test_checkpoint import make_checkpoint\n"
              f"checkpoint.save({str(tmp_path / 'm.npz')!r}, make_checkpoint())\n")
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                cwd=os.getcwd())
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # each new save removed the leftovers of the killed one before it: only the last remains
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".tmp")]) == 1
    save(str(tmp_path / "m.npz"), make_checkpoint())
    assert os.listdir(tmp_path) == ["m.npz"]
