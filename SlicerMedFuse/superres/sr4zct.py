"""SR4ZCT: self-supervised through-plane super-resolution trained on the input volume itself.

Shi, Pelt & Batenburg, MLMI 2023 (code: github.com/jiayangshi/SR4ZCT). Axial slices are sharp in
plane; blurring them along one in-plane direction with the scanner's slice model (thickness r,
overlap o, :mod:`~SlicerMedFuse.superres.degradation`) makes images that look like the coronal and
sagittal slices. A 2D MS-D network (:mod:`~SlicerMedFuse.superres.msd`) learns to undo that blur
from 2 Z pairs (vertical and horizontal blur, the latter rotated by 90 degrees so the blur is
always vertical, Eq. 1), and is then applied to the coronal and sagittal slices of the volume
linearly upsampled onto a fine slice grid (F-up). The two views are averaged and the result is
clipped to the input's intensity range.

Two configurations (:data:`QUALITIES`): ``"faithful"`` is the paper's (MS-D width 1, depth 100,
dilations 1..10, whole slices, batch 1, Adam lr 1e-3, 200 epochs, L2); ``"fast"`` is a documented
CPU reduction (fewer epochs, random patches from a random slice subset per epoch, and the network
starting as the identity) that finishes a 256 x 256 x 40 volume in minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from SlicerMedFuse.device import DeviceConfig, autocast
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.superres.degradation import DEFAULT_POINTS, apply_along, degrade, linear_interpolation_matrix
from SlicerMedFuse.superres.interpolation import slice_positions
from SlicerMedFuse.superres.methods import DEFAULT_DILATIONS, QUALITIES
from SlicerMedFuse.superres.msd import MSDNet
from SlicerMedFuse.superres.slice_geometry import SliceGeometry

__all__ = [
    "SR4ZCTConfig",
    "SR4ZCTResult",
    "predict_through_plane",
    "sr4zct_config",
    "sr4zct_upsample",
    "train_sr4zct",
    "training_pairs",
]


@dataclasses.dataclass(frozen=True)
class SR4ZCTConfig:
    """Everything that defines one SR4ZCT run (reported with the result).

    Attributes:
        quality: ``"fast"`` or ``"faithful"`` (the preset this came from).
        epochs: passes over the training set.
        depth, width, dilations: MS-D network (paper: 100, 1, 1..10).
        learning_rate: Adam step size (authors' code: 1e-3; other Adam settings are torch's
            defaults, the paper is silent on them).
        batch_size: images or patches per step (authors' code: 1).
        patch_size: side of random square training patches in pixels; 0 trains on whole slices.
        patches_per_image: patches drawn from each chosen image per epoch (when patch_size > 0).
        slices_per_epoch: axial slices visited per epoch (a fresh random subset each epoch);
            0 visits all Z slices (2 Z pairs per epoch, the paper's epoch).
        identity_start: start the network as the identity map (final 1x1 weight 1 on the input
            image): training begins at linear interpolation instead of at zero. Not in the paper;
            used by ``"fast"`` because it converges in far fewer steps.
        points: samples averaged per simulated slab (authors: 9).
        inference_pixels: pixels per inference batch (keeps the 101 feature maps in cache on CPU).
    """

    quality: str
    epochs: int
    depth: int = 100
    width: int = 1
    dilations: tuple[int, ...] = DEFAULT_DILATIONS
    learning_rate: float = 1e-3
    batch_size: int = 1
    patch_size: int = 0
    patches_per_image: int = 1
    slices_per_epoch: int = 0
    identity_start: bool = False
    points: int = DEFAULT_POINTS
    inference_pixels: int = 1 << 16

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_PRESETS = {
    # The paper's configuration (Sect. 2) with the authors' code for what the paper leaves out.
    "faithful": SR4ZCTConfig(quality="faithful", epochs=200),
    # CPU reduction, chosen by measurement on the real head CT (see benchmarks/superres).
    "fast": SR4ZCTConfig(
        quality="fast",
        epochs=12,
        batch_size=8,
        patch_size=64,
        patches_per_image=2,
        slices_per_epoch=24,
        identity_start=True,
    ),
}


def sr4zct_config(quality: str = "fast", epochs: int = 0) -> SR4ZCTConfig:
    """The preset for ``quality``, with ``epochs`` overriding its epoch count when > 0."""
    if quality not in _PRESETS:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    config = _PRESETS[quality]
    return dataclasses.replace(config, epochs=epochs) if epochs > 0 else config


@dataclasses.dataclass
class SR4ZCTResult:
    """Output of :func:`sr4zct_upsample`.

    Attributes:
        image: the super-resolved volume on the reference grid.
        losses: mean training loss per epoch (L2 on intensities normalised to mean 0, std 1).
        timings_s: seconds per stage (``prepare``, ``train``, ``infer``, ``resample``).
        config: the configuration used.
        network_spacing_mm: slice spacing of the grid the network worked on.
    """

    image: sitk.Image
    losses: list[float]
    timings_s: dict[str, float]
    config: SR4ZCTConfig
    network_spacing_mm: float

    def report(self) -> dict[str, Any]:
        """JSON-ready summary: config, timings and the loss curve (at most 20 points)."""
        step = max(1, math.ceil(len(self.losses) / 20))
        curve = [
            [index + 1, round(value, 6)]
            for index, value in enumerate(self.losses)
            if index % step == 0 or index == len(self.losses) - 1
        ]
        return {
            "config": self.config.to_dict(),
            "network_slice_spacing_mm": round(self.network_spacing_mm, 6),
            "timings_s": {name: round(value, 3) for name, value in self.timings_s.items()},
            "training_loss": {
                "first": round(self.losses[0], 6) if self.losses else None,
                "last": round(self.losses[-1], 6) if self.losses else None,
                "min": round(min(self.losses), 6) if self.losses else None,
                "curve": curve,
            },
        }


def training_pairs(
    slices: torch.Tensor,
    pixel_size: tuple[float, float],
    thickness: float,
    overlap: float,
    points: int = DEFAULT_POINTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Degraded inputs for Eq. 1: vertical blur of each axial slice, and horizontal blur rotated.

    Args:
        slices: (Z, A, B) axial slices (normalised intensities).
        pixel_size: (s_A, s_B) pixel size in mm along rows (vertical) and columns (horizontal).
        thickness: slice thickness r (mm).
        overlap: overlap o (mm).
        points: samples averaged per slab.

    Returns:
        ``(vertical, horizontal)``: (Z, A, B) F-up(F-down) along A, and (Z, B, A) = R(F-up(F-down)
        along B), R a 90 degree rotation. Targets are ``slices`` and ``R(slices)``.
    """
    vertical = degrade(slices, -2, pixel_size[0], thickness, overlap, points)
    horizontal = torch.rot90(degrade(slices, -1, pixel_size[1], thickness, overlap, points), 1, dims=(-2, -1))
    return vertical, horizontal


def _build_network(config: SR4ZCTConfig, seed: int) -> MSDNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MSDNet(1, 1, depth=config.depth, width=config.width, dilations=config.dilations)
    if config.identity_start:
        with torch.no_grad():
            net.final_weight[0, 0] = 1.0
    return net


def _pair(
    index: int, slices: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pair ``index`` of Eq. 1: 0..Z-1 vertical blur, Z..2Z-1 rotated horizontal blur (views)."""
    count = slices.shape[0]
    if index < count:
        return vertical[index], slices[index]
    return horizontal[index - count], torch.rot90(slices[index - count], 1, dims=(-2, -1))


def _batch(
    pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack pairs into (n, 1, H, W) inputs and targets; ``size`` > 0 takes one random square crop per pair."""
    inputs, targets = [], []
    for degraded, target in pairs:
        if size:
            height, width = degraded.shape[-2:]
            top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
            degraded = degraded[top : top + size, left : left + size]
            target = target[top : top + size, left : left + size]
        inputs.append(degraded)
        targets.append(target)
    return torch.stack(inputs).unsqueeze(1), torch.stack(targets).unsqueeze(1)


def train_sr4zct(
    slices: torch.Tensor,
    pixel_size: tuple[float, float],
    thickness: float,
    overlap: float,
    config: SR4ZCTConfig,
    *,
    device: torch.device | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> tuple[MSDNet, list[float]]:
    """Train the MS-D network on the volume's own axial slices (Eq. 1, L2 loss, Adam).

    Args:
        slices: (Z, A, B) axial slices, intensities normalised (mean 0, std 1).
        pixel_size: (s_A, s_B) in-plane pixel size (mm).
        thickness: through-plane slice thickness r (mm).
        overlap: through-plane overlap o = r - d (mm).
        config: the run's configuration.
        device: torch device for training (default CPU).
        progress: receives ``update`` per epoch (and about once a second); raises ``Cancelled``.
        seed: seeds the initial weights and the sampling of slices and patches.

    Returns:
        The trained network (in eval mode, on ``device``) and the mean loss per epoch.

    Raises:
        ValueError: whole-slice batches of more than one image on non-square slices (the vertical
            and rotated horizontal pairs differ in shape); use batch_size 1 or patches.

    Training runs in float32 (also on CUDA): the network is small (45,652 parameters) and its
    hand-written backward is float32; autocast is used for inference.
    """
    if not config.patch_size and config.batch_size > 1 and slices.shape[-1] != slices.shape[-2]:
        raise ValueError("whole-slice training with batch_size > 1 needs square slices; use batch_size=1 or patch_size")
    device = device or torch.device("cpu")
    progress = progress or Progress()
    vertical, horizontal = training_pairs(slices, pixel_size, thickness, overlap, config.points)
    patch = min(config.patch_size, *slices.shape[-2:]) if config.patch_size else 0
    net = _build_network(config, seed).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    count = slices.shape[0]
    per_epoch = min(config.slices_per_epoch, count) if config.slices_per_epoch else count
    losses: list[float] = []
    last_report = time.monotonic()
    for epoch in range(config.epochs):
        chosen = torch.randperm(count, generator=generator)[:per_epoch]
        items = torch.cat([chosen, chosen + count]).repeat_interleave(config.patches_per_image if patch else 1)
        items = items[torch.randperm(items.numel(), generator=generator)].tolist()
        total, seen = 0.0, 0
        for start in range(0, len(items), config.batch_size):
            batch = [_pair(index, slices, vertical, horizontal) for index in items[start : start + config.batch_size]]
            inputs, targets = _batch(batch, patch, generator)
            inputs, targets = inputs.to(device), targets.to(device)
            loss = torch.nn.functional.mse_loss(net(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
            progress.check_cancelled()
            if time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                fraction = (epoch + seen / len(items)) / config.epochs
                progress.update(fraction, "training", f"epoch {epoch + 1}/{config.epochs}")
        losses.append(total / max(seen, 1))
        progress.update(
            (epoch + 1) / config.epochs, "training", f"epoch {epoch + 1}/{config.epochs}, loss {losses[-1]:.4g}"
        )
    return net.eval(), losses


@torch.no_grad()
def predict_through_plane(
    net: MSDNet,
    volume: torch.Tensor,
    *,
    pixels_per_batch: int = 1 << 16,
    device_config: DeviceConfig | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Apply the network to every coronal and sagittal slice of an upsampled volume and average.

    Args:
        net: trained network; its device is used.
        volume: (S, A, B) volume on the fine slice grid (normalised), slice axis first: coronal
            images are (S, B) at fixed a, sagittal images (S, A) at fixed b; the slice axis is
            vertical in both, as in training.
        pixels_per_batch: images per forward pass = max(1, this / (S * width)).
        device_config: enables float16 autocast on CUDA when AMP is on.
        progress: receives ``update`` per batch; raises ``Cancelled``.

    Returns:
        (S, A, B) tensor on the CPU: the mean of the coronal and sagittal predictions.
    """
    progress = progress or Progress()
    device = next(net.parameters()).device
    slices, rows, cols = volume.shape
    total = torch.zeros_like(volume, device="cpu")
    views = ((1, volume.permute(1, 0, 2)), (2, volume.permute(2, 0, 1)))  # (A, S, B) coronal, (B, S, A) sagittal
    done, work = 0, rows + cols
    context = autocast(device_config) if device_config is not None else torch.autocast("cpu", enabled=False)
    for axis, stack in views:
        per_batch = max(1, pixels_per_batch // (stack.shape[1] * stack.shape[2]))
        for start in range(0, stack.shape[0], per_batch):
            images = stack[start : start + per_batch].unsqueeze(1).to(device, torch.float32)
            with context:
                output = net(images)[:, 0].float().cpu()
            if axis == 1:
                total[:, start : start + output.shape[0], :] += output.permute(1, 0, 2)
            else:
                total[:, :, start : start + output.shape[0]] += output.permute(1, 2, 0)
            done += output.shape[0]
            progress.update(done / work, "inference", "coronal" if axis == 1 else "sagittal")
    # The paper does not say how the coronal and sagittal results are merged; the mean is the
    # simplest unbiased choice (each voxel is predicted once by each view).
    return total / 2


def sr4zct_upsample(
    image: sitk.Image,
    reference: sitk.Image,
    geometry: SliceGeometry,
    config: SR4ZCTConfig,
    *,
    device_config: DeviceConfig | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> SR4ZCTResult:
    """Super-resolve ``image`` along its slice axis onto ``reference`` with SR4ZCT.

    The network works on a slice grid at the in-plane pixel size (as in the paper: F-up to r^xy,
    then the network); when ``reference`` has another slice spacing, that result is linearly
    resampled onto it.

    Args:
        image: the thick-slice volume (any pixel type).
        reference: output grid: the input's in-plane grid and direction, any slice positions
            (e.g. :func:`~SlicerMedFuse.superres.interpolation.fine_slice_reference`).
        geometry: slice axis, spacing d and thickness r (:func:`detect_slice_geometry`).
        config: :func:`sr4zct_config` preset.
        device_config: device and AMP (default: CPU).
        progress: progress and cancellation (training 0-0.8, inference 0.8-1).
        seed: seeds weights and sampling.

    Returns:
        The volume on ``reference`` (the input's pixel type, rounded for integer types, clipped to
        the input's range), with losses, timings and the config.
    """
    progress = progress or Progress()
    device = device_config.torch_device() if device_config is not None else torch.device("cpu")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    array = sitk.GetArrayFromImage(image)
    slice_dim = 2 - geometry.axis  # numpy order is (z, y, x)
    volume = torch.from_numpy(np.moveaxis(array, slice_dim, 0).astype(np.float32))  # (Z, A, B)
    numpy_spacing = image.GetSpacing()[::-1]
    pixel_size = tuple(float(numpy_spacing[dim]) for dim in range(3) if dim != slice_dim)
    low, high = float(volume.min()), float(volume.max())
    # The authors normalise input and output of the MS-D network to mean 0 / std 1 from the training
    # data (msd_pytorch's set_normalization); inputs and targets share the volume's statistics here.
    mean, std = float(volume.mean()), float(volume.std()) or 1.0
    normalised = (volume - mean) / std
    count = volume.shape[0]
    if count < 2:
        raise ValueError("SR4ZCT needs at least 2 slices")
    span = (count - 1) * geometry.slice_spacing
    fine_count = int(round(span / geometry.in_plane_spacing)) + 1
    network_positions = torch.linspace(0.0, span, fine_count, dtype=torch.float64)
    thick_positions = torch.arange(count, dtype=torch.float64) * geometry.slice_spacing
    upsampled = apply_along(linear_interpolation_matrix(thick_positions, network_positions), normalised, 0)
    timings["prepare"] = time.perf_counter() - clock

    clock = time.perf_counter()
    net, losses = train_sr4zct(
        normalised,
        pixel_size,
        geometry.thickness,
        geometry.overlap,
        config,
        device=device,
        progress=progress.span(0.0, 0.8),
        seed=seed,
    )
    timings["train"] = time.perf_counter() - clock

    clock = time.perf_counter()
    restored = predict_through_plane(
        net,
        upsampled,
        pixels_per_batch=config.inference_pixels,
        device_config=device_config,
        progress=progress.span(0.8, 1.0),
    )
    timings["infer"] = time.perf_counter() - clock

    clock = time.perf_counter()
    target_positions = slice_positions(image, reference, geometry.axis)
    same_grid = target_positions.numel() == fine_count and torch.allclose(
        target_positions, network_positions, atol=1e-4
    )
    if not same_grid:
        restored = apply_along(
            linear_interpolation_matrix(network_positions, target_positions, extrapolate=False), restored, 0
        )
    restored = (restored * std + mean).clamp(low, high)
    result = np.moveaxis(restored.numpy(), 0, slice_dim)
    if np.issubdtype(array.dtype, np.integer):
        result = np.rint(result).astype(array.dtype)
    output = sitk.GetImageFromArray(result)
    output.CopyInformation(reference)
    timings["resample"] = time.perf_counter() - clock
    return SR4ZCTResult(output, losses, timings, config, float(span / (fine_count - 1)))
