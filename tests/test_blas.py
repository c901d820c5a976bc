"""Tests for npflow._blas: reading, limiting and restoring the OpenBLAS thread count."""
import numpy as np
import pytest

from npflow import _blas


def test_limit_sets_and_restores_the_thread_count():
    before = _blas.threads()
    if before is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS this module can find")
    with _blas.limit(1) as limited:
        assert limited and _blas.threads() == 1
        a = np.ones((300, 300), np.float32)
        np.testing.assert_array_equal(a @ a, np.full((300, 300), 300, np.float32))
    assert _blas.threads() == before


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
