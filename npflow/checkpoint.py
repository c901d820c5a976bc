"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

A checkpoint holds everything needed to sample from a model *and* to resume its training
bit for bit:

==================  ==============================================================
key                 content
==================  ==============================================================
``format_version``  int, :data:`FORMAT_VERSION`
``meta``            JSON text: ``{"model": MLP config, "train": TrainConfig, "rng": bit-generator state}``
``params``          (P,) network weights
``ema_params``      (P,) exponential moving average of the weights
``adam_m``          (P,) Adam first moment
``adam_v``          (P,) Adam second moment
``adam_step``       int, Adam's step counter k
``step``            int, training steps done
``losses``          (step,) training loss history
==================  ==============================================================

Writes go to a temporary file in the same folder, are flushed to disk, then ``os.replace`` d over
the target: a crash mid-save leaves the previous checkpoint intact. Reads use
``np.load(allow_pickle=False)``, so a file can never execute code, and every problem (missing
file, not a zip, a pickled object, a missing key, a wrong shape, an unknown version) raises
:class:`CheckpointError` with a one-line message.
"""
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from .nn import MLP

FORMAT_VERSION = 1
_ARRAY_KEYS = ("params", "ema_params", "adam_m", "adam_v")
_SCALAR_KEYS = ("format_version", "adam_step", "step")
_KEYS = _ARRAY_KEYS + _SCALAR_KEYS + ("meta", "losses")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a valid npflow checkpoint."""


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

    def model(self, ema=True):
        """Rebuild the :class:`~npflow.nn.MLP` with the EMA weights (default) or the raw ones."""
        net = MLP(**_model_kwargs(self.model_config), rng=np.random.default_rng(0))
        net.params[...] = self.ema_params if ema else self.params
        return net


def save(path, ckpt):
    """Write ``ckpt`` (a :class:`Checkpoint`) to ``path`` atomically."""
    meta = {"model": ckpt.model_config, "train": ckpt.train_config, "rng": ckpt.rng_state}
    arrays = {
        "format_version": np.int64(FORMAT_VERSION),
        "meta": np.array(json.dumps(meta)),
        "params": ckpt.params, "ema_params": ckpt.ema_params,
        "adam_m": ckpt.adam_m, "adam_v": ckpt.adam_v,
        "adam_step": np.int64(ckpt.adam_step), "step": np.int64(ckpt.step),
        "losses": np.asarray(ckpt.losses, dtype=np.float64),
    }
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".npflow-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
            arrays = {key: data[key] for key in data.files}
    except ValueError as err:  # raised for object (pickled) arrays
        raise CheckpointError(f"{path!r} holds pickled objects, which npflow never loads ({err})")
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(f"{path!r} is not a readable .npz checkpoint ({err})") from None
    return _validate(path, arrays)


def _validate(path, arrays):
    missing = [key for key in _KEYS if key not in arrays]
    if missing:
        raise CheckpointError(f"{path!r} is not an npflow checkpoint: missing {', '.join(missing)}")
    for key in _SCALAR_KEYS:
        if arrays[key].shape != () or arrays[key].dtype.kind not in "iu":
            raise CheckpointError(f"{path!r}: {key} must be a single integer")
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path!r} has checkpoint format version {version}; this npflow "
                              f"reads version {FORMAT_VERSION}")
    try:
        meta = json.loads(str(arrays["meta"]))
        model_config, train_config, rng_state = meta["model"], meta["train"], meta["rng"]
        net = MLP(**_model_kwargs(model_config), rng=np.random.default_rng(0))
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path!r} has an invalid model description: {err}") from None
    for key in _ARRAY_KEYS:
        if arrays[key].shape != net.params.shape or arrays[key].dtype.kind != "f":
            raise CheckpointError(f"{path!r}: {key} is a {arrays[key].dtype} array of shape "
                                  f"{arrays[key].shape}, but the model needs floats of shape "
                                  f"{net.params.shape}")
    step = int(arrays["step"])
    if arrays["losses"].shape != (step,) or arrays["losses"].dtype.kind != "f":
        raise CheckpointError(f"{path!r}: losses must be {step} floats (one per step), got a "
                              f"{arrays['losses'].dtype} array of shape {arrays['losses'].shape}")
    for key in ("params", "ema_params"):
        if not np.all(np.isfinite(arrays[key])):
            raise CheckpointError(f"{path!r}: {key} holds NaN or infinite weights")
    return Checkpoint(model_config, train_config, rng_state,
                      *(arrays[key].astype(net.dtype) for key in _ARRAY_KEYS),
                      int(arrays["adam_step"]), step, arrays["losses"])


def _model_kwargs(config):
    kwargs = dict(config)
    kwargs["dtype"] = np.dtype(kwargs.get("dtype", "float32")).type
    return kwargs


def load_model(path, ema=True):
    """Load the velocity-field network of a checkpoint (EMA weights by default)."""
    return load(path).model(ema=ema)
