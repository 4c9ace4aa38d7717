"""What a task implements: a spec and a ``run`` from SimpleITK images to SimpleITK images.

I/O, validation, geometry checks, atomic writing and reporting live in
:func:`SlicerMedFuse.api.run_task`, so a task only does its own pipeline
(pre-processing -> model -> post-processing) on images that are already loaded and checked.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from SlicerMedFuse.progress import Progress

if TYPE_CHECKING:
    import SimpleITK as sitk

    from SlicerMedFuse.contract import TaskSpec
    from SlicerMedFuse.device import DeviceConfig

__all__ = ["Task", "TaskContext", "TaskResult"]


@dataclasses.dataclass
class TaskContext:
    """Everything a running task may use besides its inputs and parameters.

    Attributes:
        device: the resolved compute device (see :func:`SlicerMedFuse.device.resolve_device`).
        progress: where to report progress; ``span`` it for sub-stages.
        work_dir: a private scratch folder, removed after the job unless debugging.
        model: path of a model bundle folder chosen by the user, or None for the task's default.
    """

    device: DeviceConfig
    progress: Progress
    work_dir: Path
    model: Path | None = None


@dataclasses.dataclass
class TaskResult:
    """What a task made: images by output role, a JSON-ready report and any further files.

    Attributes:
        outputs: images by output role; the caller writes those it was asked for.
        report: the task's part of the job report.
        files: final path -> the finished file the task wrote under ``context.work_dir`` (e.g. the
            registration's ``transform_file``). A task never writes a user's path itself: the caller
            moves these into place in the same all-or-nothing commit as the images, so a cancelled or
            failed job leaves none of them.
    """

    outputs: dict[str, sitk.Image]
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    files: dict[Path, Path] = dataclasses.field(default_factory=dict)


class Task(abc.ABC):
    """Base class of every task (built in or contributed through the ``SlicerMedFuse.tasks`` entry point)."""

    spec: ClassVar[TaskSpec]

    def check_outputs(self, output_roles: Iterable[str], input_roles: Iterable[str]) -> None:  # noqa: B027
        """Raise UsageError for an output these inputs cannot give (checked before anything is read). Default: none."""

    def prepare_inputs(self, images: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> dict[str, sitk.Image]:
        """Reduce inputs as read to the 3D volumes the task works on, before the generic checks.

        Called with the images exactly as read (e.g. a 4D multi-phase series), so a task can pick
        a phase or echo by its parameters (raise InputError when a needed choice is missing).
        Default: the images unchanged.
        """
        return dict(images)

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:  # noqa: B027
        """Task-specific checks beyond the generic ones (raise InputError). Default: none."""

    def summary(self, report: Mapping[str, Any]) -> Any:
        """The JSON-ready part of the report ``medfuse run`` prints on stdout (tasks whose result is not an image).

        Default: None (nothing printed besides the written outputs).
        """
        return None

    @abc.abstractmethod
    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        """Run the pipeline.

        Args:
            inputs: images by input role, already read, 3D, finite and non-empty.
            params: every declared parameter, defaults filled in and validated.
            context: device, progress and scratch space.

        Returns:
            The outputs by role, each on the grid its :class:`OutputSpec` names.
        """
