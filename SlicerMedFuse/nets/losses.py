"""Segmentation losses of the fusion papers: Dice + alpha * CE (breast paper, Eq. 1) and mutual learning (MAML)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.losses import DiceCELoss
from torch import nn

from SlicerMedFuse.nets.fusion.missing import normalize_presence

__all__ = ["DiceCrossEntropyLoss", "MutualLearningLoss"]


class DiceCrossEntropyLoss(nn.Module):
    """``L = L_Dice + alpha * L_CE`` with ``L_Dice = 1 - (2 sum p y + eps) / (sum p + sum y + eps)``.

    Sums run over the pixels of one image; the loss is averaged over the batch. With one output
    channel the prediction is ``p = sigmoid(logit)`` and ``L_CE`` is binary cross-entropy (the
    paper's CE term is misprinted; standard BCE is meant). With ``C > 1`` channels the prediction
    is a softmax, ``L_CE`` the categorical cross-entropy and the Dice term covers the foreground
    channels (1..C-1). Built on MONAI's :class:`~monai.losses.DiceCELoss`.

    Reference: Li et al., "Learning Cross-Modal Deep Representations for Multi-Modal MR Image
    Segmentation", MICCAI 2019, Eq. 1 (eps = 1, alpha = 1).

    Args:
        alpha: weight of the cross-entropy term.
        epsilon: smoothing constant in numerator and denominator of the Dice term.
    """

    def __init__(self, alpha: float = 1.0, epsilon: float = 1.0) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        common = dict(smooth_nr=self.epsilon, smooth_dr=self.epsilon, lambda_dice=1.0, lambda_ce=self.alpha)
        self._binary = DiceCELoss(sigmoid=True, **common)
        self._multiclass = DiceCELoss(softmax=True, to_onehot_y=True, include_background=False, **common)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: ``(B, C, *spatial)`` raw network outputs.
            target: ``(B, 1, *spatial)``: 0/1 for ``C == 1``, class indices for ``C > 1``.

        Returns:
            Scalar loss.
        """
        if logits.ndim < 3:
            raise ValueError(f"logits must have shape (B, C, *spatial), got {tuple(logits.shape)}")
        if tuple(target.shape) != (logits.shape[0], 1, *logits.shape[2:]):
            raise ValueError(
                f"target must have shape {(logits.shape[0], 1, *logits.shape[2:])} (labels, not one-hot), "
                f"got {tuple(target.shape)}"
            )
        if logits.shape[1] == 1:
            return self._binary(logits, target.to(logits.dtype))
        return self._multiclass(logits, target.long())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, epsilon={self.epsilon}"


class MutualLearningLoss(nn.Module):
    """``L = lambda * sum_i L_intra(Y | X_i; W_i) + L_joint(Y | X; W)``.

    Each modality-specific branch is supervised by the label on its own (intra term) while the
    joint, attention-fused prediction is supervised too; through the shared fusion each branch
    learns from the others ("each modality-specific model acts as teacher and student"). Intra
    terms are computed only over the samples where that modality is present.

    Reference: Zhang et al., "Modality-Aware Mutual Learning for Multi-modal Medical Image
    Segmentation", MICCAI 2021 (lambda is not stated in the seminar notes; 1.0 by default).

    Args:
        loss: the segmentation loss of every term (default :class:`DiceCrossEntropyLoss`).
        intra_weight: ``lambda``.
    """

    def __init__(self, loss: nn.Module | None = None, intra_weight: float = 1.0) -> None:
        super().__init__()
        if intra_weight < 0:
            raise ValueError(f"intra_weight must be non-negative, got {intra_weight}")
        self.loss = DiceCrossEntropyLoss() if loss is None else loss
        self.intra_weight = float(intra_weight)

    def forward(
        self,
        joint_logits: torch.Tensor,
        modality_logits: Sequence[torch.Tensor],
        target: torch.Tensor,
        presence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            joint_logits: ``(B, C, *spatial)`` of the fused prediction.
            modality_logits: ``N`` tensors ``(B, C, *spatial)``, one per modality-specific branch.
            target: ``(B, 1, *spatial)`` labels.
            presence: boolean ``(B, N)`` or ``(N,)``; default all present.

        Returns:
            Scalar loss.
        """
        if isinstance(modality_logits, torch.Tensor) or len(modality_logits) == 0:
            raise ValueError("modality_logits must be a non-empty sequence of tensors, one per modality")
        for i, logits in enumerate(modality_logits):
            if logits.shape != joint_logits.shape:
                raise ValueError(
                    f"modality_logits[{i}] has shape {tuple(logits.shape)}, expected {tuple(joint_logits.shape)}"
                )
        mask = normalize_presence(presence, joint_logits.shape[0], len(modality_logits), device=joint_logits.device)
        total = self.loss(joint_logits, target)
        for i, logits in enumerate(modality_logits):
            rows = mask[:, i]
            if bool(rows.all()):
                total = total + self.intra_weight * self.loss(logits, target)
            elif bool(rows.any()):
                total = total + self.intra_weight * self.loss(logits[rows], target[rows])
        return total

    def extra_repr(self) -> str:
        return f"intra_weight={self.intra_weight}"
