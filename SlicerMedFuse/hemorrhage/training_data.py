"""Hemorrhage training data: bleed / no-bleed case selection (BHSD Table 2) and the preprocessed cache.

BHSD's best recipe trains nnU-Net on its 96 bleed scans plus 200 scans without bleeding (Table 2,
"96B + 200NB": mean Dice 35.38, FP 0.84, against 29.44 / 1.41 without them). No-bleed scans come
from cases whose label map is empty and from an optional folder of scans known to be normal
(labels all background). :func:`select_cases` draws the requested numbers reproducibly.

Every selected case is preprocessed once with the task's own
:func:`~SlicerMedFuse.hemorrhage.model_input.prepare_ct` into ``.npy`` files (memory-mapped during
training), keyed by the preprocessing settings, so a resumed or repeated run reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing, prepare_ct, prepare_labels
from SlicerMedFuse.io import read_image
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.distributed import DistributedContext
from SlicerMedFuse.training.nnunet_dataset import DatasetCase
from SlicerMedFuse.training.patch_sampler import CaseArrays, index_foreground

__all__ = [
    "BHSD_NO_BLEED_PER_BLEED",
    "CaseSelection",
    "canonical_spacing",
    "load_cases",
    "median_spacing",
    "select_cases",
]

BHSD_NO_BLEED_PER_BLEED = 200 / 96
"""No-bleed scans per bleed scan in BHSD's best training mix (96 bleed + 200 no-bleed)."""


@dataclasses.dataclass(frozen=True)
class CaseSelection:
    """The training cases chosen: with bleeds, and without (labels all background or absent)."""

    bleed: tuple[DatasetCase, ...]
    no_bleed: tuple[DatasetCase, ...]

    @property
    def cases(self) -> tuple[DatasetCase, ...]:
        return self.bleed + self.no_bleed


def _has_bleed(case: DatasetCase) -> bool:
    if case.label is None:
        return False
    return bool(np.any(sitk.GetArrayFromImage(sitk.ReadImage(str(case.label)))))


def select_cases(
    labelled: Sequence[DatasetCase],
    negatives: Sequence[DatasetCase] = (),
    *,
    bleed_cases: int | None = None,
    no_bleed_cases: int | None = None,
    seed: int = 0,
) -> CaseSelection:
    """Pick the bleed and no-bleed training cases.

    Args:
        labelled: Labelled training cases (label maps read to tell bleed from no-bleed).
        negatives: Extra scans without hemorrhage (no label files).
        bleed_cases: How many bleed cases (None: all).
        no_bleed_cases: How many no-bleed cases (None: ``round(200 / 96 * bleed)`` as BHSD's best
            mix, or all available when fewer).
        seed: Seed of the random draw.

    Raises:
        UsageError: More cases are requested than exist.
        InputError: No bleed case at all.
    """
    rng = np.random.default_rng(seed)
    bleed = [c for c in labelled if _has_bleed(c)]
    no_bleed = [c for c in labelled if c not in bleed] + list(negatives)
    if not bleed:
        raise InputError("No training case has a labelled bleed; check labelsTr (label values 1-5).")
    n_bleed = len(bleed) if bleed_cases is None else bleed_cases
    if n_bleed > len(bleed) or n_bleed < 1:
        raise UsageError(f"--bleed-cases must be between 1 and {len(bleed)} (the bleed cases found); got {n_bleed}.")
    n_none = min(round(BHSD_NO_BLEED_PER_BLEED * n_bleed), len(no_bleed)) if no_bleed_cases is None else no_bleed_cases
    if n_none > len(no_bleed) or n_none < 0:
        raise UsageError(
            f"--no-bleed-cases must be between 0 and {len(no_bleed)} (the no-bleed scans found); got {n_none}."
        )
    pick_bleed = sorted(rng.choice(len(bleed), n_bleed, replace=False).tolist())
    pick_none = sorted(rng.choice(len(no_bleed), n_none, replace=False).tolist()) if n_none else []
    return CaseSelection(tuple(bleed[i] for i in pick_bleed), tuple(no_bleed[i] for i in pick_none))


