"""The acquisition check: how a head CT was acquired, and whether the model was trained on such scans.

A segmentation network only knows the acquisitions it was trained on. A scan outside them (thick
slices, a gantry tilt, very fine or very coarse pixels) can get false bleeds where partial volume
blurs the skull into the brain, e.g. a rim at the vertex when thick tilted slices cut the skull
tangentially. :func:`measure_acquisition` reads slice spacing, slice thickness, in-plane spacing,
gantry tilt, number of slices and extent from the image; :func:`check_acquisition` compares them with
the bundle's optional manifest field ``training_acquisition`` (:class:`TrainingAcquisition`);
:func:`acquisition_warning` words one sentence for the user when the scan lies outside (or has slices
thicker than :data:`~SlicerMedFuse.hemorrhage.preprocessing.THICK_SLICE_MM`), naming the fix where
there is one.

Torch-free: numpy and SimpleITK only. Geometry is SimpleITK's: index axes (x, y, z), direction
columns in LPS, millimetres.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.hemorrhage.preprocessing import THICK_SLICE_MM

__all__ = [
    "DICOM_GANTRY_TILT",
    "DICOM_SLICE_THICKNESS",
    "TRAINING_ACQUISITION_FIELDS",
    "MeasuredAcquisition",
    "AcquisitionCheck",
    "TrainingAcquisition",
    "acquisition_warning",
    "check_acquisition",
    "measure_acquisition",
]

#: DICOM Gantry/Detector Tilt (degrees) and Slice Thickness (mm), kept in the image's metadata by the DICOM reader.
DICOM_GANTRY_TILT = "0018|1120"
DICOM_SLICE_THICKNESS = "0018|0050"
#: The quantities of the manifest field ``training_acquisition``: name -> what it measures.
TRAINING_ACQUISITION_FIELDS: dict[str, str] = {
    "slice_thickness_mm": "slice thickness (mm)",
    "slice_spacing_mm": "distance between slice centres (mm)",
    "tilt_deg": "gantry tilt (degrees, magnitude)",
    "inplane_mm": "in-plane pixel spacing (mm), both axes",
}
#: Relative slack on a range's ends, so a value printed as the bound (7.5 mm as 7.50001) is inside.
_RANGE_SLACK = 1e-3
#: Tilt below this (degrees) is rounding in the direction cosines, not a tilt.
_TILT_NOISE_DEG = 0.05
_PATIENT_S = 2  # LPS index of the superior axis


@dataclasses.dataclass(frozen=True)
class MeasuredAcquisition:
    """How a CT volume was acquired, as far as its image tells.

    Attributes:
        slices: number of slices along the slice axis.
        slice_axis: index axis (0, 1, 2 = x, y, z) whose direction is closest to patient superior.
        slice_spacing_mm: distance between slice centres along the slice axis (mm).
        slice_thickness_mm: DICOM SliceThickness (0018|0050) when recorded, else the slice spacing (mm).
        thickness_source: ``"dicom"`` (the tag) or ``"spacing"`` (no tag: thickness taken as the spacing).
        inplane_mm: pixel spacing along the two other index axes, in index order (mm).
        tilt_deg: gantry tilt magnitude (degrees): the DICOM tag 0018|1120 when present, else the
            angle between the slice normal and the nearest patient axis (a regularised tilted series
            keeps the tilted frame as its direction).
        tilt_source: ``"dicom"`` or ``"direction"``.
        z_extent_mm: length covered along the slice axis, slices x spacing (mm).
    """

    slices: int
    slice_axis: int
    slice_spacing_mm: float
    slice_thickness_mm: float
    thickness_source: str
    inplane_mm: tuple[float, float]
    tilt_deg: float
    tilt_source: str
    z_extent_mm: float

    def summary(self) -> str:
        """One line, e.g. ``28 slices, 7.4 mm thick (4.2 mm apart), tilt 18.5 deg, 0.49 mm in-plane``."""
        thick = f"{self.slice_thickness_mm:.3g} mm thick"
        if not math.isclose(self.slice_thickness_mm, self.slice_spacing_mm, rel_tol=0.01):
            thick += f" ({self.slice_spacing_mm:.3g} mm apart)"
        a, b = self.inplane_mm
        inplane = f"{a:.3g} mm" if math.isclose(a, b, rel_tol=0.01) else f"{a:.3g} x {b:.3g} mm"
        return f"{self.slices} slices, {thick}, tilt {self.tilt_deg:.1f} deg, {inplane} in-plane"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, rounded to what a scanner records, plus ``summary``."""
        return {
            "slices": self.slices,
            "slice_axis": self.slice_axis,
            "slice_spacing_mm": round(self.slice_spacing_mm, 4),
            "slice_thickness_mm": round(self.slice_thickness_mm, 4),
            "thickness_source": self.thickness_source,
            "inplane_mm": [round(s, 4) for s in self.inplane_mm],
            "tilt_deg": round(self.tilt_deg, 2),
            "tilt_source": self.tilt_source,
            "z_extent_mm": round(self.z_extent_mm, 2),
            "summary": self.summary(),
        }


