"""Input validation shared by every module.

Each function checks one argument at the public boundary and raises ``ValueError`` or
``TypeError`` with a one-line message that names the argument and says what was expected. A bad
value is an :class:`OptionError`, so that a front end names the argument its own way (the
command line: ``--batch-size``). Library code never uses ``assert`` for this.
"""
import numbers
import os

import numpy as np


class OptionError(ValueError):
    """A bad option value, or options that cannot go together, in one line naming each of them.

    ``template`` holds ``{0}``, ``{1}``, ... where the options ``names`` go: ``str(err)`` spells
    them as Python arguments (``label_dropout``); :meth:`spell` lets a front end spell them its
    own way (the command line: ``--label-dropout``). One rule, one message, every face.
    """

    def __init__(self, template, *names):
        self.template, self.names = template, names
        super().__init__(template.format(*names, caller="this call"))

    def spell(self, name_of, caller):
        """The message with each option named by ``name_of(name)``, and ``{caller}`` (where the
        template says who gave the options) by ``caller`` (``"this command"``)."""
        return self.template.format(*(name_of(name) for name in self.names), caller=caller)


def points(x, name="x", dim=None, dtype=None):
    """Return ``x`` as a finite floating array of shape ``(n, d)``.

    Parameters
    ----------
    x : array_like, shape (n, d)
        The points to check.
    name : str
        The argument's name, used in the error message.
    dim : int, optional
        The required number of columns ``d``.
    dtype : numpy dtype, optional
        Cast to this floating dtype (no copy when it already matches).
    """
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        shape = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point, got shape {arr.shape}")
    if dtype is None:
        dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
    arr = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found NaN or infinity")
    return arr


def times(t, n, name="t", dtype=np.float64):
    """Return ``t`` as a finite array of shape ``(n, 1)``, broadcasting a scalar.

    Parameters
    ----------
    t : float or array_like, shape (n,) or (n, 1)
        Times, one per point, or one for all.
    n : int
        Number of points the times go with.
    """
    arr = np.asarray(t, dtype=dtype)
    if arr.ndim == 0:
        arr = np.full((n, 1), arr, dtype=dtype)
    elif arr.shape in ((n,), (n, 1)):
        arr = arr.reshape(n, 1)
    else:
        raise ValueError(f"{name} must be a scalar or have shape ({n},) to match x, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found NaN or infinity")
    return arr


def out_path(path, extensions, name="out"):
    """Return ``path`` after checking that its folder exists and it ends with an extension."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OptionError(f"{{0}}: folder {folder!r} does not exist", name)
    if not str(path).endswith(extensions):
        raise OptionError(f"{{0}} must end with {' or '.join(extensions)}, got {str(path)!r}",
                          name)
    return path


def literal(text):
    """``text`` with its braces doubled, to stand as is in an :class:`OptionError`'s template."""
    return text.replace("{", "{{").replace("}", "}}")


def shown(value):
    """An option's value as a person types it: ``3``, ``moons``, ``128,128``, ``year=integer``."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{name}={kind}" for name, kind in value.items())
    return str(value)


def listed(k, verb):
    """The template naming ``k`` options and its verb, ``verb = (singular, plural)``:
    "{0} applies", "{0} and {1} apply", "{0}, {1} and {2} apply"."""
    names = [f"{{{i}}}" for i in range(k)]
    if k == 1:
        return f"{names[0]} {verb[0]}"
    return f"{', '.join(names[:-1])} and {names[-1]} {verb[1]}"


def refuse(name, text, error=OptionError):
    """The :class:`OptionError` (or its subclass ``error``) "``name`` ``text``": the value of the
    option ``name`` is bad."""
    return error("{0} " + literal(text), name)


def integer(value, name, low):
    """Return ``value`` as an ``int`` after checking that it is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise refuse(name, f"must be an integer >= {low}, got {value}")
    return int(value)


def positive_int(value, name):
    """Return ``value`` as an ``int`` after checking that it is an integer >= 1."""
    return integer(value, name, 1)


def nonnegative_int(value, name):
    """Return ``value`` as an ``int`` after checking that it is an integer >= 0 (not a bool)."""
    return integer(value, name, 0)


def finite_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a ``float`` after checking it is finite and inside the given range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    lo = "(" if low_open or low is None else "["  # an infinite end is never in the interval
    hi = ")" if high_open or high is None else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not np.isfinite(value):
        raise refuse(name, f"must be a finite number in {interval}, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise refuse(name, f"must be in {interval}, got {value}")
    return value


def classes(y, n_classes, name="y", n=None, null=False):
    """Return class labels ``y`` (n,) after checking they are integers in ``0 .. n_classes - 1``
    (``0 .. n_classes`` with ``null``: a conditional network's learned null label).

    The check of labels given to a model that knows its ``n_classes`` (a network, a guided
    field, a classifier): an integer dtype only, TypeError otherwise. Labels read from a file or
    given to a fit (:func:`npflow.data.check_labels`) are more lenient: integral floats (``3.0``,
    as a text file holds them) are taken, there is no upper bound (the number of classes is
    learned from them), and a bad entry is named by its row.

    Parameters
    ----------
    y : array_like, shape (n,)
    n_classes : int
        Number of classes ``K``.
    name : str
        The argument's name, used in the error message.
    n : int, optional
        The required length (one label per point); None: any length >= 1.
    null : bool
        Also accept the null label ``K``.
    """
    arr = np.asarray(y)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if (arr.ndim != 1 or arr.size == 0) if n is None else arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({'n' if n is None else n},), one label per "
                         f"point, got shape {arr.shape}")
    high = n_classes if null else n_classes - 1
    if arr.size and (arr.min() < 0 or arr.max() > high):
        low, top = arr.min(), arr.max()
        got = f"{low}" if low == top else f"values in {low} .. {top}"
        raise OptionError(f"{{0}} must hold classes in 0 .. {high}"
                          f"{f' ({high} = null)' if null else ''}, got {got}", name)
    return arr


def generator(rng, name="rng"):
    """Check that ``rng`` is a ``numpy.random.Generator``; npflow never uses global random state."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def choice(value, name, options):
    """Check that ``value`` is one of ``options`` (a collection of strings)."""
    if value not in options:
        raise refuse(name, f"must be one of {', '.join(sorted(options))}; got {value!r}")
    return value


def boolean(value, name):
    """Check that ``value`` is ``True`` or ``False`` (NumPy's bool too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def available_memory():
    """Bytes of memory the system can still give (``MemAvailable``), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(nbytes):
    """``nbytes`` as a short text in GiB (or MiB below one GiB)."""
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


class InsufficientMemory(MemoryError):
    """A request was found, before anything was allocated, to need more memory than there is."""


def affordable(nbytes, what):
    """Raise :class:`InsufficientMemory` (one line) when ``nbytes`` exceed the memory available.

    ``what`` says what needs the memory ("training with batch_size 100000000 ...").
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise InsufficientMemory(f"{what} would need about {gib(nbytes)} of memory; this machine has "
                          f"{gib(free)} available")
    return nbytes
