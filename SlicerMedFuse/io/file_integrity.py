"""What ITK reads without a word and must not be used: truncated data, NaN voxels, bad voxel sizes.

ITK's readers are lenient where a clinical pipeline must not be:

* a NIfTI file (``.nii`` or ``.nii.gz``) shorter than its header says is read with the missing
  voxels set to 0 (a truncated download becomes a scan with a zero-filled top);
* NaN and infinite voxels of a NIfTI file come back as 0 (NRRD and MetaImage keep them, and
  :func:`~SlicerMedFuse.io.checks.check_image` catches them there);
* a negative voxel size (NIfTI ``pixdim``, MetaImage ``ElementSpacing``, NRRD ``spacings``)
  flips that axis, and a zero one is replaced by 1 mm, with at most a C++ warning on stderr;
* a sheared NIfTI sform is read at the qform's place (centimetres away) or not at all.

:func:`check_image_file` reads the header itself (``struct``: NIfTI-1 and NIfTI-2, either byte
order; text headers for MetaImage and NRRD) and, for NIfTI, streams the voxel data once
(decompressing ``.nii.gz`` to its end, so a cut gzip stream is noticed) to compare its length with
the header and to count non-finite voxels. A NIfTI's sform and qform are checked too (a sheared
sform, or an sform and qform that disagree: :mod:`~SlicerMedFuse.io.nifti_geometry`). Each problem is an
:class:`~SlicerMedFuse.errors.InputError` (exit 3) naming the file and the fix.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io.nifti_geometry import declared_affine

__all__ = ["check_image_file"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_BYTES = 1 << 22  # 4 MiB of voxel data per step: bounded memory whatever the file size
#: NIfTI datatype codes of real floating-point voxels -> numpy dtype (without byte order).
_FLOAT_TYPES = {16: "f4", 64: "f8"}
_TEXT_HEADER_BYTES = 1 << 16


def _truncated(path: Path, detail: str) -> InputError:
    return InputError(f"Cannot read '{path}': the file is truncated or corrupt ({detail}); copy or export it again.")


def _bad_voxel_size(path: Path, field: str, values: list[float]) -> InputError:
    shown = " ".join(f"{v:g}" for v in values)
    return InputError(
        f"'{path}' has a zero, negative or undefined voxel size in its header ({field} {shown}), which ITK would "
        "flip or replace by 1 mm; fix the header (voxel sizes > 0, any flip in the direction) and try again."
    )


# --- NIfTI -------------------------------------------------------------------------------------------------


class _NiftiHeader:
    """The fields of a NIfTI-1 or NIfTI-2 header: how many voxel bytes follow it, and where they lie."""

    def __init__(self, raw: bytes, path: Path) -> None:
        if len(raw) < 4:
            raise _truncated(path, "the header is incomplete")
        order = next((e for e in "<>" if struct.unpack(f"{e}i", raw[:4])[0] in (348, 540)), None)
        if order is None:
            raise InputError(
                f"Cannot read '{path}': the file is not a valid NIfTI image (no NIfTI header); "
                "check the path or export the file again."
            )
        self.version = 1 if struct.unpack(f"{order}i", raw[:4])[0] == 348 else 2
        size = 348 if self.version == 1 else 540
        if len(raw) < size:
            raise _truncated(path, "the header is incomplete")
        if self.version == 1:
            self.datatype, self.bitpix = struct.unpack(f"{order}hh", raw[70:74])
            dim = struct.unpack(f"{order}8h", raw[40:56])
            self.pixdim = struct.unpack(f"{order}8f", raw[76:108])
            self.vox_offset = int(struct.unpack(f"{order}f", raw[108:112])[0])
            self.single_file = raw[344:348] == b"n+1\x00"
            self.qform_code, self.sform_code = struct.unpack(f"{order}hh", raw[252:256])
            xforms = struct.unpack(f"{order}18f", raw[256:328])
        else:
            self.datatype, self.bitpix = struct.unpack(f"{order}hh", raw[12:16])
            dim = struct.unpack(f"{order}8q", raw[16:80])
            self.pixdim = struct.unpack(f"{order}8d", raw[104:168])
            self.vox_offset = int(struct.unpack(f"{order}q", raw[168:176])[0])
            self.single_file = raw[4:8] == b"n+2\x00"
            self.qform_code, self.sform_code = struct.unpack(f"{order}ii", raw[344:352])
            xforms = struct.unpack(f"{order}18d", raw[352:496])
        self.order = order
        # quatern_b/c/d, qoffset_x/y/z, then srow_x, srow_y, srow_z (4 each): see nifti_geometry
        self.quatern, self.qoffset, self.srow = xforms[0:3], xforms[3:6], xforms[6:18]
        self.header_size = size
        ndim = int(dim[0]) if 1 <= dim[0] <= 7 else 0
        self.shape = tuple(int(n) for n in dim[1 : 1 + ndim])
        self.spatial_pixdim = [float(p) for p in self.pixdim[1 : 1 + min(ndim, 3)]]

    @property
    def data_bytes(self) -> int:
        """Bytes of voxel data the header announces."""
        return math.prod(max(n, 0) for n in self.shape) * max(int(self.bitpix), 0) // 8


def _open_stream(path: Path) -> BinaryIO:
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[return-value]


def _chunks(stream: BinaryIO, path: Path) -> Iterator[bytes]:
    """The rest of ``stream`` in chunks; a cut or damaged gzip stream is an :class:`InputError`."""
    try:
        while chunk := stream.read(_CHUNK_BYTES):
            yield chunk
    except EOFError:
        raise _truncated(path, "the compressed data ends early") from None
    except (zlib.error, gzip.BadGzipFile, OSError) as error:
        raise _truncated(path, f"the compressed data is damaged: {error}") from None


def _scan_voxels(stream: BinaryIO, header: _NiftiHeader, path: Path) -> tuple[int, int, int]:
    """Read the voxel data to its end: (bytes found, NaN voxels, infinite voxels)."""
    dtype = _FLOAT_TYPES.get(int(header.datatype))
    item = np.dtype(f"{header.order}{dtype}") if dtype else None
    found = analysed = nans = infinite = 0
    pending = b""  # bytes of a voxel split between two chunks
    for chunk in _chunks(stream, path):
        found += len(chunk)
        if item is None:
            continue
        data = (pending + chunk)[: max(header.data_bytes - analysed, 0)]  # bytes past the voxels are not voxels
        usable = len(data) - len(data) % item.itemsize
        values = np.frombuffer(data[:usable], dtype=item)
        analysed, pending = analysed + usable, data[usable:]
        if values.size and not np.isfinite(values).all():
            nans += int(np.count_nonzero(np.isnan(values)))
            infinite += int(np.count_nonzero(np.isinf(values)))
    return found, nans, infinite


def _check_nifti(path: Path) -> np.ndarray | None:
    with _open_stream(path) as stream:
        first = _read_exactly(stream, 540, path)
        header = _NiftiHeader(first, path)
        bad = [p for p in header.spatial_pixdim if not (math.isfinite(p) and p > 0)]
        if bad:
            raise _bad_voxel_size(path, "pixdim", header.spatial_pixdim)
        if not header.single_file or not header.shape:
            return None  # a header-only (.hdr/.img) pair or a header without a size: ITK decides
        declared = declared_affine(header, path)  # a sheared sform, or an sform and qform that disagree
        # skip the extensions between the header and the voxels (the first bytes are already read)
        skip = max(header.vox_offset, header.header_size) - len(first)
        voxels_read = b""
        if skip < 0:
            voxels_read, skip = first[skip:], 0
        if skip and sum(len(chunk) for chunk in _chunks(_Limited(stream, skip), path)) < skip:
            raise _truncated(path, "it ends before its voxel data starts")
        found, nans, infinite = _scan_voxels(_Prefixed(voxels_read, stream), header, path)  # type: ignore[arg-type]
    if found < header.data_bytes:
        percent = 100.0 * found / header.data_bytes if header.data_bytes else 0.0
        raise _truncated(path, f"{percent:.0f} % of the {header.data_bytes} bytes of voxel data are present")
    if nans or infinite:
        raise InputError(
            f"'{path}' has {nans} NaN and {infinite} infinite voxels (ITK would read them as 0); "
            "replace them (e.g. with 0) before running."
        )
    return declared


class _Prefixed:
    """A read-only stream: ``prefix`` then the rest of ``stream`` (header bytes that were voxel data)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int) -> bytes:
        if self.prefix:
            head, self.prefix = self.prefix[:size], self.prefix[size:]
            return head
        return self.stream.read(size)


