"""MedFuseLib: the Slicer-side library shared by every MedFuse module.

* :mod:`MedFuseLib.mrml_bridge` - volume nodes <-> SimpleITK images (LPS/RAS handled), label maps ->
  segmentations with task labels, displacement fields -> grid transforms, subject hierarchy placement.
* :mod:`MedFuseLib.runner` - the backend command line, a subprocess runner streaming JSON-line
  events, cancelling the whole process tree.
* :mod:`MedFuseLib.task_job` - :class:`BackendTaskJob`: export input nodes, run a task, read results.
* :mod:`MedFuseLib.task_models` - :class:`TaskModels`: a task's model bundles (list, default, resolve,
  describe); :func:`resolveTaskParameters`, :func:`taskParameterRange` from the task declaration.
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
    "BackendTaskJob": "task_job",
    "TaskModels": "task_models",
    "resolveTaskParameters": "task_models",
    "taskParameterRange": "task_models",
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
