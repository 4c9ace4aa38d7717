"""Reading a dataset in the nnU-Net raw layout (v2, and v1 as BHSD distributes it).

Layout (nnU-Net v2 ``dataset_format.md``)::

    dataset.json   {"channel_names": {"0": "CT"}, "labels": {"background": 0, ...},
                    "numTraining": 96, "file_ending": ".nii.gz"}
    imagesTr/CASE_0000.nii.gz [CASE_0001 ...]   one file per channel
    labelsTr/CASE.nii.gz
    imagesTs/, labelsTs/                           optional test split

nnU-Net v1 files (BHSD's official ``dataset.json``) say ``"modality": {"0": "CT"}`` and list labels
as ``{"0": "background", ...}``; both forms are read. Cases are found in the folders (their
``_0000`` channel suffix is required by both versions), so v1's ``"training"``/``"test"`` file lists
are not needed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from SlicerMedFuse.errors import InputError

__all__ = ["DatasetCase", "NnUNetDataset", "list_image_folder", "read_nnunet_dataset"]

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclasses.dataclass(frozen=True)
class DatasetCase:
    """One case: its id, one image file per channel (channel order) and its label file, if any."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None


@dataclasses.dataclass(frozen=True)
class NnUNetDataset:
    """A dataset folder as read by :func:`read_nnunet_dataset`.

    Attributes:
        root: The dataset folder.
        name: ``name`` from dataset.json (or the folder name).
        channel_names: Channel index -> modality name, e.g. ``{0: "CT"}``.
        labels: Label name -> value, background included.
        file_ending: Image file ending, e.g. ``".nii.gz"``.
        training: Labelled training cases (``imagesTr`` + ``labelsTr``).
        test: Test cases (``imagesTs``; with labels when ``labelsTs`` has them).
        metadata: The whole dataset.json.
    """

    root: Path
    name: str
    channel_names: dict[int, str]
    labels: dict[str, int]
    file_ending: str
    training: tuple[DatasetCase, ...]
    test: tuple[DatasetCase, ...]
    metadata: Mapping[str, Any] = dataclasses.field(repr=False, default_factory=dict)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def simulated(self) -> bool:
        """Whether dataset.json declares the data simulated (``"simulated": true``)."""
        return bool(self.metadata.get("simulated", False))


def _strip_ending(name: str, file_ending: str) -> str:
    return name[: -len(file_ending)] if name.endswith(file_ending) else name


def list_image_folder(folder: Path, file_ending: str = ".nii.gz", channels: int = 1) -> list[DatasetCase]:
    """Cases of an image folder in nnU-Net naming (``CASE_0000<ending>``); other files count as one-channel cases.

    Raises:
        InputError: The folder is missing or holds no images, or a case misses a channel.
    """
    if not folder.is_dir():
        raise InputError(f"The image folder {folder} does not exist.")
    grouped: dict[str, dict[int, Path]] = {}
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(file_ending) or path.name.startswith("."):
            continue
        stem = _strip_ending(path.name, file_ending)
        match = _CHANNEL.match(stem)
        case, channel = (match["case"], int(match["channel"])) if match else (stem, 0)
        grouped.setdefault(case, {})[channel] = path
    if not grouped:
        raise InputError(f"The folder {folder} holds no {file_ending} images.")
    cases = []
    for case, files in grouped.items():
        if sorted(files) != list(range(channels)):
            raise InputError(
                f"Case '{case}' in {folder} has channel files {sorted(files)}, expected 0..{channels - 1} "
                f"(named {case}_0000{file_ending}, ...)."
            )
        cases.append(DatasetCase(case, tuple(files[c] for c in range(channels))))
    return cases


def _with_labels(cases: list[DatasetCase], folder: Path, file_ending: str, required: bool) -> list[DatasetCase]:
    labelled = []
    for case in cases:
        label = folder / f"{case.case_id}{file_ending}"
        if not label.is_file():
            if required:
                raise InputError(
                    f"Training case '{case.case_id}' has no label file {label}; add it or remove the case."
                )
            return []
        labelled.append(dataclasses.replace(case, label=label))
    return labelled


def _labels(data: Mapping[str, Any], path: Path) -> dict[str, int]:
    raw = data.get("labels")
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(f"{path} has no 'labels' mapping; it is not an nnU-Net dataset.json.")
    try:
        if all(str(k).lstrip("-").isdigit() for k in raw):  # v1: {"0": "background"}
            return {str(name): int(value) for value, name in raw.items()}
        return {str(name): int(value) for name, value in raw.items()}  # v2: {"background": 0}
    except (TypeError, ValueError):
        raise InputError(
            f"{path} has 'labels' that are not name/integer pairs (region-based labels are not supported)."
        ) from None


def read_nnunet_dataset(root: str | Path) -> NnUNetDataset:
    """Read ``dataset.json`` and list the cases of an nnU-Net raw dataset folder.

    Args:
        root: The dataset folder (holding ``dataset.json``, ``imagesTr``, ``labelsTr``).

    Returns:
        The :class:`NnUNetDataset`.

    Raises:
        InputError: No dataset.json, malformed fields, missing label files, or no training case
            (one sentence naming the fix).
    """
    root = Path(root)
    path = root / "dataset.json"
    if not path.is_file():
        raise InputError(
            f"{root} has no dataset.json; give an nnU-Net raw dataset folder (dataset.json, imagesTr, labelsTr)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} cannot be read as JSON ({error}).") from None
    channels = data.get("channel_names", data.get("modality"))
    if not isinstance(channels, Mapping) or not channels:
        raise InputError(f"{path} has neither 'channel_names' nor 'modality'; it is not an nnU-Net dataset.json.")
    channel_names = {int(k): str(v) for k, v in channels.items()}
    file_ending = str(data.get("file_ending", ".nii.gz"))
    labels = _labels(data, path)
    training = _with_labels(
        list_image_folder(root / "imagesTr", file_ending, len(channel_names)), root / "labelsTr", file_ending, True
    )
    test: list[DatasetCase] = []
    if (root / "imagesTs").is_dir() and any((root / "imagesTs").iterdir()):
        test = list_image_folder(root / "imagesTs", file_ending, len(channel_names))
        test = _with_labels(test, root / "labelsTs", file_ending, False) or test
    declared = data.get("numTraining")
    if isinstance(declared, int) and declared != len(training):
        raise InputError(
            f"{path} says numTraining {declared} but imagesTr/labelsTr hold {len(training)} cases; "
            "fix numTraining or add the missing files."
        )
    return NnUNetDataset(
        root=root,
        name=str(data.get("name", root.name)),
        channel_names=channel_names,
        labels=labels,
        file_ending=file_ending,
        training=tuple(training),
        test=tuple(test),
        metadata=data,
    )
