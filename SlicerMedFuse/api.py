"""The public Python API: run a task on files or images, from the CLI, a script or Slicer's console.

Example (Slicer's Python console, or any Python with the backend installed)::

    import SlicerMedFuse as mf
    result = mf.run_task("superres", {"volume": "thick.nii.gz"}, {"volume": "fine.nii.gz"},
                         params={"method": "bspline"})
    print(result.report["output_spacing_mm"])

Everything a task has in common lives here, once: reading and checking inputs, resolving
parameters and the device, a private scratch folder, progress, turning errors into messages,
and writing every output atomically only after the whole job succeeded (DESIGN rules 4 and 5).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import SimpleITK as sitk

import SlicerMedFuse
from SlicerMedFuse.device import out_of_memory_guard, resolve_device
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.geometry import ImageGeometry, check_same_grid
from SlicerMedFuse.io import (
    WRITE_EXTENSIONS,
    check_image,
    commit_outputs,
    read_image,
    write_image,
    write_json_atomic,
)
from SlicerMedFuse.io.output_targets import OutputTarget, check_nifti_direction, check_output_targets
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.tasks.base import Task, TaskContext
from SlicerMedFuse.tasks.registry import get_task

__all__ = ["RunResult", "run_task"]

_log = logging.getLogger("SlicerMedFuse")

ImageInput = str | Path | sitk.Image


@dataclasses.dataclass
class RunResult:
    """What :func:`run_task` returns.

    Attributes:
        images: output images by role (always present, also when written to disk).
        paths: where each output was written (empty when no output paths were given).
        report: the job report (also written as JSON when a report path was given).
    """

    images: dict[str, sitk.Image]
    paths: dict[str, Path]
    report: dict[str, Any]


class _ProgressLogHandler(logging.Handler):
    """Forwards the backend's log warnings (e.g. 'DICOM series regularised') to the progress stream."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(level=logging.INFO)
        self.progress = progress
        self.warnings: list[str] = []  # also go into the report: a warning seen only on a terminal is lost

    def emit(self, record: logging.LogRecord) -> None:
        level = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}.get(record.levelno, "error")
        self.progress.log(record.getMessage(), level=level)
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())


@contextlib.contextmanager
def _forward_logs(progress: Progress) -> Iterator[_ProgressLogHandler]:
    handler = _ProgressLogHandler(progress)
    previous_level = _log.level
    _log.addHandler(handler)
    if _log.getEffectiveLevel() > logging.INFO:
        _log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        _log.removeHandler(handler)
        _log.setLevel(previous_level)


def _output_paths(task: Task, outputs: Mapping[str, str | Path] | str | Path | None) -> dict[str, Path]:
    if outputs is None:
        return {}
    if isinstance(outputs, (str, Path)):
        outputs = {task.spec.primary_output.role: outputs}
    paths = {}
    for role, path in outputs.items():
        task.spec.output(role)  # raises UsageError for unknown roles
        paths[role] = Path(path)
    for role, path in paths.items():
        if not path.parent.exists():
            raise UsageError(f"The folder for output '{role}' does not exist: {path.parent}; create it first.")
    return paths


#: Extensions that hold a transform output as an ITK transform file rather than as an image.
TRANSFORM_FILE_EXTENSIONS = (".h5", ".hdf5")


def _check_targets(
    task: Task,
    inputs: Mapping[str, ImageInput],
    out_paths: Mapping[str, Path],
    report_file: Path | None,
    params: Mapping[str, Any],
) -> None:
    """Before any work: no output onto an input or another output, each writable in a supported format."""
    targets = []
    for role, path in out_paths.items():
        is_transform = task.spec.output(role).kind == "transform"
        extensions = tuple(WRITE_EXTENSIONS) + (TRANSFORM_FILE_EXTENSIONS if is_transform else ())
        targets.append(OutputTarget(f"output '{role}'", path, extensions))
    if report_file is not None:
        targets.append(OutputTarget("report", report_file))
    named_files = [spec for spec in task.spec.parameters if spec.file and params.get(spec.name)]
    targets += [
        OutputTarget(f"'{spec.name}' file", Path(params[spec.name])) for spec in named_files if spec.file == "write"
    ]
    sources = {f"input '{role}'": source for role, source in inputs.items() if not isinstance(source, sitk.Image)}
    sources.update({f"'{spec.name}' file": params[spec.name] for spec in named_files if spec.file == "read"})
    check_output_targets(targets, sources)


def _check_output_grids(task: Task, images: Mapping[str, sitk.Image], out_paths: Mapping[str, Path]) -> None:
    """Refuse NIfTI for an output whose reference input is sheared (before the task runs)."""
    for role, path in out_paths.items():
        spec = task.spec.output(role)
        reference = spec.reference_role or (role if role in images else None)
        if reference in images:  # a displacement field as .nii.gz lies on the same grid
            check_nifti_direction(images[reference], path, f"input '{reference}' (whose grid output '{role}' keeps)")


def _writer(task: Task, role: str, image: sitk.Image):
    """How an output is written: a transform output to .h5 as an ITK DisplacementFieldTransform, else as an image."""

    def write(target: Path) -> None:
        if task.spec.output(role).kind == "transform" and target.name.lower().endswith(TRANSFORM_FILE_EXTENSIONS):
            # the transform takes ownership of its image: hand it a float64 copy
            sitk.WriteTransform(sitk.DisplacementFieldTransform(sitk.Cast(image, sitk.sitkVectorFloat64)), str(target))
        else:
            write_image(image, target)

    return write


