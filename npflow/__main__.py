"""``python -m npflow``: the command line (see :mod:`npflow.cli`)."""
import sys

from .cli import main

sys.exit(main())
