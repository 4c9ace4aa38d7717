"""Builders for the hostile-input suite (issue 14): the CLI in a subprocess, file fingerprints, bad files.

Every case runs ``python -m SlicerMedFuse`` as a user would, in the test's folder, and the suite
asserts the exit code, the sentence on stderr, the files left behind and the sha256 of every input.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = REPO_ROOT / "SlicerMedFuse" / "models" / "bundled"
HEMORRHAGE_MODEL = "medfuse-hemorrhage-demo-multiwindow"
#: The task's default bundle: the newest bundled version of its model.
HEMORRHAGE_BUNDLE = max(
    BUNDLED.glob(f"{HEMORRHAGE_MODEL}-[0-9]*"), key=lambda p: tuple(int(x) for x in p.name.rsplit("-", 1)[1].split("."))
)
HEMORRHAGE_VERSION = HEMORRHAGE_BUNDLE.name.rsplit("-", 1)[1]


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout first on the path, MEDFUSE_HOME kept (isolated)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def medfuse_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "SlicerMedFuse", *args]


def run_cli(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``medfuse ARGS`` run in ``folder``; stdout and stderr captured as text."""
    return subprocess.run(
        medfuse_command(*args), cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )


def fingerprints(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def write_volume(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 3.0), direction=None) -> Path:
    """Write a (k, j, i) array as an image file (the extension picks the format)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((10.0, -5.0, 3.0))
    if direction is not None:
        image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def ramp(size=(20, 24, 10)) -> np.ndarray:
    """A float32 (k, j, i) ramp: every voxel different, so no check mistakes it for a constant image."""
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in size[::-1]], indexing="ij")
    return x + 2 * y + 5 * z


def patch_nifti_pixdim(path: Path, axis: int, value: float) -> None:
    """Set pixdim[axis] (1-based, as in the NIfTI-1 header) of an uncompressed .nii file."""
    import struct

    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, 76 + 4 * axis, value)
    path.write_bytes(bytes(raw))


def patch_nifti_xforms(raw: bytes, *, qform_code: int | None = None, sform_code: int | None = None, srow=None) -> bytes:
    """A NIfTI-1 or -2 header (either byte order) with its xform codes and/or sform (3 x 4, RAS mm) replaced."""
    import struct

    order = "<" if struct.unpack("<i", raw[:4])[0] in (348, 540) else ">"
    version_1 = struct.unpack(f"{order}i", raw[:4])[0] == 348
    codes, code_at, real, srow_at = ("h", 252, "f", 280) if version_1 else ("i", 344, "d", 400)
    out = bytearray(raw)
    old_q, old_s = struct.unpack_from(f"{order}2{codes}", out, code_at)
    new_codes = (old_q if qform_code is None else qform_code, old_s if sform_code is None else sform_code)
    struct.pack_into(f"{order}2{codes}", out, code_at, *new_codes)
    if srow is not None:
        struct.pack_into(f"{order}12{real}", out, srow_at, *np.asarray(srow, dtype=float).ravel())
    return bytes(out)


def patch_metaimage_spacing(path: Path, spacing: str) -> None:
    text = path.read_bytes()
    start = text.index(b"ElementSpacing")
    end = text.index(b"\n", start)
    path.write_bytes(text[:start] + f"ElementSpacing = {spacing}".encode() + text[end:])


def write_ct_series(folder: Path, ct: sitk.Image, keep: list[int]) -> list[Path]:
    """Write the slices ``keep`` of ``ct`` (int16 HU) as a DICOM series with full geometry; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.asarray(ct.GetDirection()).reshape(3, 3)
    row, col, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    origin, spacing = np.asarray(ct.GetOrigin()), ct.GetSpacing()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    files = []
    for k in keep:
        plane = sitk.Cast(ct[:, :, k], sitk.sitkInt16)
        position = origin + k * spacing[2] * normal
        tags = {
            "0020|000e": "1.2.826.0.1.3680043.2.1125.14",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0018": f"1.2.826.0.1.3680043.2.1125.14.{k + 1}",
            "0008|0060": "CT",
            "0018|0050": f"{spacing[2]:g}",
            "0020|0013": str(k + 1),
            "0020|0037": "\\".join(f"{v:.8f}" for v in (*row, *col)),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
        }
        for key, value in tags.items():
            plane.SetMetaData(key, value)
        path = folder / f"slice{k:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(plane)
        files.append(path)
    return files


def store_bundle_copy(home: Path, version: str, edit=None) -> Path:
    """Copy the shipped hemorrhage bundle into the store under ``version``, after ``edit(manifest_dict, folder)``."""
    folder = home / "models" / HEMORRHAGE_MODEL / version
    shutil.copytree(HEMORRHAGE_BUNDLE, folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["version"] = version
    if edit is not None:
        edit(manifest, folder)
    manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return folder


def set_weights(manifest: dict, folder: Path, content: bytes) -> None:
    """Replace the weights file by ``content`` and give the manifest its sha256 (a consistent tampering)."""
    (folder / manifest["weights"]["file"]).write_bytes(content)
    manifest["weights"]["sha256"] = hashlib.sha256(content).hexdigest()
