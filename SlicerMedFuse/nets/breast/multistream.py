"""The multi-stream U-Net that every network of the breast paper's Table 1 is an instance of.

Building blocks and the reasoning that fixes the details the paper leaves unstated (all of them
chosen so that the parameter counts reproduce Table 1; see ``Testing/backend/test_breast_nets.py``):

- **Encoder block** = two (3x3 conv with bias -> batch norm -> ReLU), then 2x2 max pooling.
  Five blocks; widths 64/128/256/512/1024 for the single-stream U-Net. With a decoder of
  (bilinear x2 upsampling -> 3x3 conv-BN-ReLU halving the channels), skip concatenation and the
  same double conv, this U-Net has 34.53 M parameters: Table 1's 34.5 M. A transposed-conv decoder
  would give 31.04 M, so the paper's U-Net upsamples by interpolation + convolution.
- **Streams**: FuseUNet "halves the kernels of each encoder layer", i.e. two streams of widths
  32/64/128/256/512. The master stream's next block reads the concatenation of both streams
  (FuseNet-style multi-layer fusion, by concatenation instead of summation); the assistant stream
  reads only itself. Skips and the 1024-channel bottleneck are the concatenations, so the decoder
  is the U-Net's: 26.67 M (Table 1: 26.7 M). Without the cross-stream input (``fusion="late"``,
  two independent half-width encoders whose features meet only in the skips and bottleneck) the
  count is 25.11 M, Table 1's LateFuseUNet (25.1 M).
- **SA blocks** after every one of the five encoder blocks: +0.186 M on the U-Net (34.71 M,
  Table 1's U-Net + SA 34.7 M), +0.047 M per half-width stream (FuseUNet + SA 26.77 M, 26.8 M;
  the proposed network, which has them on the master stream only, 26.72 M, 26.7 M).

Missing sequences: modality 0 (the master) is required. An absent assistant's stream features are
zeroed after every block (and not computed at all when it is absent from the whole batch), so
its input has no effect and the network still gives a valid output; train with
:class:`~SlicerMedFuse.nets.fusion.ModalityDropout` for that output to be good.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool
from torch import nn

from SlicerMedFuse.nets.fusion.missing import mask_modalities, normalize_presence
from SlicerMedFuse.nets.fusion.spatial_attention import SpatialAttentionMap

__all__ = ["DoubleConv", "MultiStreamUNet", "UpBlock"]

FUSIONS = ("multilayer", "late")
ATTENTIONS = ("none", "self", "master")
UPSAMPLES = ("linear", "deconv")


def _conv_bn_relu(spatial_dims: int, in_channels: int, out_channels: int) -> Convolution:
    return Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, act="relu", norm="batch", bias=True)


class DoubleConv(nn.Sequential):
    """Two (3x3 conv -> batch norm -> ReLU): the U-Net block of the breast paper's networks.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels of both convolutions.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _conv_bn_relu(spatial_dims, in_channels, out_channels),
            _conv_bn_relu(spatial_dims, out_channels, out_channels),
        )


