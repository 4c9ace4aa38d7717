"""Write an nnU-Net-layout hemorrhage dataset simulated in one real head CT (BHSD's file layout).

The folder looks like BHSD as distributed, so the real training and evaluation commands read it
unchanged::

    dataset.json                 channel_names {"0": "CT"}, labels, numTraining, file_ending,
                                 plus "simulated": true and the seeds used
    imagesTr/sim_0000_0000.nii.gz, labelsTr/sim_0000.nii.gz   training cases (bleed and no-bleed)
    imagesTs/sim_5000_0000.nii.gz, labelsTs/sim_5000.nii.gz   held-out cases (disjoint seeds)
    unlabelled/sim_9000_0000.nii.gz                           optional, for semi-supervised training

Each bleed case is :func:`~SlicerMedFuse.hemorrhage.simulator.simulate_hemorrhage` with its own
seed; a no-bleed case is the CT itself. Every case then gets its own small random rigid pose
(rotation about the head centre, shift), image linear and labels nearest, so cases differ also in
position as real scans do. Training, test and unlabelled seeds come from disjoint ranges.

With ``acquisitions`` set, every case (bleed and no-bleed alike, so the bleed-free cases are hard
negatives under every variation) is also randomised in anatomy
(:mod:`~SlicerMedFuse.hemorrhage.anatomy_variation`: atrophy, calcifications labelled 0, head
holder; ``scale`` varies head size and shape) before the bleeds are painted, and re-scanned by
:func:`~SlicerMedFuse.hemorrhage.acquisition.simulate_acquisition` with an acquisition drawn from
those ranges (thickness, tilt, pixel size, kernel, dose, beam hardening, calibration, coverage),
the pose applied in the same resampling. ``dataset.json`` records each case's acquisition and
anatomy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.hemorrhage.acquisition import AcquisitionRanges, sample_acquisition, simulate_acquisition
from SlicerMedFuse.hemorrhage.anatomy import analyze_head_ct
from SlicerMedFuse.hemorrhage.anatomy_variation import AnatomyVariation, sample_anatomy_variation, vary_anatomy
from SlicerMedFuse.hemorrhage.labels import BHSD_DATASET_NAMES
from SlicerMedFuse.hemorrhage.simulator import SimulationConfig, simulate_hemorrhage
from SlicerMedFuse.io import write_image, write_json_atomic
from SlicerMedFuse.progress import Progress

__all__ = ["SimulatedDatasetSpec", "write_simulated_dataset"]


#: Seed ranges per split (disjoint): case i of a split uses ``base + i``.
_SEED_BASE = {"train": 0, "test": 5000, "unlabelled": 9000}


@dataclasses.dataclass(frozen=True)
class SimulatedDatasetSpec:
    """How many cases of each kind, and how they vary.

    Attributes:
        bleed_train: Training cases with bleeds.
        no_bleed_train: Training cases without bleeds (empty label maps).
        bleed_test: Held-out cases with bleeds.
        no_bleed_test: Held-out cases without bleeds.
        unlabelled: Cases written without labels (random mix, a quarter without bleeds).
        seed: Offset added to every case seed (a different dataset for another value).
        rotation_deg: Largest rotation of the random pose about each axis (degrees).
        shift_mm: Largest shift of the random pose along each axis (mm).
        config: Simulator settings.
        acquisitions: Re-scan every case with an acquisition drawn from these ranges and vary its
            anatomy (None: the CT's own acquisition and anatomy, as before).
        scale: Largest relative change of head size per axis with ``acquisitions`` (0.1: 0.9-1.1).
    """

    bleed_train: int = 60
    no_bleed_train: int = 20
    bleed_test: int = 20
    no_bleed_test: int = 5
    unlabelled: int = 0
    seed: int = 0
    rotation_deg: float = 6.0
    shift_mm: float = 6.0
    config: SimulationConfig = dataclasses.field(default_factory=SimulationConfig)
    acquisitions: AcquisitionRanges | None = None
    scale: float = 0.1

    def __post_init__(self) -> None:
        counts = (self.bleed_train, self.no_bleed_train, self.bleed_test, self.no_bleed_test, self.unlabelled)
        if min(counts) < 0 or self.bleed_train + self.no_bleed_train < 1:
            raise UsageError("Case counts must be >= 0 with at least one training case.")
        if max(self.bleed_train + self.no_bleed_train, self.bleed_test + self.no_bleed_test, self.unlabelled) > 4000:
            raise UsageError("At most 4000 cases per split (the seed ranges of the splits must stay disjoint).")
        if self.rotation_deg < 0 or self.shift_mm < 0:
            raise UsageError("rotation_deg and shift_mm must be >= 0.")


def _random_pose(ct: sitk.Image, rng: np.random.Generator, rotation_deg: float, shift_mm: float) -> sitk.Transform:
    center = ct.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in ct.GetSize()])
    angles = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, 3))
    shift = rng.uniform(-shift_mm, shift_mm, 3)
    return sitk.Euler3DTransform(center, *[float(a) for a in angles], [float(s) for s in shift])


def _scaled(pose: sitk.Euler3DTransform, rng: np.random.Generator, scale: float) -> sitk.AffineTransform:
    """The pose with a random head size and shape: each axis scaled by 1 +- ``scale`` about the centre.

    The transform maps scanner points to source points, so dividing by the factor enlarges the head.
    """
    factors = 1.0 + rng.uniform(-scale, scale, 3)
    affine = sitk.AffineTransform(3)
    affine.SetCenter(pose.GetCenter())
    matrix = np.asarray(pose.GetMatrix()).reshape(3, 3) @ np.diag(1.0 / factors)
    affine.SetMatrix(tuple(float(x) for x in matrix.ravel()))
    affine.SetTranslation(pose.GetTranslation())
    return affine


def _posed(image: sitk.Image, transform: sitk.Transform, label: bool) -> sitk.Image:
    interpolator = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    default = 0.0 if label else float(np.min(sitk.GetArrayViewFromImage(image)))
    return sitk.Resample(image, image, transform, interpolator, default, image.GetPixelID())


def _case(
    ct: sitk.Image, anatomy: Any, seed: int, bleed: bool, spec: SimulatedDatasetSpec
) -> tuple[sitk.Image, sitk.Image, dict[str, Any]]:
    """One case: its image, labels and record (volumes, and the acquisition and anatomy when varied)."""
    rng = np.random.default_rng(seed)
    varied = np.random.default_rng([seed, 1])  # its own stream: the bleeds of a seed stay those of before
    variation = sample_anatomy_variation(varied) if spec.acquisitions is not None else AnatomyVariation.none()
    source = vary_anatomy(ct, anatomy, variation, varied) if spec.acquisitions is not None else ct
    if bleed:
        case = simulate_hemorrhage(source, None, seed=seed, config=spec.config, anatomy=anatomy)
        image, labels = case.image, case.labels
    else:
        image = source
        labels = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
        labels.CopyInformation(ct)
    pose = _random_pose(ct, rng, spec.rotation_deg, spec.shift_mm)
    if spec.acquisitions is None:
        labels = _posed(labels, pose, label=True)
        return _posed(image, pose, label=False), labels, {"volumes_ml": _volumes_ml(labels)}
    acquisition = sample_acquisition(varied, spec.acquisitions)
    scanned, scanned_labels = simulate_acquisition(
        image, labels, acquisition, varied, _scaled(pose, varied, spec.scale)
    )
    assert scanned_labels is not None
    record = {
        "volumes_ml": _volumes_ml(scanned_labels),
        "acquisition": acquisition.to_dict(),
        "anatomy": variation.to_dict(),
    }
    return scanned, scanned_labels, record


def _volumes_ml(labels: sitk.Image) -> dict[str, float]:
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel(), minlength=6)
    return {
        name: round(float(counts[i + 1]) * voxel_ml, 3) for i, name in enumerate(("EDH", "IPH", "IVH", "SAH", "SDH"))
    }


def write_simulated_dataset(
    ct: sitk.Image | str | Path,
    output: str | Path,
    spec: SimulatedDatasetSpec | None = None,
    *,
    source_name: str = "",
    progress: Progress | None = None,
    resume: bool = False,
) -> Path:
    """Simulate a BHSD-like dataset in a head CT and write it in the nnU-Net raw layout.

    Args:
        ct: The head CT in HU (image or file path); it must show no hemorrhage of its own.
        output: The dataset folder to create (must not exist or be empty).
        spec: Counts, seeds and variation; defaults when None.
        source_name: How ``dataset.json`` names the CT (default: the file name or "in-memory CT").
        progress: Progress reporting (cancellable).
        resume: Keep the cases an interrupted run with the same ``spec`` already wrote (image and
            label files both present) instead of refusing a non-empty folder; every case is a pure
            function of its seed, so the result equals an uninterrupted run.

    Returns:
        The dataset folder.

    Raises:
        UsageError: ``output`` exists and is not empty.
        InputError: The CT shows no head.
    """
    spec = spec or SimulatedDatasetSpec()
    progress = progress or Progress()
    if isinstance(ct, (str, Path)):
        source_name = source_name or Path(ct).name
        ct = sitk.ReadImage(str(ct))
    source_name = source_name or "in-memory CT"
    root = Path(output)
    if root.exists() and any(root.iterdir()) and not resume:
        raise UsageError(f"The dataset folder {root} is not empty; choose a new folder (or resume).")
    progress.update(0.0, "analysing the CT")
    anatomy = analyze_head_ct(ct)
    plan = [("train", True, i) for i in range(spec.bleed_train)]
    plan += [("train", False, spec.bleed_train + i) for i in range(spec.no_bleed_train)]
    plan += [("test", True, i) for i in range(spec.bleed_test)]
    plan += [("test", False, spec.bleed_test + i) for i in range(spec.no_bleed_test)]
    plan += [("unlabelled", i % 4 != 3, i) for i in range(spec.unlabelled)]
    folders = {"train": ("imagesTr", "labelsTr"), "test": ("imagesTs", "labelsTs"), "unlabelled": ("unlabelled", "")}
    for images, labels in folders.values():
        (root / images).mkdir(parents=True, exist_ok=True)
        if labels:
            (root / labels).mkdir(parents=True, exist_ok=True)
    cases: dict[str, list[dict[str, Any]]] = {"train": [], "test": [], "unlabelled": []}
    for n, (split, bleed, index) in enumerate(plan):
        progress.update(0.05 + 0.95 * n / len(plan), f"simulating {split} cases", f"{n + 1}/{len(plan)}")
        seed = spec.seed * 10_000 + _SEED_BASE[split] + index
        case_id = f"sim_{_SEED_BASE[split] + index:04d}"
        images_dir, labels_dir = folders[split]
        image_path = root / images_dir / f"{case_id}_0000.nii.gz"
        label_path = root / labels_dir / f"{case_id}.nii.gz" if labels_dir else None
        record_path = root / "records" / f"{case_id}.json"
        if (
            resume
            and image_path.is_file()
            and label_path is not None
            and label_path.is_file()
            and record_path.is_file()
        ):
            record = json.loads(record_path.read_text(encoding="utf-8"))
        else:
            image, labels, record = _case(ct, anatomy, seed, bleed, spec)
            write_image(image, image_path)
            if label_path is not None:
                write_image(labels, label_path)
            write_json_atomic(record, record_path)
        cases[split].append({"case": case_id, "seed": seed, "bleed": bleed, **record})
    dataset = {
        "name": "MedFuseSimulatedHemorrhage",
        "description": f"Bleeds simulated in one real head CT ({source_name}) by SlicerMedFuse; not real patients.",
        "channel_names": {"0": "CT"},
        "labels": {name: value for value, name in BHSD_DATASET_NAMES.items()},
        "numTraining": len(cases["train"]),
        "numTest": len(cases["test"]),
        "file_ending": ".nii.gz",
        "simulated": True,
        "simulation": {
            "source_ct": source_name,
            "spec": {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("config", "acquisitions")},
            "acquisitions": spec.acquisitions.to_dict() if spec.acquisitions is not None else None,
            "config": {k: v for k, v in dataclasses.asdict(spec.config).items()},
            "cases": cases,
        },
    }
    write_json_atomic(dataset, root / "dataset.json")
    progress.update(1.0, "dataset written")
    return root
