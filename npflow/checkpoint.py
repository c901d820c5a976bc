"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

A checkpoint holds everything needed to sample from a model *and* to resume its training
bit for bit:

==================  ==============================================================
key                 content
==================  ==============================================================
``format_version``  int, :data:`FORMAT_VERSION`
``meta``            JSON text: ``{"model": network description (its ``"arch"`` and
                    options, :func:`npflow.networks.describe`), "train": TrainConfig, "rng": bit-generator
                    state, "data": DataState description or null}``
``params``          (P,) network weights
``ema_params``      (P,) exponential moving average of the weights
``adam_m``          (P,) Adam first moment
``adam_v``          (P,) Adam second moment
``adam_step``       int, Adam's step counter k (always equal to ``step``)
``step``            int, training steps done
``losses``          (step,) training loss history
``best_params``     (P,) format 2, runs on a finite dataset: the EMA weights of the lowest
                    validation loss
``val_losses``      (k, 2) format 2, finite dataset: rows ``(step, validation loss)``
``val_index``       (n_val,) format 2, finite dataset: the rows held out for validation
==================  ==============================================================

Format 1 (before finite datasets) has no ``data`` in its meta and none of the last three
arrays; formats 1 and 2 describe an MLP without naming its ``"arch"``. Both still load.

Writes go to a temporary file ``.npflow-<pid>-*.tmp`` in the same folder, are flushed to disk,
then ``os.replace`` d over the target, and the folder itself is synced so the rename survives a
power cut: a crash mid-save leaves the previous checkpoint intact. The new file gets the usual
mode of a new file under the user's umask (``0666 & ~umask``), and a save removes the temporary
files that earlier saves, killed mid-write, left behind (those of processes no longer running).
Reads use ``np.load(allow_pickle=False)``, so a file can never execute code, and every problem
(missing file, not a zip, a pickled object, a missing key, a wrong shape, an unknown version, a
network too large for the arrays it claims, an optimizer step count that disagrees with the step)
raises :class:`CheckpointError` with a one-line message. Array sizes are checked against the
model description *before* anything is allocated.
"""
import glob
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from . import _checks
from . import networks

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
_ARRAY_KEYS = ("params", "ema_params", "adam_m", "adam_v")
_SCALAR_KEYS = ("format_version", "adam_step", "step")
_KEYS = _ARRAY_KEYS + _SCALAR_KEYS + ("meta", "losses")
_DATA_KEYS = ("best_params", "val_losses", "val_index")
_TMP_PREFIX = ".npflow-"
_TMP_SUFFIX = ".tmp"
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a valid npflow checkpoint."""


@dataclass(frozen=True)
class DataState:
    """What a run on a finite dataset adds to its checkpoint (format 2).

    Attributes
    ----------
    info : dict
        ``{"n": rows, "dim": d, "fingerprint": text, "files": where the rows came from or None}``.
    transform : dict
        The target's :class:`~npflow.transforms.Standardize`, as ``to_dict()``.
    source_transform : dict or None
        The same for a source dataset (data-to-data flows).
    sampler, source_sampler : dict or None
        :meth:`~npflow.data.EpochSampler.state` of the minibatch samplers.
    val_index : (n_val,) int64 ndarray
        Rows held out for validation.
    val_losses : (k, 2) float64 ndarray
        ``(step, validation loss)`` of every evaluation so far.
    best_params : (P,) ndarray
        EMA weights at the lowest validation loss (the last EMA weights when nothing is held out).
    best_step : int
        Step of ``best_params``.
    """

    info: dict
    transform: dict
    source_transform: dict
    sampler: dict
    source_sampler: dict
    val_index: np.ndarray
    val_losses: np.ndarray
    best_params: np.ndarray
    best_step: int

    def meta(self):
        """The JSON part (everything but the arrays)."""
        return {"info": self.info, "transform": self.transform,
                "source_transform": self.source_transform, "sampler": self.sampler,
                "source_sampler": self.source_sampler, "best_step": self.best_step}