def _tag_number(image: sitk.Image, tag: str) -> float | None:
    """A numeric DICOM tag of the image's metadata (first value of a multi-valued one), None when absent or not a number."""
    if not image.HasMetaDataKey(tag):
        return None
    try:
        value = float(image.GetMetaData(tag).strip().split("\\")[0])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def measure_acquisition(ct: sitk.Image) -> MeasuredAcquisition:
    """Measure a CT's slice spacing, thickness, in-plane spacing, gantry tilt, slices and extent.

    Args:
        ct: a 3D image (any pixel type) with its geometry; DICOM tags 0018|0050 (thickness) and
            0018|1120 (tilt) are read from its metadata when present.

    Returns:
        An :class:`MeasuredAcquisition`.

    Raises:
        InputError: the image is not 3D.
    """
    if ct.GetDimension() != 3:
        raise InputError(
            f"The acquisition check needs a 3D CT; this image is {ct.GetDimension()}D: give the whole series."
        )
    direction = np.asarray(ct.GetDirection(), dtype=np.float64).reshape(3, 3)  # columns: index axes in LPS
    spacing, size = ct.GetSpacing(), ct.GetSize()
    axis = int(np.argmax(np.abs(direction[_PATIENT_S, :])))
    first, second = (index for index in range(3) if index != axis)
    normal = np.cross(direction[:, first], direction[:, second])
    normal /= np.linalg.norm(normal)
    angle = math.degrees(math.acos(min(1.0, float(np.max(np.abs(normal))))))
    tilt, tilt_source = (angle if angle >= _TILT_NOISE_DEG else 0.0), "direction"
    tagged_tilt = _tag_number(ct, DICOM_GANTRY_TILT)
    if tagged_tilt is not None:
        tilt, tilt_source = abs(tagged_tilt), "dicom"
    slice_spacing = float(spacing[axis])
    recorded = _tag_number(ct, DICOM_SLICE_THICKNESS)
    thickness, thickness_source = slice_spacing, "spacing"
    if recorded is not None and recorded > 0:
        thickness, thickness_source = recorded, "dicom"
    return MeasuredAcquisition(
        slices=int(size[axis]),
        slice_axis=axis,
        slice_spacing_mm=slice_spacing,
        slice_thickness_mm=float(thickness),
        thickness_source=thickness_source,
        inplane_mm=(float(spacing[first]), float(spacing[second])),
        tilt_deg=tilt,
        tilt_source=tilt_source,
        z_extent_mm=slice_spacing * int(size[axis]),
    )


