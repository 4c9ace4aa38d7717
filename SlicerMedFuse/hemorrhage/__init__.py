"""Intracranial hemorrhage on non-contrast head CT (BHSD, Wu et al., MLMI 2023): labels, preprocessing,
CT-derived anatomy and the bleed simulator used to train and test without labelled hemorrhage scans.

Arrays are SimpleITK's numpy view, ``(z, y, x)``; positions are LPS millimetres; densities HU.
"""

from __future__ import annotations

from SlicerMedFuse.hemorrhage.anatomy import AnatomyConfig, HeadAnatomy, analyze_head_ct, intracranial_mask
from SlicerMedFuse.hemorrhage.labels import (
    BHSD_DATASET_NAMES,
    HEMORRHAGE_LABELS,
    LABEL_BY_VALUE,
    HemorrhageClass,
    class_from_name,
)
from SlicerMedFuse.hemorrhage.preprocessing import (
    BHSD_HU_RANGE,
    WINDOWS,
    CTWindow,
    bhsd_normalize,
    check_ct_intensities,
    check_head_in_view,
    multi_window,
    preprocess_ct,
)
from SlicerMedFuse.hemorrhage.simulator import (
    Lesion,
    NoiseModel,
    SimulatedCase,
    SimulationConfig,
    estimate_noise,
    simulate_hemorrhage,
)

__all__ = [
    "BHSD_DATASET_NAMES",
    "BHSD_HU_RANGE",
    "HEMORRHAGE_LABELS",
    "LABEL_BY_VALUE",
    "WINDOWS",
    "AnatomyConfig",
    "CTWindow",
    "HeadAnatomy",
    "HemorrhageClass",
    "Lesion",
    "NoiseModel",
    "SimulatedCase",
    "SimulationConfig",
    "analyze_head_ct",
    "bhsd_normalize",
    "check_ct_intensities",
    "check_head_in_view",
    "class_from_name",
    "estimate_noise",
    "intracranial_mask",
    "multi_window",
    "preprocess_ct",
    "simulate_hemorrhage",
]
