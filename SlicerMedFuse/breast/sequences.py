"""Checks that each breast-MRI input is what its role says, and DCE phase selection.

* :func:`select_phase`: a multi-phase (DCE) series -- a 4D image, or a 3D image with one value per
  phase in each voxel -- gives the one 3D phase the user chose; without a choice the user is told
  how many phases there are and how to choose (the DCE paper uses the 2nd post-contrast phase).
* :func:`check_mr_role`: an image whose intensities look like a CT in Hounsfield units (a large
  share of voxels far below zero) is refused for an MR role.
* :func:`check_enhancement`: with a pre-contrast image, the T1C must be the brighter one where
  contrast enhances (otherwise the two were swapped or the same phase was given twice).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["check_enhancement", "check_mr_role", "phase_count", "select_phase"]

#: MR magnitude images are non-negative (some scanners store a small negative offset); a CT's air is -1000 HU.
CT_LIKE_VALUE = -200.0
#: Share of voxels below :data:`CT_LIKE_VALUE` that marks an image as a CT.
CT_LIKE_SHARE = 0.05


def phase_count(image: sitk.Image) -> int:
    """Number of phases: the 4th size of a 4D image, the components of a vector image, else 1."""
    if image.GetDimension() == 4:
        return int(image.GetSize()[3])
    return int(image.GetNumberOfComponentsPerPixel())


def select_phase(image: sitk.Image, phase: int | None, role: str, parameter: str = "phase") -> sitk.Image:
    """The 3D phase ``phase`` (0-based) of a multi-phase series; a single-phase image is returned as is.

    Args:
        image: A 3D image, a 4D series or a 3D image with one component per phase.
        phase: The phase to use (None: not chosen).
        role: The input role, named in messages.
        parameter: The task parameter that chooses the phase, named in messages.

    Raises:
        InputError: a multi-phase series without a phase, or a phase out of range.
    """
    count = phase_count(image)
    if count == 1 and image.GetDimension() <= 3:
        return image
    if phase is None:
        raise InputError(
            f"Input '{role}' is a multi-phase series ({count} phases, e.g. a DCE acquisition); choose one with "
            f"--param {parameter}=K (0 to {count - 1}; the DCE paper segments the 2nd post-contrast phase)."
        )
    if not 0 <= phase < count:
        raise InputError(f"Input '{role}' has phases 0 to {count - 1}; --param {parameter}={phase} is not one of them.")
    if image.GetDimension() == 4:
        size = list(image.GetSize())
        return sitk.Extract(image, [*size[:3], 0], [0, 0, 0, int(phase)])
    return sitk.VectorIndexSelectionCast(image, int(phase))


def check_mr_role(image: sitk.Image, role: str, title: str) -> None:
    """InputError when ``image`` looks like a CT (many voxels below -200) rather than the MR ``title``."""
    values = sitk.GetArrayViewFromImage(image).reshape(-1)[::11]
    share = float(np.count_nonzero(values < CT_LIKE_VALUE)) / max(values.size, 1)
    if share > CT_LIKE_SHARE:
        raise InputError(
            f"Input '{role}' looks like a CT in Hounsfield units ({share:.0%} of voxels below {CT_LIKE_VALUE:.0f}, "
            f"minimum {float(values.min()):.0f}), not a breast MRI {title}; give the {title} for this role."
        )


def check_enhancement(t1c: np.ndarray, pre: np.ndarray) -> None:
    """InputError when the aligned pre-contrast is not darker than the T1C where contrast enhances.

    Enhancing tissue makes a bright positive tail in ``t1c - pre`` (99.9th percentile); if the
    negative tail is larger, the two roles were swapped, and if both are nearly zero the same
    phase was given twice.
    """
    difference = (t1c.reshape(-1)[::5] - pre.reshape(-1)[::5]).astype(np.float32)
    scale = float(np.percentile(t1c.reshape(-1)[::5], 99.0)) or 1.0
    positive = float(np.percentile(difference, 99.9))
    negative = float(np.percentile(-difference, 99.9))
    if max(positive, negative) < 0.01 * scale:
        raise InputError(
            "Inputs 't1c' and 'pre' are the same image; give the pre-contrast phase as 'pre' and a post-contrast "
            "phase as 't1c'."
        )
    if negative > 1.5 * positive:
        raise InputError(
            "Input 'pre' is brighter than 't1c' where contrast enhances, so the two look swapped; give the "
            "pre-contrast phase as 'pre' and the post-contrast one as 't1c'."
        )