@dataclasses.dataclass(frozen=True)
class TrainingAcquisition:
    """The acquisitions a model was trained on: an inclusive ``(low, high)`` range per quantity, None when not stated.

    Read from the bundle manifest's optional top-level field ``training_acquisition``, e.g.
    ``{"slice_thickness_mm": [0.6, 7.5], "slice_spacing_mm": [0.5, 7.5], "tilt_deg": [0, 25],
    "inplane_mm": [0.4, 1.0]}`` (any subset; mm and degrees), and optionally
    ``"untrained_corner": {"tilt_deg": 18, "slice_thickness_mm": 5}``: no training scan was at least
    this tilted AND at least this thick, though each quantity alone lies in its range (the demo
    models keep that corner for their held-out benchmark; it is where a real tilted 7.4 mm scan lies).
    """

    slice_thickness_mm: tuple[float, float] | None = None
    slice_spacing_mm: tuple[float, float] | None = None
    tilt_deg: tuple[float, float] | None = None
    inplane_mm: tuple[float, float] | None = None
    untrained_corner: tuple[float, float] | None = None  # (tilt_deg, slice_thickness_mm)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainingAcquisition | None:
        """The ranges of a manifest's ``training_acquisition`` (validated with the manifest); None when absent."""
        if data is None:
            return None
        corner = data.get("untrained_corner")
        return cls(
            **{key: (float(data[key][0]), float(data[key][1])) for key in TRAINING_ACQUISITION_FIELDS if key in data},
            untrained_corner=(float(corner["tilt_deg"]), float(corner["slice_thickness_mm"])) if corner else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The stated ranges as the manifest writes them."""
        stated: dict[str, Any] = {
            key: list(value) for key in TRAINING_ACQUISITION_FIELDS if (value := getattr(self, key)) is not None
        }
        if self.untrained_corner is not None:
            tilt, thickness = self.untrained_corner
            stated["untrained_corner"] = {"tilt_deg": tilt, "slice_thickness_mm": thickness}
        return stated


@dataclasses.dataclass(frozen=True)
class AcquisitionCheck:
    """A CT's acquisition compared with the model's training acquisitions.

    Attributes:
        within: True inside every stated range, False outside one, None when the model states none.
        outside: one plain sentence per quantity outside its range.
        outside_fields: the quantities outside, as :data:`TRAINING_ACQUISITION_FIELDS` names, in the same order.
        training: the model's stated ranges, None when it states none.
    """

    within: bool | None
    outside: tuple[str, ...]
    outside_fields: tuple[str, ...]
    training: TrainingAcquisition | None

    UNSTATED = "the model does not state the acquisitions it was trained on"

    @property
    def statement(self) -> str:
        """What the check found, as a phrase: the quantities outside, ``within ...``, or :attr:`UNSTATED`."""
        if self.within is None:
            return self.UNSTATED
        if self.within:
            return "within the model's training range"
        return "outside the model's training range (" + "; ".join(self.outside) + ")"

    def to_dict(self) -> dict[str, Any]:
        """``within_training_range``, ``outside``, ``outside_fields``, ``training_range`` (or None), ``statement``."""
        return {
            "within_training_range": self.within,
            "outside": list(self.outside),
            "outside_fields": list(self.outside_fields),
            "training_range": self.training.to_dict() if self.training is not None else None,
            "statement": self.statement,
        }


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    low, high = bounds
    return low * (1 - _RANGE_SLACK) - 1e-9 <= value <= high * (1 + _RANGE_SLACK) + 1e-9


def check_acquisition(acquisition: MeasuredAcquisition, training: TrainingAcquisition | None) -> AcquisitionCheck:
    """Compare an acquisition with the model's training ranges.

    Args:
        acquisition: from :func:`measure_acquisition`.
        training: the bundle's ranges (:meth:`TrainingAcquisition.from_dict` of its manifest field), or None.

    Returns:
        An :class:`AcquisitionCheck`; ``within`` is None when ``training`` is None.
    """
    if training is None:
        return AcquisitionCheck(None, (), (), None)
    acq = acquisition
    pixels = " x ".join(f"{s:.3g}" for s in acq.inplane_mm)
    # field -> (the scan's values, what the scan is, unit of the range)
    measured = {
        "slice_thickness_mm": ((acq.slice_thickness_mm,), f"slices are {acq.slice_thickness_mm:.3g} mm thick", "mm"),
        "slice_spacing_mm": ((acq.slice_spacing_mm,), f"slices are {acq.slice_spacing_mm:.3g} mm apart", "mm"),
        "tilt_deg": ((acq.tilt_deg,), f"the gantry is tilted {acq.tilt_deg:.1f} degrees", "degrees"),
        "inplane_mm": (acq.inplane_mm, f"pixels are {pixels} mm", "mm"),
    }
    outside, fields = [], []
    for field, (values, what, unit) in measured.items():
        bounds = getattr(training, field)
        if bounds is not None and not all(_inside(value, bounds) for value in values):
            outside.append(f"{what}; the model was trained on {bounds[0]:g}-{bounds[1]:g} {unit}")
            fields.append(field)
    if training.untrained_corner is not None:
        tilt, thickness = training.untrained_corner
        if acq.tilt_deg >= tilt and acq.slice_thickness_mm >= thickness:
            outside.append(
                f"the gantry is tilted {acq.tilt_deg:.1f} degrees with {acq.slice_thickness_mm:.3g} mm slices; the model "
                f"saw no scan tilted {tilt:g} degrees or more with slices {thickness:g} mm or thicker"
            )
            fields.append("untrained_corner")
    return AcquisitionCheck(not outside, tuple(outside), tuple(fields), training)


def acquisition_warning(acquisition: MeasuredAcquisition, check: AcquisitionCheck) -> str | None:
    """One sentence for the user when the scan is outside the training range or has thick slices; else None.

    Merges the thick-slice warning (slices thicker or further apart than
    :data:`~SlicerMedFuse.hemorrhage.preprocessing.THICK_SLICE_MM`) with the range check, so a thick
    scan gets one sentence, and names the fix for each cause: thinner slices (a thinner
    reconstruction, or task ``superres``) and, for a tilt, where to look.
    """
    slices = max(acquisition.slice_thickness_mm, acquisition.slice_spacing_mm)
    thick = slices > THICK_SLICE_MM
    if not check.outside and not thick:
        return None
    advice = []
    if thick:
        advice.append("thin bleeds (SAH, SDH) may be missed or under-measured")
    above_range = [
        field
        for field in ("slice_thickness_mm", "slice_spacing_mm")
        if field in check.outside_fields and getattr(acquisition, field) > getattr(check.training, field)[1]
    ]
    if thick or above_range or "untrained_corner" in check.outside_fields:  # finer slices have no such fix
        advice.append(
            "use a thinner reconstruction of the scan if there is one, or compute thinner slices first with the "
            "super-resolution task ('superres')"
        )
    if "tilt_deg" in check.outside_fields or "untrained_corner" in check.outside_fields:
        advice.append(
            "the tilt is corrected on DICOM input, but partial volume of the skull at the vertex remains: "
            "check any subdural segment there against the images"
        )
    if check.outside:
        outside = "; ".join(check.outside)
        lead = f"The CT is outside the acquisitions the model was trained on ({outside}): expect false or missed bleeds"
        return f"{lead}; {'; '.join(advice)}." if advice else f"{lead}; review every segment."
    return f"The CT has {slices:.3g} mm slices (thicker than {THICK_SLICE_MM:.0f} mm): {'; '.join(advice)}."
