"""The ``medfuse`` command line (also ``python -m SlicerMedFuse`` and ``PythonSlicer -m SlicerMedFuse``)."""

from SlicerMedFuse.cli.main import main

__all__ = ["main"]
