"""Tests for npflow._blas: finding NumPy's OpenBLAS, reading, limiting and restoring its thread
count, and the documented fallback (``threads()`` is None, ``limit()`` yields False) where no
OpenBLAS is found."""
import os

import numpy as np
import pytest

from npflow import _blas


def numpy_blas_name():
    """The BLAS NumPy was built against, lower case, or None when NumPy cannot say."""
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"].lower()
    except (TypeError, KeyError, AttributeError):  # NumPy < 1.25 has no mode="dicts"
        return None


def test_openblas_is_found_exactly_when_numpy_is_built_with_it():
    name = numpy_blas_name()
    if name is None or not os.path.exists("/proc/self/maps"):
        pytest.skip("NumPy does not report its BLAS, or there is no /proc/self/maps")
    assert (_blas.threads() is not None) == ("openblas" in name)


def test_limit_sets_and_restores_the_thread_count_or_reports_that_it_cannot():
    before = _blas.threads()
    a = np.ones((300, 300), np.float32)
    with _blas.limit(1) as limited:
        inside = _blas.threads()
        np.testing.assert_array_equal(a @ a, np.full((300, 300), 300, np.float32))
    assert _blas.threads() == before
    if before is None:  # the documented fallback: nothing to limit
        assert limited is False and inside is None
    else:
        assert limited is True and inside == 1 and before >= 1


def test_limit_restores_a_count_other_than_the_default():
    before = _blas.threads()
    if before is None or (os.cpu_count() or 1) < 2:
        pytest.skip("needs an OpenBLAS and two CPUs (OpenBLAS caps the count at the CPUs)")
    with _blas.limit(1):
        with_one = _blas.threads()
    try:
        _blas._get_functions()[1](1)  # start from one thread, then limit to two and back
        with _blas.limit(2):
            inside = _blas.threads()
        after = _blas.threads()
    finally:
        _blas._get_functions()[1](before)
    assert (with_one, inside, after) == (1, 2, 1)


def test_limit_restores_after_an_exception():
    before = _blas.threads()
    with pytest.raises(RuntimeError):
        with _blas.limit(1):
            raise RuntimeError("inside")
    assert _blas.threads() == before


def test_without_openblas_limit_reports_false(monkeypatch):
    monkeypatch.setattr(_blas, "_functions", False)
    assert _blas.threads() is None
    with _blas.limit(1) as limited:
        assert limited is False


def test_limit_inside_limit_runs_without_waiting_for_the_lock():
    """A limit(1) inside another (the U-Net's, inside sample_flow's threads) must not wait for
    the lock the outer block holds."""
    before = _blas.threads()
    if before is None:
        pytest.skip("needs an OpenBLAS")
    with _blas.limit(1):
        with _blas.limit(1) as inner:
            assert inner is True and _blas.threads() == 1
        assert _blas.threads() == 1
    assert _blas.threads() == before
