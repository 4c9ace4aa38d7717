"""The breast-mass networks of the paper's Table 1 that ``medfuse train breast-mass --architecture`` offers.

A table of its own (no torch) so that building the command line does not import the trainer.
"""

from __future__ import annotations

__all__ = ["ARCHITECTURES"]

#: ``--architecture`` -> (allowlisted name, paper widths, single modality?).
ARCHITECTURES: dict[str, tuple[str, tuple[int, ...], bool]] = {
    "unet": ("medfuse.BreastUNet2d", (64, 128, 256, 512, 1024), True),
    "earlyfuse": ("medfuse.BreastEarlyFuseUNet2d", (64, 128, 256, 512, 1024), False),
    "latefuse": ("medfuse.BreastLateFuseUNet2d", (32, 64, 128, 256, 512), False),
    "fuseunet": ("medfuse.BreastFuseUNet2d", (32, 64, 128, 256, 512), False),
    "fuseunet-sa": ("medfuse.BreastFuseUNetSA2d", (32, 64, 128, 256, 512), False),
    "proposed": ("medfuse.BreastMasterAssistantUNet2d", (32, 64, 128, 256, 512), False),
}
