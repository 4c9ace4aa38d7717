"""Learn2Reg-style registration datasets: reading ``dataset.json``, forming pairs, loading volumes.

Layout (Learn2Reg 2021-2023, e.g. OASIS)::

    dataset.json  {"name": "OASIS", "modality": {"0": "MR"},
                   "training": [{"image": "./imagesTr/OASIS_0001_0000.nii.gz",
                                 "label": "./labelsTr/OASIS_0001_0000.nii.gz"}, ...],
                   "training_paired_images": [{"fixed": "...", "moving": "..."}, ...],
                   "registration_val": [{"fixed": "...", "moving": "..."}, ...]}
    imagesTr/*.nii.gz
    labelsTr/*.nii.gz   optional, same file names as the images

Pairs: ``training_paired_images`` when it lists any (paired tasks), otherwise every ordered pair
of distinct training images (all-to-all, OASIS), leaving out the images of ``registration_val``,
which become the validation pairs. Without ``"training"`` every image of ``imagesTr`` is used.
Learn2Reg images of one task share a grid and are affinely pre-aligned; each volume is mapped
to the network grid by its own index extent (no resampling in physical space), normalised to
0..1 by its 0.5-99.5 % percentiles (the pipeline's normalisation).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["RegistrationDataset", "RegistrationVolumes", "load_volumes", "read_registration_dataset"]

_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


@dataclasses.dataclass(frozen=True)
class RegistrationDataset:
    """A Learn2Reg-style dataset folder as read by :func:`read_registration_dataset`.

    Attributes:
        root: the folder.
        name: ``name`` from dataset.json (or the folder name).
        modality: the image modality (``modality["0"]``, default ``"MR"``).
        images: the images used for training and validation, sorted.
        labels: image -> label map, for the images that have one.
        pairs: training pairs ``(fixed index, moving index)`` into ``images``.
        validation_pairs: validation pairs, same form.
        paired: True when the pairs come from ``training_paired_images``.
        simulated: dataset.json declares the data simulated.
    """

    root: Path
    name: str
    modality: str
    images: tuple[Path, ...]
    labels: Mapping[Path, Path]
    pairs: tuple[tuple[int, int], ...]
    validation_pairs: tuple[tuple[int, int], ...]
    paired: bool
    simulated: bool

    @property
    def labelled(self) -> bool:
        """Every image has a label map (needed for the Dice term)."""
        return all(image in self.labels for image in self.images)


def _resolve(root: Path, entry: Any, field: str) -> Path:
    if not isinstance(entry, str) or not entry:
        raise InputError(f"{root / 'dataset.json'} has a '{field}' entry that is not a file path: {entry!r}.")
    path = (root / entry).resolve()
    if not path.is_file():
        raise InputError(f"{root / 'dataset.json'} lists '{entry}' under '{field}', but {path} does not exist.")
    return path


def _pair_list(root: Path, data: Mapping[str, Any], key: str) -> list[tuple[Path, Path]]:
    pairs = []
    for item in data.get(key) or []:
        if not isinstance(item, Mapping) or "fixed" not in item or "moving" not in item:
            raise InputError(f"{root / 'dataset.json'}: every '{key}' item needs 'fixed' and 'moving' paths.")
        pairs.append((_resolve(root, item["fixed"], key), _resolve(root, item["moving"], key)))
    return pairs


def read_registration_dataset(root: str | Path) -> RegistrationDataset:
    """Read a Learn2Reg-style dataset folder.

    Raises:
        InputError: no dataset.json or it is not JSON, a listed file is missing, or fewer than
            one training pair remains.
    """
    root = Path(root).resolve()
    path = root / "dataset.json"
    if not path.is_file():
        raise InputError(
            f"{root} has no dataset.json; give a Learn2Reg-style folder (dataset.json, imagesTr/, optional labelsTr/)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} cannot be read as JSON ({error}); fix the file.") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path} must hold a JSON object.")
    labels: dict[Path, Path] = {}
    images: set[Path] = set()
    training = data.get("training") or []
    for item in training:
        if not isinstance(item, Mapping) or "image" not in item:
            raise InputError(f"{path}: every 'training' item needs an 'image' path.")
        image = _resolve(root, item["image"], "training")
        images.add(image)
        if item.get("label"):
            labels[image] = _resolve(root, item["label"], "training")
    if not training:
        folder = root / "imagesTr"
        images = {p.resolve() for p in folder.glob("*") if p.name.endswith(_ENDINGS)} if folder.is_dir() else set()
    for image in images - set(labels):
        candidate = root / "labelsTr" / image.name
        if candidate.is_file():
            labels[image] = candidate.resolve()
    paired_files = _pair_list(root, data, "training_paired_images")
    validation_files = _pair_list(root, data, "registration_val")
    for fixed, moving in paired_files + validation_files:
        images.update((fixed, moving))
    ordered = tuple(sorted(images))
    index = {image: i for i, image in enumerate(ordered)}
    validation = tuple((index[f], index[m]) for f, m in validation_files)
    if paired_files:
        pairs = tuple((index[f], index[m]) for f, m in paired_files)
    else:
        held_out = {i for pair in validation for i in pair}
        pool = [i for i in range(len(ordered)) if i not in held_out]
        pairs = tuple(itertools.permutations(pool, 2))
    if not pairs:
        raise InputError(
            f"{root} gives no training pair: list at least two training images (or 'training_paired_images') "
            "besides the validation images."
        )
    modality = data.get("modality") or {}
    return RegistrationDataset(
        root=root,
        name=str(data.get("name") or root.name),
        modality=str(modality.get("0", "MR")) if isinstance(modality, Mapping) else "MR",
        images=ordered,
        labels=labels,
        pairs=pairs,
        validation_pairs=validation,
        paired=bool(paired_files),
        simulated=bool(data.get("simulated", False)),
    )


@dataclasses.dataclass(frozen=True)
class RegistrationVolumes:
    """All volumes of a dataset on the network grid, in memory.

    Attributes:
        images: ``(N, 1, D, H, W)`` float32, 0..1.
        labels: ``(N, 1, D, H, W)`` int64 label indices ``0..K-1`` (0 background), or None.
        label_values: the original label value of each index ``1..K-1``.
        orientation: the images' orientation code (e.g. ``"LIA"``), which the network learns in.
    """

    images: np.ndarray
    labels: np.ndarray | None
    label_values: tuple[int, ...]
    orientation: str


def _resize(array: np.ndarray, shape: Sequence[int], nearest: bool) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if tuple(tensor.shape[2:]) != tuple(shape):
        mode = "nearest-exact" if nearest else "area"
        if not nearest and any(n < s for n, s in zip(tensor.shape[2:], shape, strict=True)):
            mode = "trilinear"
        kwargs = {"align_corners": False} if mode == "trilinear" else {}
        tensor = F.interpolate(tensor, size=tuple(shape), mode=mode, **kwargs)
    return tensor[0, 0].numpy()


def load_volumes(dataset: RegistrationDataset, shape: Sequence[int], *, with_labels: bool) -> RegistrationVolumes:
    """Read, normalise and resize every image (and label map) of ``dataset`` to ``shape = (D, H, W)``.

    Raises:
        InputError: an image is not a 3D scalar image, or the images disagree in orientation.
    """
    from SlicerMedFuse.registration.pipeline import normalize_intensity

    images, label_arrays, orientations = [], [], set()
    for path in dataset.images:
        image = sitk.ReadImage(str(path))
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(f"{path} is not a 3D scalar image; registration training needs 3D volumes.")
        orientations.add(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()))
        images.append(_resize(sitk.GetArrayFromImage(normalize_intensity(image)), shape, nearest=False))
        if with_labels:
            label_arrays.append(_resize(sitk.GetArrayFromImage(sitk.ReadImage(str(dataset.labels[path]))), shape, True))
    if len(orientations) > 1:
        raise InputError(
            f"The images of {dataset.root} have different orientations ({', '.join(sorted(orientations))}); "
            "reorient them to one (Learn2Reg data share one grid)."
        )
    labels, values = None, ()
    if with_labels:
        stacked = np.stack(label_arrays).astype(np.int64)
        keys = np.union1d(np.unique(stacked), [0])  # sorted label values, background included
        values = tuple(int(v) for v in keys if v != 0)
        remap = np.zeros(len(keys), dtype=np.int64)
        remap[keys != 0] = np.arange(1, len(keys))
        labels = remap[np.searchsorted(keys, stacked)][:, None]
    return RegistrationVolumes(
        images=np.stack(images)[:, None].astype(np.float32),
        labels=labels,
        label_values=values,
        orientation=orientations.pop(),
    )
