"""Training slices for breast-mass networks from an nnU-Net raw dataset with named channels.

``dataset.json``'s ``channel_names`` say which file holds which sequence (``{"0": "T1C", "1": "T2W",
"2": "PRE"}``; common aliases are accepted, see :data:`CHANNEL_ALIASES`). Every case is read once,
the other sequences are resampled onto the T1C grid (the dataset must already be registered),
normalised and stacked exactly as at inference (:func:`~SlicerMedFuse.breast.model_input.stack_channels`),
and each axial slice is resized to the network's in-plane size (the paper: 256 x 256).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.model_input import BreastPreprocessing, resize_slices, stack_channels
from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import same_grid
from SlicerMedFuse.geometry.resample import resample_to_reference
from SlicerMedFuse.io import read_image
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.nnunet_dataset import DatasetCase

__all__ = ["CHANNEL_ALIASES", "SliceSet", "channel_roles", "load_slices"]

#: Lower-case channel name in dataset.json -> task role.
CHANNEL_ALIASES: Mapping[str, str] = {
    "t1c": "t1c",
    "t1ce": "t1c",
    "t1gd": "t1c",
    "post": "t1c",
    "dce": "t1c",
    "t2w": "t2w",
    "t2": "t2w",
    "pre": "pre",
    "t1": "pre",
    "precontrast": "pre",
}


def channel_roles(channel_names: Mapping[int, str]) -> dict[str, int]:
    """Role -> channel index from dataset.json's channel names (InputError when T1C is absent or a name is unknown)."""
    roles: dict[str, int] = {}
    for index, name in sorted(channel_names.items()):
        role = CHANNEL_ALIASES.get(name.strip().lower().replace("-", "").replace("_", ""))
        if role is None:
            raise InputError(
                f"dataset.json channel {index} is named '{name}'; name the channels T1C, T2W and PRE "
                "(the breast-mass roles)."
            )
        if role in roles:
            raise InputError(f"dataset.json names two channels as {role.upper()}; each sequence may appear once.")
        roles[role] = index
    if "t1c" not in roles:
        raise InputError("dataset.json has no T1C channel; the breast-mass task needs the post-contrast T1 (master).")
    return roles


@dataclasses.dataclass
class SliceSet:
    """All training slices in memory.

    Attributes:
        images: float32 ``(N, C, S, S)`` network input.
        labels: uint8 ``(N, 1, S, S)`` mass masks.
        presence: bool ``(N, C)``: which channels each slice's case has.
        case_index: int ``(N,)``: the case each slice comes from.
    """

    images: np.ndarray
    labels: np.ndarray
    presence: np.ndarray
    case_index: np.ndarray

    @property
    def foreground(self) -> np.ndarray:
        """Bool ``(N,)``: slices holding a mass."""
        return self.labels.reshape(len(self.labels), -1).any(axis=1)


def _read_case(case: DatasetCase, roles: Mapping[str, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    reference = read_image(case.images[roles["t1c"]])
    arrays = {"t1c": sitk.GetArrayFromImage(reference).astype(np.float32)}
    for role, index in roles.items():
        if role == "t1c":
            continue
        image = read_image(case.images[index])
        if not same_grid(image, reference):
            image = resample_to_reference(image, reference, interpolation="linear", default_value=0.0)
        arrays[role] = sitk.GetArrayFromImage(image).astype(np.float32)
    if case.label is None:
        raise InputError(f"Training case '{case.case_id}' has no label file.")
    label = read_image(case.label)
    if not same_grid(label, reference):
        label = resample_to_reference(label, reference, interpolation="nearest", default_value=0)
    return arrays, sitk.GetArrayFromImage(label) > 0


def load_slices(
    cases: Sequence[DatasetCase],
    roles: Mapping[str, int],
    preprocessing: BreastPreprocessing,
    progress: Progress | None = None,
) -> SliceSet:
    """Read, align, normalise and resize every axial slice of ``cases`` (2D preprocessing only)."""
    import torch

    progress = progress or Progress()
    size = (preprocessing.in_plane_size, preprocessing.in_plane_size)
    images, labels, presence, owners = [], [], [], []
    for number, case in enumerate(cases):
        progress.update(number / max(len(cases), 1), "reading training cases", case.case_id)
        arrays, mask = _read_case(case, roles)
        stacked, present = stack_channels(arrays, preprocessing)
        with torch.no_grad():
            x = resize_slices(torch.from_numpy(stacked).permute(1, 0, 2, 3), size)
            y = resize_slices(torch.from_numpy(mask[:, None].astype(np.float32)), size) >= 0.5
        images.append(x.numpy())
        labels.append(y.numpy().astype(np.uint8))
        presence.append(np.broadcast_to(present, (len(mask), len(present))))
        owners.append(np.full(len(mask), number))
    return SliceSet(
        images=np.concatenate(images),
        labels=np.concatenate(labels),
        presence=np.concatenate(presence),
        case_index=np.concatenate(owners),
    )
