"""Breast-mass segmentation of a prepared study with a breast-mass bundle: slice-wise 2D or 3D.

Pipeline (:func:`segment_breast_mass`):

1. resolve and check the bundle (task ``breast-mass``; its manifest's :class:`BreastPreprocessing`);
2. stack the network channels (T1C, then T2W / subtraction as the bundle has them), each
   normalised per volume; a sequence the study lacks is zeros with ``False`` in the **presence
   mask**, so the network ignores its stream (trained for that with modality dropout);
3. **2D** (the paper): every slice of the T1C grid (its third voxel axis) is resized to the
   bundle's in-plane size, segmented in batches and the probability resized back; **3D**: the
   stack is resampled to the bundle spacing, segmented with MONAI's sliding window and resampled
   back;
4. ``probability >= threshold`` is the "Mass" label (uint8 on the T1C grid); optionally the
   master stream's spatial-attention maps of the five encoder blocks (the paper's Fig. 5) come
   back as float volumes on the same grid.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.model_input import BreastPreprocessing, resize_slices, stack_channels
from SlicerMedFuse.breast.provenance import PHANTOM_DATA_NOTE
from SlicerMedFuse.breast.study import BreastStudy
from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.progress import Progress

if TYPE_CHECKING:
    from SlicerMedFuse.contract import TaskSpec
    from SlicerMedFuse.device import DeviceConfig
    from SlicerMedFuse.models.manifest import BundleManifest

__all__ = ["BreastMassSegmentation", "segment_breast_mass"]

#: Slices per network call in 2D (memory stays under ~0.5 GB for the Table-1 sized networks at 256 x 256).
SLICE_BATCH = 8


@dataclasses.dataclass
class BreastMassSegmentation:
    """What :func:`segment_breast_mass` returns.

    Attributes:
        mask: uint8 label map on the T1C grid (1 = Mass).
        attention: Attention volumes by output role (``attention_1`` .. ``attention_5``), when asked.
        presence: Which network channels the study had.
        manifest: The bundle's manifest.
        timings: Seconds per stage.
        warnings: Sentences for the user.
    """

    mask: sitk.Image
    attention: dict[str, sitk.Image]
    presence: dict[str, bool]
    manifest: BundleManifest
    timings: dict[str, float]
    warnings: tuple[str, ...]

    def report(self) -> dict[str, Any]:
        array = sitk.GetArrayViewFromImage(self.mask)
        voxel_ml = float(np.prod(self.mask.GetSpacing())) / 1000.0
        slices = np.flatnonzero(array.reshape(array.shape[0], -1).any(axis=1))
        return {
            "model": {
                "id": self.manifest.id,
                "version": self.manifest.version,
                "simulated_training": self.manifest.simulated_training,
            },
            "channels_present": self.presence,
            "mass": {
                "volume_ml": round(float(np.count_nonzero(array)) * voxel_ml, 3),
                "slices": [int(slices[0]), int(slices[-1])] if slices.size else [],
            },
            "warnings": list(self.warnings),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }


def _resolve_model(model: str | os.PathLike[str], task_spec: TaskSpec) -> tuple[Path, BundleManifest]:
    from SlicerMedFuse.models.bundle import check_bundle_for_task, load_manifest
    from SlicerMedFuse.models.store import ModelStore

    folder = ModelStore().resolve(os.fspath(model))
    manifest = load_manifest(folder)
    check_bundle_for_task(manifest, task_spec)
    return folder, manifest


def _predict_2d(network: Any, channels: np.ndarray, presence: Any, size: int, keep_attention: bool, progress: Progress):
    """Slice-wise probabilities ``(z, y, x)`` and, when asked, the master SA maps per level."""
    import torch

    depth, height, width = channels.shape[1:]
    probability = np.empty((depth, height, width), dtype=np.float32)
    maps: dict[int, np.ndarray] = {}
    fused = channels.shape[0] > 1
    with torch.inference_mode():
        for start in range(0, depth, SLICE_BATCH):
            progress.update(start / depth, "segmenting slices", f"{start}/{depth}")
            batch = torch.from_numpy(channels[:, start : start + SLICE_BATCH]).permute(1, 0, 2, 3)
            x = resize_slices(batch, (size, size)).contiguous().to(presence.device)
            mask = presence.expand(x.shape[0], -1) if fused else None
            if keep_attention:
                logits, attention = network.forward_with_attention(x, mask)
                for level, level_map in enumerate(attention.get("master", []), start=1):
                    resized = resize_slices(level_map.float().cpu(), (height, width))[:, 0].numpy()
                    maps.setdefault(level, np.empty((depth, height, width), dtype=np.float32))[
                        start : start + len(x)
                    ] = resized
            else:
                logits = network(x, mask) if fused else network(x)
            probability[start : start + len(x)] = resize_slices(torch.sigmoid(logits).cpu(), (height, width))[
                :, 0
            ].numpy()
    return probability, maps


def _predict_3d(network: Any, channels: np.ndarray, presence: Any, reference: sitk.Image, prep: BreastPreprocessing):
    """Sliding-window probabilities on the bundle spacing, resampled back onto ``reference``'s grid."""
    import torch
    from monai.inferers import sliding_window_inference

    from SlicerMedFuse.geometry.resample import resample_to_reference, resample_to_spacing

    vector = sitk.GetImageFromArray(np.moveaxis(channels, 0, -1), isVector=True)
    vector.CopyInformation(reference)
    on_spacing = resample_to_spacing(vector, prep.spacing_mm, interpolation="linear")
    array = np.moveaxis(sitk.GetArrayFromImage(on_spacing), -1, 0)[None]  # (1, C, z, y, x)
    divisor = int(getattr(network, "size_divisor", 16))
    pads = [(0, 0), (0, 0)] + [(0, (-n) % divisor) for n in array.shape[2:]]
    padded = torch.from_numpy(np.pad(array, pads)).float().to(presence.device)
    roi = [min(p, n) for p, n in zip(prep.patch_zyx, padded.shape[2:], strict=True)]
    roi = [max(divisor, r - r % divisor) for r in roi]
    with torch.inference_mode():
        logits = sliding_window_inference(
            padded, roi, 1, lambda x: network(x, presence.expand(x.shape[0], -1)), overlap=0.25, mode="gaussian"
        )
    probability = torch.sigmoid(logits).cpu()[0, 0, : array.shape[2], : array.shape[3], : array.shape[4]].numpy()
    image = sitk.GetImageFromArray(probability.astype(np.float32))
    image.CopyInformation(on_spacing)
    return sitk.GetArrayFromImage(resample_to_reference(image, reference, interpolation="linear", default_value=0.0))


