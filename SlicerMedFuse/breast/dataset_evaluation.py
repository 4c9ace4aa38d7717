"""Segment a dataset's held-out split with a bundle and score it (Dice, sensitivity, area difference, HD95).

Used after ``medfuse train breast-mass`` and by the benchmark. Each ``imagesTs`` case goes through
the same study preparation and inference as the task (:func:`~SlicerMedFuse.breast.study.prepare_study`,
:func:`~SlicerMedFuse.breast.inference.segment_breast_mass`); ``drop`` removes sequences to
measure how the model degrades without them (e.g. ``("t2w",)``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from SlicerMedFuse.breast.evaluation import EvaluationResult, score_case
from SlicerMedFuse.breast.training_data import channel_roles
from SlicerMedFuse.io import read_image
from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset

if TYPE_CHECKING:
    from SlicerMedFuse.contract import TaskSpec
    from SlicerMedFuse.device import DeviceConfig

__all__ = ["evaluate_bundle_on_dataset"]


def evaluate_bundle_on_dataset(
    bundle: str | os.PathLike[str],
    data: str | Path,
    *,
    task_spec: TaskSpec,
    device: DeviceConfig,
    drop: Sequence[str] = (),
) -> EvaluationResult | None:
    """Scores of ``bundle`` on the labelled test cases of an nnU-Net dataset (None when it has none).

    Args:
        bundle: Bundle folder or installed id.
        data: nnU-Net raw dataset folder (``imagesTs`` + ``labelsTs``, channel names T1C/T2W/PRE).
        task_spec: The ``breast-mass`` task's declaration, which the bundle must fit.
        device: Compute device.
        drop: Roles to leave out of every study (``"t2w"``, ``"pre"``).
    """
    from SlicerMedFuse.breast.inference import segment_breast_mass
    from SlicerMedFuse.breast.study import prepare_study

    dataset = read_nnunet_dataset(data)
    cases = [case for case in dataset.test if case.label is not None]
    if not cases:
        return None
    roles = channel_roles(dataset.channel_names)
    scores = []
    for case in cases:
        images = {role: read_image(case.images[index]) for role, index in roles.items() if role not in drop}
        study = prepare_study(images, check_alignment=False)
        result = segment_breast_mass(study, bundle, task_spec=task_spec, device=device)
        scores.append(score_case(result.mask, read_image(case.label), case.case_id))
    return EvaluationResult(scores)
