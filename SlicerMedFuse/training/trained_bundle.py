"""The end of every ``train_<task>`` run: the trained network as a model bundle, plus ``training_log.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from SlicerMedFuse.io import write_json_atomic

__all__ = ["save_trained_bundle"]


def save_trained_bundle(
    network: nn.Module,
    manifest: Mapping[str, Any],
    output: Path,
    *,
    history: Sequence[Mapping[str, Any]],
    seconds: float,
    **log: Any,
) -> Path:
    """Write the bundle into ``output`` and the run's log beside it; returns the bundle folder.

    The log holds the bundle path, the loss history, the wall seconds, the manifest, and whatever
    task-specific entries ``log`` adds (e.g. the cases used).
    """
    from SlicerMedFuse.models.bundle import save_bundle

    bundle = save_bundle(network, manifest, output, overwrite=True)
    entries = {"bundle": str(bundle), **log, "history": list(history), "seconds": round(seconds, 1)}
    write_json_atomic({**entries, "manifest": manifest}, output / "training_log.json")
    return bundle
