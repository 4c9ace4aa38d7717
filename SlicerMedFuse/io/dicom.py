"""DICOM series: list the series of a folder, read one, and never silently mis-stack its slices.

ITK's series reader assumes the slices are equally spaced along the normal of their
ImageOrientationPatient (0020|0037). Two kinds of real series break that assumption:

* **non-uniform spacing** (missing slices, variable-thickness protocols): the gaps between
  ImagePositionPatient (0020|0032) values projected on the slice normal differ;
* **gantry tilt** (many head CTs): the slice positions drift sideways, i.e. the stack is sheared,
  while the tilt angle is in (0018|1120).

Both are measured from the positions themselves (the tilt tag is only informational: a tilted
acquisition whose positions lie along the normal is already a correct grid). With
``regularize=True`` such a series is resampled onto a regular orthogonal grid, every slice being
placed at its true physical position (bilinear in-plane, linear between slices), and a warning is
logged on ``logging.getLogger("SlicerMedFuse")``; with ``regularize=False`` it is an
:class:`~SlicerMedFuse.errors.InputError`.

Voxel arrays follow SimpleITK: ``sitk.GetArrayFromImage`` gives ``(slice, row, column)`` = (k, j, i);
positions are LPS millimetres.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io.dicom_damaged import damaged_dicom_files, quiet_itk
from SlicerMedFuse.io.sheared_stack import SlicePlacement, regularize_stack

__all__ = ["DicomSeriesInfo", "list_dicom_series", "read_dicom_series"]

logger = logging.getLogger("SlicerMedFuse")

TAG_SERIES_UID = "0020|000e"
TAG_DESCRIPTION = "0008|103e"
TAG_MODALITY = "0008|0060"
TAG_SLICE_THICKNESS = "0018|0050"
TAG_POSITION = "0020|0032"
TAG_ORIENTATION = "0020|0037"
TAG_GANTRY_TILT = "0018|1120"

#: Slices closer than this along the normal (mm) are taken as the same position (several volumes in one series).
_DUPLICATE_MM = 1e-3


def _tolerance(spacing: float) -> float:
    """Position tolerance in mm for a spacing in mm: 1 % of it, at least 0.01 mm (DICOM positions are rounded)."""
    return max(0.01, 0.01 * spacing)


@dataclasses.dataclass(frozen=True)
class DicomSeriesInfo:
    """One DICOM series found in a folder.

    Attributes:
        uid: SeriesInstanceUID (0020|000e).
        description: SeriesDescription (0008|103e), "" when absent.
        modality: Modality (0008|0060), e.g. "CT", "MR"; "" when absent.
        num_files: number of files (slices, or frames files) in the series.
        slice_thickness: SliceThickness (0018|0050) in mm, None when absent.
        files: the files, in GDCM's order (sorted along the slice normal where possible).
    """

    uid: str
    description: str
    modality: str
    num_files: int
    slice_thickness: float | None
    files: tuple[str, ...] = dataclasses.field(repr=False, compare=False)

    def summary(self) -> str:
        """A short human-readable line, e.g. ``1.2.3 'Head 5mm' CT (120 files)``."""
        description = f" '{self.description}'" if self.description else ""
        modality = f" {self.modality}" if self.modality else ""
        return f"{self.uid}{description}{modality} ({self.num_files} files)"


@dataclasses.dataclass(frozen=True)
class _SliceHeader:
    """Geometry of one single-frame file: LPS origin (mm), unit row/column directions, in-plane spacing (mm)."""

    file: str
    origin: np.ndarray  # (3,) ImagePositionPatient
    row: np.ndarray  # (3,) direction of increasing column index i
    col: np.ndarray  # (3,) direction of increasing row index j
    spacing: tuple[float, float]  # (along i, along j)
    size: tuple[int, int]  # (columns, rows)
    components: int
    has_position: bool


@dataclasses.dataclass(frozen=True)
class _StackGeometry:
    """How the slices of a series lie in space, sorted along the slice normal."""

    headers: tuple[_SliceHeader, ...]  # sorted by depth
    normal: np.ndarray  # (3,) unit slice normal, row x col
    depths: np.ndarray  # (n,) position of each slice along the normal (mm), increasing
    lateral: np.ndarray  # (n, 2) in-plane offset of each slice from the first, along (row, col) in mm
    uniform: bool
    tilted: bool

    @property
    def gaps(self) -> np.ndarray:
        return np.diff(self.depths)


def _meta(reader: sitk.ImageFileReader, key: str) -> str:
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.split("\\")[0])
    except ValueError:
        return None


def _check_folder(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"Cannot read DICOM from '{path}': it is not a folder; give the folder that holds the series.")
    return path


def _header_reader(file: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(
            f"Cannot read the DICOM file '{file}': it is damaged or not DICOM; remove it from the folder."
        ) from None
    return reader


def list_dicom_series(folder: str | os.PathLike[str]) -> list[DicomSeriesInfo]:
    """List the DICOM series directly inside ``folder`` (not recursive).

    Args:
        folder: a folder of DICOM files.

    Returns:
        One :class:`DicomSeriesInfo` per SeriesInstanceUID, in GDCM's order; empty when the
        folder holds no DICOM image.

    Raises:
        InputError: when ``folder`` is not a folder or a file of it cannot be parsed.
    """
    path = _check_folder(folder)
    try:
        with quiet_itk():  # GDCM's "No Series were found" on stderr: the caller words that case
            uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
    except RuntimeError:
        raise InputError(f"Cannot list the DICOM series in '{path}'; check that the folder is readable.") from None
    series = []
    for uid in uids:
        files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), uid))
        if not files:
            continue
        reader = _header_reader(files[0])
        series.append(
            DicomSeriesInfo(
                uid=uid,
                description=_meta(reader, TAG_DESCRIPTION),
                modality=_meta(reader, TAG_MODALITY),
                num_files=len(files),
                slice_thickness=_float_or_none(_meta(reader, TAG_SLICE_THICKNESS)),
                files=files,
            )
        )
    return series


def _choose_series(path: Path, series: list[DicomSeriesInfo], series_uid: str | None) -> DicomSeriesInfo:
    if not series:
        raise InputError(f"No DICOM series found in '{path}'; check that the folder holds the DICOM files of the scan.")
    listing = "; ".join(s.summary() for s in series)
    if series_uid is None:
        if len(series) == 1:
            return series[0]
        raise InputError(
            f"The folder '{path}' holds {len(series)} DICOM series ({listing}); choose one by appending "
            f"'#SERIES_UID' to the path, e.g. '{path}#{series[0].uid}'."
        )
    for info in series:
        if info.uid == series_uid:
            return info
    raise InputError(f"The folder '{path}' has no DICOM series '{series_uid}'; its series are: {listing}.")


def _read_headers(files: tuple[str, ...]) -> list[_SliceHeader]:
    headers = []
    for file in files:
        reader = _header_reader(file)
        direction = np.asarray(reader.GetDirection(), dtype=np.float64).reshape(3, 3)
        headers.append(
            _SliceHeader(
                file=file,
                origin=np.asarray(reader.GetOrigin(), dtype=np.float64),
                row=direction[:, 0],
                col=direction[:, 1],
                spacing=(float(reader.GetSpacing()[0]), float(reader.GetSpacing()[1])),
                size=(int(reader.GetSize()[0]), int(reader.GetSize()[1])),
                components=int(reader.GetNumberOfComponents()),
                has_position=reader.HasMetaDataKey(TAG_POSITION) and reader.HasMetaDataKey(TAG_ORIENTATION),
            )
        )
    return headers


def _analyse(headers: list[_SliceHeader], what: str) -> _StackGeometry:
    """Sort the slices along their normal and measure spacing uniformity and shear (gantry tilt)."""
    first = headers[0]
    if not all(h.has_position for h in headers):
        raise InputError(
            f"{what} lacks ImagePositionPatient/ImageOrientationPatient in some files, so its slices cannot be "
            "placed in space; export the series with full geometry (or as NIfTI/NRRD)."
        )
    for h in headers[1:]:
        if not (np.allclose(h.row, first.row, atol=1e-4) and np.allclose(h.col, first.col, atol=1e-4)):
            raise InputError(
                f"{what} mixes slices of different orientations (e.g. a localizer); export or select a series "
                "with one orientation."
            )
        if h.size != first.size or not np.allclose(h.spacing, first.spacing, rtol=1e-4):
            raise InputError(
                f"{what} mixes slices of different matrix size or pixel spacing; select a consistent series."
            )
    normal = np.cross(first.row, first.col)
    normal /= np.linalg.norm(normal)
    origins = np.stack([h.origin for h in headers])  # (n, 3)
    depth = origins @ normal
    order = np.argsort(depth, kind="stable")
    origins, depth = origins[order], depth[order]
    sorted_headers = tuple(headers[i] for i in order)

    gaps = np.diff(depth)
    if gaps.size and gaps.min() < _DUPLICATE_MM:
        distinct = int(np.sum(gaps >= _DUPLICATE_MM)) + 1
        raise InputError(
            f"{what} has {len(headers)} files at only {distinct} distinct slice positions, i.e. several volumes "
            "(time points, echoes or phases) share one series UID; split them into separate series first."
        )
    offsets = origins - origins[0] - np.outer(depth - depth[0], normal)
    lateral = np.stack([offsets @ first.row, offsets @ first.col], axis=1)  # (n, 2) mm
    uniform, tilted = True, False
    if gaps.size:
        native = _native_spacing(gaps)
        uniform = bool(np.max(np.abs(gaps - native)) <= _tolerance(native))
        tilted = bool(np.max(np.hypot(lateral[:, 0], lateral[:, 1])) > _tolerance(min(first.spacing)))
    return _StackGeometry(sorted_headers, normal, depth, lateral, uniform, tilted)


def _native_spacing(gaps: np.ndarray) -> float:
    """The series' own slice spacing (mm): the typical of the smallest gaps, so a missing slice or a
    thicker part of a variable-thickness protocol never coarsens the thin part."""
    smallest = float(gaps.min())
    return float(np.median(gaps[gaps <= smallest + _tolerance(smallest)]))


def _describe_gaps(stack: _StackGeometry, limit: int = 3) -> str:
    """Where the slices lie wider apart than the native spacing: each run of wide gaps with the
    positions (LPS mm) and files of the slices around it (a single missing slice is a run of one)."""
    native = _native_spacing(stack.gaps)
    wide = stack.gaps > native + _tolerance(native)
    starts = np.flatnonzero(wide & ~np.concatenate([[False], wide[:-1]]))
    runs = [(int(k), int(k) + int(np.argmin(np.append(wide[k:], False)))) for k in starts]  # [first, last + 1)

    def point(k: int) -> str:
        return "(" + ", ".join(f"{v:.1f}" for v in stack.headers[k].origin) + ")"

    def describe(first: int, stop: int) -> str:
        files = f"('{Path(stack.headers[first].file).name}' to '{Path(stack.headers[stop].file).name}')"
        if stop - first == 1:
            return f"{stack.gaps[first]:.4g} mm after the slice at {point(first)} mm {files}"
        return f"{stop - first} gaps of up to {stack.gaps[first:stop].max():.4g} mm from {point(first)} to {point(stop)} mm {files}"

    shown = "; ".join(describe(*run) for run in runs[:limit])
    more = f"; and {len(runs) - limit} more" if len(runs) > limit else ""
    return f"gaps wider than its {native:.4g} mm spacing: {shown}{more}"


def _describe_problems(stack: _StackGeometry, tilt_tag: float | None) -> str:
    problems = []
    if not stack.uniform:
        problems.append(
            f"non-uniform slice spacing ({stack.gaps.min():.4g} to {stack.gaps.max():.4g} mm between slices; "
            f"{_describe_gaps(stack)})"
        )
    if stack.tilted:
        extent = stack.depths[-1] - stack.depths[0]
        shear = float(np.max(np.hypot(stack.lateral[:, 0], stack.lateral[:, 1])))
        angle = tilt_tag if tilt_tag else float(np.degrees(np.arctan2(shear, extent)))
        problems.append(f"slices sheared by a gantry tilt of about {abs(angle):.3g} degrees")
    return " and ".join(problems)


def _regularize(stack: _StackGeometry, metadata: dict[str, str]) -> sitk.Image:
    """Resample the slices onto a regular orthogonal grid: the native spacing, tilt removed, NaN-free.

    Target frame: axes (row, col, normal) of the series, origin at the first slice's position
    shifted so the grid covers every (sheared) slice. Returns float32.
    """
    first = stack.headers[0]
    placement = SlicePlacement(
        origin=first.origin,
        row=first.row,
        col=first.col,
        normal=stack.normal,
        pixel_spacing=first.spacing,
        size=first.size,
        depths=stack.depths,
        lateral=stack.lateral,
    )
    spacing_z = _native_spacing(stack.gaps)

    def read(k: int) -> np.ndarray:
        return sitk.GetArrayFromImage(_read_slice(stack.headers[k].file))

    # the last target slice may pass the last acquired one by the spacing tolerance (its value is then that slice's)
    image = regularize_stack(placement, read, spacing_z, _tolerance(spacing_z))
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    return image


def _read_slice(file: str) -> sitk.Image:
    """One slice file as float32 (rescale applied); a file whose pixels cannot be read is named."""
    try:
        return sitk.ReadImage(file, sitk.sitkFloat32)
    except RuntimeError:
        raise InputError(
            f"Cannot read the pixel data of the DICOM file '{file}': it is truncated or damaged; "
            "export the series again."
        ) from None


def _read_regular(stack: _StackGeometry, metadata: dict[str, str]) -> sitk.Image:
    """Read a uniformly spaced, unsheared stack and set its geometry from the measured positions."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([h.file for h in stack.headers])
    try:
        image = reader.Execute()
    except RuntimeError:
        for header in stack.headers:  # name the first file that cannot be read on its own
            _read_slice(header.file)
        raise InputError(
            f"Cannot read the pixel data of DICOM series {metadata.get(TAG_SERIES_UID, '')}; the files may be "
            "damaged or compressed with an unsupported transfer syntax."
        ) from None
    first = stack.headers[0]
    if len(stack.headers) > 1:
        spacing_z = float((stack.depths[-1] - stack.depths[0]) / (len(stack.depths) - 1))
        image.SetSpacing((first.spacing[0], first.spacing[1], spacing_z))
        image.SetOrigin(tuple(float(x) for x in first.origin))
        image.SetDirection(tuple(float(x) for x in np.column_stack([first.row, first.col, stack.normal]).ravel()))
    for key in list(image.GetMetaDataKeys()):
        image.EraseMetaData(key)
    for key, value in metadata.items():
        image.SetMetaData(key, value)
    return image


