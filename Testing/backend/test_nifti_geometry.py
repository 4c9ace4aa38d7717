"""SlicerMedFuse.io.nifti_geometry on hand-built NIfTI-1 and NIfTI-2 headers of either byte order.

The CLI cases (exit 3, the sentence, inputs unchanged) are in test_hostile_input.py; these check the
geometry itself: the sform and qform affines, the shear and disagreement limits, ITK's placement.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io import read_image
from SlicerMedFuse.io.file_integrity import check_image_file
from SlicerMedFuse.io.nifti_geometry import TOLERANCE_MM, check_itk_placement

from .hostile_inputs import patch_nifti_xforms
from .test_file_integrity import SHAPE, _nifti, _voxels

#: A 30-degree rotation about z with 1 x 1 x 2 mm voxels and an offset, in RAS (the sform's frame).
_ANGLE = math.radians(30.0)
ROTATED = np.array(
    [
        [math.cos(_ANGLE), -math.sin(_ANGLE), 0.0, 5.0],
        [math.sin(_ANGLE), math.cos(_ANGLE), 0.0, -7.0],
        [0.0, 0.0, 2.0, 11.0],
    ]
)


def _write(tmp_path: Path, version: int, order: str, **xforms) -> Path:
    path = tmp_path / f"v{version}.nii"
    raw = _nifti(version, order, _voxels(), pixdim=(1.0, 1.0, 2.0))
    path.write_bytes(patch_nifti_xforms(raw, **xforms))
    return path


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_rotated_sform_is_declared_in_lps_and_itk_reads_it_there(tmp_path: Path, version: int, order: str):
    path = _write(tmp_path, version, order, sform_code=1, srow=ROTATED)
    declared = check_image_file(path, ".nii")
    assert declared is not None
    assert np.allclose(declared[:3], np.diag([-1.0, -1.0, 1.0]) @ ROTATED, atol=1e-6)  # RAS -> LPS
    if version == 1:  # (ITK does not recognise these minimal NIfTI-2 files; the header parse is the point)
        image = read_image(path)  # compared with the declared affine inside: no error
        assert np.allclose(image.GetOrigin(), (-5.0, 7.0, 11.0), atol=1e-5)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_sheared_sform_is_refused_in_nifti_1_and_2(tmp_path: Path, version: int, order: str):
    sheared = ROTATED.copy()
    sheared[0, 2] = 0.2  # x rises 0.2 mm per slice: the slice axis leans
    path = _write(tmp_path, version, order, sform_code=1, srow=sheared)
    with pytest.raises(InputError, match="has a sheared sform"):
        check_image_file(path, ".nii")


def test_shear_below_the_tolerance_is_accepted(tmp_path: Path):
    barely = ROTATED.copy()
    barely[0, 2] = 1e-5  # 1e-5 mm per slice, far below 0.01 mm over the volume
    path = _write(tmp_path, 1, "<", sform_code=1, srow=barely)
    assert check_image_file(path, ".nii") is not None


def test_zero_length_sform_axis_is_refused(tmp_path: Path):
    flat = ROTATED.copy()
    flat[:, 2] = 0.0
    path = _write(tmp_path, 2, "<", sform_code=1, srow=flat)
    with pytest.raises(InputError, match="zero-length voxel axis"):
        check_image_file(path, ".nii")


def test_qform_with_negative_qfac_flips_the_slice_axis(tmp_path: Path):
    """A qform alone (identity quaternion, qfac -1 in pixdim[0]) puts slice k at -2k mm (RAS z)."""
    path = _write(tmp_path, 1, "<", qform_code=1, sform_code=0)
    raw = bytearray(path.read_bytes())
    raw[76:80] = np.float32(-1.0).tobytes()
    path.write_bytes(bytes(raw))
    declared = check_image_file(path, ".nii")
    assert declared is not None
    assert np.allclose(declared[:3, :3], np.diag([-1.0, -1.0, -2.0]))
    check_itk_placement(sitk.ReadImage(str(path)), declared, path)


def test_no_xform_declares_nothing(tmp_path: Path):
    path = _write(tmp_path, 1, "<", qform_code=0, sform_code=0)
    assert check_image_file(path, ".nii") is None


def test_itk_placement_beyond_the_tolerance_is_refused(tmp_path: Path):
    image = sitk.Image(list(SHAPE), sitk.sitkFloat32)
    declared = np.eye(4)
    check_itk_placement(image, declared, tmp_path / "x.nii")
    image.SetOrigin((0.0, 0.0, 2 * TOLERANCE_MM))
    with pytest.raises(InputError, match=r"ITK reads '.*x.nii' up to 0.0 mm away"):
        check_itk_placement(image, declared, tmp_path / "x.nii")
