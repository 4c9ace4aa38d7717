"""Training: nnU-Net raw dataset reading, patch sampling and augmentation, a generic trainer with
checkpoints, resume and DistributedDataParallel (torchrun), and Cross Pseudo Supervision.

Task recipes (e.g. :mod:`SlicerMedFuse.hemorrhage.training`) build on these pieces. Importing this
package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Augmentation",
    "CaseArrays",
    "CrossPseudoPair",
    "DatasetCase",
    "DistributedContext",
    "NnUNetDataset",
    "PatchSampler",
    "TrainerConfig",
    "TrainingResult",
    "cross_pseudo_loss",
    "index_foreground",
    "init_distributed",
    "list_image_folder",
    "load_checkpoint",
    "read_nnunet_dataset",
    "save_checkpoint",
    "train",
]

_WHERE = {
    "Augmentation": "augmentation",
    "CaseArrays": "patch_sampler",
    "PatchSampler": "patch_sampler",
    "index_foreground": "patch_sampler",
    "CrossPseudoPair": "cross_pseudo_supervision",
    "cross_pseudo_loss": "cross_pseudo_supervision",
    "DatasetCase": "nnunet_dataset",
    "NnUNetDataset": "nnunet_dataset",
    "list_image_folder": "nnunet_dataset",
    "read_nnunet_dataset": "nnunet_dataset",
    "DistributedContext": "distributed",
    "init_distributed": "distributed",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "TrainerConfig": "trainer",
    "TrainingResult": "trainer",
    "train": "trainer",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"SlicerMedFuse.training.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
