"""Cross Pseudo Supervision (Chen et al., CVPR 2021): two networks teach each other on unlabelled data.

Both networks see the same batch; each one's hard pseudo-label (argmax, no gradient) supervises
the other with cross-entropy: ``L = L_sup(a) + L_sup(b) + lambda * (CE(p_b, argmax p_a) + CE(p_a, argmax p_b))``.
BHSD (Table 4) found CPS the best of four semi-supervised methods with nnU-Net on 96 labelled +
500 unlabelled scans. The two networks are one module so that a single forward pass goes through
DistributedDataParallel; after training, network ``a`` is the model that is kept.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossPseudoPair", "cross_pseudo_loss"]


class CrossPseudoPair(nn.Module):
    """Two differently initialised networks of the same architecture, run on the same batch.

    Args:
        net_a: The network that is kept after training.
        net_b: Its peer (same architecture, other initialisation).
    """

    def __init__(self, net_a: nn.Module, net_b: nn.Module) -> None:
        super().__init__()
        self.net_a = net_a
        self.net_b = net_b

    def forward(self, x: torch.Tensor, **kwargs: Any) -> tuple[Any, Any]:
        """Both networks' outputs for ``x`` (keyword arguments are passed to both)."""
        return self.net_a(x, **kwargs), self.net_b(x, **kwargs)


def cross_pseudo_loss(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """``CE(logits_b, argmax logits_a) + CE(logits_a, argmax logits_b)``, logits ``(B, C, *spatial)``."""
    pseudo_a = logits_a.detach().argmax(dim=1)
    pseudo_b = logits_b.detach().argmax(dim=1)
    return F.cross_entropy(logits_b, pseudo_a) + F.cross_entropy(logits_a, pseudo_b)
