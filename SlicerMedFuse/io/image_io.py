"""The backend's image I/O boundary: files <-> ``SimpleITK.Image`` with origin, spacing and direction kept.

Formats: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``)
and DICOM (a folder, ``folder#SERIES_UID``, or one ``.dcm`` file standing for its series).
Physical space is ITK's LPS in mm; ``sitk.GetArrayFromImage`` gives arrays in (k, j, i) =
(slice, row, column) order. Every failure a user can cause becomes a one-sentence
:class:`~SlicerMedFuse.errors.MedFuseError`; SimpleITK's exceptions never escape.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, ResourceError, UsageError
from SlicerMedFuse.io.atomic import atomic_path
from SlicerMedFuse.io.dicom import list_dicom_series, read_dicom_series
from SlicerMedFuse.io.file_integrity import check_image_file
from SlicerMedFuse.io.nifti_geometry import check_itk_placement
from SlicerMedFuse.io.output_targets import check_nifti_direction

__all__ = ["READ_EXTENSIONS", "WRITE_EXTENSIONS", "read_image", "split_series_path", "write_image"]

logger = logging.getLogger("SlicerMedFuse")

#: File extensions written by :func:`write_image` -> format name. Longest first where they overlap.
WRITE_EXTENSIONS: dict[str, str] = {
    ".nii.gz": "NIfTI",
    ".nii": "NIfTI",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD",
    ".mha": "MetaImage",
    ".mhd": "MetaImage",
}
#: File extensions read by :func:`read_image` (besides DICOM folders).
READ_EXTENSIONS: dict[str, str] = {**WRITE_EXTENSIONS, ".dcm": "DICOM"}

_FORMATS_TEXT = "NIfTI .nii/.nii.gz, NRRD .nrrd/.nhdr, MetaImage .mha/.mhd, or a DICOM folder"


def _extension(path: Path) -> str | None:
    name = path.name.lower()
    return next((ext for ext in READ_EXTENSIONS if name.endswith(ext)), None)


def _is_dicom_file(path: Path) -> bool:
    """True for a DICOM Part 10 file (the "DICM" magic after the 128-byte preamble)."""
    try:
        with path.open("rb") as stream:
            stream.seek(128)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def split_series_path(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Split ``folder#SERIES_UID`` into the folder and the UID; other paths give ``(path, None)``.

    A path that exists as given is never split, so file names containing ``#`` keep working.
    """
    text = os.fspath(path)
    if "#" in text and not Path(text).exists():
        folder, _, uid = text.rpartition("#")
        if folder and uid:
            return Path(folder), uid
    return Path(text), None


def _read_dicom_file(path: Path, series_uid: str | None) -> sitk.Image:
    """One DICOM file stands for the whole series it belongs to (its folder is read)."""
    if series_uid is None:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise InputError(
                f"Cannot read '{path}': the DICOM file is damaged; check the file or export it again."
            ) from None
        series_uid = reader.GetMetaData("0020|000e").strip() if reader.HasMetaDataKey("0020|000e") else None
    if series_uid is None and len(list_dicom_series(path.parent)) != 1:
        raise InputError(f"Cannot tell which series '{path}' belongs to; give its folder as 'FOLDER#SERIES_UID'.")
    logger.info("Reading the DICOM series of '%s' from its folder '%s'.", path.name, path.parent)
    return read_dicom_series(path.parent, series_uid)


