"""Single-stream members of the breast paper's family: U-Net (one modality), U-Net + SA, EarlyFuseUNet."""

from __future__ import annotations

from collections.abc import Sequence

from SlicerMedFuse.nets.breast.multistream import MultiStreamUNet

__all__ = ["BreastUNet", "EarlyFuseUNet"]

#: Widths of the paper's U-Net; they give Table 1's 34.5 M parameters (see ``multistream``).
UNET_FEATURES = (64, 128, 256, 512, 1024)


class BreastUNet(MultiStreamUNet):
    """U-Net on one modality (T1C in the paper), optionally with an SA block after every encoder block.

    34.53 M parameters at the defaults (Table 1: U-Net 34.5 M); 34.71 M with
    ``spatial_attention=True`` (Table 1: U-Net + SA 34.7 M).

    Reference: Li et al., "Learning Cross-Modal Deep Representations for Multi-Modal MR Image
    Segmentation", MICCAI 2019, Table 1 (baselines U-Net (T1C) and U-Net + SA (T1C)).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (1: binary foreground logit).
        features: encoder widths, one per level.
        spatial_attention: add the SA block (r, d below) after every encoder block.
        reduction: ``r`` of the SA blocks.
        dilation: ``d`` of the SA blocks.
        upsample: ``"linear"`` (the paper's counts) or ``"deconv"``.

    Example::

        net = BreastUNet()
        logits = net(torch.randn(4, 1, 256, 256))   # (4, 1, 256, 256)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = UNET_FEATURES,
        spatial_attention: bool = False,
        reduction: int = 16,
        dilation: int = 4,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=1,
            num_streams=1,
            features=features,
            attention="self" if spatial_attention else "none",
            reduction=reduction,
            dilation=dilation,
            upsample=upsample,
        )


class EarlyFuseUNet(MultiStreamUNet):
    """U-Net whose input is the channel concatenation of the modalities (early fusion).

    34.53 M parameters for two single-channel modalities (Table 1: EarlyFuseUNet 34.5 M). An absent
    assistant is zeroed at the input, so its content has no effect; the master (index 0) is required.

    Reference: Li et al., MICCAI 2019, Table 1 (EarlyFuseUNet).

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of one modality.
        out_channels: output channels.
        num_modalities: modalities stacked in ``x``, master first.
        features: encoder widths, one per level.
        upsample: ``"linear"`` or ``"deconv"``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_modalities: int = 2,
        features: Sequence[int] = UNET_FEATURES,
        upsample: str = "linear",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            num_modalities=num_modalities,
            num_streams=1,
            features=features,
            upsample=upsample,
        )