def canonical_spacing(path: Path, orientation: str = "RAS") -> tuple[float, float, float]:
    """The voxel spacing of an image file along the canonical ``orientation`` axes (header only, mm)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    direction = np.asarray(reader.GetDirection()).reshape(3, 3)
    spacing = reader.GetSpacing()
    world_axis = {"L": 0, "R": 0, "P": 1, "A": 1, "S": 2, "I": 2}
    return tuple(float(spacing[int(np.argmax(np.abs(direction[world_axis[c]])))]) for c in orientation.upper())  # type: ignore[return-value]


def median_spacing(cases: Sequence[DatasetCase], orientation: str = "RAS") -> tuple[float, float, float]:
    """nnU-Net's 3d_fullres target spacing: the median spacing per canonical axis (mm)."""
    spacings = np.asarray([canonical_spacing(c.images[0], orientation) for c in cases])
    return tuple(float(v) for v in np.median(spacings, axis=0))  # type: ignore[return-value]


def _cache_key(preprocessing: HemorrhagePreprocessing) -> str:
    settings = preprocessing.to_dict()
    settings.pop("patch_size_zyx")
    settings.pop("mirror_axes")
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _source_stamp(case: DatasetCase) -> str:
    files = [*case.images, *([case.label] if case.label else [])]
    return ";".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)


def _write_case(case: DatasetCase, preprocessing: HemorrhagePreprocessing, folder: Path) -> None:
    if len(case.images) != 1:
        raise InputError(f"Case '{case.case_id}' has {len(case.images)} channels; the hemorrhage task takes one CT.")
    prepared = prepare_ct(read_image(case.images[0]), preprocessing)
    labels = (
        prepare_labels(read_image(case.label), prepared.grid)
        if case.label is not None
        else np.zeros(prepared.array.shape[1:], np.uint8)
    )
    if labels.max(initial=0) > 5:
        raise InputError(f"Case '{case.case_id}' has label value {int(labels.max())}; BHSD labels are 0-5.")
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{case.case_id}_image.npy", prepared.array)
    np.save(folder / f"{case.case_id}_labels.npy", labels)
    (folder / f"{case.case_id}.json").write_text(json.dumps({"source": _source_stamp(case)}), encoding="utf-8")


def load_cases(
    cases: Sequence[DatasetCase],
    preprocessing: HemorrhagePreprocessing,
    cache_dir: Path,
    *,
    labelled: bool = True,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
) -> list[CaseArrays]:
    """Preprocess (rank 0, once per settings) and load cases as memory-mapped arrays.

    Args:
        cases: The cases (a case without a label file counts as all background when ``labelled``).
        preprocessing: The model's settings.
        cache_dir: Cache root; ``<cache_dir>/<settings hash>/`` holds the arrays.
        labelled: Load labels (False for unlabelled cases of semi-supervised training).
        dist: Process group: rank 0 writes, the others wait and read.
        progress: Progress reporting.

    Returns:
        One :class:`CaseArrays` per case, in order.
    """
    dist = dist or DistributedContext()
    progress = progress or Progress()
    folder = Path(cache_dir) / _cache_key(preprocessing)
    if dist.is_main:
        for n, case in enumerate(cases):
            progress.update(n / max(len(cases), 1), "preprocessing", f"{case.case_id} ({n + 1}/{len(cases)})")
            stamp = folder / f"{case.case_id}.json"
            fresh = stamp.is_file() and json.loads(stamp.read_text("utf-8")).get("source") == _source_stamp(case)
            if not fresh:
                _write_case(case, preprocessing, folder)
    dist.barrier()
    loaded = []
    for case in cases:
        image = np.load(folder / f"{case.case_id}_image.npy", mmap_mode="r")
        labels = np.load(folder / f"{case.case_id}_labels.npy") if labelled else None
        locations = index_foreground(labels) if labels is not None else {}
        loaded.append(CaseArrays(case.case_id, image, labels, locations))
    progress.update(1.0, "preprocessing")
    return loaded
