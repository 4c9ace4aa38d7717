"""SlicerMedFuse.io.output_targets in-process: the checks behind the CLI cases of test_hostile_input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.io import write_image
from SlicerMedFuse.io.output_targets import OutputTarget, check_output_targets, is_orthogonal

SHEAR = (1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.8660254)


def _image(direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10))
    image.SetSpacing((1.0, 1.0, 3.0))
    if direction is not None:
        image.SetDirection(direction)
    return image


def test_a_symlink_to_an_input_is_the_input(tmp_path: Path):
    source = tmp_path / "ct.nrrd"
    source.write_bytes(b"x")
    (tmp_path / "link.nrrd").symlink_to(source)
    with pytest.raises(UsageError, match="is the input 'ct' file itself"):
        check_output_targets([OutputTarget("output 'x'", tmp_path / "link.nrrd", (".nrrd",))], {"input 'ct'": source})
    check_output_targets([OutputTarget("output 'x'", tmp_path / "new.nrrd", (".nrrd",))], {"input 'ct'": source})


def test_output_that_is_a_folder_is_refused(tmp_path: Path):
    (tmp_path / "out.nrrd").mkdir()
    with pytest.raises(UsageError, match="is a folder; give a file name inside it"):
        check_output_targets([OutputTarget("output 'x'", tmp_path / "out.nrrd")], {})


def test_orthogonality_tolerates_header_rounding_only():
    assert is_orthogonal(_image((0.99999999, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)))
    assert not is_orthogonal(_image(SHEAR))


def test_write_image_refuses_a_sheared_nifti_and_keeps_nrrd(tmp_path: Path):
    sheared = _image(SHEAR)
    with pytest.raises(UsageError, match=r"write \.nrrd or \.mha instead"):
        write_image(sheared, tmp_path / "s.nii.gz")
    assert not list(tmp_path.iterdir())  # nothing staged, nothing written
    write_image(sheared, tmp_path / "s.nrrd")
    assert np.allclose(sitk.ReadImage(str(tmp_path / "s.nrrd")).GetDirection(), SHEAR)


def test_run_task_refuses_sheared_nifti_before_the_task_runs(tmp_path: Path):
    with pytest.raises(UsageError, match="input 'volume' \\(whose grid output 'volume' keeps\\) has a sheared"):
        run_task("superres", {"volume": _image(SHEAR)}, tmp_path / "o.nii.gz", params={"method": "linear"})
    assert not list(tmp_path.iterdir())
