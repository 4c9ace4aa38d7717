"""Training checkpoints in safetensors + JSON: model weights, optimizer state and trainer state, no pickle.

A checkpoint is a folder::

    model.safetensors       the model's state dict
    optimizer.safetensors   every tensor of the optimizer state, keyed ``"<param index>.<name>"``
    state.json              epoch, optimizer param groups and non-tensor state, history, config

It is written into a temporary sibling folder and renamed into place, so a crash while saving
leaves the previous checkpoint intact. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.io.atomic import replace_folder

__all__ = ["load_checkpoint", "optimizer_state_from_flat", "optimizer_state_to_flat", "save_checkpoint"]

_MODEL, _OPTIMIZER, _STATE = "model.safetensors", "optimizer.safetensors", "state.json"


def optimizer_state_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON-ready values.

    Returns:
        ``(tensors, meta)``: tensors keyed ``"<param index>.<name>"``; meta holds ``param_groups``
        and the non-tensor per-parameter values.
    """
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return _own_tensors(tensors), {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_state_from_flat(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_state_to_flat`: a state dict for ``optimizer.load_state_dict``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": [dict(group) for group in meta["param_groups"]]}


def _own_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU copies that safetensors accepts (contiguous, no shared storage between keys)."""
    return {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def save_checkpoint(
    folder: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: Mapping[str, Any],
) -> Path:
    """Write a checkpoint folder atomically (replacing an existing one).

    Args:
        folder: The checkpoint folder, e.g. ``<output>/checkpoints/latest``.
        model: The model (a DistributedDataParallel wrapper is unwrapped).
        optimizer: Its optimizer.
        state: JSON-ready trainer state (epoch, history, config, ...).

    Returns:
        The folder.
    """
    from safetensors.torch import save_file

    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        save_file(_own_tensors(_unwrap(model).state_dict()), temp / _MODEL)
        tensors, meta = optimizer_state_to_flat(optimizer)
        save_file(tensors, temp / _OPTIMIZER)
        (temp / _STATE).write_text(json.dumps({**state, "optimizer": meta}, indent=1), encoding="utf-8")
        replace_folder(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def load_checkpoint(
    folder: str | os.PathLike[str], model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Returns:
        The trainer state from ``state.json`` (without the optimizer part).

    Raises:
        InputError: The folder is not a complete checkpoint or does not fit the model.
    """
    from safetensors.torch import load_file

    path = Path(folder)
    if not all((path / name).is_file() for name in (_MODEL, _OPTIMIZER, _STATE)):
        raise InputError(
            f"{path} is not a complete training checkpoint; start without --resume or pick another folder."
        )
    try:
        state = json.loads((path / _STATE).read_text(encoding="utf-8"))
        device = next(_unwrap(model).parameters()).device
        _unwrap(model).load_state_dict(load_file(path / _MODEL, device=str(device)), strict=True)
        if optimizer is not None:
            tensors = load_file(path / _OPTIMIZER, device=str(device))
            optimizer.load_state_dict(optimizer_state_from_flat(tensors, state["optimizer"]))
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise InputError(
            f"The checkpoint {path} does not fit this training run ({type(error).__name__}: {str(error)[:200]}); "
            "use the same settings as the run that wrote it, or start without --resume."
        ) from None
    state.pop("optimizer", None)
    return state
