"""Sample scans from registries: the InVesalius conversion, checksums, and (where apt can reach
Debian) that the fetched head CT is exactly the scan in ../shared/data."""

from __future__ import annotations

import io
import plistlib
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.sample_data import fetch_sample, read_invesalius_project


def _write_inv3(path, array: np.ndarray, spacing) -> None:
    header = {
        "matrix": {"dtype": "int16", "filename": "matrix.dat", "shape": list(array.shape)},
        "spacing": list(spacing),
        "modality": "CT",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (
            ("tmpx/main.plist", plistlib.dumps(header)),
            ("tmpx/matrix.dat", array.astype("<i2").tobytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_invesalius_project_conversion(tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 1000
    _write_inv3(tmp_path / "scan.inv3", array, (0.5, 0.5, 2.0))
    image, raw = read_invesalius_project(tmp_path / "scan.inv3")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)
    assert image.GetSpacing() == (0.5, 0.5, 2.0)
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    assert image.GetOrigin() == pytest.approx((-1.5, 1.25, -4.0))
    assert raw == array.astype("<i2").tobytes()


def test_unknown_sample():
    with pytest.raises(InputError, match="no sample 'nope'"):
        fetch_sample("nope")


def _debian_package_reachable() -> bool:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return False
    return subprocess.run(["apt-cache", "show", "invesalius-examples"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_fetched_head_ct_is_the_shared_scan(shared_data, tmp_path):
    if not _debian_package_reachable():
        pytest.skip("apt cannot see the Debian package invesalius-examples here (run 'apt-get update')")
    fetched = sitk.ReadImage(str(fetch_sample("head-ct", tmp_path)))
    shared = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(fetched), sitk.GetArrayFromImage(shared))
    assert fetched.GetOrigin() == pytest.approx(shared.GetOrigin(), abs=1e-4)
    assert fetched.GetSpacing() == pytest.approx(shared.GetSpacing())
    assert fetched.GetDirection() == shared.GetDirection()
