"""The allowlist of network architectures a model bundle may name (DESIGN rule 3).

A bundle's manifest says ``"architecture": {"name": "monai.UNet", "args": {...}}``. The name is
looked up here and nowhere else: a manifest can never make the backend import an arbitrary
module. Built-in entries are MONAI networks; the project's paper networks add themselves with
:func:`register_architecture`.

A constructor is either a callable or a ``"package.module:Attribute"`` reference that is imported
only when a network is built, so listing architectures or validating a manifest does not import
torch. References are written in code by developers, never read from a bundle.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["Constructor", "build_network", "is_registered", "known_architectures", "register_architecture"]

#: A callable taking the manifest's ``args`` as keyword arguments and returning a ``torch.nn.Module``,
#: or a lazy ``"module:attribute"`` reference to one.
Constructor = Callable[..., "torch.nn.Module"] | str

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

_REGISTRY: dict[str, Constructor] = {
    "monai.UNet": "monai.networks.nets:UNet",
    "monai.DynUNet": "monai.networks.nets:DynUNet",
    "monai.SegResNet": "monai.networks.nets:SegResNet",
    "monai.BasicUNet": "monai.networks.nets:BasicUNet",
}


def register_architecture(name: str, constructor: Constructor, *, replace: bool = False) -> None:
    """Add an architecture that bundles may name.

    Args:
        name: dotted name used in manifests, ``namespace.Network`` (e.g. ``"medfuse.FusionUNet"``).
        constructor: a callable returning a ``torch.nn.Module`` when called with the manifest's
            ``args`` as keyword arguments, or a ``"package.module:Attribute"`` reference to one.
        replace: allow replacing an existing entry with a different constructor.

    Raises:
        ValueError: the name or reference is malformed, or the name is taken and ``replace`` is false.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"architecture name must look like 'namespace.Network', got {name!r}")
    if isinstance(constructor, str):
        if not _REFERENCE.match(constructor):
            raise ValueError(f"constructor reference must look like 'package.module:Attribute', got {constructor!r}")
    elif not callable(constructor):
        raise ValueError(f"constructor for {name!r} must be callable or a 'module:Attribute' string")
    existing = _REGISTRY.get(name)
    if existing is not None and existing != constructor and not replace:
        raise ValueError(f"architecture {name!r} is already registered; pass replace=True to replace it")
    _REGISTRY[name] = constructor


def known_architectures() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_REGISTRY)


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered architecture (imports nothing)."""
    return name in _REGISTRY


def _resolve(name: str, constructor: Constructor) -> Callable[..., Any]:
    if not isinstance(constructor, str):
        return constructor
    module_name, _, attribute = constructor.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelError(
            f"Architecture '{name}' is registered but {constructor} cannot be imported ({exc}); "
            "reinstall SlicerMedFuse and its requirements."
        ) from exc


def build_network(name: str, args: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """Construct a registered network with freshly initialised weights.

    Args:
        name: a registered architecture name (see :func:`known_architectures`).
        args: keyword arguments for the constructor, as written in the manifest (JSON values:
            lists stand for tuples).

    Returns:
        The network, on the current default device, in training mode.

    Raises:
        ModelError: the name is unknown (the message lists the known names), or the constructor
            rejects the arguments (the message names the architecture).
    """
    import torch

    constructor = _REGISTRY.get(name)
    if constructor is None:
        raise ModelError(
            f"Unknown network architecture '{name}'; known architectures are {', '.join(known_architectures())}. "
            "The bundle needs a newer SlicerMedFuse or a plugin that registers it."
        )
    args = dict(args or {})
    if not all(isinstance(key, str) for key in args):
        raise ModelError(f"The arguments of architecture '{name}' must be a mapping from names to values.")
    factory = _resolve(name, constructor)
    try:
        network = factory(**args)
    except ModelError:
        raise
    except Exception as exc:  # a constructor may raise anything on bad arguments
        raise ModelError(f"Architecture '{name}' cannot be built with arguments {args}: {exc}") from exc
    if not isinstance(network, torch.nn.Module):
        raise ModelError(f"Architecture '{name}' did not build a torch.nn.Module (got {type(network).__name__}).")
    return network


def _register_project_architectures() -> None:
    """The networks this project implements from its papers (lazy references: no torch import here)."""
    from SlicerMedFuse.nets.breast import register_fusion_architectures
    from SlicerMedFuse.nets.hemorrhage import register_hemorrhage_architectures
    from SlicerMedFuse.nets.registration import register_registration_architectures

    register_fusion_architectures()
    register_hemorrhage_architectures()
    register_registration_architectures()


_register_project_architectures()
