"""Hemorrhage segmentation of one head CT with a model bundle: the task's tensor-in / tensor-out core.

Pipeline (:func:`segment_hemorrhage`):

1. resolve and verify the bundle (id or folder; sha256-checked safetensors, allowlisted architecture);
2. :func:`~SlicerMedFuse.hemorrhage.model_input.prepare_ct` -- canonical orientation, the model's
   spacing, BHSD / multi-window intensities (the function training used);
3. MONAI sliding-window inference over the model's patch with Gaussian weighting and the given
   overlap, optional mirroring along the model's mirror axes, float16 autocast on CUDA;
4. class probabilities resampled (linear, physical space) onto the input CT's grid, argmax, uint8;
5. per-class removal of small components -- below ``min_component_ml``, or below the bundle's
   per-class volumes (``postprocessing.min_component_ml``, chosen on validation cases after
   training) where those are larger and ``model_postprocessing`` is on -- and measurements per
   class (volume mL, components, slice range).

Before all this the CT's acquisition (slice thickness and spacing, in-plane spacing, gantry tilt) is
measured and compared with the bundle's ``training_acquisition`` ranges
(:mod:`~SlicerMedFuse.hemorrhage.acquisition_check`); the report carries it and a scan outside them
(or with thick slices) gets one warning sentence.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import ResourceError
from SlicerMedFuse.geometry import resample_to_reference
from SlicerMedFuse.hemorrhage.acquisition_check import (
    AcquisitionCheck,
    MeasuredAcquisition,
    TrainingAcquisition,
    acquisition_warning,
    check_acquisition,
    measure_acquisition,
)
from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing, prepare_ct
from SlicerMedFuse.hemorrhage.postprocessing import (
    ClassMeasurement,
    measure_classes,
    remove_small_components,
    resolve_min_volumes,
)
from SlicerMedFuse.hemorrhage.provenance import SIMULATED_DATA_NOTE
from SlicerMedFuse.progress import Progress

if TYPE_CHECKING:
    import torch

    from SlicerMedFuse.contract import TaskSpec
    from SlicerMedFuse.device import DeviceConfig
    from SlicerMedFuse.models.manifest import BundleManifest

__all__ = ["HemorrhageSegmentation", "predict_probabilities", "segment_hemorrhage"]

_EDH_WARNING = (
    "Epidural hemorrhage (EDH) was found: EDH is the rarest and least reliable class (BHSD nnU-Net Dice 4.8-9.8 %); "
    "review it carefully."
)


@dataclasses.dataclass(frozen=True)
class HemorrhageSegmentation:
    """The result of :func:`segment_hemorrhage`.

    Attributes:
        labels: uint8 label map on the input CT's grid (0 background, 1 EDH .. 5 SDH).
        measurements: Per class (``EDH IPH IVH SAH SDH``): volume, components, slice range.
        removed_components: Components removed per class by the minimum-volume filter.
        min_component_ml: Minimum component volume applied per class (mL).
        manifest: The model bundle's manifest.
        network_grid: Size and spacing of the grid the network ran on.
        timings_s: Seconds per stage.
        warnings: Sentences for the user (demo model, EDH, acquisition outside the training range or thick slices).
        acquisition: How the CT was acquired (slices, thickness, spacing, in-plane spacing, tilt).
        acquisition_check: The acquisition against the model's stated training acquisitions.
    """

    labels: sitk.Image
    measurements: dict[str, ClassMeasurement]
    removed_components: dict[str, int]
    min_component_ml: dict[str, float]
    manifest: BundleManifest
    network_grid: dict[str, Any]
    timings_s: dict[str, float]
    warnings: tuple[str, ...]
    acquisition: MeasuredAcquisition | None = None
    acquisition_check: AcquisitionCheck | None = None

    def report(self) -> dict[str, Any]:
        """JSON-ready report for the task (``run_task``'s report, Slicer's table)."""
        m = self.manifest
        return {
            "classes": {key: value.to_dict() for key, value in self.measurements.items()},
            "total_volume_ml": round(sum(v.volume_ml for v in self.measurements.values()), 3),
            "removed_components": self.removed_components,
            "min_component_ml": self.min_component_ml,
            "model": {
                "id": m.id,
                "version": m.version,
                "title": m.title,
                "architecture": m.architecture,
                "simulated_training": m.simulated_training,
                "intended_use": m.intended_use,
                "license": m.license,
                "folder": str(m.folder) if m.folder else None,
            },
            "network_grid": self.network_grid,
            "acquisition": self._acquisition_report(),
            "warnings": list(self.warnings),
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }

    def _acquisition_report(self) -> dict[str, Any] | None:
        """The measured acquisition with ``within_training_range`` (bool or None) and ``outside`` (sentences)."""
        if self.acquisition is None or self.acquisition_check is None:
            return None
        return {**self.acquisition.to_dict(), **self.acquisition_check.to_dict()}


#: Windows the network sees per forward pass. Measured on one CPU thread with the demo network
#: (24 x 48 x 48 patches, 100 windows on a 54 x 122 x 122 grid, load about 2): 45-53 s one window at a time,
#: 8.5 s with 4, 8.7 s with 8, 9.0-9.6 s with 16; the memory is a few MB per window.
WINDOWS_PER_BATCH = 4


def _windows_per_axis(size: int, roi: int, overlap: float) -> int:
    if size <= roi:
        return 1
    interval = max(int(roi * (1.0 - overlap)), 1)
    return math.ceil((size - roi) / interval) + 1


def _mirror_sets(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every subset of the mirror axes (the identity first), as spatial dims of a ``(B, C, z, y, x)`` tensor."""
    dims = [a + 2 for a in axes]
    return [combo for r in range(len(dims) + 1) for combo in itertools.combinations(dims, r)]


