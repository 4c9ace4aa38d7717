"""What the ALN-metastasis network sees: a lesion-centred cube per sequence and ten normalised clinical values.

One :class:`AlnPreprocessing` is stored in every ``aln-metastasis`` bundle (manifest
``preprocessing``) and used, unchanged, by training and inference.

* **Sequences**, one network path each, in order: ``dce`` (a post-contrast T1 / one DCE phase,
  required) then ``t2w`` (optional). A missing optional sequence's path sees **zeros** (the value
  of a normalised image's mean); the demo model is trained with that sequence dropped at random
  so it copes (the paper does not treat missing sequences).
* **Crop**: a cube of ``crop_voxels`` voxels of ``spacing_mm`` (isotropic), axes along the DCE's
  direction, centred on the centroid of the ``mass`` label (any grid, physical space), or on the
  centre of the DCE volume when no label is given (the DCE is then assumed to be a lesion-centred
  crop, as the paper's 3D inputs are). Each sequence is resampled onto it (linear; outside the
  image: 0). The paper gives neither its input size nor its crop (NS); the demo uses 32 voxels of
  2 mm (64 mm), the smallest input BasicNet's five stride-2 blocks accept.
* **Intensities**: per crop and sequence, clip to the 0.5 / 99.5 percentiles and z-score (the
  breast-mass recipe, :func:`~SlicerMedFuse.breast.model_input.normalize_volume`; the paper: NS).
* **Clinical values**: :class:`~SlicerMedFuse.breast.aln_clinical.ClinicalNormalization`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.aln_clinical import ClinicalNormalization
from SlicerMedFuse.breast.model_input import CLIP_PERCENTILES, normalize_volume
from SlicerMedFuse.errors import InputError, ModelError

__all__ = ["SEQUENCES", "AlnPreprocessing", "LesionCrop", "crop_sequences", "lesion_crop"]

#: Sequence roles a bundle may use, in the only allowed path order (DCE first, required).
SEQUENCES = ("dce", "t2w")


@dataclasses.dataclass(frozen=True)
class AlnPreprocessing:
    """Input settings of an ALN-metastasis network (stored in the bundle manifest).

    Attributes:
        sequences: Path order of the sequence roles, ``"dce"`` first (see :data:`SEQUENCES`).
        crop_voxels: Side of the cube each path sees (at least 32 for BasicNet).
        spacing_mm: Isotropic voxel size of the cube.
        clinical: Normalisation of the ten clinical values (empty: image-only network).
        threshold: Probability at or above which the result is called positive.
    """

    sequences: tuple[str, ...] = ("dce", "t2w")
    crop_voxels: int = 32
    spacing_mm: float = 2.0
    clinical: ClinicalNormalization = dataclasses.field(default_factory=ClinicalNormalization.none)
    threshold: float = 0.5

    def __post_init__(self) -> None:
        sequences = tuple(self.sequences)
        if not sequences or sequences[0] != "dce" or list(sequences) != [s for s in SEQUENCES if s in sequences]:
            raise ModelError(f"ALN sequences must be 'dce' then optionally 't2w'; got {list(sequences)}.")
        if self.crop_voxels < 32:
            raise ModelError(f"The ALN crop must be at least 32 voxels wide; got {self.crop_voxels}.")
        if not self.spacing_mm > 0 or not 0.0 < self.threshold < 1.0:
            raise ModelError(
                f"ALN spacing must be > 0 and threshold in (0, 1); got {self.spacing_mm}, {self.threshold}."
            )

    @property
    def crop_mm(self) -> float:
        return self.crop_voxels * self.spacing_mm

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "aln-metastasis",
            "sequences": list(self.sequences),
            "missing_sequence": "zeros: an absent optional sequence's path gets zeros (trained with sequence dropout)",
            "crop_voxels": self.crop_voxels,
            "spacing_mm": self.spacing_mm,
            "crop_centre": "centroid of the 'mass' label, else the centre of the DCE volume",
            "normalization": {"clip_percentiles": list(CLIP_PERCENTILES), "then": "z-score per crop and sequence"},
            "clinical": self.clinical.to_dict(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the bundle") -> AlnPreprocessing:
        """Read the manifest's ``preprocessing`` (ModelError naming ``source`` when unusable)."""
        if data.get("kind") != "aln-metastasis":
            raise ModelError(f"{source} has no aln-metastasis preprocessing; it is not an ALN-metastasis model.")
        try:
            return cls(
                sequences=tuple(str(s) for s in data["sequences"]),
                crop_voxels=int(data["crop_voxels"]),
                spacing_mm=float(data["spacing_mm"]),
                clinical=ClinicalNormalization.from_dict(data["clinical"]),
                threshold=float(data.get("threshold", 0.5)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"{source} has unusable aln-metastasis preprocessing ({error}).") from None


@dataclasses.dataclass(frozen=True)
class LesionCrop:
    """Where the cube sits: its centre (LPS mm) and how it was found (for the report)."""

    centre_mm: tuple[float, float, float]
    source: str


def _inside(image: sitk.Image, point: Sequence[float]) -> bool:
    index = np.asarray(image.TransformPhysicalPointToContinuousIndex([float(p) for p in point]))
    return bool(np.all(index >= -0.5) and np.all(index <= np.asarray(image.GetSize()) - 0.5))


def lesion_crop(dce: sitk.Image, mass: sitk.Image | None) -> LesionCrop:
    """The cube's centre: the ``mass`` label's centroid (physical space), else the DCE volume's centre.

    Raises:
        InputError: the label marks nothing, or its centroid lies outside the DCE volume.
    """
    if mass is None:
        centre = dce.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in dce.GetSize()])
        return LesionCrop(
            tuple(float(c) for c in centre),  # type: ignore[arg-type]
            "centre of the DCE volume (no 'mass' label was given; the DCE is assumed to be centred on the lesion)",
        )
    binary = sitk.Cast(sitk.GetImageFromArray((sitk.GetArrayViewFromImage(mass) > 0).astype(np.uint8)), sitk.sitkUInt8)
    binary.CopyInformation(mass)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(binary)
    if not shape.HasLabel(1):
        raise InputError("Input 'mass' marks no voxel (all zero); give a label map of the lesion or leave 'mass' out.")
    centre = shape.GetCentroid(1)
    if not _inside(dce, centre):
        where = ", ".join(f"{c:.1f}" for c in centre)
        raise InputError(
            f"The 'mass' label's centre ({where} mm, LPS) lies outside the DCE volume; give the lesion label drawn "
            "on this study (or leave 'mass' out)."
        )
    return LesionCrop(tuple(float(c) for c in centre), "centroid of the 'mass' label")  # type: ignore[arg-type]


