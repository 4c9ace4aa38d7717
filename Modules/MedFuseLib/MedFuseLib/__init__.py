"""MedFuseLib: the Slicer-side library shared by every MedFuse module.

* :mod:`MedFuseLib.mrml_bridge` - volume nodes <-> SimpleITK images (LPS/RAS handled), label maps ->
  segmentations with task labels, displacement fields -> grid transforms, subject hierarchy placement.
* :mod:`MedFuseLib.runner` - the backend command line, a subprocess runner streaming JSON-line
  events, cancelling the whole process tree.
* :mod:`MedFuseLib.backend_setting` - the Backend setting every panel and the console share: this
  computer or a ``medfuse serve`` server (:func:`useServer`, :func:`useThisComputer`); the server's
  runner is :mod:`MedFuseLib.remote_runner`, the one-time consent per server :mod:`MedFuseLib.consent`
  (:func:`giveConsent`), the settings store :mod:`MedFuseLib.settings_store`.
* :mod:`MedFuseLib.task_job` - :class:`BackendTaskJob`: export input nodes, run a task, read results.
* :mod:`MedFuseLib.task_models` - :class:`TaskModels`: a task's model bundles (list, default, resolve, describe).
* :mod:`MedFuseLib.task_logic` - :class:`TaskLogic`: the spec-driven base of the module Logics (input
  checks, camelCase <-> task parameters, grid prechecks, models, start / finish / cancel, async runs).
* :mod:`MedFuseLib.task_run` - :class:`TaskRun`: a started task to poll, wait on or cancel (``processAsync``).
* :mod:`MedFuseLib.choice_combos` - :func:`labelChoiceCombos`: combo boxes show a task's choice labels.
* :mod:`MedFuseLib.slicer_version` - the Slicer 5.10 floor check every module file runs first (Python 3.9-safe).
* :mod:`MedFuseLib.parameter_pack` - :func:`taskParameterFields`: a panel's parameter pack gets one typed
  field per task parameter from the task's declaration; needs the Slicer application.
* :mod:`MedFuseLib.module_logic` - :class:`MedFuseModuleLogic`, the ``ScriptedLoadableModuleLogic`` base that
  owns a panel's parameter pack; needs the Slicer application, imported from its module.
* :mod:`MedFuseLib.model_selector` - :class:`ModelSelector`: a panel's model combo box, bound to a
  parameter node field, with the chosen model's description and warnings.
* :mod:`MedFuseLib.installer` - first-use install of torch and the backend requirements
  (:mod:`MedFuseLib.install_job`: pip in the background, dry-run first, progress and cancel).
* :mod:`MedFuseLib.panel` - :class:`MedFusePanelWidget`, the base of the module widgets (parameter node
  lifecycle, Apply/Cancel, job polling); the one part that needs the Slicer application, so it is
  imported from its module, not exported here.
* :mod:`MedFuseLib.segment_editor` - :class:`EmbeddedSegmentEditor`, the segment editor a panel embeds
  for corrections; needs the Slicer application too, imported from its module.
* :mod:`MedFuseLib.self_test` - :class:`MedFuseSelfTest`, the base of the modules' in-Slicer self-tests;
  needs the Slicer application too, imported from its module.

Its core needs only MRML and VTK (no ``qt``, ``ctk`` or ``slicer.app``), so it runs headless on
slicer-core. Names are imported lazily: ``import MedFuseLib`` loads nothing heavy, and the runner
and installer never import ``slicer``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "displacement_field_to_grid_transform": "mrml_bridge",
    "image_to_volume_node": "mrml_bridge",
    "labelmap_to_segmentation": "mrml_bridge",
    "place_under_study": "mrml_bridge",
    "segmentation_to_labelmap": "mrml_bridge",
    "volume_node_to_image": "mrml_bridge",
    "Job": "runner",
    "ProcessRunner": "runner",
    "SubprocessRunner": "runner",
    "backend_command": "runner",
    "backend_environment": "runner",
    "default_python_executable": "runner",
    "run_to_completion": "runner",
    "BackendSetting": "backend_setting",
    "useServer": "backend_setting",
    "useThisComputer": "backend_setting",
    "giveConsent": "consent",
    "BackendTaskJob": "task_job",
    "TaskModels": "task_models",
    "TaskLogic": "task_logic",
    "TaskRun": "task_run",
    "labelChoiceCombos": "choice_combos",
    "BackendInstaller": "installer",
    "InstallDeclined": "installer",
    "InstallOutcome": "installer",
    "UnsupportedSlicer": "installer",
    "InstallJob": "install_job",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'MedFuseLib' has no attribute {name!r}")
    return getattr(importlib.import_module(f"MedFuseLib.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
