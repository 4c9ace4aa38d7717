"""The breast paper's network family: Table 1 parameter counts, forward passes, missing T2W, 3D variant, loss."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from SlicerMedFuse.nets.breast import (
    ARCHITECTURES,
    BreastUNet,
    EarlyFuseUNet,
    FuseUNet,
    FuseUNetSA,
    LateFuseUNet,
    MasterAssistantUNet,
    MasterAssistantUNet3d,
    MultiStreamUNet,
    register_fusion_architectures,
)
from SlicerMedFuse.nets.fusion import presence_subsets
from SlicerMedFuse.nets.losses import DiceCrossEntropyLoss

#: Li et al., MICCAI 2019, Table 1 (millions of parameters), and the constructor that reproduces each.
TABLE_1 = [
    ("U-Net (T1C)", BreastUNet, {}, 34.5),
    ("U-Net + SA (T1C)", BreastUNet, {"spatial_attention": True}, 34.7),
    ("EarlyFuseUNet", EarlyFuseUNet, {}, 34.5),
    ("LateFuseUNet", LateFuseUNet, {}, 25.1),
    ("FuseUNet", FuseUNet, {}, 26.7),
    ("FuseUNet + SA", FuseUNetSA, {}, 26.8),
    ("Proposed", MasterAssistantUNet, {}, 26.7),
]
TWO_MODAL = [EarlyFuseUNet, LateFuseUNet, FuseUNet, FuseUNetSA, MasterAssistantUNet]
SMALL = {"features": (4, 8, 16, 32, 64)}  # same structure, fast on a CPU


@pytest.fixture(autouse=True)
def _seed_and_one_thread(small_torch_work):
    torch.manual_seed(0)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("model", "cls", "kwargs", "millions"), TABLE_1, ids=[row[0] for row in TABLE_1])
def test_parameter_counts_match_table_1(model, cls, kwargs, millions):
    with torch.device("meta"):  # counts need no memory and no initialisation
        network = cls(**kwargs)
    count = _count(network) / 1e6
    assert abs(count - millions) / millions < 0.03, f"{model}: {count:.2f} M vs Table 1 {millions} M"


def test_parameter_counts_keep_the_papers_ordering():
    with torch.device("meta"):
        counts = {row[0]: _count(row[1](**row[2])) for row in TABLE_1}
    assert counts["LateFuseUNet"] < counts["FuseUNet"] < counts["Proposed"] < counts["FuseUNet + SA"]
    assert counts["FuseUNet"] < counts["U-Net (T1C)"] < counts["U-Net + SA (T1C)"]


@pytest.mark.parametrize("cls", [BreastUNet, *TWO_MODAL])
def test_forward_on_a_small_two_modal_input(cls):
    network = cls()
    x = torch.randn(2, network.num_modalities, 64, 64)
    logits = network(x)
    assert tuple(logits.shape) == (2, 1, 64, 64)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("cls", TWO_MODAL)
def test_any_subset_of_sequences_gives_a_valid_output(cls):
    network = cls(**SMALL).eval()
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        for subset in presence_subsets(2, required=(0,)):
            presence = torch.tensor(subset)
            logits = network(x, presence)
            assert tuple(logits.shape) == (2, 1, 32, 32) and torch.isfinite(logits).all()
            if not subset[1]:  # a missing T2W has no effect, whatever the tensor holds
                replaced = x.clone()
                replaced[:, 1] = torch.randn(2, 32, 32) * 10
                assert torch.equal(logits, network(replaced, presence))
        mixed = torch.tensor([[True, True], [True, False]])
        both = network(x, mixed)
        torch.testing.assert_close(both[1:], network(x[1:], torch.tensor([True, False])))
        torch.testing.assert_close(both[:1], network(x[:1]))


@pytest.mark.parametrize("cls", TWO_MODAL)
def test_the_master_sequence_is_required(cls):
    network = cls(**SMALL)
    with pytest.raises(ValueError, match="master"):
        network(torch.randn(1, 2, 32, 32), torch.tensor([False, True]))


def test_the_proposed_network_returns_master_attention_maps():
    network = MasterAssistantUNet(**SMALL).eval()
    x = torch.randn(2, 2, 64, 64)
    with torch.no_grad():
        logits, maps = network.forward_with_attention(x)
        torch.testing.assert_close(logits, network(x))
    assert tuple(logits.shape) == (2, 1, 64, 64)
    assert list(maps) == ["master"]
    assert [tuple(m.shape) for m in maps["master"]] == [(2, 1, s, s) for s in (64, 32, 16, 8, 4)]
    assert all(bool(((m > 0) & (m < 1)).all()) for m in maps["master"])


def test_fuseunet_sa_returns_one_map_set_per_stream_and_unet_none():
    _, maps = FuseUNetSA(**SMALL).forward_with_attention(torch.randn(1, 2, 32, 32))
    assert list(maps) == ["master", "assistant"] and len(maps["assistant"]) == 5
    _, maps = BreastUNet(**SMALL).forward_with_attention(torch.randn(1, 1, 32, 32))
    assert maps == {}


def test_proposed_network_trains_end_to_end():
    network = MasterAssistantUNet(**SMALL)
    x = torch.randn(2, 2, 32, 32)
    target = torch.zeros(2, 1, 32, 32)
    target[:, :, 8:20, 10:24] = 1
    loss = DiceCrossEntropyLoss()(network(x, torch.tensor([[True, True], [True, False]])), target)
    loss.backward()
    missing = [n for n, p in network.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


def test_3d_variant_forward_on_a_small_volume():
    network = MasterAssistantUNet3d()
    assert 4.5e6 < _count(network) < 5.5e6
    logits, maps = network.forward_with_attention(torch.randn(1, 2, 32, 32, 32), torch.tensor([True, True]))
    assert tuple(logits.shape) == (1, 1, 32, 32, 32)
    assert tuple(maps["master"][-1].shape) == (1, 1, 2, 2, 2)
    network.eval()
    with torch.no_grad():
        assert tuple(network(torch.randn(1, 2, 32, 32, 32), torch.tensor([True, False])).shape) == (1, 1, 32, 32, 32)


def test_inputs_are_validated_with_messages_that_name_the_argument():
    network = FuseUNet(**SMALL)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2"):
        network(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="multiples of 16"):
        network(torch.randn(1, 2, 40, 32))
    with pytest.raises(ValueError, match="presence must have shape"):
        network(torch.randn(1, 2, 32, 32), torch.tensor([True, True, True]))
    with pytest.raises(ValueError, match="fusion"):
        MultiStreamUNet(fusion="sum")
    with pytest.raises(ValueError, match="num_streams"):
        MultiStreamUNet(num_modalities=3, num_streams=2)
    with pytest.raises(ValueError, match="features"):
        FuseUNet(features=(8,))


def test_deconv_upsampling_gives_the_transposed_conv_unet():
    with torch.device("meta"):
        count = _count(BreastUNet(upsample="deconv"))
    assert abs(count / 1e6 - 31.04) < 0.01  # why Table 1's 34.5 M implies interpolation + conv


def test_registered_architectures_build(monkeypatch):
    from SlicerMedFuse.nets import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_fusion_architectures()
    register_fusion_architectures()  # idempotent
    assert set(ARCHITECTURES) <= set(registry.known_architectures())
    network = registry.build_network("medfuse.BreastMasterAssistantUNet2d", {"features": [4, 8, 16, 32, 64]})
    assert isinstance(network, MasterAssistantUNet)
    classifier = registry.build_network("medfuse.TransferModuleClassifier", {"in_channels": [1, 1]})
    assert classifier.__class__.__name__ == "TransferModuleClassifier"


def test_registration_imports_no_torch():
    code = (
        "import sys; from SlicerMedFuse.nets.breast import register_fusion_architectures;"
        "register_fusion_architectures(); assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- loss (Eq. 1)


def test_dice_ce_loss_is_equation_1():
    logits = torch.randn(2, 1, 16, 16)
    target = (torch.rand(2, 1, 16, 16) > 0.7).float()
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum(dim=(1, 2, 3)) + 1) / (p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(DiceCrossEntropyLoss()(logits, target), dice.mean() + bce)
    torch.testing.assert_close(DiceCrossEntropyLoss(alpha=0.0)(logits, target), dice.mean())


def test_dice_ce_loss_multiclass_and_validation():
    loss = DiceCrossEntropyLoss()
    value = loss(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8)))
    assert value.ndim == 0 and torch.isfinite(value)
    perfect = torch.full((1, 2, 8, 8), -20.0)
    perfect[:, 0] = 20.0
    assert float(loss(perfect, torch.zeros(1, 1, 8, 8))) < 1e-3  # empty foreground, predicted empty
    with pytest.raises(ValueError, match="target must have shape"):
        loss(torch.randn(2, 1, 8, 8), torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="epsilon"):
        DiceCrossEntropyLoss(epsilon=0)