def read_image(path: str | os.PathLike[str], *, series_uid: str | None = None) -> sitk.Image:
    """Read an image file or a DICOM series, keeping origin, spacing and direction (LPS, mm).

    Args:
        path: a ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr``/``.mha``/``.mhd`` file, a DICOM folder,
            ``FOLDER#SERIES_UID`` to pick one series of a folder, or a DICOM file (its whole series
            is read).
        series_uid: the DICOM series to read (same as the ``#SERIES_UID`` suffix).

    Returns:
        The image as stored (pixel type and number of components kept). DICOM series with
        non-uniform spacing or gantry tilt are regularized (see
        :func:`~SlicerMedFuse.io.dicom.read_dicom_series`).

    Raises:
        InputError: missing path, unsupported format, unreadable, truncated or invalid file, NaN or
            infinite NIfTI voxels, a zero or negative voxel size in the header, a NIfTI whose sform
            is sheared, disagrees with its qform or is read elsewhere by ITK, DICOM folder
            problems (no series, several series and none chosen, irregular slices, ...).
        UsageError: ``series_uid`` given twice with different values, or for a non-DICOM file.
    """
    file, uid_in_path = split_series_path(path)
    if uid_in_path is not None:
        if series_uid is not None and series_uid != uid_in_path:
            raise UsageError(
                f"Two different series UIDs were given for '{file}' ({uid_in_path}, {series_uid}); give one."
            )
        series_uid = uid_in_path
    if not file.exists():
        raise InputError(f"Cannot read '{file}': no such file or folder; check the path.")
    if file.is_dir():
        return read_dicom_series(file, series_uid)

    extension = _extension(file)
    if extension == ".dcm" or (extension is None and _is_dicom_file(file)):
        return _read_dicom_file(file, series_uid)
    if series_uid is not None:
        raise UsageError(f"'{file}' is not DICOM, so a series UID ('#{series_uid}') does not apply; remove it.")
    if extension is None:
        raise InputError(f"Cannot read '{file}': the format is not supported ({_FORMATS_TEXT}); convert it first.")
    # what ITK would read silently: truncated data, NaN, bad voxel sizes, a sheared or ambiguous NIfTI sform
    declared = check_image_file(file, extension)
    try:
        image = sitk.ReadImage(str(file))
    except (RuntimeError, OSError) as error:
        logger.debug("SimpleITK could not read %s: %s", file, error)
        raise InputError(
            f"Cannot read '{file}': the file is not a valid {READ_EXTENSIONS[extension]} image ({_FORMATS_TEXT}); "
            "check the path or export the file again."
        ) from None
    except MemoryError:
        raise ResourceError(
            f"Not enough memory to read '{file}'; close other programs or use a machine with more memory."
        ) from None
    if declared is not None:
        check_itk_placement(image, declared, file)
    return image


def write_image(image: sitk.Image, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``image`` atomically: a failed or interrupted write leaves no partial file behind.

    The file is written under its own name in a hidden staging folder of the output folder and
    renamed into place (see :func:`~SlicerMedFuse.io.atomic.atomic_path`); missing output folders
    are created. Geometry and pixel type are kept.

    Args:
        image: the image to write.
        path: output file; the extension picks the format (``.nii.gz``, ``.nii``, ``.nrrd``,
            ``.nhdr``, ``.mha``, ``.mhd``).
        compress: compress the voxel data (gzip/zlib) where the format allows it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``image`` is not a ``SimpleITK.Image``.
        UsageError: the extension is not a supported output format, or a sheared image would be written
            as NIfTI (which would move it).
        ResourceError: the file cannot be written (folder not writable, disk full, ...).
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    path = Path(path)
    if _extension(path) not in WRITE_EXTENSIONS:
        allowed = ", ".join(WRITE_EXTENSIONS)
        raise UsageError(f"Cannot write '{path}': the extension is not supported; use one of {allowed}.")
    check_nifti_direction(image, path, "image")
    try:
        with atomic_path(path) as temp:
            sitk.WriteImage(image, str(temp), useCompression=compress)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ResourceError(f"Cannot write '{path}' ({reason}); choose a writable folder with free space.") from None
    except RuntimeError as error:
        logger.debug("SimpleITK could not write %s: %s", path, error)
        raise ResourceError(
            f"Cannot write '{path}': the image writer failed; check that the folder is writable and has free space."
        ) from None
    return path
