"""Tests for npflow.transforms: round trips, the log-Jacobian, streamed fits, dequantization.

References are independent: NumPy's mean/std in float64 on the whole array, a central-difference
Jacobian and its log-volume from ``np.linalg.slogdet``, and the sample moments of ``x + u``
against the closed form within 5 standard errors.
"""
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npflow import data
from npflow.transforms import Standardize, bits_per_dim

Z = 5.0  # tolerance in standard errors


@st.composite
def transforms(draw, max_dim=6):
    d = draw(st.integers(1, max_dim))
    mean = draw(hnp.arrays(np.float64, d, elements=st.floats(-1e3, 1e3)))
    log_scale = draw(hnp.arrays(np.float64, d, elements=st.floats(-5.0, 5.0)))
    return Standardize(mean, np.exp(log_scale), draw(st.booleans()))


@given(t=transforms(), n=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_forward_inverse_round_trip(t, n, seed):
    x = np.random.default_rng(seed).standard_normal((n, t.dim)) * t.scale + t.mean
    z = t.forward(x)
    np.testing.assert_allclose(z, (x - t.mean) / t.scale, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.inverse(z), x, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(t.forward(t.inverse(z)), z, rtol=1e-9, atol=1e-9)


def test_float32_stays_float32():
    t = Standardize([1.0, -2.0], [2.0, 0.5])
    x = np.ones((3, 2), dtype=np.float32)
    assert t.forward(x).dtype == np.float32 and t.inverse(x).dtype == np.float32
    assert t.forward(np.ones((3, 2), dtype=np.int64)).dtype == np.float64


@given(t=transforms(), seed=st.integers(0, 2**32 - 1))
def test_log_abs_det_matches_finite_difference_jacobian(t, seed):
    x = np.random.default_rng(seed).standard_normal(t.dim) * t.scale + t.mean  # (d,)
    h = 1e-3 * t.scale  # per-coordinate step, relative to the feature's scale
    steps = np.diag(h)  # (d, d)
    jac = (t.forward(x + steps) - t.forward(x - steps)) / (2 * h[:, None])  # row j: d z / d x_j
    sign, logdet = np.linalg.slogdet(jac)
    assert sign == 1
    assert math.isclose(t.log_abs_det(), logdet, rel_tol=1e-6, abs_tol=1e-6)


@given(t=transforms())
def test_dict_round_trip_through_json(t):
    back = Standardize.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_array_equal(back.mean, t.mean)
    np.testing.assert_array_equal(back.scale, t.scale)
    assert back.dequantize == t.dequantize


@pytest.mark.parametrize("d, match", [
    ({"mean": [0.0], "scale": [1.0]}, "keys"),
    ([0.0], "keys"),
    ({"mean": [0.0, 1.0], "scale": [1.0], "dequantize": False}, "shape"),
    ({"mean": [[0.0]], "scale": [[1.0]], "dequantize": False}, "shape"),
    ({"mean": [], "scale": [], "dequantize": False}, "shape"),
    ({"mean": [0.0], "scale": [0.0], "dequantize": False}, "> 0"),
    ({"mean": [0.0], "scale": [-1.0], "dequantize": False}, "> 0"),
    ({"mean": [float("nan")], "scale": [1.0], "dequantize": False}, "finite"),
    ({"mean": ["a"], "scale": [1.0], "dequantize": False}, "numbers"),
    ({"mean": [0.0], "scale": [1.0], "dequantize": "yes"}, "dequantize"),
])
def test_from_dict_rejects(d, match):
    with pytest.raises(ValueError, match=match) as info:
        Standardize.from_dict(d)
    assert "\n" not in str(info.value)


def test_fit_matches_numpy_and_streams_a_memmap(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_ELEMENTS", 10)  # many chunks of 3 rows
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((103, 4)) * [1.0, 0.1, 50.0, 2.0] + [0.0, 1e4, -3.0, 7.0])
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    t = Standardize.fit(np.load(tmp_path / "x.npy", mmap_mode="r"))
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(t.mean, x32.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(t.scale, x32.std(axis=0), rtol=1e-9)
    assert not t.dequantize
    z = t.forward(x32)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-9)


def test_fit_constant_columns_get_scale_one():
    x = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 4.0]])
    t = Standardize.fit(x)
    assert t.scale[0] == 1.0 and t.mean[0] == pytest.approx(0.1)
    np.testing.assert_allclose(t.forward(x)[:, 0], 0.0, atol=1e-15)
    assert Standardize.fit(x[:1]).scale.tolist() == [1.0, 1.0]  # one row: every column constant


