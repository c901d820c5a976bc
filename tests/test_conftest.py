"""The Hypothesis profiles of tests/conftest.py: CI is reproducible, local runs explore."""
from hypothesis import settings


def test_ci_profile_is_derandomized_and_dev_is_random():
    ci, dev = settings.get_profile("ci"), settings.get_profile("dev")
    assert ci.derandomize is True
    assert ci.max_examples == 25
    assert dev.derandomize is False
