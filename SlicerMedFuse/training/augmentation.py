"""Batch augmentation for 3D segmentation patches (vectorised numpy, applied per sample).

A light subset of nnU-Net's augmentation that keeps CPU training cheap: mirroring along given
axes, multiplicative brightness and contrast, additive Gaussian noise. Labels are only mirrored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["Augmentation"]


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random transforms of a batch.

    Attributes:
        mirror_axes: Spatial axes (0 = z, 1 = y, 2 = x) each flipped with probability 0.5.
        brightness: Multiply a sample by ``U(1 - b, 1 + b)`` with probability 0.15 (nnU-Net: 0.25).
        contrast: Scale a sample's deviation from its mean by ``U(1 - c, 1 + c)`` with probability 0.15.
        noise_std: Largest standard deviation of additive Gaussian noise (probability 0.1).
    """

    mirror_axes: Sequence[int] = (2,)
    brightness: float = 0.25
    contrast: float = 0.25
    noise_std: float = 0.05

    def __call__(
        self, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment ``images (B, C, z, y, x)`` and ``labels (B, 1, z, y, x)``; returns new arrays."""
        images, labels = images.copy(), labels.copy()
        for b in range(images.shape[0]):
            for axis in self.mirror_axes:
                if rng.random() < 0.5:
                    images[b] = np.flip(images[b], axis=axis + 1)
                    labels[b] = np.flip(labels[b], axis=axis + 1)
            if self.brightness > 0 and rng.random() < 0.15:
                images[b] *= rng.uniform(1 - self.brightness, 1 + self.brightness)
            if self.contrast > 0 and rng.random() < 0.15:
                mean = images[b].mean(axis=(1, 2, 3), keepdims=True)
                images[b] = (images[b] - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
            if self.noise_std > 0 and rng.random() < 0.1:
                sigma = rng.uniform(0, self.noise_std)
                images[b] += rng.normal(0.0, sigma, images[b].shape).astype(np.float32)
        return images, labels
