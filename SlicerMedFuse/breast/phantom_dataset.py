"""Write phantom studies as an nnU-Net raw dataset (what ``medfuse train breast-mass`` reads).

Layout: ``imagesTr/phantom_NNN_0000.nii.gz`` (T1C), ``_0001`` (T2W), ``_0002`` (PRE),
``labelsTr/phantom_NNN.nii.gz`` (0 background, 1 mass), and the same under ``imagesTs``/``labelsTs``
for the held-out studies. ``dataset.json`` names the channels and says ``"simulated": true``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import SimpleITK as sitk

from SlicerMedFuse.breast.phantom import PhantomConfig, generate_phantom
from SlicerMedFuse.breast.provenance import PHANTOM_DATA_NOTE
from SlicerMedFuse.io import write_image

__all__ = ["write_phantom_dataset"]


_CHANNELS = ("t1c", "t2w", "pre")


def write_phantom_dataset(
    root: str | Path,
    training: int,
    test: int = 0,
    *,
    grid: sitk.Image | None = None,
    config: PhantomConfig | None = None,
    seed: int = 0,
    sequences: Sequence[str] = _CHANNELS,
) -> Path:
    """Generate ``training`` + ``test`` phantom studies into an nnU-Net raw dataset folder.

    Args:
        root: The dataset folder (created; existing case files are overwritten).
        training: Number of training studies (seeds ``seed .. seed + training - 1``).
        test: Number of held-out studies (seeds after the training ones).
        grid: Reference grid of every study (default: :func:`generate_phantom`'s).
        config: Phantom settings.
        seed: First seed.
        sequences: Channels to write, in this order (a subset of ``t1c``, ``t2w``, ``pre``; ``t1c`` first).

    Returns:
        ``root``.
    """
    sequences = tuple(sequences)
    if not sequences or sequences[0] != "t1c" or not set(sequences) <= set(_CHANNELS):
        raise ValueError(f"sequences must start with 't1c' and be among {_CHANNELS}; got {sequences}")
    root = Path(root)
    for split, count, first in (("Tr", training, seed), ("Ts", test, seed + training)):
        if count == 0:
            continue
        (root / f"images{split}").mkdir(parents=True, exist_ok=True)
        (root / f"labels{split}").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            phantom = generate_phantom(first + index, grid, config, sequences=sequences)
            case = f"phantom_{first + index:04d}"
            for channel, name in enumerate(sequences):
                write_image(phantom.images[name], root / f"images{split}" / f"{case}_{channel:04d}.nii.gz")
            write_image(phantom.mass, root / f"labels{split}" / f"{case}.nii.gz")
    metadata = {
        "name": "BreastMassPhantom",
        "description": f"Simulated two-sequence breast MRI with mass masks; {PHANTOM_DATA_NOTE}.",
        "channel_names": {str(i): name.upper() for i, name in enumerate(sequences)},
        "labels": {"background": 0, "mass": 1},
        "numTraining": training,
        "file_ending": ".nii.gz",
        "simulated": True,
    }
    (root / "dataset.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return root
