"""Fusion blocks (Transfer Module, SA, modality-aware attention, missing-modality tools) in 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from SlicerMedFuse.nets.fusion import (
    AttentionWeightedFusion,
    MasterAssistantAttention,
    ModalityAwareAttention,
    ModalityDropout,
    SharedEncoderFusion,
    SpatialAttentionMap,
    TransferModule,
    mask_modalities,
    normalize_presence,
    presence_subsets,
    sample_presence,
)
from SlicerMedFuse.nets.losses import DiceCrossEntropyLoss, MutualLearningLoss

SIZES = {2: (12, 10), 3: (6, 8, 4)}


@pytest.fixture(autouse=True)
def _seed_and_one_thread(small_torch_work):
    torch.manual_seed(0)


def _features(spatial_dims: int, channels: int, batch: int = 2, grad: bool = False) -> torch.Tensor:
    return torch.randn(batch, channels, *SIZES[spatial_dims], requires_grad=grad)


def _assert_all_parameters_have_gradients(module: torch.nn.Module) -> None:
    missing = [name for name, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"


# ---------------------------------------------------------------- Transfer Module


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_transfer_module_shapes_gradients_and_gate_range(spatial_dims):
    tm = TransferModule((8, 4, 6))
    inputs = [_features(spatial_dims, c, grad=True) for c in (8, 4, 6)]
    outputs = tm(inputs)
    assert [tuple(o.shape) for o in outputs] == [tuple(i.shape) for i in inputs]
    sum(o.square().sum() for o in outputs).backward()
    _assert_all_parameters_have_gradients(tm)
    assert all(i.grad is not None for i in inputs)
    gates = tm.gates([i.detach() * 50 for i in inputs])  # large inputs: still strictly inside (0, 1)
    assert [tuple(g.shape) for g in gates] == [(2, 8), (2, 4), (2, 6)]
    for gate in gates:
        assert bool(((gate > 0) & (gate < 1)).all())


def test_transfer_module_matches_the_papers_layout():
    tm = TransferModule((64, 64, 64))
    assert tm.shared[0].in_features == 192 and tm.shared[0].out_features == 48  # FC to 1/4 + ReLU
    assert [head[0].out_features for head in tm.heads] == [64, 64, 64]  # one FC + sigmoid per path


def test_transfer_module_gates_use_every_path():
    tm = TransferModule((4, 4))
    a, b = _features(2, 4), _features(2, 4)
    before = tm.gates([a, b])[0]
    after = tm.gates([a, b + 3.0])[0]
    assert not torch.allclose(before, after), "path 0's gate must depend on path 1's descriptor"


def test_transfer_module_paths_may_differ_in_size():
    tm = TransferModule((4, 4))
    out = tm([torch.randn(2, 4, 8, 8, 8), torch.randn(2, 4, 4, 6, 2)])
    assert tuple(out[1].shape) == (2, 4, 4, 6, 2)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_transfer_module_absent_path_has_no_effect(spatial_dims):
    tm = TransferModule((4, 4, 4))
    inputs = [_features(spatial_dims, 4) for _ in range(3)]
    presence = torch.tensor([[True, False, True], [True, True, True]])
    out = tm(inputs, presence)
    changed = [inputs[0], inputs[1] * 7 + 1, inputs[2]]
    out_changed = tm(changed, presence)
    assert torch.equal(out[0][0], out_changed[0][0]) and torch.equal(out[2][0], out_changed[2][0])
    assert not out[1][0].any()  # the absent path comes back as zeros
    assert not torch.allclose(out[0][1], out_changed[0][1])  # sample 1 has path 1


def test_transfer_module_rejects_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        TransferModule(())
    with pytest.raises(ValueError, match="reduction"):
        TransferModule((4, 4), reduction=0)
    tm = TransferModule((4, 4))
    with pytest.raises(ValueError, match="features"):
        tm([_features(2, 4)])
    with pytest.raises(ValueError, match=r"features\[1\]"):
        tm([_features(2, 4), _features(2, 5)])


# ---------------------------------------------------------------- spatial attention


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_spatial_attention_map_shape_range_and_gradients(spatial_dims):
    sa = SpatialAttentionMap(spatial_dims, 32)
    x = _features(spatial_dims, 32, grad=True)
    attention = sa(x)
    assert tuple(attention.shape) == (2, 1, *SIZES[spatial_dims])
    assert bool(((attention > 0) & (attention < 1)).all())
    attention.sum().backward()
    _assert_all_parameters_have_gradients(sa)
    assert x.grad is not None


def test_spatial_attention_map_layers_follow_the_paper():
    sa = SpatialAttentionMap(2, 1024, reduction=16, dilation=4)
    convs = [m for m in sa.layers if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.dilation) for c in convs] == [
        (1024, 64, (1, 1), (1, 1)),
        (64, 64, (3, 3), (4, 4)),
        (64, 64, (3, 3), (4, 4)),
        (64, 1, (1, 1), (1, 1)),
    ]
    assert isinstance(sa.layers[-2], torch.nn.BatchNorm2d) and isinstance(sa.layers[-1], torch.nn.Sigmoid)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_master_assistant_attention_comes_from_the_master_only(spatial_dims):
    block = MasterAssistantAttention(spatial_dims, 16)
    master = _features(spatial_dims, 16, grad=True)
    assistant = _features(spatial_dims, 8, grad=True)
    out = block(master, [assistant])
    assert tuple(out.attention.shape) == (2, 1, *SIZES[spatial_dims])
    torch.testing.assert_close(out.master, master * out.attention)
    torch.testing.assert_close(out.assistants[0], assistant * out.attention)
    other = block(master, [assistant * 5 - 2])
    torch.testing.assert_close(other.attention, out.attention)  # the assistant never moves the map
    (out.master.sum() + out.assistants[0].sum()).backward()
    _assert_all_parameters_have_gradients(block)
    assert master.grad is not None and assistant.grad is not None


def test_spatial_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="spatial_dims"):
        SpatialAttentionMap(1, 8)
    with pytest.raises(ValueError, match="dilation"):
        SpatialAttentionMap(2, 8, dilation=0)
    with pytest.raises(ValueError, match="x must have shape"):
        SpatialAttentionMap(2, 8)(_features(2, 4))
    with pytest.raises(ValueError, match=r"assistants\[0\]"):
        MasterAssistantAttention(2, 8)(_features(2, 8), [torch.randn(2, 8, 5, 5)])


# ---------------------------------------------------------------- modality-aware attention


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_modality_aware_attention_shapes_weights_and_gradients(spatial_dims):
    block = ModalityAwareAttention(spatial_dims, 6, num_modalities=3)
    features = [_features(spatial_dims, 6, grad=True) for _ in range(3)]
    fused, weights = block(features)
    assert tuple(fused.shape) == (2, 6, *SIZES[spatial_dims])
    assert tuple(weights.shape) == (2, 3, *SIZES[spatial_dims])
    torch.testing.assert_close(weights.sum(dim=1), torch.ones_like(weights[:, 0]))
    expected = sum(weights[:, i : i + 1] * features[i] for i in range(3))
    torch.testing.assert_close(fused, expected)  # F_att = sum_i A_i * F_i
    fused.square().sum().backward()
    _assert_all_parameters_have_gradients(block)
    assert all(f.grad is not None for f in features)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_modality_aware_attention_absent_modality_has_zero_effect(spatial_dims):
    block = ModalityAwareAttention(spatial_dims, 4, num_modalities=3)
    features = [_features(spatial_dims, 4) for _ in range(3)]
    presence = torch.tensor([[True, False, True], [False, True, True]])
    fused, weights = block(features, presence)
    assert not weights[0, 1].any() and not weights[1, 0].any()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones_like(weights[:, 0]))  # renormalised
    perturbed = [features[0].clone(), features[1].clone(), features[2]]
    perturbed[1][0] = 100.0  # sample 0 lacks modality 1
    perturbed[0][1] = -100.0  # sample 1 lacks modality 0
    fused_perturbed, _ = block(perturbed, presence)
    assert torch.equal(fused, fused_perturbed)


def test_modality_aware_attention_accepts_explicit_joint_features():
    block = ModalityAwareAttention(2, 4, num_modalities=2, joint_channels=10)
    features = [_features(2, 4) for _ in range(2)]
    fused, _ = block(features, joint=_features(2, 10))
    assert tuple(fused.shape) == (2, 4, 12, 10)
    with pytest.raises(ValueError, match="joint"):
        block(features, joint=_features(2, 8))


def test_modality_aware_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_modalities"):
        ModalityAwareAttention(2, 4, num_modalities=1)
    block = ModalityAwareAttention(2, 4, num_modalities=2)
    with pytest.raises(ValueError, match="features"):
        block([_features(2, 4)])
    with pytest.raises(ValueError, match="no modality present"):
        block([_features(2, 4), _features(2, 4)], torch.tensor([[True, False], [False, False]]))


# ---------------------------------------------------------------- presence masks and modality dropout


def test_normalize_presence_broadcasts_and_validates():
    assert normalize_presence(None, 3, 2).all()
    mask = normalize_presence([True, False], 3, 2)
    assert mask.shape == (3, 2) and mask[:, 0].all() and not mask[:, 1].any()
    assert normalize_presence(torch.tensor([[1, 0]]), 1, 2).dtype == torch.bool
    with pytest.raises(ValueError, match="presence must have shape"):
        normalize_presence([True, False, True], 2, 2)
    with pytest.raises(ValueError, match="0/1"):
        normalize_presence(torch.tensor([0.5, 1.0]), 1, 2)
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\]"):
        normalize_presence(torch.tensor([[1, 0], [0, 0]]), 2, 2)


def test_presence_subsets_cover_every_combination_with_the_required_ones():
    assert presence_subsets(2, required=(0,)) == [(True, True), (True, False)]
    assert len(presence_subsets(4)) == 15  # MagNET's 15 combinations
    assert presence_subsets(3)[0] == (True, True, True)
    with pytest.raises(ValueError, match="required"):
        presence_subsets(2, required=(2,))


@pytest.mark.parametrize("subset_probs", [None, (0.4, 0.2, 0.2, 0.2)])
def test_sample_presence_never_drops_every_modality(subset_probs):
    generator = torch.Generator().manual_seed(1)
    available = torch.ones(500, 4, dtype=torch.bool)
    available[::3, 1:] = False  # some samples only have modality 0
    mask = sample_presence(500, 4, drop_prob=0.5, subset_probs=subset_probs, available=available, generator=generator)
    assert mask.any(dim=1).all()
    assert not (mask & ~available).any()
    sizes = mask[1::3].sum(dim=1)
    assert set(sizes.tolist()) == {1, 2, 3, 4}


def test_sample_presence_keeps_required_modalities_and_follows_subset_sizes():
    generator = torch.Generator().manual_seed(2)
    mask = sample_presence(4000, 4, subset_probs=(0.4, 0.2, 0.2, 0.2), required=(0,), generator=generator)
    assert mask[:, 0].all()
    share_full = float((mask.sum(dim=1) == 4).float().mean())
    assert 0.37 < share_full < 0.43  # 40 % full-modality cases
    with pytest.raises(ValueError, match="required modality 1"):
        sample_presence(2, 2, required=(1,), available=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="drop_prob"):
        sample_presence(2, 2, drop_prob=1.5)
    with pytest.raises(ValueError, match="subset_probs"):
        sample_presence(2, 2, subset_probs=(1.0,))


def test_modality_dropout_zeroes_dropped_modalities_in_training_only():
    dropout = ModalityDropout(3, drop_prob=1.0, required=(0,))
    x = torch.randn(4, 6, 8, 8) + 10  # 3 modalities x 2 channels, never zero
    x_out, presence = dropout(x)
    assert presence[:, 0].all() and not presence[:, 1:].any()
    assert torch.equal(x_out[:, :2], x[:, :2]) and not x_out[:, 2:].any()
    dropout.eval()
    x_eval, presence_eval = dropout(x, torch.tensor([True, True, False]))
    assert torch.equal(x_eval[:, :4], x[:, :4]) and not x_eval[:, 4:].any()
    assert presence_eval.shape == (4, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        mask_modalities(torch.randn(2, 5, 4, 4), presence_eval[:2], 3)


def test_modality_dropout_without_required_keeps_one_modality():
    dropout = ModalityDropout(2, drop_prob=1.0)
    _, presence = dropout(torch.randn(64, 2, 4, 4))
    assert (presence.sum(dim=1) == 1).all()


# ---------------------------------------------------------------- MagNET-style fusion and shared encoders


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_attention_weighted_fusion_ignores_absent_modalities(spatial_dims):
    fusion = AttentionWeightedFusion(8, reduction=2).eval()
    features = [_features(spatial_dims, 8) for _ in range(3)]
    presence = torch.tensor([True, False, True])
    fused = fusion(features, presence)
    assert tuple(fused.shape) == (2, 8, *SIZES[spatial_dims])
    assert torch.equal(fused, fusion([features[0], features[1] * 9, features[2]], presence))


class _TinyEncoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = torch.relu(self.conv1(x))
        return [first, torch.relu(self.conv2(first))]


def test_shared_encoder_fusion_handles_any_subset():
    wrapper = SharedEncoderFusion(_TinyEncoder(), channels=(4, 8), in_channels=1, num_modalities=3)
    x = torch.randn(2, 3, 16, 16)
    for subset in presence_subsets(3):
        out = wrapper(x, torch.tensor(subset))
        assert [tuple(f.shape) for f in out.fused] == [(2, 4, 16, 16), (2, 8, 8, 8)]
        assert tuple(out.per_modality[1].shape) == (2, 3, 8, 8, 8)
        absent = [i for i, present in enumerate(subset) if not present]
        assert all(not out.per_modality[0][:, i].any() for i in absent)
    wrapper.eval()
    presence = torch.tensor([True, False, True])
    perturbed = x.clone()
    perturbed[:, 1] = 50.0
    assert torch.equal(wrapper(x, presence).fused[1], wrapper(perturbed, presence).fused[1])


def test_shared_encoder_fusion_trains_one_encoder_for_all_modalities():
    wrapper = SharedEncoderFusion(_TinyEncoder(), channels=(4, 8), in_channels=1, num_modalities=2)
    assert sum(p.numel() for p in wrapper.encoder.parameters()) == (1 * 4 * 9 + 4) + (4 * 8 * 9 + 8)
    out = wrapper(torch.randn(3, 2, 8, 8), torch.tensor([[1, 1], [1, 0], [0, 1]]))
    sum(f.sum() for f in out.fused).backward()
    _assert_all_parameters_have_gradients(wrapper)
    with pytest.raises(ValueError, match="x must have shape"):
        wrapper(torch.randn(1, 3, 8, 8))


# ---------------------------------------------------------------- mutual-learning loss


def test_mutual_learning_loss_adds_intra_terms_of_present_modalities_only():
    base = DiceCrossEntropyLoss()
    loss = MutualLearningLoss(intra_weight=0.5)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    joint, first, second = (torch.randn(2, 1, 8, 8, requires_grad=True) for _ in range(3))
    value = loss(joint, [first, second], target, torch.tensor([[True, True], [True, False]]))
    expected = base(joint, target) + 0.5 * base(first, target) + 0.5 * base(second[:1], target[:1])
    torch.testing.assert_close(value, expected)
    value.backward()
    assert first.grad is not None and second.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="modality_logits"):
        loss(joint, [], target)