def segment_breast_mass(
    study: BreastStudy,
    model: str | os.PathLike[str],
    *,
    task_spec: TaskSpec,
    device: DeviceConfig,
    progress: Progress | None = None,
    attention_maps: bool = False,
    threshold: float = 0.5,
) -> BreastMassSegmentation:
    """Segment breast masses in a prepared study.

    Args:
        study: The sequences on the T1C grid (:func:`~SlicerMedFuse.breast.study.prepare_study`).
        model: Bundle id (installed) or bundle folder.
        task_spec: The ``breast-mass`` task's declaration (:data:`SlicerMedFuse.specs.breast_mass.SPEC`),
            which the bundle must fit (task, input roles, modalities).
        device: Resolved compute device.
        progress: Progress and cancellation.
        attention_maps: Also return the master spatial-attention maps (2D master/assistant models).
        threshold: Probability at or above which a voxel is Mass.

    Returns:
        A :class:`BreastMassSegmentation` on the T1C grid.

    Raises:
        ModelError: unusable bundle, or attention maps asked of a model without them.
    """
    import torch

    from SlicerMedFuse.models.bundle import load_bundle

    progress = progress or Progress()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    started = time.perf_counter()
    progress.update(0.0, "loading model")
    folder, manifest = _resolve_model(model, task_spec)
    prep = BreastPreprocessing.from_dict(manifest.preprocessing, f"model '{manifest.name}'")
    target = device.torch_device()
    network = load_bundle(folder, device=target).network
    if attention_maps and (prep.spatial_dims != 2 or getattr(network, "attention_mode", "none") != "master"):
        raise ModelError(
            f"Model '{manifest.name}' has no master spatial-attention maps (only 2D master/assistant models do); "
            "choose such a model or run without attention_maps."
        )
    if manifest.simulated_training:
        warnings.append(f"Model '{manifest.name}' was {PHANTOM_DATA_NOTE}; its output is a demonstration only.")
    timings["load_model"] = time.perf_counter() - started

    stage = time.perf_counter()
    progress.update(0.05, "normalising")
    channels, present = stack_channels(study.arrays, prep)
    presence = dict(zip(prep.channels, (bool(p) for p in present), strict=True))
    for channel, available in presence.items():
        if not available:
            warnings.append(
                f"No {channel.upper()} was given: the model runs on the remaining sequences with a presence mask "
                "(expect lower accuracy, more false positives in enhancing tissue)."
            )
    mask_tensor = torch.from_numpy(present)[None].to(target)
    timings["preprocess"] = time.perf_counter() - stage

    stage = time.perf_counter()
    maps: dict[int, np.ndarray] = {}
    if prep.spatial_dims == 2:
        probability, maps = _predict_2d(
            network, channels, mask_tensor, prep.in_plane_size, attention_maps, progress.span(0.1, 0.9)
        )
    else:
        probability = _predict_3d(network, channels, mask_tensor, study.reference, prep)
    del channels
    timings["network"] = time.perf_counter() - stage

    stage = time.perf_counter()
    progress.update(0.92, "writing the label")
    mask = sitk.GetImageFromArray((probability >= threshold).astype(np.uint8))
    mask.CopyInformation(study.reference)
    attention = {}
    for level, array in maps.items():
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(study.reference)
        attention[f"attention_{level}"] = image
    timings["postprocess"] = time.perf_counter() - stage
    timings["segment_total"] = time.perf_counter() - started
    for sentence in warnings:
        progress.log(sentence, level="warning")
    progress.update(1.0, "segmented")
    return BreastMassSegmentation(mask, attention, presence, manifest, timings, tuple(warnings))