def test_fit_rejects_bad_data():
    with pytest.raises(data.DataError, match="NaN"):
        Standardize.fit([[0.0], [np.nan]])
    with pytest.raises(data.DataError, match="2-D"):
        Standardize.fit(np.arange(3.0))


def test_dequantized_moments_match_fit_closed_form():
    rng = np.random.default_rng(1)
    n = 40_000
    x = np.stack([rng.integers(0, 256, n), rng.poisson(3.0, n), np.full(n, 7)], axis=1)
    t = Standardize.fit(x, dequantize=True)
    np.testing.assert_allclose(t.mean, x.mean(axis=0) + 0.5, rtol=1e-12)
    np.testing.assert_allclose(t.scale ** 2, x.var(axis=0) + 1 / 12, rtol=1e-12)
    xu = t.dequantized(x, rng)
    assert xu.dtype == np.float64
    assert np.all(xu >= x) and np.all(xu < x + 1)
    mean_se = xu.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(xu.mean(axis=0) - t.mean) < Z * mean_se)
    centred = xu - xu.mean(axis=0)
    var_se = np.sqrt(((centred ** 2 - centred.var(axis=0)) ** 2).mean(axis=0) / n)
    assert np.all(np.abs(centred.var(axis=0) - t.scale ** 2) < Z * var_se)


def test_dequantized_keeps_float32_and_needs_dequantize():
    t = Standardize.fit(np.arange(6.0).reshape(3, 2), dequantize=True)
    out = t.dequantized(np.zeros((5, 2), dtype=np.float32), np.random.default_rng(0))
    assert out.dtype == np.float32 and np.all((out >= 0) & (out < 1))
    with pytest.raises(ValueError, match="dequantize=True"):
        Standardize.fit(np.arange(6.0).reshape(3, 2)).dequantized(np.zeros((1, 2)),
                                                                 np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        t.dequantized(np.zeros((1, 2)), 0)


def test_identity_and_shape_checks():
    t = Standardize.identity(3)
    x = np.random.default_rng(2).standard_normal((4, 3))
    np.testing.assert_array_equal(t.forward(x), x)
    assert t.log_abs_det() == 0.0
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        t.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="d must be"):
        Standardize.identity(0)


def test_log_abs_det_is_the_change_of_variables():
    """A Gaussian in z, moved to x by the inverse map, has the closed-form density in x."""
    mean, scale = np.array([1.0, -2.0]), np.array([3.0, 0.5])
    t = Standardize(mean, scale)
    x = np.array([[0.3, -1.7], [4.0, -2.2]])
    z = t.forward(x)
    log_pz = -0.5 * np.sum(z ** 2, axis=1) - np.log(2 * np.pi)
    log_px = np.sum(-0.5 * ((x - mean) / scale) ** 2 - np.log(np.sqrt(2 * np.pi) * scale), axis=1)
    np.testing.assert_allclose(log_pz + t.log_abs_det(), log_px, rtol=1e-12)


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)
    assert bits_per_dim(-3.0, 2) == pytest.approx(-3.0 / (2 * math.log(2.0)))
    with pytest.raises(ValueError, match="nll_nats"):
        bits_per_dim(float("inf"), 2)
    with pytest.raises(ValueError, match="d must be"):
        bits_per_dim(1.0, 0)


def test_fit_on_some_rows_equals_fit_on_those_rows_taken_out(monkeypatch):
    import npflow.data as data_module  # row_chunks, which fit reads the rows with
    monkeypatch.setattr(data_module, "CHUNK_ELEMENTS", 7)  # several blocks of rows
    x = np.random.default_rng(2).standard_normal((50, 3)) * [1.0, 5.0, 0.1] + [0.0, 3.0, -1.0]
    rows = np.array([0, 4, 9, 10, 11, 30, 49])
    a, b = Standardize.fit(x, rows=rows), Standardize.fit(x[rows])
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.scale, b.scale, rtol=1e-12)
    with pytest.raises(ValueError, match="rows"):
        Standardize.fit(x, rows=np.array([], dtype=int))
