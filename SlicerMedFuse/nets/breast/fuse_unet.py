"""Two-stream members of the breast paper's family: FuseUNet, FuseUNet + SA, LateFuseUNet and the
proposed master/assistant network (2D, and a 3D variant for volumes)."""

from __future__ import annotations

from collections.abc import Sequence

from SlicerMedFuse.nets.breast.multistream import MultiStreamUNet

__all__ = ["FuseUNet", "FuseUNetSA", "LateFuseUNet", "MasterAssistantUNet", "MasterAssistantUNet3d"]

#: Per-stream widths: half of the U-Net's in every encoder layer (the paper's FuseUNet).
STREAM_FEATURES = (32, 64, 128, 256, 512)
#: Per-stream widths of the 3D variant: a quarter of the 2D ones, so a 3x3x3 network stays near
#: 5 M parameters and runs on a CPU (not from the paper, which is 2D only).
STREAM_FEATURES_3D = (8, 16, 32, 64, 128)


class FuseUNet(MultiStreamUNet):
    """The paper's baseline: half-width encoder per modality, master stream reads both (multi-layer fusion).

    26.67 M parameters for two single-channel modalities (Table 1: FuseUNet 26.7 M).

    Reference: Li et al., "Learning Cross-Modal Deep Representations for Multi-Modal MR Image
    Segmentation", MICCAI 2019, Sect. 2 and Fig. 1 (FuseUNet, built from FuseNet).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels (1: binary foreground logit).
        num_modalities: modalities stacked in ``x``, master first (2 in the paper).
        features: per-stream widths, one per level.
        upsample: ``"linear"`` (the paper's counts) or ``"deconv"``.

    Example::

        net = FuseUNet()
        logits = net(torch.cat([t1c, t2w], dim=1))            # (B, 1, 256, 256)
        logits = net(t1c_and_zeros, presence=[True, False])   # T2W missing
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = STREAM_FEATURES,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            num_streams=num_modalities,
            features=features,
            fusion="multilayer",
            attention="none",
            upsample=upsample,
        )


class FuseUNetSA(MultiStreamUNet):
    """FuseUNet with an SA block on every stream, each computed from its own stream.

    26.77 M parameters (Table 1: FuseUNet + SA 26.8 M).

    Reference: Li et al., MICCAI 2019, Table 1 (FuseUNet + SA) and Fig. 5.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels.
        num_modalities: modalities stacked in ``x``, master first.
        features: per-stream widths, one per level.
        reduction: ``r`` of the SA blocks (16).
        dilation: ``d`` of the SA blocks (4).
        upsample: ``"linear"`` or ``"deconv"``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = STREAM_FEATURES,
        reduction: int = 16,
        dilation: int = 4,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            num_streams=num_modalities,
            features=features,
            fusion="multilayer",
            attention="self",
            reduction=reduction,
            dilation=dilation,
            upsample=upsample,
        )


class MasterAssistantUNet(MultiStreamUNet):
    """The proposed network: FuseUNet whose SA maps come from the master (T1C) stream only and
    re-weight both the master and the assistant (T2W) features before every pooling layer.

    26.72 M parameters (Table 1: Proposed 26.7 M). :meth:`forward_with_attention` returns the five
    master maps (the paper's Fig. 5).

    Reference: Li et al., MICCAI 2019, Sect. 2 ("Supervised Cross-Modal Deep Representation
    Learning") and Fig. 3.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels.
        num_modalities: modalities stacked in ``x``, master first (more than one assistant is
            allowed: the master stream then reads all streams, and the map re-weights all).
        features: per-stream widths, one per level.
        reduction: ``r`` of the SA blocks (16).
        dilation: ``d`` of the SA blocks (4).
        upsample: ``"linear"`` or ``"deconv"``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = STREAM_FEATURES,
        reduction: int = 16,
        dilation: int = 4,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            num_streams=num_modalities,
            features=features,
            fusion="multilayer",
            attention="master",
            reduction=reduction,
            dilation=dilation,
            upsample=upsample,
        )


class MasterAssistantUNet3d(MasterAssistantUNet):
    """3D variant of the proposed network for volumes (trilinear upsampling, 3x3x3 convolutions).

    The paper is 2D; this keeps its design (five levels, master-driven SA with r = 16, d = 4) with
    per-stream widths 8/16/32/64/128 (5.0 M parameters), so that whole breast volumes fit a
    CPU. Input sizes must be multiples of 16 in every direction.

    Reference: Li et al., MICCAI 2019 (extended to 3D).

    Args:
        in_channels: channels of one modality.
        out_channels: output channels.
        num_modalities: modalities stacked in ``x``, master first.
        features: per-stream widths, one per level.
        reduction: ``r`` of the SA blocks.
        dilation: ``d`` of the SA blocks.
        upsample: ``"linear"`` or ``"deconv"``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = STREAM_FEATURES_3D,
        reduction: int = 16,
        dilation: int = 4,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            features=features,
            reduction=reduction,
            dilation=dilation,
            upsample=upsample,
        )


class LateFuseUNet(MultiStreamUNet):
    """Two independent half-width encoders whose features meet only in the skips and the bottleneck.

    25.11 M parameters (Table 1: LateFuseUNet 25.1 M). The paper names the model without drawing
    it; this structure (FuseUNet without the master stream's cross-stream input) is the one that
    reproduces the count exactly.

    Reference: Li et al., MICCAI 2019, Table 1 (LateFuseUNet).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels.
        num_modalities: modalities stacked in ``x``, master first.
        features: per-stream widths, one per level.
        upsample: ``"linear"`` or ``"deconv"``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = STREAM_FEATURES,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            num_streams=num_modalities,
            features=features,
            fusion="late",
            attention="none",
            upsample=upsample,
        )