def _cube(reference: sitk.Image, centre: Sequence[float], voxels: int, spacing: float) -> sitk.Image:
    """An empty cube grid of ``voxels`` at ``spacing`` mm along ``reference``'s axes, centred on ``centre``."""
    direction = np.asarray(reference.GetDirection(), dtype=np.float64).reshape(3, 3)
    half = (voxels - 1) / 2.0 * spacing
    origin = np.asarray(centre, dtype=np.float64) - direction @ np.full(3, half)
    grid = sitk.Image([voxels] * 3, sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin([float(o) for o in origin])
    return grid


def crop_sequences(
    images: Mapping[str, sitk.Image], crop: LesionCrop, preprocessing: AlnPreprocessing, margin: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The network's image input for one case.

    Args:
        images: 3D images by role (``dce`` required, ``t2w`` optional), on any grids.
        crop: Where the cube sits (:func:`lesion_crop`).
        preprocessing: The bundle's settings.
        margin: Extra voxels on every side (training draws shifted cubes from the wider one).

    Returns:
        ``(cubes, present)``: float32 ``(C, n, n, n)`` with ``n = crop_voxels + 2 * margin``
        (axes z, y, x of the cube), normalised; boolean ``(C,)``. An absent sequence is zeros.
    """
    voxels = preprocessing.crop_voxels + 2 * margin
    grid = _cube(images["dce"], crop.centre_mm, voxels, preprocessing.spacing_mm)
    cubes = np.zeros((len(preprocessing.sequences), voxels, voxels, voxels), dtype=np.float32)
    present = np.zeros(len(preprocessing.sequences), dtype=bool)
    for index, role in enumerate(preprocessing.sequences):
        if images.get(role) is None:
            continue
        source = sitk.Cast(images[role], sitk.sitkFloat32)
        resampled = sitk.Resample(source, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        cubes[index] = normalize_volume(sitk.GetArrayFromImage(resampled))
        present[index] = True
    return cubes, present
