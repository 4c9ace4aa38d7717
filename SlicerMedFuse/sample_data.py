"""Real sample scans fetched from package registries, verified by sha256, cached per user.

Like Slicer's SampleData module, but the sources are ones that every Debian/Ubuntu machine and
PyPI mirror can reach:

* ``head-ct``: a real non-contrast head CT ("ProMED CT 0051", 256x256x108, 0.957x0.957x1.5 mm,
  HU) from Debian's ``invesalius-examples`` package (GPL-2), fetched with ``apt-get download``
  (no root needed once apt's package lists exist) and converted from the InVesalius project.
* ``mni152-t1``: the MNI ICBM152 2009a T1 template (197x233x189, 1 mm) inside the ``nilearn``
  wheel (BSD-3 package; template under the MNI's permissive notice), fetched with
  ``pip download``.

Each download is checked against a sha256 fixed here before it is used.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import plistlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, ResourceError
from SlicerMedFuse.io import atomic_path, write_image

__all__ = ["SAMPLES", "SampleSpec", "fetch_sample", "read_invesalius_project", "sample_cache_dir"]


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """A sample scan: where it comes from and the sha256 its content must have."""

    name: str
    description: str
    license: str
    sha256: str
    fetch: Callable[[Path, str], Path]


def sample_cache_dir() -> Path:
    """``$MEDFUSE_HOME/samples`` (default ``~/.medfuse/samples``)."""
    root = Path(os.environ.get("MEDFUSE_HOME") or Path.home() / ".medfuse")
    return root / "samples"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ResourceError(f"Could not download {what} ({error}); check the network or pass your own image.") from None
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ResourceError(f"Could not download {what} ({detail[0]}); run 'apt-get update' or pass your own image.")


def read_invesalius_project(project: Path) -> tuple[sitk.Image, bytes]:
    """The CT volume of an InVesalius 3 project (``.inv3``: a gzip tar of plists and raw arrays).

    Returns:
        The image (int16 HU, LPS) and the raw matrix bytes (what the sample's sha256 covers).
    """
    with tarfile.open(project, "r:gz") as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
        header = plistlib.loads(archive.extractfile(members["main.plist"]).read())
        raw = archive.extractfile(members[header["matrix"]["filename"]]).read()
    shape = tuple(header["matrix"]["shape"])  # (slices, rows, columns)
    array = np.frombuffer(raw, dtype=np.dtype(header["matrix"]["dtype"]).newbyteorder("<")).reshape(shape)
    image = sitk.GetImageFromArray(array.astype(np.int16))
    spacing = [float(value) for value in header["spacing"]]
    image.SetSpacing(spacing)
    # No DICOM header survives in the project: rows run anterior->posterior flipped (VTK row order),
    # slices inferior->superior; left/right follows the DICOM default (columns toward patient left).
    image.SetDirection((1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    half_extent = np.array(image.GetSize(), dtype=float) * np.array(spacing) / 2
    image.SetOrigin((-half_extent[0], half_extent[1], -half_extent[2]))  # centred, as in ../shared/data
    image.SetMetaData("0008|0060", "CT")
    return image, raw


def _fetch_invesalius_head_ct(dest: Path, sha256: str) -> Path:
    """apt-get download invesalius-examples, unpack Cranium.inv3, check and convert its CT matrix."""
    with tempfile.TemporaryDirectory(prefix="medfuse-sample-") as tmp:
        work = Path(tmp)
        _run(["apt-get", "download", "invesalius-examples"], work, "the Debian package invesalius-examples")
        deb = next(work.glob("invesalius-examples_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(work / "pkg")], work, "the Debian package invesalius-examples")
        image, raw = read_invesalius_project(next((work / "pkg").rglob("Cranium.inv3")))
    if _sha256(raw) != sha256:
        raise ResourceError("The downloaded head CT does not match its sha256; it was discarded. Try again later.")
    write_image(image, dest)
    return dest


def _fetch_mni152_t1(dest: Path, sha256: str) -> Path:
    """pip download the nilearn wheel (no install), check it, take the T1 template out of it."""
    with tempfile.TemporaryDirectory(prefix="medfuse-sample-") as tmp:
        work = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "nilearn==0.14.1",
                "-d",
                str(work),
            ],
            work,
            "the nilearn wheel",
        )
        wheel = next(work.glob("nilearn-*.whl"))
        if _sha256(wheel.read_bytes()) != sha256:
            raise ResourceError(
                "The downloaded nilearn wheel does not match its sha256; it was discarded. Try again later."
            )
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read("nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    gzip.GzipFile(fileobj=io.BytesIO(data)).read(1)  # fail early on a damaged member
    with atomic_path(dest) as staged:
        staged.write_bytes(data)
    return dest


SAMPLES: dict[str, SampleSpec] = {
    "head-ct": SampleSpec(
        "head-ct",
        "Real non-contrast head CT, 256x256x108, 0.957x0.957x1.5 mm (Debian invesalius-examples, ProMED CT 0051)",
        "GPL-2 (Debian invesalius-examples)",
        "d87fd5e6aaf2c4fdf4f3fe28ee3335192fc2464ed8e9682fc78530cb837938da",  # raw int16 CT matrix
        _fetch_invesalius_head_ct,
    ),
    "mni152-t1": SampleSpec(
        "mni152-t1",
        "MNI ICBM152 2009a T1 template, 197x233x189, 1 mm (from the nilearn 0.14.1 wheel)",
        "MNI ICBM 2009 copyright notice (permissive); nilearn BSD-3",
        "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",  # nilearn-0.14.1 wheel
        _fetch_mni152_t1,
    ),
}


def fetch_sample(name: str, cache_dir: Path | None = None) -> Path:
    """Path of a sample scan, downloading and verifying it on first use.

    Raises:
        InputError: unknown sample name.
        ResourceError: the download failed or did not match its sha256.
    """
    if name not in SAMPLES:
        raise InputError(f"There is no sample '{name}'; samples are {', '.join(SAMPLES)}.")
    folder = cache_dir or sample_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{name}.nii.gz"
    if not dest.exists():
        spec = SAMPLES[name]
        spec.fetch(dest, spec.sha256)
    return dest