def read_dicom_series(
    folder: str | os.PathLike[str], series_uid: str | None = None, *, regularize: bool = True
) -> sitk.Image:
    """Read one DICOM series as a 3D image with its full LPS geometry.

    Args:
        folder: a folder of DICOM files (not searched recursively).
        series_uid: the SeriesInstanceUID to read; may be omitted when the folder holds one series.
        regularize: resample a series with non-uniform slice spacing or gantry tilt onto a regular
            orthogonal grid (slice spacing = the series' smallest regular gap, so a missing slice is
            interpolated and the rest kept; float32; a warning names each gap). When
            False such a series raises :class:`InputError` instead.

    Returns:
        A 3D image, array axes (slice, row, column). Its metadata holds SeriesInstanceUID
        ("0020|000e"), Modality ("0008|0060"), SeriesDescription ("0008|103e"), SliceThickness
        ("0018|0050", mm) and GantryDetectorTilt ("0018|1120", degrees; the acquisition's, also after
        regularization) where the files have them.

    Raises:
        InputError: no series, several series and no ``series_uid``, an unknown ``series_uid``,
            slices without position, mixed orientations, several volumes in one series, or an
            irregular series with ``regularize=False``.
    """
    path = _check_folder(folder)
    series = list_dicom_series(path)
    damaged = damaged_dicom_files(path, [file for item in series for file in item.files])
    if damaged:
        names = ", ".join(f"'{file.name}'" for file in damaged)
        logger.warning(
            "The DICOM folder '%s' holds %d file(s) that cannot be read (truncated or damaged) and were left out: "
            "%s; if the series has a gap there, export it again.",
            path,
            len(damaged),
            names,
        )
    info = _choose_series(path, series, series_uid)
    first = _header_reader(info.files[0])
    kept = (TAG_SERIES_UID, TAG_MODALITY, TAG_DESCRIPTION, TAG_SLICE_THICKNESS, TAG_GANTRY_TILT)
    metadata = {key: _meta(first, key) for key in kept}
    metadata = {key: value for key, value in metadata.items() if value}
    what = f"The DICOM series {info.uid} in '{path}'"

    if info.num_files == 1:  # a single (possibly multi-frame) file: ITK places its frames itself
        image = sitk.ReadImage(info.files[0])
        for key, value in metadata.items():
            image.SetMetaData(key, value)
        return image

    stack = _analyse(_read_headers(info.files), what)
    if stack.uniform and not stack.tilted:
        return _read_regular(stack, metadata)
    tilt_tag = _float_or_none(_meta(first, TAG_GANTRY_TILT))
    problems = _describe_problems(stack, tilt_tag)
    if not regularize:
        raise InputError(
            f"{what} has {problems}; read it with regularize=True to resample it onto a regular grid, or "
            "export a regularized series."
        )
    if stack.headers[0].components != 1:
        raise InputError(
            f"{what} has {problems} and colour pixels, which cannot be regularized; export it as grayscale."
        )
    image = _regularize(stack, metadata)
    logger.warning(
        "%s has %s; resampled it onto a regular grid of %d slices %.4g mm apart, its own spacing (each slice at "
        "its true physical position, linear interpolation only where no slice was acquired).",
        what,
        problems,
        image.GetSize()[2],
        image.GetSpacing()[2],
    )
    return image
