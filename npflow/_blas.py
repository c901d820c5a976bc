"""The thread count of the OpenBLAS library that NumPy loaded, read and set through ctypes.

Code that runs its own threads (:func:`npflow.sampling.sample_flow` integrates chunks of points in
parallel) must stop BLAS from starting threads of its own: two Python threads that each call a
two-thread BLAS fight over two cores and run slower than one thread. NumPy has no API for this;
threadpoolctl does it by calling the library's ``openblas_set_num_threads``, and so does this
module, for the OpenBLAS builds NumPy's wheels ship (symbol names ``scipy_openblas_*64_``) and
plain ones. Where no OpenBLAS is found (another BLAS, or no ``/proc/self/maps``), :func:`limit`
reports that it cannot limit, and callers stay single-threaded.
"""
import contextlib
import ctypes
import threading

# (prefix, suffix) of the get/set functions: NumPy's wheels, then plain OpenBLAS builds.
_NAMES = (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", ""))
_lock = threading.Lock()
_functions = None  # (get, set), False when not found; looked up on first use


def _find():
    """``(get, set)`` of the loaded OpenBLAS, or False."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    except OSError:
        return False
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _NAMES:
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes, set_.restype = ctypes.c_int, [ctypes.c_int], None
                return get, set_
    return False


def _get_functions():
    global _functions
    if _functions is None:
        _functions = _find()
    return _functions


def threads():
    """OpenBLAS's current thread count, or None when it cannot be read."""
    functions = _get_functions()
    return functions[0]() if functions else None


@contextlib.contextmanager
def limit(count):
    """Run the ``with`` block with OpenBLAS limited to ``count`` threads; yields True if it could.

    The previous count is restored on exit. The setting is process-wide, so one block at a time
    may hold it (a lock makes concurrent callers wait). Where OpenBLAS already runs ``count``
    threads (inside another ``limit(count)``, e.g. in the threads of
    :func:`npflow.sampling.sample_flow`), the block runs as it is, without the lock.
    """
    functions = _get_functions()
    if not functions:
        yield False
        return
    get, set_ = functions
    if get() == count:
        yield True
        return
    with _lock:
        previous = get()
        set_(count)
        try:
            yield True
        finally:
            set_(previous)