def predict_probabilities(
    network: torch.nn.Module,
    array: np.ndarray,
    preprocessing: HemorrhagePreprocessing,
    device: DeviceConfig,
    *,
    overlap: float = 0.5,
    mirroring: bool = False,
    progress: Progress | None = None,
) -> np.ndarray:
    """Sliding-window class probabilities of a preprocessed CT.

    Args:
        network: The model in eval mode on ``device``; ``network(x)`` returns logits ``(B, K, *patch)``.
        array: Network input ``(C, z, y, x)`` from :func:`prepare_ct`.
        preprocessing: The model's settings (patch size, mirror axes).
        device: Compute device (AMP on CUDA when enabled).
        overlap: Overlap of neighbouring windows (0-0.9); windows are blended with Gaussian weights.
        mirroring: Also predict on copies mirrored along ``preprocessing.mirror_axes`` and average.
        progress: Progress per window (raises Cancelled when the job is cancelled).

    Returns:
        Softmax probabilities ``(K, z, y, x)`` float32.
    """
    import torch
    from monai.inferers import sliding_window_inference

    from SlicerMedFuse.device import autocast

    progress = progress or Progress()
    roi = preprocessing.patch_size_zyx
    per_pass = int(np.prod([_windows_per_axis(s, r, overlap) for s, r in zip(array.shape[1:], roi, strict=True)]))
    flips = _mirror_sets(preprocessing.mirror_axes) if mirroring else [()]
    total, done = per_pass * len(flips), 0

    def predictor(patch: torch.Tensor) -> torch.Tensor:
        nonlocal done
        with autocast(device):
            logits = network(patch)
        done += patch.shape[0]
        progress.update(min(done / total, 1.0), "segmenting", f"window {min(done, total)}/{total}")
        return logits.float()

    x = torch.from_numpy(np.ascontiguousarray(array))[None].to(device.torch_device())
    summed = None
    with torch.inference_mode():
        for dims in flips:
            view = torch.flip(x, dims) if dims else x
            logits = sliding_window_inference(view, roi, WINDOWS_PER_BATCH, predictor, overlap=overlap, mode="gaussian")
            probabilities = torch.softmax(logits, dim=1)
            probabilities = torch.flip(probabilities, dims) if dims else probabilities
            summed = probabilities if summed is None else summed + probabilities
    assert summed is not None
    return (summed[0] / len(flips)).float().cpu().numpy()


