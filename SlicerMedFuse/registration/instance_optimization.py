"""Deformable instance optimisation of a dense field on a multi-resolution pyramid (training-free).

This is the instance-optimisation (IO) formulation of Mok et al., "Deformable Medical Image
Registration Under Distribution Shifts with Neural Instance Optimization" (MLMI 2023), Eq. 1 and
Sect. 2.2-2.3, applied to the displacement field directly since no pretrained network is available:

* a 3-level pyramid, images downsampled by 0.5^(L - i), optimised coarse to fine with
  [100, 60, 30] Adam iterations; each level adds a residual to the upsampled field of the previous
  one (the paper's sum of upsampled per-level fields);
* similarity LNCC (paper: 7^3 window) for one contrast or MIND-SSC across modalities;
* regularisation: the paper's explicit ``(1 - lambda) LNCC + lambda ||grad u||^2`` (Eq. 3), or the
  implicitly solved diffusion / elastic / curvature regularisers of Ehrhardt & Handels (MLMI 2023,
  Eq. 2-6), ``S = (I - gamma A)^-1`` solved by FFT, used either as the paper's decoupled penalty
  ``D + sigma/2 ||u - S(u)||^2`` or (default) as a projection: the field is ``u_prev + S(p)``;
* optionally diffeomorphic: the optimised variable is a stationary velocity field integrated by
  scaling and squaring (7 steps); regularisers then act on the velocity.

Deviations from the papers, each measured on the real-T1 benchmark (benchmarks/registration):

* there is no network to adapt, and a dense field has none of a CNN's inductive bias, so Adam's
  per-voxel steps are noisy; the projection scheme removes that noise (Dice 0.95 vs 0.90 with
  the penalty scheme at the paper's sigma = 1, gamma = 2);
* the paper's learning rate (1e-4) is for network weights; a field in voxel units needs a step
  of a fraction of a voxel (0.5, decaying linearly to 0.1);
* the paper computes every level's loss at full resolution; on a CPU each level's loss is computed
  at that level's resolution (the classic pyramid), and the finest level may itself be coarser than
  the image (``finest_scale``), its field upsampled trilinearly. The ``fast`` preset works at half
  resolution with a 5^3 LNCC window (10 mm at 2 mm voxels, close to the paper's 7 mm at 1 mm) and
  the curvature solver (gamma 300), which measured best there. The ``accurate`` preset adds a
  full-resolution level with 3 iterations after [50, 30, 10] at 8/4/2x: on the known-deformation
  case the field error fell from 0.26 to 0.20 mm (seed 7, not a benchmark seed), which no setting
  of gamma, learning rate, LNCC window or half-resolution iteration count had reached (0.25-0.38 mm).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from SlicerMedFuse.nets.warping import integrate_velocity, resize_displacement, warp
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.registration.adam import Adam
from SlicerMedFuse.registration.options import REGULARIZERS, SCHEMES, SIMILARITIES
from SlicerMedFuse.registration.regularizers import ImplicitSmoother, diffusion_loss
from SlicerMedFuse.registration.similarity import MINDSSC, make_similarity, mind_ssc

__all__ = ["REGULARIZERS", "SCHEMES", "DeformableConfig", "DeformableResult", "level_shapes", "optimize_displacement"]


@dataclasses.dataclass(frozen=True)
class DeformableConfig:
    """Settings of :func:`optimize_displacement`.

    Attributes:
        levels: pyramid levels L (paper: 3).
        iterations: Adam iterations per level, coarse to fine (paper: 100, 60, 30).
        finest_scale: downsampling of the finest level relative to the input grid (1 = full
            resolution, 2 = half); level i is ``finest_scale * 2^(L - 1 - i)`` coarser.
        similarity: ``"lncc"``, ``"mind"`` or ``"mse"``.
        lncc_window: LNCC window edge in voxels of each level (paper: 7).
        mind_radius, mind_dilation: MIND-SSC patch radius and neighbour distance in voxels.
        regularizer: one of :data:`REGULARIZERS`.
        reg_weight: lambda of the explicit diffusion loss ``(1 - lambda) sim + lambda reg`` (paper:
            0.4 with LapIRN's normalised displacement units; here the field is in voxels).
        sigma: weight of ``1/2 ||u - u_bar||^2`` in the ``"penalty"`` scheme (paper: 1).
        gamma: implicit regularisation strength in voxel units of each level. The paper's grid
            search (2 diffusion/elastic, 5 curvature) was for its penalty scheme in network
            training; as the projection of a directly optimised field, 50 (diffusion) was best on the
            real-T1 benchmark (20: noisier, 200: too stiff).
        mu, lam: Lame constants for the elastic operator (paper: 1, 0).
        boundary: ``"periodic"``, ``"neumann"`` or ``"padded"`` for the implicit solvers.
        scheme: how an implicit regulariser enters: ``"projection"`` (default) optimises a residual
            ``p`` per level with ``u = u_previous + S(p)``, ``S = (I - gamma A)^-1``, so every field
            is the solver's output (the smoothing/projection step; gradients are smoothed by ``S``,
            which spreads edge information over the domain as Ehrhardt & Handels motivate);
            ``"penalty"`` is the paper's decoupled loss ``D + sigma/2 ||u - S(u)||^2`` (Eq. 3-4) on
            the field itself, ending each level with ``S(u)``. On a dense field without a network's
            inductive bias the penalty form leaves Adam's per-voxel noise (0.90 vs 0.95 Dice).
        learning_rate: Adam step in voxels of each level (not stated for field IO in the paper).
        diffeomorphic: optimise a stationary velocity field integrated by scaling and squaring.
        integration_steps: squarings (7).
        field_scale: the field (or velocity) of a level never lives on a grid finer than this
            downsampling of the input (1 = each level's image grid); on finer levels it is
            upsampled trilinearly to the level's grid, where the similarity is computed. With
            ``finest_scale`` 1 and ``field_scale`` 2 the last level compares the images at full
            resolution while its field, solver and Adam state stay on the half-resolution grid. On
            the real-T1 benchmark this lost most of the full-resolution level's gain (field error
            0.27 mm against 0.18 mm with the field at full resolution, seed 7, 'accurate'), also
            with gamma divided by 2^4 so that the curvature smoothing stayed the same in millimetres
            (0.26 mm): the per-voxel Adam steps at full resolution matter, not the solver's grid.
        mind_full_resolution: compute the MIND-SSC descriptors on the input grid and area-average
            them to every level (ConvexAdam pools full-resolution MIND so), instead of on the finest
            level's images. Not a preset parameter: on the cross-contrast benchmark pair (case (c),
            seed 7) it lowered Dice from 0.624 to 0.582, folded 2.7 % of the voxels and took 12 s more.
        integration_downsample: integrate the velocity on a grid this many times coarser than the
            level and upsample the resulting displacement (VoxelMorph's ``int_downsize``); 7
            squarings at the level's resolution cost 7 extra warps per iteration.
    """

    levels: int = 3
    iterations: tuple[int, ...] = (100, 60, 30)
    finest_scale: float = 2.0
    similarity: str = "lncc"
    lncc_window: int = 7
    mind_radius: int = 1
    mind_dilation: int = 2
    regularizer: str = "implicit_diffusion"
    reg_weight: float = 0.4
    sigma: float = 1.0
    gamma: float = 50.0
    mu: float = 1.0
    lam: float = 0.0
    boundary: str = "periodic"
    scheme: str = "projection"
    learning_rate: float = 0.5
    diffeomorphic: bool = False
    integration_steps: int = 7
    integration_downsample: int = 2
    field_scale: float = 1.0
    mind_full_resolution: bool = False

    def __post_init__(self) -> None:
        if self.levels < 1 or len(self.iterations) != self.levels:
            raise ValueError(f"need one iteration count per level: {self.levels} levels, iterations {self.iterations}")
        if any(n < 0 for n in self.iterations):
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}; got {self.similarity!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {', '.join(REGULARIZERS)}; got {self.regularizer!r}")
        if self.finest_scale < 1:
            raise ValueError(f"finest_scale must be >= 1, got {self.finest_scale}")
        if self.field_scale < 1:
            raise ValueError(f"field_scale must be >= 1, got {self.field_scale}")
        if not 0 <= self.reg_weight < 1:
            raise ValueError(f"reg_weight must be in [0, 1), got {self.reg_weight}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; got {self.scheme!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


@dataclasses.dataclass
class DeformableResult:
    """Result of :func:`optimize_displacement`.

    Attributes:
        displacement: ``(1, 3, D, H, W)`` field in voxel units of the input grid (fixed -> moving).
        velocity: the stationary velocity field (same layout) in diffeomorphic mode, else None.
        level_shapes: pyramid grid shapes ``(D, H, W)``, coarse to fine.
        losses: final similarity loss per level.
        seconds: wall time per level.
        finest_displacement: the displacement on the finest level's grid, in its voxel units (the
            field that ``displacement`` interpolates; cheap to analyse, e.g. for Jacobians).
    """

    displacement: torch.Tensor
    velocity: torch.Tensor | None
    level_shapes: list[tuple[int, int, int]]
    losses: list[float]
    seconds: list[float]
    finest_displacement: torch.Tensor | None = None


def level_shapes(
    shape: Sequence[int], spacing: Sequence[float], levels: int, finest_scale: float, min_size: int = 8
) -> list[tuple[int, int, int]]:
    """Grid shapes of the pyramid, coarse to fine.

    Level i has a target voxel size ``min(spacing) * finest_scale * 2^(L - 1 - i)``; axes already
    coarser than that keep their spacing (thick slices are not shrunk further). Sizes never drop below
    ``min_size`` voxels (or the input size).

    Args:
        shape: input grid ``(D, H, W)``.
        spacing: voxel size per index axis ``(i, j, k)`` in mm.
        levels: number of levels.
        finest_scale: downsampling of the finest level.
        min_size: smallest size per axis.
    """
    spacing_dhw = (spacing[2], spacing[1], spacing[0])
    base = min(spacing_dhw) * finest_scale
    shapes = []
    for level in range(levels):
        target = base * 2 ** (levels - 1 - level)
        shapes.append(
            tuple(min(n, max(min_size, round(n * s / max(s, target)))) for n, s in zip(shape, spacing_dhw, strict=True))
        )
    return shapes  # type: ignore[return-value]


def _downsample(volume: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    if tuple(volume.shape[2:]) == tuple(shape):
        return volume
    return F.interpolate(volume, size=tuple(shape), mode="area")


def _exponential(velocity: torch.Tensor, config: DeformableConfig) -> torch.Tensor:
    """Scaling and squaring on a grid ``integration_downsample`` times coarser, upsampled back."""
    shape = velocity.shape[2:]
    coarse = tuple(max(4, round(n / config.integration_downsample)) for n in shape)
    return resize_displacement(
        integrate_velocity(resize_displacement(velocity, coarse), config.integration_steps), shape
    )


class _LevelField:
    """The optimised variable of one level and how it becomes the level's field (or velocity).

    * implicit regulariser, ``"projection"``: ``field = base + S(p)`` with ``S = (I - gamma A)^-1``
      and the residual ``p`` starting at 0 (the per-level sum of NIO, smoothed by the solver);
    * implicit regulariser, ``"penalty"``: ``field = p`` and the loss adds ``sigma/2 ||p - S(p)||^2``
      (Ehrhardt & Handels Eq. 3-4), the level ends with ``S(p)``;
    * ``"diffusion"``/``"none"``: ``field = p``.
    """

    def __init__(self, base: torch.Tensor, config: DeformableConfig, spacing: Sequence[float]) -> None:
        self.config, self.spacing = config, spacing
        self.smoother: ImplicitSmoother | None = None
        if config.regularizer.startswith("implicit_"):
            self.smoother = ImplicitSmoother(
                base.shape[2:],
                config.regularizer.removeprefix("implicit_"),
                config.gamma,
                mu=config.mu,
                lam=config.lam,
                spacing=spacing,
                boundary=config.boundary,
                device=base.device,
            )
        self.projection = self.smoother is not None and config.scheme == "projection"
        self.base = base
        self.parameter = (torch.zeros_like(base) if self.projection else base.clone()).requires_grad_(True)

    def current(self) -> torch.Tensor:
        if self.projection:
            assert self.smoother is not None
            return self.base + self.smoother(self.parameter)
        return self.parameter

    def regularization(self, similarity: torch.Tensor) -> torch.Tensor:
        """The level's loss given the similarity term."""
        config = self.config
        if config.regularizer == "diffusion":
            return (1.0 - config.reg_weight) * similarity + config.reg_weight * diffusion_loss(
                self.parameter, self.spacing
            )
        if self.smoother is not None and not self.projection:
            with torch.no_grad():
                target = self.smoother(self.parameter)
            return similarity + 0.5 * config.sigma * ((self.parameter - target) ** 2).mean()
        return similarity

    @torch.no_grad()
    def result(self) -> torch.Tensor:
        if self.smoother is not None and not self.projection:
            return self.smoother(self.parameter.detach())
        return self.current().detach()


