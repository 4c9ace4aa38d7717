"""The header and voxel-stream checks of SlicerMedFuse.io.file_integrity on hand-built NIfTI files.

SimpleITK writes only little-endian NIfTI-1 without extensions; these files cover what other tools
write: NIfTI-2, big-endian headers, header extensions between the header and the voxels.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io.file_integrity import check_image_file

SHAPE = (4, 3, 2)  # i, j, k


def _nifti(version: int, order: str, voxels: np.ndarray, *, extension: bytes = b"", pixdim=(1.0, 1.0, 1.0)) -> bytes:
    """A single-file NIfTI (float32 voxels in ``order`` byte order) with an optional header extension."""
    size = 348 if version == 1 else 540
    offset = size + 4 + len(extension)
    header = bytearray(size)
    dim = (3, *SHAPE, 1, 1, 1, 1)
    spacing = (1.0, *pixdim, 0.0, 0.0, 0.0, 0.0)
    if version == 1:
        struct.pack_into(f"{order}i", header, 0, 348)
        struct.pack_into(f"{order}8h", header, 40, *dim)
        struct.pack_into(f"{order}hh", header, 70, 16, 32)
        struct.pack_into(f"{order}8f", header, 76, *spacing)
        struct.pack_into(f"{order}f", header, 108, float(offset))
        header[344:348] = b"n+1\x00"
    else:
        struct.pack_into(f"{order}i", header, 0, 540)
        header[4:12] = b"n+2\x00\r\n\x1a\n"
        struct.pack_into(f"{order}hh", header, 12, 16, 32)
        struct.pack_into(f"{order}8q", header, 16, *dim)
        struct.pack_into(f"{order}8d", header, 104, *spacing)
        struct.pack_into(f"{order}q", header, 168, offset)
    flag = b"\x01\x00\x00\x00" if extension else b"\x00\x00\x00\x00"
    return bytes(header) + flag + extension + voxels.astype(f"{order}f4").tobytes()


def _voxels(nans: int = 0, infinite: int = 0) -> np.ndarray:
    values = np.arange(np.prod(SHAPE), dtype=np.float32)
    values[:nans] = np.nan
    values[nans : nans + infinite] = np.inf
    return values


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
def test_nan_counted_in_nifti_1_and_2_of_either_byte_order(tmp_path: Path, version: int, order: str):
    path = tmp_path / "v.nii"
    path.write_bytes(_nifti(version, order, _voxels(nans=3, infinite=2), extension=b"x" * 12))
    with pytest.raises(InputError, match="has 3 NaN and 2 infinite voxels"):
        check_image_file(path, ".nii")
    path.write_bytes(_nifti(version, order, _voxels()))
    check_image_file(path, ".nii")  # a clean file passes


def test_gzip_named_file_that_is_not_compressed_and_the_reverse(tmp_path: Path):
    plain, packed = tmp_path / "plain.nii.gz", tmp_path / "packed.nii"
    plain.write_bytes(_nifti(1, "<", _voxels(nans=1)))
    packed.write_bytes(gzip.compress(_nifti(1, "<", _voxels(nans=1))))
    for path in (plain, packed):  # the content decides, not the name
        with pytest.raises(InputError, match="has 1 NaN"):
            check_image_file(path, ".nii.gz")


def test_cut_inside_the_extension_or_the_voxels_is_truncated(tmp_path: Path):
    whole = _nifti(2, "<", _voxels(), extension=b"x" * 400)
    path = tmp_path / "cut.nii.gz"
    for cut in (600, len(whole) - 5):
        path.write_bytes(gzip.compress(whole[:cut]))
        with pytest.raises(InputError, match="truncated or corrupt"):
            check_image_file(path, ".nii.gz")


def test_damaged_gzip_stream_is_corrupt(tmp_path: Path):
    data = bytearray(gzip.compress(_nifti(1, "<", _voxels())))
    data[-6] ^= 0xFF  # the CRC32
    (tmp_path / "bad.nii.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="truncated or corrupt"):
        check_image_file(tmp_path / "bad.nii.gz", ".nii.gz")


@pytest.mark.parametrize("pixdim", [(1.0, -0.5, 1.0), (1.0, 1.0, 0.0), (float("nan"), 1.0, 1.0)])
def test_bad_pixdim_is_refused(tmp_path: Path, pixdim):
    (tmp_path / "p.nii").write_bytes(_nifti(1, "<", _voxels(), pixdim=pixdim))
    with pytest.raises(InputError, match="voxel size in its header"):
        check_image_file(tmp_path / "p.nii", ".nii")


def test_nrrd_spacings_with_a_non_spatial_nan_axis_pass(tmp_path: Path):
    path = tmp_path / "v.nrrd"
    path.write_bytes(
        b"NRRD0004\ntype: float\ndimension: 2\nsizes: 2 2\nspacings: nan 1.5\nencoding: raw\n\n" + bytes(16)
    )
    check_image_file(path, ".nrrd")
    path.write_bytes(path.read_bytes().replace(b"nan 1.5", b"nan -1.5"))
    with pytest.raises(InputError, match=r"spacings nan -1.5"):
        check_image_file(path, ".nrrd")


def test_sitk_written_files_pass(tmp_path: Path):
    image = sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    for name in ("a.nii.gz", "a.nii", "a.nrrd", "a.mha", "a.mhd"):
        sitk.WriteImage(image, str(tmp_path / name))
        check_image_file(tmp_path / name, "." + name.split(".", 1)[1])
