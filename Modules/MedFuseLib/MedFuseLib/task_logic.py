"""One spec-driven Logic for a backend task: the base of the four MedFuse module Logics.

A task declares its inputs, parameters and labels once, in the backend (:class:`TaskSpec`, read
through :mod:`SlicerMedFuse.facade`). :class:`TaskLogic` derives from that declaration everything
a module Logic does the same way for every task:

* **input checks** from the task's ``InputSpec``: a required input is present, a node has voxels,
  grey-scale voxels, three dimensions; one node is not given two roles; the output is not the input;
* **parameters**: the panel's and console's camelCase keywords (``minComponentMl``) map to the
  task's snake_case parameters (``min_component_ml``) and back; defaults, ranges, choices and the
  choices' user-facing labels come from the spec, so a new task parameter needs no code here;
* **grid prechecks** (``facade.precheck_grids``): size, spacing, thickness, before anything is exported;
* **models**: the task's bundles in the user's model store (:class:`MedFuseLib.task_models.TaskModels`);
* **running**: start a :class:`MedFuseLib.task_job.BackendTaskJob`, finish it (results go to the
  scene only after success; files are always removed), cancel; :meth:`process` blocks,
  :meth:`processAsync` returns a :class:`MedFuseLib.task_run.TaskRun` to poll, wait on or cancel.

A subclass sets :attr:`TASK_NAME` and implements ``startJob(...)`` and ``finishJob(job, ...)``;
:attr:`FINISH_OPTIONS` names the keyword arguments of :meth:`process` that go to ``finishJob``.
Only MRML is used (no ``qt``, ``ctk`` or ``slicer.app``), so this runs headless on slicer-core.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from MedFuseLib.backend_setting import backendRunner
from MedFuseLib.runner import ProcessRunner
from MedFuseLib.settings_store import SettingsStore
from MedFuseLib.task_job import BackendTaskJob
from MedFuseLib.task_models import TaskModels
from MedFuseLib.task_run import Scheduler, TaskRun, defaultScheduler
from SlicerMedFuse import facade

__all__ = ["TaskLogic", "camelName", "snakeName", "taskSpec"]

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def camelName(name: str) -> str:
    """``min_component_ml`` -> ``minComponentMl`` (a task parameter as Slicer-side code names it)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snakeName(name: str) -> str:
    """``minComponentMl`` -> ``min_component_ml`` (the inverse of :func:`camelName`)."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


@functools.cache
def taskSpec(task: str) -> facade.TaskSpec:
    """The backend's declaration of ``task`` (read once per session; it does not change while Slicer runs)."""
    return facade.task_spec(task)


