"""Choose a hemorrhage bundle's per-class minimum component volumes on labelled validation cases.

nnU-Net v2 decides its post-processing after training, on the cross-validation predictions, and
stores the decision beside the weights; inference then repeats it. This module does the same for a
hemorrhage bundle:

1. :func:`predict_validation_cases` segments every labelled case of an nnU-Net raw dataset's test
   split (``imagesTs`` + ``labelsTs``; cases the model never trained on) with no component filter,
   writing the label maps to a folder (existing ones are reused, so an interrupted run resumes);
2. :func:`~SlicerMedFuse.hemorrhage.postprocessing.choose_min_component_volumes` picks the
   threshold per class;
3. :func:`write_postprocessed_bundle` copies the bundle to a new version whose manifest carries the
   choice (``postprocessing``); the weights are unchanged, so their sha256 stays valid.

Use validation cases that are neither training nor benchmark cases: choosing the thresholds on the
benchmark's held-out cases would flatter it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage.postprocessing import MIN_VOLUME_CANDIDATES_ML, choose_min_component_volumes
from SlicerMedFuse.io.atomic import write_json_atomic
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import MANIFEST_FILE
from SlicerMedFuse.progress import Progress

__all__ = ["predict_validation_cases", "tune_min_component_volumes", "write_postprocessed_bundle"]


def _labelled_test_cases(dataset: Path) -> list[tuple[str, Path, Path]]:
    from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset

    cases = [(c.case_id, c.images[0], c.label) for c in read_nnunet_dataset(dataset).test if c.label is not None]
    if not cases:
        raise InputError(f"{dataset} has no labelled test cases; give a dataset with imagesTs and labelsTs.")
    return cases  # type: ignore[return-value]


def predict_validation_cases(
    model: str | os.PathLike[str],
    dataset: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    task_spec: TaskSpec,
    device: Any,
    overlap: float = 0.5,
    progress: Progress | None = None,
) -> list[tuple[str, Path, Path]]:
    """Segment the dataset's labelled test cases without any component filter (resumable).

    Args:
        model: Bundle folder or id.
        task_spec: The ``hemorrhage`` task's declaration, which the bundle must fit.
        dataset: nnU-Net raw dataset folder with ``imagesTs`` and ``labelsTs``.
        output: Folder for ``<case>.nii.gz`` predictions (kept; reused when present).
        device: Resolved :class:`~SlicerMedFuse.device.DeviceConfig`.
        overlap: Sliding-window overlap (as the task will run).
        progress: Progress reporting.

    Returns:
        ``(case id, prediction path, label path)`` per case.
    """
    from SlicerMedFuse.hemorrhage.inference import segment_hemorrhage
    from SlicerMedFuse.io.atomic import atomic_path

    progress = progress or Progress()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    cases = _labelled_test_cases(Path(dataset))
    done = []
    for index, (case_id, image, label) in enumerate(cases):
        target = output / f"{case_id}.nii.gz"
        if not target.is_file():
            result = segment_hemorrhage(
                sitk.ReadImage(str(image)), model, task_spec=task_spec, device=device, overlap=overlap,
                min_component_ml=0.0, model_postprocessing=False,
            )  # fmt: skip
            with atomic_path(target) as staged:
                sitk.WriteImage(result.labels, str(staged), True)
        done.append((case_id, target, label))
        progress.update((index + 1) / len(cases), f"validation case {case_id}")
    return done


def tune_min_component_volumes(
    predictions: list[tuple[str, Path, Path]], candidates_ml: tuple[float, ...] = MIN_VOLUME_CANDIDATES_ML
) -> dict[str, Any]:
    """The per-class choice on unfiltered predictions, with the validation cases' ids recorded."""
    pairs = ((sitk.ReadImage(str(p)), sitk.ReadImage(str(t))) for _, p, t in predictions)
    choice = choose_min_component_volumes(pairs, candidates_ml)
    choice["validation_cases"] = [case_id for case_id, _, _ in predictions]
    return choice


def write_postprocessed_bundle(
    bundle: str | os.PathLike[str], version: str, choice: dict[str, Any], note: str = ""
) -> Path:
    """Copy ``bundle`` to a sibling ``<id>-<version>`` whose manifest holds the post-processing choice.

    Args:
        bundle: Source bundle folder (left unchanged).
        version: Version of the new bundle (must differ from the source's).
        choice: :func:`tune_min_component_volumes`'s result.
        note: How the validation cases were made (recorded in the manifest).

    Returns:
        The new bundle folder.

    Raises:
        UsageError: Same version, or the target folder exists.
    """
    source = Path(bundle)
    manifest = load_manifest(source).to_dict()
    if version == manifest["version"]:
        raise UsageError(f"Give the post-processed bundle a new version (the source is {version}).")
    target = source.parent / f"{manifest['id']}-{version}"
    if target.exists():
        raise UsageError(f"{target} exists; remove it or choose another version.")
    manifest["version"] = version
    manifest["postprocessing"] = {
        "min_component_ml": choice["min_component_ml"],
        "chosen_by": "per class, the smallest threshold with the best mean Dice over the validation cases "
        "(a case without the class: 1 if nothing is predicted, else 0); predictions made without a filter",
        "validation": {"cases": choice["validation_cases"], "note": note},
        "mean_dice": choice["mean_dice"],
    }
    staging = source.parent / f".{target.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    write_json_atomic(manifest, staging / MANIFEST_FILE)
    load_manifest(staging)  # the new manifest must validate before it is published
    staging.rename(target)
    return target
