"""Tests for npflow._checks, the argument checks every module shares."""
import numpy as np
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


def test_classes_checks_dtype_shape_and_range():
    assert _checks.classes([0, 2, 1], 3).tolist() == [0, 2, 1]
    assert _checks.classes([0, 3], 3, null=True).tolist() == [0, 3]  # 3: the null label
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        _checks.classes([0.0, 1.0], 3)
    with pytest.raises(TypeError, match="dtype bool"):
        _checks.classes([True, False], 3)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\), one label per point"):
        _checks.classes([0, 1], 3, n=4)
    with pytest.raises(ValueError, match=r"label must have shape \(n,\)"):
        _checks.classes(np.zeros(0, dtype=int), 3, "label")
    with pytest.raises(_checks.OptionError) as info:
        _checks.classes([0, 3], 3, "label")
    assert str(info.value) == "label must hold classes in 0 .. 2, got values in 0 .. 3"
    assert info.value.spell(lambda name: "--" + name, "") == \
        "--label must hold classes in 0 .. 2, got values in 0 .. 3"
    with pytest.raises(_checks.OptionError, match=r"0 \.\. 3 \(3 = null\), got -1"):
        _checks.classes([-1], 3, null=True)


@pytest.mark.parametrize("k, expected", [
    (1, "{0} applies"), (2, "{0} and {1} apply"), (3, "{0}, {1} and {2} apply"),
])
def test_listed_names_k_options_and_agrees_its_verb(k, expected):
    template = _checks.listed(k, ("applies", "apply"))
    assert template == expected
    names = [f"--o{i}" for i in range(k)]
    assert _checks.OptionError(template, *names).spell(str, "") == expected.format(*names)


@pytest.mark.parametrize("value, text", [
    (3, "3"), ("moons", "moons"), ((128, 128), "128,128"), ([1, 2], "1,2"),
    ({"year": "integer", "id": "ignore"}, "year=integer,id=ignore"), ("a{0}", "a{0}"),
])
def test_shown_spells_a_value_as_typed(value, text):
    assert _checks.shown(value) == text
