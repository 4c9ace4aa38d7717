"""Issue 14: hostile-but-realistic input through ``medfuse run``: no silent data loss, no silent geometry change.

Each row of the issue's table is a test here. Each runs the CLI in a subprocess on files built in
the test's folder (small synthetic images, and the real head CT where the case is about real data)
and asserts the exit code, the sentence, that nothing is left behind on failure, and that every
input file's sha256 is unchanged. docs/bad-input.md lists the same cases with their sentences.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.io import read_image
from SlicerMedFuse.io.file_integrity import check_image_file

from .hostile_inputs import (
    HEMORRHAGE_MODEL,
    HEMORRHAGE_VERSION,
    cli_env,
    fingerprints,
    medfuse_command,
    patch_metaimage_spacing,
    patch_nifti_pixdim,
    patch_nifti_xforms,
    ramp,
    run_cli,
    set_weights,
    store_bundle_copy,
    write_ct_series,
    write_volume,
)
from .images import head_ct_crop

SUPERRES = ("run", "superres", "-p", "method=linear")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return write_volume(tmp_path / "thick.nii.gz", ramp())


def _refused(tmp_path: Path, args, code: int, sentence: str) -> str:
    """Run, and assert: exit ``code``, ``sentence`` in the one stderr line, inputs untouched, nothing new."""
    before = fingerprints(tmp_path)
    result = run_cli(tmp_path, *args)
    assert result.returncode == code, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("medfuse: ") and sentence in message, result.stderr
    assert "Traceback" not in result.stderr and ".medfuse-tmp" not in result.stderr
    assert fingerprints(tmp_path) == before  # inputs byte-identical, no output, no staging folder
    return message


# --- outputs onto inputs ---------------------------------------------------------------------------


def test_output_equal_to_the_input_is_refused_before_any_work(tmp_path: Path, volume: Path):
    args = (*SUPERRES, "-i", f"volume={volume.name}", "-o", volume.name, "--progress", "json")
    _refused(tmp_path, args, 2, "is the input 'volume' file itself, which would be overwritten")
    os.link(volume, tmp_path / "same.nii.gz")  # a hard link: another name, the same file
    _refused(tmp_path, (*SUPERRES, "-i", f"volume={volume.name}", "-o", "same.nii.gz"), 2, "file itself")


def test_registration_warped_equal_to_fixed_is_refused(tmp_path: Path, volume: Path):
    moving = write_volume(tmp_path / "moving.nrrd", ramp()[:, :, ::-1].copy())
    args = ("run", "registration", "-i", f"fixed={volume.name}", "-i", f"moving={moving.name}")
    _refused(
        tmp_path, (*args, "-o", f"warped={volume.name}"), 2, "output 'warped' path 'thick.nii.gz' is the input 'fixed'"
    )


def test_output_onto_a_file_of_an_input_dicom_folder_is_refused(tmp_path: Path, shared_data: Path):
    files = write_ct_series(tmp_path / "dicom", head_ct_crop(shared_data, (48, 48, 6)), list(range(6)))
    target = f"dicom/{files[2].name.replace('.dcm', '.nii')}"
    os.link(files[2], tmp_path / target)  # an output name that is a slice of the series under another name
    args = (*SUPERRES, "-i", "volume=dicom", "-o", target)
    _refused(tmp_path, args, 2, "is the input 'volume' (in its folder dicom) file itself")


@pytest.mark.parametrize("report", ["thick.nii.gz", "out.nii.gz"])
def test_report_equal_to_an_input_or_to_the_output_is_refused(tmp_path: Path, volume: Path, report: str):
    args = (*SUPERRES, "-i", f"volume={volume.name}", "-o", "out.nii.gz", "--report", report)
    expected = "is the input 'volume' file itself" if report == volume.name else "are the same file 'out.nii.gz'"
    _refused(tmp_path, args, 2, expected)


# --- truncated files, NaN, voxel sizes ----------------------------------------------------------------


def test_truncated_nifti_gz_of_the_real_ct_is_refused(tmp_path: Path, shared_data: Path):
    whole = (shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(whole[: int(len(whole) * 0.6)])
    args = (*SUPERRES, "-i", "volume=cut.nii.gz", "-o", "out.nii.gz")
    _refused(tmp_path, args, 3, "Cannot read 'cut.nii.gz': the file is truncated or corrupt")


@pytest.mark.parametrize("name", ["cut.nrrd", "cut.mha"])
def test_truncated_nrrd_and_metaimage_are_refused(tmp_path: Path, name: str):
    whole = write_volume(tmp_path / f"whole{Path(name).suffix}", ramp())
    (tmp_path / name).write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    _refused(
        tmp_path,
        (*SUPERRES, "-i", f"volume={name}", "-o", "out.nii.gz"),
        3,
        f"Cannot read '{name}': the file is not a valid",
    )


def test_truncated_uncompressed_nifti_is_refused(tmp_path: Path, volume: Path):
    data = gzip.decompress(volume.read_bytes())
    (tmp_path / "cut.nii").write_bytes(data[: int(len(data) * 0.6)])
    args = (*SUPERRES, "-i", "volume=cut.nii", "-o", "out.nii.gz")
    _refused(tmp_path, args, 3, "truncated or corrupt (59 % of the 19200 bytes of voxel data are present)")


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.nrrd", "nan.mha"])
def test_nan_and_infinite_voxels_are_counted_in_every_format(tmp_path: Path, name: str):
    array = ramp()
    array[0, 0, :5] = np.nan
    array[3, 2, 1] = np.inf
    write_volume(tmp_path / name, array)
    args = (*SUPERRES, "-i", f"volume={name}", "-o", "out.nii.gz")
    _refused(tmp_path, args, 3, "has 5 NaN and 1 infinite voxels")


def test_all_nan_nifti_is_reported_as_nan_not_as_a_constant_image(tmp_path: Path):
    write_volume(tmp_path / "void.nii.gz", np.full((10, 24, 20), np.nan, dtype=np.float32))
    message = _refused(tmp_path, (*SUPERRES, "-i", "volume=void.nii.gz", "-o", "out.nii.gz"), 3, "4800 NaN")
    assert "same value" not in message


@pytest.mark.parametrize(("name", "value"), [("neg.nii", -1.0), ("zero.nii", 0.0), ("neg.mha", "-1 1 3")])
def test_negative_or_zero_voxel_size_is_refused(tmp_path: Path, name: str, value):
    path = write_volume(tmp_path / name, ramp())
    if name.endswith(".nii"):
        patch_nifti_pixdim(path, 1, value)
    else:
        patch_metaimage_spacing(path, value)
    args = (*SUPERRES, "-i", f"volume={name}", "-o", "out.nii.gz")
    _refused(tmp_path, args, 3, "has a zero, negative or undefined voxel size in its header")


# --- geometry --------------------------------------------------------------------------------------


SHEARED = (1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.8660254)  # the slice axis tilted 30 degrees in x


def test_sheared_grid_is_never_written_as_nifti_and_kept_in_nrrd(tmp_path: Path):
    write_volume(tmp_path / "sheared.nrrd", ramp(), direction=SHEARED)
    args = (*SUPERRES, "-i", "volume=sheared.nrrd")
    _refused(tmp_path, (*args, "-o", "out.nii.gz"), 2, "sheared (non-orthogonal) grid")
    result = run_cli(tmp_path, *args, "-o", "out.nrrd")
    assert result.returncode == 0, result.stderr
    assert np.allclose(sitk.ReadImage(str(tmp_path / "out.nrrd")).GetDirection(), SHEARED, atol=1e-6)


def test_dicom_series_with_a_missing_slice_keeps_its_native_spacing(tmp_path: Path, shared_data: Path):
    """The issue's case: a thin part (1.5 mm) with one slice missing, then a longer 3 mm part.

    The median gap is 3 mm; the thin part must keep 1.5 mm, every acquired slice its values, and
    the warning (stderr and report) must name the gap.
    """
    ct = head_ct_crop(shared_data, (64, 64, 24), (96, 80, 40))
    keep = [0, 1, 2, 4, 5, 6, 7, *range(8, 24, 2)]  # slice 3 missing; 3 mm beyond slice 8
    write_ct_series(tmp_path / "dicom", ct, keep)
    before = fingerprints(tmp_path)
    result = run_cli(tmp_path, *SUPERRES, "-i", "volume=dicom", "-o", "out.nrrd", "--report", "report.json")
    assert result.returncode == 0, result.stderr
    assert fingerprints(tmp_path / "dicom") == {k.removeprefix("dicom/"): v for k, v in before.items()}
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["inputs"]["volume"]["spacing_mm"][2] == pytest.approx(1.5)
    gap = next(w for w in report["warnings"] if "gaps wider than its 1.5 mm spacing" in w)
    x, y, z = ct.TransformIndexToPhysicalPoint((0, 0, 4))  # sorted along -z: slice 4 comes before slice 2
    assert f"3 mm after the slice at ({x:.1f}, {y:.1f}, {z:.1f}) mm ('slice004.dcm' to 'slice002.dcm')" in gap
    assert gap in result.stderr

    read = read_image(tmp_path / "dicom")  # slices sorted along row x col = -z: compare in physical space
    original, regular = sitk.GetArrayFromImage(ct).astype(np.float32), sitk.GetArrayFromImage(read)
    assert read.GetSize()[2] == 23 and read.GetSpacing()[2] == pytest.approx(1.5)

    def index_in_read(k: int) -> int:
        position = read.TransformPhysicalPointToContinuousIndex(ct.TransformIndexToPhysicalPoint((0, 0, k)))
        assert np.allclose(position, np.round(position), atol=1e-3)
        return round(position[2])

    for k in keep:  # every acquired slice exactly as acquired
        assert np.array_equal(regular[index_in_read(k)], original[k]), k
    assert np.allclose(regular[index_in_read(3)], (original[2] + original[4]) / 2)  # only the gap is interpolated


def test_dicom_series_with_a_truncated_file_names_it(tmp_path: Path, shared_data: Path):
    files = write_ct_series(tmp_path / "dicom", head_ct_crop(shared_data, (64, 64, 8)), list(range(8)))
    data = files[4].read_bytes()
    files[4].write_bytes(data[: int(len(data) * 0.6)])
    result = run_cli(tmp_path, *SUPERRES, "-i", "volume=dicom", "-o", "out.nrrd", "--report", "report.json")
    assert result.returncode == 0, result.stderr
    warnings = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["warnings"]
    named = next(w for w in warnings if "cannot be read (truncated or damaged)" in w)
    assert "'slice004.dcm'" in named and named in result.stderr


def test_empty_dicom_folder_gives_one_clean_sentence(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = run_cli(tmp_path, *SUPERRES, "-i", "volume=empty", "-o", "out.nii.gz")
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "medfuse: No DICOM series found in 'empty'; check that the folder holds the DICOM files of the scan."
    ]


# --- where outputs go ------------------------------------------------------------------------------


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder the test process cannot write: read-only bits, or /proc/self where they do not bind (root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    folder.chmod(0o755)
    folder.rmdir()
    return Path("/proc/self")


@pytest.mark.parametrize("which", ["output", "report"])
def test_unwritable_output_or_report_folder_is_refused_before_any_work(tmp_path: Path, volume: Path, which: str):
    locked = _unwritable_folder(tmp_path) / ("out.nii.gz" if which == "output" else "report.json")
    output = str(locked) if which == "output" else "out.nii.gz"
    report = ["--report", str(locked)] if which == "report" else []
    args = (*SUPERRES, "-i", f"volume={volume.name}", "-o", output, *report, "--progress", "json")
    result_sentence = f"to '{locked}': the folder {locked.parent} is not writable"
    _refused(tmp_path, args, 5, result_sentence)


def test_unsupported_output_extension_names_the_users_path_before_any_work(tmp_path: Path, volume: Path):
    args = (*SUPERRES, "-i", f"volume={volume.name}", "-o", "out.png", "--progress", "json")
    before = fingerprints(tmp_path)
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert "Cannot write the output 'volume' to 'out.png': the extension is not supported" in result.stderr
    assert '"event":"start"' not in result.stdout.replace(" ", "")  # refused before the job started
    assert fingerprints(tmp_path) == before


# --- model bundles ---------------------------------------------------------------------------------


def _ct(tmp_path: Path, shared_data: Path) -> Path:
    ct = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return write_volume(tmp_path / "ct.nii.gz", sitk.GetArrayFromImage(ct[:, :, 50:74]), ct.GetSpacing())


def _disallowed_architecture(manifest: dict, folder: Path) -> None:
    manifest["architecture"]["name"] = "os.system"


def _weights_path_traversal(manifest: dict, folder: Path) -> None:
    manifest["weights"]["file"] = "../../../escape.safetensors"


@pytest.mark.parametrize("unsafe", [_disallowed_architecture, _weights_path_traversal])
def test_refused_bundle_version_is_named_with_the_version_that_ran(
    tmp_path: Path, shared_data: Path, isolated_medfuse_home: Path, unsafe
):
    store_bundle_copy(isolated_medfuse_home, "9.0.0", unsafe)
    _ct(tmp_path, shared_data)
    result = run_cli(tmp_path, "run", "hemorrhage", "-i", "ct=ct.nii.gz", "-o", "labels.nii.gz", "--report", "r.json")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["model"]["version"] == HEMORRHAGE_VERSION
    ran = f"Model '{HEMORRHAGE_MODEL}@9.0.0' was refused ("
    assert any(
        w.startswith(ran) and w.endswith(f"version {HEMORRHAGE_VERSION} of {HEMORRHAGE_MODEL} runs instead.")
        for w in report["warnings"]
    )
    assert ran in result.stderr

    asked = ("run", "hemorrhage", "-i", "ct=ct.nii.gz", "-o", "labels2.nii.gz", "--model", f"{HEMORRHAGE_MODEL}@9.0.0")
    _refused(tmp_path, asked, 4, f"Model '{HEMORRHAGE_MODEL}@9.0.0' in ")
    removed = run_cli(tmp_path, "models", "remove", f"{HEMORRHAGE_MODEL}@9.0.0")  # an unusable bundle can go
    assert removed.returncode == 0 and not (isolated_medfuse_home / "models" / HEMORRHAGE_MODEL).exists()


def _verify(tmp_path: Path, version: str, sentence: str) -> None:
    result = run_cli(tmp_path, "models", "verify", f"{HEMORRHAGE_MODEL}@{version}")
    assert result.returncode == 4, result.stdout + result.stderr
    assert sentence in result.stderr and "Traceback" not in result.stderr


def test_models_verify_refuses_a_pickle_renamed_safetensors(tmp_path: Path, isolated_medfuse_home: Path):
    pickled = pickle.dumps({"weight": np.zeros((8, 3, 3, 3, 3), np.float32)})
    store_bundle_copy(isolated_medfuse_home, "9.0.0", lambda m, f: set_weights(m, f, pickled))
    _verify(tmp_path, "9.0.0", "is not a valid safetensors file (its header length")


def test_models_verify_checks_tensor_names_and_shapes_against_the_architecture(
    tmp_path: Path, isolated_medfuse_home: Path
):
    from safetensors.numpy import save

    other = save({"stem.weight": np.zeros((4, 3, 3, 3, 3), np.float32)})
    store_bundle_copy(isolated_medfuse_home, "9.0.0", lambda m, f: set_weights(m, f, other))
    _verify(tmp_path, "9.0.0", "do not fit its architecture 'medfuse.MultiWindowHemorrhageUNet'")
    ok = run_cli(tmp_path, "models", "verify", f"{HEMORRHAGE_MODEL}@{HEMORRHAGE_VERSION}")
    assert ok.returncode == 0 and ok.stdout.startswith(f"ok {HEMORRHAGE_MODEL} {HEMORRHAGE_VERSION}"), ok.stderr


def _huge_filters(manifest: dict, folder: Path) -> None:
    manifest["architecture"]["args"]["filters"] = [32768, 32768, 32768, 32768]


def test_architecture_arguments_are_bounded_before_building(
    tmp_path: Path, shared_data: Path, isolated_medfuse_home: Path
):
    folder = store_bundle_copy(isolated_medfuse_home, "9.0.0", _huge_filters)
    _verify(tmp_path, "9.0.0", "more than the")
    _ct(tmp_path, shared_data)
    started = time.perf_counter()
    args = ("run", "hemorrhage", "-i", "ct=ct.nii.gz", "-o", "labels.nii.gz", "--model", str(folder))
    message = _refused(tmp_path, args, 4, "GiB), more than the")
    assert "The architecture 'medfuse.MultiWindowHemorrhageUNet' with the manifest's arguments would have" in message
    assert time.perf_counter() - started < 60  # refused from the plan, not after trying to allocate


def test_weights_linking_out_of_the_bundle_are_refused(tmp_path: Path, shared_data: Path, isolated_medfuse_home: Path):
    def link_out(manifest: dict, folder: Path) -> None:
        outside = tmp_path / "elsewhere.safetensors"
        shutil.move(folder / "model.safetensors", outside)
        (folder / "model.safetensors").symlink_to(outside)

    folder = store_bundle_copy(isolated_medfuse_home, "9.0.0", link_out)
    _verify(tmp_path, "9.0.0", "outside the bundle folder")
    _ct(tmp_path, shared_data)
    args = ("run", "hemorrhage", "-i", "ct=ct.nii.gz", "-o", "labels.nii.gz", "--model", str(folder))
    _refused(tmp_path, args, 4, "is a link to")


# --- cancelling ------------------------------------------------------------------------------------


def _start_long_job(tmp_path: Path, **popen) -> subprocess.Popen[str]:
    """SR4ZCT with many epochs (minutes), started; returns once the task is past reading its input."""
    write_volume(tmp_path / "thick.nii.gz", ramp())
    args = ("run", "superres", "-i", "volume=thick.nii.gz", "-o", "out.nii.gz", "-p", "epochs=5000")
    process = subprocess.Popen(
        medfuse_command(*args, "--report", "r.json", "--progress", "json"),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    for line in process.stdout:  # type: ignore[union-attr]
        event = json.loads(line)
        if event.get("event") == "progress" and event.get("fraction", 0) > 0.02:
            return process
    raise AssertionError(f"the job ended early: {process.stderr.read()}")  # type: ignore[union-attr]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_cancel_and_leave_nothing(tmp_path: Path, signum: int):
    process = _start_long_job(tmp_path)
    before = fingerprints(tmp_path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Cancelled; no output was written." in stderr
    assert fingerprints(tmp_path) == before and not any(p.name.startswith(".medfuse") for p in tmp_path.iterdir())


def test_sigint_ignored_by_the_parent_is_not_a_cancel(tmp_path: Path):
    """A script's background job inherits an ignored SIGINT and runs on (documented); SIGTERM still cancels."""
    process = _start_long_job(tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    process.send_signal(signal.SIGINT)
    time.sleep(2)
    assert process.poll() is None  # still running
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode == 130


# --- NIfTI sform and qform (ITK moves a sheared sform silently, or picks one of two by a code) ---------

#: The sform of write_volume's grid (origin (10, -5, 3) LPS, spacing 1 x 1 x 3 mm) in RAS, with x
#: also rising 0.5 mm per row: the voxel axes are sheared (63.4 degrees apart).
SHEARED_SFORM = [[-1.0, 0.5, 0.0, -10.0], [0.0, -1.0, 0.0, 5.0], [0.0, 0.0, 3.0, 3.0]]
#: The same grid 20 mm further left than its qform says.
SHIFTED_SFORM = [[-1.0, 0.0, 0.0, 10.0], [0.0, -1.0, 0.0, 5.0], [0.0, 0.0, 3.0, 3.0]]


def _patched_nifti(tmp_path: Path, name: str, **xforms) -> Path:
    """write_volume's ramp as an uncompressed NIfTI (sform and qform both set by ITK), then patched."""
    path = write_volume(tmp_path / name, ramp())
    path.write_bytes(patch_nifti_xforms(path.read_bytes(), **xforms))
    return path


@pytest.mark.parametrize("qform_code", [1, 0], ids=["qform-beside", "sform-alone"])
def test_sheared_nifti_sform_is_refused_not_moved(tmp_path: Path, qform_code: int):
    path = _patched_nifti(tmp_path, "sheared.nii", qform_code=qform_code, srow=SHEARED_SFORM)
    if qform_code:  # the evidence: ITK reads this file silently at the qform's place, up to 11.5 mm off
        assert sitk.ReadImage(str(path)).GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    args = (*SUPERRES, "-i", f"volume={path.name}", "-o", "out.nii.gz")
    message = _refused(tmp_path, args, 3, "'sheared.nii' has a sheared sform (voxel axes at 63.4 degrees instead of 90")
    assert message.endswith("save it from there as NRRD, which keeps a sheared grid.")


@pytest.mark.parametrize("sform_code", [1, 2], ids=["scanner", "aligned"])
def test_nifti_whose_sform_and_qform_disagree_is_refused(tmp_path: Path, sform_code: int):
    # ITK 5.4 takes the sform when its code is 1 (scanner) and the qform otherwise: 20 mm either way
    path = _patched_nifti(tmp_path, "ambiguous.nii", sform_code=sform_code, srow=SHIFTED_SFORM)
    args = (*SUPERRES, "-i", f"volume={path.name}", "-o", "out.nii.gz")
    sentence = "'ambiguous.nii' has an sform and a qform that place the voxels up to 20.0 mm apart"
    _refused(tmp_path, args, 3, sentence)


@pytest.mark.parametrize("qform_code", [1, 0], ids=["sform-and-qform", "sform-alone"])
def test_oblique_nifti_still_runs_in_place(tmp_path: Path, qform_code: int):
    """Regression guard: a rotated (unsheared) grid is neither refused nor moved."""
    rotation = sitk.VersorTransform((0.3, 0.1, 1.0), 0.35).GetMatrix()  # 20 degrees about a tilted axis
    path = write_volume(tmp_path / "oblique.nii", ramp(), direction=rotation)
    path.write_bytes(patch_nifti_xforms(path.read_bytes(), qform_code=qform_code))
    before = fingerprints(tmp_path)
    result = run_cli(tmp_path, *SUPERRES, "-i", "volume=oblique.nii", "-o", "out.nii.gz")
    assert result.returncode == 0, result.stderr
    assert fingerprints(tmp_path)["oblique.nii"] == before["oblique.nii"]
    out = read_image(tmp_path / "out.nii.gz")
    assert np.allclose(out.GetDirection(), rotation, atol=1e-5)
    assert np.allclose(out.GetOrigin(), (10.0, -5.0, 3.0), atol=1e-3)


def test_real_head_ct_nifti_is_read_exactly_where_its_header_places_it(shared_data: Path):
    path = shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"  # sform and qform codes 1, qfac -1
    declared = check_image_file(path, ".nii.gz")
    image = read_image(path)
    itk = sitk.ReadImage(str(path))
    assert declared is not None
    assert image.GetOrigin() == itk.GetOrigin() and image.GetDirection() == itk.GetDirection()
    assert np.allclose(declared[:3, 3], image.GetOrigin(), atol=1e-3)
    assert np.allclose(declared[:3, :3], np.reshape(image.GetDirection(), (3, 3)) * image.GetSpacing(), atol=1e-5)
    assert (sitk.GetArrayViewFromImage(image) == sitk.GetArrayViewFromImage(itk)).all()