def _file_writers(files: Mapping[Path, Path], taken: Mapping[Path, Any]) -> dict[Path, Callable[[Path], None]]:
    """Writers that move the files a task staged in its scratch folder onto their final paths.

    Raises:
        UsageError: a task file would land on a path an output already takes.
    """
    resolved = {Path(path).resolve() for path in taken}
    writers = {}
    for final, staged in files.items():
        if Path(final).resolve() in resolved:
            raise UsageError(f"The file '{final}' is also given as an output path; give each output its own path.")
        # shutil.move copies across filesystems (the scratch folder may be elsewhere); the commit renames atomically
        writers[Path(final)] = lambda target, source=staged: shutil.move(str(source), str(target))
    return writers


def _load_inputs(
    task: Task, inputs: Mapping[str, ImageInput], params: Mapping[str, Any]
) -> tuple[dict[str, sitk.Image], dict[str, Any]]:
    task.spec.check_roles(list(inputs))
    read = {role: source if isinstance(source, sitk.Image) else read_image(source) for role, source in inputs.items()}
    images, described = task.prepare_inputs(read, params), {}
    for role, image in images.items():
        check_image(image, role)
        geometry = ImageGeometry.from_image(image)
        source = inputs.get(role)
        described[role] = {
            "source": "<in memory>" if isinstance(source, sitk.Image) else str(source or "<derived by the task>"),
            "size": list(geometry.size),
            "spacing_mm": [round(s, 6) for s in geometry.spacing],
            "pixel_type": image.GetPixelIDTypeAsString(),
        }
    for spec in task.spec.inputs:
        if spec.aligned_with is not None and spec.role in images and spec.aligned_with in images:
            check_same_grid(
                {spec.aligned_with: images[spec.aligned_with], spec.role: images[spec.role]}, spec.aligned_with
            )
    return images, described


def run_task(
    task: str | Task,
    inputs: Mapping[str, ImageInput],
    outputs: Mapping[str, str | Path] | str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    device: str = "auto",
    threads: int | None = None,
    progress: Progress | None = None,
    report_path: str | Path | None = None,
    model: str | Path | None = None,
    keep_work_dir: bool = False,
) -> RunResult:
    """Run a task end to end.

    Args:
        task: a task name (see ``medfuse tasks``) or a Task instance.
        inputs: image per input role: a file path, a DICOM folder (``folder#SERIES_UID`` picks a
            series), or a SimpleITK image.
        outputs: where to write outputs: one path (the primary output) or a path per role; None
            keeps them in memory only.
        params: parameter values (or their command-line strings); unset ones take defaults.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        threads: CPU threads for torch (None: all cores).
        progress: where progress goes (default: nowhere).
        report_path: also write the report as JSON here.
        model: a model bundle folder or id for tasks that use one (default: the task's own).
        keep_work_dir: keep the scratch folder for debugging (its path is in the report).

    Returns:
        A :class:`RunResult`. Outputs are written only when the whole job succeeded; on any
        error nothing is written and the user's inputs are untouched.

    Raises:
        MedFuseError: a subclass with a one-sentence message (bad input, usage, model, resources).
    """
    task = get_task(task) if isinstance(task, str) else task
    progress = progress or Progress()
    started = time.perf_counter()
    out_paths = _output_paths(task, outputs)
    task.check_outputs(list(out_paths), list(inputs))
    report_file = Path(report_path) if report_path is not None else None
    resolved = task.spec.resolve_parameters(params or {})
    _check_targets(task, inputs, out_paths, report_file, resolved)

    progress.start(task.spec.name)
    work_dir = Path(tempfile.mkdtemp(prefix=f"medfuse-{task.spec.name}-"))
    try:
        with _forward_logs(progress) as logged:
            progress.update(0.0, "reading inputs")
            images, described = _load_inputs(task, inputs, resolved)
            _check_output_grids(task, images, out_paths)
            task.validate_inputs(images, resolved)
            device_config = resolve_device(device, threads=threads)
            context = TaskContext(
                device=device_config,
                progress=progress.span(0.02, 0.95),
                work_dir=work_dir,
                model=Path(model) if model is not None else None,
            )
            load_seconds = time.perf_counter() - started
            with out_of_memory_guard(device_config):
                result = task.run(images, resolved, context)
            missing = [o.role for o in task.spec.outputs if o.role in out_paths and o.role not in result.outputs]
            if missing:
                raise RuntimeError(f"task {task.spec.name} did not produce output(s) {missing}")

            progress.update(0.95, "writing outputs")
            report = {
                "task": task.spec.name,
                "medfuse_version": SlicerMedFuse.__version__,
                "device": device_config.describe(),
                "platform": {"python": platform.python_version(), "system": platform.system()},
                "inputs": described,
                "parameters": resolved,
                **result.report,
                "warnings": list(dict.fromkeys([*result.report.get("warnings", []), *logged.warnings])),
                "outputs": {role: str(path) for role, path in out_paths.items()},
            }
            writers = {path: _writer(task, role, result.outputs[role]) for role, path in out_paths.items()}
            writers.update(_file_writers(result.files, writers))
            timings = dict(report.get("timings_s", {}))
            timings["read_inputs"] = round(load_seconds, 3)
            timings["total"] = round(time.perf_counter() - started, 3)
            report["timings_s"] = timings
            if keep_work_dir:
                report["work_dir"] = str(work_dir)
            if report_file is not None:
                writers[report_file] = lambda target: write_json_atomic(report, target)
            commit_outputs(writers)
            progress.update(1.0, "done")
            progress.result({role: str(path) for role, path in out_paths.items()}, report)
            return RunResult(images=dict(result.outputs), paths=out_paths, report=report)
    finally:
        if not keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
