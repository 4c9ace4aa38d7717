"""Intracranial hemorrhage on non-contrast head CT (BHSD, Wu et al., MLMI 2023): labels, preprocessing,
CT-derived anatomy and the bleed simulator used to train and test without labelled hemorrhage scans,
the model input shared by training and inference, inference, post-processing and evaluation.
Training lives in :mod:`SlicerMedFuse.hemorrhage.training` (imports torch).

Arrays are SimpleITK's numpy view, ``(z, y, x)``; positions are LPS millimetres; densities HU.
"""

from __future__ import annotations

from SlicerMedFuse.hemorrhage.anatomy import AnatomyConfig, HeadAnatomy, analyze_head_ct, intracranial_mask
from SlicerMedFuse.hemorrhage.evaluation import EvaluationResult, evaluate_folders, format_table
from SlicerMedFuse.hemorrhage.inference import HemorrhageSegmentation, segment_hemorrhage
from SlicerMedFuse.hemorrhage.labels import (
    BHSD_DATASET_NAMES,
    HEMORRHAGE_LABELS,
    LABEL_BY_VALUE,
    HemorrhageClass,
    class_from_name,
)
from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing, PreparedCT, prepare_ct, prepare_labels
from SlicerMedFuse.hemorrhage.postprocessing import ClassMeasurement, measure_classes, remove_small_components
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
from SlicerMedFuse.hemorrhage.simulated_dataset import SimulatedDatasetSpec, write_simulated_dataset
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
    "ClassMeasurement",
    "EvaluationResult",
    "HeadAnatomy",
    "HemorrhageClass",
    "HemorrhagePreprocessing",
    "HemorrhageSegmentation",
    "Lesion",
    "NoiseModel",
    "PreparedCT",
    "SimulatedCase",
    "SimulatedDatasetSpec",
    "SimulationConfig",
    "analyze_head_ct",
    "bhsd_normalize",
    "check_ct_intensities",
    "check_head_in_view",
    "class_from_name",
    "estimate_noise",
    "evaluate_folders",
    "format_table",
    "intracranial_mask",
    "measure_classes",
    "multi_window",
    "prepare_ct",
    "prepare_labels",
    "preprocess_ct",
    "remove_small_components",
    "segment_hemorrhage",
    "simulate_hemorrhage",
    "write_simulated_dataset",
]
