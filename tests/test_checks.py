"""Tests for npflow._checks, the argument checks every module shares."""
import pytest

from npflow import _checks


@pytest.mark.parametrize("kwargs, value, interval", [
    (dict(low=0.0, low_open=True), -1.0, "(0.0, inf)"),
    (dict(low=0.0), -1.0, "[0.0, inf)"),
    (dict(high=1.0), 2.0, "(-inf, 1.0]"),
    (dict(low=0.0, high=1.0, high_open=True), 1.0, "[0.0, 1.0)"),
    (dict(), float("nan"), "(-inf, inf)"),
])
def test_finite_float_prints_infinite_ends_open(kwargs, value, interval):
    with pytest.raises(_checks.OptionError) as info:
        _checks.finite_float(value, "lr", **kwargs)
    assert f"lr must be {'a finite number ' if value != value else ''}in {interval}, got " in \
        str(info.value)
