"""The architecture allowlist: built-in MONAI networks build, unknown names and bad args are clear errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.nets import build_network, is_registered, known_architectures, register_architecture, registry

SMALL_ARGS: dict[str, dict[str, Any]] = {
    "monai.UNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]},
    "monai.DynUNet": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "kernel_size": [3, 3, 3],
        "strides": [1, 2, 2],
        "upsample_kernel_size": [2, 2],
        "filters": [4, 8, 16],
    },
    "monai.SegResNet": {
        "spatial_dims": 3,
        "init_filters": 4,
        "in_channels": 1,
        "out_channels": 2,
        "blocks_down": [1, 1],
        "blocks_up": [1],
        "num_groups": 2,
        "norm": ["GROUP", {"num_groups": 2}],
    },
    "monai.BasicUNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [4, 4, 8, 8, 16, 4]},
}


def test_builtins_are_the_monai_networks() -> None:
    assert set(SMALL_ARGS) <= set(known_architectures())


@pytest.mark.parametrize("name", sorted(SMALL_ARGS))
def test_each_builtin_builds_and_runs(name: str) -> None:
    network = build_network(name, SMALL_ARGS[name]).eval()
    with torch.no_grad():
        out = network(torch.randn(1, 1, 32, 32, 32))  # BasicUNet halves four times
    assert out.shape == (1, 2, 32, 32, 32)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(
        ModelError, match=r"Unknown network architecture 'os\.system'.*monai\.BasicUNet, monai\.DynUNet"
    ):
        build_network("os.system", {})


def test_bad_args_name_the_architecture() -> None:
    with pytest.raises(ModelError, match="Architecture 'monai.UNet' cannot be built"):
        build_network("monai.UNet", {"spatial_dims": 3, "no_such_arg": 1})


def test_register_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_architecture("tests.Linear", lambda features: torch.nn.Linear(features, 1))
    assert is_registered("tests.Linear")
    assert isinstance(build_network("tests.Linear", {"features": 3}), torch.nn.Linear)
    register_architecture("tests.Lazy", "torch.nn:Identity")
    assert isinstance(build_network("tests.Lazy"), torch.nn.Identity)
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("tests.Linear", "torch.nn:Identity")
    with pytest.raises(ValueError, match="namespace.Network"):
        register_architecture("nodot", "torch.nn:Identity")
    register_architecture("tests.NotANet", lambda: 42)
    with pytest.raises(ModelError, match="did not build a torch.nn.Module"):
        build_network("tests.NotANet")
