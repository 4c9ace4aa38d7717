"""PNG previews: central axial, coronal and sagittal slices of one or more volumes, side by side.

Slices are resampled to square pixels so thick-slice volumes show their true aspect ratio; every
row is one volume with its title. Used by ``medfuse demo`` and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw

from SlicerMedFuse.geometry import to_canonical
from SlicerMedFuse.io.atomic import atomic_path

__all__ = ["orthogonal_slices", "save_preview"]

TILE = 256


def orthogonal_slices(image: sitk.Image, center_mm: Sequence[float] | None = None) -> list[np.ndarray]:
    """Axial, coronal, sagittal slices (2D float arrays, square pixels, radiological up = superior/anterior).

    Args:
        image: a 3D scalar image (any orientation; shown in canonical RAS-like layout).
        center_mm: LPS point the three planes pass through; default the image centre.
    """
    canonical = to_canonical(sitk.Cast(image, sitk.sitkFloat32), "LPS")
    array = sitk.GetArrayFromImage(canonical)  # (z inferior->superior, y anterior->posterior, x right->left)
    spacing = canonical.GetSpacing()
    if center_mm is None:
        index = [s // 2 for s in canonical.GetSize()]
    else:
        index = list(canonical.TransformPhysicalPointToIndex(tuple(center_mm)))
        index = [min(max(i, 0), s - 1) for i, s in zip(index, canonical.GetSize(), strict=True)]
    planes = [
        (array[index[2]], (spacing[1], spacing[0])),  # axial (y, x): anterior at top
        (array[:, index[1], :][::-1], (spacing[2], spacing[0])),  # coronal (z, x): superior at top
        (array[:, :, index[0]][::-1], (spacing[2], spacing[1])),  # sagittal (z, y): superior at top
    ]
    result = []
    for plane, (row_mm, col_mm) in planes:
        rows = max(1, int(round(plane.shape[0] * row_mm / min(row_mm, col_mm))))
        cols = max(1, int(round(plane.shape[1] * col_mm / min(row_mm, col_mm))))
        resized = Image.fromarray(plane.astype(np.float32), mode="F").resize((cols, rows), Image.BILINEAR)
        result.append(np.asarray(resized))
    return result


def _to_tile(plane: np.ndarray, window: tuple[float, float]) -> Image.Image:
    low, high = window
    scaled = np.clip((plane - low) / max(high - low, 1e-6), 0, 1) * 255
    tile = Image.fromarray(scaled.astype(np.uint8), mode="L")
    tile.thumbnail((TILE, TILE))
    canvas = Image.new("L", (TILE, TILE))
    canvas.paste(tile, ((TILE - tile.width) // 2, (TILE - tile.height) // 2))
    return canvas


def save_preview(
    rows: Sequence[tuple[str, sitk.Image]],
    path: str | Path,
    *,
    window: tuple[float, float] | None = None,
) -> Path:
    """Write a PNG with one row per (title, image): axial | coronal | sagittal.

    Args:
        rows: titles and images; all rows share one display window.
        path: the PNG to write (atomically).
        window: (low, high) display range; default the 1st-99th percentile of the first image.
    """
    if window is None:
        values = sitk.GetArrayViewFromImage(rows[0][1])
        window = tuple(float(v) for v in np.percentile(values, [1, 99]))
    title_height = 18
    sheet = Image.new("L", (3 * TILE, len(rows) * (TILE + title_height)), color=0)
    draw = ImageDraw.Draw(sheet)
    for row, (title, image) in enumerate(rows):
        top = row * (TILE + title_height)
        draw.text((4, top + 3), title, fill=255)
        for column, plane in enumerate(orthogonal_slices(image)):
            sheet.paste(_to_tile(plane, window), (column * TILE, top + title_height))
    path = Path(path)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
