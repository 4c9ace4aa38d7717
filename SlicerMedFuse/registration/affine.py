"""Linear registration in physical space: centre-of-mass / moments initialisation, then rigid and affine stages.

Everything is in ITK's LPS world (mm). The result is a ``sitk.AffineTransform`` that maps *fixed*
points to *moving* points (ITK's resampling convention), written as
``T(x) = L (x - c) + c + t`` with ``c`` the fixed image's centre of mass.

The optimisation runs in torch on a coarse-to-fine pair of isotropic grids (default 4 mm then
2 mm), each image on its own grid: every iteration builds the sampling grid from
``fixed index -> fixed LPS -> T -> moving LPS -> moving index`` in one affine map, so the moving
image is interpolated once and never resampled twice. Voxels that map outside the moving field of
view do not count.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.geometry import ImageGeometry
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.registration.adam import Adam
from SlicerMedFuse.registration.options import INITIALIZATIONS, LINEAR_STAGES
from SlicerMedFuse.registration.similarity import make_similarity

__all__ = [
    "INITIALIZATIONS",
    "LINEAR_STAGES",
    "AffineConfig",
    "AffineResult",
    "center_of_mass",
    "principal_axes",
    "register_affine",
]

_log = logging.getLogger("SlicerMedFuse")


@dataclasses.dataclass(frozen=True)
class AffineConfig:
    """Settings of :func:`register_affine`.

    Attributes:
        initialization: one of :data:`INITIALIZATIONS`.
        stage: ``"none"`` (initialisation only), ``"rigid"`` or ``"affine"`` (rigid, then affine).
        similarity: ``"lncc"``, ``"mind"`` or ``"mse"``.
        level_spacings: isotropic grid spacing per level in mm, coarse to fine (never finer than the image).
        iterations: Adam iterations per level. The affine stage runs them all; the rigid stage runs
            them all when it is the last stage, else only the coarsest level's.
        learning_rate: Adam step for rotations (rad) and matrix entries; translations use
            ``learning_rate * 50`` mm (0.5 mm for the default), so one step moves the edge of a
            100 mm object by about as much as one translation step.
        lncc_window: LNCC window in voxels.
    """

    initialization: str = "com"
    stage: str = "affine"
    similarity: str = "lncc"
    level_spacings: tuple[float, ...] = (4.0, 2.0)
    iterations: tuple[int, ...] = (60, 30)
    learning_rate: float = 0.01
    lncc_window: int = 7

    def __post_init__(self) -> None:
        if self.initialization not in INITIALIZATIONS:
            raise ValueError(f"initialization must be one of {', '.join(INITIALIZATIONS)}; got {self.initialization!r}")
        if self.stage not in LINEAR_STAGES:
            raise ValueError(f"linear stage must be one of {', '.join(LINEAR_STAGES)}; got {self.stage!r}")
        if len(self.level_spacings) != len(self.iterations) or not self.level_spacings:
            raise ValueError(f"need one iteration count per level, got {self.level_spacings} and {self.iterations}")


@dataclasses.dataclass
class AffineResult:
    """Result of :func:`register_affine`.

    Attributes:
        transform: fixed LPS -> moving LPS (mm).
        initial: the initialisation alone.
        losses: final similarity loss of each stage, ``{"initial": .., "rigid": .., "affine": ..}``, on the finest level.
    """

    transform: sitk.AffineTransform
    initial: sitk.AffineTransform
    losses: dict[str, float]


def _weights_and_coords(image: sitk.Image, mask: sitk.Image | None, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative intensity weights (N,) and LPS coordinates (N, 3) of every ``stride``-th voxel of ``image``."""
    array = sitk.GetArrayViewFromImage(image)[::stride, ::stride, ::stride].astype(np.float32)
    weights = array - array.min()
    if mask is not None:
        weights = weights * (sitk.GetArrayViewFromImage(mask)[::stride, ::stride, ::stride] > 0)
    k, j, i = np.nonzero(weights > 0)
    if len(i) == 0:
        raise ValueError("the image has no voxel above its minimum inside the mask")
    ijk = np.stack([i, j, k], axis=1).astype(np.float64) * stride
    matrix = ImageGeometry.from_image(image).ijk_to_lps()
    return weights[k, j, i].astype(np.float64), ijk @ matrix[:3, :3].T + matrix[:3, 3]


