"""The Transfer Module paper's multi-input classifier (axillary lymph node metastasis from breast MRI)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv, Norm
from monai.networks.nets import ResNet
from torch import nn

from SlicerMedFuse.nets.fusion.transfer_module import TransferModule

__all__ = ["BACKBONES", "TransferModuleClassifier", "basicnet_path", "resnet_path"]

#: ResNet depth -> basic blocks per stage.
_RESNET_LAYERS = {"resnet10": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
BACKBONES = ("basicnet", *_RESNET_LAYERS)
#: After which blocks (1-based, of five) the Transfer Module sits by default, as in the public code:
#: BasicNet after blocks 3, 4, 5; ResNets after every residual stage (blocks 2-5; block 1 is the stem).
_DEFAULT_TM_AFTER = {
    "basicnet": (3, 4, 5),
    "resnet10": (2, 3, 4, 5),
    "resnet18": (2, 3, 4, 5),
    "resnet34": (2, 3, 4, 5),
}


def basicnet_path(spatial_dims: int, in_channels: int, base_features: int = 8) -> tuple[nn.ModuleList, list[int]]:
    """BasicNet: five (4x4 conv, stride 2, no bias -> batch norm -> ReLU) blocks, widths ``f * (1, 2, 4, 8, 16)``.

    Every block uses padding 1 (the public code pads the fifth block with 0 and flattens, which
    fixes the input size; global pooling after the path makes any size of at least 32 work here).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels of the sequence (e.g. the DCE phases).
        base_features: ``f`` (8 in the paper's code).

    Returns:
        ``(blocks, widths)``: the five blocks and their output channels.
    """
    conv = Conv[Conv.CONV, spatial_dims]
    widths = [base_features * 2**i for i in range(5)]
    blocks = nn.ModuleList()
    previous = in_channels
    for width in widths:
        blocks.append(
            nn.Sequential(
                conv(previous, width, kernel_size=4, stride=2, padding=1, bias=False),
                Norm[Norm.BATCH, spatial_dims](width),
                nn.ReLU(inplace=True),
            )
        )
        previous = width
    return blocks, widths


def resnet_path(
    spatial_dims: int, in_channels: int, depth: str = "resnet10", widths: Sequence[int] = (64, 128, 256, 512)
) -> tuple[nn.ModuleList, list[int]]:
    """A MONAI ResNet (basic blocks) cut into five blocks: stem, then the four residual stages.

    The stem is a 7x7 convolution with stride 2, batch norm, ReLU and 3x3 max pooling; shortcuts
    are 1x1 convolutions without bias (MedicalNet layout, as in the paper's code).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels of the sequence.
        depth: ``"resnet10"``, ``"resnet18"`` or ``"resnet34"``.
        widths: channels of the four stages.

    Returns:
        ``(blocks, widths)``: five blocks and their output channels (the stem has ``widths[0]``).
    """
    net = ResNet(
        block="basic",
        layers=list(_RESNET_LAYERS[depth]),
        block_inplanes=list(widths),
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,
        shortcut_type="B",
        bias_downsample=False,
        feed_forward=False,
    )
    stem = nn.Sequential(net.conv1, net.bn1, net.act, net.maxpool)
    blocks = nn.ModuleList([stem, net.layer1, net.layer2, net.layer3, net.layer4])
    return blocks, [widths[0], *widths]


class TransferModuleClassifier(nn.Module):
    """Multi-input, single-output CNN: one path per MRI sequence, Transfer Modules between the paths,
    a clinical-data branch, one logit out (e.g. axillary lymph node metastasis).

    Each sequence has its own path (BasicNet or ResNet10/18/34, five blocks); after the blocks in
    ``tm_after`` a :class:`~SlicerMedFuse.nets.fusion.TransferModule` re-weights every path's
    channels using the descriptors of all paths. The last features of all paths are concatenated,
    mixed by a 1x1 conv-BN-ReLU, globally average-pooled and joined with the clinical branch
    (Linear(n, 4) -> BN -> ReLU) before two fully connected layers.

    Reference: Gravina, Santucci, Cordelli, Soda, Sansone, "Cross-Modality Calibration in
    Multi-Input Network for Axillary Lymph Node Metastasis Evaluation"; public code
    ``Michela94CE/Cross-Modality-Calibration-with-Transfer-Module`` (three paths: DCE, water, DWI;
    10 clinical features; best reported: ResNet10, 90 % accuracy, 87 % AUC).

    Args:
        spatial_dims: 2 or 3 (3 in the paper).
        in_channels: channels of each sequence's input, one entry per path (e.g. ``(4, 1, 1)``
            for four DCE phases, water and DWI).
        backbone: ``"basicnet"``, ``"resnet10"``, ``"resnet18"`` or ``"resnet34"``.
        base_features: BasicNet width ``f`` (widths ``f * (1, 2, 4, 8, 16)``).
        resnet_widths: channels of the four ResNet stages.
        tm_after: 1-based indices of the blocks followed by a Transfer Module; default as in the
            paper's code (BasicNet 3, 4, 5; ResNets 2-5); ``()`` disables it.
        tm_reduction: reduction of the Transfer Module's shared layer (4).
        clinical_features: number of clinical inputs (10 in the paper; 0: no clinical branch).
        clinical_hidden: width of the clinical branch (4).
        out_channels: logits out (1: probability of metastasis after a sigmoid).

    Example::

        net = TransferModuleClassifier(in_channels=(1, 1, 1), backbone="resnet10")
        logit = net([dce, water, dwi], clinical)      # (B, 1)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: Sequence[int] = (1, 1, 1),
        backbone: str = "basicnet",
        base_features: int = 8,
        resnet_widths: Sequence[int] = (64, 128, 256, 512),
        tm_after: Sequence[int] | None = None,
        tm_reduction: int = 4,
        clinical_features: int = 10,
        clinical_hidden: int = 4,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        in_channels = tuple(int(c) for c in in_channels)
        if len(in_channels) < 1 or min(in_channels) < 1:
            raise ValueError(f"in_channels must list a positive channel count per sequence, got {in_channels}")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if base_features < 1:
            raise ValueError(f"base_features must be at least 1, got {base_features}")
        if len(resnet_widths) != 4 or min(resnet_widths) < 1:
            raise ValueError(f"resnet_widths must be four positive widths, got {tuple(resnet_widths)}")
        tm_after = _DEFAULT_TM_AFTER[backbone] if tm_after is None else tuple(int(i) for i in tm_after)
        if any(not 1 <= i <= 5 for i in tm_after) or len(set(tm_after)) != len(tm_after):
            raise ValueError(f"tm_after must hold distinct block indices in 1..5, got {tm_after}")
        if clinical_features < 0 or clinical_hidden < 1:
            raise ValueError(
                f"clinical_features must be >= 0 and clinical_hidden >= 1, got {clinical_features}, {clinical_hidden}"
            )
        if out_channels < 1:
            raise ValueError(f"out_channels must be at least 1, got {out_channels}")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.backbone = backbone
        self.clinical_features = clinical_features
        self.tm_after = tuple(sorted(tm_after))
        self.paths = nn.ModuleList()
        widths: list[int] = []
        for channels in in_channels:
            if backbone == "basicnet":
                blocks, widths = basicnet_path(spatial_dims, channels, base_features)
            else:
                blocks, widths = resnet_path(spatial_dims, channels, backbone, resnet_widths)
            self.paths.append(blocks)
        self.transfer = nn.ModuleDict(
            {str(i): TransferModule([widths[i - 1]] * len(in_channels), tm_reduction) for i in self.tm_after}
        )
        joint = widths[-1] * len(in_channels)
        self.mix = nn.Sequential(
            Conv[Conv.CONV, spatial_dims](joint, joint, kernel_size=1, bias=False),
            Norm[Norm.BATCH, spatial_dims](joint),
            nn.ReLU(inplace=True),
        )
        self.clinical: nn.Module | None = None
        head_in = joint
        if clinical_features:
            self.clinical = nn.Sequential(
                nn.Linear(clinical_features, clinical_hidden), nn.BatchNorm1d(clinical_hidden), nn.ReLU(inplace=True)
            )
            head_in += clinical_hidden
        self.head = nn.Sequential(
            nn.Linear(head_in, max(1, joint // 2)), nn.ReLU(inplace=True), nn.Linear(max(1, joint // 2), out_channels)
        )

    def forward(
        self, images: torch.Tensor | Sequence[torch.Tensor], clinical: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Classify.

        Args:
            images: one tensor ``(B, in_channels[i], *spatial_i)`` per sequence (sizes may differ
                between sequences; at least 32 voxels per axis), or one tensor with the sequences
                stacked on the channel axis in path order.
            clinical: ``(B, clinical_features)`` floats; required when the clinical branch exists.

        Returns:
            Logits ``(B, out_channels)``.
        """
        if isinstance(images, torch.Tensor):
            if images.ndim != self.spatial_dims + 2 or images.shape[1] != sum(self.in_channels):
                raise ValueError(
                    f"images must have shape (B, {sum(self.in_channels)}, *spatial) with {self.spatial_dims} "
                    f"spatial dims when given as one tensor, got {tuple(images.shape)}"
                )
            images = list(images.split(list(self.in_channels), dim=1))
        if len(images) != len(self.paths):
            raise ValueError(f"images must hold {len(self.paths)} tensors (one per sequence), got {len(images)}")
        batch = images[0].shape[0]
        for i, (image, channels) in enumerate(zip(images, self.in_channels, strict=True)):
            if image.ndim != self.spatial_dims + 2 or image.shape[:2] != (batch, channels):
                raise ValueError(
                    f"images[{i}] must have shape ({batch}, {channels}, *spatial), got {tuple(image.shape)}"
                )
        if self.clinical is not None and (clinical is None or tuple(clinical.shape) != (batch, self.clinical_features)):
            got = None if clinical is None else tuple(clinical.shape)
            raise ValueError(f"clinical must have shape ({batch}, {self.clinical_features}), got {got}")
        if self.clinical is None and clinical is not None:
            raise ValueError("clinical was given but the network has no clinical branch (clinical_features=0)")

        features = list(images)
        for block in range(5):
            features = [path[block](f) for path, f in zip(self.paths, features, strict=True)]
            if str(block + 1) in self.transfer:
                features = self.transfer[str(block + 1)](features)
        sizes = {tuple(f.shape[2:]) for f in features}
        if len(sizes) > 1:  # sequences of different sizes: pool each before mixing
            features = [f.flatten(2).mean(dim=2).reshape(*f.shape[:2], *([1] * self.spatial_dims)) for f in features]
        pooled = self.mix(torch.cat(features, dim=1)).flatten(2).mean(dim=2)
        if self.clinical is not None:
            pooled = torch.cat([pooled, self.clinical(clinical)], dim=1)
        return self.head(pooled)
