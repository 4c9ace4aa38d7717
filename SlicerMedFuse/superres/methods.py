"""The super-resolution methods and their settings by name, free of torch.

Task declarations, the Slicer panel and the grid checks read these names before torch is
installed; the implementations (:mod:`.interpolation`, :mod:`.sr4zct`, :mod:`.msd`) import them
from here so that each name is written once.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DILATIONS", "INTERPOLATORS", "QUALITIES"]

#: Interpolation baselines: linear, cubic B-spline and windowed sinc (SimpleITK interpolators).
INTERPOLATORS = ("linear", "bspline", "sinc")
#: SR4ZCT configurations: ``fast`` (CPU, minutes) and ``faithful`` (the paper's network and schedule).
QUALITIES = ("fast", "faithful")
#: Dilations of the MS-D network's layers, repeating (Pelt & Sethian, PNAS 2018; SR4ZCT: 1..10).
DEFAULT_DILATIONS = tuple(range(1, 11))
