"""The Transfer Module paper's multi-input classifier (BasicNet / ResNet paths, TM, clinical branch)."""

from __future__ import annotations

import pytest
import torch

from SlicerMedFuse.nets.classifier import BACKBONES, TransferModuleClassifier
from SlicerMedFuse.nets.fusion import TransferModule

SMALL_RESNET = {"resnet_widths": (8, 16, 32, 64)}


@pytest.fixture(autouse=True)
def _seed_and_one_thread(small_torch_work):
    torch.manual_seed(0)


def _inputs(batch: int = 2, size: int = 32, paths: int = 3) -> list[torch.Tensor]:
    return [torch.randn(batch, 1, size, size, size) for _ in range(paths)]


def test_basicnet_classifier_outputs_one_logit_and_trains():
    net = TransferModuleClassifier()
    logits = net(_inputs(), torch.randn(2, 10))
    assert tuple(logits.shape) == (2, 1)
    logits.sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


def test_basicnet_layout_follows_the_papers_code():
    net = TransferModuleClassifier(base_features=8)
    convs = [m for m in net.paths[0].modules() if isinstance(m, torch.nn.Conv3d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (w, (4, 4, 4), (2, 2, 2)) for w in (8, 16, 32, 64, 128)
    ]
    assert sorted(net.transfer) == ["3", "4", "5"]  # TM after blocks 3, 4, 5
    assert all(isinstance(tm, TransferModule) for tm in net.transfer.values())
    assert net.transfer["5"].channels == (128, 128, 128)
    assert (net.clinical[0].in_features, net.clinical[0].out_features) == (10, 4)


@pytest.mark.parametrize("backbone", ["resnet10", "resnet18", "resnet34"])
def test_resnet_paths(backbone):
    net = TransferModuleClassifier(backbone=backbone, **SMALL_RESNET)
    assert sorted(net.transfer) == ["2", "3", "4", "5"]
    assert tuple(net(_inputs(), torch.randn(2, 10)).shape) == (2, 1)


def test_resnet_depths_and_paper_widths():
    with torch.device("meta"):
        counts = {b: sum(p.numel() for p in TransferModuleClassifier(backbone=b).parameters()) for b in BACKBONES}
    assert counts["basicnet"] < counts["resnet10"] < counts["resnet18"] < counts["resnet34"]
    with torch.device("meta"):
        net = TransferModuleClassifier(backbone="resnet18")
    stage_blocks = [len(net.paths[0][i]) for i in range(1, 5)]
    assert stage_blocks == [2, 2, 2, 2]
    assert net.transfer["5"].channels == (512, 512, 512)


def _path0_features(net: TransferModuleClassifier, images: list[torch.Tensor]) -> torch.Tensor:
    """The first path's features after the last block (and its Transfer Module, if any)."""
    with torch.no_grad():
        features = images
        for block in range(5):
            features = [path[block](f) for path, f in zip(net.paths, features, strict=True)]
            if str(block + 1) in net.transfer:
                features = net.transfer[str(block + 1)](features)
    return features[0]


def test_the_transfer_module_couples_the_paths():
    coupled = TransferModuleClassifier(in_channels=(1, 1)).eval()
    separate = TransferModuleClassifier(in_channels=(1, 1), tm_after=()).eval()
    assert len(separate.transfer) == 0
    dce, other = _inputs(paths=2)
    for net, coupled_paths in ((coupled, True), (separate, False)):
        changed = not torch.allclose(_path0_features(net, [dce, other]), _path0_features(net, [dce, other * 3 + 1]))
        assert changed == coupled_paths


def test_sequences_may_differ_in_size_and_channels_and_come_stacked():
    net = TransferModuleClassifier(in_channels=(4, 1, 1)).eval()
    images = [torch.randn(2, 4, 64, 64, 32), torch.randn(2, 1, 32, 32, 32), torch.randn(2, 1, 48, 48, 32)]
    with torch.no_grad():
        assert tuple(net(images, torch.randn(2, 10)).shape) == (2, 1)
        stacked = torch.randn(2, 6, 32, 32, 32)
        torch.testing.assert_close(
            net(stacked, torch.zeros(2, 10)), net(list(stacked.split([4, 1, 1], 1)), torch.zeros(2, 10))
        )


def test_without_clinical_branch_and_in_2d():
    net = TransferModuleClassifier(spatial_dims=2, in_channels=(1, 1), clinical_features=0, out_channels=2)
    assert net.clinical is None
    assert tuple(net([torch.randn(2, 1, 64, 64), torch.randn(2, 1, 64, 64)]).shape) == (2, 2)


def test_arguments_are_validated_with_messages_that_name_them():
    with pytest.raises(ValueError, match="backbone"):
        TransferModuleClassifier(backbone="resnet50")
    with pytest.raises(ValueError, match="tm_after"):
        TransferModuleClassifier(tm_after=(0, 3))
    with pytest.raises(ValueError, match="in_channels"):
        TransferModuleClassifier(in_channels=())
    net = TransferModuleClassifier()
    with pytest.raises(ValueError, match="clinical must have shape"):
        net(_inputs(), None)
    with pytest.raises(ValueError, match="images must hold 3"):
        net(_inputs(paths=2), torch.randn(2, 10))
    with pytest.raises(ValueError, match=r"images\[1\]"):
        net(
            [torch.randn(2, 1, 32, 32, 32), torch.randn(2, 2, 32, 32, 32), torch.randn(2, 1, 32, 32, 32)],
            torch.randn(2, 10),
        )
