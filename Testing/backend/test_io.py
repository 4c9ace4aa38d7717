"""Tests of SlicerMedFuse.io: image read/write with geometry, atomic outputs, readable errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, ResourceError, UsageError
from SlicerMedFuse.io import atomic_path, commit_outputs, image_io, read_image, write_image, write_json_atomic

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _shared_file(relative: str) -> Path:
    path = DATA / relative
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"shared test data {path} is missing (CI is set, so this is an error)")
        pytest.skip(f"shared test data {path} is not available; fetch /work/shared/data to run this test")
    return path


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def oblique_lia_image(pixel_type: type = np.float32) -> sitk.Image:
    """A small image whose index axes point roughly L, I, A, rotated obliquely by ~10 degrees."""
    lia = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]])  # columns: L, I, A in LPS
    direction = _rotation(0.1, -0.15, 0.2) @ lia
    array = (np.arange(5 * 6 * 7).reshape(5, 6, 7) * 1.5 - 20).astype(pixel_type)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 1.1, 2.3))
    image.SetOrigin((-10.5, 20.25, 3.0))
    image.SetDirection(tuple(direction.ravel()))
    return image


def assert_same_geometry(a: sitk.Image, b: sitk.Image, atol: float = 1e-5) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=atol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=atol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=atol)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".medfuse-tmp-"))


@pytest.mark.parametrize("extension", [".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"])
def test_round_trip_keeps_voxels_and_oblique_geometry(tmp_path: Path, extension: str) -> None:
    image = oblique_lia_image(np.int16)
    path = tmp_path / f"volume{extension}"
    assert write_image(image, path) == path
    back = read_image(path)
    assert_same_geometry(image, back)
    assert back.GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    assert _leftovers(tmp_path) == []
    if extension in (".nhdr", ".mhd"):  # the detached data file came along with its header
        assert len(list(tmp_path.iterdir())) == 2


def test_round_trip_uncompressed_float_nrrd(tmp_path: Path) -> None:
    image = oblique_lia_image(np.float32)
    back = read_image(write_image(image, tmp_path / "v.nrrd", compress=False))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    assert_same_geometry(image, back)


def test_real_head_ct_is_read_with_geometry() -> None:
    image = read_image(_shared_file("head_ct/invesalius_ct0051_head.nii.gz"))
    assert image.GetSize() == (256, 256, 108)
    np.testing.assert_allclose(image.GetSpacing(), (0.957, 0.957, 1.5), atol=1e-3)
    np.testing.assert_allclose(image.GetDirection(), (1, 0, 0, 0, -1, 0, 0, 0, 1), atol=1e-6)
    assert image.GetPixelID() == sitk.sitkInt16


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "absent.nii.gz")


@pytest.mark.parametrize("name", ["notes.nii.gz", "notes.nrrd", "notes.mha"])
def test_text_file_with_image_extension_is_an_input_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match="not a valid") as caught:
        read_image(path)
    assert "\n" not in str(caught.value) and caught.value.__cause__ is None


def test_truncated_nifti_is_an_input_error(tmp_path: Path) -> None:
    path = write_image(oblique_lia_image(), tmp_path / "v.nii")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="Cannot read"):
        read_image(path)


def test_unsupported_format_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not supported"):
        read_image(path)


def test_folder_without_dicom_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No DICOM series"):
        read_image(tmp_path)


def test_series_uid_on_a_non_dicom_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write_image(oblique_lia_image(), tmp_path / "v.mha")
    with pytest.raises(UsageError, match="not DICOM"):
        read_image(path, series_uid="1.2.3")


def test_write_failure_mid_way_leaves_nothing_and_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out.nii.gz"
    target.write_bytes(b"previous result")

    def failing_writer(image, path, useCompression=True):
        Path(path).write_bytes(b"half an image")
        raise RuntimeError("ITK ERROR: disk went away")

    monkeypatch.setattr(image_io.sitk, "WriteImage", failing_writer)
    with pytest.raises(ResourceError, match="Cannot write"):
        write_image(oblique_lia_image(), target)
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_write_into_unwritable_location_is_a_resource_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ResourceError, match="Cannot write"):
        write_image(oblique_lia_image(), blocker / "out.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_write_creates_missing_folders_and_rejects_unknown_extensions(tmp_path: Path) -> None:
    path = write_image(oblique_lia_image(), tmp_path / "a" / "b" / "v.mha")
    assert path.is_file()
    with pytest.raises(UsageError, match=r"\.nii\.gz"):
        write_image(oblique_lia_image(), tmp_path / "v.png")
    with pytest.raises(TypeError):
        write_image(np.zeros((3, 3, 3)), tmp_path / "v.mha")


def test_atomic_path_commits_on_success_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    with atomic_path(target) as temp:
        assert temp.name == target.name and temp.parent.parent == tmp_path
        temp.write_text("done")
    assert target.read_text(encoding="utf-8") == "done"

    with pytest.raises(KeyError), atomic_path(target) as temp:
        temp.write_text("partial")
        raise KeyError("boom")
    assert target.read_text(encoding="utf-8") == "done"
    assert _leftovers(tmp_path) == []

    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never.txt"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_commit_outputs_renames_none_when_one_writer_fails(tmp_path: Path) -> None:
    existing = tmp_path / "b.json"
    existing.write_text("old")

    def fail(path: Path) -> None:
        path.write_text("partial")
        raise RuntimeError("model crashed")

    writers = {
        tmp_path / "a.nii.gz": lambda p: write_image(oblique_lia_image(), p),
        existing: lambda p: write_json_atomic({"x": 1}, p),
        tmp_path / "c.txt": fail,
    }
    with pytest.raises(RuntimeError, match="model crashed"):
        commit_outputs(writers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]
    assert existing.read_text(encoding="utf-8") == "old"


def test_commit_outputs_writes_all(tmp_path: Path) -> None:
    image = oblique_lia_image()
    paths = commit_outputs(
        {
            tmp_path / "seg.nrrd": lambda p: write_image(image, p),
            tmp_path / "report.json": lambda p: write_json_atomic({"dice": np.float32(0.5)}, p),
        }
    )
    assert [p.name for p in paths] == ["seg.nrrd", "report.json"]
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8")) == {"dice": 0.5}
    assert_same_geometry(read_image(tmp_path / "seg.nrrd"), image)
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="same output path"):
        commit_outputs({tmp_path / "x.txt": Path.touch, tmp_path / "sub" / ".." / "x.txt": Path.touch})


def test_write_json_atomic_converts_numpy_and_fails_cleanly(tmp_path: Path) -> None:
    path = write_json_atomic({"n": np.int64(3), "v": np.arange(2), "p": tmp_path}, tmp_path / "r.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"n": 3, "v": [0, 1], "p": str(tmp_path)}
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, tmp_path / "bad.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