class TaskLogic:
    """The spec-driven part of a module Logic (see the module docstring).

    Args:
        runner: starts the backend process (:class:`MedFuseLib.runner.ProcessRunner`); default the one
            the Backend setting chooses when a job starts (:func:`MedFuseLib.backend_setting.backendRunner`:
            this computer, or a server the user agreed to send images to). Tests inject fakes here.
        python: interpreter for the backend; default ``PythonSlicer`` inside Slicer, else ``sys.executable``.
        store: the model store to list and resolve bundles in; default ``$MEDFUSE_HOME`` or ``~/.medfuse``.
        scheduler: polls :meth:`processAsync` runs (a Qt timer inside Slicer); default
            :func:`MedFuseLib.task_run.defaultScheduler`; tests inject a fake one.
        settings: where the Backend setting and the server consents are kept; default Slicer's
            settings (:func:`MedFuseLib.settings_store.defaultSettingsStore`).
    """

    #: The backend task this Logic runs.
    TASK_NAME = ""
    #: Keyword arguments of :meth:`process` / :meth:`processAsync` that go to ``finishJob``.
    FINISH_OPTIONS: tuple[str, ...] = ()
    #: How the module words its model sentences (see :class:`MedFuseLib.task_models.TaskModels`).
    MODELS_CLASS: type[TaskModels] = TaskModels

    def __init__(
        self,
        runner: ProcessRunner | None = None,
        python: str | None = None,
        store: Any = None,
        scheduler: Scheduler | None = None,
        settings: SettingsStore | None = None,
    ) -> None:
        self.runner = runner
        self.python = python
        self.store = store
        self.scheduler = scheduler
        self.settings = settings

    # --- the declaration ----------------------------------------------------------------------------
    @classmethod
    def spec(cls) -> facade.TaskSpec:
        """The task's declaration (inputs, outputs, labels, parameters)."""
        return taskSpec(cls.TASK_NAME)

    @classmethod
    def parameterSpec(cls, name: str) -> facade.ParameterSpec:
        """The declaration of a parameter named either way (``minComponentMl`` or ``min_component_ml``)."""
        return cls.spec().parameter(snakeName(name))

    @classmethod
    def parameterDefault(cls, name: str) -> Any:
        return cls.parameterSpec(name).default

    @classmethod
    def parameterRange(cls, name: str) -> tuple[float, float]:
        """(minimum, maximum) of a numeric parameter, e.g. ``parameterRange("overlap")``."""
        parameter = cls.parameterSpec(name)
        if parameter.minimum is None or parameter.maximum is None:
            raise ValueError(f"task parameter {parameter.name!r} has no bounded range")
        return float(parameter.minimum), float(parameter.maximum)

    @classmethod
    def parameterChoices(cls, name: str) -> list[str]:
        """The allowed values (ids) of a choice parameter, in the spec's order."""
        parameter = cls.parameterSpec(name)
        if not parameter.choices:
            raise ValueError(f"task parameter {parameter.name!r} has no choices")
        return list(parameter.choices)

    @classmethod
    def choiceLabels(cls, name: str) -> list[tuple[str, str]]:
        """(id, what a person reads) of each choice, e.g. ``("bspline", "Cubic B-spline")``, for a combo box."""
        parameter = cls.parameterSpec(name)
        return [(choice, parameter.choice_label(choice)) for choice in cls.parameterChoices(name)]

    @classmethod
    def choiceLabel(cls, name: str, value: str) -> str:
        """What a person reads for choice ``value`` of parameter ``name`` (the value itself for a field that is
        not a task choice, e.g. ``device``)."""
        known = {camelName(parameter.name): parameter for parameter in cls.spec().parameters}
        parameter = known.get(name) or known.get(camelName(name))
        return parameter.choice_label(value) if parameter is not None and parameter.kind == "choice" else value

    # --- parameters ---------------------------------------------------------------------------------
    @classmethod
    def taskParameters(cls, **values: Any) -> dict[str, Any]:
        """The backend parameters from camelCase keywords (None = the task's default), validated.

        Example: ``taskParameters(minComponentMl=0.5)`` -> ``{"min_component_ml": 0.5, "overlap": 0.5, ...}``.

        Raises:
            ValueError: an unknown parameter or a value outside its range (one sentence).
        """
        spec = cls.spec()
        known = {camelName(parameter.name) for parameter in spec.parameters}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown {cls.TASK_NAME} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        given = {snakeName(name): value for name, value in values.items() if value is not None}
        try:
            return spec.resolve_parameters(given)
        except facade.MedFuseError as error:
            raise ValueError(error.message) from None

    @classmethod
    def keywordValues(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """Backend parameters as camelCase keywords (the inverse of :meth:`taskParameters`)."""
        return {camelName(name): value for name, value in params.items()}

    @classmethod
    def packValues(cls, pack: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The task parameters a parameter pack (``@parameterNodeWrapper`` node) holds, as camelCase keywords.

        Args:
            pack: the parameter node; each task parameter is the field of its camelCase name.
            names: the fields to read; default every task parameter the pack has a field for.
        """
        fields = names if names is not None else [camelName(p.name) for p in cls.spec().parameters]
        return {name: getattr(pack, name) for name in fields if hasattr(pack, name)}

    # --- inputs -------------------------------------------------------------------------------------
    @classmethod
    def checkInputNode(cls, node: Any, role: str, *, phases: bool = False) -> None:
        """Check one input node against its ``InputSpec``: present when required, voxels, grey scale, 3D.

        Args:
            node: the volume node (None when nothing is selected).
            role: the task input it is for.
            phases: its voxel components are phases of a series (DCE), not colour: skip the grey-scale check.

        Raises:
            ValueError: one sentence naming the problem and the fix.
        """
        item = cls.spec().input(role)
        title = item.title
        if node is None:
            if item.required:
                raise ValueError(f"Select the {title}.")
            return
        name = node.GetName()
        imageData = node.GetImageData()
        if imageData is None:
            raise ValueError(f"The {title} '{name}' has no voxels; load or compute it first.")
        if item.kind == "image" and not phases and imageData.GetNumberOfScalarComponents() != 1:
            raise ValueError(f"The {title} '{name}' has colour or vector voxels; select a grey-scale volume.")
        dimensions = imageData.GetDimensions()
        if min(dimensions) < 2:
            raise ValueError(
                f"The {title} '{name}' is a single slice ({dimensions[0]} x {dimensions[1]} x "
                f"{dimensions[2]} voxels); select a 3D volume."
            )

    @classmethod
    def checkInputNodes(cls, nodes: Mapping[str, Any]) -> None:
        """Check every input (:meth:`checkInputNode`, required ones included) and that no node has two roles.

        Raises:
            ValueError: one sentence naming the problem and the fix.
        """
        for item in cls.spec().inputs:
            if item.role in nodes or item.required:
                cls.checkInputNode(nodes.get(item.role), item.role)
        roles = [role for role, node in nodes.items() if node is not None]
        for index, role in enumerate(roles):
            for other in roles[index + 1 :]:
                if nodes[role] is nodes[other]:
                    raise ValueError(
                        f"'{nodes[role].GetName()}' is selected as both {cls.spec().input(role).title} and "
                        f"{cls.spec().input(other).title}; select a different volume for each."
                    )

    @staticmethod
    def checkOutputNode(outputNode: Any, inputNodes: Mapping[str, Any]) -> None:
        """ValueError when the output node is one of the inputs (inputs are never overwritten)."""
        if outputNode is not None and any(outputNode is node for node in inputNodes.values()):
            raise ValueError("Choose another output volume: the input volume is never overwritten.")

    @staticmethod
    def nodeGrid(node: Any, sliceThickness: float | None = None) -> facade.VolumeGrid:
        """The node's voxel grid (size and spacing along its IJK axes, as the backend reads the file)."""
        return facade.VolumeGrid(
            tuple(int(n) for n in node.GetImageData().GetDimensions()),
            tuple(float(s) for s in node.GetSpacing()),
            sliceThickness,
        )

    @classmethod
    def precheckGrids(cls, grids: Mapping[str, facade.VolumeGrid], params: Mapping[str, Any]) -> None:
        """The task's checks that need only the inputs' grids (``facade.precheck_grids``), as ValueError."""
        try:
            facade.precheck_grids(cls.TASK_NAME, grids, params)
        except facade.MedFuseError as error:
            raise ValueError(error.message) from None

    # --- models -------------------------------------------------------------------------------------
    @property
    def models(self) -> TaskModels:
        """The task's model bundles in :attr:`store` (read on every call, as the backend process does)."""
        return self.MODELS_CLASS(self.TASK_NAME, facade.default_model(self.TASK_NAME) or "", self.store)

    def resolveModel(self, model: str | os.PathLike | None = None) -> facade.BundleManifest:
        """The manifest of the model to run: an id (``id`` or ``id@version``), a bundle folder, or None for the default.

        Raises:
            ValueError: no model is installed, not a bundle, or a bundle of another task (one sentence).
        """
        return self.models.resolve(model)

    def defaultModel(self) -> facade.InstalledModel | None:
        """The model used when none is chosen, or None when none is installed."""
        return self.models.default()

    def noModelMessage(self) -> str:
        return self.models.noModelMessage()

    # --- running ------------------------------------------------------------------------------------
    def jobRunner(self, runner: ProcessRunner | None = None) -> ProcessRunner:
        """The runner of the next job: ``runner``, else :attr:`runner`, else the Backend setting's.

        Raises:
            ValueError: the Backend setting names a server that is not set up or not agreed to (one sentence).
        """
        return runner or self.runner or backendRunner(self.settings)

    def startBackendJob(
        self,
        inputs: Mapping[str, Any],
        outputs: Sequence[str],
        params: Mapping[str, Any],
        *,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        runner: ProcessRunner | None = None,
        jobClass: type[BackendTaskJob] = BackendTaskJob,
        **jobOptions: Any,
    ) -> BackendTaskJob:
        """Create and start the backend job (inputs are exported, never changed); returns at once.

        Raises:
            ValueError: the Backend setting names a server that is not set up or not agreed to (one sentence).
        """
        runner = self.jobRunner(runner)  # before any export: nothing leaves unasked
        job = jobClass(
            self.TASK_NAME,
            inputs,
            list(outputs),
            params,
            device=device,
            model=model,
            runner=runner,
            python=self.python,
            **jobOptions,
        )
        job.start()
        return job

    def finishedImages(self, job: BackendTaskJob) -> dict[str, Any]:
        """The output images of a finished job; RuntimeError (the backend's sentence) when it failed or runs."""
        if not job.done:
            raise RuntimeError(f"The {self.spec().title} job is still running; wait for it or cancel it first.")
        if not job.succeeded:
            raise RuntimeError(job.error_message or f"{self.spec().title} failed without a message.")
        return job.result_images()

    def startJob(self, *args: Any, **options: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement startJob()")

    def finishJob(self, job: Any, *args: Any, **options: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement finishJob()")

    def processAsync(self, *args: Any, scheduler: Scheduler | None = None, **options: Any) -> TaskRun:
        """Start the task and return at once: a :class:`MedFuseLib.task_run.TaskRun` to poll, wait on or cancel.

        Arguments are those of :meth:`process`. Inside the Slicer application the run polls and
        finishes itself from a Qt timer (the result nodes appear in the scene; ``run.result`` holds
        them); elsewhere call ``run.poll()`` or ``run.wait()``.

        Raises:
            ValueError: the inputs, the model or a parameter are unusable (one sentence).
        """
        finishOptions = {key: options.pop(key) for key in self.FINISH_OPTIONS if key in options}
        return self.runJob(self.startJob(*args, **options), scheduler, **finishOptions)

    def runJob(self, job: Any, scheduler: Scheduler | None = None, **finishOptions: Any) -> TaskRun:
        """A :class:`MedFuseLib.task_run.TaskRun` of a started job, finished by ``finishJob(job, **finishOptions)``."""
        scheduler = scheduler if scheduler is not None else (self.scheduler or defaultScheduler())
        return TaskRun(job, lambda finished: self.finishJob(finished, **finishOptions), scheduler)

    def process(self, *args: Any, timeout: float | None = None, **options: Any) -> Any:
        """Run the task to the end and return the result nodes; blocks (Ctrl+C or ``timeout`` seconds stop it).

        For scripts; in Slicer's console :meth:`processAsync` keeps the application responsive.

        Raises:
            ValueError: unusable inputs, model or parameters; RuntimeError: the job failed; TimeoutError:
                not done within ``timeout`` seconds, stopped (each one sentence).
        """
        run = self.processAsync(*args, scheduler=_NoScheduler(), **options)
        try:
            return run.wait(timeout)
        except TimeoutError:
            run.stop()
            raise TimeoutError(
                f"{self.spec().title} did not finish within {timeout:g} s; it was stopped and nothing was added "
                "to the scene."
            ) from None


class _NoScheduler:
    """A scheduler that never polls: :meth:`TaskLogic.process` waits itself, also inside the application."""

    def every(self, intervalMs: int, callback: Any) -> None:
        return None
