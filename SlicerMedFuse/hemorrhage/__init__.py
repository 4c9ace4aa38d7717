"""Intracranial hemorrhage on non-contrast head CT (BHSD, Wu et al., MLMI 2023): labels, preprocessing,
CT-derived anatomy and the bleed simulator used to train and test without labelled hemorrhage scans,
the model input shared by training and inference, inference, post-processing and evaluation.
Training lives in :mod:`SlicerMedFuse.hemorrhage.training` (imports torch).

Arrays are SimpleITK's numpy view, ``(z, y, x)``; positions are LPS millimetres; densities HU.

Names are imported on first use, so that reading the labels or one constant does not load the
simulator, inference and evaluation modules.
"""

from __future__ import annotations

from SlicerMedFuse.lazy import lazy_attributes

_LAZY = {
    "AnatomyConfig": "SlicerMedFuse.hemorrhage.anatomy",
    "HeadAnatomy": "SlicerMedFuse.hemorrhage.anatomy",
    "analyze_head_ct": "SlicerMedFuse.hemorrhage.anatomy",
    "intracranial_mask": "SlicerMedFuse.hemorrhage.anatomy",
    "EvaluationResult": "SlicerMedFuse.hemorrhage.evaluation",
    "evaluate_folders": "SlicerMedFuse.hemorrhage.evaluation",
    "format_table": "SlicerMedFuse.hemorrhage.evaluation",
    "HemorrhageSegmentation": "SlicerMedFuse.hemorrhage.inference",
    "segment_hemorrhage": "SlicerMedFuse.hemorrhage.inference",
    "BHSD_DATASET_NAMES": "SlicerMedFuse.hemorrhage.labels",
    "HEMORRHAGE_LABELS": "SlicerMedFuse.hemorrhage.labels",
    "LABEL_BY_VALUE": "SlicerMedFuse.hemorrhage.labels",
    "HemorrhageClass": "SlicerMedFuse.hemorrhage.labels",
    "class_from_name": "SlicerMedFuse.hemorrhage.labels",
    "HemorrhagePreprocessing": "SlicerMedFuse.hemorrhage.model_input",
    "PreparedCT": "SlicerMedFuse.hemorrhage.model_input",
    "prepare_ct": "SlicerMedFuse.hemorrhage.model_input",
    "prepare_labels": "SlicerMedFuse.hemorrhage.model_input",
    "ClassMeasurement": "SlicerMedFuse.hemorrhage.postprocessing",
    "measure_classes": "SlicerMedFuse.hemorrhage.postprocessing",
    "remove_small_components": "SlicerMedFuse.hemorrhage.postprocessing",
    "BHSD_HU_RANGE": "SlicerMedFuse.hemorrhage.preprocessing",
    "WINDOWS": "SlicerMedFuse.hemorrhage.preprocessing",
    "CTWindow": "SlicerMedFuse.hemorrhage.preprocessing",
    "bhsd_normalize": "SlicerMedFuse.hemorrhage.preprocessing",
    "check_ct_intensities": "SlicerMedFuse.hemorrhage.preprocessing",
    "check_head_in_view": "SlicerMedFuse.hemorrhage.preprocessing",
    "multi_window": "SlicerMedFuse.hemorrhage.preprocessing",
    "preprocess_ct": "SlicerMedFuse.hemorrhage.preprocessing",
    "SimulatedDatasetSpec": "SlicerMedFuse.hemorrhage.simulated_dataset",
    "write_simulated_dataset": "SlicerMedFuse.hemorrhage.simulated_dataset",
    "Lesion": "SlicerMedFuse.hemorrhage.simulator",
    "NoiseModel": "SlicerMedFuse.hemorrhage.simulator",
    "SimulatedCase": "SlicerMedFuse.hemorrhage.simulator",
    "SimulationConfig": "SlicerMedFuse.hemorrhage.simulator",
    "estimate_noise": "SlicerMedFuse.hemorrhage.simulator",
    "simulate_hemorrhage": "SlicerMedFuse.hemorrhage.simulator",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, lambda: list(globals()))
