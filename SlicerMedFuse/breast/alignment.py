"""Bring T2W / pre-contrast onto the T1C grid and refuse sequences that are not in register.

The breast networks read the sequences voxel by voxel, so they must show the same anatomy at the
same place. Sequences of one session share the scanner's physical space, so an input on another
grid is resampled onto the T1C through physical coordinates (linear interpolation). It is refused
(InputError pointing to the registration task) when

* it covers too little of the T1C's field of view (:func:`~SlicerMedFuse.geometry.physical_overlap`), or
* its content is shifted against the T1C by more than a tolerance: :func:`estimate_shift`
  cross-correlates the gradient magnitudes of both images (edges are shared across contrasts:
  skin, breast outline, chest wall) on a coarse grid and finds the best translation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import physical_overlap, same_grid
from SlicerMedFuse.geometry.resample import resample_to_reference

__all__ = ["MIN_OVERLAP", "AlignedSequence", "align_to_master", "estimate_shift", "registration_hint"]

#: Least share of the T1C's bounding box another sequence must cover.
MIN_OVERLAP = 0.5
#: Spacing (mm) of the coarse grid of the shift search.
SEARCH_SPACING_MM = 3.0


def registration_hint(role: str) -> str:
    """The command that aligns ``role`` to the T1C (rigid, through the registration task)."""
    # initialization=none starts from the scanner geometry, which the sequences of one study share;
    # a centre-of-mass start moved an in-register pre-contrast phase of a phantom by 13 mm.
    return (
        f"align it to the T1C first with the registration task, rigid: medfuse run registration --input fixed=T1C "
        f"--input moving={role.upper()} --param preset=multimodal --param linear_stage=rigid --param deformable=false "
        f"--param initialization=none "
        f"--output warped={role}_on_t1c.nii.gz"
    )


@dataclasses.dataclass(frozen=True)
class AlignedSequence:
    """A sequence on the T1C grid and how it got there.

    Attributes:
        array: float32 ``(z, y, x)`` on the T1C grid (0 outside the sequence's own field of view).
        resampled: whether it had to be resampled (it was on another grid).
        shift_mm: the residual shift found against the T1C (LPS x, y, z; mm), or None when not checked.
    """

    array: np.ndarray
    resampled: bool
    shift_mm: tuple[float, float, float] | None


def _coarse(image: sitk.Image, reference: sitk.Image) -> np.ndarray:
    """Gradient magnitude of ``image`` on a ~3 mm version of ``reference``'s grid, standardised."""
    spacing = [max(SEARCH_SPACING_MM, s) for s in reference.GetSpacing()]
    size = [
        max(4, int(round(n * s / c)))
        for n, s, c in zip(reference.GetSize(), reference.GetSpacing(), spacing, strict=True)
    ]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing(spacing)
    grid.SetDirection(reference.GetDirection())
    grid.SetOrigin(reference.GetOrigin())
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), [c / 2.0 for c in spacing])
    inside = sitk.Resample(
        sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0
    )
    inside.CopyInformation(grid)
    coarse = sitk.Resample(smooth, grid, sitk.Transform(), sitk.sitkLinear, 0.0)
    gradient = sitk.GetArrayFromImage(sitk.GradientMagnitude(coarse))
    # Ignore the border of the image's own field of view: resampling makes a false edge there.
    valid = sitk.GetArrayFromImage(sitk.BinaryErode(inside, [1, 1, 1])) > 0
    gradient = np.where(valid, gradient, 0.0).astype(np.float32)
    values = gradient[valid] if valid.any() else gradient
    return np.where(valid, (gradient - values.mean()) / max(float(values.std()), 1e-6), 0.0).astype(np.float32)