@dataclass(frozen=True)
class Checkpoint:
    """The content of a checkpoint file (see the module docstring for each field)."""

    model_config: dict
    train_config: dict
    rng_state: dict
    params: np.ndarray
    ema_params: np.ndarray
    adam_m: np.ndarray
    adam_v: np.ndarray
    adam_step: int
    step: int
    losses: np.ndarray
    data: DataState = None

    def model(self, ema=True, best=True):
        """Rebuild the network (:func:`npflow.networks.build`) with the chosen weights.

        ``ema=False``: the raw weights of the last step. ``ema=True`` (default): the moving
        average; for a run on a finite dataset, the moving average at the lowest validation
        loss unless ``best=False`` (then the last one).
        """
        net = networks.build(self.model_config, np.random.default_rng(0))
        if not ema:
            net.params[...] = self.params
        elif best and self.data is not None:
            net.params[...] = self.data.best_params
        else:
            net.params[...] = self.ema_params
        return net


def save(path, ckpt):
    """Write ``ckpt`` (a :class:`Checkpoint`) to ``path`` atomically (see the module docstring)."""
    if ckpt.adam_step != ckpt.step:
        raise ValueError(f"ckpt.adam_step ({ckpt.adam_step}) must equal ckpt.step ({ckpt.step}): "
                         "the optimizer and the run disagree on how many steps were taken")
    meta = {"model": ckpt.model_config, "train": ckpt.train_config, "rng": ckpt.rng_state,
            "data": None if ckpt.data is None else ckpt.data.meta()}
    arrays = {
        "format_version": np.int64(FORMAT_VERSION),
        "meta": np.array(json.dumps(meta)),
        "params": ckpt.params, "ema_params": ckpt.ema_params,
        "adam_m": ckpt.adam_m, "adam_v": ckpt.adam_v,
        "adam_step": np.int64(ckpt.adam_step), "step": np.int64(ckpt.step),
        "losses": np.asarray(ckpt.losses, dtype=np.float64),
    }
    if ckpt.data is not None:
        arrays.update(best_params=ckpt.data.best_params,
                      val_losses=np.asarray(ckpt.data.val_losses, dtype=np.float64).reshape(-1, 2),
                      val_index=np.asarray(ckpt.data.val_index, dtype=np.int64))
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=_TMP_SUFFIX,
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp made it 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _sync_folder(folder)


def _umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_folder(folder):
    """fsync the folder so that the rename itself is on disk (POSIX; skipped where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(folder):
    """Delete ``.npflow-<pid>-*.tmp`` files whose writing process is no longer running."""
    for tmp in glob.glob(os.path.join(glob.escape(folder), f"{_TMP_PREFIX}*{_TMP_SUFFIX}")):
        pid = os.path.basename(tmp)[len(_TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def load(path):
    """Read and validate a checkpoint; return a :class:`Checkpoint`.

    Raises
    ------
    CheckpointError
        With a one-line message saying what is wrong with which file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"model file {path!r} does not exist")
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle any other file
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = _read_members(path, data)
    except ValueError as err:  # raised for object (pickled) arrays
        raise CheckpointError(f"{path!r} holds pickled objects, which npflow never loads ({err})")
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint ({err})") from None
    return _validate(path, arrays)


def _read_members(path, data):
    """Read every member after checking, from its header alone, that it is not absurdly large."""
    limit = _checks.available_memory()
    for key in data.files:
        with data.zip.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                continue
            shape, _, dtype = read_header(member)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if limit is not None and nbytes > limit:
            raise CheckpointError(f"{path!r}: {key} claims shape {shape} ({_checks.gib(nbytes)}), "
                                  f"more than the {_checks.gib(limit)} of memory available")
    return {key: data[key] for key in data.files}