def _read_exactly(stream: BinaryIO, size: int, path: Path) -> bytes:
    """Up to ``size`` bytes (fewer only at the end of the file)."""
    return b"".join(_chunks(_Limited(stream, size), path))


class _Limited:
    """A read-only view of the next ``size`` bytes of ``stream``."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream = stream
        self.remaining = size

    def read(self, size: int) -> bytes:
        chunk = self.stream.read(min(size, self.remaining)) if self.remaining > 0 else b""
        self.remaining -= len(chunk)
        return chunk


# --- text headers (MetaImage, NRRD) ------------------------------------------------------------------------


def _header_lines(path: Path, end_marker: str | None) -> list[str]:
    with path.open("rb") as stream:
        text = stream.read(_TEXT_HEADER_BYTES).decode("latin-1")
    lines = []
    for line in text.splitlines():
        if end_marker is None and not line.strip():
            break  # NRRD: a blank line ends the header
        lines.append(line)
        if end_marker is not None and line.strip().startswith(end_marker):
            break
    return lines


def _numbers(text: str) -> list[float]:
    values = []
    for word in text.replace(",", " ").split():
        try:
            values.append(float(word))
        except ValueError:
            continue
    return values


def _check_metaimage(path: Path) -> None:
    for line in _header_lines(path, "ElementDataFile"):
        key, sep, value = line.partition("=")
        if sep and key.strip() == "ElementSpacing":
            spacing = _numbers(value)
            if any(not (math.isfinite(s) and s > 0) for s in spacing):
                raise _bad_voxel_size(path, "ElementSpacing", spacing)


def _check_nrrd(path: Path) -> None:
    for line in _header_lines(path, None)[1:]:  # the first line is the NRRD magic
        key, sep, value = line.partition(":")
        if sep and key.strip() == "spacings":
            spacing = _numbers(value)  # 'nan' marks a non-spatial axis: only finite values must be > 0
            if any(math.isfinite(s) and s <= 0 for s in spacing):
                raise _bad_voxel_size(path, "spacings", spacing)


def check_image_file(path: str | os.PathLike[str], extension: str) -> np.ndarray | None:
    """Check an image file's header and (for NIfTI) its voxel data before ITK reads it.

    Args:
        path: the file.
        extension: its format's extension as :data:`~SlicerMedFuse.io.image_io.READ_EXTENSIONS`
            names it (``".nii.gz"``, ``".nii"``, ``".mha"``, ``".mhd"``, ``".nrrd"``, ``".nhdr"``);
            other extensions are not checked.

    Returns:
        For a single-file NIfTI whose header places its voxels (``sform_code`` or ``qform_code``
        > 0): the voxel-index -> LPS mm affine it declares, to compare with what ITK reads
        (:func:`~SlicerMedFuse.io.nifti_geometry.check_itk_placement`); otherwise None.

    Raises:
        InputError: the file is truncated or its compressed data is damaged, its NIfTI voxels
            hold NaN or infinite values (with the counts), a voxel size is zero or negative, or
            its NIfTI sform is sheared or disagrees with its qform.
    """
    path = Path(path)
    try:
        if extension in (".nii", ".nii.gz"):
            return _check_nifti(path)
        if extension in (".mha", ".mhd"):
            _check_metaimage(path)
        elif extension in (".nrrd", ".nhdr"):
            _check_nrrd(path)
        return None
    except OSError as error:
        raise InputError(
            f"Cannot read '{path}' ({error.strerror or error}); check the path and its permissions."
        ) from None
