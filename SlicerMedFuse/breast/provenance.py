"""What the breast demo models were trained on, in the words the panel, bundles and reports show.

A module of its own (no imports) so that the Slicer side can show it without loading the phantom
dataset writer.
"""

from __future__ import annotations

__all__ = ["PHANTOM_DATA_NOTE"]

PHANTOM_DATA_NOTE = "trained on simulated phantom breast MRI (SlicerMedFuse.breast.phantom), not on patient data"
