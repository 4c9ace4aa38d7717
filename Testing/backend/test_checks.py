"""Tests of SlicerMedFuse.io.checks.check_image: each failure names the role and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io import check_image


def volume(array: np.ndarray | None = None, **kwargs) -> sitk.Image:
    if array is None:
        array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return sitk.GetImageFromArray(array, **kwargs)


def test_valid_images_pass() -> None:
    check_image(volume(), "ct")
    check_image(volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5)), "ct")
    check_image(sitk.GetImageFromArray(np.arange(12.0).reshape(3, 4)), "slice", dimension=2)
    vectors = volume(np.random.default_rng(0).normal(size=(3, 4, 5, 3)), isVector=True)
    check_image(vectors, "field", allow_vector=True)


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (sitk.GetImageFromArray(np.arange(12.0).reshape(3, 4)), r"Input 't1' is 2D .*give a 3D volume"),
        (volume(np.arange(20.0).reshape(1, 4, 5)), r"Input 't1' is a single slice \(size 5x4x1\)"),
        (sitk.Image([4, 4, 4, 3], sitk.sitkFloat32), r"Input 't1' is 4D .*single 3D volume"),
        (sitk.Image([0, 0, 0], sitk.sitkFloat32), r"Input 't1' is empty"),
        (volume(np.zeros((0, 4, 4), np.float32)), r"Input 't1' is empty"),
        (volume(np.full((3, 4, 5), 7.0, np.float32)), r"Input 't1' has the same value \(7\) in every voxel"),
        (volume(np.zeros((3, 4, 5), np.uint8)), r"same value \(0\)"),
        (volume(np.ones((3, 4, 5, 3)), isVector=True), r"Input 't1' has 3 values per voxel"),
    ],
    ids=["2d", "single-slice", "4d", "zero-size", "zero-slices", "constant", "empty-mask", "vector"],
)
def test_bad_images_are_input_errors(image: sitk.Image, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        check_image(image, "t1")


@pytest.mark.parametrize(("bad", "counts"), [(np.nan, "2 NaN and 0 infinite"), (np.inf, "0 NaN and 2 infinite")])
def test_non_finite_voxels(bad: float, counts: str) -> None:
    array = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    array[1, 2, 3] = array[0, 0, 0] = bad
    with pytest.raises(InputError, match=rf"Input 'pet' has {counts} voxels"):
        check_image(volume(array), "pet")
    array[0, 0, 0] = -np.inf
    with pytest.raises(InputError, match="infinite"):
        check_image(volume(array), "pet")


def test_arguments_are_validated() -> None:
    with pytest.raises(TypeError):
        check_image(np.zeros((3, 3, 3)), "ct")
    with pytest.raises(ValueError, match="dimension"):
        check_image(volume(), "ct", dimension=4)
