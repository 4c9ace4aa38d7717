"""What the hemorrhage demo models were trained on, in the words the panel, bundles and reports show.

A module of its own (no imports) so that the Slicer side can show it without loading the bleed
simulator that produced the training data.
"""

from __future__ import annotations

__all__ = ["SIMULATED_DATA_NOTE"]

SIMULATED_DATA_NOTE = "trained on simulated bleeds in one real head CT — not for clinical use"
