"""SR4ZCT's thick-slice model: F-down (simulate slices of thickness r, overlap o) and F-up (back to fine pixels).

Shi, Pelt & Batenburg, "SR4ZCT: Self-supervised Through-Plane Resolution Enhancement for CT Images
with Arbitrary Resolution and Overlap", MLMI 2023, Fig. 2 and the authors' ``utils.py``:

* **F-down** along one axis of an image with pixel size s (n pixels, centres at (i + 1/2) s, so
  the image covers [0, n s] mm): thick slices of thickness r are centred at r/2 + k d,
  d = r - o, k = 0 .. K-1 with K = 1 + floor((n s - r) / d). Each thick value is the mean of the
  image linearly interpolated at ``points`` (9) positions c_k + (j - (points - 1)/2) r / points,
  the centres of ``points`` equal parts of the slab [c_k - r/2, c_k + r/2].
* **F-up**: linear interpolation from the thick-slice centres back to the fine pixel centres.

Both are linear maps along one axis, so each is a small dense matrix (K x n, n x K) applied with a
``tensordot``: exact for any non-integer r/s and o (the point of SR4ZCT, where a strided
convolution can only represent integer ratios), vectorised, and usable on the GPU. Positions
outside the sampled range are linearly extrapolated from the two nearest samples, as scipy's
``interp1d(fill_value="extrapolate")`` in the authors' code; :func:`degrade` then clips to the
input range, as they do.

Deviation, on purpose: the authors' code averages the 9 points only when o > 0 (with o = 0 it
point-samples the slab centre); here the slab is always averaged, which is the physical model of
Fig. 2 for any overlap (o = 0 included).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "apply_along",
    "degradation_matrix",
    "degrade",
    "f_down",
    "f_up",
    "linear_interpolation_matrix",
    "slab_average_matrix",
    "slab_centres",
]

#: Points averaged inside each thick slice (the authors' ``num_points_overlap``).
DEFAULT_POINTS = 9
_EPS = 1e-6


def _check_slab(thickness: float, overlap: float) -> float:
    if not thickness > 0:
        raise ValueError(f"thickness must be > 0 mm, got {thickness}")
    spacing = thickness - overlap
    if not spacing > 0:
        raise ValueError(
            f"overlap must be smaller than the thickness (spacing r - o > 0), got r={thickness}, o={overlap}"
        )
    return spacing


def slab_centres(
    length: float, thickness: float, overlap: float, *, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Centres (mm) of the thick slices that fit in [0, length].

    Args:
        length: extent of the fine image along the axis, n s (mm).
        thickness: slice thickness r (mm).
        overlap: overlap o = r - d between neighbouring slices (mm); negative for gaps.
        dtype: dtype of the result.

    Returns:
        (K,) tensor r/2 + k (r - o), K = 1 + floor((length - r) / (r - o)).

    Raises:
        ValueError: no slice fits, or o >= r.
    """
    spacing = _check_slab(thickness, overlap)
    if length < thickness - _EPS:
        raise ValueError(f"a {thickness} mm slice does not fit in {length} mm")
    count = 1 + int(math.floor((length - thickness) / spacing + _EPS))
    return thickness / 2 + spacing * torch.arange(count, dtype=dtype)


def linear_interpolation_matrix(
    source: torch.Tensor, target: torch.Tensor, *, extrapolate: bool = True
) -> torch.Tensor:
    """Matrix M (T, S) with ``M @ values`` = values at ``source`` linearly interpolated at ``target``.

    Args:
        source: (S,) strictly increasing sample positions, S >= 2.
        target: (T,) positions to interpolate at.
        extrapolate: outside [source[0], source[-1]], continue the end segments linearly (True,
            scipy ``fill_value="extrapolate"``) or repeat the end values (False).

    Returns:
        (T, S) tensor in the dtype of ``source``; each row sums to 1, so constants are preserved.
    """
    if source.ndim != 1 or source.numel() < 2:
        raise ValueError(f"need at least 2 source positions, got shape {tuple(source.shape)}")
    if not bool(torch.all(source[1:] > source[:-1])):
        raise ValueError("source positions must be strictly increasing")
    target = target.to(source)
    right = torch.searchsorted(source, target, right=True).clamp(1, source.numel() - 1)
    left = right - 1
    fraction = (target - source[left]) / (source[right] - source[left])
    if not extrapolate:
        fraction = fraction.clamp(0.0, 1.0)
    matrix = source.new_zeros(target.numel(), source.numel())
    rows = torch.arange(target.numel(), device=source.device)
    matrix.index_put_((rows, left), 1.0 - fraction, accumulate=True)
    matrix.index_put_((rows, right), fraction, accumulate=True)
    return matrix


