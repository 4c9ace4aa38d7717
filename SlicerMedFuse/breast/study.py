"""One breast MRI study's sequences as arrays on the T1C grid, checked for role and register.

:func:`prepare_study` is the single entry from task inputs (SimpleITK images by role ``t1c``,
``t2w``, ``pre``) to what the network code consumes. Checks, each an InputError naming the fix:
a missing T1C, a CT given for an MR role, a sequence not in register with the T1C (pointing to the
registration task), and a pre-contrast image that is not the darker phase.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.alignment import align_to_master
from SlicerMedFuse.breast.sequences import check_enhancement, check_mr_role
from SlicerMedFuse.errors import InputError

__all__ = ["ROLE_TITLES", "BreastStudy", "check_roles", "prepare_study"]

#: Role -> what the user must give.
ROLE_TITLES = {
    "t1c": "contrast-enhanced T1 (T1C, post-contrast)",
    "t2w": "T2-weighted (T2W)",
    "pre": "pre-contrast T1",
}


@dataclasses.dataclass
class BreastStudy:
    """The sequences of one study on the T1C grid.

    Attributes:
        reference: The T1C image (its grid is every output's grid).
        arrays: float32 ``(z, y, x)`` arrays by role; absent roles are missing.
        notes: What was done to the inputs (resampling, measured residual shifts), for the report.
    """

    reference: sitk.Image
    arrays: dict[str, np.ndarray]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def present(self) -> dict[str, bool]:
        return {role: role in self.arrays for role in ROLE_TITLES}


def check_roles(images: Mapping[str, sitk.Image]) -> None:
    """InputError when the T1C is missing or an input looks like a CT rather than its MR role."""
    if "t1c" not in images:
        raise InputError(
            "The breast-mass task needs the contrast-enhanced T1 (T1C) as its master sequence; give it as "
            "--input t1c=PATH (T2W and pre-contrast are optional)."
        )
    for role, image in images.items():
        check_mr_role(image, role, ROLE_TITLES.get(role, role))


def prepare_study(
    images: Mapping[str, sitk.Image], *, max_shift_mm: float = 6.0, check_alignment: bool = True
) -> BreastStudy:
    """Check the inputs and bring T2W / pre-contrast onto the T1C grid.

    Args:
        images: 3D images by role (``t1c`` required).
        max_shift_mm: Largest tolerated residual shift of a sequence against the T1C (0: no check).
        check_alignment: Run the shift check on sequences already on the T1C grid as well.

    Raises:
        InputError: see the module docstring.
    """
    check_roles(images)
    reference = images["t1c"]
    study = BreastStudy(reference, {"t1c": sitk.GetArrayFromImage(reference).astype(np.float32)})
    for role in ("t2w", "pre"):
        if role not in images:
            continue
        aligned = align_to_master(images[role], reference, role, max_shift_mm=max_shift_mm, check=check_alignment)
        study.arrays[role] = aligned.array
        if aligned.resampled:
            study.notes.append(f"{role} resampled onto the T1C grid (linear, physical space)")
        if aligned.shift_mm is not None:
            study.notes.append(
                f"{role} residual shift against the T1C: {np.linalg.norm(aligned.shift_mm):.1f} mm (tolerance {max_shift_mm:g} mm)"
            )
    if "pre" in study.arrays:
        check_enhancement(study.arrays["t1c"], study.arrays["pre"])
    return study