def center_of_mass(image: sitk.Image, mask: sitk.Image | None = None, threshold: float = 0.1) -> np.ndarray:
    """Centre of mass of the image's foreground in LPS mm, shape (3,).

    The foreground is every voxel above ``min + threshold * (max - min)`` (inside ``mask`` when
    given), each weighted 1: the object's centre, the same for any contrast, unlike an
    intensity-weighted centre, which moves when a T1 becomes a T2. Computed from marginal sums.
    """
    array = sitk.GetArrayViewFromImage(image)
    low, high = float(array.min()), float(array.max())
    weights = (array > low + threshold * (high - low)).astype(np.float32)
    if mask is not None:
        weights = weights * (sitk.GetArrayViewFromImage(mask) > 0)
    total = float(weights.sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("the image has no foreground voxel inside the mask")
    index = [
        float((weights.sum(axis=(0, 1), dtype=np.float64) * np.arange(weights.shape[2])).sum() / total),  # i
        float((weights.sum(axis=(0, 2), dtype=np.float64) * np.arange(weights.shape[1])).sum() / total),  # j
        float((weights.sum(axis=(1, 2), dtype=np.float64) * np.arange(weights.shape[0])).sum() / total),  # k
    ]
    matrix = ImageGeometry.from_image(image).ijk_to_lps()
    return matrix[:3, :3] @ np.asarray(index) + matrix[:3, 3]


def principal_axes(image: sitk.Image, mask: sitk.Image | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass (3,) and principal axes (3, 3; columns, descending variance, right-handed) in LPS.

    Second moments use every second voxel along each axis (plenty for an initialisation).
    """
    weights, coords = _weights_and_coords(image, mask, stride=2)
    centre = (weights[:, None] * coords).sum(0) / weights.sum()
    centred = coords - centre
    covariance = (weights[:, None] * centred).T @ centred / weights.sum()
    values, vectors = np.linalg.eigh(covariance)
    vectors = vectors[:, np.argsort(values)[::-1]]
    if np.linalg.det(vectors) < 0:
        vectors[:, 2] *= -1
    return centre, vectors


def _rotation(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (3, 3) of a rotation vector (3,) (Rodrigues), differentiable at 0."""
    theta2 = (r * r).sum()
    k = torch.zeros(3, 3, dtype=r.dtype, device=r.device)
    k[0, 1], k[0, 2], k[1, 2] = -r[2], r[1], -r[0]
    k = k - k.T
    # series-safe coefficients sin(t)/t and (1-cos t)/t^2
    theta = torch.sqrt(theta2 + 1e-24)
    a = torch.where(theta2 < 1e-8, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(theta2 < 1e-8, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta2 + 1e-24))
    return torch.eye(3, dtype=r.dtype, device=r.device) + a * k + b * (k @ k)


@dataclasses.dataclass
class _Level:
    fixed: torch.Tensor  # (1, 1, D, H, W)
    moving: torch.Tensor
    fixed_weight: torch.Tensor | None
    moving_mask: torch.Tensor | None
    index_to_fixed: torch.Tensor  # (4, 4) fixed ijk -> LPS
    moving_to_norm: torch.Tensor  # (4, 4) moving LPS -> normalised moving coordinates
    fixed_norm_to_index: torch.Tensor  # (4, 4) normalised fixed -> fixed ijk


def _norm_matrix(size: Sequence[int]) -> np.ndarray:
    """ijk -> grid_sample coordinates (align_corners=False): x = (2 i + 1) / n - 1."""
    matrix = np.eye(4)
    for axis, n in enumerate(size):
        matrix[axis, axis] = 2.0 / n
        matrix[axis, 3] = 1.0 / n - 1.0
    return matrix


def _shrunk(volume: torch.Tensor, geometry: ImageGeometry, spacing: float) -> tuple[torch.Tensor, ImageGeometry]:
    """Area-average ``volume`` ``(1, C, D, H, W)`` to voxels of at least ``spacing`` mm over the same extent."""
    old = np.asarray(geometry.spacing)
    extent = np.asarray(geometry.size) * old
    size = np.where(old < spacing, np.maximum(np.round(extent / spacing), 2), geometry.size).astype(int)
    new = extent / size
    if np.array_equal(size, geometry.size):
        return volume, geometry
    shift = geometry.direction_matrix @ (0.5 * (new - old))
    target = ImageGeometry(
        tuple(int(s) for s in size), tuple(new), tuple(np.asarray(geometry.origin) + shift), geometry.direction
    )
    return F.interpolate(volume, size=tuple(int(s) for s in size[::-1]), mode="area"), target


def _tensor(image: sitk.Image, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))[None, None].to(device)


def _make_level(
    fixed: tuple[torch.Tensor, ImageGeometry],
    moving: tuple[torch.Tensor, ImageGeometry],
    fixed_mask: torch.Tensor | None,
    moving_mask: torch.Tensor | None,
    spacing: float,
) -> _Level:
    f, fg = _shrunk(*fixed, spacing)
    m, mg = _shrunk(*moving, spacing)
    device = f.device
    moving_to_norm = _norm_matrix(mg.size) @ np.linalg.inv(mg.ijk_to_lps())
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
    return _Level(
        fixed=f,
        moving=m,
        fixed_weight=_shrunk(fixed_mask, fixed[1], spacing)[0] if fixed_mask is not None else None,
        moving_mask=_shrunk(moving_mask, moving[1], spacing)[0] if moving_mask is not None else None,
        index_to_fixed=as_tensor(fg.ijk_to_lps()),
        moving_to_norm=as_tensor(moving_to_norm),
        fixed_norm_to_index=as_tensor(np.linalg.inv(_norm_matrix(fg.size))),
    )


class _Objective:
    """Similarity of the fixed level image and the moving one sampled through a 4x4 LPS transform."""

    def __init__(self, level: _Level, config: AffineConfig) -> None:
        self.level = level
        self.term = make_similarity(config.similarity, level.fixed, window=config.lncc_window)
        self.features = self.term.features(level.moving)
        self.size = [1, 1, *level.fixed.shape[2:]]

    def __call__(self, matrix: torch.Tensor) -> torch.Tensor:
        level = self.level
        theta = level.moving_to_norm @ matrix @ level.index_to_fixed @ level.fixed_norm_to_index
        grid = F.affine_grid(theta[:3].unsqueeze(0).float(), self.size, align_corners=False)
        warped = F.grid_sample(self.features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        with torch.no_grad():
            if level.moving_mask is None:  # inside the moving field of view, without a second interpolation
                weight = (grid.abs() <= 1).all(dim=-1).unsqueeze(1).float()
            else:
                weight = F.grid_sample(
                    level.moving_mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False
                )
            if level.fixed_weight is not None:
                weight = weight * level.fixed_weight
        if float(weight.sum()) < 1:
            return warped.sum() * 0 + 1e3  # no overlap at all: a high loss, still differentiable
        return self.term(warped, weight)


def _matrix4(linear: torch.Tensor, centre: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """4x4 of x -> L (x - c) + c + t."""
    top = torch.cat([linear, (centre + translation - linear @ centre).unsqueeze(1)], dim=1)
    bottom = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=linear.dtype, device=linear.device)
    return torch.cat([top, bottom], dim=0)


def _optimise(
    objectives: Sequence[_Objective],
    iterations: Sequence[int],
    build: Callable[[], torch.Tensor],
    groups: list[dict],
    progress: Progress | None,
) -> float:
    optimiser = Adam([group["params"] for group in groups], [group["lr"] for group in groups])
    base = list(optimiser.lrs)
    loss = torch.zeros(())
    for level, (objective, count) in enumerate(zip(objectives, iterations, strict=True), start=1):
        for step in range(count):
            optimiser.lrs = [lr * (1.0 - 0.8 * step / max(count, 1)) for lr in base]  # linear decay to 20 %
            optimiser.zero_grad()
            loss = objective(build())
            loss.backward()
            optimiser.step()
        if progress is not None:
            progress.update(level / len(objectives), "linear")
    with torch.no_grad():
        return float(objectives[-1](build()))


def _to_sitk(linear: np.ndarray, centre: np.ndarray, translation: np.ndarray) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetCenter([float(v) for v in centre])
    transform.SetMatrix([float(v) for v in np.asarray(linear).reshape(-1)])
    transform.SetTranslation([float(v) for v in translation])
    return transform


def register_affine(
    fixed: sitk.Image,
    moving: sitk.Image,
    config: AffineConfig | None = None,
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    initial: sitk.Transform | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> AffineResult:
    """Initialise, then optimise a rigid and an affine transform from ``fixed`` to ``moving``.

    Args:
        fixed, moving: 3D scalar images (any modality; intensities roughly normalised, e.g. to 0..1).
        config: settings; defaults to :class:`AffineConfig` ().
        fixed_mask, moving_mask: optional masks (> 0 inside) on their image's grid.
        initial: optional linear transform (fixed -> moving) replacing the initialisation.
        device: torch device.
        progress: told after every level of each stage (stage ``"linear"``); its cancel event stops it.

    Returns:
        :class:`AffineResult`; its transform maps fixed LPS points to moving LPS points.
    """
    config = config or AffineConfig()
    device = torch.device(device)
    centre_f = center_of_mass(fixed, fixed_mask)
    linear0, translation0 = np.eye(3), np.zeros(3)
    if initial is not None:
        matrix = _linear_part(initial)
        # re-express x -> A x + b about the fixed centre: L = A, t = A c + b - c
        linear0 = matrix[:3, :3]
        translation0 = matrix[:3, :3] @ centre_f + matrix[:3, 3] - centre_f
    elif config.initialization == "geometry":
        centre_m_box = ImageGeometry.from_image(moving).bounds_lps().mean(0)
        centre_f_box = ImageGeometry.from_image(fixed).bounds_lps().mean(0)
        translation0 = centre_m_box - centre_f_box
    elif config.initialization in ("com", "moments"):
        translation0 = center_of_mass(moving, moving_mask) - centre_f

    full_fixed = (_tensor(fixed, device), ImageGeometry.from_image(fixed))
    full_moving = (_tensor(moving, device), ImageGeometry.from_image(moving))
    fixed_mask_t = (_tensor(fixed_mask, device) > 0).float() if fixed_mask is not None else None
    moving_mask_t = (_tensor(moving_mask, device) > 0).float() if moving_mask is not None else None
    levels = [_make_level(full_fixed, full_moving, fixed_mask_t, moving_mask_t, s) for s in config.level_spacings]
    objectives = [_Objective(level, config) for level in levels]
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)  # noqa: E731
    centre = as_tensor(centre_f)

    if initial is None and config.initialization == "moments":
        _, axes_f = principal_axes(fixed, fixed_mask)
        _, axes_m = principal_axes(moving, moving_mask)
        candidates = [np.eye(3)]
        for signs in ([1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]):
            candidates.append(axes_m @ np.diag(signs) @ axes_f.T)
        with torch.no_grad():
            scores = [float(objectives[0](_matrix4(as_tensor(c), centre, as_tensor(translation0)))) for c in candidates]
        linear0 = candidates[int(np.argmin(scores))]

    initial_transform = _to_sitk(linear0, centre_f, translation0)
    with torch.no_grad():
        losses = {"initial": float(objectives[-1](_matrix4(as_tensor(linear0), centre, as_tensor(translation0))))}
    linear, translation = linear0, translation0

    lr = config.learning_rate
    # when an affine stage follows, the rigid one only needs the coarse level: it captures the
    # large rotations and shifts; the affine stage then refines everything on every level
    rigid_levels = 1 if config.stage == "affine" else len(objectives)
    # every optimised level is an equal share of the progress, the rigid ones first (monotonic)
    rigid_share = rigid_levels / (rigid_levels + len(objectives)) if config.stage == "affine" else 1.0
    if config.stage in ("rigid", "affine"):
        rotation = torch.zeros(3, dtype=torch.float64, device=device, requires_grad=True)
        shift = as_tensor(translation0).clone().requires_grad_(True)
        base_linear = as_tensor(linear0)
        build = lambda: _matrix4(_rotation(rotation) @ base_linear, centre, shift)  # noqa: E731
        _optimise(
            objectives[:rigid_levels],
            config.iterations[:rigid_levels],
            build,
            [{"params": [rotation], "lr": lr}, {"params": [shift], "lr": lr * 50}],
            progress.span(0.0, rigid_share) if progress is not None else None,
        )
        with torch.no_grad():
            losses["rigid"] = float(objectives[-1](build()))  # on the finest level, comparable with the others
            linear = (_rotation(rotation) @ base_linear).cpu().numpy()
            translation = shift.detach().cpu().numpy()
    if config.stage == "affine":
        matrix = as_tensor(linear).clone().requires_grad_(True)
        shift = as_tensor(translation).clone().requires_grad_(True)
        build = lambda: _matrix4(matrix, centre, shift)  # noqa: E731
        loss = _optimise(
            objectives,
            config.iterations,
            build,
            [{"params": [matrix], "lr": lr}, {"params": [shift], "lr": lr * 50}],
            progress.span(rigid_share, 1.0) if progress is not None else None,
        )
        candidate = matrix.detach().cpu().numpy()
        if np.linalg.det(candidate) > 0.2 and loss <= losses["rigid"] + 1e-6:
            linear, translation = candidate, shift.detach().cpu().numpy()
            losses["affine"] = loss
        else:
            _log.info("The affine stage did not improve on the rigid one (or degenerated); keeping the rigid result.")
            losses["affine"] = losses["rigid"]
    return AffineResult(transform=_to_sitk(linear, centre_f, translation), initial=initial_transform, losses=losses)


def _linear_part(transform: sitk.Transform) -> np.ndarray:
    """4x4 matrix of a linear SimpleITK transform (x -> A x + b), read by probing points.

    Raises:
        ValueError: the transform is not linear (e.g. a displacement field).
    """
    probes = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [13.7, -5.1, 22.3]], dtype=np.float64) * 50.0
    mapped = np.array([transform.TransformPoint(tuple(p)) for p in probes])
    offset = mapped[0]
    matrix = np.stack([(mapped[c + 1] - offset) / 50.0 for c in range(3)], axis=1)
    if not np.allclose(matrix @ probes[4] + offset, mapped[4], atol=1e-3):
        raise ValueError("the initial transform is not linear (rigid/affine); give a linear transform or none")
    result = np.eye(4)
    result[:3, :3], result[:3, 3] = matrix, offset
    return result