def slab_average_matrix(
    source: torch.Tensor, centres: torch.Tensor, thickness: float, points: int = DEFAULT_POINTS
) -> torch.Tensor:
    """F-down as a matrix (K, S): each row averages ``points`` linear interpolations inside one slab.

    Args:
        source: (S,) fine pixel centres (mm), increasing.
        centres: (K,) thick-slice centres (mm).
        thickness: slab thickness r (mm).
        points: samples per slab (odd or even; the authors use 9).
    """
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    offsets = (torch.arange(points, dtype=source.dtype, device=source.device) - (points - 1) / 2) * (thickness / points)
    positions = (centres.to(source)[:, None] + offsets[None, :]).reshape(-1)
    return linear_interpolation_matrix(source, positions).view(centres.numel(), points, source.numel()).mean(dim=1)


def _pixel_centres(count: int, pixel_size: float, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return (torch.arange(count, dtype=dtype) + 0.5) * pixel_size


def apply_along(matrix: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """Apply a (M, N) matrix along dimension ``dim`` (size N) of ``x``; that dimension becomes M."""
    moved = torch.movedim(x, dim, -1)
    result = moved @ matrix.to(device=x.device, dtype=x.dtype).t()
    return torch.movedim(result, -1, dim)


def f_down(
    x: torch.Tensor, dim: int, pixel_size: float, thickness: float, overlap: float, points: int = DEFAULT_POINTS
) -> torch.Tensor:
    """Simulate thick slices along ``dim``: (..., n, ...) -> (..., K, ...), centres from :func:`slab_centres`.

    Args:
        x: fine image or volume, float tensor.
        dim: axis to thicken.
        pixel_size: fine pixel size s along ``dim`` (mm).
        thickness: r (mm).
        overlap: o (mm).
        points: samples averaged per slab.
    """
    count = x.shape[dim]
    source = _pixel_centres(count, pixel_size)
    centres = slab_centres(count * pixel_size, thickness, overlap)
    return apply_along(slab_average_matrix(source, centres, thickness, points), x, dim)


def f_up(x: torch.Tensor, dim: int, thickness: float, overlap: float, target: torch.Tensor) -> torch.Tensor:
    """Linear interpolation along ``dim`` from K thick slices (centres r/2 + k (r - o)) to ``target`` (mm).

    Args:
        x: thick-slice data, (..., K, ...), K >= 2.
        dim: the thick axis.
        thickness: r (mm).
        overlap: o (mm).
        target: (T,) positions in the same frame as the slab centres (the fine image starts at 0).

    Returns:
        (..., T, ...) tensor.
    """
    spacing = _check_slab(thickness, overlap)
    centres = thickness / 2 + spacing * torch.arange(x.shape[dim], dtype=torch.float64)
    return apply_along(linear_interpolation_matrix(centres, target.to(torch.float64)), x, dim)


def degradation_matrix(
    count: int, pixel_size: float, thickness: float, overlap: float, points: int = DEFAULT_POINTS
) -> torch.Tensor:
    """F-up(F-down(.)) along one axis of ``count`` pixels as an (n, n) float64 matrix."""
    source = _pixel_centres(count, pixel_size)
    centres = slab_centres(count * pixel_size, thickness, overlap)
    if centres.numel() < 2:
        raise ValueError(
            f"{count} pixels of {pixel_size} mm hold fewer than 2 slices of {thickness} mm / {overlap} mm overlap; "
            "the image is too small to simulate them"
        )
    down = slab_average_matrix(source, centres, thickness, points)
    return linear_interpolation_matrix(centres, source) @ down


def degrade(
    x: torch.Tensor,
    dim: int,
    pixel_size: float,
    thickness: float,
    overlap: float,
    points: int = DEFAULT_POINTS,
    *,
    clip: bool = True,
) -> torch.Tensor:
    """SR4ZCT's training input: F-up(F-down(x)) along ``dim``, same shape as ``x``.

    Args:
        x: (..., n, ...) float tensor, e.g. a stack of axial slices (Z, H, W) with ``dim=-2``
            (the vertical direction) or ``dim=-1`` (horizontal).
        dim: axis along which thick slices are simulated.
        pixel_size: fine pixel size along ``dim`` (mm).
        thickness: r (mm).
        overlap: o (mm).
        points: samples averaged per slab.
        clip: clip each 2D image (the last two dimensions; a 1D ``x`` as a whole) to its own
            [min, max], as the authors clip each degraded image.

    Returns:
        Tensor shaped like ``x``.
    """
    dim = dim % x.ndim
    matrix = degradation_matrix(x.shape[dim], pixel_size, thickness, overlap, points)
    result = apply_along(matrix, x, dim)
    if clip:
        reduce_dims = (-2, -1) if x.ndim >= 2 else (-1,)
        low = x.amin(dim=reduce_dims, keepdim=True)
        high = x.amax(dim=reduce_dims, keepdim=True)
        result = torch.maximum(torch.minimum(result, high), low)
    return result
