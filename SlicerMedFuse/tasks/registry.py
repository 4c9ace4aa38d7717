"""Finds tasks: the built-in ones and those other installed packages contribute.

A site adds its own task without forking by shipping a package that declares, in its
``pyproject.toml``::

    [project.entry-points."SlicerMedFuse.tasks"]
    my-task = "my_package.my_module:MyTask"

where ``MyTask`` subclasses :class:`SlicerMedFuse.tasks.base.Task`. Built-in tasks are listed
here by import path; their declarations alone (no task module, no torch) come from
:func:`SlicerMedFuse.specs.task_spec`.
"""

from __future__ import annotations

import importlib
import logging

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.specs import plugin_references
from SlicerMedFuse.tasks.base import Task

__all__ = ["get_task", "list_tasks"]

_BUILTIN: dict[str, str] = {
    "superres": "SlicerMedFuse.tasks.superres:SuperResolutionTask",
    "hemorrhage": "SlicerMedFuse.tasks.hemorrhage:HemorrhageTask",
    "registration": "SlicerMedFuse.tasks.registration:RegistrationTask",
    "breast-mass": "SlicerMedFuse.tasks.breast_mass:BreastMassTask",
    "aln-metastasis": "SlicerMedFuse.tasks.aln_metastasis:AlnMetastasisTask",
}

_log = logging.getLogger(__name__)


def _load(reference: str) -> type[Task]:
    module_name, _, attribute = reference.partition(":")
    task_class = getattr(importlib.import_module(module_name), attribute)
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise TypeError(f"{reference} is not a SlicerMedFuse Task subclass")
    return task_class


def _all_references() -> dict[str, str]:
    return {**_BUILTIN, **plugin_references()}


def list_tasks() -> list[type[Task]]:
    """Every available task class, built-in first. A plugin that fails to import is skipped with a warning."""
    tasks = []
    for name, reference in _all_references().items():
        try:
            tasks.append(_load(reference))
        except Exception as error:  # a broken plugin must not break the built-in tasks
            if name in _BUILTIN:
                raise
            _log.warning("plugin task %r (%s) could not be loaded: %s", name, reference, error)
    return tasks


def get_task(name: str) -> Task:
    """An instance of the task called ``name``.

    Raises:
        UsageError: no such task (the message lists the available ones).
    """
    references = _all_references()
    if name not in references:
        raise UsageError(
            f"There is no task '{name}'; available tasks: {', '.join(sorted(references))} (see 'medfuse tasks')."
        )
    return _load(references[name])()