def _check_memory(ct: sitk.Image, grid_voxels: int, channels: int, classes: int) -> None:
    """Raise ResourceError when the job clearly needs more memory than is free (Linux; skipped elsewhere)."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    input_voxels = int(np.prod(ct.GetSize()))
    # probabilities on the input grid (vector image + numpy copy + argmax), network-grid tensors
    needed = input_voxels * (classes * 4 * 2 + 8) + grid_voxels * (channels + 3 * classes) * 4
    if needed > free:
        raise ResourceError(
            f"This CT ({'x'.join(map(str, ct.GetSize()))} voxels) needs about {needed / 2**30:.1f} GB of memory but only "
            f"{free / 2**30:.1f} GB are free; crop the CT to the head or close other programs."
        )


def _resolve_model(model: str | os.PathLike[str], task_spec: TaskSpec) -> tuple[Path, BundleManifest]:
    from SlicerMedFuse.models.bundle import check_bundle_for_task, load_manifest
    from SlicerMedFuse.models.store import ModelStore

    folder = ModelStore().resolve(os.fspath(model))
    manifest = load_manifest(folder)
    check_bundle_for_task(manifest, task_spec)
    return folder, manifest


def segment_hemorrhage(
    ct: sitk.Image,
    model: str | os.PathLike[str],
    *,
    task_spec: TaskSpec,
    device: DeviceConfig,
    progress: Progress | None = None,
    mirroring: bool = False,
    overlap: float = 0.5,
    min_component_ml: float = 0.05,
    model_postprocessing: bool = True,
) -> HemorrhageSegmentation:
    """Segment the five BHSD hemorrhage classes in a head CT.

    Args:
        ct: Head CT in HU (checked by the task before).
        model: Bundle id (installed, ``id@version`` allowed) or bundle folder.
        task_spec: The ``hemorrhage`` task's declaration (:data:`SlicerMedFuse.specs.hemorrhage.SPEC`),
            which the bundle must fit (task, input roles, modalities).
        device: Resolved compute device.
        progress: Progress reporting and cancellation.
        mirroring: Test-time mirroring (the model's mirror axes; left-right for the shipped models).
        overlap: Sliding-window overlap.
        min_component_ml: Per-class components smaller than this are removed (mL).
        model_postprocessing: Also apply the bundle's per-class minimum volumes (the larger value wins).

    Returns:
        A :class:`HemorrhageSegmentation` whose labels lie on ``ct``'s grid.

    Raises:
        ModelError: Missing, corrupt or unsuitable bundle.
        ResourceError: Not enough memory.
    """
    from SlicerMedFuse.models.bundle import load_bundle

    progress = progress or Progress()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    started = time.perf_counter()
    progress.update(0.0, "loading model")
    folder, manifest = _resolve_model(model, task_spec)
    preprocessing = HemorrhagePreprocessing.from_dict(manifest.preprocessing, f"model '{manifest.name}'")
    loaded = load_bundle(folder, device=device.torch_device())
    timings["load_model"] = time.perf_counter() - started
    if manifest.simulated_training:
        warnings.append(f"Model '{manifest.name}' was {SIMULATED_DATA_NOTE}.")
    acquisition = measure_acquisition(ct)
    checked = check_acquisition(acquisition, TrainingAcquisition.from_dict(manifest.training_acquisition))
    progress.log(f"Acquisition: {acquisition.summary()}; {checked.statement}.")
    acquisition_note = acquisition_warning(acquisition, checked)
    if acquisition_note is not None:  # also covers thick slices: one sentence, not two
        warnings.append(acquisition_note)
    for sentence in warnings:
        progress.log(sentence, level="warning")

    stage = time.perf_counter()
    progress.update(0.05, "preprocessing")
    prepared = prepare_ct(ct, preprocessing)
    classes = int(manifest.architecture_args.get("out_channels", len(manifest.labels) + 1))
    _check_memory(ct, int(np.prod(prepared.array.shape[1:])), preprocessing.channels, classes)
    timings["preprocess"] = time.perf_counter() - stage

    stage = time.perf_counter()
    probabilities = predict_probabilities(
        loaded.network,
        prepared.array,
        preprocessing,
        device,
        overlap=overlap,
        mirroring=mirroring,
        progress=progress.span(0.1, 0.85),
    )
    timings["network"] = time.perf_counter() - stage

    stage = time.perf_counter()
    progress.update(0.86, "resampling to the input grid")
    vector = sitk.GetImageFromArray(np.moveaxis(probabilities, 0, -1), isVector=True)
    del probabilities
    vector.CopyInformation(prepared.grid)
    on_input = resample_to_reference(vector, ct, interpolation="linear", default_value=0.0)
    del vector
    argmax = np.argmax(sitk.GetArrayViewFromImage(on_input), axis=-1).astype(np.uint8)
    del on_input
    labels = sitk.GetImageFromArray(argmax)
    labels.CopyInformation(ct)
    timings["resample"] = time.perf_counter() - stage

    stage = time.perf_counter()
    progress.update(0.93, "post-processing")
    tuned = manifest.postprocessing.get("min_component_ml") if model_postprocessing else None
    thresholds = resolve_min_volumes(min_component_ml, tuned)
    labels, removed = remove_small_components(labels, thresholds)
    measurements = measure_classes(labels)
    timings["postprocess"] = time.perf_counter() - stage
    if measurements["EDH"].volume_ml > 0:
        warnings.append(_EDH_WARNING)
        progress.log(_EDH_WARNING, level="warning")
    timings["segment_total"] = time.perf_counter() - started
    progress.update(1.0, "segmented")
    grid = {"size_xyz": list(prepared.grid.GetSize()), "spacing_mm": [round(s, 4) for s in prepared.grid.GetSpacing()]}
    return HemorrhageSegmentation(
        labels, measurements, removed, thresholds, manifest, grid, timings, tuple(warnings), acquisition, checked
    )
