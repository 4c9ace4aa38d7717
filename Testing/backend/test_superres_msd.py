"""Mixed-Scale Dense network: shapes, parameter count, receptive field, and the hand-written backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from SlicerMedFuse.superres.msd import MSDNet, msd_dilations, msd_parameter_count, msd_receptive_radius


def _reference_forward(net: MSDNet, x: torch.Tensor) -> torch.Tensor:
    """The textbook MS-D: concatenate every map, reflect-pad, conv2d, ReLU; autograd does the rest."""
    maps = [x]
    for weight, bias, dilation in zip(net.weights, net.biases, net.dilations, strict=True):
        stacked = F.pad(torch.cat(maps, dim=1), (dilation,) * 4, mode="reflect")
        maps.append(F.relu(F.conv2d(stacked, weight, bias, dilation=dilation)))
    return F.conv2d(torch.cat(maps, dim=1), net.final_weight[:, :, None, None], net.final_bias)


def _randomised(net: MSDNet) -> MSDNet:
    torch.manual_seed(1)
    with torch.no_grad():
        net.final_weight.normal_()
        net.final_bias.normal_()
        for bias in net.biases:
            bias.normal_(0, 0.1)
    return net


def test_forward_shape_and_authors_configuration():
    net = MSDNet()  # SR4ZCT: width 1, depth 100, dilations 1..10
    assert net.depth == 100 and net.width == 1
    assert net.dilations[:12] == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2)
    assert sum(p.numel() for p in net.parameters()) == msd_parameter_count(1, 1, 100, 1) == 45_652
    with torch.no_grad():
        y = net(torch.randn(2, 1, 33, 41))
    assert y.shape == (2, 1, 33, 41)
    assert torch.all(y == 0)  # final layer starts at zero (msd_pytorch)
    assert msd_receptive_radius(100) == net.receptive_radius == 550


@pytest.mark.parametrize(("c_in", "c_out", "depth", "width"), [(1, 1, 7, 1), (2, 3, 5, 2), (3, 1, 12, 3)])
def test_parameter_count_formula(c_in, c_out, depth, width):
    net = MSDNet(c_in, c_out, depth=depth, width=width)
    assert sum(p.numel() for p in net.parameters()) == msd_parameter_count(c_in, c_out, depth, width)


@pytest.mark.parametrize(("c_in", "c_out", "depth", "width"), [(1, 1, 13, 1), (2, 2, 4, 2)])
def test_matches_reference_forward_and_backward(c_in, c_out, depth, width):
    net = _randomised(MSDNet(c_in, c_out, depth=depth, width=width).double())
    x = torch.randn(2, c_in, 23, 29, dtype=torch.float64, requires_grad=True)
    ours, reference = net(x), _reference_forward(net, x)
    torch.testing.assert_close(ours, reference)
    seed = torch.randn_like(ours)
    params = [x, *net.parameters()]
    for mine, theirs in zip(
        torch.autograd.grad(ours, params, seed), torch.autograd.grad(reference, params, seed), strict=True
    ):
        torch.testing.assert_close(mine, theirs)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference)


def test_gradcheck():
    net = _randomised(MSDNet(1, 1, depth=2, width=2, dilations=(1, 2)).double())
    x = torch.randn(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


def test_receptive_field_is_exactly_the_theoretical_one():
    depth, dilations = 6, (1, 2, 3)
    net = _randomised(MSDNet(1, 1, depth=depth, dilations=dilations).double())
    with torch.no_grad():  # positive weights and biases: every ReLU is active, no gradient is lost
        for weight in net.weights:
            weight.uniform_(0.1, 1.0)
        for bias in net.biases:
            bias.fill_(0.1)
        net.final_weight.uniform_(0.1, 1.0)
    radius = msd_receptive_radius(depth, dilations)
    assert radius == sum(msd_dilations(depth, dilations)) == 12
    size = 2 * radius + 1 + 2 * 8  # room around the field, so reflection does not fold it back
    x = torch.rand(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    centre = size // 2
    (grad,) = torch.autograd.grad(net(x)[0, 0, centre, centre], x)
    nonzero = grad[0, 0].abs() > 0
    rows, cols = torch.nonzero(nonzero, as_tuple=True)
    assert rows.min() == cols.min() == centre - radius
    assert rows.max() == cols.max() == centre + radius
    # the corners of the square are reached too (dilated 3x3 taps add up along both axes)
    assert nonzero[centre - radius, centre - radius] and nonzero[centre + radius, centre + radius]


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        MSDNet(depth=0)
    with pytest.raises(ValueError, match="expected input"):
        MSDNet(depth=2)(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="largest dilation"):
        MSDNet(depth=10)(torch.zeros(1, 1, 8, 30))
