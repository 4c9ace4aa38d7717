"""Missing sequences: presence masks, modality dropout and MagNET-style shared-weight encoders.

A *presence mask* is a boolean tensor of shape ``(B, N)``: ``presence[b, i]`` says whether
modality ``i`` of sample ``b`` was acquired. Every fusion block of this package accepts one and
guarantees that an absent modality's features have no effect on its output. A mask of shape
``(N,)`` applies to the whole batch (convenient for sliding-window inference, where the window
batch is not the image batch). A sample with no modality at all is always an error.

Multi-modal inputs are stacked along the channel axis in modality order: ``x`` has shape
``(B, N * C, *spatial)`` and modality ``i`` owns channels ``i * C`` to ``(i + 1) * C - 1``.

References:
    Konwer, Chen, Prasanna, "MagNET: Modality-Agnostic Network for Brain Tumor Segmentation and
    Characterization with Missing Modalities", MLMI 2023 (modality dropout 40-20-20-20,
    shared-weight encoders, attention-weighted fusion, Eqs. 1-2).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "AttentionWeightedFusion",
    "ModalityDropout",
    "SharedEncoderFusion",
    "SharedEncoderOutput",
    "mask_features",
    "mask_modalities",
    "normalize_presence",
    "presence_subsets",
    "sample_presence",
]


def normalize_presence(
    presence: torch.Tensor | Sequence[bool] | Sequence[Sequence[bool]] | None,
    batch_size: int,
    num_modalities: int,
    *,
    device: torch.device | str | None = None,
    name: str = "presence",
) -> torch.Tensor:
    """Check a presence mask and return it as a boolean ``(B, N)`` tensor.

    Args:
        presence: ``None`` (every modality present), or booleans / 0-1 numbers of shape ``(N,)``
            (one mask for the whole batch) or ``(B, N)``.
        batch_size: ``B``.
        num_modalities: ``N``.
        device: device of the returned tensor (default: the input's, or CPU).
        name: the argument name used in error messages.

    Returns:
        Boolean tensor of shape ``(B, N)``.

    Raises:
        ValueError: wrong shape, values other than 0/1, or a sample with no modality present.
    """
    if presence is None:
        return torch.ones(batch_size, num_modalities, dtype=torch.bool, device=device)
    mask = torch.as_tensor(presence, device=device)
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must hold booleans or 0/1 values, got {mask.tolist()}")
        mask = mask.bool()
    if mask.ndim == 1:
        mask = mask.unsqueeze(0).expand(batch_size, -1)
    if tuple(mask.shape) != (batch_size, num_modalities):
        raise ValueError(
            f"{name} must have shape ({num_modalities},) or ({batch_size}, {num_modalities}), got {tuple(mask.shape)}"
        )
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{name}: sample(s) {empty} have no modality present; at least one is required")
    return mask


def _broadcast(mask: torch.Tensor, ndim: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B,)`` boolean -> ``(B, 1, ..., 1)`` with ``ndim`` dimensions, in ``dtype``."""
    return mask.to(dtype).reshape(mask.shape[0], *([1] * (ndim - 1)))


def mask_modalities(x: torch.Tensor, presence: torch.Tensor, num_modalities: int) -> torch.Tensor:
    """Zero the channels of absent modalities in a channel-stacked input.

    Args:
        x: ``(B, N * C, *spatial)``, modality ``i`` in channels ``[i * C, (i + 1) * C)``.
        presence: boolean ``(B, N)`` (see :func:`normalize_presence`).
        num_modalities: ``N``.

    Returns:
        Tensor shaped like ``x`` with absent modalities' channels set to zero.

    Raises:
        ValueError: ``x``'s channel count is not a multiple of ``num_modalities``.
    """
    if x.ndim < 3 or x.shape[1] % num_modalities:
        raise ValueError(
            f"x must have shape (B, {num_modalities} * C, *spatial) with modalities stacked on the channel axis, "
            f"got {tuple(x.shape)}"
        )
    presence = normalize_presence(presence, x.shape[0], num_modalities, device=x.device)
    per_channel = presence.repeat_interleave(x.shape[1] // num_modalities, dim=1)  # (B, N * C)
    return x * per_channel.to(x.dtype).reshape(*per_channel.shape, *([1] * (x.ndim - 2)))


def mask_features(features: Sequence[torch.Tensor], presence: torch.Tensor) -> list[torch.Tensor]:
    """Zero each modality's feature map for the samples where that modality is absent.

    Args:
        features: ``N`` tensors of shape ``(B, C_i, *spatial_i)``.
        presence: boolean ``(B, N)``.

    Returns:
        ``N`` tensors shaped like ``features``.
    """
    return [f * _broadcast(presence[:, i], f.ndim, f.dtype) for i, f in enumerate(features)]


def presence_subsets(num_modalities: int, required: Sequence[int] = ()) -> list[tuple[bool, ...]]:
    """Every non-empty combination of modalities that contains the required ones.

    Args:
        num_modalities: ``N``.
        required: indices that every combination contains (e.g. ``(0,)`` for a master sequence).

    Returns:
        Presence tuples of length ``N``, the full set first, then by decreasing size.

    Raises:
        ValueError: ``num_modalities`` < 1 or a required index out of range.
    """
    if num_modalities < 1:
        raise ValueError(f"num_modalities must be at least 1, got {num_modalities}")
    required = _check_indices(required, num_modalities, "required")
    subsets = [
        combo
        for combo in itertools.product((True, False), repeat=num_modalities)
        if any(combo) and all(combo[i] for i in required)
    ]
    return sorted(subsets, key=lambda combo: -sum(combo))


def _check_indices(indices: Sequence[int], num_modalities: int, name: str) -> tuple[int, ...]:
    indices = tuple(int(i) for i in indices)
    bad = [i for i in indices if not 0 <= i < num_modalities]
    if bad:
        raise ValueError(f"{name} holds modality indices {bad} outside 0..{num_modalities - 1}")
    return indices


def sample_presence(
    batch_size: int,
    num_modalities: int,
    *,
    drop_prob: float = 0.5,
    subset_probs: Sequence[float] | None = None,
    required: Sequence[int] = (),
    available: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw a random presence mask for modality-dropout training; never drops every modality.

    Two schemes:

    - independent (``subset_probs=None``): each droppable available modality is dropped with
      probability ``drop_prob``; a sample left with nothing keeps one random available modality.
    - by subset size (MagNET): ``subset_probs[k]`` is the probability of keeping ``N - k``
      modalities, e.g. ``(0.4, 0.2, 0.2, 0.2)`` for four sequences (40 % full, 20 % each of
      three, two and one). The kept ones are drawn uniformly among the available ones.

    Args:
        batch_size: ``B``.
        num_modalities: ``N``.
        drop_prob: drop probability of the independent scheme, in ``[0, 1]``.
        subset_probs: ``N`` non-negative weights of the subset-size scheme (normalised here).
        required: modality indices never dropped (e.g. the master sequence); they must be available.
        available: boolean ``(B, N)`` or ``(N,)``: what the data actually holds (default: all).
            Unavailable modalities stay absent.
        generator: random generator for reproducible draws.

    Returns:
        Boolean ``(B, N)``: a subset of ``available`` with at least one modality per sample.

    Raises:
        ValueError: an argument is out of range, or a required modality is unavailable.
    """
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    required = _check_indices(required, num_modalities, "required")
    available = normalize_presence(available, batch_size, num_modalities, name="available").cpu()
    for i in required:
        if not bool(available[:, i].all()):
            raise ValueError(f"required modality {i} is not available in every sample (see available)")
    weights = None
    if subset_probs is not None:
        weights = torch.as_tensor(subset_probs, dtype=torch.float64)
        if weights.shape != (num_modalities,) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError(
                f"subset_probs must be {num_modalities} non-negative weights with a positive sum, got {subset_probs}"
            )
    is_required = torch.zeros(num_modalities, dtype=torch.bool)
    is_required[list(required)] = True
    result = torch.zeros(batch_size, num_modalities, dtype=torch.bool)
    for b in range(batch_size):
        optional = (available[b] & ~is_required).nonzero().flatten()
        keep = is_required.clone()
        if weights is None:
            kept = torch.rand(len(optional), generator=generator) >= drop_prob
            keep[optional[kept]] = True
        else:
            size = num_modalities - int(torch.multinomial(weights, 1, generator=generator))
            size = min(max(size, len(required), 1), len(required) + len(optional))
            order = optional[torch.randperm(len(optional), generator=generator)]
            keep[order[: size - len(required)]] = True
        if not keep.any():  # only reachable without required modalities
            keep[optional[torch.randint(len(optional), (1,), generator=generator)]] = True
        result[b] = keep
    return result


class ModalityDropout(nn.Module):
    """Randomly removes whole modalities from a channel-stacked input during training.

    In training mode a new presence mask is drawn with :func:`sample_presence` (restricted to the
    modalities the sample really has) and the dropped modalities' channels are zeroed; in eval
    mode only the given mask is applied. Either way the module returns ``(x, presence)``, so the
    network downstream sees which modalities are absent.

    Reference: MagNET (Konwer et al., MLMI 2023), Sect. 3: random modality dropping, 40-20-20-20.

    Args:
        num_modalities: ``N``.
        drop_prob: per-modality drop probability (independent scheme).
        subset_probs: optional subset-size weights (MagNET scheme), see :func:`sample_presence`.
        required: modality indices never dropped (e.g. ``(0,)``: the master T1C).

    Example::

        dropout = ModalityDropout(2, drop_prob=0.3, required=(0,))
        x, presence = dropout(batch["image"])      # (B, 2 * C, H, W), (B, 2)
        logits = net(x, presence)
    """

    def __init__(
        self,
        num_modalities: int,
        drop_prob: float = 0.5,
        subset_probs: Sequence[float] | None = None,
        required: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if num_modalities < 1:
            raise ValueError(f"num_modalities must be at least 1, got {num_modalities}")
        if not 0.0 <= drop_prob <= 1.0:
            raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
        self.num_modalities = num_modalities
        self.drop_prob = float(drop_prob)
        self.subset_probs = None if subset_probs is None else tuple(float(p) for p in subset_probs)
        self.required = _check_indices(required, num_modalities, "required")
        if self.subset_probs is not None and len(self.subset_probs) != num_modalities:
            raise ValueError(f"subset_probs must have {num_modalities} entries, got {len(self.subset_probs)}")

    def forward(self, x: torch.Tensor, presence: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop modalities.

        Args:
            x: ``(B, N * C, *spatial)``.
            presence: the modalities each sample really has, ``(B, N)`` or ``(N,)``; default all.

        Returns:
            ``(x_masked, presence)``: ``x`` with absent modalities zeroed, and the boolean ``(B, N)``
            mask that was applied (on ``x``'s device).
        """
        available = normalize_presence(presence, x.shape[0], self.num_modalities, device=x.device)
        if self.training:
            available = sample_presence(
                x.shape[0],
                self.num_modalities,
                drop_prob=self.drop_prob,
                subset_probs=self.subset_probs,
                required=self.required,
                available=available,
            ).to(x.device)
        return mask_modalities(x, available, self.num_modalities), available

    def extra_repr(self) -> str:
        scheme = f"subset_probs={self.subset_probs}" if self.subset_probs else f"drop_prob={self.drop_prob}"
        return f"num_modalities={self.num_modalities}, {scheme}, required={self.required}"


class AttentionWeightedFusion(nn.Module):
    """MagNET's fusion: sum the present modalities' features, then SE-style channel re-weighting.

    ``F = sum_i m_i F_i``, ``w = sigmoid(BN(W2 relu(BN(W1 gap(F)))))``, output ``F * w``
    (MagNET Eqs. 1-2).

    Reference: Konwer et al., "MagNET", MLMI 2023, Sect. 2.1 and Fig. 2.

    Args:
        channels: ``C`` of every modality's features.
        reduction: channel reduction ratio ``rr`` of ``W1`` (not stated in the paper; 4 here).
        reduce: ``"sum"`` (the paper) or ``"mean"`` over the present modalities.
        norm: use the paper's batch normalisation around ``W1``/``W2`` (needs batches of at least
            two samples in training; set ``False`` for batch size 1).
    """

    def __init__(self, channels: int, reduction: int = 4, reduce: str = "sum", norm: bool = True) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, got {reduction}")
        if reduce not in ("sum", "mean"):
            raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
        hidden = max(1, channels // reduction)
        self.channels = channels
        self.reduce = reduce
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden) if norm else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.BatchNorm1d(channels) if norm else nn.Identity(),
            nn.Sigmoid(),
        )

    def forward(self, features: Sequence[torch.Tensor], presence: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse.

        Args:
            features: ``N`` tensors ``(B, C, *spatial)`` (2D or 3D), one per modality.
            presence: boolean ``(B, N)`` or ``(N,)``; default all present.

        Returns:
            ``(B, C, *spatial)``.
        """
        stacked = _stack_features(features, self.channels, "features")
        mask = normalize_presence(presence, stacked.shape[0], stacked.shape[1], device=stacked.device)
        weights = mask.to(stacked.dtype).reshape(*mask.shape, *([1] * (stacked.ndim - 2)))
        fused = (stacked * weights).sum(dim=1)
        if self.reduce == "mean":
            fused = fused / weights.sum(dim=1)
        w = self.gate(fused.flatten(2).mean(dim=2))
        return fused * w.reshape(*w.shape, *([1] * (fused.ndim - 2)))


def _stack_features(features: Sequence[torch.Tensor], channels: int, name: str) -> torch.Tensor:
    if isinstance(features, torch.Tensor) or len(features) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of tensors, one per modality")
    shape = tuple(features[0].shape)
    if len(shape) not in (4, 5) or shape[1] != channels:
        raise ValueError(f"{name}[0] must have shape (B, {channels}, *spatial) with 2 or 3 spatial dims, got {shape}")
    for i, f in enumerate(features):
        if tuple(f.shape) != shape:
            raise ValueError(f"{name}[{i}] has shape {tuple(f.shape)}, expected {shape} like {name}[0]")
    return torch.stack(list(features), dim=1)  # (B, N, C, *spatial)


class SharedEncoderOutput(NamedTuple):
    """What :class:`SharedEncoderFusion` returns."""

    fused: list[torch.Tensor]
    """One fused feature map per encoder level, ``(B, C_l, *spatial_l)``."""
    per_modality: list[torch.Tensor]
    """Per level, the modality features ``(B, N, C_l, *spatial_l)`` (zero where absent), e.g. for
    a correlation loss or a missing-modality discriminator."""
    presence: torch.Tensor
    """The boolean ``(B, N)`` mask used."""


class SharedEncoderFusion(nn.Module):
    """One encoder with shared weights for every modality, fused level by level (MagNET style).

    Each present modality (a ``C_in``-channel slice of the input) goes through the same encoder;
    absent ones are not encoded at all and count as zero features. At every level the modality
    features are fused with :class:`AttentionWeightedFusion`, so the output has the same shape
    whatever subset of modalities is present.

    Reference: Konwer et al., "MagNET", MLMI 2023, Sects. 2.1 and 2.3 (shared-weight encoders).

    Args:
        encoder: maps ``(P, C_in, *spatial)`` to one tensor or a sequence of per-level tensors
            ``(P, C_l, *spatial_l)``.
        channels: ``C_l`` of each level the encoder returns (one entry for a single tensor).
        in_channels: ``C_in`` of one modality.
        num_modalities: ``N``.
        reduction: channel reduction ratio of the fusion gates.
        reduce: ``"sum"`` or ``"mean"`` over present modalities.
        norm: batch normalisation in the fusion gates (see :class:`AttentionWeightedFusion`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        channels: Sequence[int],
        in_channels: int,
        num_modalities: int,
        reduction: int = 4,
        reduce: str = "sum",
        norm: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
        if len(channels) == 0:
            raise ValueError("channels must name the channel count of at least one encoder level")
        if in_channels < 1 or num_modalities < 1:
            raise ValueError(f"in_channels and num_modalities must be at least 1, got {in_channels}, {num_modalities}")
        self.encoder = encoder
        self.channels = tuple(int(c) for c in channels)
        self.in_channels = in_channels
        self.num_modalities = num_modalities
        self.fusions = nn.ModuleList(AttentionWeightedFusion(c, reduction, reduce, norm) for c in self.channels)

    def forward(self, x: torch.Tensor, presence: torch.Tensor | None = None) -> SharedEncoderOutput:
        """Encode and fuse.

        Args:
            x: ``(B, N * C_in, *spatial)``.
            presence: boolean ``(B, N)`` or ``(N,)``; default all present.

        Returns:
            :class:`SharedEncoderOutput`.
        """
        expected = self.num_modalities * self.in_channels
        if x.ndim not in (4, 5) or x.shape[1] != expected:
            raise ValueError(
                f"x must have shape (B, {expected}, *spatial) with 2 or 3 spatial dims, got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        mask = normalize_presence(presence, batch, self.num_modalities, device=x.device)
        per_modality = x.reshape(batch, self.num_modalities, self.in_channels, *x.shape[2:])
        present = mask.nonzero()  # (P, 2): (sample, modality) pairs actually encoded
        encoded = self.encoder(per_modality[present[:, 0], present[:, 1]])
        levels = [encoded] if isinstance(encoded, torch.Tensor) else list(encoded)
        if len(levels) != len(self.channels):
            raise ValueError(f"the encoder returned {len(levels)} levels but channels names {len(self.channels)}")
        fused, scattered = [], []
        for level, (features, fusion) in enumerate(zip(levels, self.fusions, strict=True)):
            if features.shape[1] != self.channels[level]:
                raise ValueError(
                    f"encoder level {level} has {features.shape[1]} channels, channels says {self.channels[level]}"
                )
            full = features.new_zeros(batch, self.num_modalities, *features.shape[1:])
            full[present[:, 0], present[:, 1]] = features
            scattered.append(full)
            fused.append(fusion(full.unbind(dim=1), mask))
        return SharedEncoderOutput(fused, scattered, mask)
