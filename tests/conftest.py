"""Shared test configuration: Hypothesis profiles.

``CI=true`` (set by the CI runner) selects a profile with fewer examples so the suite stays well
under ten minutes on two cores, derandomized so that every CI run tries the same examples (a red
CI build is reproducible); locally the ``dev`` profile explores more, with fresh random examples
each run.  Pick one explicitly with ``HYPOTHESIS_PROFILE=ci|dev|thorough``.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow]
)
# derandomize=False is explicit: with CI set in the environment, Hypothesis's own defaults
# are derandomized, and a profile registered without it would inherit that.
settings.register_profile(
    "dev", max_examples=50, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow]
)
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
