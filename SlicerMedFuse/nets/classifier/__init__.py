"""Multi-input classifiers: the Transfer Module paper's network (ALN metastasis from breast MRI).

Importing this package does not import torch; the classes load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BACKBONES", "TransferModuleClassifier", "basicnet_path", "resnet_path"]

_MODULE = "SlicerMedFuse.nets.classifier.transfer_classifier"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(_MODULE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
