"""Image I/O: read/write NIfTI, NRRD, MetaImage and DICOM with geometry kept; atomic outputs; input checks.

Every image is a ``SimpleITK.Image`` in ITK's LPS world (mm); user-caused failures raise
:class:`~SlicerMedFuse.errors.MedFuseError` subclasses with one-sentence messages.
"""

from __future__ import annotations

from SlicerMedFuse.io.atomic import atomic_path, commit_outputs, write_json_atomic
from SlicerMedFuse.io.checks import check_image
from SlicerMedFuse.io.dicom import DicomSeriesInfo, list_dicom_series, read_dicom_series
from SlicerMedFuse.io.image_io import READ_EXTENSIONS, WRITE_EXTENSIONS, read_image, split_series_path, write_image

__all__ = [
    "READ_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "DicomSeriesInfo",
    "atomic_path",
    "check_image",
    "commit_outputs",
    "list_dicom_series",
    "read_dicom_series",
    "read_image",
    "split_series_path",
    "write_image",
    "write_json_atomic",
]