def estimate_shift(fixed: sitk.Image, moving: sitk.Image, max_shift_mm: float = 30.0) -> tuple[float, float, float]:
    """Translation (LPS x, y, z; mm) that best aligns ``moving``'s edges with ``fixed``'s.

    Both images are compared on a ~3 mm version of ``fixed``'s grid by FFT cross-correlation of
    their standardised gradient magnitudes, searched within ``max_shift_mm`` and refined to a
    fraction of a coarse voxel by a parabola through the peak. A positive value means the anatomy
    in ``moving`` lies at larger coordinates than in ``fixed``.
    """
    a, b = _coarse(fixed, fixed), _coarse(moving, fixed)
    shape = [2 * n for n in a.shape]  # zero padding: no wrap-around
    spectrum = np.fft.rfftn(b, shape, axes=(0, 1, 2)) * np.conj(np.fft.rfftn(a, shape, axes=(0, 1, 2)))
    correlation = np.fft.irfftn(spectrum, shape, axes=(0, 1, 2))
    spacing_zyx = np.array([max(SEARCH_SPACING_MM, s) for s in fixed.GetSpacing()][::-1])
    lags = [np.fft.fftfreq(n, 1.0 / n) for n in shape]  # signed lag of each index
    grids = np.meshgrid(*lags, indexing="ij", sparse=True)
    distance = np.sqrt(sum((g * s) ** 2 for g, s in zip(grids, spacing_zyx, strict=True)))
    correlation = np.where(distance <= max_shift_mm, correlation, -np.inf)
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift_zyx = []
    for axis, index in enumerate(peak):
        lag = lags[axis][index]
        around = [tuple((index + d) % shape[axis] if k == axis else peak[k] for k in range(3)) for d in (-1, 0, 1)]
        left, centre, right = (correlation[p] for p in around)
        curvature = left - 2 * centre + right
        offset = 0.5 * (left - right) / curvature if np.isfinite(curvature) and curvature < 0 else 0.0
        shift_zyx.append((lag + float(np.clip(offset, -0.5, 0.5))) * spacing_zyx[axis])
    direction = np.asarray(fixed.GetDirection(), dtype=float).reshape(3, 3)
    return tuple(float(v) for v in direction @ np.array(shift_zyx[::-1]))  # type: ignore[return-value]


def align_to_master(
    image: sitk.Image, t1c: sitk.Image, role: str, *, max_shift_mm: float = 6.0, check: bool = True
) -> AlignedSequence:
    """``image`` (role ``t2w`` or ``pre``) on the T1C grid, or InputError when it is not in register.

    Args:
        image: The sequence.
        t1c: The master sequence (its grid is the output grid).
        role: Role name for messages.
        max_shift_mm: Largest tolerated residual shift against the T1C (mm); 0 disables the check.
        check: Run the shift check (it needs a few hundred milliseconds on a full study).

    Raises:
        InputError: too little overlap or a shift above ``max_shift_mm``; the message names the
            registration task's rigid alignment.
    """
    resampled = not same_grid(image, t1c)
    if resampled:
        overlap = physical_overlap(image, t1c)
        if overlap < MIN_OVERLAP:
            raise InputError(
                f"Input '{role}' shares only {overlap:.0%} of its field of view with the T1C, so the sequences are not "
                f"in register; {registration_hint(role)}."
            )
        image = resample_to_reference(image, t1c, interpolation="linear", default_value=0.0)
    shift = None
    if check and max_shift_mm > 0:
        shift = estimate_shift(t1c, image, max_shift_mm=max(30.0, 3 * max_shift_mm))
        magnitude = float(np.linalg.norm(shift))
        if magnitude > max_shift_mm:
            raise InputError(
                f"Input '{role}' is not in register with the T1C: its anatomy is shifted by about {magnitude:.0f} mm "
                f"(x {shift[0]:+.0f}, y {shift[1]:+.0f}, z {shift[2]:+.0f}); {registration_hint(role)}."
            )
    return AlignedSequence(sitk.GetArrayFromImage(image).astype(np.float32), resampled, shift)