def _validate(path, arrays):
    missing = [key for key in _KEYS if key not in arrays]
    if missing:
        raise CheckpointError(f"{path!r} is not an npflow checkpoint: missing {', '.join(missing)}")
    for key in _SCALAR_KEYS:
        if arrays[key].shape != () or arrays[key].dtype.kind not in "iu":
            raise CheckpointError(f"{path!r}: {key} must be a single integer")
    version = int(arrays["format_version"])
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{path!r} has checkpoint format version {version}; this npflow "
                              f"reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    try:
        meta = json.loads(str(arrays["meta"]))
        model_config, train_config, rng_state = meta["model"], meta["train"], meta["rng"]
        model_config = {"arch": "mlp", **model_config}  # formats 1 and 2: an MLP
        expected = networks.count_params(model_config)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise CheckpointError(f"{path!r} has an invalid model description: {err}") from None
    for key in _ARRAY_KEYS:
        _check_weights(path, arrays, key, expected)
    try:  # the sizes agree, so building the network allocates only what the file holds
        net = networks.build(model_config, np.random.default_rng(0))
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path!r} has an invalid model description: {err}") from None
    step, adam_step = int(arrays["step"]), int(arrays["adam_step"])
    if adam_step != step:
        raise CheckpointError(f"{path!r}: the optimizer has taken {adam_step} steps but the run "
                              f"{step}; the file was saved in the middle of a step")
    if arrays["losses"].shape != (step,) or arrays["losses"].dtype.kind != "f":
        raise CheckpointError(f"{path!r}: losses must be {step} floats (one per step), got a "
                              f"{arrays['losses'].dtype} array of shape {arrays['losses'].shape}")
    for key in ("params", "ema_params"):
        if not np.all(np.isfinite(arrays[key])):
            raise CheckpointError(f"{path!r}: {key} holds NaN or infinite weights")
    data = _data_state(path, meta.get("data") if version >= 2 else None, arrays, expected, net)
    return Checkpoint(model_config, train_config, rng_state,
                      *(arrays[key].astype(net.dtype) for key in _ARRAY_KEYS),
                      adam_step, step, arrays["losses"], data)


def _check_weights(path, arrays, key, expected):
    if arrays[key].shape != (expected,) or arrays[key].dtype.kind != "f":
        raise CheckpointError(f"{path!r}: {key} is a {arrays[key].dtype} array of shape "
                              f"{arrays[key].shape}, but the model needs floats of shape "
                              f"({expected},)")


def _data_state(path, meta, arrays, expected, net):
    """The :class:`DataState` of a format-2 run on a finite dataset, or None."""
    if meta is None:
        return None
    missing = [key for key in _DATA_KEYS if key not in arrays]
    if missing:
        raise CheckpointError(f"{path!r} describes a run on a dataset but lacks "
                              f"{', '.join(missing)}")
    _check_weights(path, arrays, "best_params", expected)
    val_losses, val_index = arrays["val_losses"], arrays["val_index"]
    if val_losses.ndim != 2 or val_losses.shape[1] != 2 or val_losses.dtype.kind != "f":
        raise CheckpointError(f"{path!r}: val_losses must be (k, 2) floats, got a "
                              f"{val_losses.dtype} array of shape {val_losses.shape}")
    if val_index.ndim != 1 or val_index.dtype.kind not in "iu":
        raise CheckpointError(f"{path!r}: val_index must be a 1-D integer array")
    try:
        info = meta["info"]
        n, dim = int(info["n"]), int(info["dim"])
        state = DataState(info, meta["transform"], meta.get("source_transform"),
                          meta["sampler"], meta.get("source_sampler"), val_index.astype(np.int64),
                          val_losses, arrays["best_params"].astype(net.dtype),
                          int(meta["best_step"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path!r} has an invalid data description: {err!r}") from None
    if dim != net.dim or (val_index.size and (val_index.min() < 0 or val_index.max() >= n)):
        raise CheckpointError(f"{path!r}: the data description (n={n}, d={dim}) does not fit "
                              f"the network (d={net.dim}) or the validation rows")
    return state


def load_model(path, ema=True, best=True):
    """Load the velocity-field network of a checkpoint (see :meth:`Checkpoint.model`)."""
    return load(path).model(ema=ema, best=best)
