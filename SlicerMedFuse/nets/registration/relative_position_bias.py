"""Swin's learned relative position bias, shared by the two attention paths of a TM-DCA block.

The official TM-DCA code keeps one table per block for both paths; the paper does not mention it
(it inherits Swin's windowed attention [15]). When a feature map is smaller than the window, Swin
shrinks the window to the map (:func:`monai.networks.nets.swin_unetr.get_window_size`); the bias
of the smaller window is read from the same table (its relative offsets are a subset), so the
parameters do not depend on the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["RelativePositionBias"]


class RelativePositionBias(nn.Module):
    """A ``(2 w_d - 1)(2 w_h - 1)(2 w_w - 1) x heads`` table of biases indexed by relative token offset.

    Args:
        window_size: the nominal window ``(w_d, w_h, w_w)`` in tokens.
        num_heads: attention heads.
    """

    def __init__(self, window_size: Sequence[int], num_heads: int) -> None:
        super().__init__()
        self.window_size = tuple(int(w) for w in window_size)
        count = 1
        for w in self.window_size:
            count *= 2 * w - 1
        self.table = nn.Parameter(torch.zeros(count, num_heads))
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self, window: Sequence[int]) -> torch.Tensor:
        """Bias ``(heads, N, N)`` for a window ``window <= window_size`` of ``N`` tokens."""
        coords = torch.stack(
            torch.meshgrid(*[torch.arange(w, device=self.table.device) for w in window], indexing="ij")
        ).flatten(1)
        relative = coords[:, :, None] - coords[:, None, :]  # (3, N, N), each in [-(w-1), w-1]
        wd, wh, ww = self.window_size
        index = (relative[0] + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (relative[1] + wh - 1) * (2 * ww - 1)
        index = index + relative[2] + ww - 1
        n = coords.shape[1]
        return self.table[index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)