def optimize_displacement(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    config: DeformableConfig | None = None,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    fixed_mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    initial: torch.Tensor | None = None,
    progress: Progress | None = None,
) -> DeformableResult:
    """Optimise a dense displacement from ``fixed`` to ``moving`` (both on one grid, e.g. after affine alignment).

    Args:
        fixed: ``(1, 1, D, H, W)`` fixed image (intensities roughly 0..1).
        moving: ``(1, 1, D, H, W)`` moving image resampled onto the fixed grid.
        config: settings (default :class:`DeformableConfig` ()).
        spacing: voxel size of the grid per index axis ``(i, j, k)`` in mm.
        fixed_mask: optional ``(1, 1, D, H, W)`` weights (0..1) where the similarity counts.
        moving_mask: optional ``(1, 1, D, H, W)`` weights on the moving image (also its field of
            view), warped with the field each iteration.
        initial: optional initial displacement (or velocity in diffeomorphic mode), ``(1, 3, d, h, w)`` voxels.
        progress: where the fraction of iterations done goes (stage ``"deformable"``); its cancel
            event stops the optimisation.

    Returns:
        A :class:`DeformableResult` whose displacement lies on the input grid.
    """
    config = config or DeformableConfig()
    if fixed.shape != moving.shape or fixed.dim() != 5 or fixed.shape[:2] != (1, 1):
        raise ValueError(
            f"fixed and moving must both be (1, 1, D, H, W) on one grid, got {tuple(fixed.shape)} and {tuple(moving.shape)}"
        )
    shapes = level_shapes(fixed.shape[2:], spacing, config.levels, config.finest_scale)
    field_shapes = [
        level_shapes(
            fixed.shape[2:], spacing, 1, max(config.finest_scale * 2 ** (config.levels - 1 - i), config.field_scale)
        )[0]
        for i in range(config.levels)
    ]
    total, done = max(sum(config.iterations), 1), 0
    field: torch.Tensor | None = initial
    losses: list[float] = []
    seconds: list[float] = []
    descriptors: tuple[torch.Tensor, torch.Tensor] | None = None
    for shape, field_shape, count in zip(shapes, field_shapes, config.iterations, strict=True):
        started = time.perf_counter()
        field_spacing = [spacing[a] * fixed.shape[4 - a] / field_shape[2 - a] for a in range(3)]  # (i, j, k) mm
        if config.similarity == "mind":
            # descriptors from the finest level's images, area-averaged for coarser levels (as ConvexAdam
            # pools full-resolution MIND): on a coarse image the 2-voxel neighbourhood spans whole structures
            if descriptors is None:
                grid = tuple(fixed.shape[2:]) if config.mind_full_resolution else shapes[-1]
                descriptors = (
                    mind_ssc(_downsample(fixed, grid), config.mind_radius, config.mind_dilation),
                    mind_ssc(_downsample(moving, grid), config.mind_radius, config.mind_dilation),
                )
            term = MINDSSC.from_descriptors(_downsample(descriptors[0], shape))
            moving_features = _downsample(descriptors[1], shape)
        else:
            term = make_similarity(config.similarity, _downsample(fixed, shape), window=config.lncc_window)
            moving_features = term.features(_downsample(moving, shape))
        weight = _downsample(fixed_mask, shape) if fixed_mask is not None else None
        moving_weight = _downsample(moving_mask, shape) if moving_mask is not None else None
        if field is None:
            field = torch.zeros((1, 3, *field_shape), dtype=fixed.dtype, device=fixed.device)
        variable = _LevelField(resize_displacement(field.detach(), field_shape), config, field_spacing)
        # the step is in voxels of the level's images: a coarser field takes proportionally smaller steps
        learning_rate = config.learning_rate * min(f / n for f, n in zip(field_shape, shape, strict=True))
        optimiser = Adam([[variable.parameter]], [learning_rate])
        loss_value = float("nan")
        for step in range(count):
            # linear decay of the step to 20 %: large moves first, sub-voxel refinement at the end
            optimiser.lrs[0] = learning_rate * (1.0 - 0.8 * step / max(count, 1))
            optimiser.zero_grad()
            current = variable.current()
            displacement = _exponential(current, config) if config.diffeomorphic else current
            displacement = resize_displacement(displacement, shape)  # no-op unless field_scale applies
            w = weight
            if moving_weight is not None:
                sampled = warp(moving_weight, displacement.detach(), padding_mode="zeros")
                w = sampled if w is None else w * sampled
            similarity = term(warp(moving_features, displacement), w)
            variable.regularization(similarity).backward()
            optimiser.step()
            loss_value = float(similarity.detach())
            done += 1
            if progress is not None and (step % 10 == 9 or step == count - 1):
                progress.update(done / total, "deformable")
        field = variable.result()
        losses.append(loss_value)
        seconds.append(time.perf_counter() - started)
    assert field is not None
    full_shape = tuple(fixed.shape[2:])
    with torch.no_grad():
        finest = _exponential(field, config) if config.diffeomorphic else field
        velocity = resize_displacement(field, full_shape) if config.diffeomorphic else None
        displacement = resize_displacement(finest, full_shape)
    return DeformableResult(
        displacement=displacement,
        velocity=velocity,
        level_shapes=shapes,
        losses=losses,
        seconds=seconds,
        finest_displacement=finest,
    )
