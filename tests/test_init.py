"""The public API: every name in ``npflow.__all__`` exists, and importing npflow stays light."""
import subprocess
import sys

import npflow


def test_every_public_name_exists():
    missing = [name for name in npflow.__all__ if not hasattr(npflow, name)]
    assert missing == []


def test_import_loads_only_numpy():
    code = ("import sys, npflow; heavy = [m for m in ('matplotlib', 'scipy', 'torch') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