class UpBlock(nn.Module):
    """Decoder level: upsample x2, concatenate the skip, :class:`DoubleConv`.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the coarser input.
        skip_channels: channels of the skip connection.
        out_channels: output channels (also the channels after upsampling).
        upsample: ``"linear"`` (bilinear/trilinear interpolation + 3x3 conv-BN-ReLU; the paper's
            counts) or ``"deconv"`` (2x2 transposed convolution).
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, skip_channels: int, out_channels: int, upsample: str = "linear"
    ) -> None:
        super().__init__()
        if upsample == "linear":
            mode = "bilinear" if spatial_dims == 2 else "trilinear"
            self.up: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=mode, align_corners=False),
                _conv_bn_relu(spatial_dims, in_channels, out_channels),
            )
        else:
            self.up = Conv[Conv.CONVTRANS, spatial_dims](in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(spatial_dims, skip_channels + out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``(B, in, *s)``, ``(B, skip, *2s)`` -> ``(B, out, *2s)``."""
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class MultiStreamUNet(nn.Module):
    """A U-Net with one encoder stream per modality (or one stream for all), fused by concatenation.

    Inputs are stacked on the channel axis in modality order, master first: ``x`` has shape
    ``(B, num_modalities * in_channels, *spatial)``. With ``num_streams == 1`` all modalities enter
    the single stream together (early fusion; a single modality gives a plain U-Net). With
    ``num_streams == num_modalities`` each modality has its own encoder stream of widths
    ``features``; at every level the streams' features are concatenated into the skip connection,
    and with ``fusion="multilayer"`` the master stream's next block also reads that concatenation.
    The decoder has widths ``num_streams * features``.

    Reference: Li, Sun, Liu, Wang, Zheng, Wang, "Learning Cross-Modal Deep Representations for
    Multi-Modal MR Image Segmentation", MICCAI 2019 (Figs. 1 and 3, Table 1). The module
    docstring records how the unstated details were fixed from Table 1's parameter counts.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels (1: a binary foreground logit).
        num_modalities: modalities in ``x`` (master first); default ``num_streams``.
        num_streams: 1 (early fusion / single modality) or ``num_modalities``.
        features: per-stream encoder widths, one per level (at least two levels).
        fusion: ``"multilayer"`` (master reads all streams) or ``"late"`` (independent streams).
        attention: ``"none"``, ``"self"`` (an SA block on every stream, computed from that stream)
            or ``"master"`` (one SA block per level computed from the master stream, applied to
            every stream: the proposed master/assistant network).
        reduction: ``r`` of the SA blocks.
        dilation: ``d`` of the SA blocks.
        upsample: ``"linear"`` or ``"deconv"`` (see :class:`UpBlock`).
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int | None = None,
        num_streams: int = 2,
        features: Sequence[int] = (32, 64, 128, 256, 512),
        fusion: str = "multilayer",
        attention: str = "none",
        reduction: int = 16,
        dilation: int = 4,
        upsample: str = "linear",
    ) -> None:
        super().__init__()
        num_modalities = num_streams if num_modalities is None else num_modalities
        features = tuple(int(f) for f in features)
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if num_streams < 1 or num_modalities < 1:
            raise ValueError(f"num_streams and num_modalities must be at least 1, got {num_streams}, {num_modalities}")
        if num_streams not in (1, num_modalities):
            raise ValueError(f"num_streams must be 1 or num_modalities ({num_modalities}), got {num_streams}")
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"features must list at least two positive widths, got {features}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_modalities = num_modalities
        self.num_streams = num_streams
        self.features = features
        self.fusion = fusion
        self.attention_mode = attention
        levels = len(features)
        skip_channels = [num_streams * f for f in features]

        self.encoders = nn.ModuleList()
        for stream in range(num_streams):
            blocks = nn.ModuleList()
            for level, width in enumerate(features):
                if level == 0:
                    block_in = in_channels * (num_modalities if num_streams == 1 else 1)
                elif stream == 0 and fusion == "multilayer":
                    block_in = skip_channels[level - 1]
                else:
                    block_in = features[level - 1]
                blocks.append(DoubleConv(spatial_dims, block_in, width))
            self.encoders.append(blocks)
        attended = {"none": 0, "self": num_streams, "master": 1}[attention]
        self.attentions = nn.ModuleList(
            nn.ModuleList(SpatialAttentionMap(spatial_dims, width, reduction, dilation) for width in features)
            for _ in range(attended)
        )
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2, stride=2)
        self.decoder = nn.ModuleList(
            UpBlock(spatial_dims, skip_channels[level + 1], skip_channels[level], skip_channels[level], upsample)
            for level in reversed(range(levels - 1))
        )
        self.head = Conv[Conv.CONV, spatial_dims](skip_channels[0], out_channels, kernel_size=1)

    @property
    def stream_names(self) -> tuple[str, ...]:
        """Names of the encoder streams, the keys of :meth:`forward_with_attention`'s maps."""
        if self.num_streams == 1:
            return ("master",)
        if self.num_streams == 2:
            return ("master", "assistant")
        return ("master", *(f"assistant_{i}" for i in range(1, self.num_streams)))

    @property
    def size_divisor(self) -> int:
        """Every spatial size of ``x`` must be a multiple of this (one factor 2 per pooling)."""
        return 2 ** (len(self.features) - 1)

    def forward(self, x: torch.Tensor, presence: torch.Tensor | None = None) -> torch.Tensor:
        """Segment.

        Args:
            x: ``(B, num_modalities * in_channels, *spatial)``, master first; every spatial size a
                multiple of :attr:`size_divisor`.
            presence: which modalities each sample has, boolean ``(B, num_modalities)`` or
                ``(num_modalities,)``; default all. The master (index 0) is required.

        Returns:
            Logits ``(B, out_channels, *spatial)``.
        """
        return self._run(x, presence, keep_attention=False)[0]

    def forward_with_attention(
        self, x: torch.Tensor, presence: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """Segment and return the SA maps.

        Args:
            x: as in :meth:`forward`.
            presence: as in :meth:`forward`.

        Returns:
            ``(logits, maps)``: ``maps[stream]`` lists one ``(B, 1, *spatial_level)`` map per encoder
            level, for each stream that computes its own map (``"master"`` only for the
            master/assistant network; empty without attention).
        """
        return self._run(x, presence, keep_attention=True)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = self.num_modalities * self.in_channels
        if not isinstance(x, torch.Tensor) or x.ndim != self.spatial_dims + 2 or x.shape[1] != expected:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"x must have shape (B, {expected}, *spatial) with {self.spatial_dims} spatial dims "
                f"({self.num_modalities} modalities x {self.in_channels} channels, master first), got {shape}"
            )
        bad = [s for s in x.shape[2:] if s % self.size_divisor]
        if bad:
            raise ValueError(
                f"x's spatial sizes {tuple(x.shape[2:])} must be multiples of {self.size_divisor}; pad or resample"
            )

    def _run(
        self, x: torch.Tensor, presence: torch.Tensor | None, keep_attention: bool
    ) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        self._check_input(x)
        batch = x.shape[0]
        mask = normalize_presence(presence, batch, self.num_modalities, device=x.device)
        if not bool(mask[:, 0].all()):
            raise ValueError("presence: the master modality (index 0) must be present in every sample")
        if self.num_streams == 1:
            inputs = [mask_modalities(x, mask, self.num_modalities) if self.num_modalities > 1 else x]
        else:
            inputs = list(x.split(self.in_channels, dim=1))
        weights = [m.to(x.dtype).reshape(batch, *([1] * (x.ndim - 1))) for m in mask.unbind(dim=1)]
        names = self.stream_names
        maps: dict[str, list[torch.Tensor]] = {names[i]: [] for i in range(len(self.attentions))}

        skips: list[torch.Tensor] = []
        previous: list[torch.Tensor] = []
        for level, width in enumerate(self.features):
            current: list[torch.Tensor] = []
            for stream, blocks in enumerate(self.encoders):
                if level == 0:
                    block_in = inputs[stream]
                elif stream == 0 and self.fusion == "multilayer":
                    block_in = self.pool(skips[-1])
                else:
                    block_in = self.pool(previous[stream])
                if stream > 0 and not bool(mask[:, stream].any()):
                    # absent from the whole batch: its features are zero, no need to compute them
                    current.append(current[0].new_zeros(batch, width, *current[0].shape[2:]))
                    continue
                features = blocks[level](block_in)
                current.append(features * weights[stream] if stream > 0 else features)
            if self.attention_mode == "self":
                attention = [att[level](f) for att, f in zip(self.attentions, current, strict=True)]
                current = [f * a for f, a in zip(current, attention, strict=True)]
            elif self.attention_mode == "master":
                attention = [self.attentions[0][level](current[0])]
                current = [f * attention[0] for f in current]
            else:
                attention = []
            if keep_attention:
                for name, a in zip(names, attention, strict=False):
                    maps[name].append(a)
            skips.append(torch.cat(current, dim=1) if len(current) > 1 else current[0])
            previous = current

        y = skips[-1]
        for up, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            y = up(y, skip)
        return self.head(y), maps
