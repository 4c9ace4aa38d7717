"""The ``medfuse`` command line (also ``python -m SlicerMedFuse`` and ``PythonSlicer -m SlicerMedFuse``)."""

import os

# Idle OpenMP threads spin by default and starve other processes on a shared CPU; this must be set
# before torch is imported, and a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from SlicerMedFuse.cli.main import main  # noqa: E402

__all__ = ["main"]
